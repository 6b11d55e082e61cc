package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// RunState is the life of one scheduled run (mod_pvekeep_schedule_runs).
type RunState string

const (
	RunWaiting  RunState = "waiting"  // due; dispatched when its node has room
	RunRunning  RunState = "running"  // its backup.create job is in flight
	RunRotating RunState = "rotating" // succeeded above the quota; more of the oldest unprotected backups are still to be removed
	RunDone     RunState = "done"
	RunFailed   RunState = "failed"  // attempts spent or its day over
	RunSkipped  RunState = "skipped" // Reason says why
)

// Reasons a run waits or was skipped (mod_pvekeep_schedule_runs.reason):
// stable words the panel translates.
const (
	ReasonAllProtected = "all_protected" // skipped: too few unprotected backups to make room; done: taken, but every other backup is kept, so the service is above its quota
	ReasonRotateFailed = "rotate_failed" // done: taken, but the removal of an older backup failed, so the service is above its quota
	ReasonLocked       = "locked"        // the service had another job (or Proxmox a lock on the VM); tried again later
	ReasonRotating     = "rotating"      // a backup removal is in flight; waited for, then tried again
	ReasonDisabled     = "disabled"      // the product's backups quota is 0 or its storage unset
	ReasonNotActive    = "not_active"    // the service is not Active
	ReasonSuperseded   = "superseded"    // still waiting when a later date's run came due: one backup, not two
)

// RunKey names a run: a service and the local date it belongs to.
type RunKey struct {
	ServiceID pvekeep.ServiceID
	Date      string // YYYY-MM-DD in the schedule's zone
}

// Run is one row of mod_pvekeep_schedule_runs.
type Run struct {
	ServiceID       pvekeep.ServiceID `db:"service_id"`
	Date            string            `db:"local_date"`
	ServerID        int64             `db:"server_id"`
	DueAt           time.Time         `db:"due_at"`
	State           RunState          `db:"state"`
	Attempts        int               `db:"attempts"`
	MaxAttempts     int               `db:"max_attempts"`
	JobID           pvekeep.JobID     `db:"job_id"`
	RotatedBackupID pvekeep.BackupID  `db:"rotated_backup_id"`
	NextTryAt       time.Time         `db:"next_try_at"`
	Reason          string            `db:"reason"`
	Error           string            `db:"error"`
	CreatedAt       time.Time         `db:"created_at"`
	UpdatedAt       time.Time         `db:"updated_at"`
}

// Key is the run's key.
func (r Run) Key() RunKey { return RunKey{ServiceID: r.ServiceID, Date: r.Date} }

// runColumnsOf are the columns of Run, of table alias t ("" for none).
func runColumnsOf(t string) string {
	if t != "" {
		t += "."
	}
	return strings.ReplaceAll(`{t}service_id, DATE_FORMAT({t}local_date, '%Y-%m-%d') AS local_date, {t}server_id, {t}due_at, {t}state,
{t}attempts, {t}max_attempts, COALESCE({t}job_id, 0) AS job_id, COALESCE({t}rotated_backup_id, 0) AS rotated_backup_id,
{t}next_try_at, {t}reason, COALESCE({t}error, '') AS error, {t}created_at, {t}updated_at`, "{t}", t)
}

var runColumns = runColumnsOf("")

// DueSchedule is a schedule whose next run has come, with what planning
// needs of its service: its panel server, status and the product's More
// Settings (configoption24: schedule_window, schedule_retries).
type DueSchedule struct {
	Schedule
	ServerID      int64
	ServiceStatus string
	More          string
}

