package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// ClaimRequest asks for up to Limit jobs whose lease is free (never taken,
// released, or expired before Now) on the given Proxmox servers. The
// claimed jobs are leased to Owner until LeaseUntil, their attempt counted
// up by one. No ServerIDs means no jobs: a runner only drives jobs of
// servers it was given credentials for.
type ClaimRequest struct {
	Owner      string
	Limit      int
	Now        time.Time
	LeaseUntil time.Time
	ServerIDs  []int64
}

// ClaimJobs leases jobs to r.Owner, oldest first. Concurrent claimers
// never get the same job: rows another transaction holds are skipped
// (FOR UPDATE SKIP LOCKED), rows it committed carry a live lease.
func (s *Store) ClaimJobs(ctx context.Context, r ClaimRequest) ([]pvekeep.Job, error) {
	if len(r.ServerIDs) == 0 || r.Limit <= 0 {
		return []pvekeep.Job{}, nil
	}
	if r.Owner == "" || r.Now.IsZero() || !r.LeaseUntil.After(r.Now) {
		return nil, errors.New("claim jobs: owner, now and a lease end after now are required")
	}
	var jobs []pvekeep.Job
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		jobs = []pvekeep.Job{}
		q, args, err := sqlx.In(`SELECT id FROM mod_pvekeep_jobs
WHERE state IN `+activeStates+` AND (lease_until IS NULL OR lease_until < ?) AND server_id IN (?)
ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED`, dbTime(r.Now), r.ServerIDs, r.Limit)
		if err != nil {
			return err
		}
		var ids []int64
		if err := tx.SelectContext(ctx, &ids, q, args...); err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		q, args, err = sqlx.In(`UPDATE mod_pvekeep_jobs
SET lease_owner = ?, lease_until = ?, attempt = attempt + 1, updated_at = ?
WHERE id IN (?)`, r.Owner, dbTime(r.LeaseUntil), dbTime(r.Now), ids)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return err
		}
		q, args, err = sqlx.In("SELECT "+jobColumns+" FROM mod_pvekeep_jobs WHERE id IN (?) ORDER BY id", ids)
		if err != nil {
			return err
		}
		if err := tx.SelectContext(ctx, &jobs, q, args...); err != nil {
			return err
		}
		for i := range jobs {
			normaliseJob(&jobs[i])
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim jobs for %s: %w", r.Owner, err)
	}
	return jobs, nil
}

// LeaseOf is the lease a claimed job carries.
func LeaseOf(j pvekeep.Job) pvekeep.Lease {
	return pvekeep.Lease{JobID: j.ID, Owner: j.LeaseOwner, Attempt: j.Attempt}
}

// leaseGuard is the WHERE clause of every write a lease holder makes.
const leaseGuard = `id = ? AND lease_owner = ? AND attempt = ? AND state IN ` + activeStates

func leaseArgs(l pvekeep.Lease) []any { return []any{l.JobID, l.Owner, l.Attempt} }

// JobUpdate is a lease holder's progress report. State and Step are always
// written; zero values of the other fields leave the column unchanged.
// State must stay active (queued or running): ending a job is FinishJob.
type JobUpdate struct {
	State       pvekeep.JobState
	Step        string
	ProgressPct int
	UPID        pvekeep.UPID
	// ClearUPID empties the upid column: a multi-step job whose step's
	// task finished must not wait on it again after a crash.
	ClearUPID bool
	// Submitting marks that the step's task is about to be requested
	// (submitting_at = Now). Recording a UPID, or ClearUPID, clears it.
	Submitting bool
	Node       string
	StartedAt  *time.Time
	Now        time.Time
	// Params, when set, replaces the job's params: a step that used a
	// secret-derived fact (create's password hash) drops it from the row.
	Params json.RawMessage
}

