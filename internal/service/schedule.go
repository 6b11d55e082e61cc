package service

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pvekeep/pvekeep/internal/calendar"
	"github.com/pvekeep/pvekeep/internal/plan"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/store"
)

// Scheduled backups (issue 9, DESIGN §5). The calendar arithmetic is
// internal/calendar's; this file keeps the schedule, plans the runs it owes
// and turns them into backup jobs, a node's worth at a time:
//
//   - schedule.set stores the week and its next run (mod_pvekeep_schedules).
//   - Each tick plans: one indexed query finds the schedules whose next run
//     has come, and one INSERT IGNORE records the run each owes, keyed by
//     (service, local date): however many ticks plan at once, a date runs
//     once. After an outage only the latest missed run is owed.
//   - Before each pass of the job runner, dispatch: a run becomes a
//     backup.create job only while its node has fewer backup jobs than the
//     per-node limit; the others wait in the database, first attempts
//     before retries, oldest due first. Claiming the run and recording the
//     job is one transaction, so two ticks never start the same run.
//   - The vzdump itself passes the node gate (Store.AdmitToNode) like a
//     manual backup does, so a click waits behind a running scheduled
//     backup, visibly (step wait_node), never in Proxmox's lock queue.
//   - When a run's job ends: success at a full quota queues the removal of
//     the oldest unprotected backup (never before the new one succeeded, so
//     a failure costs no restore point); failure is retried on later ticks
//     the same local day, schedule_retries times, then shown as failed; a
//     retry that would fall on the next local date fails the run instead.

// scheduleStore is what schedules need from the database.
type scheduleStore interface {
	ScheduleView(ctx context.Context, id pvekeep.ServiceID) (store.Schedule, bool, store.Run, bool, error)
	PutSchedule(ctx context.Context, sc store.Schedule, now time.Time) error
	DueSchedulesOn(ctx context.Context, serverIDs []int64, now time.Time, limit int) ([]store.DueSchedule, error)
	PlanRuns(ctx context.Context, runs []store.PlannedRun, adv []store.Advance, now time.Time) (int, error)
	NodeBackupLoad(ctx context.Context, serverIDs []int64) (map[store.NodeKey]int, error)
	WaitingRuns(ctx context.Context, serverIDs []int64, now time.Time, perNode int) ([]store.WaitingRun, error)
	EnqueueScheduledBackup(ctx context.Context, r store.NewScheduledBackup) (store.RunOutcome, string, pvekeep.Job, pvekeep.Backup, error)
	SettledRuns(ctx context.Context, serverIDs []int64, limit int) ([]store.SettledRun, error)
	ChangeRun(ctx context.Context, c store.RunChange) (bool, error)
	RotateAfterRun(ctx context.Context, r store.Rotation) (pvekeep.BackupID, pvekeep.Job, bool, error)
	AdmitToNode(ctx context.Context, l pvekeep.Lease, a store.NodeAdmission) (bool, error)
	PruneRuns(ctx context.Context, before string, limit int) (int, error)
	SetBackupProtected(ctx context.Context, id pvekeep.ServiceID, backupID pvekeep.BackupID, protected bool) error
}

// runsKeptDays is how long ended scheduled runs are kept.
const runsKeptDays = 60

// stepWaitNode is a backup job's step while its node's backup slots are
// all taken: queued, waiting in the database, not in Proxmox.
const stepWaitNode = "wait_node"

// weekdays are the contract's day names, indexed by time.Weekday.
var weekdays = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// ScheduleDay is one weekday of a schedule as the panel shows and sends it.
type ScheduleDay struct {
	Day     string // sun … sat
	Enabled bool
	Time    string // HH:MM local; with an admin window, the time the system picked
}

// ScheduleRun is the latest scheduled run, for the page: what became of
// today's (or the latest) scheduled backup.
type ScheduleRun struct {
	Date        string // local date, YYYY-MM-DD
	State       string // waiting, running, rotating, done, failed, skipped
	Attempts    int
	MaxAttempts int
	// Reason: with waiting, why it waits (locked, rotating; "" = its turn
	// on the node); with rotating, the same; with skipped, why (all_protected,
	// disabled, not_active, superseded); with done, what could not be
	// rotated away (all_protected, rotate_failed: the backup was made, the
	// service is above its quota).
	Reason string
	Error  string // the last failed attempt's message
	DueAt  time.Time
}