// DueSchedulesOn lists the schedules of services on the given panel
// servers whose next run is at or before now, the longest overdue first,
// at most limit (0 = 5000): one indexed range scan, so an idle tick costs
// one query however large the fleet.
func (s *Store) DueSchedulesOn(ctx context.Context, serverIDs []int64, now time.Time, limit int) ([]DueSchedule, error) {
	if len(serverIDs) == 0 {
		return nil, nil
	}
	if limit <= 0 {
		limit = 5000
	}
	cols := make([]string, 0, 20)
	for _, c := range strings.Split(strings.ReplaceAll(scheduleColumns, "\n", " "), ",") {
		cols = append(cols, "sc."+strings.TrimSpace(c))
	}
	q, args, err := sqlx.In(`SELECT `+strings.Join(cols, ", ")+`, h.server, h.domainstatus, COALESCE(p.configoption24, '')
FROM mod_pvekeep_schedules sc
JOIN tblhosting h ON h.id = sc.service_id
LEFT JOIN tblproducts p ON p.id = h.packageid
WHERE sc.next_run_at IS NOT NULL AND sc.next_run_at <= ? AND h.server IN (?)
ORDER BY sc.next_run_at, sc.service_id LIMIT ?`, dbTime(now), serverIDs, limit)
	if err != nil {
		return nil, fmt.Errorf("list due schedules: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list due schedules: %w", classify(err))
	}
	defer rows.Close()
	var out []DueSchedule
	for rows.Next() {
		var d DueSchedule
		dest := []any{&d.ServiceID, &d.Timezone}
		for i := range d.Days {
			dest = append(dest, &d.Days[i].Enabled, &d.Days[i].Time)
		}
		dest = append(dest, &d.NextRunAt, &d.LastRunAt, &d.CreatedAt, &d.UpdatedAt, &d.ServerID, &d.ServiceStatus, &d.More)
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("list due schedules: %w", classify(err))
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list due schedules: %w", classify(err))
	}
	return out, nil
}

// PlannedRun is a run a tick found due.
type PlannedRun struct {
	RunKey
	ServerID    int64
	DueAt       time.Time
	MaxAttempts int
	// State is RunWaiting (what a tick plans; "" means it too), or
	// RunSkipped with Reason for a run recorded as skipped from the start.
	// A tick plans no run at all for a service neither Active nor
	// Suspended: its schedule only moves on (Service.planSchedules); one
	// that stops being Active after its run was planned is skipped,
	// not_active, when the run is dispatched.
	State  RunState
	Reason string
}

// Advance moves a schedule's next run from Expect to Next (nil: nothing
// enabled), only if nobody changed it meanwhile.
type Advance struct {
	ServiceID pvekeep.ServiceID
	Expect    time.Time
	Next      *time.Time
}

// planBatch keeps a statement's placeholders well under MySQL's 65,535.
const planBatch = 1000

// PlanRuns records due runs and moves their schedules on, a thousand
// services a statement. A run already recorded for its service and date
// is left as it is (INSERT IGNORE on the primary key): of any number of
// ticks planning the same due schedule at once, exactly one run exists
// afterwards. It returns how many runs were new.
func (s *Store) PlanRuns(ctx context.Context, runs []PlannedRun, adv []Advance, now time.Time) (int, error) {
	n := 0
	for start := 0; start < len(runs); start += planBatch {
		part := runs[start:min(start+planBatch, len(runs))]
		var b strings.Builder
		b.WriteString(`INSERT IGNORE INTO mod_pvekeep_schedule_runs
(service_id, local_date, server_id, due_at, state, max_attempts, next_try_at, reason, created_at, updated_at) VALUES `)
		args := make([]any, 0, 10*len(part))
		for i, r := range part {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
			state := cmpOr(r.State, RunWaiting)
			args = append(args, r.ServiceID, r.Date, r.ServerID, dbTime(r.DueAt), state, max(r.MaxAttempts, 1),
				dbTime(now), r.Reason, dbTime(now), dbTime(now))
		}
		res, err := s.db.ExecContext(ctx, b.String(), args...)
		if err != nil {
			return n, fmt.Errorf("plan %d scheduled runs: %w", len(part), classify(err))
		}
		got, _ := res.RowsAffected()
		n += int(got)
		// A run still waiting for its node when the next date's comes due
		// gives way to it: the service gets one backup now, not one a day
		// late and another behind it.
		ids := make([]any, 0, len(part)+2)
		ids = append(ids, ReasonSuperseded, dbTime(now))
		for _, r := range part {
			ids = append(ids, r.ServiceID)
		}
		if _, err := s.db.ExecContext(ctx, `UPDATE mod_pvekeep_schedule_runs o
JOIN mod_pvekeep_schedule_runs n ON n.service_id = o.service_id AND n.local_date > o.local_date
SET o.state = 'skipped', o.reason = ?, o.updated_at = ?
WHERE o.state = 'waiting' AND o.service_id IN (`+placeholders(len(part))+`)`, ids...); err != nil {
			return n, fmt.Errorf("supersede waiting runs: %w", classify(err))
		}
	}
	for start := 0; start < len(adv); start += planBatch {
		part := adv[start:min(start+planBatch, len(adv))]
		// One UPDATE for the batch; each row's guard is its own expected
		// next run, so a schedule the customer changed meanwhile keeps the
		// new one.
		var next, expect, ids strings.Builder
		var nextArgs, expectArgs, idArgs []any
		for i, a := range part {
			next.WriteString(" WHEN ? THEN ?")
			nextArgs = append(nextArgs, a.ServiceID, dbTimePtr(a.Next))
			expect.WriteString(" WHEN ? THEN ?")
			expectArgs = append(expectArgs, a.ServiceID, dbTime(a.Expect))
			if i > 0 {
				ids.WriteString(", ")
			}
			ids.WriteString("?")
			idArgs = append(idArgs, a.ServiceID)
		}
		args := append(append(append(append([]any{}, nextArgs...), dbTime(now), dbTime(now)), idArgs...), expectArgs...)
		_, err := s.db.ExecContext(ctx, `UPDATE mod_pvekeep_schedules
SET next_run_at = CASE service_id`+next.String()+` END, last_run_at = ?, updated_at = ?
WHERE service_id IN (`+ids.String()+`) AND next_run_at = CASE service_id`+expect.String()+` END`, args...)
		if err != nil {
			return n, fmt.Errorf("advance %d schedules: %w", len(part), classify(err))
		}
	}
	return n, nil
}

