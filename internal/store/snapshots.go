package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

const snapshotColumns = `id, service_id, vmid, name, description, vmstate, status, created_at, expires_at,
removed_at, removed_reason, COALESCE(removed_job_id, 0) AS removed_job_id, COALESCE(job_id, 0) AS job_id,
last_error, attempts`

// countingSnapshots is the SQL list of snapshot statuses that use a quota slot.
const countingSnapshots = `('creating','available','removing')`

// SnapshotQuotaError: the service's snapshots in use (creating, available,
// removing) already reach the quota.
type SnapshotQuotaError struct {
	Used, Max int
}

func (e *SnapshotQuotaError) Error() string {
	return fmt.Sprintf("snapshot quota reached (%d of %d)", e.Used, e.Max)
}

// SnapshotStateError: the snapshot is not in a status that allows the
// operation (rolling back to one still being taken, say).
type SnapshotStateError struct {
	Status pvekeep.SnapshotStatus
}

func (e *SnapshotStateError) Error() string {
	return fmt.Sprintf("snapshot is %s", e.Status)
}

func getSnapshot(ctx context.Context, q queryer, where string, args ...any) (pvekeep.Snapshot, error) {
	return getRow[pvekeep.Snapshot](ctx, q, snapshotColumns, "mod_pvekeep_snapshots", where, args...)
}

// NewSnapshotCreate asks for a snapshot.create job and its record (status
// creating). Job fields as in NewBackupCreate; Snapshot: VMID, Name,
// Description, VMState, CreatedAt, ExpiresAt are used. Max is the quota:
// refused with *SnapshotQuotaError when the service's snapshots that
// count (creating, available, removing) already number Max or more.
type NewSnapshotCreate struct {
	Job      pvekeep.Job
	Snapshot pvekeep.Snapshot
	Max      int
}

// EnqueueSnapshotCreate records a snapshot.create job and its snapshot, in
// one transaction serialised per service: the lock check and the quota
// count see every job and record committed before, so concurrent clicks
// never pass the quota. existed is true when the idempotency key was seen
// before (the earlier job and snapshot are returned, nothing changes).
// Errors: *ActiveJobError, *SnapshotQuotaError, ErrUnavailable.
func (s *Store) EnqueueSnapshotCreate(ctx context.Context, r NewSnapshotCreate) (pvekeep.Job, pvekeep.Snapshot, bool, error) {
	r.Job.Kind = cmpOr(r.Job.Kind, pvekeep.KindSnapshotCreate)
	if err := validateNewJob(r.Job); err != nil {
		return pvekeep.Job{}, pvekeep.Snapshot{}, false, fmt.Errorf("enqueue snapshot for service %d: %w", r.Job.ServiceID, err)
	}
	if r.Snapshot.Name == "" {
		return pvekeep.Job{}, pvekeep.Snapshot{}, false, fmt.Errorf("enqueue snapshot for service %d: no name", r.Job.ServiceID)
	}
	if r.Snapshot.CreatedAt.IsZero() {
		r.Snapshot.CreatedAt = r.Job.CreatedAt
	}
	var (
		job     pvekeep.Job
		snap    pvekeep.Snapshot
		existed bool
	)
	err := s.serviceTx(ctx, r.Job.ServiceID, r.Job.CreatedAt, func(tx *sqlx.Tx) error {
		job, snap, existed = pvekeep.Job{}, pvekeep.Snapshot{}, false
		if prev, ok, err := jobByKey(ctx, tx, r.Job.ServiceID, r.Job.IdempotencyKey); err != nil {
			return err
		} else if ok {
			job, existed = prev, true
			if p, err := snapshotParams(prev); err == nil && p.SnapshotID != 0 {
				sn, err := getSnapshot(ctx, tx, "id = ?", p.SnapshotID)
				if err != nil && !errors.Is(err, ErrNotFound) {
					return err
				}
				snap = sn
			}
			return nil
		}
		if err := refuseActive(ctx, tx, r.Job.ServiceID); err != nil {
			return err
		}
		var used int
		if err := tx.GetContext(ctx, &used, `SELECT COUNT(*) FROM mod_pvekeep_snapshots
WHERE service_id = ? AND status IN `+countingSnapshots, r.Job.ServiceID); err != nil {
			return err
		}
		if used >= r.Max {
			return &SnapshotQuotaError{Used: used, Max: r.Max}
		}
		jobID, err := insertJob(ctx, tx, r.Job)
		if err != nil {
			return err
		}
		sn := r.Snapshot
		res, err := tx.ExecContext(ctx, `INSERT INTO mod_pvekeep_snapshots
(service_id, vmid, name, description, vmstate, status, created_at, expires_at, job_id)
VALUES (?, ?, ?, ?, ?, 'creating', ?, ?, ?)`,
			r.Job.ServiceID, sn.VMID, sn.Name, sn.Description, sn.VMState, dbTime(sn.CreatedAt), dbTimePtr(sn.ExpiresAt), jobID)
		if err != nil {
			return err
		}
		id, err := res.LastInsertId()
		if err != nil {
			return err
		}
		if err := setSnapshotParams(ctx, tx, jobID, pvekeep.SnapshotJobParams{SnapshotID: pvekeep.SnapshotID(id), Name: sn.Name}); err != nil {
			return err
		}
		if job, err = getJob(ctx, tx, "id = ?", jobID); err != nil {
			return err
		}
		snap, err = getSnapshot(ctx, tx, "id = ?", id)
		return err
	})
	if err != nil {
		return pvekeep.Job{}, pvekeep.Snapshot{}, false, fmt.Errorf("enqueue snapshot for service %d: %w", r.Job.ServiceID, err)
	}
	return job, snap, existed, nil
}

