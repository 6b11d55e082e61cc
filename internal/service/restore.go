package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pvekeep/pvekeep/internal/plan"
	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/reconcile"
	"github.com/pvekeep/pvekeep/internal/store"
)

// Steps of a restore or reinstall before the reconciliation takes over
// (reconcile.Steps follow them). Stored in mod_pvekeep_jobs.step.
const (
	stepStop    = "stop"    // hard-stop the VM and wait until it is stopped
	stepRestore = "restore" // qmrestore with force=1 over the stopped VM
	stepPurge   = "purge"   // reinstall: destroy the broken VM and its disks
	stepClone   = "clone"   // reinstall: full clone of the OS template into the vmid
	// stepIntact is where a restore or reinstall ends that failed before
	// Proxmox changed the VM's disks: the VM still works, so the panel
	// offers a retry, never a reinstall.
	stepIntact = "intact"
)

// restoreParams are the facts a restore job records when it is made, so
// that any later process can finish it the same way.
type restoreParams struct {
	Volid   string `json:"volid,omitempty"`
	Storage string `json:"storage,omitempty"`
	// MACs keeps each network device's MAC from before the restore: the
	// customer's IP allocations are bound to them, and a backup (or a
	// template) may carry another.
	MACs map[string]string `json:"macs"`
	// WasRunning is informational: the VM is started at the end either way.
	WasRunning bool `json:"was_running"`
	// RetryOf names the failed job this one retries.
	RetryOf pvekeep.JobID `json:"retry_of,omitempty"`
	// Template is what a reinstall clones.
	Template pvekeep.VMID `json:"template,omitempty"`
	// Name is the VM's name to keep (a clone would take the template's).
	Name string `json:"name,omitempty"`
	// Damaged says the job this one retries left the VM unusable: a
	// failure before this job touches the VM does not make it whole.
	Damaged bool `json:"damaged,omitempty"`
}

// paramsOf reads the facts a restore or reinstall job recorded.
func paramsOf(j pvekeep.Job) (restoreParams, error) {
	var p restoreParams
	if err := json.Unmarshal(j.Params, &p); err != nil {
		return p, fmt.Errorf("read job %d params: %w", j.ID, err)
	}
	return p, nil
}

// NextActions are what the panel may offer after a job ended: a failed
// restore or reinstall leaves the VM unusable until one of them succeeds;
// one that failed before touching the VM can only be retried.
func NextActions(j pvekeep.Job) []string {
	if j.State != pvekeep.JobFailed || (j.Kind != pvekeep.KindBackupRestore && j.Kind != pvekeep.KindVMReinstall) {
		return []string{}
	}
	if j.Step == stepIntact {
		return []string{"retry"}
	}
	return []string{"retry", "reinstall"}
}

// leftDamaged says whether a failed restore or reinstall left the VM
// unusable: it touched the VM, or the job it retried had.
func leftDamaged(j pvekeep.Job, p restoreParams) bool {
	return j.Step != stepIntact || p.Damaged
}

// RestoreBackup starts restoring one of the service's backups over its VM.
// The client is told in the panel that this destroys the VM's current
// disks and all its snapshots.
func (s *Service) RestoreBackup(ctx context.Context, c Call, id pvekeep.BackupID, idempotencyKey string) (pvekeep.Job, error) {
	if id <= 0 {
		return pvekeep.Job{}, pvekeep.InvalidInput("backup_id", "backup_id must be a positive integer")
	}
	if err := checkIdempotencyKey(idempotencyKey); err != nil {
		return pvekeep.Job{}, err
	}
	f, err := s.authorize(ctx, c, mutate)
	if err != nil {
		return pvekeep.Job{}, err
	}
	if idempotencyKey != "" {
		// A retry of the click gets its job back, even though it now
		// holds the VM.
		if j, ok, err := s.replay(ctx, f, idempotencyKey, pvekeep.KindBackupRestore, id); err != nil || ok {
			return j, err
		}
	}
	// A busy VM is "locked", whatever else would be wrong with the request.
	if err := s.checkNoJob(ctx, f); err != nil {
		return s.lockedUnlessReplay(ctx, f, idempotencyKey, pvekeep.KindBackupRestore, id, err)
	}
	b, err := s.st.Backup(ctx, f.ServiceID, id)
	if err != nil {
		return pvekeep.Job{}, enqueueError(err)
	}
	if b.Status != pvekeep.BackupAvailable {
		return pvekeep.Job{}, pvekeep.InvalidState(fmt.Sprintf("the backup is %s", b.Status))
	}
	return s.startRestore(ctx, c, f, pvekeep.KindBackupRestore, b.ID, restoreParams{Volid: b.Volid, Storage: b.Storage}, idempotencyKey)
}

