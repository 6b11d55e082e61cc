package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pvekeep/pvekeep/internal/plan"
	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/store"
)

// snapshotStore is what the snapshot rules need from the database.
type snapshotStore interface {
	EnqueueSnapshotCreate(ctx context.Context, r store.NewSnapshotCreate) (pvekeep.Job, pvekeep.Snapshot, bool, error)
	EnqueueSnapshotJob(ctx context.Context, r store.NewSnapshotJob) (pvekeep.Job, pvekeep.Snapshot, bool, error)
	Snapshots(ctx context.Context, id pvekeep.ServiceID, statuses ...pvekeep.SnapshotStatus) ([]pvekeep.Snapshot, error)
	Snapshot(ctx context.Context, id pvekeep.ServiceID, snapID pvekeep.SnapshotID) (pvekeep.Snapshot, error)
	ForgetSnapshots(ctx context.Context, l pvekeep.Lease, kept []string, reason string, now time.Time) (int, error)
	ExpiredSnapshots(ctx context.Context, serverIDs []int64, now time.Time, limit int) ([]store.ExpiredSnapshot, error)
}

// listedSnapshots are the records a client sees: what is or will be in
// Proxmox. Failed and removed records stay as history.
var listedSnapshots = []pvekeep.SnapshotStatus{pvekeep.SnapshotCreating, pvekeep.SnapshotAvailable, pvekeep.SnapshotRemoving}

// Job steps of the snapshot kinds (mod_pvekeep_jobs.step).
const (
	stepSnapshot       = "snapshot"        // qmsnapshot is running
	stepRollback       = "rollback"        // qmrollback is running
	stepSnapshotDelete = "snapshot-delete" // qmdelsnapshot is running
)

// ForeignSnapshot is a snapshot Proxmox has of the VM that the plugin did
// not take for this service (made in the Proxmox UI, or by a previous
// owner of the vmid). Only admins see them; they never count towards the
// quota and no client can roll back to or remove them.
type ForeignSnapshot struct {
	Name        string
	Description string
	CreatedAt   time.Time
	VMState     bool
}

// SnapshotList is what snapshots.list returns.
type SnapshotList struct {
	Status Status
	Quota  Usage
	// LifetimeDays is the product's snapshot lifetime; 0 = kept until removed.
	LifetimeDays int
	// RAMAllowed: the product lets a snapshot save the VM's RAM
	// (configoption23, "Snapshot RAM").
	RAMAllowed bool
	Items      []pvekeep.Snapshot
	ActiveJob  *pvekeep.Job
	// FailedJob is the service's newest job when it is a snapshot job that
	// a client or admin started and that failed: they clicked and must
	// learn why nothing came of it.
	FailedJob *pvekeep.Job
	// RemovedByRestore are the plugin's snapshots the service's latest
	// restore or reinstall destroyed (Proxmox removes them all).
	RemovedByRestore []pvekeep.Snapshot
	// Foreign is for admins only (nil for clients): asked of Proxmox, for
	// StatusTimeout at most; ForeignError says why it could not be.
	Foreign      []ForeignSnapshot
	ForeignError *pvekeep.Error
}

// ListSnapshots returns the service's own snapshots newest first, with
// the quota, the lifetime and the service's status. For a client it
// answers from the database alone (the VM's facts are those cached by
// ticks and clicks); an admin's call also asks Proxmox, bounded, for the
// snapshots the plugin did not take.
func (s *Service) ListSnapshots(ctx context.Context, c Call) (SnapshotList, error) {
	f, err := s.authorize(ctx, c, read)
	if err != nil {
		return SnapshotList{}, err
	}
	all, err := s.snaps.Snapshots(ctx, f.ServiceID)
	if err != nil {
		return SnapshotList{}, dbError(err)
	}
	backups, err := s.st.Backups(ctx, f.ServiceID, listed...)
	if err != nil {
		return SnapshotList{}, dbError(err)
	}
	st, js, err := s.dbStatus(ctx, f, backups, false)
	if err != nil {
		return SnapshotList{}, err
	}
	out, err := snapshotSection(f, all, js)
	if err != nil {
		return SnapshotList{}, err
	}
	st.Snapshots.Used = out.Quota.Used
	out.Status, out.ActiveJob = st, st.ActiveJob
	if c.Actor.Type == pvekeep.ActorAdmin {
		out.Foreign, out.ForeignError = s.foreignSnapshots(ctx, c, f, all)
	}
	return out, nil
}

