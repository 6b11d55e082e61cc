package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/pvekeep/pvekeep/internal/jobs"
	"github.com/pvekeep/pvekeep/internal/plan"
	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/store"
)

// Usage is one quota: how much is used of how much was bought.
type Usage struct {
	Used int
	Max  int
}

// BackupList is what backups.list returns: everything a client page view
// needs, from the database alone.
type BackupList struct {
	// Status is the VM as Proxmox last told it (Status.CheckedAt), the
	// plugin's own lock (current) and the quotas.
	Status    Status
	Quota     Usage
	Items     []pvekeep.Backup
	ActiveJob *pvekeep.Job
	// FailedRestore is the latest restore or reinstall when it failed and
	// still matters: the VM may be unusable and the page offers retry and
	// reinstall; or it failed before touching the VM and nothing has run
	// on the service since, so the page says so and offers a retry.
	FailedRestore *pvekeep.Job
	// FailedBackup is the service's newest job when it is a backup or a
	// removal that failed: the client clicked, and must learn why nothing
	// came of it, until the next job.
	FailedBackup *pvekeep.Job
	// Snapshots is the page's snapshots section (snapshots.list's answer
	// for a client, without its own copy of Status).
	Snapshots SnapshotList
	// Schedule is the service's backup schedule, its next run and what
	// became of the latest scheduled run (skipped_reason, failures).
	Schedule Schedule
	// ServiceState is the service's life as WHMCS has it (active,
	// suspended, terminated): the page's suspended notice reads it.
	ServiceState ServiceState
}

// listed says which backups a client sees: everything that is or will be
// on storage. Failed and removed records stay in the table as history.
var listed = []pvekeep.BackupStatus{pvekeep.BackupCreating, pvekeep.BackupAvailable, pvekeep.BackupRemoving}

// ListBackups returns the service's own backups, newest first, with the
// service's status: one call per client page view, answered from the
// database alone, never waiting on Proxmox (the VM's facts are those
// cached by ticks and clicks, with their age). Only records the plugin
// made for this service are listed: a volume on storage with the same
// vmid (a previous owner of a reused vmid, or one made by hand) is never
// shown.
func (s *Service) ListBackups(ctx context.Context, c Call) (BackupList, error) {
	return s.ListBackupsIn(ctx, c, "")
}

// ListBackupsIn is ListBackups with the panel's time zone, which a
// service without a schedule shows as its zone.
func (s *Service) ListBackupsIn(ctx context.Context, c Call, panelTZ string) (BackupList, error) {
	f, err := s.authorize(ctx, c, read)
	if err != nil {
		return BackupList{}, err
	}
	items, err := s.st.Backups(ctx, f.ServiceID, listed...)
	if err != nil {
		return BackupList{}, dbError(err)
	}
	st, js, err := s.dbStatus(ctx, f, items, false)
	if err != nil {
		return BackupList{}, err
	}
	snaps, err := s.snaps.Snapshots(ctx, f.ServiceID)
	if err != nil {
		return BackupList{}, dbError(err)
	}
	section, err := snapshotSection(f, snaps, js)
	if err != nil {
		return BackupList{}, err
	}
	section.ActiveJob = st.ActiveJob
	st.Snapshots.Used = section.Quota.Used
	sched, err := s.scheduleOf(ctx, f, panelTZ)
	if err != nil {
		return BackupList{}, err
	}
	out := BackupList{Status: st, Quota: st.Backups, Items: items, ActiveJob: st.ActiveJob, Snapshots: section, Schedule: sched,
		ServiceState: serviceState(f.Status)}
	var newest []pvekeep.Job
	if js.Newest != nil {
		newest = []pvekeep.Job{*js.Newest}
	}
	// The cron's own failures (a scheduled backup, a rotation's removal)
	// are the schedule card's to show (Schedule.LastRun), with their
	// retries: not an answer to a click of the client's.
	if len(newest) == 1 && newest[0].State == pvekeep.JobFailed && newest[0].ActorType != pvekeep.ActorSystem &&
		(newest[0].Kind == pvekeep.KindBackupCreate || newest[0].Kind == pvekeep.KindBackupRemove) {
		out.FailedBackup = &newest[0]
	}
	if last := js.LastRestore; last != nil && last.State == pvekeep.JobFailed && failureStillMatters(*last, newest) {
		out.FailedRestore = last
	}
	return out, nil
}