// RetryRestore runs a failed restore again from the same backup, or a
// failed reinstall again from the same template.
func (s *Service) RetryRestore(ctx context.Context, c Call, jobID pvekeep.JobID) (pvekeep.Job, error) {
	failed, f, err := s.failedRestoreJob(ctx, c, jobID)
	if err != nil {
		return pvekeep.Job{}, err
	}
	p, err := paramsOf(failed)
	if err != nil {
		return pvekeep.Job{}, err
	}
	damaged := leftDamaged(failed, p)
	if failed.Kind == pvekeep.KindVMReinstall {
		if !damaged && c.Actor.Type == pvekeep.ActorClient {
			// An admin's reinstall of a working VM that failed before
			// touching it: running it again would wipe a working VM.
			return pvekeep.Job{}, pvekeep.InvalidState("the reinstall failed before the VM was changed and it still works; only an administrator can reinstall it")
		}
		return s.startRestore(ctx, c, f, pvekeep.KindVMReinstall, 0, restoreParams{RetryOf: failed.ID, MACs: p.MACs, Name: p.Name, Damaged: damaged}, "")
	}
	b, err := s.st.Backup(ctx, f.ServiceID, failed.BackupID)
	if err != nil {
		return pvekeep.Job{}, enqueueError(err)
	}
	if b.Status != pvekeep.BackupAvailable {
		return pvekeep.Job{}, pvekeep.InvalidState(fmt.Sprintf("the backup is %s", b.Status))
	}
	// The VM may be half-restored: its current MACs are not to be trusted,
	// the failed job's record of them is.
	return s.startRestore(ctx, c, f, pvekeep.KindBackupRestore, b.ID,
		restoreParams{Volid: b.Volid, Storage: b.Storage, RetryOf: failed.ID, MACs: p.MACs, Name: p.Name, Damaged: damaged}, "")
}

// Reinstall purges the VM and clones the product's OS template into the
// same vmid, then reconciles it to the package. For a client it replaces a
// failed restore (jobID, or the latest one when 0; its MACs are kept): a
// client cannot wipe a working VM with one click. An admin may reinstall
// a VM without a failed restore.
func (s *Service) Reinstall(ctx context.Context, c Call, jobID pvekeep.JobID) (pvekeep.Job, error) {
	var p restoreParams
	var f pvekeep.ServiceFacts
	// A client always replaces a failed job: the one named, else (0) the
	// service's latest restore or reinstall, which must have failed.
	if jobID != 0 || c.Actor.Type == pvekeep.ActorClient {
		failed, facts, err := s.failedRestoreJob(ctx, c, jobID)
		if err != nil {
			return pvekeep.Job{}, err
		}
		f = facts
		prev, err := paramsOf(failed)
		if err != nil {
			return pvekeep.Job{}, err
		}
		damaged := leftDamaged(failed, prev)
		if !damaged && c.Actor.Type == pvekeep.ActorClient {
			return pvekeep.Job{}, pvekeep.InvalidState("the restore failed before the VM was changed and it still works: retry the restore instead")
		}
		// The MACs are the failed job's record: a damaged VM's own are not
		// to be trusted.
		p = restoreParams{RetryOf: failed.ID, MACs: prev.MACs, Name: prev.Name, Damaged: damaged}
	} else {
		facts, err := s.authorize(ctx, c, mutate)
		if err != nil {
			return pvekeep.Job{}, err
		}
		if err := s.checkNoJob(ctx, facts); err != nil {
			return pvekeep.Job{}, err
		}
		f = facts
	}
	return s.startRestore(ctx, c, f, pvekeep.KindVMReinstall, 0, p, "")
}

// failedRestoreJob loads a failed restore/reinstall job of the service:
// the one named, or (id 0) the service's latest restore or reinstall,
// which must have failed.
func (s *Service) failedRestoreJob(ctx context.Context, c Call, id pvekeep.JobID) (pvekeep.Job, pvekeep.ServiceFacts, error) {
	if id < 0 {
		return pvekeep.Job{}, pvekeep.ServiceFacts{}, pvekeep.InvalidInput("job_id", "job_id must be a positive integer")
	}
	f, err := s.authorize(ctx, c, mutate)
	if err != nil {
		return pvekeep.Job{}, f, err
	}
	if err := s.checkNoJob(ctx, f); err != nil {
		return pvekeep.Job{}, f, err
	}
	var j pvekeep.Job
	if id == 0 {
		last, ok, err := s.lastRestore(ctx, f.ServiceID)
		if err != nil {
			return pvekeep.Job{}, f, err
		}
		if ok && last.State.Active() {
			return pvekeep.Job{}, f, pvekeep.Locked(lockName(last.Kind), last.ID)
		}
		if !ok || last.State != pvekeep.JobFailed {
			return pvekeep.Job{}, f, pvekeep.InvalidState("there is no failed restore to retry")
		}
		return last, f, nil
	}
	j, err = s.st.Job(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && j.ServiceID != f.ServiceID) {
		return pvekeep.Job{}, f, pvekeep.NotFound("job")
	}
	if err != nil {
		return pvekeep.Job{}, f, dbError(err)
	}
	if j.State.Active() {
		return pvekeep.Job{}, f, pvekeep.Locked(lockName(j.Kind), j.ID)
	}
	if j.Kind != pvekeep.KindBackupRestore && j.Kind != pvekeep.KindVMReinstall {
		return pvekeep.Job{}, f, pvekeep.InvalidState("only a restore or a reinstall can be retried")
	}
	if j.State != pvekeep.JobFailed {
		return pvekeep.Job{}, f, pvekeep.InvalidState(fmt.Sprintf("the job is %s, not failed", j.State))
	}
	return j, f, nil
}

