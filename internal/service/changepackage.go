package service

import (
	"context"
	"fmt"
	"time"

	"github.com/pvekeep/pvekeep/internal/plan"
	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/reconcile"
)

// service.change_package (WHMCS's ChangePackage, after an upgrade or a
// downgrade WHMCS has already written to the service): the VM is put at
// the new package by the reconciliation a restore uses, leaving its power
// as it is (a suspended VM stays off). Proxmox only grows disks: a package
// whose system or additional disk is smaller than the VM's, or that drops
// the additional disk, is refused before anything changes. Changes a
// running VM cannot take live (CPU and RAM without hotplug) wait in
// Proxmox's pending section; then, and only then, the VM is restarted —
// a clean shutdown, a hard stop if the guest does not go down, a start.

// Steps after the reconciliation.
const (
	// stepApplyPending is where the reconciliation ends (StepDone): decide
	// whether the VM needs a restart.
	stepApplyPending = string(reconcile.StepDone)
	stepRestartDown  = "restart_down"  // shutdown for the pending changes
	stepRestartStop  = "restart_stop"  // hard stop when the shutdown failed
	stepRestartStart = "restart_start" // start with the pending changes applied
	changeCallBudget = 8 * time.Second // what the call itself spends on the reconciliation
	restartShutdown  = 2 * time.Minute // the guest's time to power off
)

// ChangePackage starts service.change_package. The refusal of a shrink
// comes from the call itself, with nothing changed and no job.
func (s *Service) ChangePackage(ctx context.Context, c Call) (pvekeep.Job, error) {
	f, err := s.authorizeLifecycle(ctx, c)
	if err != nil {
		return pvekeep.Job{}, err
	}
	if j, ok, err := s.sameKindActive(ctx, f, pvekeep.KindServiceChangePackage); err != nil || ok {
		return j, err
	}
	pl, err := plan.FromFacts(f)
	if err != nil {
		return pvekeep.Job{}, err
	}
	pc, ref, err := s.reachLifecycleVM(ctx, c, f)
	if err != nil {
		return pvekeep.Job{}, err
	}
	cfg, err := pc.VMConfig(ctx, ref.Node, f.VMID)
	if err != nil {
		return pvekeep.Job{}, pveError("read vm config", err)
	}
	if err := refuseShrink(cfg, pl.VM); err != nil {
		return pvekeep.Job{}, err
	}
	// The disk storage matters only for an additional disk the VM lacks.
	newDisk := pl.VM.ExtraDiskGiB.Value > 0 && cfg[pl.VM.ExtraDisk] == ""
	if err := refuseUnfit(ctx, pc, ref.Node, pl.VM, newDisk); err != nil {
		return pvekeep.Job{}, err
	}
	return s.startLifecycle(ctx, c, f, pvekeep.KindServiceChangePackage, f.VMID, ref.Node, string(reconcile.Steps[0]), nil,
		func(pc pve.Cluster, lease pvekeep.Lease, job pvekeep.Job) (pvekeep.Job, error) {
			// As much as fits in the call; the tick does the rest.
			cctx, cancel := context.WithTimeout(ctx, changeCallBudget)
			defer cancel()
			return s.changePackageStep(cctx, pc, c.Server, lease, job, 0)
		}, pc)
}

// refuseShrink says why the VM cannot be put at the package without
// losing data: a disk smaller than the VM's, or no additional disk where
// the VM has one.
func refuseShrink(cfg pve.VMConfig, vm plan.VM) error {
	size := func(key string) (int64, bool) {
		d, err := pve.ParseDrive(cfg[key])
		if cfg[key] == "" || err != nil || d.IsCDROM() {
			return 0, false
		}
		return d.Size(), true
	}
	gb := func(b int64) string { return fmt.Sprintf("%d GB", (b+(1<<30)-1)>>30) }
	if vm.SystemDiskGiB.Set {
		if cur, ok := size(vm.SystemDisk); ok && cur > int64(vm.SystemDiskGiB.Value)<<30 {
			return pvekeep.InvalidState(fmt.Sprintf("the new package's system disk (%d GB) is smaller than the VM's (%s): Proxmox can only grow disks, so nothing was changed", vm.SystemDiskGiB.Value, gb(cur)))
		}
	}
	if vm.ExtraDiskGiB.Set {
		cur, ok := size(vm.ExtraDisk)
		switch {
		case ok && vm.ExtraDiskGiB.Value == 0:
			return pvekeep.InvalidState(fmt.Sprintf("the new package has no additional disk, but the VM has one (%s): removing it would delete its data, so nothing was changed", gb(cur)))
		case ok && cur > int64(vm.ExtraDiskGiB.Value)<<30:
			return pvekeep.InvalidState(fmt.Sprintf("the new package's additional disk (%d GB) is smaller than the VM's (%s): Proxmox can only grow disks, so nothing was changed", vm.ExtraDiskGiB.Value, gb(cur)))
		}
	}
	return nil
}