// Schedule is what schedule.get/set and backups.list return.
type Schedule struct {
	Timezone string
	Days     []ScheduleDay // seven, sun first
	// NextRunAt is the next scheduled backup (nil: no day enabled).
	NextRunAt *time.Time
	// Window is the product's schedule_window ("" = the customer picks the
	// times); set, the Days' times are the system's stable pick inside it.
	Window string
	// SkippedReason says why the latest run was skipped ("" when it was
	// not, including a run done with a reason): all_protected means too
	// few backups are not kept to make room for another.
	SkippedReason string
	LastRun       *ScheduleRun
}

// ScheduleInput is what schedule.set carries.
type ScheduleInput struct {
	// Timezone is an IANA name; "" means PanelTimezone, the panel's own
	// (PHP's date_default_timezone_get()), and "" there too means UTC.
	Timezone      string
	PanelTimezone string
	Days          []ScheduleDayInput
}

// ScheduleDayInput is one day as sent; days not sent are disabled.
type ScheduleDayInput struct {
	Day     string
	Enabled bool
	Time    string
}

// GetSchedule returns the service's schedule; a service without one gets
// every day off in the panel's zone (panelTZ, else UTC).
func (s *Service) GetSchedule(ctx context.Context, c Call, panelTZ string) (Schedule, error) {
	f, err := s.authorize(ctx, c, read)
	if err != nil {
		return Schedule{}, err
	}
	return s.scheduleOf(ctx, f, panelTZ)
}

// scheduleOf reads the schedule and its latest run: one statement.
func (s *Service) scheduleOf(ctx context.Context, f pvekeep.ServiceFacts, panelTZ string) (Schedule, error) {
	sc, ok, run, hasRun, err := s.sched.ScheduleView(ctx, f.ServiceID)
	if err != nil {
		return Schedule{}, dbError(err)
	}
	if !ok {
		tz := defaultZone(panelTZ)
		if _, err := calendar.LoadZone(tz); err != nil {
			tz = "UTC" // a page view does not fail on the panel's setting
		}
		sc = store.Schedule{ServiceID: f.ServiceID, Timezone: tz}
		for i := range sc.Days {
			sc.Days[i].Time = "00:00"
		}
	}
	// A product misconfigured after the schedule was saved must not break
	// the page: the schedule is shown as saved, without a window.
	window, _ := windowOf(f)
	rule, err := ruleFrom(sc, window, f.ServiceID)
	if err != nil {
		return Schedule{}, fmt.Errorf("read schedule of service %d: %w", f.ServiceID, err)
	}
	out := viewOf(rule, sc.Timezone, window)
	// The next run from the rule as it stands now (the window may have
	// changed since it was saved); the tick's own timing is next_run_at.
	if next, ok := rule.Next(s.clock.Now()); ok {
		at := next.At
		out.NextRunAt = &at
	}
	if hasRun {
		out.LastRun = &ScheduleRun{Date: run.Date, State: string(run.State), Attempts: run.Attempts, MaxAttempts: run.MaxAttempts,
			Reason: run.Reason, Error: run.Error, DueAt: run.DueAt.UTC()}
		// Only a skip is a skip: a run done with a reason made its
		// backup (LastRun says what could not be rotated away).
		if run.State == store.RunSkipped {
			out.SkippedReason = run.Reason
		}
	}
	return out, nil
}