// snapshotSection is what a page shows of the service's snapshots, from
// its records (all of them, any status) and its jobs: snapshots.list's
// answer and the snapshots part of backups.list, so that a page view
// stays one call.
func snapshotSection(f pvekeep.ServiceFacts, all []pvekeep.Snapshot, js store.ServiceJobs) (SnapshotList, error) {
	pl, err := plan.QuotasFromFacts(f)
	if err != nil {
		return SnapshotList{}, err
	}
	out := SnapshotList{LifetimeDays: pl.SnapshotLifetimeDays, RAMAllowed: pl.SnapshotRAM, Items: []pvekeep.Snapshot{}}
	for _, sn := range all {
		switch {
		case sn.Status.CountsTowardsQuota():
			out.Items = append(out.Items, sn)
		case sn.Status == pvekeep.SnapshotRemoved && js.LastRestore != nil && sn.RemovedByJob == js.LastRestore.ID:
			out.RemovedByRestore = append(out.RemovedByRestore, sn)
		}
	}
	// The notice is news until the client takes a snapshot again.
	for _, sn := range out.Items {
		if js.LastRestore != nil && js.LastRestore.FinishedAt != nil && sn.CreatedAt.After(*js.LastRestore.FinishedAt) {
			out.RemovedByRestore = nil
			break
		}
	}
	out.Quota = Usage{Used: len(out.Items), Max: pl.SnapshotsMax}
	// The cron's own failed expiries are the admin's to see (admin.overview),
	// not an answer to anything the client did.
	if j := js.Newest; j != nil && j.State == pvekeep.JobFailed && isSnapshotKind(j.Kind) && j.ActorType != pvekeep.ActorSystem {
		out.FailedJob = j
	}
	return out, nil
}

// foreignSnapshots asks Proxmox, for StatusTimeout at most, which of the
// VM's snapshots have no record of the plugin's for this service.
func (s *Service) foreignSnapshots(ctx context.Context, c Call, f pvekeep.ServiceFacts, own []pvekeep.Snapshot) ([]ForeignSnapshot, *pvekeep.Error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.StatusTimeout)
	defer cancel()
	pc, ref, _, err := s.vmState(ctx, c.Server, f)
	if err == nil {
		var list pve.Snapshots
		list, err = pc.Snapshots(ctx, ref.Node, f.VMID)
		if err == nil {
			mine := map[string]bool{}
			for _, sn := range own {
				if sn.Status != pvekeep.SnapshotRemoved && sn.Status != pvekeep.SnapshotFailed {
					mine[sn.Name] = true
				}
			}
			out := []ForeignSnapshot{}
			for i := len(list.Items) - 1; i >= 0; i-- {
				it := list.Items[i]
				if !mine[it.Name] {
					out = append(out, ForeignSnapshot{Name: it.Name, Description: it.Description, CreatedAt: it.Time, VMState: it.VMState})
				}
			}
			return out, nil
		}
		err = pveError("list snapshots", err)
	}
	if e, ok := pvekeep.AsError(err); ok {
		return nil, e
	}
	return nil, pvekeep.Unavailable("proxmox", err)
}

func isSnapshotKind(k pvekeep.JobKind) bool {
	return k == pvekeep.KindSnapshotCreate || k == pvekeep.KindSnapshotRollback || k == pvekeep.KindSnapshotRemove
}

// newSnapshotName generates a snapshot's name: the plugin's prefix, the
// UTC time and random hex, e.g. pk20261202-201530-3fa9c1 (24 characters
// of [a-z0-9-], a letter first: DESIGN §4's [a-z][a-z0-9_-]{1,39}, and
// what PVE accepts). Never taken from the client.
func newSnapshotName(now time.Time) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return "pk" + now.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b)
}

// CreateSnapshot takes a snapshot of the service's VM: ownership, lock and
// quota checks (the quota atomically in the database, counting snapshots
// being taken), a durable job, and the qmsnapshot submitted before
// returning. includeRAM saves the VM's RAM too, only when the product
// allows it (configoption23) and the VM runs. A retried request with the
// same idempotency key returns the first one's job.
func (s *Service) CreateSnapshot(ctx context.Context, c Call, description string, includeRAM bool, idempotencyKey string) (pvekeep.Job, error) {
	description, err := cleanNote("description", description)
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
	if pl.SnapshotsMax == 0 {
		return pvekeep.Job{}, pvekeep.QuotaExceeded("snapshots", 0, 0)
	}
	if includeRAM && !pl.SnapshotRAM {
		return pvekeep.Job{}, pvekeep.InvalidInput("include_ram", "this product does not save the VM's RAM with a snapshot")
	}
	if idempotencyKey != "" {
		if j, ok, err := s.replay(ctx, f, idempotencyKey, pvekeep.KindSnapshotCreate, 0); err != nil || ok {
			return j, err
		}
	}
	pc, ref, err := s.reachVM(ctx, c, f)
	if err != nil {
		return s.lockedUnlessReplay(ctx, f, idempotencyKey, pvekeep.KindSnapshotCreate, 0, err)
	}
	if ref.Template {
		return pvekeep.Job{}, pvekeep.InvalidState("the service's vmid is a template")
	}
	now := s.clock.Now().UTC()
	var expires *time.Time
	if pl.SnapshotLifetimeDays > 0 {
		e := now.Add(time.Duration(pl.SnapshotLifetimeDays) * 24 * time.Hour)
		expires = &e
	}
	leaseUntil := now.Add(s.cfg.LeaseFor)
	job, snap, existed, err := s.snaps.EnqueueSnapshotCreate(ctx, store.NewSnapshotCreate{
		Job: pvekeep.Job{
			ServiceID: f.ServiceID, VMID: f.VMID, ServerID: f.ServerID, Node: ref.Node,
			Kind: pvekeep.KindSnapshotCreate, Step: stepDispatch,
			IdempotencyKey: idempotencyKey, ActorType: c.Actor.Type, ActorID: c.Actor.ID,
			LeaseOwner: newCallOwner(), LeaseUntil: &leaseUntil, CreatedAt: now,
		},
		Snapshot: pvekeep.Snapshot{
			VMID: f.VMID, Name: newSnapshotName(now), Description: description,
			VMState: includeRAM && ref.Status == "running", CreatedAt: now, ExpiresAt: expires,
		},
		Max: pl.SnapshotsMax,
	})
	if err != nil {
		return pvekeep.Job{}, snapshotEnqueueError(err)
	}
	if existed {
		return job, sameRequest(job, pvekeep.KindSnapshotCreate, 0)
	}
	lease := pvekeep.Lease{JobID: job.ID, Owner: job.LeaseOwner, Attempt: job.Attempt}
	return s.dispatchOnCall(ctx, lease, job, func() (pvekeep.Job, error) {
		return s.dispatchSnapshotCreate(ctx, pc, c.Server, lease, job, snap)
	})
}