// UpdateJob writes u if l still holds the job; otherwise ErrLeaseLost and
// nothing changes.
func (s *Store) UpdateJob(ctx context.Context, l pvekeep.Lease, u JobUpdate) error {
	if !u.State.Active() {
		return fmt.Errorf("update job %d: state %q is not queued or running (use FinishJob)", l.JobID, u.State)
	}
	if u.Now.IsZero() {
		return fmt.Errorf("update job %d: now is zero", l.JobID)
	}
	pct := u.ProgressPct
	if pct > 100 {
		pct = 100
	}
	if u.ClearUPID && u.UPID != "" {
		return fmt.Errorf("update job %d: both a UPID and ClearUPID given", l.JobID)
	}
	if u.Submitting && (u.UPID != "" || u.ClearUPID) {
		return fmt.Errorf("update job %d: Submitting goes without a UPID", l.JobID)
	}
	now := dbTime(u.Now)
	var params any // NULL: unchanged
	if u.Params != nil {
		params = string(u.Params)
	}
	var submitting any // NULL, now, or unchanged (keep)
	keep := true
	switch {
	case u.Submitting:
		submitting, keep = now, false
	case u.UPID != "" || u.ClearUPID:
		submitting, keep = nil, false
	}
	args := []any{u.State, u.Step,
		pct, pct,
		u.ClearUPID, string(u.UPID), string(u.UPID),
		keep, submitting,
		u.Node, u.Node,
		dbTimePtr(u.StartedAt),
		params, params,
		now}
	args = append(args, leaseArgs(l)...)
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE mod_pvekeep_jobs SET
state = ?, step = ?,
progress_pct = IF(? > 0, ?, progress_pct),
upid = IF(?, '', IF(? <> '', ?, upid)),
submitting_at = IF(?, submitting_at, ?),
node = IF(? <> '', ?, node),
started_at = COALESCE(?, started_at),
params = IF(? IS NULL, params, ?),
updated_at = ?
WHERE `+leaseGuard, args...)
		if err != nil {
			return fmt.Errorf("update job %d: %w", l.JobID, classify(err))
		}
		if err := oneRow(res, "update job", l); err != nil {
			return err
		}
		if u.UPID != "" {
			// Every task a job follows stays on record, so no later adoption
			// takes it for its own. The unique key makes this the atomic
			// claim: a task another job follows is refused, nothing changes.
			_, err := tx.ExecContext(ctx, `INSERT INTO mod_pvekeep_job_tasks (job_id, upid, created_at) VALUES (?, ?, ?)`,
				l.JobID, string(u.UPID), now)
			if mysqlErrorNumber(err) == erDupEntry {
				var owner int64
				if err := tx.GetContext(ctx, &owner, "SELECT job_id FROM mod_pvekeep_job_tasks WHERE upid = ?", string(u.UPID)); err != nil {
					return fmt.Errorf("record task of job %d: %w", l.JobID, classify(err))
				}
				if owner != int64(l.JobID) {
					return fmt.Errorf("record task of job %d: %w", l.JobID, ErrTaskClaimed)
				}
				err = nil // this job recorded it before
			}
			if err != nil {
				return fmt.Errorf("record task of job %d: %w", l.JobID, classify(err))
			}
		}
		return nil
	})
}

// ExtendLease moves the lease's end to until if l still holds the job.
func (s *Store) ExtendLease(ctx context.Context, l pvekeep.Lease, until time.Time) error {
	res, err := s.db.ExecContext(ctx, "UPDATE mod_pvekeep_jobs SET lease_until = ? WHERE "+leaseGuard,
		append([]any{dbTime(until)}, leaseArgs(l)...)...)
	if err != nil {
		return fmt.Errorf("extend lease of job %d: %w", l.JobID, classify(err))
	}
	return oneRow(res, "extend lease of job", l)
}

// ReleaseLease gives the job back (lease_until NULL) so the next claim may
// take it at once; the owner and attempt stay for the record.
func (s *Store) ReleaseLease(ctx context.Context, l pvekeep.Lease) error {
	res, err := s.db.ExecContext(ctx, "UPDATE mod_pvekeep_jobs SET lease_until = NULL WHERE "+leaseGuard, leaseArgs(l)...)
	if err != nil {
		return fmt.Errorf("release lease of job %d: %w", l.JobID, classify(err))
	}
	return oneRow(res, "release lease of job", l)
}

type rowsAffecter interface{ RowsAffected() (int64, error) }

func oneRow(res rowsAffecter, what string, l pvekeep.Lease) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s %d: %w", what, l.JobID, classify(err))
	}
	if n != 1 {
		return fmt.Errorf("%s %d (owner %s, attempt %d): %w", what, l.JobID, l.Owner, l.Attempt, ErrLeaseLost)
	}
	return nil
}

// BackupChange is what a finishing job records on its backup. Zero fields
// leave the column unchanged (Status must be set).
type BackupChange struct {
	ID        pvekeep.BackupID
	Status    pvekeep.BackupStatus
	Volid     string
	SizeBytes int64
	CreatedAt *time.Time
	RemovedAt *time.Time
}

// JobFinish ends a job: State is terminal, Error the message the client
// reads (for failed), Backup the change to the job's backup, if any.
type JobFinish struct {
	State pvekeep.JobState
	Error string
	// Step, when set, replaces the job's step: how a job says where it
	// ended (e.g. a restore that failed before touching the VM).
	Step   string
	Now    time.Time
	Backup *BackupChange
	// Snapshot is the change to the job's snapshot, if any.
	Snapshot *SnapshotChange
}

// FinishJob ends the job l holds and applies f.Backup, in one
// transaction: the job becomes terminal (finished_at = Now, lease and
// active slot freed, progress 100 on success). If l no longer holds the
// job, ErrLeaseLost and nothing changes. The backup must belong to the
// job's service (else ErrNotFound, nothing changes).
func (s *Store) FinishJob(ctx context.Context, l pvekeep.Lease, f JobFinish) error {
	if err := validateFinish(f); err != nil {
		return fmt.Errorf("finish job %d: %w", l.JobID, err)
	}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, finishJobSQL+leaseGuard,
			append(finishArgs(f), leaseArgs(l)...)...)
		if err != nil {
			return err
		}
		if err := oneRow(res, "finish job", l); err != nil {
			return err
		}
		if err := applyBackupChange(ctx, tx, l.JobID, f.Backup); err != nil {
			return err
		}
		return applySnapshotChange(ctx, tx, l.JobID, f.Snapshot, f.Now)
	})
	if err != nil {
		return fmt.Errorf("finish job %d: %w", l.JobID, err)
	}
	return nil
}

// CancelJob ends an active job for an admin, whoever holds its lease (a
// worker still holding it gets ErrLeaseLost on its next write). f.State is
// usually JobCancelled. ErrNotFound if the job is not active.
func (s *Store) CancelJob(ctx context.Context, id pvekeep.JobID, f JobFinish) error {
	if err := validateFinish(f); err != nil {
		return fmt.Errorf("cancel job %d: %w", id, err)
	}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, finishJobSQL+"id = ? AND state IN "+activeStates,
			append(finishArgs(f), id)...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != 1 {
			return ErrNotFound
		}
		if err := applyBackupChange(ctx, tx, id, f.Backup); err != nil {
			return err
		}
		return applySnapshotChange(ctx, tx, id, f.Snapshot, f.Now)
	})
	if err != nil {
		return fmt.Errorf("cancel job %d: %w", id, err)
	}
	return nil
}

func validateFinish(f JobFinish) error {
	if !f.State.Terminal() {
		return fmt.Errorf("state %q is not terminal", f.State)
	}
	if f.Now.IsZero() {
		return errors.New("now is zero")
	}
	if f.Backup != nil && (f.Backup.ID == 0 || f.Backup.Status == "") {
		return errors.New("backup change needs an id and a status")
	}
	if f.Snapshot != nil && (f.Snapshot.ID == 0 || f.Snapshot.Status == "") {
		return errors.New("snapshot change needs an id and a status")
	}
	return nil
}

const finishJobSQL = `UPDATE mod_pvekeep_jobs SET
state = ?, error = ?, step = IF(? = '', step, ?), finished_at = ?, updated_at = ?,
active_service_id = NULL, lease_until = NULL,
progress_pct = IF(? = 'succeeded', 100, progress_pct)
WHERE `

func finishArgs(f JobFinish) []any {
	now := dbTime(f.Now)
	return []any{f.State, f.Error, f.Step, f.Step, now, now, f.State}
}

// applyBackupChange updates the backup c names, which must belong to the
// same service as job id.
func applyBackupChange(ctx context.Context, tx *sqlx.Tx, id pvekeep.JobID, c *BackupChange) error {
	if c == nil {
		return nil
	}
	res, err := tx.ExecContext(ctx, `UPDATE mod_pvekeep_backups b
JOIN mod_pvekeep_jobs j ON j.id = ? AND j.service_id = b.service_id
SET b.status = ?,
    b.volid = IF(? <> '', ?, b.volid),
    b.size_bytes = IF(? > 0, ?, b.size_bytes),
    b.created_at = COALESCE(?, b.created_at),
    b.removed_at = COALESCE(?, b.removed_at)
WHERE b.id = ?`,
		id, c.Status, c.Volid, c.Volid, c.SizeBytes, c.SizeBytes,
		dbTimePtr(c.CreatedAt), dbTimePtr(c.RemovedAt), c.ID)
	if err != nil {
		return fmt.Errorf("update backup %d: %w", c.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("update backup %d: %w", c.ID, err)
	}
	if n != 1 {
		return fmt.Errorf("update backup %d: %w", c.ID, ErrNotFound)
	}
	return nil
}