// SetSchedule replaces the service's schedule. Every field is checked
// before anything is saved; a wrong one is invalid_input naming it
// (timezone, days[i].day, days[i].time).
func (s *Service) SetSchedule(ctx context.Context, c Call, in ScheduleInput) (Schedule, error) {
	sc, err := scheduleFromInput(in)
	if err != nil {
		return Schedule{}, err
	}
	f, err := s.authorize(ctx, c, mutate)
	if err != nil {
		return Schedule{}, err
	}
	pl, err := plan.QuotasFromFacts(f)
	if err != nil {
		return Schedule{}, err
	}
	if pl.BackupsMax == 0 {
		return Schedule{}, pvekeep.QuotaExceeded("backups", 0, 0)
	}
	if pl.BackupStorage == "" {
		return Schedule{}, pvekeep.InvalidState("the product is misconfigured: configoption1 (backup storage) is empty")
	}
	window, err := windowOf(f)
	if err != nil {
		return Schedule{}, err
	}
	sc.ServiceID = f.ServiceID
	rule, err := ruleFrom(sc, window, f.ServiceID)
	if err != nil {
		return Schedule{}, fmt.Errorf("save schedule of service %d: %w", f.ServiceID, err)
	}
	now := s.clock.Now().UTC()
	// From now on: a day whose time already passed today waits a week,
	// rather than a backup starting the moment the customer saves.
	if next, ok := rule.Next(now); ok {
		at := next.At
		sc.NextRunAt = &at
	}
	if err := s.sched.PutSchedule(ctx, sc, now); err != nil {
		return Schedule{}, dbError(err)
	}
	return s.scheduleOf(ctx, f, in.PanelTimezone)
}

// scheduleFromInput validates what schedule.set sent.
func scheduleFromInput(in ScheduleInput) (store.Schedule, error) {
	tz, field := in.Timezone, "timezone"
	if tz == "" {
		tz, field = defaultZone(in.PanelTimezone), "panel_timezone"
	}
	if _, err := calendar.LoadZone(tz); err != nil {
		return store.Schedule{}, pvekeep.InvalidInput(field, fmt.Sprintf("%q is not an IANA time zone name (e.g. Europe/Berlin)", clipText(tz, 64)))
	}
	sc := store.Schedule{Timezone: tz}
	for i := range sc.Days {
		sc.Days[i].Time = "00:00"
	}
	if len(in.Days) > 7 {
		return store.Schedule{}, pvekeep.InvalidInput("days", "days holds at most the seven weekdays")
	}
	seen := map[string]bool{}
	for i, d := range in.Days {
		wd := -1
		for n, name := range weekdays {
			if d.Day == name {
				wd = n
			}
		}
		if wd < 0 {
			return store.Schedule{}, pvekeep.InvalidInput(fmt.Sprintf("days[%d].day", i), "day must be one of sun, mon, tue, wed, thu, fri, sat")
		}
		if seen[d.Day] {
			return store.Schedule{}, pvekeep.InvalidInput(fmt.Sprintf("days[%d].day", i), d.Day+" is given twice")
		}
		seen[d.Day] = true
		t := d.Time
		if t == "" && !d.Enabled {
			t = "00:00" // an unticked day's empty time box
		}
		if _, err := calendar.ParseHHMM(t); err != nil {
			return store.Schedule{}, pvekeep.InvalidInput(fmt.Sprintf("days[%d].time", i), "time must be HH:MM, 00:00 to 23:59")
		}
		sc.Days[wd] = store.ScheduleDay{Enabled: d.Enabled, Time: t}
	}
	return sc, nil
}

