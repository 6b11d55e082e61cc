package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/pvekeep/pvekeep/internal/jobs"
	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/store"
)

// runner is the job runner the service registers its steps with.
type runner interface {
	Handle(kind pvekeep.JobKind, fn jobs.StepFunc)
	BeforePass(fn jobs.PassHook)
	Run(ctx context.Context, servers map[int64]pvekeep.Server, budget time.Duration) (jobs.Stats, error)
}

// newCallOwner names the lease an API call takes on the job it creates.
func newCallOwner() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	host, _ := os.Hostname()
	return fmt.Sprintf("call:%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b))
}

// MaxTickBudget caps one cron.tick; WHMCS's cron runs every few minutes.
const MaxTickBudget = 10 * time.Minute

// Tick drives every job of the given servers as far as it can within
// budget, sends what waits in the email outbox and refreshes the cached
// VM facts of the servers' services. Servers are what the panel's cron
// handed over, with their ids. Emails go out only through the config
// file's [smtp]; see TickWithSMTP.
func (s *Service) Tick(ctx context.Context, servers []pvekeep.Server, budget time.Duration) (jobs.Stats, error) {
	return s.TickWithSMTP(ctx, servers, budget, nil)
}

// TickWithSMTP is Tick with the panel's mail settings (nil: none), which
// this tick's emails are sent with unless the config file's [smtp] is set.
func (s *Service) TickWithSMTP(ctx context.Context, servers []pvekeep.Server, budget time.Duration, smtp *PanelSMTP) (jobs.Stats, error) {
	if budget < 0 || budget > MaxTickBudget {
		return jobs.Stats{}, pvekeep.InvalidInput("budget_s", fmt.Sprintf("budget_s must be between 0 and %d", int(MaxTickBudget.Seconds())))
	}
	byID := make(map[int64]pvekeep.Server, len(servers))
	for i, srv := range servers {
		if srv.ID <= 0 {
			return jobs.Stats{}, pvekeep.InvalidInput(fmt.Sprintf("servers[%d].id", i), "every server needs its panel id")
		}
		if srv.Host == "" {
			return jobs.Stats{}, pvekeep.InvalidInput(fmt.Sprintf("servers[%d].host", i), "every server needs a host")
		}
		byID[srv.ID] = srv
	}
	ctx = s.withPanelSMTP(ctx, smtp)
	// Before the run, so that the run already removes what expired.
	ids := make([]int64, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	expiring := s.expireSnapshots(ctx, ids)
	// Plan once per tick; the runner's pass hook dispatches the planned
	// runs as nodes free up (scheduleHook), counting into sc.
	sc := &scheduleCounts{}
	ctx = context.WithValue(ctx, countsKey{}, sc)
	s.planSchedules(ctx, ids)
	// Also before the run: the removals it queues run in this tick.
	purging := s.purgeTerminated(ctx, ids)
	st, err := s.run.Run(ctx, byID, budget)
	st.SnapshotsExpiring = expiring
	st.BackupsPurging = purging
	sc.add(func(c *scheduleCounts) {
		st.ScheduledDue, st.ScheduledDispatched, st.ScheduledSkipped = c.due, c.dispatched, c.skipped
		st.ScheduledRetried, st.ScheduledFailed, st.Rotations = c.retried, c.failed, c.rotations
		st.SchedulingMillis = c.took.Milliseconds()
	})
	if err != nil {
		return st, dbError(err)
	}
	ob := s.sendPendingEmails(ctx)
	st.EmailsSent, st.EmailsWaiting, st.EmailsSkipped = ob.sent, ob.waiting, ob.skipped
	// After the jobs: what they changed (a VM restored and started) is
	// what the page shows next.
	st.FactsRefreshed = s.refreshFacts(ctx, byID)
	return st, nil
}

// stepBackupCreate advances a backup job: submit the vzdump if it is not
// yet submitted, else follow its task to the end.
func (s *Service) stepBackupCreate(ctx context.Context, lease pvekeep.Lease, job pvekeep.Job, srv pvekeep.Server) (pvekeep.JobState, error) {
	pc, err := s.connect(ctx, srv)
	if err != nil {
		if msg := s.overdue(job); msg != "" {
			// Proxmox cannot even be asked whether an earlier attempt's
			// vzdump was accepted: say so rather than "nothing was done".
			msg += "; a backup it may have started is not listed"
			return s.stateAfter(ctx, job, s.failIfFinal(ctx, lease, job, pvekeep.Upstream(msg, nil)))
		}
		return job.State, err
	}
	b, err := s.st.Backup(ctx, job.ServiceID, job.BackupID)
	if err != nil {
		return job.State, dbError(fmt.Errorf("load backup %d: %w", job.BackupID, err))
	}
	if job.UPID == "" {
		out, err := s.dispatchBackup(ctx, pc, srv, lease, job, b)
		return s.stateAfter(ctx, out, err)
	}
	if msg := s.overdue(job); msg != "" {
		return s.stateAfter(ctx, job, s.failIfFinal(ctx, lease, job, pvekeep.Upstream(msg, nil)))
	}
	return s.followBackup(ctx, pc, lease, job, b)
}

// stateAfter reads back a job's state after a step that may have finished it.
func (s *Service) stateAfter(ctx context.Context, job pvekeep.Job, err error) (pvekeep.JobState, error) {
	cur, gerr := s.st.Job(ctx, job.ID)
	if gerr != nil {
		if err == nil {
			err = dbError(gerr)
		}
		return job.State, err
	}
	if cur.State.Terminal() {
		return cur.State, nil // the step's error is the job's recorded failure
	}
	return cur.State, err
}

// followBackup polls a submitted vzdump: progress while it runs; the
// volume, its size and time when it ends well; Proxmox's message when not.
func (s *Service) followBackup(ctx context.Context, pc pve.Cluster, lease pvekeep.Lease, job pvekeep.Job, b pvekeep.Backup) (pvekeep.JobState, error) {
	ts, err := pc.TaskStatus(ctx, job.UPID)
	if err != nil {
		return job.State, pveError("read task status", err)
	}
	lines, err := pc.TaskLog(ctx, job.UPID, 0)
	if err != nil {
		return job.State, pveError("read task log", err)
	}
	now := s.clock.Now().UTC()
	if ts.Running {
		if pct, ok := lastProgress(lines); ok && pct != job.ProgressPct {
			if err := s.st.UpdateJob(ctx, lease, store.JobUpdate{State: job.State, Step: job.Step, ProgressPct: pct, Now: now}); err != nil {
				return job.State, dbError(err)
			}
		}
		return job.State, nil
	}
	if _, ok := taskSucceeded(ts.ExitStatus); !ok {
		return pvekeep.JobFailed, s.finish(ctx, lease, job, store.JobFinish{
			State: pvekeep.JobFailed, Error: taskFailure(ts.ExitStatus, lines), Now: now,
			Backup: &store.BackupChange{ID: b.ID, Status: pvekeep.BackupFailed},
		})
	}
	vol, err := s.findArchive(ctx, pc, job, b, lines)
	if err != nil {
		return job.State, err
	}
	created := vol.CTime.UTC()
	if vol.CTime.IsZero() {
		created = now
	}
	return pvekeep.JobSucceeded, s.finish(ctx, lease, job, store.JobFinish{
		State: pvekeep.JobSucceeded, Now: now,
		Backup: &store.BackupChange{ID: b.ID, Status: pvekeep.BackupAvailable, Volid: vol.Volid, SizeBytes: vol.Size, CreatedAt: &created},
	})
}

// findArchive identifies the volume a finished vzdump wrote: by the
// archive name in its log, else the newest listed volume of the VM made
// since the job started.
func (s *Service) findArchive(ctx context.Context, pc pve.Cluster, job pvekeep.Job, b pvekeep.Backup, lines []string) (pve.Volume, error) {
	for _, l := range lines {
		if path, ok := pve.ParseArchive(l); ok {
			v, err := pc.Volume(ctx, job.Node, b.Storage, pve.VolidFromArchive(b.Storage, path))
			if err == nil {
				return v, nil
			}
			if !errors.Is(err, pve.ErrNotFound) {
				return pve.Volume{}, pveError("read backup volume", err)
			}
		}
	}
	vols, err := pc.ListBackups(ctx, job.Node, b.Storage, job.VMID)
	if err != nil {
		return pve.Volume{}, pveError("list backups", err)
	}
	since := job.CreatedAt
	if job.StartedAt != nil {
		since = *job.StartedAt
	}
	var best pve.Volume
	for _, v := range vols {
		if !v.CTime.Before(since.Add(-time.Second)) && v.CTime.After(best.CTime) {
			best = v
		}
	}
	if best.Volid == "" {
		return pve.Volume{}, pvekeep.Upstream("the backup finished but its archive is not on storage "+b.Storage, nil)
	}
	return best, nil
}

// stepBackupRemove advances a removal job.
func (s *Service) stepBackupRemove(ctx context.Context, lease pvekeep.Lease, job pvekeep.Job, srv pvekeep.Server) (pvekeep.JobState, error) {
	if msg := s.overdue(job); msg != "" {
		// Removing twice is harmless (a volume already gone is the goal):
		// no trace needs finding before giving up.
		return s.stateAfter(ctx, job, s.failIfFinal(ctx, lease, job, pvekeep.Upstream(msg, nil)))
	}
	pc, err := s.connect(ctx, srv)
	if err != nil {
		return job.State, err
	}
	b, err := s.st.Backup(ctx, job.ServiceID, job.BackupID)
	if err != nil {
		return job.State, dbError(fmt.Errorf("load backup %d: %w", job.BackupID, err))
	}
	if job.UPID == "" {
		out, err := s.dispatchRemove(ctx, pc, lease, job, b)
		return s.stateAfter(ctx, out, err)
	}
	ts, err := pc.TaskStatus(ctx, job.UPID)
	if err != nil {
		return job.State, pveError("read task status", err)
	}
	if ts.Running {
		return job.State, nil
	}
	now := s.clock.Now().UTC()
	if _, ok := taskSucceeded(ts.ExitStatus); !ok {
		lines, err := pc.TaskLog(ctx, job.UPID, 0)
		if err != nil {
			lines = nil // the exit status alone still says what went wrong
		}
		return pvekeep.JobFailed, s.finish(ctx, lease, job, store.JobFinish{
			State: pvekeep.JobFailed, Error: taskFailure(ts.ExitStatus, lines), Now: now,
			Backup: &store.BackupChange{ID: b.ID, Status: pvekeep.BackupAvailable},
		})
	}
	return pvekeep.JobSucceeded, s.finish(ctx, lease, job, store.JobFinish{
		State: pvekeep.JobSucceeded, Now: now,
		Backup: &store.BackupChange{ID: b.ID, Status: pvekeep.BackupRemoved, RemovedAt: &now},
	})
}

// lastProgress is the newest percentage in a vzdump log.
func lastProgress(lines []string) (int, bool) {
	for i := len(lines) - 1; i >= 0; i-- {
		if pct, ok := pve.ParseProgress(lines[i]); ok {
			return pct, true
		}
	}
	return 0, false
}

// taskSucceeded: OK and "WARNINGS: N" both mean the task did its work.
func taskSucceeded(exit string) (warnings int, ok bool) {
	if exit == "OK" {
		return 0, true
	}
	return pve.IsWarnings(exit)
}

// taskFailure is the message a failed task leaves for the client: the
// ERROR lines of its log (vzdump's exit status is often just "job errors"),
// else its exit status.
func taskFailure(exit string, lines []string) string {
	var errs []string
	for _, l := range lines {
		if strings.HasPrefix(l, "ERROR: ") {
			errs = append(errs, strings.TrimPrefix(l, "ERROR: "))
		}
	}
	msg := exit
	if len(errs) > 0 {
		msg = strings.Join(errs, "; ")
	}
	if len(msg) > 1000 {
		msg = msg[:1000]
	}
	return msg
}