func (s *Service) stepChangePackage(ctx context.Context, lease pvekeep.Lease, job pvekeep.Job, srv pvekeep.Server) (pvekeep.JobState, error) {
	return s.runSteps(ctx, lease, job, srv, 32, func(pc pve.Cluster, job pvekeep.Job) (pvekeep.Job, error) {
		return s.changePackageStep(ctx, pc, srv, lease, job, 60*time.Second)
	})
}

func (s *Service) changePackageStep(ctx context.Context, pc pve.Cluster, srv pvekeep.Server, lease pvekeep.Lease, job pvekeep.Job, wait time.Duration) (pvekeep.Job, error) {
	switch job.Step {
	case stepApplyPending:
		return s.restartIfPending(ctx, pc, lease, job)
	case stepRestartDown, stepRestartStop, stepRestartStart:
		return s.restartStep(ctx, pc, srv, lease, job, wait)
	}
	f, err := s.st.Service(ctx, job.ServiceID)
	if err != nil {
		return job, dbError(err)
	}
	pl, err := plan.FromFacts(f)
	if err != nil {
		return s.failJob(ctx, lease, job, upstreamMessage(err))
	}
	out, res, err := s.runReconcile(ctx, pc, lease, job, f, pl, nil, noEmail{}, true)
	if err != nil {
		return out, err
	}
	if res.Failed != "" {
		return s.failJob(ctx, lease, out, "putting the VM at the new package failed at "+res.Failed)
	}
	return out, nil // at StepDone ("done") the loop goes on to the restart check
}

// restartIfPending ends the job when the VM took every change, else
// restarts it (a running VM only: a stopped one applies them when it
// next starts).
func (s *Service) restartIfPending(ctx context.Context, pc pve.Cluster, lease pvekeep.Lease, job pvekeep.Job) (pvekeep.Job, error) {
	st, err := pc.VMStatus(ctx, job.Node, job.VMID)
	if err != nil {
		return job, pveError("read vm status", err)
	}
	if st.Status != "running" {
		return s.succeed(ctx, lease, job)
	}
	items, err := pc.Pending(ctx, job.Node, job.VMID)
	if err != nil {
		return job, pveError("read pending changes", err)
	}
	if len(pve.PendingChanges(items)) == 0 {
		return s.succeed(ctx, lease, job)
	}
	s.logger.Info("restarting for pending changes", "job_id", job.ID, "vmid", job.VMID, "pending", len(pve.PendingChanges(items)))
	return s.advance(ctx, lease, job, stepRestartDown, 95)
}

func (s *Service) restartStep(ctx context.Context, pc pve.Cluster, srv pvekeep.Server, lease pvekeep.Lease, job pvekeep.Job, wait time.Duration) (pvekeep.Job, error) {
	var (
		typ    string
		submit func(node string) (pvekeep.UPID, error)
	)
	switch job.Step {
	case stepRestartDown:
		typ = "qmshutdown"
		submit = func(node string) (pvekeep.UPID, error) { return pc.ShutdownVM(ctx, node, job.VMID, restartShutdown) }
	case stepRestartStop:
		typ = "qmstop"
		submit = func(node string) (pvekeep.UPID, error) { return pc.StopVM(ctx, node, job.VMID) }
	default:
		typ = "qmstart"
		submit = func(node string) (pvekeep.UPID, error) { return pc.StartVM(ctx, node, job.VMID) }
	}
	out, done, failure, err := s.powerTask(ctx, pc, srv, lease, job, typ, wait, submit)
	if err != nil || !done {
		return out, err
	}
	switch {
	case job.Step == stepRestartDown && failure != "":
		return s.advance(ctx, lease, out, stepRestartStop, 96)
	case job.Step == stepRestartStart && failure != "":
		return s.failJob(ctx, lease, out, "the VM is at the new package but did not start again: "+failure)
	case failure != "":
		return s.failJob(ctx, lease, out, "stopping the VM to apply the new package failed: "+failure)
	case job.Step == stepRestartStart:
		return s.succeed(ctx, lease, out)
	}
	return s.advance(ctx, lease, out, stepRestartStart, 98)
}