// snapshotEnqueueError maps the store's refusals of snapshot jobs.
func snapshotEnqueueError(err error) error {
	var aj *store.ActiveJobError
	var qe *store.SnapshotQuotaError
	var ss *store.SnapshotStateError
	switch {
	case errors.As(err, &aj):
		return pvekeep.Locked(lockName(aj.Job.Kind), aj.Job.ID)
	case errors.As(err, &qe):
		return pvekeep.QuotaExceeded("snapshots", qe.Used, qe.Max)
	case errors.As(err, &ss):
		return pvekeep.InvalidState(fmt.Sprintf("the snapshot is %s", ss.Status))
	case errors.Is(err, store.ErrNotFound):
		return pvekeep.NotFound("snapshot")
	default:
		return dbError(err)
	}
}

// snapParams reads what a snapshot job recorded.
func snapParams(j pvekeep.Job) (pvekeep.SnapshotJobParams, error) {
	var p pvekeep.SnapshotJobParams
	if err := json.Unmarshal(j.Params, &p); err != nil || p.SnapshotID == 0 || p.Name == "" {
		return p, fmt.Errorf("job %d: no snapshot recorded (%v)", j.ID, err)
	}
	return p, nil
}

// dispatchSnapshotCreate submits the qmsnapshot of a queued job and
// records its UPID. The name was chosen and recorded before: a job that
// may have submitted it already (it died, or the answer was lost) adopts
// the task from Proxmox's list, or finds the snapshot itself, instead of
// asking twice.
func (s *Service) dispatchSnapshotCreate(ctx context.Context, pc pve.Cluster, srv pvekeep.Server, lease pvekeep.Lease, job pvekeep.Job, sn pvekeep.Snapshot) (pvekeep.Job, error) {
	taken := func(node string) (pvekeep.Job, bool, error) {
		list, err := pc.Snapshots(ctx, node, job.VMID)
		if err != nil {
			return job, false, nil
		}
		got, ok := list.Find(sn.Name)
		if !ok || got.State != "" {
			return job, false, nil
		}
		j, err := s.snapshotTaken(ctx, lease, job, sn, got)
		return j, true, err
	}
	node, job, done, err := s.beforeSubmit(ctx, pc, srv, lease, job, "qmsnapshot", stepSnapshot, taken)
	if done {
		return job, err
	}
	upid, err := pc.CreateSnapshot(ctx, node, pve.SnapshotRequest{
		VMID: job.VMID, Name: sn.Name, Description: sn.Description, VMState: sn.VMState,
	})
	if err != nil {
		return job, s.ambiguous(s.failIfFinal(ctx, lease, job, submitError("take snapshot", err)))
	}
	return s.running(ctx, lease, job, stepSnapshot, upid, node)
}

// running records a submitted task's UPID and the step that follows it.
func (s *Service) running(ctx context.Context, lease pvekeep.Lease, job pvekeep.Job, step string, upid pvekeep.UPID, node string) (pvekeep.Job, error) {
	now := s.clock.Now().UTC()
	upd := store.JobUpdate{State: pvekeep.JobRunning, Step: step, UPID: upid, Node: node, Now: now}
	if job.StartedAt == nil {
		upd.StartedAt = &now
	}
	if err := s.st.UpdateJob(ctx, lease, upd); err != nil {
		// The task runs but we could not record it: the lease expires and
		// the next attempt adopts it instead of submitting again.
		return job, dbError(err)
	}
	s.crashPoint(step)
	job.State, job.Step, job.UPID, job.Node = pvekeep.JobRunning, step, upid, node
	if job.StartedAt == nil {
		job.StartedAt = &now
	}
	return job, nil
}