// NodeKey names a Proxmox node of a panel server.
type NodeKey struct {
	ServerID int64
	Node     string
}

// NodeBackupLoad counts the active backup.create jobs (queued or running,
// manual ones too: vzdump's lock is the node's, whoever asked) per node of
// the given servers, in one query.
func (s *Store) NodeBackupLoad(ctx context.Context, serverIDs []int64) (map[NodeKey]int, error) {
	out := map[NodeKey]int{}
	if len(serverIDs) == 0 {
		return out, nil
	}
	q, args, err := sqlx.In(`SELECT server_id, node, COUNT(*) FROM mod_pvekeep_jobs
WHERE state IN `+activeStates+` AND kind = ? AND server_id IN (?) GROUP BY server_id, node`, pvekeep.KindBackupCreate, serverIDs)
	if err != nil {
		return nil, fmt.Errorf("count backups per node: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("count backups per node: %w", classify(err))
	}
	defer rows.Close()
	for rows.Next() {
		var k NodeKey
		var n int
		if err := rows.Scan(&k.ServerID, &k.Node, &n); err != nil {
			return nil, fmt.Errorf("count backups per node: %w", classify(err))
		}
		out[k] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count backups per node: %w", classify(err))
	}
	return out, nil
}

// WaitingRun is a run waiting for its node, with the node its VM was last
// seen on ("" when no tick has seen it yet), Proxmox's lock on it then and
// the schedule's zone (its local date ends there).
type WaitingRun struct {
	Run
	Node     string       `db:"node"`
	VMID     pvekeep.VMID `db:"vmid"`
	PVELock  string       `db:"pve_lock"`
	Timezone string       `db:"timezone"`
}

// WaitingRuns lists the runs of the given servers that may be dispatched
// at now, at most perNode per node, each node's in its fair order: first
// attempts before retries, then the oldest due first, then by service. One
// query (a window function) for the whole fleet.
func (s *Store) WaitingRuns(ctx context.Context, serverIDs []int64, now time.Time, perNode int) ([]WaitingRun, error) {
	if len(serverIDs) == 0 || perNode <= 0 {
		return nil, nil
	}
	q, args, err := sqlx.In(`SELECT `+runColumns+`, node, vmid, pve_lock, timezone FROM (
  SELECT r.*, COALESCE(f.node, '') AS node, COALESCE(f.vmid, 0) AS vmid, COALESCE(f.pve_lock, '') AS pve_lock,
    COALESCE(sc.timezone, 'UTC') AS timezone,
    ROW_NUMBER() OVER (PARTITION BY r.server_id, COALESCE(f.node, '') ORDER BY r.attempts, r.due_at, r.service_id) AS pos
  FROM mod_pvekeep_schedule_runs r
  LEFT JOIN mod_pvekeep_vm_facts f ON f.service_id = r.service_id
  LEFT JOIN mod_pvekeep_schedules sc ON sc.service_id = r.service_id
  WHERE r.state = 'waiting' AND r.next_try_at <= ? AND r.server_id IN (?)
) w WHERE pos <= ? ORDER BY attempts, due_at, service_id`, dbTime(now), serverIDs, perNode)
	if err != nil {
		return nil, fmt.Errorf("list waiting runs: %w", err)
	}
	out := []WaitingRun{}
	if err := s.db.SelectContext(ctx, &out, q, args...); err != nil {
		return nil, fmt.Errorf("list waiting runs: %w", classify(err))
	}
	return out, nil
}

// ErrRunTaken: the run is no longer waiting (another tick dispatched,
// skipped or finished it).
var ErrRunTaken = errors.New("scheduled run already taken")

// RunOutcome says what EnqueueScheduledBackup did with a waiting run.
type RunOutcome int

const (
	RunDispatched RunOutcome = iota // a backup.create job now runs it
	RunBusy                         // left waiting (Reason says why)
	RunSkippedNow                   // skipped for good (Reason says why)
	RunFailedNow                    // ended failed: a retry whose local date is over (the service's dispatcher decides that)
)

// NewScheduledBackup asks for the backup of a waiting run. Create is the
// job and backup to record (Origin scheduled); Quota is what the service
// bought: at a full quota (or above it, the quota having been lowered) the
// run still goes ahead when enough unprotected backups exist for rotation
// to bring the service back within it after the new one succeeded.
type NewScheduledBackup struct {
	Run    RunKey
	Create NewBackupCreate
	Quota  int
	// RetryAfter is how long a busy run rests before it is tried again.
	RetryAfter time.Duration
}

// EnqueueScheduledBackup decides a waiting run in one transaction that
// holds the service's lock and the run's row: the run is claimed (no other
// tick can dispatch it), the quota checked atomically, and the job recorded
// together. Outcomes: RunDispatched with the job and backup; RunBusy with a
// reason (the service has another job: locked; a backup removal in
// flight: rotating), the run waiting RetryAfter; RunSkippedNow with
// all_protected (fewer unprotected backups than must go to make room: the
// used ones + 1 − the quota). ErrRunTaken when the run is not waiting any
// more.
func (s *Store) EnqueueScheduledBackup(ctx context.Context, r NewScheduledBackup) (RunOutcome, string, pvekeep.Job, pvekeep.Backup, error) {
	r.Create.Job.Kind = pvekeep.KindBackupCreate
	if err := validateNewJob(r.Create.Job); err != nil {
		return 0, "", pvekeep.Job{}, pvekeep.Backup{}, fmt.Errorf("dispatch scheduled run %v: %w", r.Run, err)
	}
	now := r.Create.Job.CreatedAt
	if r.Create.Backup.CreatedAt.IsZero() {
		r.Create.Backup.CreatedAt = now
	}
	var (
		outcome RunOutcome
		reason  string
		job     pvekeep.Job
		backup  pvekeep.Backup
	)
	err := s.serviceTx(ctx, r.Run.ServiceID, now, func(tx *sqlx.Tx) error {
		outcome, reason, job, backup = 0, "", pvekeep.Job{}, pvekeep.Backup{}
		var state RunState
		err := tx.GetContext(ctx, &state, `SELECT state FROM mod_pvekeep_schedule_runs
WHERE service_id = ? AND local_date = ? FOR UPDATE`, r.Run.ServiceID, r.Run.Date)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && state != RunWaiting) {
			return ErrRunTaken
		}
		if err != nil {
			return err
		}
		wait := func(why string) error {
			outcome, reason = RunBusy, why
			_, err := tx.ExecContext(ctx, `UPDATE mod_pvekeep_schedule_runs SET reason = ?, next_try_at = ?, updated_at = ?
WHERE service_id = ? AND local_date = ?`, why, dbTime(now.Add(r.RetryAfter)), dbTime(now), r.Run.ServiceID, r.Run.Date)
			return err
		}
		if err := refuseActive(ctx, tx, r.Run.ServiceID); err != nil {
			var aj *ActiveJobError
			if errors.As(err, &aj) {
				if aj.Job.Kind == pvekeep.KindBackupRemove {
					// A removal in flight (rotation's, or the client's)
					// may be what makes room: wait for it, never double it.
					return wait(ReasonRotating)
				}
				return wait(ReasonLocked)
			}
			return err
		}
		var n struct {
			Used        int `db:"used"`
			Removing    int `db:"removing"`
			Unprotected int `db:"unprotected"`
		}
		if err := tx.GetContext(ctx, &n, `SELECT
  COUNT(*) AS used,
  COALESCE(SUM(status = 'removing'), 0) AS removing,
  COALESCE(SUM(status = 'available' AND protected = 0), 0) AS unprotected
FROM mod_pvekeep_backups WHERE service_id = ? AND status IN ('creating','available','removing')`, r.Run.ServiceID); err != nil {
			return err
		}
		// The new backup needs room: this many unprotected backups must go
		// once it has succeeded (more than one when the quota was lowered,
		// or when a backup was kept while the last run was being made). A
		// backup already being removed is room on its way.
		need := n.Used - n.Removing + 1 - r.Quota
		if need > n.Unprotected {
			outcome, reason = RunSkippedNow, ReasonAllProtected
			_, err := tx.ExecContext(ctx, `UPDATE mod_pvekeep_schedule_runs SET state = 'skipped', reason = ?, updated_at = ?
WHERE service_id = ? AND local_date = ?`, ReasonAllProtected, dbTime(now), r.Run.ServiceID, r.Run.Date)
			return err
		}
		c := r.Create
		c.Max = max(r.Quota, n.Used+1) // for the record: the run decided its room here
		job, backup, err = insertBackupCreate(ctx, tx, c)
		if err != nil {
			return err
		}
		outcome = RunDispatched
		_, err = tx.ExecContext(ctx, `UPDATE mod_pvekeep_schedule_runs
SET state = 'running', job_id = ?, attempts = attempts + 1, reason = '', updated_at = ?
WHERE service_id = ? AND local_date = ?`, job.ID, dbTime(now), r.Run.ServiceID, r.Run.Date)
		return err
	})
	if err != nil {
		return 0, "", pvekeep.Job{}, pvekeep.Backup{}, fmt.Errorf("dispatch scheduled run of service %d on %s: %w", r.Run.ServiceID, r.Run.Date, err)
	}
	return outcome, reason, job, backup, nil
}