// lastRestore is the service's newest restore or reinstall job.
func (s *Service) lastRestore(ctx context.Context, id pvekeep.ServiceID) (pvekeep.Job, bool, error) {
	js, err := s.st.Jobs(ctx, store.JobFilter{ServiceID: id, Kinds: []pvekeep.JobKind{pvekeep.KindBackupRestore, pvekeep.KindVMReinstall}, Limit: 1})
	if err != nil {
		return pvekeep.Job{}, false, dbError(err)
	}
	if len(js) == 0 {
		return pvekeep.Job{}, false, nil
	}
	return js[0], true, nil
}

// startRestore records the VM's facts, enqueues the job and runs its
// first step within the call. Its callers have refused a busy VM first
// (checkNoJob), before checking anything else about the request; the
// enqueue refuses a job that got in since.
func (s *Service) startRestore(ctx context.Context, c Call, f pvekeep.ServiceFacts, kind pvekeep.JobKind, backupID pvekeep.BackupID, p restoreParams, key string) (pvekeep.Job, error) {
	pl, err := plan.FromFacts(f)
	if err != nil {
		return pvekeep.Job{}, err
	}
	if kind == pvekeep.KindVMReinstall {
		if !pl.VM.OSTemplate.Set || pl.VM.OSTemplate.Value <= 0 {
			return pvekeep.Job{}, pvekeep.InvalidState("the product has no operating system template to reinstall from")
		}
		p.Template = pvekeep.VMID(pl.VM.OSTemplate.Value)
	}
	pc, err := s.connect(ctx, c.Server)
	if err != nil {
		return pvekeep.Job{}, err
	}
	node, err := s.restoreNode(ctx, pc, f, kind, backupID, p)
	if err != nil {
		return pvekeep.Job{}, err
	}
	if kind == pvekeep.KindBackupRestore {
		// Proxmox would refuse a missing archive only after we stopped the VM.
		if _, err := pc.Volume(ctx, node, p.Storage, p.Volid); errors.Is(err, pve.ErrNoSuchVolume) {
			return pvekeep.Job{}, pvekeep.InvalidState("the backup file is no longer on the backup storage")
		} else if err != nil {
			return pvekeep.Job{}, pveError("read backup volume", err)
		}
	}
	ref, err := s.locate(ctx, pc, f.VMID)
	switch {
	case err == nil:
		if ref.Template {
			return pvekeep.Job{}, pvekeep.InvalidState("the service's vmid is a template")
		}
		cfg, err := pc.VMConfig(ctx, ref.Node, f.VMID)
		if err != nil {
			return pvekeep.Job{}, pveError("read vm config", err)
		}
		if cfg["protection"] == "1" {
			// Proxmox would refuse the restore only after we stopped the VM.
			return pvekeep.Job{}, pvekeep.InvalidState("the VM is protected; remove its protection in Proxmox first")
		}
		if err := checkNoProxmoxLock(ctx, pc, f.VMID, ref.Node); err != nil {
			return pvekeep.Job{}, err
		}
		s.recordFacts(ctx, store.VMFacts{ServiceID: f.ServiceID, VMID: f.VMID, Node: ref.Node, Power: ref.Status})
		if p.MACs == nil {
			p.MACs = macsOf(cfg)
			p.Name = cfg["name"]
			p.WasRunning = ref.Status == "running"
		}
	case pvekeep.ReasonOf(err) == pvekeep.ReasonInvalidState:
		// The VM is gone (a failed reinstall purged it): a restore
		// recreates it, a reinstall clones it, on the node found above.
		ref = pve.VMRef{VMID: f.VMID, Node: node}
		if p.MACs == nil {
			p.MACs = map[string]string{}
		}
	default:
		return pvekeep.Job{}, err
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return pvekeep.Job{}, fmt.Errorf("record restore facts: %w", err)
	}
	now := s.clock.Now().UTC()
	leaseUntil := now.Add(s.cfg.LeaseFor)
	job, existed, err := s.st.EnqueueRestore(ctx, store.NewRestore{
		Job: pvekeep.Job{
			ServiceID: f.ServiceID, VMID: f.VMID, ServerID: f.ServerID, Node: ref.Node, Kind: kind, Step: stepStop,
			Params: raw, IdempotencyKey: key, ActorType: c.Actor.Type, ActorID: c.Actor.ID,
			LeaseOwner: newCallOwner(), LeaseUntil: &leaseUntil, CreatedAt: now,
		},
		BackupID: backupID,
	})
	if err != nil {
		return pvekeep.Job{}, enqueueError(err)
	}
	if existed {
		return job, sameRequest(job, kind, backupID)
	}
	s.logger.Info("restore started", "job_id", job.ID, "kind", kind, "service_id", f.ServiceID, "vmid", f.VMID, "backup_id", backupID)
	lease := pvekeep.Lease{JobID: job.ID, Owner: job.LeaseOwner, Attempt: job.Attempt}
	return s.dispatchOnCall(ctx, lease, job, func() (pvekeep.Job, error) {
		// The call only submits the stop; ticks drive the rest.
		return s.restoreStop(ctx, pc, lease, job, p, false)
	})
}