// adoptTask looks for a task of type typ that an earlier attempt of the
// job submitted without learning its UPID, and makes it the job's.
func (s *Service) adoptTask(ctx context.Context, pc pve.Cluster, srv pvekeep.Server, lease pvekeep.Lease, job pvekeep.Job, node, typ, step string) (pvekeep.Job, bool, error) {
	upid, ok, err := s.findSubmitted(ctx, pc, job, node, typ, job.VMID, srv)
	if err != nil || !ok {
		return job, false, err
	}
	s.logger.Info("adopted a task an earlier attempt submitted", "job_id", job.ID, "upid", upid)
	job, err = s.running(ctx, lease, job, step, upid, node)
	return job, err == nil, err
}

// snapshotTaken finishes a create job whose snapshot Proxmox has: its
// time and whether RAM was saved are Proxmox's.
func (s *Service) snapshotTaken(ctx context.Context, lease pvekeep.Lease, job pvekeep.Job, sn pvekeep.Snapshot, got pve.Snapshot) (pvekeep.Job, error) {
	now := s.clock.Now().UTC()
	vmstate := got.VMState
	ch := &store.SnapshotChange{ID: sn.ID, Status: pvekeep.SnapshotAvailable, VMState: &vmstate}
	// Taken now, by the plugin's clock: the one the cron expires it by
	// (Proxmox's may be skewed), and the lifetime counts from here, not
	// from the click.
	ch.CreatedAt = &now
	if sn.ExpiresAt != nil {
		e := now.Add(sn.ExpiresAt.Sub(sn.CreatedAt))
		ch.ExpiresAt = &e
	}
	if err := s.finish(ctx, lease, job, store.JobFinish{State: pvekeep.JobSucceeded, Now: now, Snapshot: ch}); err != nil {
		return job, err
	}
	job.State, job.FinishedAt, job.ProgressPct = pvekeep.JobSucceeded, &now, 100
	return job, nil
}

// endedSnapshotTask is a snapshot or rollback job whose Proxmox task has
// ended, with what its step read on the way.
type endedSnapshotTask struct {
	pc pve.Cluster
	p  pvekeep.SnapshotJobParams
	sn pvekeep.Snapshot
	ts pve.TaskStatus
}

// followSnapshotTask is what taking and rolling back a snapshot do alike
// until their task has ended: connect, load the job's snapshot, submit
// the task with dispatch if it is not submitted yet, give up once overdue
// and read the task's status. ended is false while the job is not there
// yet; the step then returns state and err as they are.
func (s *Service) followSnapshotTask(ctx context.Context, lease pvekeep.Lease, job pvekeep.Job, srv pvekeep.Server,
	dispatch func(context.Context, pve.Cluster, pvekeep.Server, pvekeep.Lease, pvekeep.Job, pvekeep.Snapshot) (pvekeep.Job, error),
) (t endedSnapshotTask, ended bool, state pvekeep.JobState, err error) {
	pc, err := s.connect(ctx, srv)
	if err != nil {
		if msg := s.overdue(job); msg != "" {
			state, err = s.stateAfter(ctx, job, s.failIfFinal(ctx, lease, job, pvekeep.Upstream(msg, nil)))
			return t, false, state, err
		}
		return t, false, job.State, err
	}
	p, err := snapParams(job)
	if err != nil {
		state, err = s.stateAfter(ctx, job, s.failIfFinal(ctx, lease, job, pvekeep.InvalidState(err.Error())))
		return t, false, state, err
	}
	sn, err := s.snaps.Snapshot(ctx, job.ServiceID, p.SnapshotID)
	if err != nil {
		return t, false, job.State, dbError(fmt.Errorf("load snapshot %d: %w", p.SnapshotID, err))
	}
	if job.UPID == "" {
		out, err := dispatch(ctx, pc, srv, lease, job, sn)
		state, err = s.stateAfter(ctx, out, err)
		return t, false, state, err
	}
	if msg := s.overdue(job); msg != "" {
		state, err = s.stateAfter(ctx, job, s.failIfFinal(ctx, lease, job, pvekeep.Upstream(msg, nil)))
		return t, false, state, err
	}
	ts, err := pc.TaskStatus(ctx, job.UPID)
	if err != nil {
		return t, false, job.State, pveError("read task status", err)
	}
	if ts.Running {
		return t, false, job.State, nil
	}
	return endedSnapshotTask{pc: pc, p: p, sn: sn, ts: ts}, true, job.State, nil
}