func clipText(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func defaultZone(panelTZ string) string {
	if panelTZ == "" {
		return "UTC"
	}
	return panelTZ
}

// windowOf reads the product's schedule_window (configoption24).
func windowOf(f pvekeep.ServiceFacts) (plan.Window, error) {
	m, err := plan.MoreFromFacts(f)
	if err != nil {
		return plan.Window{}, err
	}
	return m.ScheduleWindow, nil
}

// ruleFrom builds the calendar rule of a stored schedule; with a window,
// the system's stable time for the service replaces the customer's.
func ruleFrom(sc store.Schedule, w plan.Window, id pvekeep.ServiceID) (calendar.Rule, error) {
	loc, err := calendar.LoadZone(sc.Timezone)
	if err != nil {
		return calendar.Rule{}, err
	}
	r := calendar.Rule{Loc: loc}
	for i, d := range sc.Days {
		m, err := calendar.ParseHHMM(d.Time)
		if err != nil {
			return calendar.Rule{}, fmt.Errorf("%s: %w", weekdays[i], err)
		}
		r.Days[i] = calendar.Day{Enabled: d.Enabled, Minute: m}
	}
	if w.Set {
		r = r.InWindow(calendar.Window{Start: w.Start, End: w.End}, int64(id))
	}
	return r, nil
}

func viewOf(r calendar.Rule, tz string, w plan.Window) Schedule {
	out := Schedule{Timezone: tz, Window: w.String(), Days: make([]ScheduleDay, 7)}
	for i, d := range r.Days {
		out.Days[i] = ScheduleDay{Day: weekdays[i], Enabled: d.Enabled, Time: calendar.FormatHHMM(d.Minute)}
	}
	return out
}

// scheduleCounts are one tick's scheduled-backup figures; the runner's
// pass hook adds to the tick's own (found in its ctx).
type scheduleCounts struct {
	mu                                                   sync.Mutex
	due, dispatched, skipped, retried, failed, rotations int
	took                                                 time.Duration // planning and dispatching, monotonic
}

func (c *scheduleCounts) add(f func(c *scheduleCounts)) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	f(c)
}

type countsKey struct{}

func countsFrom(ctx context.Context) *scheduleCounts {
	c, _ := ctx.Value(countsKey{}).(*scheduleCounts)
	return c
}

// planSchedules records the runs the given servers' schedules owe now and
// moves each schedule on to its next run: one query to find them, two
// statements per thousand to record (an idle tick: one query).
func (s *Service) planSchedules(ctx context.Context, serverIDs []int64) {
	start := time.Now() // monotonic: what the tick spent, not the injected clock
	defer func() { countsFrom(ctx).add(func(c *scheduleCounts) { c.took += time.Since(start) }) }()
	now := s.clock.Now().UTC()
	// A bounded batch per tick keeps the table at about two months of
	// runs without one tick ever deleting much.
	if _, err := s.sched.PruneRuns(ctx, now.AddDate(0, 0, -runsKeptDays).Format(time.DateOnly), 1000); err != nil {
		s.logger.Warn("prune scheduled runs", "err", err)
	}
	due, err := s.sched.DueSchedulesOn(ctx, serverIDs, now, 0)
	if err != nil {
		s.logger.Warn("list due schedules", "err", err)
		return
	}
	if len(due) == 0 {
		return
	}
	runs := make([]store.PlannedRun, 0, len(due))
	adv := make([]store.Advance, 0, len(due))
	for _, d := range due {
		a := store.Advance{ServiceID: d.ServiceID, Expect: *d.NextRunAt}
		more, merr := plan.ParseMore(d.More)
		window := more.ScheduleWindow
		rule, err := ruleFrom(d.Schedule, window, d.ServiceID)
		if err != nil {
			// Unreadable (a zone the database lost): stop it rather than
			// find it due on every tick; schedule.set starts it again.
			s.logger.Warn("schedule unreadable: stopped", "service_id", d.ServiceID, "err", err)
			adv = append(adv, a)
			continue
		}
		occ, isDue, next, hasNext := rule.Step(*d.NextRunAt, now)
		if hasNext {
			at := next.At
			a.Next = &at
		}
		adv = append(adv, a)
		if !isDue {
			continue
		}
		r := store.PlannedRun{RunKey: store.RunKey{ServiceID: d.ServiceID, Date: occ.Date.String()}, ServerID: d.ServerID,
			DueAt: occ.At, MaxAttempts: 1 + more.ScheduleRetries, State: store.RunWaiting}
		if merr != nil {
			r.MaxAttempts = 1 + plan.DefaultScheduleRetries
		}
		// A suspended service keeps its backups running (issue 10):
		// suspension stops the VM, not the provider's duty. Any other
		// status (terminated, cancelled, pending…) owes none, and records
		// none either: its schedule only moves on.
		if d.ServiceStatus != "Active" && d.ServiceStatus != "Suspended" {
			continue
		}
		runs = append(runs, r)
	}
	n, err := s.sched.PlanRuns(ctx, runs, adv, now)
	if err != nil {
		s.logger.Warn("plan scheduled runs", "err", err)
	}
	countsFrom(ctx).add(func(c *scheduleCounts) { c.due += n })
}

