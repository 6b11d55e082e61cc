package service

import (
	"context"
	"fmt"
	"time"

	"github.com/pvekeep/pvekeep/internal/plan"
	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/reconcile"
	"github.com/pvekeep/pvekeep/internal/store"
)

// The VM's life (DESIGN §5 "The VM's life"): service.create, suspend,
// unsuspend, change_package and terminate are WHMCS's module commands.
// Each is a durable job like a backup: the call checks, records the job,
// takes its first step (the clone, stop, start or destroy is accepted by
// Proxmox) and answers; ticks drive the rest. WHMCS changes the service's
// status only on "success", which the PHP side answers for a job that is
// recorded and not failed. One file per flow: create.go, suspend.go,
// changepackage.go, terminate.go.

// lifecycleStore is what the lifecycle flows need from the database
// besides serviceStore.
type lifecycleStore interface {
	EnqueueServiceJob(ctx context.Context, j pvekeep.Job) (pvekeep.Job, bool, error)
	ClaimVMID(ctx context.Context, vmid pvekeep.VMID, id pvekeep.ServiceID, now time.Time) (bool, error)
	MaxClaimedVMID(ctx context.Context) (pvekeep.VMID, error)
	BindVM(ctx context.Context, id pvekeep.ServiceID, productID int64, vmid pvekeep.VMID, now time.Time) error
	MarkTerminated(ctx context.Context, id pvekeep.ServiceID, at, purgeAfter time.Time) error
	PurgesDue(ctx context.Context, serverIDs []int64, now time.Time, limit int) ([]store.PurgeDue, error)
	NotePurge(ctx context.Context, id pvekeep.ServiceID, done bool, msg string, now, retryAt time.Time) error
	ServiceTermination(ctx context.Context, id pvekeep.ServiceID) (store.Termination, error)
	EnqueueBackupRemove(ctx context.Context, r store.NewBackupRemove) (pvekeep.Job, bool, error)
}

// ServiceState is what backups.list says of the service: the panel shows
// the suspended notice and greys out the client's buttons from it.
type ServiceState string

const (
	StateActive     ServiceState = "active"
	StateSuspended  ServiceState = "suspended"
	StateTerminated ServiceState = "terminated"
)

// serviceState maps WHMCS's domainstatus: Pending (not made yet) reads as
// active, Cancelled and Fraud as terminated (nothing runs for them).
func serviceState(status string) ServiceState {
	switch status {
	case "Suspended":
		return StateSuspended
	case "Terminated", "Cancelled", "Fraud", "Completed":
		return StateTerminated
	default:
		return StateActive
	}
}

// authorizeLifecycle is the ownership rule for the module commands: only
// WHMCS (the system) or an administrator runs them, whatever the
// service's status; a client never does. The same rule as the admin's
// calls, with the refusal a module command deserves.
func (s *Service) authorizeLifecycle(ctx context.Context, c Call) (pvekeep.ServiceFacts, error) {
	return s.authorizeStaff(ctx, c, "only WHMCS or an administrator runs this command")
}

// startLifecycle records a lifecycle job leased to this call and runs its
// first step within the call (dispatchOnCall: Proxmox unreachable leaves
// it queued for the tick).
func (s *Service) startLifecycle(ctx context.Context, c Call, f pvekeep.ServiceFacts, kind pvekeep.JobKind, vmid pvekeep.VMID, node, step string, params []byte, first func(pc pve.Cluster, lease pvekeep.Lease, job pvekeep.Job) (pvekeep.Job, error), pc pve.Cluster) (pvekeep.Job, error) {
	now := s.clock.Now().UTC()
	leaseUntil := now.Add(s.cfg.LeaseFor)
	job, existed, err := s.life.EnqueueServiceJob(ctx, pvekeep.Job{
		ServiceID: f.ServiceID, VMID: vmid, ServerID: f.ServerID, Node: node, Kind: kind, Step: step,
		Params: params, ActorType: c.Actor.Type, ActorID: c.Actor.ID,
		LeaseOwner: newCallOwner(), LeaseUntil: &leaseUntil, CreatedAt: now,
	})
	if err != nil {
		return pvekeep.Job{}, enqueueError(err)
	}
	if existed {
		return job, nil
	}
	s.logger.Info("lifecycle job started", "job_id", job.ID, "kind", kind, "service_id", f.ServiceID, "vmid", vmid, "node", node)
	lease := pvekeep.Lease{JobID: job.ID, Owner: job.LeaseOwner, Attempt: job.Attempt}
	return s.dispatchOnCall(ctx, lease, job, func() (pvekeep.Job, error) { return first(pc, lease, job) })
}

// reachLifecycleVM is reachVM for a module command: no job of the plugin
// on the service, the VM found on the cluster, no Proxmox lock on it.
func (s *Service) reachLifecycleVM(ctx context.Context, c Call, f pvekeep.ServiceFacts) (pve.Cluster, pve.VMRef, error) {
	if f.VMID <= 0 {
		return nil, pve.VMRef{}, pvekeep.InvalidState("no virtual machine is bound to this service")
	}
	return s.reachVM(ctx, c, f)
}