// stepSnapshotCreate advances a snapshot job: submit the qmsnapshot if it
// is not yet submitted, else follow it to the end.
func (s *Service) stepSnapshotCreate(ctx context.Context, lease pvekeep.Lease, job pvekeep.Job, srv pvekeep.Server) (pvekeep.JobState, error) {
	t, ended, state, err := s.followSnapshotTask(ctx, lease, job, srv, s.dispatchSnapshotCreate)
	if !ended {
		return state, err
	}
	pc, sn, ts := t.pc, t.sn, t.ts
	list, err := pc.Snapshots(ctx, job.Node, job.VMID)
	if err != nil {
		return job.State, pveError("list snapshots", err)
	}
	// Whatever the task says, the snapshot list decides: a resubmission
	// after a lost answer fails with "already used" when the first one
	// took it.
	if got, ok := list.Find(sn.Name); ok && got.State == "" {
		out, err := s.snapshotTaken(ctx, lease, job, sn, got)
		return s.stateAfter(ctx, out, err)
	}
	if _, ok := taskSucceeded(ts.ExitStatus); ok {
		return job.State, pvekeep.Upstream("the snapshot task finished but the snapshot is not listed", nil)
	}
	lines, lerr := pc.TaskLog(ctx, job.UPID, 0)
	if lerr != nil {
		lines = nil
	}
	now := s.clock.Now().UTC()
	return pvekeep.JobFailed, s.finish(ctx, lease, job, store.JobFinish{
		State: pvekeep.JobFailed, Error: taskFailure(ts.ExitStatus, lines), Now: now,
		Snapshot: &store.SnapshotChange{ID: sn.ID, Status: pvekeep.SnapshotFailed},
	})
}

// snapshotByName checks a client's snapshot name: the plugin generates
// them, so anything PVE would not accept is not one of ours.
func checkSnapshotName(name string) error {
	if !pve.ValidSnapshotName(name) {
		return pvekeep.InvalidInput("name", "not a snapshot name")
	}
	return nil
}

// RollbackSnapshot returns the service's VM to one of the plugin's
// snapshots of it. Refused while the VM is locked. The VM runs afterwards
// when it ran before or the snapshot holds its RAM. On storage that rolls
// back only to the newest snapshot (ZFS) an older target is refused as
// invalid_state before anything changed: Proxmox itself decides, first
// thing in its rollback task and before it stops the VM, and this call
// waits (RollbackVerdict at most) for that decision when the target is
// not the newest snapshot. See docs/adr/010-snapshots.md.
func (s *Service) RollbackSnapshot(ctx context.Context, c Call, name, idempotencyKey string) (pvekeep.Job, error) {
	return s.snapshotJob(ctx, c, pvekeep.KindSnapshotRollback, name, idempotencyKey)
}

// RemoveSnapshot removes one of the plugin's snapshots of the service's VM.
func (s *Service) RemoveSnapshot(ctx context.Context, c Call, name, idempotencyKey string) (pvekeep.Job, error) {
	return s.snapshotJob(ctx, c, pvekeep.KindSnapshotRemove, name, idempotencyKey)
}

func (s *Service) snapshotJob(ctx context.Context, c Call, kind pvekeep.JobKind, name, idempotencyKey string) (pvekeep.Job, error) {
	if err := checkSnapshotName(name); err != nil {
		return pvekeep.Job{}, err
	}
	if err := checkIdempotencyKey(idempotencyKey); err != nil {
		return pvekeep.Job{}, err
	}
	f, err := s.authorize(ctx, c, mutate)
	if err != nil {
		return pvekeep.Job{}, err
	}
	if idempotencyKey != "" {
		if j, ok, err := s.replay(ctx, f, idempotencyKey, kind, 0); err != nil || ok {
			return j, err
		}
	}
	pc, ref, err := s.reachVM(ctx, c, f)
	if err != nil {
		return s.lockedUnlessReplay(ctx, f, idempotencyKey, kind, 0, err)
	}
	now := s.clock.Now().UTC()
	leaseUntil := now.Add(s.cfg.LeaseFor)
	job, sn, existed, err := s.snaps.EnqueueSnapshotJob(ctx, store.NewSnapshotJob{
		Job: pvekeep.Job{
			ServiceID: f.ServiceID, VMID: f.VMID, ServerID: f.ServerID, Node: ref.Node, Kind: kind, Step: stepDispatch,
			IdempotencyKey: idempotencyKey, ActorType: c.Actor.Type, ActorID: c.Actor.ID,
			LeaseOwner: newCallOwner(), LeaseUntil: &leaseUntil, CreatedAt: now,
		},
		Name:  name,
		Start: kind == pvekeep.KindSnapshotRollback && ref.Status == "running",
	})
	if err != nil {
		return pvekeep.Job{}, snapshotEnqueueError(err)
	}
	if existed {
		return job, sameRequest(job, kind, 0)
	}
	lease := pvekeep.Lease{JobID: job.ID, Owner: job.LeaseOwner, Attempt: job.Attempt}
	if kind == pvekeep.KindSnapshotRemove {
		return s.dispatchOnCall(ctx, lease, job, func() (pvekeep.Job, error) {
			return s.dispatchSnapshotRemove(ctx, pc, c.Server, lease, job, sn)
		})
	}
	return s.dispatchOnCall(ctx, lease, job, func() (pvekeep.Job, error) {
		out, err := s.dispatchRollback(ctx, pc, c.Server, lease, job, sn)
		if err != nil || out.UPID == "" {
			return out, err
		}
		return s.rollbackVerdict(ctx, pc, lease, out, sn)
	})
}

// errNotNewest is what a client reads when Proxmox refuses an older
// target on a newest-only storage.
const errNotNewest = "this storage can only roll back to the newest snapshot: remove the newer snapshots first, or roll back to the newest"