// restoreNode checks what a restore or reinstall needs before anything
// is touched and says where a VM that is gone would be made: a reinstall's
// template must exist, be a template and sit on the VM's node (a full
// clone to another node needs shared storage, which is the provider's
// to arrange); a restore recreates a missing VM on the backup's node.
func (s *Service) restoreNode(ctx context.Context, pc pve.Cluster, f pvekeep.ServiceFacts, kind pvekeep.JobKind, backupID pvekeep.BackupID, p restoreParams) (string, error) {
	vm, vmErr := pc.FindVM(ctx, f.VMID)
	if vmErr != nil && !errors.Is(vmErr, pve.ErrNotFound) {
		return "", pveError("find vm", vmErr)
	}
	if kind == pvekeep.KindVMReinstall {
		t, err := pc.FindVM(ctx, p.Template)
		if errors.Is(err, pve.ErrNotFound) {
			return "", pvekeep.InvalidState(fmt.Sprintf("the operating system template %d does not exist", p.Template))
		}
		if err != nil {
			return "", pveError("find template", err)
		}
		if !t.Template {
			return "", pvekeep.InvalidState(fmt.Sprintf("vmid %d is not a template", p.Template))
		}
		if vmErr == nil && vm.Node != t.Node {
			return "", pvekeep.InvalidState(fmt.Sprintf("the template is on node %s and the VM on %s", t.Node, vm.Node))
		}
		return t.Node, nil
	}
	if vmErr == nil {
		return vm.Node, nil
	}
	b, err := s.st.Backup(ctx, f.ServiceID, backupID)
	if err != nil {
		return "", enqueueError(err)
	}
	return b.Node, nil
}

// macsOf reads every network device's MAC from a VM config.
func macsOf(cfg pve.VMConfig) map[string]string {
	out := map[string]string{}
	for k, v := range cfg {
		if !strings.HasPrefix(k, "net") {
			continue
		}
		if n, err := pve.ParseNet(v); err == nil && n.MAC != "" {
			out[k] = n.MAC
		}
	}
	return out
}

// stepRestoreJob drives a restore or reinstall through every step Proxmox
// lets it finish now: one tick usually takes it from the end of the
// restore task to a running, reconciled VM.
func (s *Service) stepRestoreJob(ctx context.Context, lease pvekeep.Lease, job pvekeep.Job, srv pvekeep.Server) (pvekeep.JobState, error) {
	p, err := paramsOf(job)
	if err != nil {
		return job.State, err
	}
	if msg := s.overdue(job); msg != "" {
		if !touchedYet(job) {
			pc, err := s.connect(ctx, srv)
			if err != nil {
				pc = nil // unreachable is likely why it is overdue
			}
			out, err := s.failUnchanged(ctx, pc, lease, job, p, msg)
			return out.State, err
		}
		out, err := s.failRestore(ctx, lease, job, msg)
		return out.State, err
	}
	pc, err := s.connect(ctx, srv)
	if err != nil {
		return job.State, err
	}
	for i := 0; i < 32; i++ { // a bound, not a budget: each step moves job.Step forward
		var next pvekeep.Job
		switch job.Step {
		case stepStop:
			next, err = s.restoreStop(ctx, pc, lease, job, p, true)
		case stepRestore:
			next, err = s.restoreRun(ctx, pc, srv, lease, job, p)
		case stepPurge:
			next, err = s.reinstallPurge(ctx, pc, lease, job, p)
		case stepClone:
			next, err = s.reinstallClone(ctx, pc, srv, lease, job, p)
		default:
			next, err = s.reconcileJob(ctx, pc, lease, job, p)
		}
		if err != nil {
			return s.stateAfter(ctx, job, err)
		}
		if next.State.Terminal() || next.Step == job.Step {
			return next.State, nil // finished, or waiting on Proxmox
		}
		job = next
	}
	return job.State, nil
}