// SettledRun is a running or rotating run whose job has ended, with the
// job's end and the schedule's zone.
type SettledRun struct {
	Run
	JobState pvekeep.JobState `db:"job_state"`
	JobError string           `db:"job_error"`
	BackupID pvekeep.BackupID `db:"backup_id"`
	Timezone string           `db:"timezone"`
}

// SettledRuns lists, for the given servers, the runs whose job has ended
// (and the rotating ones), at most limit (0 = 1000): one query.
func (s *Store) SettledRuns(ctx context.Context, serverIDs []int64, limit int) ([]SettledRun, error) {
	if len(serverIDs) == 0 {
		return nil, nil
	}
	if limit <= 0 {
		limit = 1000
	}
	q, args, err := sqlx.In(`SELECT `+runColumnsOf("r")+`,
  j.state AS job_state, j.error AS job_error, COALESCE(j.backup_id, 0) AS backup_id, COALESCE(sc.timezone, 'UTC') AS timezone
FROM mod_pvekeep_schedule_runs r
JOIN mod_pvekeep_jobs j ON j.id = r.job_id
LEFT JOIN mod_pvekeep_schedules sc ON sc.service_id = r.service_id
WHERE r.server_id IN (?) AND (
  (r.state = 'running' AND j.state IN ('succeeded','failed','cancelled')) OR r.state = 'rotating')
ORDER BY r.updated_at LIMIT ?`, serverIDs, limit)
	if err != nil {
		return nil, fmt.Errorf("list settled runs: %w", err)
	}
	out := []SettledRun{}
	if err := s.db.SelectContext(ctx, &out, q, args...); err != nil {
		return nil, fmt.Errorf("list settled runs: %w", classify(err))
	}
	return out, nil
}

