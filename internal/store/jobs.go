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

const jobColumns = `id, service_id, vmid, server_id, node, kind, state, step, progress_pct, upid, submitting_at, admitted_at,
COALESCE(backup_id, 0) AS backup_id, error, COALESCE(params, '') AS params,
COALESCE(idempotency_key, '') AS idempotency_key, actor_type, actor_id, attempt,
lease_owner, lease_until, created_at, updated_at, started_at, finished_at`

const backupColumns = `id, service_id, vmid, COALESCE(job_id, 0) AS job_id, node, storage, volid,
note, size_bytes, status, origin, protected, created_at, removed_at`

// activeStates is the SQL list of states that hold a service's lock.
const activeStates = `('queued','running')`

// maxIdempotencyKey is the column width of mod_pvekeep_jobs.idempotency_key.
const maxIdempotencyKey = 128

// queryer is what both *sqlx.DB and *sqlx.Tx offer.
type queryer interface {
	GetContext(ctx context.Context, dest any, query string, args ...any) error
	SelectContext(ctx context.Context, dest any, query string, args ...any) error
}

func normaliseJob(j *pvekeep.Job) {
	if len(j.Params) == 0 {
		j.Params = nil
	}
}

// getRow reads the one row of table that where selects into a T:
// ErrNotFound when there is none.
func getRow[T any](ctx context.Context, q queryer, columns, table, where string, args ...any) (T, error) {
	var v T
	if err := q.GetContext(ctx, &v, "SELECT "+columns+" FROM "+table+" WHERE "+where, args...); err != nil {
		var zero T
		if errors.Is(err, sql.ErrNoRows) {
			return zero, ErrNotFound
		}
		return zero, err
	}
	return v, nil
}

func getJob(ctx context.Context, q queryer, where string, args ...any) (pvekeep.Job, error) {
	j, err := getRow[pvekeep.Job](ctx, q, jobColumns, "mod_pvekeep_jobs", where, args...)
	if err != nil {
		return pvekeep.Job{}, err
	}
	normaliseJob(&j)
	return j, nil
}

func getBackup(ctx context.Context, q queryer, where string, args ...any) (pvekeep.Backup, error) {
	return getRow[pvekeep.Backup](ctx, q, backupColumns, "mod_pvekeep_backups", where, args...)
}

// NewBackupCreate asks for a backup.create job and its backup record.
//
// Job: ServiceID, VMID, ServerID, Node, Kind, Step, Params, IdempotencyKey,
// ActorType, ActorID, CreatedAt are used; if LeaseOwner and LeaseUntil are
// set, the job is created already leased to that owner (attempt 1), so the
// request that made it can submit the first Proxmox task without a tick
// taking it meanwhile.
// Backup: Storage, Note, Origin, Node, VMID, CreatedAt are used.
// Max is the quota: the request is refused when the service's backups
// that count (creating, available, removing) already number Max or more. A
// scheduled run decides its room itself (EnqueueScheduledBackup: Max is
// only recorded there).
type NewBackupCreate struct {
	Job    pvekeep.Job
	Backup pvekeep.Backup
	Max    int
}

// NewBackupRemove asks for a backup.remove job for one of the service's
// backups (Job fields as in NewBackupCreate).
type NewBackupRemove struct {
	Job      pvekeep.Job
	BackupID pvekeep.BackupID
}

func validateNewJob(j pvekeep.Job) error {
	switch {
	case j.ServiceID <= 0:
		return errors.New("service id must be positive")
	case j.Kind == "":
		return errors.New("job kind is empty")
	case j.ActorType == "":
		return errors.New("actor type is empty")
	case j.CreatedAt.IsZero():
		return errors.New("created_at is zero")
	case len(j.IdempotencyKey) > maxIdempotencyKey:
		return fmt.Errorf("idempotency key longer than %d bytes", maxIdempotencyKey)
	}
	return nil
}

