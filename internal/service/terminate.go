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
	"github.com/pvekeep/pvekeep/internal/store"
)

// service.terminate (WHMCS's TerminateAccount): stop the VM, destroy it
// with its disks (purge, destroy-unreferenced-disks), and record the
// termination: the binding stays as history, and the service's backups
// are removed by the cron once terminate_grace_days (configoption24,
// default 7, 0 = at once) have passed — one removal job at a time, kept
// (protected) ones unprotected first, a failure skipped for the round,
// shown on admin.overview and retried after a growing pause. The
// plugin never hands a vmid out twice, and backups belong to the service,
// so a later VM with the same id (made outside the plugin) never sees them.

// Steps of a terminate.
const (
	stepTermStop    = "stop"    // hard stop: the VM is about to be destroyed
	stepTermDestroy = "destroy" // qmdestroy with purge
)

// TerminateVM starts service.terminate. A service without a VM (never
// created, or its VM gone) terminates at once: its backups still follow
// the grace.
func (s *Service) TerminateVM(ctx context.Context, c Call) (pvekeep.Job, error) {
	f, err := s.authorizeLifecycle(ctx, c)
	if err != nil {
		return pvekeep.Job{}, err
	}
	if j, ok, err := s.sameKindActive(ctx, f, pvekeep.KindServiceTerminate); err != nil || ok {
		return j, err
	}
	if _, err := plan.MoreFromFacts(f); err != nil {
		return pvekeep.Job{}, err // the grace must be readable before the VM goes
	}
	pc, err := s.connect(ctx, c.Server)
	if err != nil {
		return pvekeep.Job{}, err
	}
	node := ""
	if f.VMID > 0 {
		ref, err := pc.FindVM(ctx, f.VMID)
		switch {
		case errors.Is(err, pve.ErrNotFound):
		case err != nil:
			return pvekeep.Job{}, pveError("find vm", err)
		default:
			if err := checkNoProxmoxLock(ctx, pc, f.VMID, ref.Node); err != nil {
				return pvekeep.Job{}, err
			}
			cfg, err := pc.VMConfig(ctx, ref.Node, f.VMID)
			if err != nil {
				return pvekeep.Job{}, pveError("read vm config", err)
			}
			if cfg["protection"] == "1" {
				// Proxmox would refuse the destroy only after the VM was
				// stopped, and WHMCS would already call it terminated.
				return pvekeep.Job{}, pvekeep.InvalidState(fmt.Sprintf("VM %d is protected; remove its protection in Proxmox first. Nothing was changed", f.VMID))
			}
			node = ref.Node
		}
	}
	return s.startLifecycle(ctx, c, f, pvekeep.KindServiceTerminate, f.VMID, node, stepTermStop, nil,
		func(pc pve.Cluster, lease pvekeep.Lease, job pvekeep.Job) (pvekeep.Job, error) {
			return s.terminateStep(ctx, pc, c.Server, lease, job, 0)
		}, pc)
}

func (s *Service) stepTerminate(ctx context.Context, lease pvekeep.Lease, job pvekeep.Job, srv pvekeep.Server) (pvekeep.JobState, error) {
	return s.runSteps(ctx, lease, job, srv, 4, func(pc pve.Cluster, job pvekeep.Job) (pvekeep.Job, error) {
		return s.terminateStep(ctx, pc, srv, lease, job, 60*time.Second)
	})
}