// RunChange moves a run from one of From to To (with Reason, Error and,
// for a retry, NextTryAt), if it is still in one of From. An empty Error
// keeps the last attempt's.
type RunChange struct {
	Key       RunKey
	From      []RunState
	To        RunState
	Reason    string
	Error     string
	NextTryAt *time.Time
	Now       time.Time
}

// ChangeRun applies c; false when the run was not in From (another tick
// moved it first).
func (s *Store) ChangeRun(ctx context.Context, c RunChange) (bool, error) {
	if len(c.From) == 0 || c.To == "" || c.Now.IsZero() {
		return false, fmt.Errorf("change run %v: from, to and now are required", c.Key)
	}
	q, args, err := sqlx.In(`UPDATE mod_pvekeep_schedule_runs
SET state = ?, reason = ?, error = COALESCE(?, error), next_try_at = COALESCE(?, next_try_at), updated_at = ?
WHERE service_id = ? AND local_date = ? AND state IN (?)`,
		c.To, c.Reason, nullString(cut(c.Error, 1000)), dbTimePtr(c.NextTryAt), dbTime(c.Now), c.Key.ServiceID, c.Key.Date, c.From)
	if err != nil {
		return false, fmt.Errorf("change run %v: %w", c.Key, err)
	}
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return false, fmt.Errorf("change run %v: %w", c.Key, classify(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("change run %v: %w", c.Key, classify(err))
	}
	return n == 1, nil
}

// Rotation asks RotateAfterRun to bring a service back to its quota after
// a scheduled run's backup succeeded. Job is the backup.remove job to
// record (Kind, ServiceID, ServerID, actor, CreatedAt); Keep is the run's
// new backup, never the one removed.
type Rotation struct {
	Run   RunKey
	Quota int
	Keep  pvekeep.BackupID
	Job   pvekeep.Job
}

// RotateAfterRun brings a service whose scheduled run succeeded back
// within its quota, one removal at a time (a service runs one job at a
// time), in one transaction holding the service's lock and the run's row.
// While its backups, less those already being removed, exceed the quota,
// the oldest available backup that is not protected (never Keep) is marked
// removing and a backup.remove job recorded for it; the run stays rotating
// (reason rotating) while more must go, and is done once the removals
// queued bring the service within its quota. A removal in flight is waited
// for (locked true, reason rotating), another job likewise (reason
// locked). A protected backup is never touched: with nothing unprotected
// left, the run is done with reason all_protected, the quota exceeded; and
// when the removal this run queued last has failed (its backup is
// available again), the run is done with reason rotate_failed rather than
// try it on every tick. ErrRunTaken when the run is neither running nor
// rotating.
func (s *Store) RotateAfterRun(ctx context.Context, r Rotation) (removed pvekeep.BackupID, job pvekeep.Job, locked bool, err error) {
	r.Job.Kind = pvekeep.KindBackupRemove
	if err := validateNewJob(r.Job); err != nil {
		return 0, pvekeep.Job{}, false, fmt.Errorf("rotate after run %v: %w", r.Run, err)
	}
	now := r.Job.CreatedAt
	err = s.serviceTx(ctx, r.Run.ServiceID, now, func(tx *sqlx.Tx) error {
		removed, job, locked = 0, pvekeep.Job{}, false
		var run struct {
			State   RunState         `db:"state"`
			Rotated pvekeep.BackupID `db:"rotated"`
		}
		err := tx.GetContext(ctx, &run, `SELECT state, COALESCE(rotated_backup_id, 0) AS rotated FROM mod_pvekeep_schedule_runs
WHERE service_id = ? AND local_date = ? FOR UPDATE`, r.Run.ServiceID, r.Run.Date)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && run.State != RunRunning && run.State != RunRotating) {
			return ErrRunTaken
		}
		if err != nil {
			return err
		}
		set := func(to RunState, reason string) error {
			_, err := tx.ExecContext(ctx, `UPDATE mod_pvekeep_schedule_runs
SET state = ?, reason = ?, rotated_backup_id = COALESCE(?, rotated_backup_id), updated_at = ?
WHERE service_id = ? AND local_date = ?`, to, reason, nullID(int64(removed)), dbTime(now), r.Run.ServiceID, r.Run.Date)
			return err
		}
		var n struct {
			Used     int `db:"used"`
			Removing int `db:"removing"`
		}
		if err := tx.GetContext(ctx, &n, `SELECT COUNT(*) AS used, COALESCE(SUM(status = 'removing'), 0) AS removing
FROM mod_pvekeep_backups WHERE service_id = ? AND status IN ('creating','available','removing')`, r.Run.ServiceID); err != nil {
			return err
		}
		held := n.Used - n.Removing // what stays once the removals in flight are through
		if held <= r.Quota {
			return set(RunDone, "")
		}
		if run.Rotated != 0 {
			var st pvekeep.BackupStatus
			if err := tx.GetContext(ctx, &st, `SELECT status FROM mod_pvekeep_backups WHERE id = ?`, run.Rotated); err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if st == pvekeep.BackupAvailable {
				return set(RunDone, ReasonRotateFailed)
			}
		}
		if err := refuseActive(ctx, tx, r.Run.ServiceID); err != nil {
			var aj *ActiveJobError
			if errors.As(err, &aj) {
				locked = true
				if aj.Job.Kind == pvekeep.KindBackupRemove {
					return set(RunRotating, ReasonRotating)
				}
				return set(RunRotating, ReasonLocked)
			}
			return err
		}
		b, err := getBackup(ctx, tx, `service_id = ? AND status = 'available' AND protected = 0 AND id <> ?
ORDER BY created_at, id LIMIT 1 FOR UPDATE`, r.Run.ServiceID, r.Keep)
		if errors.Is(err, ErrNotFound) {
			return set(RunDone, ReasonAllProtected)
		}
		if err != nil {
			return err
		}
		j := r.Job
		j.BackupID, j.VMID, j.Node = b.ID, cmpOr(j.VMID, b.VMID), cmpOr(j.Node, b.Node)
		id, err := insertJob(ctx, tx, j)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE mod_pvekeep_backups SET status = 'removing' WHERE id = ?", b.ID); err != nil {
			return err
		}
		if job, err = getJob(ctx, tx, "id = ?", id); err != nil {
			return err
		}
		removed = b.ID
		if held-1 <= r.Quota {
			return set(RunDone, "")
		}
		return set(RunRotating, ReasonRotating)
	})
	if err != nil {
		return 0, pvekeep.Job{}, false, fmt.Errorf("rotate backups of service %d after its run of %s: %w", r.Run.ServiceID, r.Run.Date, err)
	}
	return removed, job, locked, nil
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// NodeAdmission asks AdmitToNode to let a backup job submit its vzdump.
type NodeAdmission struct {
	ServerID int64
	Node     string
	Limit    int
	// WaitStep is the job's step while refused, GoStep once admitted.
	WaitStep, GoStep string
	Now              time.Time
}