// failureStillMatters says whether a failed restore or reinstall is worth
// showing the client: always when it left the VM unusable; a restore that
// failed before touching the VM only while it is the service's newest job
// (removing its backup is a newer job). A reinstall that failed before
// touching the VM was an admin's (a client may reinstall only a damaged
// VM): nothing for the client to see or retry.
func failureStillMatters(j pvekeep.Job, newest []pvekeep.Job) bool {
	if j.Step != stepIntact {
		return true
	}
	return j.Kind == pvekeep.KindBackupRestore && len(newest) == 1 && newest[0].ID == j.ID
}

func usedSlots(items []pvekeep.Backup) int {
	n := 0
	for _, b := range items {
		if b.Status.CountsTowardsQuota() {
			n++
		}
	}
	return n
}

// CreateBackup starts a manual backup: ownership, lock and quota checks,
// a durable job, and the vzdump submitted before returning. A retried
// request with the same idempotency key returns the first one's job.
func (s *Service) CreateBackup(ctx context.Context, c Call, note, idempotencyKey string) (pvekeep.Job, error) {
	note, err := cleanNote("note", note)
	if err != nil {
		return pvekeep.Job{}, err
	}
	if err := checkIdempotencyKey(idempotencyKey); err != nil {
		return pvekeep.Job{}, err
	}
	f, err := s.authorize(ctx, c, mutate)
	if err != nil {
		return pvekeep.Job{}, err
	}
	pl, err := plan.QuotasFromFacts(f)
	if err != nil {
		return pvekeep.Job{}, err
	}
	if pl.BackupsMax == 0 {
		return pvekeep.Job{}, pvekeep.QuotaExceeded("backups", 0, 0)
	}
	if pl.BackupStorage == "" {
		return pvekeep.Job{}, pvekeep.InvalidState("the product is misconfigured: configoption1 (backup storage) is empty")
	}
	if idempotencyKey != "" {
		// A retry of a request that already made its job must get that job
		// back, even though the VM is now locked by it.
		if j, ok, err := s.replay(ctx, f, idempotencyKey, pvekeep.KindBackupCreate, 0); err != nil || ok {
			return j, err
		}
	}
	pc, ref, err := s.reachVM(ctx, c, f)
	if err != nil {
		return s.lockedUnlessReplay(ctx, f, idempotencyKey, pvekeep.KindBackupCreate, 0, err)
	}

	now := s.clock.Now().UTC()
	owner := newCallOwner()
	leaseUntil := now.Add(s.cfg.LeaseFor)
	job, backup, existed, err := s.st.EnqueueBackupCreate(ctx, store.NewBackupCreate{
		Job: pvekeep.Job{
			ServiceID: f.ServiceID, VMID: f.VMID, ServerID: f.ServerID, Node: ref.Node,
			Kind: pvekeep.KindBackupCreate, Step: stepDispatch,
			IdempotencyKey: idempotencyKey, ActorType: c.Actor.Type, ActorID: c.Actor.ID,
			LeaseOwner: owner, LeaseUntil: &leaseUntil, CreatedAt: now,
		},
		Backup: pvekeep.Backup{
			VMID: f.VMID, Node: ref.Node, Storage: pl.BackupStorage, Note: note,
			Origin: pvekeep.OriginManual, CreatedAt: now,
		},
		Max: pl.BackupsMax,
	})
	if err != nil {
		return pvekeep.Job{}, enqueueError(err)
	}
	if existed {
		return job, sameRequest(job, pvekeep.KindBackupCreate, 0)
	}
	lease := pvekeep.Lease{JobID: job.ID, Owner: job.LeaseOwner, Attempt: job.Attempt}
	return s.dispatchOnCall(ctx, lease, job, func() (pvekeep.Job, error) {
		return s.dispatchBackup(ctx, pc, c.Server, lease, job, backup)
	})
}

// replay answers a request whose idempotency key already made a job with
// that job, whatever its state and whatever the VM is doing now: a retry
// must get what the first request got. A key already used for another
// request (another kind, or a restore of another backup: backupID, when
// not 0) is refused.
func (s *Service) replay(ctx context.Context, f pvekeep.ServiceFacts, key string, kind pvekeep.JobKind, backupID pvekeep.BackupID) (pvekeep.Job, bool, error) {
	j, ok, err := s.st.JobByKey(ctx, f.ServiceID, key)
	if err != nil {
		return pvekeep.Job{}, false, dbError(err)
	}
	if !ok {
		return pvekeep.Job{}, false, nil
	}
	if err := sameRequest(j, kind, backupID); err != nil {
		return pvekeep.Job{}, false, err
	}
	return j, true, nil
}