func (s *Service) terminateStep(ctx context.Context, pc pve.Cluster, srv pvekeep.Server, lease pvekeep.Lease, job pvekeep.Job, wait time.Duration) (pvekeep.Job, error) {
	if job.VMID <= 0 {
		return s.terminated(ctx, lease, job)
	}
	if job.UPID == "" {
		if _, err := pc.FindVM(ctx, job.VMID); errors.Is(err, pve.ErrNotFound) {
			return s.terminated(ctx, lease, job) // gone: destroyed by us before a crash, or by someone
		} else if err != nil {
			return job, pveError("find vm", err)
		}
	} else if wait <= 0 {
		return job, nil
	}
	switch job.Step {
	case stepTermStop:
		out, done, failure, err := s.powerTask(ctx, pc, srv, lease, job, "qmstop", wait,
			func(node string) (pvekeep.UPID, error) { return pc.StopVM(ctx, node, job.VMID) })
		if err != nil || !done {
			return out, err
		}
		if failure != "" {
			return s.failJob(ctx, lease, out, "stopping the VM failed: "+failure+"; nothing was destroyed")
		}
		return s.advance(ctx, lease, out, stepTermDestroy, 30)
	case stepTermDestroy:
		out, done, failure, err := s.powerTask(ctx, pc, srv, lease, job, "qmdestroy", wait,
			func(node string) (pvekeep.UPID, error) {
				upid, err := pc.DeleteVM(ctx, node, job.VMID, true)
				if errors.Is(err, pve.ErrNotFound) {
					return "", nil
				}
				return upid, err
			})
		if err != nil || !done {
			return out, err
		}
		if failure != "" {
			return s.failJob(ctx, lease, out, fmt.Sprintf("destroying VM %d failed: %s", job.VMID, failure))
		}
		return s.terminated(ctx, lease, out)
	}
	return s.failJob(ctx, lease, job, "the job is at an unknown step "+job.Step)
}

// terminated records the termination and when the backups go, and ends
// the job.
func (s *Service) terminated(ctx context.Context, lease pvekeep.Lease, job pvekeep.Job) (pvekeep.Job, error) {
	f, err := s.st.Service(ctx, job.ServiceID)
	if err != nil {
		return job, dbError(err)
	}
	grace := plan.DefaultTerminateGraceDays
	if more, err := plan.MoreFromFacts(f); err == nil {
		grace = more.TerminateGraceDays
	}
	now := s.clock.Now().UTC()
	if err := s.life.MarkTerminated(ctx, job.ServiceID, now, now.AddDate(0, 0, grace)); err != nil {
		return job, dbError(err)
	}
	s.recordFacts(ctx, store.VMFacts{ServiceID: job.ServiceID, VMID: job.VMID, Power: "missing"})
	// The VM's snapshots went with it: their records must not count or
	// offer rollbacks (the same job holds the lease, so it may write them).
	if n, err := s.snaps.ForgetSnapshots(ctx, lease, nil, pvekeep.SnapshotRemovedByTerminate, now); err != nil {
		s.logger.Warn("forget snapshots of a terminated vm", "job_id", job.ID, "err", err)
	} else if n > 0 {
		s.logger.Info("snapshots destroyed with the vm", "job_id", job.ID, "service_id", job.ServiceID, "count", n)
	}
	return s.succeed(ctx, lease, job)
}

// purgeTerminated is the tick's part of a termination. For each service
// on these servers whose grace has passed, the next of its backups gets a
// removal job (the same job a client's click makes, run by this tick; a
// backup the client kept is unprotected first: the client is gone). A
// removal that fails is skipped for the rest of the round, so every other
// backup still goes; a round that leaves some behind is shown on
// admin.overview and the next one begins after a pause that grows with
// each such round (purgePause). A service with none left is done. It
// returns how many removals it queued.
func (s *Service) purgeTerminated(ctx context.Context, serverIDs []int64) int {
	now := s.clock.Now().UTC()
	due, err := s.life.PurgesDue(ctx, serverIDs, now, 20)
	if err != nil {
		s.logger.Warn("list terminated services' backups", "err", err)
		return 0
	}
	queued := 0
	for _, d := range due {
		n, err := s.purgeOne(ctx, d, now)
		if err != nil {
			s.logger.Warn("remove a terminated service's backups", "service_id", d.ServiceID, "err", err)
			continue
		}
		queued += n
	}
	return queued
}

