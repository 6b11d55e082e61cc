package store

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// NewRestore asks for a backup.restore or vm.reinstall job (Job fields as
// in NewBackupCreate; Job.Params holds the VM's pre-restore facts). For a
// restore, BackupID names the backup, which must be the service's own and
// available; a reinstall has none.
type NewRestore struct {
	Job      pvekeep.Job
	BackupID pvekeep.BackupID
}

// EnqueueRestore records a restore or reinstall job in one transaction
// serialised per service, like the other enqueues. The backup keeps its
// status: restoring reads it, and the job's hold on the service keeps it
// from being removed meanwhile. Errors: ErrNotFound, *ActiveJobError,
// *BackupStateError, ErrUnavailable.
func (s *Store) EnqueueRestore(ctx context.Context, r NewRestore) (pvekeep.Job, bool, error) {
	if err := validateNewJob(r.Job); err != nil {
		return pvekeep.Job{}, false, fmt.Errorf("enqueue %s for service %d: %w", r.Job.Kind, r.Job.ServiceID, err)
	}
	var (
		job     pvekeep.Job
		existed bool
	)
	err := s.serviceTx(ctx, r.Job.ServiceID, r.Job.CreatedAt, func(tx *sqlx.Tx) error {
		job, existed = pvekeep.Job{}, false
		if prev, ok, err := jobByKey(ctx, tx, r.Job.ServiceID, r.Job.IdempotencyKey); err != nil {
			return err
		} else if ok {
			job, existed = prev, true
			return nil
		}
		j := r.Job
		if r.BackupID != 0 {
			b, err := getBackup(ctx, tx, "id = ? AND service_id = ? FOR UPDATE", r.BackupID, r.Job.ServiceID)
			if err != nil {
				return err
			}
			if err := refuseActive(ctx, tx, r.Job.ServiceID); err != nil {
				return err
			}
			if b.Status != pvekeep.BackupAvailable {
				return &BackupStateError{Status: b.Status}
			}
			j.BackupID = b.ID
		} else if err := refuseActive(ctx, tx, r.Job.ServiceID); err != nil {
			return err
		}
		jobID, err := insertJob(ctx, tx, j)
		if err != nil {
			return err
		}
		job, err = getJob(ctx, tx, "id = ?", jobID)
		return err
	})
	if err != nil {
		return pvekeep.Job{}, false, fmt.Errorf("enqueue %s for service %d: %w", r.Job.Kind, r.Job.ServiceID, err)
	}
	return job, existed, nil
}

// UPIDRecorded reports whether any job holds upid: a task found in
// Proxmox's task list that another job already follows is not this job's.
func (s *Store) UPIDRecorded(ctx context.Context, upid pvekeep.UPID) (bool, error) {
	var n int
	if err := s.db.GetContext(ctx, &n, `SELECT (SELECT COUNT(*) FROM mod_pvekeep_jobs WHERE upid = ?)
 + (SELECT COUNT(*) FROM mod_pvekeep_job_tasks WHERE upid = ?)`, string(upid), string(upid)); err != nil {
		return false, fmt.Errorf("look up task %s: %w", upid, classify(err))
	}
	return n > 0, nil
}