// notNewestError is the invalid_state a refused older target answers;
// data.state "not_newest_snapshot" lets the panel pick its own
// translated message for it.
func notNewestError() *pvekeep.Error {
	e := pvekeep.InvalidState(errNotNewest)
	e.Data = map[string]any{"state": "not_newest_snapshot"}
	return e
}

// rollbackVerdict waits, RollbackVerdict at most, for Proxmox to decide
// whether it can roll back to sn at all: its rollback task checks the
// storage first (ZFS refuses any but the newest snapshot), then stops the
// VM and takes the lock "rollback". Only an older target can be refused
// that way, so only then does the click wait. A refusal ends the job and
// is answered as invalid_state: the VM was never touched. Past the wait
// the ticks follow the task and fail the job with the same message.
func (s *Service) rollbackVerdict(ctx context.Context, pc pve.Cluster, lease pvekeep.Lease, job pvekeep.Job, sn pvekeep.Snapshot) (pvekeep.Job, error) {
	list, err := pc.Snapshots(ctx, job.Node, job.VMID)
	if err != nil {
		return job, nil // the tick follows the task either way
	}
	if n := len(list.Items); n == 0 || list.Items[n-1].Name == sn.Name {
		return job, nil
	}
	wctx, cancel := context.WithTimeout(ctx, s.cfg.RollbackVerdict)
	defer cancel()
	pause := 20 * time.Millisecond
	for {
		ts, err := pc.TaskStatus(wctx, job.UPID)
		if err != nil {
			return job, nil
		}
		if !ts.Running {
			if _, ok := taskSucceeded(ts.ExitStatus); ok {
				return job, nil
			}
			if isNotNewest(ts.ExitStatus) {
				now := s.clock.Now().UTC()
				if err := s.finish(ctx, lease, job, store.JobFinish{State: pvekeep.JobFailed, Error: errNotNewest, Now: now}); err != nil {
					return job, err
				}
				job.State, job.Error, job.FinishedAt = pvekeep.JobFailed, errNotNewest, &now
				return job, notNewestError()
			}
			return job, nil
		}
		if st, err := pc.VMStatus(wctx, job.Node, job.VMID); err == nil && st.Lock == "rollback" {
			return job, nil // past Proxmox's check
		}
		t := time.NewTimer(pause)
		select {
		case <-wctx.Done():
			t.Stop()
			return job, nil
		case <-t.C:
		}
		pause = min(2*pause, 200*time.Millisecond)
	}
}

// isNotNewest reads a rollback task's exit status as PVE's newest-only
// refusal ("can't rollback, 'X' is not most recent snapshot on 'vol'").
func isNotNewest(exit string) bool {
	return strings.Contains(strings.ToLower(exit), "is not most recent snapshot")
}

// dispatchRollback submits the qmrollback of a queued job. start asks
// Proxmox to start the VM afterwards (it ran when the client clicked); a
// snapshot with RAM resumes it anyway.
func (s *Service) dispatchRollback(ctx context.Context, pc pve.Cluster, srv pvekeep.Server, lease pvekeep.Lease, job pvekeep.Job, sn pvekeep.Snapshot) (pvekeep.Job, error) {
	p, err := snapParams(job)
	if err != nil {
		return job, s.failIfFinal(ctx, lease, job, pvekeep.InvalidState(err.Error()))
	}
	node, job, done, err := s.beforeSubmit(ctx, pc, srv, lease, job, "qmrollback", stepRollback, nil)
	if done {
		return job, err
	}
	upid, err := pc.RollbackSnapshot(ctx, node, job.VMID, sn.Name, p.Start && !sn.VMState)
	if err != nil {
		if errors.Is(err, pve.ErrNotNewestSnapshot) {
			return job, s.failIfFinal(ctx, lease, job, notNewestError())
		}
		return job, s.ambiguous(s.failIfFinal(ctx, lease, job, submitError("roll back", err)))
	}
	return s.running(ctx, lease, job, stepRollback, upid, node)
}

// stepSnapshotRollback advances a rollback job.
func (s *Service) stepSnapshotRollback(ctx context.Context, lease pvekeep.Lease, job pvekeep.Job, srv pvekeep.Server) (pvekeep.JobState, error) {
	t, ended, state, err := s.followSnapshotTask(ctx, lease, job, srv, s.dispatchRollback)
	if !ended {
		return state, err
	}
	pc, p, sn, ts := t.pc, t.p, t.sn, t.ts
	now := s.clock.Now().UTC()
	if _, ok := taskSucceeded(ts.ExitStatus); !ok {
		msg := errNotNewest
		if !isNotNewest(ts.ExitStatus) {
			lines, lerr := pc.TaskLog(ctx, job.UPID, 0)
			if lerr != nil {
				lines = nil
			}
			msg = taskFailure(ts.ExitStatus, lines)
		}
		return pvekeep.JobFailed, s.finish(ctx, lease, job, store.JobFinish{State: pvekeep.JobFailed, Error: msg, Now: now})
	}
	if p.Start || sn.VMState {
		// Proxmox started or resumed it; make sure (a PVE before 7.3
		// ignores start), best effort: the rollback itself succeeded.
		s.startAnyway(ctx, pc, lease, job)
	}
	return pvekeep.JobSucceeded, s.finish(ctx, lease, job, store.JobFinish{State: pvekeep.JobSucceeded, Now: s.clock.Now().UTC()})
}

