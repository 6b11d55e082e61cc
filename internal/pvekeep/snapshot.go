package pvekeep

import "time"

// Kinds of the snapshot flow (issue 8). Like every job they hold the
// service's one active slot: a snapshot job locks out backups and
// restores, and the other way round.
const (
	// KindSnapshotCreate takes a snapshot under a name the plugin chose.
	KindSnapshotCreate JobKind = "snapshot.create"
	// KindSnapshotRollback returns the VM to one of its snapshots.
	KindSnapshotRollback JobKind = "snapshot.rollback"
	// KindSnapshotRemove deletes a snapshot (a client's click, or the
	// cron's expiry with actor system).
	KindSnapshotRemove JobKind = "snapshot.remove"
)

// SnapshotID is the plugin's own id of a snapshot record.
type SnapshotID int64

// SnapshotStatus is the life of one snapshot record.
type SnapshotStatus string

const (
	SnapshotCreating  SnapshotStatus = "creating"  // its qmsnapshot job is in flight
	SnapshotAvailable SnapshotStatus = "available" // in Proxmox; can be rolled back to or removed
	SnapshotRemoving  SnapshotStatus = "removing"  // its removal job is in flight
	SnapshotRemoved   SnapshotStatus = "removed"   // gone from Proxmox; kept as history
	SnapshotFailed    SnapshotStatus = "failed"    // taking it failed; never in Proxmox
)

// CountsTowardsQuota reports whether a snapshot in status s uses a quota
// slot: one being taken counts, so concurrent clicks at N−1 make one.
func (s SnapshotStatus) CountsTowardsQuota() bool {
	return s == SnapshotCreating || s == SnapshotAvailable || s == SnapshotRemoving
}

// Why a snapshot record became removed (mod_pvekeep_snapshots.removed_reason).
const (
	SnapshotRemovedByClient  = "removed" // a snapshots.remove
	SnapshotRemovedByExpiry  = "expired" // the cron's lifetime enforcement
	SnapshotRemovedByRestore = "restore" // a restore or reinstall destroyed it in Proxmox
	// SnapshotRemovedByTerminate: service.terminate destroyed the VM and
	// its snapshots with it.
	SnapshotRemovedByTerminate = "terminate"
)

// Snapshot is the plugin's record of one snapshot it took for a service.
// Only these count towards the quota and are shown to the client;
// snapshots made in the Proxmox UI have no record.
type Snapshot struct {
	ID          SnapshotID     `db:"id"`
	ServiceID   ServiceID      `db:"service_id"`
	VMID        VMID           `db:"vmid"`
	Name        string         `db:"name"` // generated, [a-z][a-z0-9_-]{1,39}
	Description string         `db:"description"`
	VMState     bool           `db:"vmstate"` // RAM saved: a rollback resumes the VM
	Status      SnapshotStatus `db:"status"`
	CreatedAt   time.Time      `db:"created_at"`
	ExpiresAt   *time.Time     `db:"expires_at"` // nil: kept until removed
	RemovedAt   *time.Time     `db:"removed_at"`
	// RemovedReason is one of the SnapshotRemovedBy… values once removed.
	RemovedReason string `db:"removed_reason"`
	// RemovedByJob is the restore or reinstall that destroyed it, if one did.
	RemovedByJob JobID `db:"removed_job_id"`
	JobID        JobID `db:"job_id"` // the job that took it
	// LastError is why the last removal (an expiry, say) failed; cleared
	// when one succeeds. Attempts counts the failed removals.
	LastError string `db:"last_error"`
	Attempts  int    `db:"attempts"`
}

// SnapshotJobParams are what a snapshot.* job records at creation
// (mod_pvekeep_jobs.params): which snapshot, by id and name, and for a
// rollback whether the VM is to run afterwards (it ran when clicked).
type SnapshotJobParams struct {
	SnapshotID SnapshotID `json:"snapshot_id"`
	Name       string     `json:"name"`
	Start      bool       `json:"start,omitempty"`
}
