package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"time"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/store"
)

// jobStore is what the runner needs from the database.
type jobStore interface {
	ClaimJobs(ctx context.Context, r store.ClaimRequest) ([]pvekeep.Job, error)
	ReleaseLease(ctx context.Context, l pvekeep.Lease) error
	ExtendLease(ctx context.Context, l pvekeep.Lease, until time.Time) error
}

// StepFunc advances one claimed job as far as Proxmox allows right now and
// returns the job's state afterwards. It must write every change through the
// lease it is given, so that a runner whose lease was taken over cannot
// overwrite the new owner's work.
type StepFunc func(ctx context.Context, lease pvekeep.Lease, job pvekeep.Job, srv pvekeep.Server) (pvekeep.JobState, error)

// Config tunes a Runner; the zero value works.
type Config struct {
	// Owner names this runner in lease_owner; a random one is made when empty.
	Owner string
	// LeaseFor is how long a claim lasts. It must exceed the longest single
	// step (one Proxmox call plus one database write), or another runner
	// would take the job over while it is still being worked on.
	LeaseFor time.Duration
	// PollEvery is the pause between passes while jobs are still running.
	PollEvery time.Duration
	// Batch is how many jobs one pass claims.
	Batch int
}

func (c Config) withDefaults() Config {
	if c.Owner == "" {
		c.Owner = NewOwner()
	}
	if c.LeaseFor <= 0 {
		c.LeaseFor = 2 * time.Minute
	}
	if c.PollEvery <= 0 {
		c.PollEvery = time.Second
	}
	if c.Batch <= 0 {
		c.Batch = 50
	}
	return c
}

// NewOwner returns a lease owner name unique to this process and call.
func NewOwner() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Runner claims jobs and runs their step functions.
type Runner struct {
	st     jobStore
	clock  pvekeep.Clock
	logger *slog.Logger
	cfg    Config
	steps  map[pvekeep.JobKind]StepFunc
	before []PassHook
}

// PassHook runs before each pass of a Run, with the servers' ids: the
// scheduler's dispatch, which turns due backups into jobs as their nodes
// free up during the tick instead of only at its start.
type PassHook func(ctx context.Context, serverIDs []int64)

// NewRunner returns a runner with no step functions registered.
func NewRunner(st jobStore, clock pvekeep.Clock, logger *slog.Logger, cfg Config) *Runner {
	return &Runner{
		st:     st,
		clock:  clock,
		logger: logger.With("component", "jobs"),
		cfg:    cfg.withDefaults(),
		steps:  map[pvekeep.JobKind]StepFunc{},
	}
}

// Handle registers the step function of a job kind.
func (r *Runner) Handle(kind pvekeep.JobKind, fn StepFunc) { r.steps[kind] = fn }

// BeforePass registers fn to run before each pass.
func (r *Runner) BeforePass(fn PassHook) { r.before = append(r.before, fn) }