// dispatchSnapshotRemove submits the qmdelsnapshot of a queued removal.
// A snapshot already gone is the goal reached.
func (s *Service) dispatchSnapshotRemove(ctx context.Context, pc pve.Cluster, srv pvekeep.Server, lease pvekeep.Lease, job pvekeep.Job, sn pvekeep.Snapshot) (pvekeep.Job, error) {
	node, job, done, err := s.beforeSubmit(ctx, pc, srv, lease, job, "qmdelsnapshot", stepSnapshotDelete, nil)
	if done {
		return job, err
	}
	upid, err := pc.DeleteSnapshot(ctx, node, job.VMID, sn.Name, false)
	if errors.Is(err, pve.ErrNotFound) {
		return s.snapshotRemoved(ctx, lease, job, sn)
	}
	if err != nil {
		return job, s.ambiguous(s.failIfFinal(ctx, lease, job, submitError("remove snapshot", err)))
	}
	return s.running(ctx, lease, job, stepSnapshotDelete, upid, node)
}

func (s *Service) snapshotRemoved(ctx context.Context, lease pvekeep.Lease, job pvekeep.Job, sn pvekeep.Snapshot) (pvekeep.Job, error) {
	now := s.clock.Now().UTC()
	reason := pvekeep.SnapshotRemovedByClient
	if job.ActorType == pvekeep.ActorSystem {
		reason = pvekeep.SnapshotRemovedByExpiry
	}
	if err := s.finish(ctx, lease, job, store.JobFinish{State: pvekeep.JobSucceeded, Now: now,
		Snapshot: &store.SnapshotChange{ID: sn.ID, Status: pvekeep.SnapshotRemoved, RemovedAt: &now, RemovedReason: reason}}); err != nil {
		return job, err
	}
	job.State, job.FinishedAt, job.ProgressPct = pvekeep.JobSucceeded, &now, 100
	return job, nil
}

// stepSnapshotRemove advances a removal job.
func (s *Service) stepSnapshotRemove(ctx context.Context, lease pvekeep.Lease, job pvekeep.Job, srv pvekeep.Server) (pvekeep.JobState, error) {
	p, err := snapParams(job)
	if err != nil {
		return s.stateAfter(ctx, job, s.failIfFinal(ctx, lease, job, pvekeep.InvalidState(err.Error())))
	}
	if msg := s.overdue(job); msg != "" {
		return s.stateAfter(ctx, job, s.failIfFinal(ctx, lease, job, pvekeep.Upstream(msg, nil)))
	}
	pc, err := s.connect(ctx, srv)
	if err != nil {
		return job.State, err
	}
	sn, err := s.snaps.Snapshot(ctx, job.ServiceID, p.SnapshotID)
	if err != nil {
		return job.State, dbError(fmt.Errorf("load snapshot %d: %w", p.SnapshotID, err))
	}
	if job.UPID == "" {
		out, err := s.dispatchSnapshotRemove(ctx, pc, srv, lease, job, sn)
		return s.stateAfter(ctx, out, err)
	}
	ts, err := pc.TaskStatus(ctx, job.UPID)
	if err != nil {
		return job.State, pveError("read task status", err)
	}
	if ts.Running {
		return job.State, nil
	}
	if _, ok := taskSucceeded(ts.ExitStatus); !ok {
		list, lerr := pc.Snapshots(ctx, job.Node, job.VMID)
		if lerr == nil {
			if _, still := list.Find(sn.Name); !still {
				out, err := s.snapshotRemoved(ctx, lease, job, sn)
				return s.stateAfter(ctx, out, err)
			}
		}
		lines, lerr := pc.TaskLog(ctx, job.UPID, 0)
		if lerr != nil {
			lines = nil
		}
		msg := taskFailure(ts.ExitStatus, lines)
		return pvekeep.JobFailed, s.finish(ctx, lease, job, store.JobFinish{
			State: pvekeep.JobFailed, Error: msg, Now: s.clock.Now().UTC(),
			Snapshot: &store.SnapshotChange{ID: sn.ID, Status: pvekeep.SnapshotAvailable, Error: msg},
		})
	}
	out, err := s.snapshotRemoved(ctx, lease, job, sn)
	return s.stateAfter(ctx, out, err)
}

// snapshotFailure is the change a failed snapshot job makes to its
// snapshot: one being taken never was; one being removed is still there
// (the error recorded for the admin tab); a rollback leaves it as it is.
func snapshotFailure(job pvekeep.Job, msg string) *store.SnapshotChange {
	p, err := snapParams(job)
	if err != nil {
		return nil
	}
	switch job.Kind {
	case pvekeep.KindSnapshotCreate:
		return &store.SnapshotChange{ID: p.SnapshotID, Status: pvekeep.SnapshotFailed}
	case pvekeep.KindSnapshotRemove:
		return &store.SnapshotChange{ID: p.SnapshotID, Status: pvekeep.SnapshotAvailable, Error: msg}
	}
	return nil
}