// EnqueueBackupCreate records a backup.create job and its backup (status
// creating), in one transaction serialised per service. existed is true
// when the idempotency key was seen before: the earlier job and its backup
// are returned and nothing changes. Errors: *ActiveJobError,
// *QuotaError, ErrUnavailable.
func (s *Store) EnqueueBackupCreate(ctx context.Context, r NewBackupCreate) (pvekeep.Job, pvekeep.Backup, bool, error) {
	r.Job.Kind = cmpOr(r.Job.Kind, pvekeep.KindBackupCreate)
	if err := validateNewJob(r.Job); err != nil {
		return pvekeep.Job{}, pvekeep.Backup{}, false, fmt.Errorf("enqueue backup for service %d: %w", r.Job.ServiceID, err)
	}
	if r.Backup.CreatedAt.IsZero() {
		r.Backup.CreatedAt = r.Job.CreatedAt
	}
	var (
		job     pvekeep.Job
		backup  pvekeep.Backup
		existed bool
	)
	err := s.serviceTx(ctx, r.Job.ServiceID, r.Job.CreatedAt, func(tx *sqlx.Tx) error {
		job, backup, existed = pvekeep.Job{}, pvekeep.Backup{}, false
		if prev, ok, err := jobByKey(ctx, tx, r.Job.ServiceID, r.Job.IdempotencyKey); err != nil {
			return err
		} else if ok {
			job, existed = prev, true
			if prev.BackupID != 0 {
				b, err := getBackup(ctx, tx, "id = ?", prev.BackupID)
				if err != nil && !errors.Is(err, ErrNotFound) {
					return err
				}
				backup = b
			}
			return nil
		}
		if err := refuseActive(ctx, tx, r.Job.ServiceID); err != nil {
			return err
		}
		var used int
		if err := tx.GetContext(ctx, &used, `SELECT COUNT(*) FROM mod_pvekeep_backups
WHERE service_id = ? AND status IN ('creating','available','removing')`, r.Job.ServiceID); err != nil {
			return err
		}
		if used >= r.Max {
			return &QuotaError{Used: used, Max: r.Max}
		}
		var err error
		job, backup, err = insertBackupCreate(ctx, tx, r)
		return err
	})
	if err != nil {
		return pvekeep.Job{}, pvekeep.Backup{}, false, fmt.Errorf("enqueue backup for service %d: %w", r.Job.ServiceID, err)
	}
	return job, backup, existed, nil
}

// insertBackupCreate writes a backup.create job and its backup record
// (creating); the caller holds the service lock and checked the quota.
func insertBackupCreate(ctx context.Context, tx *sqlx.Tx, r NewBackupCreate) (pvekeep.Job, pvekeep.Backup, error) {
	jobID, err := insertJob(ctx, tx, r.Job)
	if err != nil {
		return pvekeep.Job{}, pvekeep.Backup{}, err
	}
	b := r.Backup
	res, err := tx.ExecContext(ctx, `INSERT INTO mod_pvekeep_backups
(service_id, vmid, job_id, node, storage, volid, note, size_bytes, status, origin, created_at)
VALUES (?, ?, ?, ?, ?, '', ?, 0, 'creating', ?, ?)`,
		r.Job.ServiceID, b.VMID, jobID, b.Node, b.Storage, b.Note, cmpOr(b.Origin, pvekeep.OriginManual), dbTime(b.CreatedAt))
	if err != nil {
		return pvekeep.Job{}, pvekeep.Backup{}, err
	}
	backupID, err := res.LastInsertId()
	if err != nil {
		return pvekeep.Job{}, pvekeep.Backup{}, err
	}
	if _, err := tx.ExecContext(ctx, "UPDATE mod_pvekeep_jobs SET backup_id = ? WHERE id = ?", backupID, jobID); err != nil {
		return pvekeep.Job{}, pvekeep.Backup{}, err
	}
	job, err := getJob(ctx, tx, "id = ?", jobID)
	if err != nil {
		return pvekeep.Job{}, pvekeep.Backup{}, err
	}
	backup, err := getBackup(ctx, tx, "id = ?", backupID)
	return job, backup, err
}