// NewSnapshotJob asks for a snapshot.rollback or snapshot.remove job on
// one of the service's snapshots, named as the client sees it. Start is
// recorded for a rollback: the VM is to run afterwards.
type NewSnapshotJob struct {
	Job   pvekeep.Job
	Name  string
	Start bool
}

// EnqueueSnapshotJob records a rollback or removal of an available
// snapshot of the service (a removal marks it removing), in one
// transaction serialised per service. existed as in EnqueueSnapshotCreate.
// Errors: ErrNotFound (no such snapshot of this service, or one already
// removed), *ActiveJobError, *SnapshotStateError, ErrUnavailable.
func (s *Store) EnqueueSnapshotJob(ctx context.Context, r NewSnapshotJob) (pvekeep.Job, pvekeep.Snapshot, bool, error) {
	if r.Job.Kind != pvekeep.KindSnapshotRollback && r.Job.Kind != pvekeep.KindSnapshotRemove {
		return pvekeep.Job{}, pvekeep.Snapshot{}, false, fmt.Errorf("enqueue snapshot job: kind %q", r.Job.Kind)
	}
	if err := validateNewJob(r.Job); err != nil {
		return pvekeep.Job{}, pvekeep.Snapshot{}, false, fmt.Errorf("enqueue %s of snapshot %q: %w", r.Job.Kind, r.Name, err)
	}
	var (
		job     pvekeep.Job
		snap    pvekeep.Snapshot
		existed bool
	)
	err := s.serviceTx(ctx, r.Job.ServiceID, r.Job.CreatedAt, func(tx *sqlx.Tx) error {
		job, snap, existed = pvekeep.Job{}, pvekeep.Snapshot{}, false
		if prev, ok, err := jobByKey(ctx, tx, r.Job.ServiceID, r.Job.IdempotencyKey); err != nil {
			return err
		} else if ok {
			job, existed = prev, true
			return nil
		}
		sn, err := getSnapshot(ctx, tx, "service_id = ? AND name = ? AND status IN "+countingSnapshots+" FOR UPDATE",
			r.Job.ServiceID, r.Name)
		if err != nil {
			return err
		}
		if err := refuseActive(ctx, tx, r.Job.ServiceID); err != nil {
			return err
		}
		if sn.Status != pvekeep.SnapshotAvailable {
			return &SnapshotStateError{Status: sn.Status}
		}
		j := r.Job
		j.VMID = cmpOr(j.VMID, sn.VMID)
		jobID, err := insertJob(ctx, tx, j)
		if err != nil {
			return err
		}
		if err := setSnapshotParams(ctx, tx, jobID, pvekeep.SnapshotJobParams{SnapshotID: sn.ID, Name: sn.Name, Start: r.Start}); err != nil {
			return err
		}
		if j.Kind == pvekeep.KindSnapshotRemove {
			if _, err := tx.ExecContext(ctx, "UPDATE mod_pvekeep_snapshots SET status = 'removing' WHERE id = ?", sn.ID); err != nil {
				return err
			}
			sn.Status = pvekeep.SnapshotRemoving
		}
		snap = sn
		job, err = getJob(ctx, tx, "id = ?", jobID)
		return err
	})
	if err != nil {
		return pvekeep.Job{}, pvekeep.Snapshot{}, false, fmt.Errorf("enqueue %s of snapshot %q of service %d: %w", r.Job.Kind, r.Name, r.Job.ServiceID, err)
	}
	return job, snap, existed, nil
}