// advance records that the job's current step is done and names the next.
func (s *Service) advance(ctx context.Context, lease pvekeep.Lease, job pvekeep.Job, step string, pct int) (pvekeep.Job, error) {
	return s.advanceWith(ctx, lease, job, step, pct, nil)
}

// advanceWith is advance that also replaces the job's params (nil: kept).
func (s *Service) advanceWith(ctx context.Context, lease pvekeep.Lease, job pvekeep.Job, step string, pct int, params json.RawMessage) (pvekeep.Job, error) {
	now := s.clock.Now().UTC()
	upd := store.JobUpdate{State: pvekeep.JobRunning, Step: step, ProgressPct: pct, ClearUPID: true, Now: now, Params: params}
	if job.StartedAt == nil {
		upd.StartedAt = &now
	}
	if err := s.st.UpdateJob(ctx, lease, upd); err != nil {
		return job, dbError(err)
	}
	s.crashPoint(job.Step)
	job.State, job.Step, job.UPID = pvekeep.JobRunning, step, ""
	if params != nil {
		job.Params = params
	}
	if pct > job.ProgressPct {
		job.ProgressPct = pct
	}
	return job, nil
}

// submitted records the UPID of the current step's task before anything
// waits on it.
func (s *Service) submitted(ctx context.Context, lease pvekeep.Lease, job pvekeep.Job, upid pvekeep.UPID, node string) (pvekeep.Job, error) {
	now := s.clock.Now().UTC()
	upd := store.JobUpdate{State: pvekeep.JobRunning, Step: job.Step, UPID: upid, Node: node, Now: now}
	if job.StartedAt == nil {
		upd.StartedAt = &now
	}
	if err := s.st.UpdateJob(ctx, lease, upd); err != nil {
		return job, dbError(err)
	}
	job.State, job.UPID = pvekeep.JobRunning, upid
	return job, nil
}

// submitting records that the current step's task is about to be
// requested, before the request: a job found later with the mark and no
// UPID looks for the task in Proxmox's list instead of asking again.
func (s *Service) submitting(ctx context.Context, lease pvekeep.Lease, job pvekeep.Job) (pvekeep.Job, error) {
	now := s.clock.Now().UTC()
	state := job.State
	if !state.Active() {
		state = pvekeep.JobRunning
	}
	if err := s.st.UpdateJob(ctx, lease, store.JobUpdate{State: state, Step: job.Step, Submitting: true, Now: now}); err != nil {
		return job, dbError(err)
	}
	job.State, job.SubmittingAt = state, &now
	return job, nil
}

// await follows a task for at most wait: done reports whether it stopped,
// failure is Proxmox's message when it stopped unsuccessfully. The steps
// a reconciliation waits on (resize, start) take a second or two, so the
// first looks come quickly and back off to TaskPoll by half again each
// time: doubling left a task that ended just after a look unseen for as
// long as it had run (a create's clone, resize and start lost ~0.6 s that
// way; make bench's CreateToRunningVM).
func (s *Service) await(ctx context.Context, pc pve.Cluster, lease pvekeep.Lease, upid pvekeep.UPID, wait time.Duration) (done bool, failure string, err error) {
	deadline := time.Now().Add(wait)
	pause := 50 * time.Millisecond
	for {
		ts, err := pc.TaskStatus(ctx, upid)
		if err != nil {
			return false, "", pveError("read task status", err)
		}
		if !ts.Running {
			if _, ok := taskSucceeded(ts.ExitStatus); ok {
				return true, "", nil
			}
			lines, lerr := pc.TaskLog(ctx, upid, 0)
			if lerr != nil {
				lines = nil
			}
			return true, taskFailure(ts.ExitStatus, lines), nil
		}
		if !time.Now().Add(pause).Before(deadline) {
			return false, "", nil
		}
		if err := s.st.ExtendLease(ctx, lease, s.clock.Now().UTC().Add(s.cfg.LeaseFor)); err != nil {
			return false, "", dbError(err)
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return false, "", ctx.Err()
		case <-t.C:
		}
		pause = min(pause*3/2, s.cfg.TaskPoll)
	}
}

