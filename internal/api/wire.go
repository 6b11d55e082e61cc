package api

import (
	"time"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/service"
	"github.com/pvekeep/pvekeep/internal/store"
)

// The result shapes of DESIGN §3. Times are RFC 3339 UTC; sizes bytes.

type usageOut struct {
	Used int `json:"used"`
	Max  int `json:"max"`
}

type lockOut struct {
	Locked bool   `json:"locked"`
	Reason string `json:"reason"`
	JobID  int64  `json:"job_id"`
}

type quotasOut struct {
	Backups   usageOut `json:"backups"`
	Snapshots usageOut `json:"snapshots"`
}

type statusOut struct {
	VMID      int       `json:"vmid"`
	Node      string    `json:"node"`
	Power     string    `json:"power"`
	Lock      lockOut   `json:"lock"`
	Quotas    quotasOut `json:"quotas"`
	ActiveJob *jobOut   `json:"active_job"`
	// CheckedAt is when Proxmox last told node, power and its lock
	// (RFC 3339), null when it never did (power is then "unknown").
	CheckedAt *string `json:"checked_at"`
	// ProxmoxError says why Proxmox could not be asked just now
	// (service.status): node and power are then the cached ones of
	// checked_at, or "missing" / "unknown". The rest of the status comes
	// from the database and holds regardless.
	ProxmoxError *problemOut `json:"proxmox_error,omitempty"`
}

func statusFrom(st service.Status) statusOut {
	out := statusOut{
		VMID:  int(st.VMID),
		Node:  st.Node,
		Power: st.Power,
		Lock:  lockOut{Locked: st.Lock.Locked, Reason: st.Lock.Reason, JobID: int64(st.Lock.JobID)},
		Quotas: quotasOut{
			Backups:   usageOut{Used: st.Backups.Used, Max: st.Backups.Max},
			Snapshots: usageOut{Used: st.Snapshots.Used, Max: st.Snapshots.Max},
		},
		ActiveJob: jobPtr(st.ActiveJob),
		CheckedAt: timePtr(st.CheckedAt),
	}
	if e := st.ProxmoxError; e != nil {
		out.ProxmoxError = &problemOut{Reason: string(e.Reason), Message: e.Message}
	}
	return out
}

