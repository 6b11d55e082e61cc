package pvekeep

import (
	"encoding/json"
	"time"
)

// JobKind names what a durable job does. The strings are stored in the
// database and shown to the panel: never rename one.
type JobKind string

const (
	KindBackupCreate JobKind = "backup.create"
	KindBackupRemove JobKind = "backup.remove"
)

// JobState is the closed set of job states; see docs/jobs.md for the
// transitions.
type JobState string

const (
	// JobQueued: recorded, waiting for its first Proxmox task to be
	// submitted (by the API call that made it or by a later tick).
	JobQueued JobState = "queued"
	// JobRunning: a Proxmox task has been submitted; ticks drive it.
	JobRunning JobState = "running"
	// JobSucceeded: finished; terminal.
	JobSucceeded JobState = "succeeded"
	// JobFailed: finished with an error the client can read; terminal.
	JobFailed JobState = "failed"
	// JobCancelled: stopped by an admin; terminal.
	JobCancelled JobState = "cancelled"
)

// Terminal reports whether no transition leaves s.
func (s JobState) Terminal() bool {
	return s == JobSucceeded || s == JobFailed || s == JobCancelled
}

// Active reports whether a job in state s holds its VM's lock.
func (s JobState) Active() bool { return s == JobQueued || s == JobRunning }

// Job is one durable job row.
type Job struct {
	ID          JobID     `db:"id"`
	ServiceID   ServiceID `db:"service_id"`
	VMID        VMID      `db:"vmid"`
	ServerID    int64     `db:"server_id"`
	Node        string    `db:"node"`
	Kind        JobKind   `db:"kind"`
	State       JobState  `db:"state"`
	Step        string    `db:"step"`
	ProgressPct int       `db:"progress_pct"`
	UPID        UPID      `db:"upid"`
	// SubmittingAt is set just before the current step's task is
	// requested and cleared once its UPID is recorded: a job found with
	// it set may have a task Proxmox accepted without our learning of it.
	SubmittingAt *time.Time `db:"submitting_at"`
	// AdmittedAt is when the node gate let a backup job submit its vzdump
	// (the per-node limit): from then on the job holds one of its node's
	// slots until it ends.
	AdmittedAt     *time.Time      `db:"admitted_at"`
	BackupID       BackupID        `db:"backup_id"` // the backup a backup.* job creates or removes
	Error          string          `db:"error"`
	Params         json.RawMessage `db:"params"` // kind-specific facts recorded at creation
	IdempotencyKey string          `db:"idempotency_key"`
	ActorType      ActorType       `db:"actor_type"`
	ActorID        int64           `db:"actor_id"`
	Attempt        int             `db:"attempt"`
	LeaseOwner     string          `db:"lease_owner"`
	LeaseUntil     *time.Time      `db:"lease_until"`
	CreatedAt      time.Time       `db:"created_at"`
	UpdatedAt      time.Time       `db:"updated_at"`
	StartedAt      *time.Time      `db:"started_at"`
	FinishedAt     *time.Time      `db:"finished_at"`
}

// BackupStatus is the life of one backup record.
type BackupStatus string

const (
	BackupCreating  BackupStatus = "creating"  // its vzdump job is in flight
	BackupAvailable BackupStatus = "available" // on storage, restorable
	BackupRemoving  BackupStatus = "removing"  // its removal job is in flight
	BackupRemoved   BackupStatus = "removed"   // gone from storage; kept as history
	BackupFailed    BackupStatus = "failed"    // its vzdump failed; never on storage
)

// CountsTowardsQuota reports whether a backup in status s uses a quota slot.
// Backups being created count, so two clicks at 9/10 never make 11.
func (s BackupStatus) CountsTowardsQuota() bool {
	return s == BackupCreating || s == BackupAvailable || s == BackupRemoving
}

// BackupOrigin says who asked for a backup.
type BackupOrigin string

const (
	OriginManual    BackupOrigin = "manual"
	OriginScheduled BackupOrigin = "scheduled"
)

// Backup is the plugin's record of one backup of one service.
type Backup struct {
	ID        BackupID     `db:"id"`
	ServiceID ServiceID    `db:"service_id"`
	VMID      VMID         `db:"vmid"`
	JobID     JobID        `db:"job_id"`
	Node      string       `db:"node"`
	Storage   string       `db:"storage"`
	Volid     string       `db:"volid"`
	Note      string       `db:"note"`
	SizeBytes int64        `db:"size_bytes"`
	Status    BackupStatus `db:"status"`
	Origin    BackupOrigin `db:"origin"`
	// Protected is Proxmox's protected flag on the volume, as the plugin
	// last set it: rotation never removes a protected backup.
	Protected bool       `db:"protected"`
	CreatedAt time.Time  `db:"created_at"`
	RemovedAt *time.Time `db:"removed_at"`
}

// Kinds of the restore flow.
const (
	// KindBackupRestore restores a backup over the service's VM, then puts
	// the VM back to the purchased package.
	KindBackupRestore JobKind = "backup.restore"
	// KindVMReinstall purges the VM and clones the product's OS template
	// into the same vmid, then puts it to the purchased package.
	KindVMReinstall JobKind = "vm.reinstall"
)

// Kinds of the VM's life, one per WHMCS module command (DESIGN §5).
const (
	// KindServiceCreate claims a free vmid, full-clones the product's
	// template into it, writes cloud-init, puts it at the package, starts
	// it, binds it to the service and sends the welcome email.
	KindServiceCreate JobKind = "service.create"
	// KindServiceSuspend stops the VM of a suspended service.
	KindServiceSuspend JobKind = "service.suspend"
	// KindServiceUnsuspend starts it again.
	KindServiceUnsuspend JobKind = "service.unsuspend"
	// KindServiceChangePackage puts the VM at the service's new package
	// (growing only), restarting it only when a change needs it.
	KindServiceChangePackage JobKind = "service.change_package"
	// KindServiceTerminate stops and destroys the VM; the service's
	// backups follow after the product's grace.
	KindServiceTerminate JobKind = "service.terminate"
)