// Stats counts what one Run did.
type Stats struct {
	Passes    int `json:"passes"`
	Advanced  int `json:"advanced"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	Cancelled int `json:"cancelled"`
	Errors    int `json:"errors"`
	// StillActive is how many claimed jobs were still queued or running when
	// the run ended; the next run picks them up.
	StillActive int `json:"still_active"`
	// EmailsSent counts outbox emails sent after the run (see service).
	EmailsSent int `json:"emails_sent"`
	// EmailsWaiting counts outbox emails left pending for want of SMTP
	// settings; EmailsSkipped those the client opted out of (see service).
	EmailsWaiting int `json:"emails_waiting"`
	EmailsSkipped int `json:"emails_skipped"`
	// SnapshotsExpiring counts the removals of expired snapshots the tick
	// queued before its run (see service).
	SnapshotsExpiring int `json:"snapshots_expiring"`
	// BackupsPurging counts the removals the tick queued of backups of
	// terminated services whose grace has passed.
	BackupsPurging int `json:"backups_purging"`
	// FactsRefreshed counts services whose VM facts the tick refreshed
	// from Proxmox (see service).
	FactsRefreshed int `json:"facts_refreshed"`
	// Scheduled backups (see service): runs found due, turned into jobs,
	// skipped (e.g. every backup protected), put back for a retry, failed
	// for good, and rotations queued after a success at a full quota.
	ScheduledDue        int `json:"scheduled_due"`
	ScheduledDispatched int `json:"scheduled_dispatched"`
	ScheduledSkipped    int `json:"scheduled_skipped"`
	ScheduledRetried    int `json:"scheduled_retried"`
	ScheduledFailed     int `json:"scheduled_failed"`
	Rotations           int `json:"rotations"`
	// SchedulingMillis is the time the tick spent planning and dispatching
	// scheduled backups (not running their jobs).
	SchedulingMillis int64 `json:"scheduling_ms"`
}

// Run drives the jobs of the given servers until none it could claim is
// still active or budget is spent. A zero budget makes exactly one pass.
// Jobs of servers not in the map are left alone: their credentials were
// not handed over, so nothing can be done with them now.
func (r *Runner) Run(ctx context.Context, servers map[int64]pvekeep.Server, budget time.Duration) (Stats, error) {
	var st Stats
	if len(servers) == 0 {
		return st, nil
	}
	ids := make([]int64, 0, len(servers))
	for id := range servers {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })

	deadline := time.Now().Add(budget) // monotonic: the budget is wall time spent here
	for {
		st.Passes++
		for _, fn := range r.before {
			fn(ctx, ids)
		}
		active, err := r.pass(ctx, servers, ids, &st)
		if err != nil {
			return st, err
		}
		st.StillActive = active
		if active == 0 || !time.Now().Add(r.cfg.PollEvery).Before(deadline) {
			return st, nil
		}
		t := time.NewTimer(r.cfg.PollEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return st, nil
		case <-t.C:
		}
	}
}

// pass claims one batch, advances each job once and reports how many are
// still active.
func (r *Runner) pass(ctx context.Context, servers map[int64]pvekeep.Server, ids []int64, st *Stats) (int, error) {
	now := r.clock.Now()
	claimed, err := r.st.ClaimJobs(ctx, store.ClaimRequest{
		Owner:      r.cfg.Owner,
		Limit:      r.cfg.Batch,
		Now:        now,
		LeaseUntil: now.Add(r.cfg.LeaseFor),
		ServerIDs:  ids,
	})
	if err != nil {
		return 0, fmt.Errorf("claim jobs: %w", err)
	}
	active := 0
	for i, job := range claimed {
		if ctx.Err() != nil {
			// Out of time: hand the rest back untouched for the next run.
			for _, rest := range claimed[i:] {
				l := pvekeep.Lease{JobID: rest.ID, Owner: rest.LeaseOwner, Attempt: rest.Attempt}
				if err := r.st.ReleaseLease(context.WithoutCancel(ctx), l); err != nil && !errors.Is(err, store.ErrLeaseLost) {
					r.logger.Warn("release lease", "job_id", rest.ID, "err", err)
				}
			}
			return active + len(claimed) - i, nil
		}
		lease := pvekeep.Lease{JobID: job.ID, Owner: job.LeaseOwner, Attempt: job.Attempt}
		// Jobs late in a long pass were claimed a while ago: renew the
		// lease right before acting, and leave the job alone if another
		// runner took it over meanwhile (it would act on it too).
		if err := r.st.ExtendLease(ctx, lease, r.clock.Now().Add(r.cfg.LeaseFor)); err != nil {
			if !errors.Is(err, store.ErrLeaseLost) {
				r.logger.Warn("renew lease", "job_id", job.ID, "err", err)
				active++
			}
			continue
		}
		state, err := r.advance(ctx, lease, job, servers[job.ServerID])
		st.Advanced++
		switch {
		case err != nil:
			st.Errors++
			r.logger.Warn("advance job", "job_id", job.ID, "kind", job.Kind,
				"service_id", job.ServiceID, "vmid", job.VMID, "err", err)
		case state == pvekeep.JobSucceeded:
			st.Succeeded++
		case state == pvekeep.JobFailed:
			st.Failed++
		case state == pvekeep.JobCancelled:
			st.Cancelled++
		}
		if err != nil || state.Active() {
			active++
			if sn, ok := AsSnooze(err); ok {
				// Hold the job: nobody looks at it again before sn.D.
				until := r.clock.Now().Add(sn.D)
				if rerr := r.st.ExtendLease(context.WithoutCancel(ctx), lease, until); rerr != nil && !errors.Is(rerr, store.ErrLeaseLost) {
					r.logger.Warn("snooze job", "job_id", job.ID, "err", rerr)
				}
				continue
			}
			// Let the next pass, ours or another runner's, take it at once.
			// A lost lease means someone else owns it now: nothing to release.
			if rerr := r.st.ReleaseLease(context.WithoutCancel(ctx), lease); rerr != nil && !errors.Is(rerr, store.ErrLeaseLost) {
				r.logger.Warn("release lease", "job_id", job.ID, "err", rerr)
			}
		}
	}
	return active, nil
}

func (r *Runner) advance(ctx context.Context, lease pvekeep.Lease, job pvekeep.Job, srv pvekeep.Server) (state pvekeep.JobState, err error) {
	fn, ok := r.steps[job.Kind]
	if !ok {
		return job.State, fmt.Errorf("advance job %d: no step function for kind %q", job.ID, job.Kind)
	}
	defer func() {
		// A panicking step must not take the whole tick (and every other
		// customer's job) down with it; the lease expires and it is retried.
		if p := recover(); p != nil {
			err = fmt.Errorf("advance job %d: panic: %v", job.ID, p)
		}
	}()
	return fn(ctx, lease, job, srv)
}