func setSnapshotParams(ctx context.Context, tx *sqlx.Tx, id pvekeep.JobID, p pvekeep.SnapshotJobParams) error {
	raw, err := json.Marshal(p)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, "UPDATE mod_pvekeep_jobs SET params = ? WHERE id = ?", string(raw), id)
	return err
}

// snapshotParams reads what a snapshot.* job recorded.
func snapshotParams(j pvekeep.Job) (pvekeep.SnapshotJobParams, error) {
	var p pvekeep.SnapshotJobParams
	if len(j.Params) == 0 {
		return p, fmt.Errorf("job %d has no snapshot params", j.ID)
	}
	if err := json.Unmarshal(j.Params, &p); err != nil {
		return p, fmt.Errorf("job %d snapshot params: %w", j.ID, err)
	}
	return p, nil
}

// Snapshots lists the service's snapshot records newest first, optionally
// only those in the given statuses.
func (s *Store) Snapshots(ctx context.Context, serviceID pvekeep.ServiceID, statuses ...pvekeep.SnapshotStatus) ([]pvekeep.Snapshot, error) {
	out, err := listOfService[pvekeep.Snapshot](ctx, s.db, snapshotColumns, "mod_pvekeep_snapshots", serviceID, statuses)
	if err != nil {
		return nil, fmt.Errorf("list snapshots of service %d: %w", serviceID, err)
	}
	return out, nil
}

// Snapshot reads one snapshot record of the service; another service's
// id is ErrNotFound.
func (s *Store) Snapshot(ctx context.Context, serviceID pvekeep.ServiceID, id pvekeep.SnapshotID) (pvekeep.Snapshot, error) {
	sn, err := getSnapshot(ctx, s.db, "id = ? AND service_id = ?", id, serviceID)
	if err != nil {
		return pvekeep.Snapshot{}, fmt.Errorf("read snapshot %d of service %d: %w", id, serviceID, classify(err))
	}
	return sn, nil
}

// SnapshotChange is what a finishing snapshot job records on its
// snapshot. Status must be set; nil pointers and "" leave columns as
// they are. Error, when set, is recorded as the last failed removal
// (attempts + 1), and the next expiry of it may run 10 minutes after the
// job's end (its Now) after a first failure, the pause doubling up to 6
// hours; a change to removed clears both.
type SnapshotChange struct {
	ID            pvekeep.SnapshotID
	Status        pvekeep.SnapshotStatus
	CreatedAt     *time.Time
	ExpiresAt     *time.Time
	VMState       *bool
	RemovedAt     *time.Time
	RemovedReason string
	Error         string
}