// lockedUnlessReplay answers a request refused as locked with its own job
// when the job that holds the VM is the one its idempotency key made: a
// double click whose first request got in between the second's replay
// and its lock check.
func (s *Service) lockedUnlessReplay(ctx context.Context, f pvekeep.ServiceFacts, key string, kind pvekeep.JobKind, backupID pvekeep.BackupID, err error) (pvekeep.Job, error) {
	if key == "" || pvekeep.ReasonOf(err) != pvekeep.ReasonLocked {
		return pvekeep.Job{}, err
	}
	if j, ok, rerr := s.replay(ctx, f, key, kind, backupID); rerr == nil && ok {
		return j, nil
	}
	return pvekeep.Job{}, err
}

// sameRequest refuses a job found by idempotency key that another request
// made: another kind of job, or (backupID not 0) one for another backup.
func sameRequest(j pvekeep.Job, kind pvekeep.JobKind, backupID pvekeep.BackupID) error {
	if j.Kind != kind || (backupID != 0 && j.BackupID != backupID) {
		return pvekeep.InvalidInput("idempotency_key", "this idempotency_key was already used for another request")
	}
	return nil
}

// dispatchOnCall runs the first step of a job inside the API call that
// made it. A Proxmox that cannot be reached right now does not fail the
// click: the job stays queued and the next tick submits it.
func (s *Service) dispatchOnCall(ctx context.Context, lease pvekeep.Lease, job pvekeep.Job, dispatch func() (pvekeep.Job, error)) (pvekeep.Job, error) {
	out, err := dispatch()
	if err == nil {
		if rerr := s.st.ReleaseLease(ctx, lease); rerr != nil && !errors.Is(rerr, store.ErrLeaseLost) {
			s.logger.Warn("release lease", "job_id", job.ID, "err", rerr)
		}
		return out, nil
	}
	if pvekeep.ReasonOf(err) == pvekeep.ReasonUnavailable {
		// The request may have reached Proxmox: keep the job for the quiet
		// window, then a tick adopts the task or submits it.
		s.logger.Warn("submit first task later", "job_id", job.ID, "err", err)
		if rerr := s.st.ExtendLease(ctx, lease, s.clock.Now().UTC().Add(s.cfg.QuietWindow)); rerr != nil {
			s.logger.Warn("hold lease", "job_id", job.ID, "err", rerr)
		}
		return job, nil
	}
	// A step that failed without ending the job (it will be taken up by a
	// tick) is not a failure of the click: answer with the job, whose state
	// the panel follows, and let the next tick have it at once.
	if cur, gerr := s.st.Job(ctx, job.ID); gerr == nil && cur.State.Active() {
		s.logger.Warn("first step deferred to the tick", "job_id", job.ID, "err", err)
		if rerr := s.st.ReleaseLease(ctx, lease); rerr != nil && !errors.Is(rerr, store.ErrLeaseLost) {
			s.logger.Warn("release lease", "job_id", job.ID, "err", rerr)
		}
		return cur, nil
	}
	return out, err
}

// enqueueError maps the store's refusals to the panel's reasons.
func enqueueError(err error) error {
	var aj *store.ActiveJobError
	var qe *store.QuotaError
	var bs *store.BackupStateError
	switch {
	case errors.As(err, &aj):
		return pvekeep.Locked(lockName(aj.Job.Kind), aj.Job.ID)
	case errors.As(err, &qe):
		return pvekeep.QuotaExceeded("backups", qe.Used, qe.Max)
	case errors.As(err, &bs):
		return pvekeep.InvalidState(fmt.Sprintf("the backup is %s", bs.Status))
	case errors.Is(err, store.ErrNotFound):
		return pvekeep.NotFound("backup")
	default:
		return dbError(err)
	}
}

// Job steps (mod_pvekeep_jobs.step).
const (
	stepDispatch = "dispatch" // the Proxmox task is not submitted yet
	stepVzdump   = "vzdump"   // vzdump is running
	stepDelete   = "delete"   // the volume's removal task is running
)

