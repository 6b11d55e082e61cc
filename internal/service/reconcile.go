package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/pvekeep/pvekeep/internal/plan"
	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/reconcile"
	"github.com/pvekeep/pvekeep/internal/store"
)

// reconcileJob hands a restored or reinstalled VM to the reconciliation
// and finishes the job when it is done.
func (s *Service) reconcileJob(ctx context.Context, pc pve.Cluster, lease pvekeep.Lease, job pvekeep.Job, p restoreParams) (pvekeep.Job, error) {
	if !reconcile.IsStep(job.Step) {
		return s.failRestore(ctx, lease, job, fmt.Sprintf("the job is at an unknown step %q", job.Step))
	}
	f, err := s.st.Service(ctx, job.ServiceID)
	if err != nil {
		return job, dbError(err)
	}
	pl, err := plan.FromFacts(f)
	if err != nil {
		return s.failRestore(ctx, lease, job, upstreamMessage(err))
	}
	job, out, err := s.runReconcile(ctx, pc, lease, job, f, pl, p.MACs, &notifier{s: s, job: job, facts: f}, false)
	if err != nil {
		return job, err
	}
	if out.Failed != "" {
		// The restored VM is whole, only the package could not be put back:
		// better running at the old package than stopped until someone acts.
		s.startAnyway(ctx, pc, lease, job)
		return s.failRestore(ctx, lease, job, "putting the package back failed at "+out.Failed)
	}
	if out.Step != reconcile.StepDone {
		return job, nil // waiting on Proxmox
	}
	now := s.clock.Now().UTC()
	if err := s.finish(ctx, lease, job, store.JobFinish{State: pvekeep.JobSucceeded, Now: now}); err != nil {
		return job, err
	}
	job.State, job.FinishedAt, job.ProgressPct = pvekeep.JobSucceeded, &now, 100
	return job, nil
}

// startAnyway starts a VM whose restore failed without harming it, or
// whose reconciliation failed, and waits for it, best effort: the failure
// is what the job reports either way.
func (s *Service) startAnyway(ctx context.Context, pc pve.Cluster, lease pvekeep.Lease, job pvekeep.Job) {
	st, err := pc.VMStatus(ctx, job.Node, job.VMID)
	if err != nil || st.Status == "running" {
		return
	}
	upid, err := pc.StartVM(ctx, job.Node, job.VMID)
	if err == nil && upid != "" {
		var failure string
		_, failure, err = s.await(ctx, pc, lease, upid, 30*time.Second)
		if err == nil && failure != "" {
			err = errors.New(failure)
		}
	}
	if err != nil {
		s.logger.Warn("start vm after a failed restore", "job_id", job.ID, "vmid", job.VMID, "err", err)
	}
}

// journal records reconciliation progress on the job row, under the lease.
type journal struct {
	s     *Service
	pc    pve.Cluster
	lease pvekeep.Lease
	job   pvekeep.Job
}

func (j *journal) Submitted(ctx context.Context, upid pvekeep.UPID) error {
	job, err := j.s.submitted(ctx, j.lease, j.job, upid, j.job.Node)
	j.job = job
	return err
}

func (j *journal) Done(ctx context.Context, step, next reconcile.Step, pct int) error {
	job, err := j.s.advance(ctx, j.lease, j.job, string(next), pct)
	j.job = job
	return err
}

func (j *journal) Await(ctx context.Context, upid pvekeep.UPID) (bool, string, error) {
	return j.s.await(ctx, j.pc, j.lease, upid, 60*time.Second)
}

func joinName(first, last string) string {
	switch {
	case first == "":
		return last
	case last == "":
		return first
	default:
		return first + " " + last
	}
}

// Crash points around the client email, besides the job steps: after its
// row is reserved and before SMTP is asked; after SMTP accepted it and
// before it is recorded as sent; after that record and before the job
// moves past its email step.
const (
	crashEmailReserved = "email_reserved"
	crashEmailAccepted = "email_accepted"
	crashEmailRecorded = "email_recorded"
)

// crashPoint kills the process right after step was recorded as done when
// Config.CrashAfterStep names it: the kill tests use it to prove that any
// process can finish what a killed one began. Never set in production.
func (s *Service) crashPoint(step string) {
	if s.cfg.CrashAfterStep != "" && s.cfg.CrashAfterStep == step {
		s.logger.Warn("crashing on purpose", "after_step", step)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL is not instantaneous; nothing may run after it
	}
}