// forgetDestroyedSnapshots records that Proxmox no longer has the
// service's snapshots after a restore or reinstall (qmrestore with force
// and a purge destroy them all): whatever the VM still lists is kept,
// everything else is marked removed by this job. Best effort: a record
// left behind fails its next rollback or vanishes at its removal.
func (s *Service) forgetDestroyedSnapshots(ctx context.Context, pc pve.Cluster, lease pvekeep.Lease, job pvekeep.Job) {
	var kept []string
	if pc != nil {
		list, err := pc.Snapshots(ctx, job.Node, job.VMID)
		switch {
		case err == nil:
			for _, it := range list.Items {
				kept = append(kept, it.Name)
			}
		case errors.Is(err, pve.ErrNotFound):
		default:
			// A restore with force destroys every snapshot: without the
			// list, records of snapshots that no longer exist would
			// count in the quota and offer rollbacks that fail.
			s.logger.Warn("list snapshots after restore: forgetting all of them", "job_id", job.ID, "err", err)
			kept = nil
		}
	}
	n, err := s.snaps.ForgetSnapshots(ctx, lease, kept, pvekeep.SnapshotRemovedByRestore, s.clock.Now().UTC())
	if err != nil {
		s.logger.Warn("forget snapshots after restore", "job_id", job.ID, "err", err)
		return
	}
	if n > 0 {
		s.logger.Info("snapshots destroyed by the restore", "job_id", job.ID, "service_id", job.ServiceID, "count", n)
	}
}

// maxExpiriesPerTick bounds how many expired snapshots one tick queues
// removals for; the rest wait for the next tick.
const maxExpiriesPerTick = 200

// expireSnapshots queues a removal (actor system) for every snapshot past
// its lifetime on the tick's servers, unless the service is busy: then the
// next tick tries again. The removals run as ordinary jobs in this tick's
// pass, one service's failure never holding up another's; a failed one
// puts the snapshot back as available with the error, for the admin tab
// and the next tick. It returns how many removals it queued.
func (s *Service) expireSnapshots(ctx context.Context, serverIDs []int64) int {
	now := s.clock.Now().UTC()
	expired, err := s.snaps.ExpiredSnapshots(ctx, serverIDs, now, maxExpiriesPerTick)
	if err != nil {
		s.logger.Warn("list expired snapshots", "err", err)
		return 0
	}
	n := 0
	for _, ex := range expired {
		f, err := s.st.Service(ctx, ex.ServiceID)
		if err != nil {
			s.logger.Warn("expire snapshot: load service", "service_id", ex.ServiceID, "err", err)
			continue
		}
		if f.VMID != ex.VMID {
			continue // the service's VM changed: the snapshot went with the old one
		}
		_, _, _, err = s.snaps.EnqueueSnapshotJob(ctx, store.NewSnapshotJob{
			Job: pvekeep.Job{
				ServiceID: f.ServiceID, VMID: f.VMID, ServerID: f.ServerID, Kind: pvekeep.KindSnapshotRemove,
				Step: stepDispatch, ActorType: pvekeep.ActorSystem, CreatedAt: now,
			},
			Name: ex.Name,
		})
		var aj *store.ActiveJobError
		switch {
		case err == nil:
			n++
		case errors.As(err, &aj):
			// busy: the next tick
		default:
			s.logger.Warn("expire snapshot", "service_id", ex.ServiceID, "snapshot", ex.Name, "err", err)
		}
	}
	return n
}

// beforeSubmit is what every snapshot dispatch does before it asks
// Proxmox: find the VM's node; when an earlier run may have submitted
// already, adopt its task (or let found recognise the goal reached)
// instead of asking twice; refuse once overdue; mark the job submitting.
// done means job and err are the dispatch's answer already.
func (s *Service) beforeSubmit(ctx context.Context, pc pve.Cluster, srv pvekeep.Server, lease pvekeep.Lease, job pvekeep.Job, typ, step string, found func(node string) (pvekeep.Job, bool, error)) (node string, _ pvekeep.Job, done bool, _ error) {
	ref, err := s.locate(ctx, pc, job.VMID)
	if err != nil {
		return "", job, true, s.failIfFinal(ctx, lease, job, err)
	}
	if job.SubmittingAt != nil {
		if adopted, ok, err := s.adoptTask(ctx, pc, srv, lease, job, ref.Node, typ, step); err != nil || ok {
			return ref.Node, adopted, true, err
		}
		if found != nil {
			if got, ok, err := found(ref.Node); ok || err != nil {
				return ref.Node, got, true, err
			}
		}
	}
	if msg := s.overdue(job); msg != "" {
		return ref.Node, job, true, s.failIfFinal(ctx, lease, job, pvekeep.Upstream(msg, nil))
	}
	job, err = s.submitting(ctx, lease, job)
	if err != nil {
		return ref.Node, job, true, err
	}
	return ref.Node, job, false, nil
}