// dispatchBackup submits the vzdump of a queued backup job and records its
// UPID. Proxmox refusing ends the job as failed with Proxmox's message;
// Proxmox unreachable leaves it queued for the next tick.
func (s *Service) dispatchBackup(ctx context.Context, pc pve.Cluster, srv pvekeep.Server, lease pvekeep.Lease, job pvekeep.Job, b pvekeep.Backup) (pvekeep.Job, error) {
	node := job.Node
	var (
		ref pve.VMRef
		err error
	)
	if node == "" {
		if ref, err = s.locate(ctx, pc, job.VMID); err != nil {
			return job, s.failIfFinal(ctx, lease, job, err)
		}
		node = ref.Node
	}
	// The node's gate before anything else asks Proxmox: a job waiting for
	// its turn costs the database, never a Proxmox call per pass.
	if ok, err := s.admitBackup(ctx, lease, &job, node); err != nil || !ok {
		return job, err
	}
	if ref.Node == "" {
		// The node the job was recorded with (the click's own look, or the
		// tick's cached facts for a scheduled run): no /cluster/resources per
		// backup. A VM that moved since makes Proxmox answer ErrWrongNode,
		// and then it is looked up (below).
		ref = pve.VMRef{VMID: job.VMID, Node: node}
	}
	if job.SubmittingAt != nil {
		if adopted, ok, err := s.adoptBackup(ctx, pc, lease, job, ref.Node, srv); err != nil || ok {
			return adopted, err
		}
	}
	if msg := s.overdue(job); msg != "" {
		return job, s.failIfFinal(ctx, lease, job, pvekeep.Upstream(msg, nil))
	}
	job, err = s.submitting(ctx, lease, job)
	if err != nil {
		return job, err
	}
	req := pve.VzdumpRequest{VMID: job.VMID, Storage: b.Storage, Mode: s.cfg.BackupMode, Compress: s.cfg.Compress, Notes: b.Note}
	upid, err := pc.Vzdump(ctx, ref.Node, req)
	if errors.Is(err, pve.ErrWrongNode) {
		// Proxmox did nothing on that node (it answers "OK" for a guest it
		// does not have): submitting again where the VM is now is safe.
		if ref, err = s.locate(ctx, pc, job.VMID); err != nil {
			return job, s.failIfFinal(ctx, lease, job, err)
		}
		upid, err = pc.Vzdump(ctx, ref.Node, req)
	}
	if err != nil {
		return job, s.ambiguous(s.failIfFinal(ctx, lease, job, submitError("submit vzdump", err)))
	}
	now := s.clock.Now().UTC()
	if err := s.st.UpdateJob(ctx, lease, store.JobUpdate{
		State: pvekeep.JobRunning, Step: stepVzdump, UPID: upid, Node: ref.Node, StartedAt: &now, Now: now,
	}); err != nil {
		// The vzdump runs but we could not record it: the lease expires and
		// the next attempt adopts it (above) instead of submitting again.
		return job, dbError(err)
	}
	job.State, job.Step, job.UPID, job.Node, job.StartedAt = pvekeep.JobRunning, stepVzdump, upid, ref.Node, &now
	return job, nil
}

// adoptBackup looks for the trace of a vzdump an earlier attempt
// submitted without learning its UPID (the process died, or the answer was
// lost): the node's task list shows it from the moment Proxmox accepted it,
// also while it waits for the node's backup lock. Found, it becomes this
// job's task; submitting again would make two backups.
func (s *Service) adoptBackup(ctx context.Context, pc pve.Cluster, lease pvekeep.Lease, job pvekeep.Job, node string, srv pvekeep.Server) (pvekeep.Job, bool, error) {
	upid, ok, err := s.findSubmitted(ctx, pc, job, node, "vzdump", job.VMID, srv)
	if err != nil || !ok {
		return job, false, err
	}
	now := s.clock.Now().UTC()
	if err := s.st.UpdateJob(ctx, lease, store.JobUpdate{
		State: pvekeep.JobRunning, Step: stepVzdump, UPID: upid, Node: node, StartedAt: &now, Now: now,
	}); err != nil {
		return job, false, dbError(err)
	}
	s.logger.Info("adopted a task an earlier attempt submitted", "job_id", job.ID, "upid", upid)
	job.State, job.Step, job.UPID, job.Node, job.StartedAt = pvekeep.JobRunning, stepVzdump, upid, node, &now
	return job, true, nil
}