// failRestore ends a restore or reinstall as failed: the VM may be
// unusable, so the panel offers retry and reinstall.
func (s *Service) failRestore(ctx context.Context, lease pvekeep.Lease, job pvekeep.Job, msg string) (pvekeep.Job, error) {
	now := s.clock.Now().UTC()
	if err := s.finish(ctx, lease, job, store.JobFinish{State: pvekeep.JobFailed, Error: msg, Now: now}); err != nil {
		return job, err
	}
	job.State, job.Error, job.FinishedAt = pvekeep.JobFailed, msg, &now
	return job, nil
}

// touchedYet says whether a restore or reinstall may have changed the VM:
// it got past stopping it and asked Proxmox for the task that does.
func touchedYet(j pvekeep.Job) bool {
	switch j.Step {
	case stepStop:
		return false
	case stepRestore, stepPurge:
		return j.UPID != "" || j.SubmittingAt != nil
	}
	return true
}

// failUnchanged ends a restore or reinstall that failed before Proxmox
// changed the VM: a VM that was running is started again (best effort:
// pc may be nil when Proxmox cannot be reached), and the job ends at
// stepIntact so that no one is offered a reinstall of a working VM.
func (s *Service) failUnchanged(ctx context.Context, pc pve.Cluster, lease pvekeep.Lease, job pvekeep.Job, p restoreParams, msg string) (pvekeep.Job, error) {
	if p.Damaged {
		return s.failRestore(ctx, lease, job, msg)
	}
	if p.WasRunning && pc != nil {
		s.startAnyway(ctx, pc, lease, job)
	}
	now := s.clock.Now().UTC()
	if err := s.finish(ctx, lease, job, store.JobFinish{State: pvekeep.JobFailed, Error: msg, Step: stepIntact, Now: now}); err != nil {
		return job, err
	}
	job.State, job.Error, job.Step, job.FinishedAt = pvekeep.JobFailed, msg, stepIntact, &now
	return job, nil
}

// restoreStop hard-stops the VM (a restore overwrites its disks, so a
// clean shutdown buys nothing) and waits until it is stopped.
func (s *Service) restoreStop(ctx context.Context, pc pve.Cluster, lease pvekeep.Lease, job pvekeep.Job, p restoreParams, wait bool) (pvekeep.Job, error) {
	ref, err := s.locate(ctx, pc, job.VMID)
	if err != nil {
		if pvekeep.ReasonOf(err) != pvekeep.ReasonInvalidState {
			return job, err
		}
		// The VM is gone (a reinstall purged it before failing): nothing
		// to stop; a restore recreates it, a reinstall clones it.
		if job.Kind == pvekeep.KindVMReinstall {
			return s.advance(ctx, lease, job, stepClone, 10)
		}
		return s.advance(ctx, lease, job, stepRestore, 5)
	}
	next := stepRestore
	if job.Kind == pvekeep.KindVMReinstall {
		next = stepPurge
	}
	if job.UPID == "" {
		if ref.Status == "stopped" {
			return s.advance(ctx, lease, job, next, 5)
		}
		upid, err := pc.StopVM(ctx, ref.Node, job.VMID)
		if err != nil {
			e := submitError("stop vm", err)
			if pvekeep.ReasonOf(e) == pvekeep.ReasonUnavailable {
				return job, e
			}
			// Also the click's answer when it is the click that stops.
			out, ferr := s.failUnchanged(ctx, pc, lease, job, p, "stopping the VM failed: "+upstreamMessage(e))
			if ferr != nil {
				return out, ferr
			}
			return out, e
		}
		if upid == "" {
			return s.advance(ctx, lease, job, next, 5)
		}
		if job, err = s.submitted(ctx, lease, job, upid, ref.Node); err != nil || !wait {
			return job, err
		}
	}
	done, failure, err := s.await(ctx, pc, lease, job.UPID, 30*time.Second)
	if err != nil || !done {
		return job, err
	}
	if failure != "" {
		return s.failUnchanged(ctx, pc, lease, job, p, "stopping the VM failed: "+failure)
	}
	return s.advance(ctx, lease, job, next, 5)
}