// AdmitToNode is the per-node limit on backups: the backup job l holds may
// submit its vzdump on a.Node only while fewer than a.Limit other active
// backup jobs of the same panel server hold that node (admitted, or
// already following a task). The count and the admission happen under the
// node's gate row lock, so two processes never both take the last slot.
// Admitted, the job records admitted_at, node and GoStep, and keeps its
// slot until it ends; refused, its step becomes WaitStep, for the page.
func (s *Store) AdmitToNode(ctx context.Context, l pvekeep.Lease, a NodeAdmission) (bool, error) {
	if a.Node == "" || a.Limit <= 0 || a.Now.IsZero() {
		return false, fmt.Errorf("admit job %d to node %q: a node, a positive limit and now are required", l.JobID, a.Node)
	}
	// Outside the transaction, as serviceTx does: creating the row and
	// locking it in one transaction invites insert-intention deadlocks.
	if _, err := s.db.ExecContext(ctx, `INSERT IGNORE INTO mod_pvekeep_node_gates (server_id, node) VALUES (?, ?)`, a.ServerID, a.Node); err != nil {
		return false, fmt.Errorf("admit job %d to node %s: %w", l.JobID, a.Node, classify(err))
	}
	admitted := false
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		admitted = false
		var got int64
		if err := tx.GetContext(ctx, &got, `SELECT server_id FROM mod_pvekeep_node_gates WHERE server_id = ? AND node = ? FOR UPDATE`, a.ServerID, a.Node); err != nil {
			return err
		}
		var held int
		if err := tx.GetContext(ctx, &held, `SELECT COUNT(*) FROM mod_pvekeep_jobs
WHERE server_id = ? AND node = ? AND kind = ? AND state IN `+activeStates+` AND id <> ?
  AND (admitted_at IS NOT NULL OR upid <> '')`, a.ServerID, a.Node, pvekeep.KindBackupCreate, l.JobID); err != nil {
			return err
		}
		now := dbTime(a.Now)
		var (
			res sql.Result
			err error
		)
		if held >= a.Limit {
			res, err = tx.ExecContext(ctx, `UPDATE mod_pvekeep_jobs SET step = ?, node = ?, updated_at = ? WHERE `+leaseGuard,
				append([]any{a.WaitStep, a.Node, now}, leaseArgs(l)...)...)
		} else {
			admitted = true
			res, err = tx.ExecContext(ctx, `UPDATE mod_pvekeep_jobs SET admitted_at = ?, step = ?, node = ?, updated_at = ? WHERE `+leaseGuard,
				append([]any{now, a.GoStep, a.Node, now}, leaseArgs(l)...)...)
		}
		if err != nil {
			return err
		}
		return oneRow(res, "admit job", l)
	})
	if err != nil {
		return false, fmt.Errorf("admit job %d to node %s: %w", l.JobID, a.Node, err)
	}
	return admitted, nil
}