// findSubmitted finds the task of type typ (for guest vmid) that an
// earlier attempt of the job asked for and never learnt the UPID of: only
// when the job recorded that it was submitting, started since then (less a
// margin for clocks that disagree), by the credentials the plugin uses,
// and followed by no job before.
func (s *Service) findSubmitted(ctx context.Context, pc pve.Cluster, job pvekeep.Job, node, typ string, vmid pvekeep.VMID, srv pvekeep.Server) (pvekeep.UPID, bool, error) {
	if job.SubmittingAt == nil {
		return "", false, nil // this job never asked: nothing can be its own
	}
	tasks, err := pc.Tasks(ctx, node, pve.TaskFilter{VMID: vmid, Type: typ, Since: job.SubmittingAt.Add(-s.cfg.ClockSkew)})
	if err != nil {
		return "", false, pveError("list tasks", err)
	}
	user := srv.TokenID
	if user == "" {
		user = srv.Username
	}
	for i := len(tasks) - 1; i >= 0; i-- { // oldest first: the first submission is ours
		t := tasks[i]
		if user != "" && t.User != user {
			continue
		}
		known, err := s.st.UPIDRecorded(ctx, t.UPID)
		if err != nil {
			return "", false, dbError(err)
		}
		if !known {
			return t.UPID, true, nil
		}
	}
	return "", false, nil
}

// ambiguous wraps the failure of a POST whose answer may have been lost:
// the job is held for the quiet window, after which the task, if Proxmox
// accepted it, is in the task list for the next attempt to adopt.
func (s *Service) ambiguous(err error) error {
	if pvekeep.ReasonOf(err) == pvekeep.ReasonUnavailable {
		return jobs.Snooze(s.cfg.QuietWindow, err)
	}
	return err
}

// failIfFinal ends the job as failed unless err is worth retrying (Proxmox
// or the database unreachable), and returns err either way.
func (s *Service) failIfFinal(ctx context.Context, lease pvekeep.Lease, job pvekeep.Job, err error) error {
	if pvekeep.ReasonOf(err) == pvekeep.ReasonUnavailable {
		return err
	}
	msg := err.Error()
	if e, ok := pvekeep.AsError(err); ok {
		msg = e.Message
		if d, ok := e.Data["detail"].(string); ok && d != "" {
			msg = d
		}
	}
	f := store.JobFinish{State: pvekeep.JobFailed, Error: msg, Now: s.clock.Now().UTC()}
	if job.Kind == pvekeep.KindBackupCreate {
		f.Backup = &store.BackupChange{ID: job.BackupID, Status: pvekeep.BackupFailed}
	}
	if job.Kind == pvekeep.KindBackupRemove {
		f.Backup = &store.BackupChange{ID: job.BackupID, Status: pvekeep.BackupAvailable}
	}
	if isSnapshotKind(job.Kind) {
		f.Snapshot = snapshotFailure(job, msg)
	}
	if ferr := s.finish(ctx, lease, job, f); ferr != nil {
		return ferr
	}
	return err
}

func (s *Service) finish(ctx context.Context, lease pvekeep.Lease, job pvekeep.Job, f store.JobFinish) error {
	if err := s.st.FinishJob(ctx, lease, f); err != nil {
		return dbError(fmt.Errorf("finish job %d: %w", job.ID, err))
	}
	s.logger.Info("job finished", "job_id", job.ID, "kind", job.Kind, "service_id", job.ServiceID,
		"vmid", job.VMID, "state", f.State, "error", f.Error)
	return nil
}

