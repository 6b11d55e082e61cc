package service

import (
	"context"
	"time"

	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// service.suspend and service.unsuspend (WHMCS's SuspendAccount and
// UnsuspendAccount). Suspending shuts the VM down — an ACPI shutdown
// first, so the guest's file systems are clean, and a hard stop when the
// guest does not go down in time — and WHMCS then marks the service
// Suspended: from that moment the client's mutating calls are refused
// (forbidden, data.state "suspended") and backups.list says
// service_state "suspended"; scheduled backups and snapshot expiry go on,
// as they look at the service, not the VM's power. Unsuspending starts
// the VM.

// Steps of the power jobs.
const (
	stepShutdown = "shutdown" // ACPI shutdown, bounded
	stepPowerOff = "poweroff" // hard stop, when the shutdown failed
	stepStart    = "start"    // start the VM
)

// suspendShutdownWait is how long the guest gets to power off by itself.
const suspendShutdownWait = 2 * time.Minute

// SuspendVM starts service.suspend. A suspend already running answers
// with its job; any other job, or a Proxmox lock, refuses it.
func (s *Service) SuspendVM(ctx context.Context, c Call) (pvekeep.Job, error) {
	return s.startPower(ctx, c, pvekeep.KindServiceSuspend, stepShutdown)
}

// UnsuspendVM starts service.unsuspend.
func (s *Service) UnsuspendVM(ctx context.Context, c Call) (pvekeep.Job, error) {
	return s.startPower(ctx, c, pvekeep.KindServiceUnsuspend, stepStart)
}

func (s *Service) startPower(ctx context.Context, c Call, kind pvekeep.JobKind, first string) (pvekeep.Job, error) {
	f, err := s.authorizeLifecycle(ctx, c)
	if err != nil {
		return pvekeep.Job{}, err
	}
	if j, ok, err := s.sameKindActive(ctx, f, kind); err != nil || ok {
		return j, err
	}
	pc, ref, err := s.reachLifecycleVM(ctx, c, f)
	if err != nil {
		return pvekeep.Job{}, err
	}
	return s.startLifecycle(ctx, c, f, kind, f.VMID, ref.Node, first, nil,
		func(pc pve.Cluster, lease pvekeep.Lease, job pvekeep.Job) (pvekeep.Job, error) {
			return s.powerStep(ctx, pc, c.Server, lease, job, 0)
		}, pc)
}

// sameKindActive answers a command repeated while its job runs with that
// job; another kind's job refuses it as locked.
func (s *Service) sameKindActive(ctx context.Context, f pvekeep.ServiceFacts, kind pvekeep.JobKind) (pvekeep.Job, bool, error) {
	j, ok, err := s.st.ActiveJob(ctx, f.ServiceID)
	switch {
	case err != nil:
		return pvekeep.Job{}, false, dbError(err)
	case !ok:
		return pvekeep.Job{}, false, nil
	case j.Kind == kind:
		return j, true, nil
	}
	return pvekeep.Job{}, false, pvekeep.Locked(lockName(j.Kind), j.ID)
}

// stepPower drives a suspend or unsuspend.
func (s *Service) stepPower(ctx context.Context, lease pvekeep.Lease, job pvekeep.Job, srv pvekeep.Server) (pvekeep.JobState, error) {
	return s.runSteps(ctx, lease, job, srv, 4, func(pc pve.Cluster, job pvekeep.Job) (pvekeep.Job, error) {
		return s.powerStep(ctx, pc, srv, lease, job, 30*time.Second)
	})
}

// powerStep runs the job's current step: submit its task, follow it for
// at most wait, and move on.
func (s *Service) powerStep(ctx context.Context, pc pve.Cluster, srv pvekeep.Server, lease pvekeep.Lease, job pvekeep.Job, wait time.Duration) (pvekeep.Job, error) {
	var (
		typ    string
		submit func(node string) (pvekeep.UPID, error)
	)
	switch job.Step {
	case stepShutdown:
		typ = "qmshutdown"
		submit = func(node string) (pvekeep.UPID, error) {
			return pc.ShutdownVM(ctx, node, job.VMID, suspendShutdownWait)
		}
	case stepPowerOff:
		typ = "qmstop"
		submit = func(node string) (pvekeep.UPID, error) { return pc.StopVM(ctx, node, job.VMID) }
	case stepStart:
		typ = "qmstart"
		submit = func(node string) (pvekeep.UPID, error) { return pc.StartVM(ctx, node, job.VMID) }
	default:
		return s.failJob(ctx, lease, job, "the job is at an unknown step "+job.Step)
	}
	if job.UPID != "" && wait <= 0 {
		return job, nil
	}
	out, done, failure, err := s.powerTask(ctx, pc, srv, lease, job, typ, wait, submit)
	if err != nil || !done {
		return out, err
	}
	switch {
	case failure == "":
		return s.succeed(ctx, lease, out)
	case job.Step == stepShutdown:
		// The guest did not power off in time (or ignores ACPI): pull the plug.
		s.logger.Info("shutdown failed, stopping the vm", "job_id", job.ID, "vmid", job.VMID, "reason", failure)
		return s.advance(ctx, lease, out, stepPowerOff, 50)
	case job.Step == stepStart:
		return s.failJob(ctx, lease, out, "starting the VM failed: "+failure)
	}
	return s.failJob(ctx, lease, out, "stopping the VM failed: "+failure)
}