// EnqueueBackupRemove records a backup.remove job for an available backup
// of the service and marks the backup removing, in one transaction
// serialised per service. existed is true when the idempotency key was seen
// before (the earlier job is returned, nothing changes). Errors:
// ErrNotFound (no such backup for this service), *ActiveJobError,
// *BackupStateError, ErrUnavailable.
func (s *Store) EnqueueBackupRemove(ctx context.Context, r NewBackupRemove) (pvekeep.Job, bool, error) {
	r.Job.Kind = cmpOr(r.Job.Kind, pvekeep.KindBackupRemove)
	if err := validateNewJob(r.Job); err != nil {
		return pvekeep.Job{}, false, fmt.Errorf("enqueue removal of backup %d: %w", r.BackupID, err)
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
		j := r.Job
		j.BackupID = b.ID
		j.VMID = cmpOr(j.VMID, b.VMID)
		j.Node = cmpOr(j.Node, b.Node)
		jobID, err := insertJob(ctx, tx, j)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE mod_pvekeep_backups SET status = 'removing' WHERE id = ?", b.ID); err != nil {
			return err
		}
		job, err = getJob(ctx, tx, "id = ?", jobID)
		return err
	})
	if err != nil {
		return pvekeep.Job{}, false, fmt.Errorf("enqueue removal of backup %d of service %d: %w", r.BackupID, r.Job.ServiceID, err)
	}
	return job, existed, nil
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// serviceTx makes sure the service has its row in mod_pvekeep_services,
// then runs fn in a transaction that holds that row locked, which
// serialises every decision about the service's jobs and backups.
func (s *Store) serviceTx(ctx context.Context, id pvekeep.ServiceID, now time.Time, fn func(tx *sqlx.Tx) error) error {
	// Outside the transaction: creating the row and locking it in one
	// transaction invites insert-intention deadlocks between first callers.
	if _, err := s.db.ExecContext(ctx, `INSERT INTO mod_pvekeep_services (service_id, vmid, created_at, updated_at)
VALUES (?, NULL, ?, ?) ON DUPLICATE KEY UPDATE service_id = service_id`, id, dbTime(now), dbTime(now)); err != nil {
		return classify(err)
	}
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		var got int64
		if err := tx.GetContext(ctx, &got, "SELECT service_id FROM mod_pvekeep_services WHERE service_id = ? FOR UPDATE", id); err != nil {
			return fmt.Errorf("lock service %d: %w", id, err)
		}
		return fn(tx)
	})
}

func jobByKey(ctx context.Context, tx *sqlx.Tx, id pvekeep.ServiceID, key string) (pvekeep.Job, bool, error) {
	if key == "" {
		return pvekeep.Job{}, false, nil
	}
	j, err := getJob(ctx, tx, "service_id = ? AND idempotency_key = ?", id, key)
	if errors.Is(err, ErrNotFound) {
		return pvekeep.Job{}, false, nil
	}
	if err != nil {
		return pvekeep.Job{}, false, err
	}
	return j, true, nil
}