// restoreRun submits qmrestore over the stopped VM and follows it.
func (s *Service) restoreRun(ctx context.Context, pc pve.Cluster, srv pvekeep.Server, lease pvekeep.Lease, job pvekeep.Job, p restoreParams) (pvekeep.Job, error) {
	if job.UPID == "" && job.SubmittingAt != nil {
		// An earlier attempt asked for the restore and never learnt its
		// UPID. A restore that lands late would overwrite the reconciled
		// VM: follow it, never ask twice.
		upid, ok, err := s.findSubmitted(ctx, pc, job, job.Node, "qmrestore", job.VMID, srv)
		if err != nil {
			return job, err
		}
		if ok {
			s.logger.Info("adopted a task an earlier attempt submitted", "job_id", job.ID, "upid", upid)
			return s.submitted(ctx, lease, job, upid, job.Node)
		}
	}
	if job.UPID == "" {
		job, err := s.submitting(ctx, lease, job)
		if err != nil {
			return job, err
		}
		upid, err := pc.RestoreVM(ctx, job.Node, pve.RestoreRequest{VMID: job.VMID, Archive: p.Volid, Force: true})
		if err != nil {
			e := submitError("restore vm", err)
			if pvekeep.ReasonOf(e) == pvekeep.ReasonUnavailable {
				return job, s.ambiguous(e)
			}
			// Proxmox refused the request itself: no task, nothing written.
			return s.failUnchanged(ctx, pc, lease, job, p, upstreamMessage(e))
		}
		return s.submitted(ctx, lease, job, upid, job.Node)
	}
	ts, err := pc.TaskStatus(ctx, job.UPID)
	if err != nil {
		return job, pveError("read task status", err)
	}
	if ts.Running {
		lines, err := pc.TaskLog(ctx, job.UPID, 0)
		if err != nil {
			return job, pveError("read task log", err)
		}
		if pct, ok := lastRestoreProgress(lines); ok {
			overall := 5 + pct*75/100 // the restore is 5–80% of the whole job
			if overall != job.ProgressPct {
				if err := s.st.UpdateJob(ctx, lease, store.JobUpdate{State: job.State, Step: job.Step, ProgressPct: overall, Now: s.clock.Now().UTC()}); err != nil {
					return job, dbError(err)
				}
				job.ProgressPct = overall
			}
		}
		return job, nil
	}
	// qmrestore with force destroys the VM's snapshots before it writes:
	// the plugin's records follow whatever Proxmox still lists.
	s.forgetDestroyedSnapshots(ctx, pc, lease, job)
	if _, ok := taskSucceeded(ts.ExitStatus); !ok {
		lines, lerr := pc.TaskLog(ctx, job.UPID, 0)
		if lerr != nil {
			lines = nil
		}
		return s.failRestore(ctx, lease, job, taskFailure(ts.ExitStatus, lines))
	}
	return s.advance(ctx, lease, job, string(reconcile.Steps[0]), 80)
}

// reinstallPurge destroys the broken VM with its disks.
func (s *Service) reinstallPurge(ctx context.Context, pc pve.Cluster, lease pvekeep.Lease, job pvekeep.Job, p restoreParams) (pvekeep.Job, error) {
	if job.UPID == "" {
		upid, err := pc.DeleteVM(ctx, job.Node, job.VMID, true)
		if errors.Is(err, pve.ErrNotFound) {
			s.forgetDestroyedSnapshots(ctx, pc, lease, job)
			return s.advance(ctx, lease, job, stepClone, 10)
		}
		if err != nil {
			e := submitError("purge vm", err)
			if pvekeep.ReasonOf(e) == pvekeep.ReasonUnavailable {
				return job, e
			}
			return s.failUnchanged(ctx, pc, lease, job, p, upstreamMessage(e))
		}
		if job, err = s.submitted(ctx, lease, job, upid, job.Node); err != nil {
			return job, err
		}
	}
	done, failure, err := s.await(ctx, pc, lease, job.UPID, 60*time.Second)
	if err != nil || !done {
		return job, err
	}
	// Purged or not, the VM's snapshots may be gone: the records follow.
	s.forgetDestroyedSnapshots(ctx, pc, lease, job)
	if failure != "" {
		return s.failRestore(ctx, lease, job, "removing the broken VM failed: "+failure)
	}
	return s.advance(ctx, lease, job, stepClone, 10)
}