// purgePause is how long a purge waits after its nth round that left
// backups Proxmox would not remove: 5 minutes, doubling, at most a day.
func purgePause(n int) time.Duration {
	d := 5 * time.Minute
	for i := 1; i < n && d < 24*time.Hour; i++ {
		d *= 2
	}
	return min(d, 24*time.Hour)
}

// removeParams are the facts of a backup.remove job.
type removeParams struct {
	// Unprotect lifts the backup's protection before removing it: the
	// purge of a terminated service removes the backups its client kept.
	Unprotect bool `json:"unprotect,omitempty"`
}

func (s *Service) purgeOne(ctx context.Context, d store.PurgeDue, now time.Time) (int, error) {
	left, err := s.st.Backups(ctx, d.ServiceID, pvekeep.BackupAvailable, pvekeep.BackupCreating, pvekeep.BackupRemoving)
	if err != nil {
		return 0, dbError(err)
	}
	if len(left) == 0 {
		return 0, s.life.NotePurge(ctx, d.ServiceID, true, "", now, now)
	}
	for _, b := range left {
		if b.Status != pvekeep.BackupAvailable {
			return 0, nil // a removal (or a late backup) is in flight
		}
	}
	failed, err := s.purgeFailures(ctx, d)
	if err != nil {
		return 0, err
	}
	var next *pvekeep.Backup
	var stuck []string
	for i := range left {
		if msg, ok := failed[left[i].ID]; ok {
			stuck = append(stuck, fmt.Sprintf("%s: %s", left[i].Volid, msg))
			continue
		}
		if next == nil || left[i].ID < next.ID {
			next = &left[i]
		}
	}
	if next == nil {
		// Every backup left failed this round: say which and why, and
		// try them again after a pause.
		msg := fmt.Sprintf("%d backup(s) could not be removed, tried again at the next round: %s", len(stuck), strings.Join(stuck, "; "))
		return 0, s.life.NotePurge(ctx, d.ServiceID, false, msg, now, now.Add(purgePause(d.Attempts+1)))
	}
	params, err := json.Marshal(removeParams{Unprotect: true})
	if err != nil {
		return 0, fmt.Errorf("record removal facts: %w", err)
	}
	_, _, err = s.life.EnqueueBackupRemove(ctx, store.NewBackupRemove{
		Job: pvekeep.Job{ServiceID: d.ServiceID, VMID: next.VMID, ServerID: d.ServerID, Node: next.Node,
			Kind: pvekeep.KindBackupRemove, Step: stepDispatch, ActorType: pvekeep.ActorSystem, CreatedAt: now,
			Params: params},
		BackupID: next.ID,
	})
	var aj *store.ActiveJobError
	if errors.As(err, &aj) {
		return 0, nil // one job per service: the next tick takes the next backup
	}
	if err != nil {
		return 0, dbError(err)
	}
	// To the back of the queue: the other services' turn comes first.
	return 1, s.life.NotePurge(ctx, d.ServiceID, false, "", now, now)
}

// purgeFailures are the service's backups whose removal failed in the
// purge's current round, with the newest failure of each.
func (s *Service) purgeFailures(ctx context.Context, d store.PurgeDue) (map[pvekeep.BackupID]string, error) {
	js, err := s.st.Jobs(ctx, store.JobFilter{ServiceID: d.ServiceID, Kinds: []pvekeep.JobKind{pvekeep.KindBackupRemove},
		States: []pvekeep.JobState{pvekeep.JobFailed}, Limit: 1000})
	if err != nil {
		return nil, dbError(err)
	}
	round := d.Round()
	out := map[pvekeep.BackupID]string{}
	for _, j := range js { // newest first
		if j.FinishedAt == nil || j.FinishedAt.Before(round) {
			continue
		}
		if _, seen := out[j.BackupID]; !seen {
			out[j.BackupID] = j.Error
		}
	}
	return out, nil
}