// SetBackupProtected records Proxmox's protected flag of one of the
// service's backups. ErrNotFound for another service's backup.
func (s *Store) SetBackupProtected(ctx context.Context, id pvekeep.ServiceID, backupID pvekeep.BackupID, protected bool) error {
	res, err := s.db.ExecContext(ctx, `UPDATE mod_pvekeep_backups SET protected = ? WHERE id = ? AND service_id = ?`, protected, backupID, id)
	if err != nil {
		return fmt.Errorf("protect backup %d of service %d: %w", backupID, id, classify(err))
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("protect backup %d of service %d: %w", backupID, id, classify(err))
	} else if n == 0 {
		// Also 0 when the flag already had that value: tell those apart.
		if _, err := getBackup(ctx, s.db, "id = ? AND service_id = ?", backupID, id); err != nil {
			return fmt.Errorf("protect backup %d of service %d: %w", backupID, id, classify(err))
		}
	}
	return nil
}

// ScheduleView reads the service's schedule and its latest run in one
// statement: what a page view (backups.list) shows of scheduled backups.
// hasSchedule and hasRun say which exist.
func (s *Store) ScheduleView(ctx context.Context, id pvekeep.ServiceID) (sc Schedule, hasSchedule bool, run Run, hasRun bool, err error) {
	q := `SELECT sc.service_id, COALESCE(sc.timezone, '')`
	for _, d := range []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"} {
		q += fmt.Sprintf(", COALESCE(sc.%[1]s_enabled, 0), COALESCE(sc.%[1]s_time, '00:00')", d)
	}
	q += `, sc.next_run_at, sc.last_run_at, sc.created_at, sc.updated_at,
  r.service_id, DATE_FORMAT(r.local_date, '%Y-%m-%d'), r.due_at, r.state, r.attempts, r.max_attempts, r.reason, r.error
FROM (SELECT ? AS id) k
LEFT JOIN mod_pvekeep_schedules sc ON sc.service_id = k.id
LEFT JOIN mod_pvekeep_schedule_runs r ON r.service_id = k.id
  AND r.local_date = (SELECT MAX(local_date) FROM mod_pvekeep_schedule_runs WHERE service_id = k.id)`
	var (
		scID, runID                 sql.NullInt64
		created, updated, dueAt     *time.Time
		date, state, reason, runErr sql.NullString
		attempts, maxAttempts       sql.NullInt64
	)
	dest := []any{&scID, &sc.Timezone}
	for i := range sc.Days {
		dest = append(dest, &sc.Days[i].Enabled, &sc.Days[i].Time)
	}
	dest = append(dest, &sc.NextRunAt, &sc.LastRunAt, &created, &updated,
		&runID, &date, &dueAt, &state, &attempts, &maxAttempts, &reason, &runErr)
	if err := s.db.QueryRowContext(ctx, q, id).Scan(dest...); err != nil {
		return Schedule{}, false, Run{}, false, fmt.Errorf("read schedule of service %d: %w", id, classify(err))
	}
	if scID.Valid {
		hasSchedule = true
		sc.ServiceID = id
		if created != nil {
			sc.CreatedAt = *created
		}
		if updated != nil {
			sc.UpdatedAt = *updated
		}
	} else {
		sc = Schedule{}
	}
	if runID.Valid {
		hasRun = true
		run = Run{ServiceID: id, Date: date.String, State: RunState(state.String), Attempts: int(attempts.Int64),
			MaxAttempts: int(maxAttempts.Int64), Reason: reason.String, Error: runErr.String}
		if dueAt != nil {
			run.DueAt = *dueAt
		}
	}
	return sc, hasSchedule, run, hasRun, nil
}

// PruneRuns deletes at most limit ended runs (done, failed, skipped) of
// local dates before before; it returns how many went.
func (s *Store) PruneRuns(ctx context.Context, before string, limit int) (int, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM mod_pvekeep_schedule_runs
WHERE local_date < ? AND state IN ('done','failed','skipped') LIMIT ?`, before, limit)
	if err != nil {
		return 0, fmt.Errorf("prune scheduled runs before %s: %w", before, classify(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("prune scheduled runs before %s: %w", before, classify(err))
	}
	return int(n), nil
}