// scheduleHook runs before each pass of the job runner: it settles the
// runs whose job ended, then dispatches waiting runs onto free node slots,
// so that a node's queue moves on within one tick.
func (s *Service) scheduleHook(ctx context.Context, serverIDs []int64) {
	start := time.Now()
	defer func() { countsFrom(ctx).add(func(c *scheduleCounts) { c.took += time.Since(start) }) }()
	s.settleRuns(ctx, serverIDs)
	s.dispatchRuns(ctx, serverIDs)
}

// dispatchRuns turns waiting runs into backup jobs while their nodes have
// room: two queries to see the fleet's load and queue, then one
// transaction per run dispatched.
func (s *Service) dispatchRuns(ctx context.Context, serverIDs []int64) {
	now := s.clock.Now().UTC()
	limit := s.cfg.BackupsPerNode
	load, err := s.sched.NodeBackupLoad(ctx, serverIDs)
	if err != nil {
		s.logger.Warn("count backups per node", "err", err)
		return
	}
	// A few more than the limit per node: a run whose service is busy
	// does not hold up the node for the runs behind it.
	waiting, err := s.sched.WaitingRuns(ctx, serverIDs, now, limit+8)
	if err != nil {
		s.logger.Warn("list waiting runs", "err", err)
		return
	}
	counts := countsFrom(ctx)
	for _, w := range waiting {
		k := store.NodeKey{ServerID: w.ServerID, Node: w.Node}
		if load[k] >= limit {
			continue
		}
		outcome, err := s.dispatchRun(ctx, w, now)
		if err != nil {
			s.logger.Warn("dispatch scheduled run", "service_id", w.ServiceID, "date", w.Date, "err", err)
			continue
		}
		switch outcome {
		case store.RunDispatched:
			load[k]++
			counts.add(func(c *scheduleCounts) { c.dispatched++ })
		case store.RunSkippedNow:
			counts.add(func(c *scheduleCounts) { c.skipped++ })
		case store.RunFailedNow:
			counts.add(func(c *scheduleCounts) { c.failed++ })
		}
	}
}

// dispatchRun records the backup job of one waiting run, or says why not.
func (s *Service) dispatchRun(ctx context.Context, w store.WaitingRun, now time.Time) (store.RunOutcome, error) {
	skip := func(reason string) (store.RunOutcome, error) {
		_, err := s.sched.ChangeRun(ctx, store.RunChange{Key: w.Key(), From: []store.RunState{store.RunWaiting},
			To: store.RunSkipped, Reason: reason, Now: now})
		return store.RunSkippedNow, err
	}
	f, err := s.st.Service(ctx, w.ServiceID)
	if errors.Is(err, store.ErrNotFound) {
		return skip(store.ReasonNotActive)
	}
	if err != nil {
		return 0, err
	}
	if f.Status != "Active" && f.Status != "Suspended" || f.VMID <= 0 {
		return skip(store.ReasonNotActive)
	}
	pl, err := plan.QuotasFromFacts(f)
	if err != nil || pl.BackupsMax == 0 || pl.BackupStorage == "" {
		return skip(store.ReasonDisabled)
	}
	if w.Attempts > 0 && !onLocalDate(w.Date, w.Timezone, now) {
		// A retry is owed only while its date lasts (the cron was away,
		// or the node busy, until the next one): the run failed, with
		// its last attempt's message.
		_, err := s.sched.ChangeRun(ctx, store.RunChange{Key: w.Key(), From: []store.RunState{store.RunWaiting},
			To: store.RunFailed, Now: now})
		return store.RunFailedNow, err
	}
	node := w.Node
	if w.VMID != f.VMID {
		node = "" // facts of another VM: the gate finds the node
	} else if w.PVELock != "" {
		// Proxmox held a lock on the VM at the last look (a migration, a
		// backup started by hand): its vzdump would fail. Try again after
		// the next look, without spending an attempt.
		next := now.Add(s.cfg.ScheduleBusyRetry)
		_, err := s.sched.ChangeRun(ctx, store.RunChange{Key: w.Key(), From: []store.RunState{store.RunWaiting},
			To: store.RunWaiting, Reason: store.ReasonLocked, NextTryAt: &next, Now: now})
		return store.RunBusy, err
	}
	outcome, reason, job, _, err := s.sched.EnqueueScheduledBackup(ctx, store.NewScheduledBackup{
		Run: w.Key(),
		Create: store.NewBackupCreate{
			Job: pvekeep.Job{
				ServiceID: f.ServiceID, VMID: f.VMID, ServerID: f.ServerID, Node: node,
				Kind: pvekeep.KindBackupCreate, Step: stepDispatch, ActorType: pvekeep.ActorSystem, CreatedAt: now,
			},
			Backup: pvekeep.Backup{VMID: f.VMID, Node: node, Storage: pl.BackupStorage, Origin: pvekeep.OriginScheduled, CreatedAt: now},
		},
		Quota:      pl.BackupsMax,
		RetryAfter: s.cfg.ScheduleBusyRetry,
	})
	if errors.Is(err, store.ErrRunTaken) {
		return store.RunBusy, nil // another tick got there first
	}
	if err != nil {
		return 0, err
	}
	switch outcome {
	case store.RunDispatched:
		s.logger.Info("scheduled backup dispatched", "service_id", f.ServiceID, "date", w.Date, "job_id", job.ID, "node", node)
	case store.RunSkippedNow:
		s.logger.Info("scheduled backup skipped", "service_id", f.ServiceID, "date", w.Date, "reason", reason)
	}
	return outcome, nil
}