// RemoveBackup starts removing one of the service's backups.
func (s *Service) RemoveBackup(ctx context.Context, c Call, id pvekeep.BackupID) (pvekeep.Job, error) {
	if id <= 0 {
		return pvekeep.Job{}, pvekeep.InvalidInput("backup_id", "backup_id must be a positive integer")
	}
	f, err := s.authorize(ctx, c, mutate)
	if err != nil {
		return pvekeep.Job{}, err
	}
	b, err := s.st.Backup(ctx, f.ServiceID, id)
	if err != nil {
		return pvekeep.Job{}, enqueueError(err)
	}
	if b.Protected {
		// Proxmox would refuse it in the removal task; say so now, with
		// nothing started.
		e := pvekeep.InvalidState("the backup is kept (protected): stop keeping it before removing it")
		e.Data = map[string]any{"state": "protected"}
		return pvekeep.Job{}, e
	}
	pc, ref, err := s.reachVM(ctx, c, f)
	if err != nil {
		return pvekeep.Job{}, err
	}
	now := s.clock.Now().UTC()
	leaseUntil := now.Add(s.cfg.LeaseFor)
	job, existed, err := s.st.EnqueueBackupRemove(ctx, store.NewBackupRemove{
		Job: pvekeep.Job{
			ServiceID: f.ServiceID, VMID: f.VMID, ServerID: f.ServerID, Node: ref.Node,
			Kind: pvekeep.KindBackupRemove, Step: stepDispatch, ActorType: c.Actor.Type, ActorID: c.Actor.ID,
			LeaseOwner: newCallOwner(), LeaseUntil: &leaseUntil, CreatedAt: now,
		},
		BackupID: b.ID,
	})
	if err != nil {
		return pvekeep.Job{}, enqueueError(err)
	}
	if existed {
		return job, nil
	}
	lease := pvekeep.Lease{JobID: job.ID, Owner: job.LeaseOwner, Attempt: job.Attempt}
	return s.dispatchOnCall(ctx, lease, job, func() (pvekeep.Job, error) {
		return s.dispatchRemove(ctx, pc, lease, job, b)
	})
}

// dispatchRemove submits the deletion of a backup volume. A volume that is
// already gone is the goal reached.
func (s *Service) dispatchRemove(ctx context.Context, pc pve.Cluster, lease pvekeep.Lease, job pvekeep.Job, b pvekeep.Backup) (pvekeep.Job, error) {
	node := b.Node
	if node == "" {
		node = job.Node
	}
	var rp removeParams
	if len(job.Params) > 0 {
		if err := json.Unmarshal(job.Params, &rp); err != nil {
			return job, s.failIfFinal(ctx, lease, job, fmt.Errorf("read job %d params: %w", job.ID, err))
		}
	}
	if rp.Unprotect {
		// Proxmox refuses to remove a protected volume. Lifting the
		// protection twice is harmless; a volume already gone is left to
		// DeleteVolume below.
		err := pc.SetVolumeProtected(ctx, node, b.Storage, b.Volid, false)
		if err != nil && !errors.Is(err, pve.ErrNoSuchVolume) && !errors.Is(err, pve.ErrNotFound) {
			return job, s.failIfFinal(ctx, lease, job, submitError("unprotect backup volume", err))
		}
		if err == nil && b.Protected {
			if err := s.sched.SetBackupProtected(ctx, job.ServiceID, b.ID, false); err != nil {
				s.logger.Warn("record a purged backup unprotected", "job_id", job.ID, "backup_id", b.ID, "err", err)
			}
		}
	}
	upid, err := pc.DeleteVolume(ctx, node, b.Storage, b.Volid)
	// Only a storage that answered without the volume means it is gone; a
	// missing storage (unmounted, renamed) may still hold it.
	if errors.Is(err, pve.ErrNoSuchVolume) {
		now := s.clock.Now().UTC()
		job.State = pvekeep.JobSucceeded
		return job, s.finish(ctx, lease, job, store.JobFinish{State: pvekeep.JobSucceeded, Now: now,
			Backup: &store.BackupChange{ID: b.ID, Status: pvekeep.BackupRemoved, RemovedAt: &now}})
	}
	if err != nil {
		return job, s.failIfFinal(ctx, lease, job, submitError("delete backup volume", err))
	}
	now := s.clock.Now().UTC()
	if err := s.st.UpdateJob(ctx, lease, store.JobUpdate{
		State: pvekeep.JobRunning, Step: stepDelete, UPID: upid, Node: node, StartedAt: &now, Now: now,
	}); err != nil {
		return job, dbError(err)
	}
	job.State, job.Step, job.UPID, job.Node, job.StartedAt = pvekeep.JobRunning, stepDelete, upid, node, &now
	return job, nil
}

// GetJob returns one of the service's jobs.
func (s *Service) GetJob(ctx context.Context, c Call, id pvekeep.JobID) (pvekeep.Job, error) {
	if id <= 0 {
		return pvekeep.Job{}, pvekeep.InvalidInput("job_id", "job_id must be a positive integer")
	}
	f, err := s.authorize(ctx, c, read)
	if err != nil {
		return pvekeep.Job{}, err
	}
	j, err := s.st.Job(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && j.ServiceID != f.ServiceID) {
		return pvekeep.Job{}, pvekeep.NotFound("job")
	}
	if err != nil {
		return pvekeep.Job{}, dbError(err)
	}
	return j, nil
}