// failJob ends a lifecycle job as failed with msg.
func (s *Service) failJob(ctx context.Context, lease pvekeep.Lease, job pvekeep.Job, msg string) (pvekeep.Job, error) {
	now := s.clock.Now().UTC()
	if err := s.finish(ctx, lease, job, store.JobFinish{State: pvekeep.JobFailed, Error: msg, Now: now}); err != nil {
		return job, err
	}
	job.State, job.Error, job.FinishedAt = pvekeep.JobFailed, msg, &now
	return job, nil
}

// succeed ends a lifecycle job well.
func (s *Service) succeed(ctx context.Context, lease pvekeep.Lease, job pvekeep.Job) (pvekeep.Job, error) {
	now := s.clock.Now().UTC()
	if err := s.finish(ctx, lease, job, store.JobFinish{State: pvekeep.JobSucceeded, Now: now}); err != nil {
		return job, err
	}
	job.State, job.FinishedAt, job.ProgressPct = pvekeep.JobSucceeded, &now, 100
	return job, nil
}

// powerTask submits a start, shutdown or stop of the job's VM (sent once:
// a task an earlier attempt asked for is adopted from the task list) and
// follows it for at most wait. done is true once the VM got there; failure
// is Proxmox's message when the task failed.
func (s *Service) powerTask(ctx context.Context, pc pve.Cluster, srv pvekeep.Server, lease pvekeep.Lease, job pvekeep.Job, typ string, wait time.Duration, submit func(node string) (pvekeep.UPID, error)) (out pvekeep.Job, done bool, failure string, err error) {
	if job.UPID == "" {
		ref, err := s.locate(ctx, pc, job.VMID)
		if err != nil {
			return job, false, "", err
		}
		if job.SubmittingAt != nil {
			if adopted, ok, err := s.adoptTask(ctx, pc, srv, lease, job, ref.Node, typ, job.Step); err != nil {
				return job, false, "", err
			} else if ok {
				job = adopted
			}
		}
		if job.UPID == "" {
			if job, err = s.submitting(ctx, lease, job); err != nil {
				return job, false, "", err
			}
			upid, err := submit(ref.Node)
			if err != nil {
				e := submitError(typ, err)
				if pvekeep.ReasonOf(e) == pvekeep.ReasonUnavailable {
					return job, false, "", s.ambiguous(e)
				}
				return job, true, upstreamMessage(e), nil
			}
			if upid == "" {
				return job, true, "", nil // already there
			}
			if job, err = s.submitted(ctx, lease, job, upid, ref.Node); err != nil {
				return job, false, "", err
			}
		}
	}
	if wait <= 0 {
		return job, false, "", nil
	}
	d, failure, err := s.await(ctx, pc, lease, job.UPID, wait)
	return job, d, failure, err
}

// runReconcile runs the reconciliation — the same engine a restore uses
// (internal/reconcile) — from the job's step towards the service's
// package, with the journal writing progress on the job row and n
// sending the job's email. It returns where it stopped.
func (s *Service) runReconcile(ctx context.Context, pc pve.Cluster, lease pvekeep.Lease, job pvekeep.Job, f pvekeep.ServiceFacts, pl plan.Plan, macs map[string]string, n reconcile.Notifier, keepPower bool) (pvekeep.Job, reconcile.Outcome, error) {
	if !reconcile.IsStep(job.Step) {
		return job, reconcile.Outcome{Failed: fmt.Sprintf("the job is at an unknown step %q", job.Step)}, nil
	}
	target := reconcile.Target{Node: job.Node, VMID: job.VMID, VM: pl.VM, MACs: macs, KeepPower: keepPower}
	j := &journal{s: s, pc: pc, lease: lease, job: job}
	out, err := s.reconciler.Run(ctx, pc, j, n, target, reconcile.Step(job.Step), job.UPID)
	return j.job, out, err
}

// noEmail is the notifier of a job that owes the client no email.
type noEmail struct{}

func (noEmail) Notify(context.Context) error { return nil }

// runSteps drives a multi-step job of the VM's life for one lease: an
// overdue job fails; otherwise it runs the job's current step, then the
// next, until one ends the job or leaves it where it was (waiting on
// Proxmox for a later tick), at most bound steps.
func (s *Service) runSteps(ctx context.Context, lease pvekeep.Lease, job pvekeep.Job, srv pvekeep.Server, bound int,
	step func(pc pve.Cluster, job pvekeep.Job) (pvekeep.Job, error)) (pvekeep.JobState, error) {
	if msg := s.overdue(job); msg != "" {
		out, err := s.failJob(ctx, lease, job, msg)
		return out.State, err
	}
	pc, err := s.connect(ctx, srv)
	if err != nil {
		return job.State, err
	}
	for range bound {
		next, err := step(pc, job)
		if err != nil {
			return s.stateAfter(ctx, job, err)
		}
		if next.State.Terminal() || next.Step == job.Step {
			return next.State, nil
		}
		job = next
	}
	return job.State, nil
}