// problemOut is an application error reported inside a result.
type problemOut struct {
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

type backupOut struct {
	ID        int64  `json:"id"`
	CreatedAt string `json:"created_at"`
	Note      string `json:"note"`
	SizeBytes int64  `json:"size_bytes"`
	Status    string `json:"status"`
	Origin    string `json:"origin"`
	// Protected is Proxmox's protected flag (backups.protect, the page's
	// Keep toggle): rotation never removes it; it still counts.
	Protected bool `json:"protected"`
}

type backupListOut struct {
	// Status is service.status's shape from the database alone: one call
	// is everything a client page view needs.
	Status        statusOut   `json:"status"`
	Quota         usageOut    `json:"quota"`
	Items         []backupOut `json:"items"`
	Schedule      scheduleOut `json:"schedule"`
	ActiveJob     *jobOut     `json:"active_job"`
	FailedRestore *jobOut     `json:"failed_restore"`
	FailedBackup  *jobOut     `json:"failed_backup"`
	// Snapshots is the page's snapshots section, as snapshots.list
	// answers it: one call is everything a page view needs.
	Snapshots snapshotListOut `json:"snapshots"`
	// ServiceState is active, suspended or terminated: the page shows the
	// suspended notice from it.
	ServiceState string `json:"service_state"`
}

type jobOut struct {
	ID          int64    `json:"id"`
	Kind        string   `json:"kind"`
	State       string   `json:"state"`
	Step        string   `json:"step"`
	ProgressPct int      `json:"progress_pct"`
	Error       string   `json:"error"`
	BackupID    int64    `json:"backup_id,omitempty"`
	CreatedAt   string   `json:"created_at"`
	FinishedAt  *string  `json:"finished_at"`
	NextActions []string `json:"next_actions"`
}

// serverTestOut is server.test's result.
type serverTestOut struct {
	OK             bool             `json:"ok"`
	ProxmoxVersion string           `json:"proxmox_version"`
	Fingerprint    string           `json:"fingerprint"`
	Checks         []serverCheckOut `json:"checks"`
}

type serverCheckOut struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// serverOptionsOut is server.options' result.
type serverOptionsOut struct {
	Items []optionOut `json:"items"`
}

type optionOut struct {
	Value string `json:"value"`
	Label string `json:"label"`
}

func jobFrom(j pvekeep.Job) jobOut {
	out := jobOut{
		ID: int64(j.ID), Kind: string(j.Kind), State: string(j.State), Step: j.Step,
		ProgressPct: j.ProgressPct, Error: j.Error, BackupID: int64(j.BackupID),
		CreatedAt: rfc3339(j.CreatedAt), NextActions: service.NextActions(j),
	}
	if j.FinishedAt != nil {
		s := rfc3339(*j.FinishedAt)
		out.FinishedAt = &s
	}
	return out
}

func jobPtr(j *pvekeep.Job) *jobOut {
	if j == nil {
		return nil
	}
	o := jobFrom(*j)
	return &o
}

// adminBackupOut is a backup as the admin sees it: also its Proxmox volume.
type adminBackupOut struct {
	backupOut
	Volid string `json:"volid"`
}

// adminJobOut is a job with its email's delivery state, when it sends one.
type adminJobOut struct {
	jobOut
	Email *emailOut `json:"email"`
}

// emailOut is one client email of a job. State is queued (not sent yet:
// last_error says why it waits), sent, failed (refused for good:
// last_error) or skipped (not to be sent: last_error says why).
type emailOut struct {
	ID        int64   `json:"id"`
	JobID     int64   `json:"job_id"`
	Kind      string  `json:"kind"`
	State     string  `json:"state"`
	Attempts  int     `json:"attempts"`
	LastError string  `json:"last_error"`
	Recipient string  `json:"recipient"`
	CreatedAt string  `json:"created_at"`
	SentAt    *string `json:"sent_at"`
}

type overviewOut struct {
	VMID             int              `json:"vmid"`
	Node             string           `json:"node"`
	Power            string           `json:"power"`
	Lock             lockOut          `json:"lock"`
	CheckedAt        *string          `json:"checked_at"`
	Quotas           quotasOut        `json:"quotas"`
	ActiveJob        *jobOut          `json:"active_job"`
	SelectedBackupID int64            `json:"selected_backup_id"`
	Backups          []adminBackupOut `json:"backups"`
	Jobs             []adminJobOut    `json:"jobs"`
	Emails           []emailOut       `json:"emails"`
	FailedRestore    *jobOut          `json:"failed_restore"`
	// SettingsError says why the product's settings cannot be read
	// (quotas then show max 0); absent when they can.
	SettingsError string `json:"settings_error,omitempty"`
	// Snapshots are the plugin's snapshots of the service; a failed
	// removal (an expiry the cron retries) has last_error and attempts.
	Snapshots []snapshotOut `json:"snapshots"`
	// Termination is present once the service was terminated: when, when
	// its backups are removed (null once they are gone), and the cron's
	// last failure to remove them (purge_error: the backups a round could
	// not remove, and why; purge_attempts: such rounds; purge_retry_at:
	// when the next round begins, with a purge_error).
	Termination *terminationOut `json:"termination,omitempty"`
}

type terminationOut struct {
	TerminatedAt      *string `json:"terminated_at"`
	BackupsPurgeAfter *string `json:"backups_purge_after"`
	PurgeError        string  `json:"purge_error"`
	PurgeAttempts     int     `json:"purge_attempts"`
	PurgeRetryAt      *string `json:"purge_retry_at"`
}

func overviewFrom(o service.AdminOverview) overviewOut {
	st := statusFrom(o.Status)
	out := overviewOut{
		VMID: st.VMID, Node: st.Node, Power: st.Power, Lock: st.Lock, CheckedAt: st.CheckedAt,
		Quotas: st.Quotas, ActiveJob: st.ActiveJob, SelectedBackupID: int64(o.SelectedBackupID),
		Backups: make([]adminBackupOut, 0, len(o.Backups)), Jobs: make([]adminJobOut, 0, len(o.Jobs)),
		Emails: make([]emailOut, 0, len(o.Emails)), FailedRestore: jobPtr(o.FailedRestore),
		SettingsError: o.SettingsError, Snapshots: make([]snapshotOut, 0, len(o.Snapshots)),
	}
	for _, sn := range o.Snapshots {
		out.Snapshots = append(out.Snapshots, snapshotFrom(sn))
	}
	if t := o.Termination; t != nil {
		out.Termination = &terminationOut{TerminatedAt: timePtr(t.TerminatedAt), BackupsPurgeAfter: timePtr(t.PurgeAfter),
			PurgeError: t.PurgeError, PurgeAttempts: t.Attempts}
		if t.PurgeError != "" && t.PurgeAfter != nil {
			out.Termination.PurgeRetryAt = timePtr(t.NextAt)
		}
	}
	for _, b := range o.Backups {
		out.Backups = append(out.Backups, adminBackupOut{backupOut: backupFrom(b), Volid: b.Volid})
	}
	byJob := map[int64]*emailOut{}
	for _, e := range o.Emails {
		eo := emailOut{
			ID: e.ID, JobID: int64(e.JobID), Kind: e.Kind, State: emailState(e.Status), Attempts: e.Attempts,
			LastError: e.Error, Recipient: e.Recipient, CreatedAt: rfc3339(e.CreatedAt), SentAt: timePtr(e.SentAt),
		}
		out.Emails = append(out.Emails, eo)
		if _, ok := byJob[eo.JobID]; !ok {
			byJob[eo.JobID] = &out.Emails[len(out.Emails)-1]
		}
	}
	for _, j := range o.Jobs {
		aj := adminJobOut{jobOut: jobFrom(j)}
		if e, ok := byJob[int64(j.ID)]; ok {
			c := *e
			aj.Email = &c
		}
		out.Jobs = append(out.Jobs, aj)
	}
	return out
}

// emailState names the outbox's states for the panel: pending is "queued".
func emailState(s store.EmailStatus) string {
	if s == store.EmailPending {
		return "queued"
	}
	return string(s)
}

func backupFrom(b pvekeep.Backup) backupOut {
	return backupOut{
		ID: int64(b.ID), CreatedAt: rfc3339(b.CreatedAt), Note: b.Note, SizeBytes: b.SizeBytes,
		Status: string(b.Status), Origin: string(b.Origin), Protected: b.Protected,
	}
}

// scheduleOut is schedule.get/set's `schedule` and backups.list's.
type scheduleOut struct {
	Timezone string           `json:"timezone"`
	Days     []scheduleDayOut `json:"days"`
	// NextRunAt is the next scheduled backup, null when no day is enabled.
	NextRunAt *string `json:"next_run_at"`
	// Window is the product's schedule_window: "" = the customer picks
	// the times; set, the days' times are the system's pick inside it.
	Window string `json:"window"`
	// SkippedReason says why the latest scheduled run was skipped
	// (all_protected, not_active, disabled, superseded), "" when it was
	// not (a run done with a reason made its backup: see last_run).
	SkippedReason string          `json:"skipped_reason"`
	LastRun       *scheduleRunOut `json:"last_run"`
}

type scheduleDayOut struct {
	Day     string `json:"day"`
	Enabled bool   `json:"enabled"`
	Time    string `json:"time"`
}

// scheduleRunOut is the latest scheduled run: state waiting, running,
// rotating, done, failed or skipped; attempts of max_attempts; error is
// the last failed attempt's message (shown while it is retried, too);
// reason: waiting or rotating → why it waits (locked, rotating, "" = its
// node's turn); skipped → why; done → what could not be rotated away
// (all_protected, rotate_failed: the backup was made, above the quota).
type scheduleRunOut struct {
	Date        string `json:"date"`
	State       string `json:"state"`
	Attempts    int    `json:"attempts"`
	MaxAttempts int    `json:"max_attempts"`
	Reason      string `json:"reason"`
	Error       string `json:"error"`
	DueAt       string `json:"due_at"`
}

func scheduleFrom(s service.Schedule) scheduleOut {
	out := scheduleOut{Timezone: s.Timezone, Days: make([]scheduleDayOut, 0, len(s.Days)), NextRunAt: timePtr(s.NextRunAt),
		Window: s.Window, SkippedReason: s.SkippedReason}
	for _, d := range s.Days {
		out.Days = append(out.Days, scheduleDayOut{Day: d.Day, Enabled: d.Enabled, Time: d.Time})
	}
	if r := s.LastRun; r != nil {
		out.LastRun = &scheduleRunOut{Date: r.Date, State: r.State, Attempts: r.Attempts, MaxAttempts: r.MaxAttempts,
			Reason: r.Reason, Error: r.Error, DueAt: rfc3339(r.DueAt)}
	}
	return out
}

func timePtr(t *time.Time) *string {
	if t == nil || t.IsZero() {
		return nil
	}
	s := rfc3339(*t)
	return &s
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// snapshotOut is one of the plugin's snapshots. expires_at is null for a
// snapshot kept until removed; the page counts down to it.
type snapshotOut struct {
	Name        string  `json:"name"`
	Description string  `json:"description"`
	CreatedAt   string  `json:"created_at"`
	ExpiresAt   *string `json:"expires_at"`
	VMState     bool    `json:"vmstate"`
	Status      string  `json:"status"`
	// Foreign: made outside the plugin (the Proxmox UI); admins only,
	// never counted, never offered to the client.
	Foreign bool `json:"foreign"`
	// LastError and Attempts: the failed removals so far (an expiry the
	// cron keeps retrying); "" and 0 when none failed.
	LastError string `json:"last_error"`
	Attempts  int    `json:"attempts"`
	// RemovedAt: for removed_by_restore items.
	RemovedAt *string `json:"removed_at,omitempty"`
}

func snapshotFrom(sn pvekeep.Snapshot) snapshotOut {
	return snapshotOut{
		Name: sn.Name, Description: sn.Description, CreatedAt: rfc3339(sn.CreatedAt), ExpiresAt: timePtr(sn.ExpiresAt),
		VMState: sn.VMState, Status: string(sn.Status), LastError: sn.LastError, Attempts: sn.Attempts,
		RemovedAt: timePtr(sn.RemovedAt),
	}
}

// snapshotListOut is snapshots.list's result (DESIGN §3: quota,
// lifetime_s, items), with the service's status so that one call is the
// whole snapshots section.
type snapshotListOut struct {
	// Status is absent in backups.list's snapshots section: that answer
	// has its own.
	Status *statusOut `json:"status,omitempty"`
	Quota  usageOut   `json:"quota"`
	// LifetimeS is the product's snapshot lifetime in seconds; 0 = kept.
	LifetimeS    int64         `json:"lifetime_s"`
	LifetimeDays int           `json:"lifetime_days"`
	RAMAllowed   bool          `json:"ram_allowed"`
	Items        []snapshotOut `json:"items"`
	ActiveJob    *jobOut       `json:"active_job"`
	// FailedJob is the newest job when it is a snapshot job that failed.
	FailedJob *jobOut `json:"failed_job"`
	// RemovedByRestore are the snapshots the latest restore or reinstall
	// destroyed in Proxmox (the page says so).
	RemovedByRestore []snapshotOut `json:"removed_by_restore"`
	// Foreign: admins only (absent for clients).
	Foreign      []snapshotOut `json:"foreign,omitempty"`
	ForeignError *problemOut   `json:"foreign_error,omitempty"`
}

func foreignFrom(list []service.ForeignSnapshot) []snapshotOut {
	out := make([]snapshotOut, 0, len(list))
	for _, f := range list {
		out = append(out, snapshotOut{Name: f.Name, Description: f.Description,
			CreatedAt: rfc3339(f.CreatedAt), VMState: f.VMState, Status: string(pvekeep.SnapshotAvailable), Foreign: true})
	}
	return out
}

func snapshotListFrom(l service.SnapshotList) snapshotListOut {
	out := snapshotListOut{
		Quota:     usageOut{Used: l.Quota.Used, Max: l.Quota.Max},
		LifetimeS: int64(l.LifetimeDays) * 86400, LifetimeDays: l.LifetimeDays, RAMAllowed: l.RAMAllowed,
		Items: make([]snapshotOut, 0, len(l.Items)), ActiveJob: jobPtr(l.ActiveJob), FailedJob: jobPtr(l.FailedJob),
		RemovedByRestore: make([]snapshotOut, 0, len(l.RemovedByRestore)),
	}
	for _, sn := range l.Items {
		out.Items = append(out.Items, snapshotFrom(sn))
	}
	for _, sn := range l.RemovedByRestore {
		out.RemovedByRestore = append(out.RemovedByRestore, snapshotFrom(sn))
	}
	if l.Foreign != nil {
		out.Foreign = foreignFrom(l.Foreign)
	}
	if e := l.ForeignError; e != nil {
		out.ForeignError = &problemOut{Reason: string(e.Reason), Message: e.Message}
	}
	return out
}