// settleRuns moves on the runs whose backup job ended: success rotates at
// a full quota, failure is retried the same local day while attempts
// last, else the run failed.
func (s *Service) settleRuns(ctx context.Context, serverIDs []int64) {
	settled, err := s.sched.SettledRuns(ctx, serverIDs, 0)
	if err != nil {
		s.logger.Warn("list settled runs", "err", err)
		return
	}
	counts := countsFrom(ctx)
	for _, r := range settled {
		now := s.clock.Now().UTC()
		if r.State == store.RunRotating || r.JobState == pvekeep.JobSucceeded {
			if s.rotate(ctx, r, now) {
				counts.add(func(c *scheduleCounts) { c.rotations++ })
			}
			continue
		}
		ch := store.RunChange{Key: r.Key(), From: []store.RunState{store.RunRunning}, To: store.RunFailed, Error: r.JobError, Now: now}
		// Retried after the pause, if that still falls on the run's local
		// date: a retry never runs on the next one.
		next := now.Add(s.cfg.ScheduleRetryAfter)
		if r.JobState != pvekeep.JobCancelled && r.Attempts < r.MaxAttempts && onLocalDate(r.Date, r.Timezone, next) {
			ch.To, ch.NextTryAt = store.RunWaiting, &next
		}
		ok, err := s.sched.ChangeRun(ctx, ch)
		if err != nil {
			s.logger.Warn("settle scheduled run", "service_id", r.ServiceID, "date", r.Date, "err", err)
			continue
		}
		if ok && ch.To == store.RunWaiting {
			counts.add(func(c *scheduleCounts) { c.retried++ })
		} else if ok {
			counts.add(func(c *scheduleCounts) { c.failed++ })
		}
	}
}

// onLocalDate: at is on the local date (YYYY-MM-DD) in the schedule's
// zone tz.
func onLocalDate(date, tz string, at time.Time) bool {
	loc, err := calendar.LoadZone(tz)
	if err != nil {
		loc = time.UTC
	}
	return calendar.DateOf(at, loc).String() == date
}