// reinstallClone makes a full clone of the template into the vmid. A VM
// already at that vmid after a crash is our clone when it came from the
// template; the clone task's end is what we wait for.
func (s *Service) reinstallClone(ctx context.Context, pc pve.Cluster, srv pvekeep.Server, lease pvekeep.Lease, job pvekeep.Job, p restoreParams) (pvekeep.Job, error) {
	if job.UPID == "" {
		tref, err := pc.FindVM(ctx, p.Template)
		if err != nil {
			if errors.Is(err, pve.ErrNotFound) {
				return s.failRestore(ctx, lease, job, fmt.Sprintf("the operating system template %d does not exist", p.Template))
			}
			return job, pveError("find template", err)
		}
		if job.SubmittingAt != nil {
			// The clone task carries the template's id, not the new one.
			upid, ok, err := s.findSubmitted(ctx, pc, job, tref.Node, "qmclone", p.Template, srv)
			if err != nil {
				return job, err
			}
			if ok {
				if job, err = s.submitted(ctx, lease, job, upid, tref.Node); err != nil {
					return job, err
				}
			}
		}
	}
	if job.UPID == "" {
		tref, err := pc.FindVM(ctx, p.Template)
		if err != nil {
			return job, pveError("find template", err)
		}
		f, err := s.st.Service(ctx, job.ServiceID)
		if err != nil {
			return job, dbError(err)
		}
		pl, err := plan.FromFacts(f)
		if err != nil {
			return s.failRestore(ctx, lease, job, upstreamMessage(err))
		}
		name := cloneName(p, f)
		if job, err = s.submitting(ctx, lease, job); err != nil {
			return job, err
		}
		upid, err := pc.CloneVM(ctx, tref.Node, pve.CloneRequest{
			Template: p.Template, NewID: job.VMID, Name: name, Full: true, Storage: pl.VM.DiskStorage, Target: job.Node,
		})
		if errors.Is(err, pve.ErrAlreadyExists) {
			// Something holds the vmid: ours only if it is the clone this
			// job named (see cloneExists).
			return s.cloneExists(ctx, pc, lease, job, name)
		}
		if err != nil {
			e := submitError("clone template", err)
			if pvekeep.ReasonOf(e) == pvekeep.ReasonUnavailable {
				return job, s.ambiguous(e)
			}
			return s.failRestore(ctx, lease, job, upstreamMessage(e))
		}
		if job, err = s.submitted(ctx, lease, job, upid, tref.Node); err != nil {
			return job, err
		}
	}
	done, failure, err := s.await(ctx, pc, lease, job.UPID, 0)
	if err != nil || !done {
		return job, err
	}
	if failure != "" {
		return s.failRestore(ctx, lease, job, "cloning the operating system template failed: "+failure)
	}
	// An adopted clone task names only the template: confirm it made our VM.
	f, err := s.st.Service(ctx, job.ServiceID)
	if err != nil {
		return job, dbError(err)
	}
	return s.cloneExists(ctx, pc, lease, job, cloneName(p, f))
}

// cloneName is the name a reinstall gives its clone: the VM's old name,
// else the service's hostname. It is how a clone found later is known
// to be this job's.
func cloneName(p restoreParams, f pvekeep.ServiceFacts) string {
	if p.Name != "" {
		return p.Name
	}
	return hostnameLabel(f.Domain)
}

// clonedVM reads the guest at vmid after a clone task, and its config;
// found is false when there is none. The callers (create, reinstall)
// decide whether it is theirs.
func clonedVM(ctx context.Context, pc pve.Cluster, vmid pvekeep.VMID) (pve.VMRef, pve.VMConfig, bool, error) {
	ref, err := pc.FindVM(ctx, vmid)
	if errors.Is(err, pve.ErrNotFound) {
		return ref, nil, false, nil
	}
	if err != nil {
		return ref, nil, false, pveError("find vm", err)
	}
	cfg, err := pc.VMConfig(ctx, ref.Node, vmid)
	if err != nil {
		return ref, nil, false, pveError("read vm config", err)
	}
	return ref, cfg, true, nil
}

// cloneExists decides what a VM at the vmid after the clone step means:
// this job's clone when it carries the name the job gave it, is not a
// template and is no longer being made; anything else is not ours to
// reconcile (another VM may have taken the freed vmid).
func (s *Service) cloneExists(ctx context.Context, pc pve.Cluster, lease pvekeep.Lease, job pvekeep.Job, name string) (pvekeep.Job, error) {
	ref, cfg, found, err := clonedVM(ctx, pc, job.VMID)
	if err != nil {
		return job, err
	}
	if !found {
		return s.failRestore(ctx, lease, job, fmt.Sprintf("the clone did not produce VM %d", job.VMID))
	}
	switch {
	case ref.Template:
		return s.failRestore(ctx, lease, job, fmt.Sprintf("vmid %d is now a template", job.VMID))
	case cfg.Lock() == "clone" || cfg.Lock() == "create":
		return job, pvekeep.Locked(cfg.Lock(), 0) // still being made: look again next tick
	case cfg["name"] != name:
		return s.failRestore(ctx, lease, job, fmt.Sprintf("vmid %d is taken by a VM this reinstall did not make (%q)", job.VMID, cfg["name"]))
	}
	return s.advance(ctx, lease, job, string(reconcile.Steps[0]), 80)
}

// hostnameLabel makes a valid PVE VM name from the service's hostname.
func hostnameLabel(domain string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(domain) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			b.WriteRune(r)
		}
	}
	out := strings.Trim(b.String(), "-.")
	if out == "" {
		return "vm"
	}
	return out
}

func lastRestoreProgress(lines []string) (int, bool) {
	for i := len(lines) - 1; i >= 0; i-- {
		if pct, ok := pve.ParseRestoreProgress(lines[i]); ok {
			return pct, true
		}
	}
	return 0, false
}

func upstreamMessage(err error) string {
	if e, ok := pvekeep.AsError(err); ok {
		if d, ok := e.Data["detail"].(string); ok && d != "" {
			return d
		}
		return e.Message
	}
	return err.Error()
}