// applySnapshotChange updates the snapshot c names, which must belong to
// the same service as job id.
func applySnapshotChange(ctx context.Context, tx *sqlx.Tx, id pvekeep.JobID, c *SnapshotChange, now time.Time) error {
	if c == nil {
		return nil
	}
	var vmstate any
	if c.VMState != nil {
		vmstate = *c.VMState
	}
	clear := c.Status == pvekeep.SnapshotRemoved
	var failedAt any // NULL unless Error is set: strict mode refuses a zero date
	if c.Error != "" {
		failedAt = dbTime(now)
	}
	res, err := tx.ExecContext(ctx, `UPDATE mod_pvekeep_snapshots s
JOIN mod_pvekeep_jobs j ON j.id = ? AND j.service_id = s.service_id
SET s.status = ?,
    s.created_at = COALESCE(?, s.created_at),
    s.expires_at = COALESCE(?, s.expires_at),
    s.vmstate = COALESCE(?, s.vmstate),
    s.removed_at = COALESCE(?, s.removed_at),
    s.removed_reason = IF(? <> '', ?, s.removed_reason),
    s.last_error = IF(? <> '', ?, IF(?, '', s.last_error)),
    s.attempts = s.attempts + IF(? <> '', 1, 0),
    s.retry_at = IF(? <> '', ? + INTERVAL LEAST(5 << LEAST(s.attempts, 7), 360) MINUTE, IF(?, NULL, s.retry_at))
WHERE s.id = ?`,
		id, c.Status, dbTimePtr(c.CreatedAt), dbTimePtr(c.ExpiresAt), vmstate, dbTimePtr(c.RemovedAt),
		c.RemovedReason, c.RemovedReason, clip(c.Error, 1024), clip(c.Error, 1024), clear, c.Error,
		c.Error, failedAt, clear, c.ID)
	if err != nil {
		return fmt.Errorf("update snapshot %d: %w", c.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("update snapshot %d: %w", c.ID, err)
	}
	if n != 1 {
		return fmt.Errorf("update snapshot %d: %w", c.ID, ErrNotFound)
	}
	return nil
}

// clip cuts s to at most n bytes at a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// ForgetSnapshots marks removed every snapshot of the job's service that
// counts and whose name is not in kept: Proxmox no longer has them (a
// restore or reinstall destroys all of a VM's snapshots). Only while l
// holds the job; it returns how many records changed.
func (s *Store) ForgetSnapshots(ctx context.Context, l pvekeep.Lease, kept []string, reason string, now time.Time) (int, error) {
	q := `UPDATE mod_pvekeep_snapshots s
JOIN mod_pvekeep_jobs j ON j.id = ? AND j.lease_owner = ? AND j.attempt = ? AND j.state IN ` + activeStates + `
  AND j.service_id = s.service_id
SET s.status = 'removed', s.removed_at = ?, s.removed_reason = ?, s.removed_job_id = j.id, s.last_error = ''
WHERE s.status IN ` + countingSnapshots
	args := append(leaseArgs(l), dbTime(now), reason)
	if len(kept) > 0 {
		q += " AND s.name NOT IN (" + placeholders(len(kept)) + ")"
		for _, k := range kept {
			args = append(args, k)
		}
	}
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("forget snapshots of job %d: %w", l.JobID, classify(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("forget snapshots of job %d: %w", l.JobID, classify(err))
	}
	return int(n), nil
}

// ExpiredSnapshot is a snapshot past its lifetime on one of the panel's
// servers.
type ExpiredSnapshot struct {
	pvekeep.Snapshot
	ServerID int64 `db:"server_id"`
}

// ExpiredSnapshots lists available snapshots whose expires_at is at or
// before now, of Active or Suspended services on the given panel servers,
// the longest expired first, at most limit.
func (s *Store) ExpiredSnapshots(ctx context.Context, serverIDs []int64, now time.Time, limit int) ([]ExpiredSnapshot, error) {
	if len(serverIDs) == 0 {
		return nil, nil
	}
	args := []any{dbTime(now), dbTime(now)}
	for _, id := range serverIDs {
		args = append(args, id)
	}
	args = append(args, limit)
	q := `SELECT s.id, s.service_id, s.vmid, s.name, s.description, s.vmstate, s.status, s.created_at, s.expires_at,
s.removed_at, s.removed_reason, COALESCE(s.removed_job_id, 0) AS removed_job_id, COALESCE(s.job_id, 0) AS job_id,
s.last_error, s.attempts, h.server AS server_id
FROM mod_pvekeep_snapshots s
JOIN tblhosting h ON h.id = s.service_id
WHERE s.status = 'available' AND s.expires_at IS NOT NULL AND s.expires_at <= ?
  AND (s.retry_at IS NULL OR s.retry_at <= ?)
  AND h.server IN (` + placeholders(len(serverIDs)) + `) AND h.domainstatus IN ('Active', 'Suspended')
ORDER BY s.expires_at, s.id
LIMIT ?`
	out := []ExpiredSnapshot{}
	if err := s.db.SelectContext(ctx, &out, q, args...); err != nil {
		return nil, fmt.Errorf("list expired snapshots: %w", classify(err))
	}
	return out, nil
}