// rotate brings a service whose scheduled backup succeeded back to its
// quota (Store.RotateAfterRun); true when a removal was queued.
func (s *Service) rotate(ctx context.Context, r store.SettledRun, now time.Time) bool {
	f, err := s.st.Service(ctx, r.ServiceID)
	if err != nil {
		s.logger.Warn("rotate: read service", "service_id", r.ServiceID, "err", err)
		return false
	}
	quota := 0
	if pl, err := plan.QuotasFromFacts(f); err == nil {
		quota = pl.BackupsMax
	} else {
		s.logger.Warn("rotate: read quota", "service_id", r.ServiceID, "err", err)
		return false
	}
	removed, job, locked, err := s.sched.RotateAfterRun(ctx, store.Rotation{
		Run: r.Key(), Quota: quota, Keep: r.BackupID,
		Job: pvekeep.Job{ServiceID: f.ServiceID, VMID: f.VMID, ServerID: f.ServerID, Kind: pvekeep.KindBackupRemove,
			Step: stepDispatch, ActorType: pvekeep.ActorSystem, CreatedAt: now},
	})
	switch {
	case errors.Is(err, store.ErrRunTaken):
		return false
	case err != nil:
		s.logger.Warn("rotate backups", "service_id", r.ServiceID, "date", r.Date, "err", err)
		return false
	case locked:
		s.logger.Info("rotation waits for the service's job", "service_id", r.ServiceID, "date", r.Date)
		return false
	case removed != 0:
		s.logger.Info("rotation queued the oldest unprotected backup for removal", "service_id", r.ServiceID,
			"backup_id", removed, "job_id", job.ID)
		return true
	}
	return false
}

// admitBackup passes a backup job through its node's gate before its
// vzdump is submitted. A job already admitted (or already submitting,
// from before the gate existed) goes on. Refused, the job stays queued
// with step wait_node and false is returned.
func (s *Service) admitBackup(ctx context.Context, lease pvekeep.Lease, job *pvekeep.Job, node string) (bool, error) {
	if job.AdmittedAt != nil || job.SubmittingAt != nil {
		return true, nil
	}
	now := s.clock.Now().UTC()
	ok, err := s.sched.AdmitToNode(ctx, lease, store.NodeAdmission{ServerID: job.ServerID, Node: node,
		Limit: s.cfg.BackupsPerNode, WaitStep: stepWaitNode, GoStep: stepDispatch, Now: now})
	if err != nil {
		return false, dbError(err)
	}
	job.Node = node
	if !ok {
		if job.Step != stepWaitNode {
			s.logger.Info("backup waits for its node", "job_id", job.ID, "service_id", job.ServiceID, "node", node)
		}
		job.Step = stepWaitNode
		return false, nil
	}
	job.AdmittedAt, job.Step = &now, stepDispatch
	return true, nil
}

// ProtectBackup sets or clears Proxmox's protected flag on one of the
// service's available backups (the page's Keep toggle): a protected
// backup is never rotated away and still counts towards the quota.
// Proxmox first, then the record: a flag the record does not show yet
// errs on the side of keeping the backup.
func (s *Service) ProtectBackup(ctx context.Context, c Call, id pvekeep.BackupID, protected bool) (pvekeep.Backup, error) {
	if id <= 0 {
		return pvekeep.Backup{}, pvekeep.InvalidInput("backup_id", "backup_id must be a positive integer")
	}
	f, err := s.authorize(ctx, c, mutate)
	if err != nil {
		return pvekeep.Backup{}, err
	}
	b, err := s.st.Backup(ctx, f.ServiceID, id)
	if err != nil {
		return pvekeep.Backup{}, enqueueError(err)
	}
	if b.Status != pvekeep.BackupAvailable {
		return pvekeep.Backup{}, pvekeep.InvalidState(fmt.Sprintf("the backup is %s", b.Status))
	}
	if b.Protected == protected {
		return b, nil
	}
	pc, err := s.connect(ctx, c.Server)
	if err != nil {
		return pvekeep.Backup{}, err
	}
	node := b.Node
	if node == "" {
		ref, err := s.locate(ctx, pc, f.VMID)
		if err != nil {
			return pvekeep.Backup{}, err
		}
		node = ref.Node
	}
	if err := pc.SetVolumeProtected(ctx, node, b.Storage, b.Volid, protected); err != nil {
		return pvekeep.Backup{}, pveError("set protected flag", err)
	}
	if err := s.sched.SetBackupProtected(ctx, f.ServiceID, b.ID, protected); err != nil {
		return pvekeep.Backup{}, dbError(err)
	}
	b.Protected = protected
	return b, nil
}