func refuseActive(ctx context.Context, tx *sqlx.Tx, id pvekeep.ServiceID) error {
	j, err := getJob(ctx, tx, "active_service_id = ?", id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return &ActiveJobError{Job: j}
}

// insertJob writes a new queued job holding its service's active slot. A
// duplicate active slot (a writer that skipped the service lock) becomes
// *ActiveJobError.
func insertJob(ctx context.Context, tx *sqlx.Tx, j pvekeep.Job) (pvekeep.JobID, error) {
	var (
		leaseOwner string
		leaseUntil any
		attempt    int
	)
	if j.LeaseOwner != "" && j.LeaseUntil != nil {
		leaseOwner, leaseUntil, attempt = j.LeaseOwner, dbTime(*j.LeaseUntil), 1
	}
	var params any
	if len(j.Params) > 0 {
		params = string(j.Params)
	}
	var backupID any
	if j.BackupID != 0 {
		backupID = int64(j.BackupID)
	}
	now := dbTime(j.CreatedAt)
	res, err := tx.ExecContext(ctx, `INSERT INTO mod_pvekeep_jobs
(service_id, vmid, server_id, node, kind, state, step, progress_pct, upid, backup_id, error, params,
 idempotency_key, actor_type, actor_id, attempt, lease_owner, lease_until, active_service_id,
 created_at, updated_at)
VALUES (?, ?, ?, ?, ?, 'queued', ?, 0, '', ?, '', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		j.ServiceID, j.VMID, j.ServerID, j.Node, j.Kind, j.Step, backupID, params,
		nullString(j.IdempotencyKey), j.ActorType, j.ActorID, attempt, leaseOwner, leaseUntil, j.ServiceID,
		now, now)
	if err != nil {
		if mysqlErrorNumber(err) == erDupEntry {
			if aerr := refuseActive(ctx, tx, j.ServiceID); aerr != nil {
				return 0, aerr
			}
		}
		return 0, fmt.Errorf("insert job: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("insert job: %w", err)
	}
	return pvekeep.JobID(id), nil
}

// Job reads one job. An unknown id is ErrNotFound.
func (s *Store) Job(ctx context.Context, id pvekeep.JobID) (pvekeep.Job, error) {
	j, err := getJob(ctx, s.db, "id = ?", id)
	if err != nil {
		return pvekeep.Job{}, fmt.Errorf("read job %d: %w", id, classify(err))
	}
	return j, nil
}

// JobByKey returns the service's job made with idempotency key key, in
// whatever state, if there is one.
func (s *Store) JobByKey(ctx context.Context, serviceID pvekeep.ServiceID, key string) (pvekeep.Job, bool, error) {
	if key == "" {
		return pvekeep.Job{}, false, nil
	}
	j, err := getJob(ctx, s.db, "service_id = ? AND idempotency_key = ?", serviceID, key)
	if errors.Is(err, ErrNotFound) {
		return pvekeep.Job{}, false, nil
	}
	if err != nil {
		return pvekeep.Job{}, false, fmt.Errorf("read job of service %d by key: %w", serviceID, classify(err))
	}
	return j, true, nil
}

// ActiveJob returns the service's queued or running job, if it has one.
func (s *Store) ActiveJob(ctx context.Context, serviceID pvekeep.ServiceID) (pvekeep.Job, bool, error) {
	j, err := getJob(ctx, s.db, "active_service_id = ?", serviceID)
	if errors.Is(err, ErrNotFound) {
		return pvekeep.Job{}, false, nil
	}
	if err != nil {
		return pvekeep.Job{}, false, fmt.Errorf("read active job of service %d: %w", serviceID, classify(err))
	}
	return j, true, nil
}

// JobFilter selects jobs for listings. Zero fields select everything;
// Limit 0 means 50, and no more than 1000 are returned.
type JobFilter struct {
	ServiceID pvekeep.ServiceID // 0 = every service (admin overview)
	States    []pvekeep.JobState
	Kinds     []pvekeep.JobKind
	Limit     int
}

const (
	defaultJobLimit = 50
	maxJobLimit     = 1000
)

// Jobs lists jobs newest first.
func (s *Store) Jobs(ctx context.Context, f JobFilter) ([]pvekeep.Job, error) {
	var (
		where []string
		args  []any
	)
	if f.ServiceID != 0 {
		where = append(where, "service_id = ?")
		args = append(args, f.ServiceID)
	}
	if len(f.States) > 0 {
		where = append(where, "state IN ("+placeholders(len(f.States))+")")
		for _, st := range f.States {
			args = append(args, st)
		}
	}
	if len(f.Kinds) > 0 {
		where = append(where, "kind IN ("+placeholders(len(f.Kinds))+")")
		for _, k := range f.Kinds {
			args = append(args, k)
		}
	}
	limit := f.Limit
	if limit <= 0 {
		limit = defaultJobLimit
	}
	limit = min(limit, maxJobLimit)
	q := "SELECT " + jobColumns + " FROM mod_pvekeep_jobs"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT ?"
	args = append(args, limit)
	jobs := []pvekeep.Job{}
	if err := s.db.SelectContext(ctx, &jobs, q, args...); err != nil {
		return nil, fmt.Errorf("list jobs: %w", classify(err))
	}
	for i := range jobs {
		normaliseJob(&jobs[i])
	}
	return jobs, nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// Backups lists the service's backups newest first, optionally only those
// in the given statuses.
func (s *Store) Backups(ctx context.Context, serviceID pvekeep.ServiceID, statuses ...pvekeep.BackupStatus) ([]pvekeep.Backup, error) {
	out, err := listOfService[pvekeep.Backup](ctx, s.db, backupColumns, "mod_pvekeep_backups", serviceID, statuses)
	if err != nil {
		return nil, fmt.Errorf("list backups of service %d: %w", serviceID, err)
	}
	return out, nil
}

// listOfService reads the service's rows of table newest first (created_at,
// then id), only those in statuses when any are given; never nil. Errors
// are classified.
func listOfService[T any, S ~string](ctx context.Context, q queryer, columns, table string, serviceID pvekeep.ServiceID, statuses []S) ([]T, error) {
	query := "SELECT " + columns + " FROM " + table + " WHERE service_id = ?"
	args := []any{serviceID}
	if len(statuses) > 0 {
		query += " AND status IN (" + placeholders(len(statuses)) + ")"
		for _, st := range statuses {
			args = append(args, st)
		}
	}
	query += " ORDER BY created_at DESC, id DESC"
	out := []T{}
	if err := q.SelectContext(ctx, &out, query, args...); err != nil {
		return nil, classify(err)
	}
	return out, nil
}

// BackupsUsed counts the service's backups that use a quota slot
// (creating, available, removing).
func (s *Store) BackupsUsed(ctx context.Context, serviceID pvekeep.ServiceID) (int, error) {
	var n int
	if err := s.db.GetContext(ctx, &n, `SELECT COUNT(*) FROM mod_pvekeep_backups
WHERE service_id = ? AND status IN ('creating','available','removing')`, serviceID); err != nil {
		return 0, fmt.Errorf("count backups of service %d: %w", serviceID, classify(err))
	}
	return n, nil
}

// Backup reads one backup of the service. Another service's backup id is
// ErrNotFound, exactly like an unknown one.
func (s *Store) Backup(ctx context.Context, serviceID pvekeep.ServiceID, id pvekeep.BackupID) (pvekeep.Backup, error) {
	b, err := getBackup(ctx, s.db, "id = ? AND service_id = ?", id, serviceID)
	if err != nil {
		return pvekeep.Backup{}, fmt.Errorf("read backup %d of service %d: %w", id, serviceID, classify(err))
	}
	return b, nil
}

// BackupByVolid finds the service's record of a Proxmox volume, if any:
// a volume on storage with no record for this service is not the client's.
func (s *Store) BackupByVolid(ctx context.Context, serviceID pvekeep.ServiceID, volid string) (pvekeep.Backup, error) {
	b, err := getBackup(ctx, s.db, "volid = ? AND service_id = ? AND volid <> '' ORDER BY id DESC LIMIT 1", volid, serviceID)
	if err != nil {
		return pvekeep.Backup{}, fmt.Errorf("read backup %q of service %d: %w", volid, serviceID, classify(err))
	}
	return b, nil
}

// ServiceJobs are the jobs a service's page shows besides its backups.
type ServiceJobs struct {
	Active *pvekeep.Job // the job holding the service's lock, if any
	// Newest is the service's newest job of any kind but the cron's
	// snapshot expiries: those are the admin's to see, and a failing one
	// retried for days must not hide what the client last did.
	Newest      *pvekeep.Job
	LastRestore *pvekeep.Job // its newest restore or reinstall
}

// serviceJobsQuery reads the three in one statement: a page view waits on
// each round trip, and one statement also reads them as of one moment.
var serviceJobsQuery = `
(SELECT 'active' AS which, ` + jobColumns + ` FROM mod_pvekeep_jobs WHERE active_service_id = ?)
UNION ALL
(SELECT 'newest' AS which, ` + jobColumns + ` FROM mod_pvekeep_jobs WHERE service_id = ?
 AND NOT (kind = ? AND actor_type = ?) ORDER BY id DESC LIMIT 1)
UNION ALL
(SELECT 'restore' AS which, ` + jobColumns + ` FROM mod_pvekeep_jobs WHERE service_id = ? AND kind IN (?, ?)
 ORDER BY id DESC LIMIT 1)`

// ServiceJobs reads the service's active, newest and last restore jobs
// (see ServiceJobs), live: nothing is cached between calls.
func (s *Store) ServiceJobs(ctx context.Context, serviceID pvekeep.ServiceID) (ServiceJobs, error) {
	var rows []struct {
		Which string `db:"which"`
		pvekeep.Job
	}
	if err := s.db.SelectContext(ctx, &rows, serviceJobsQuery, serviceID, serviceID,
		pvekeep.KindSnapshotRemove, pvekeep.ActorSystem, serviceID,
		pvekeep.KindBackupRestore, pvekeep.KindVMReinstall); err != nil {
		return ServiceJobs{}, fmt.Errorf("read jobs of service %d: %w", serviceID, classify(err))
	}
	var out ServiceJobs
	for i := range rows {
		j := rows[i].Job
		normaliseJob(&j)
		switch rows[i].Which {
		case "active":
			out.Active = &j
		case "newest":
			out.Newest = &j
		case "restore":
			out.LastRestore = &j
		}
	}
	return out, nil
}
