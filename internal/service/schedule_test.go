package service_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/dbtest"
	"github.com/pvekeep/pvekeep/internal/jobs"
	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/pvesim"
	"github.com/pvekeep/pvekeep/internal/seed"
	"github.com/pvekeep/pvekeep/internal/service"
)

// Scheduled backups over the real store (MariaDB) and the real gateway
// against the simulator, with a test clock: the schedule's time comes by
// moving the clock, never by waiting. Proxmox's tasks run in (fast) real
// time.

// fleet is a simulator with vms VMs on one node and one Active service
// per VM, all of one product.
type fleet struct {
	*bundle
	services []pvekeep.ServiceID
}

type fleetSpec struct {
	vms     int
	quota   int
	more    string // configoption24
	perNode int
}

func newFleet(t *testing.T, spec fleetSpec) *fleet {
	t.Helper()
	db := dbtest.New(t)
	sim := pvesim.New(pvesim.Options{Nodes: 1, VMs: spec.vms, Speed: 200, Logger: slog.New(slog.DiscardHandler)})
	info, err := sim.Start("127.0.0.1:0")
	must(t, err)
	t.Cleanup(func() { sim.Close() })
	u, _ := url.Parse(info.URL)
	port, _ := strconv.Atoi(u.Port())
	srv := pvekeep.Server{Host: u.Hostname(), Port: port, TokenID: info.TokenID, TokenSecret: info.TokenSecret, Fingerprint: info.Fingerprint}

	ctx := context.Background()
	clock := &testClock{now: time.Now().UTC()}
	sd := seed.New(db.Store.DB(), clock.now)
	clientID, err := sd.Client(ctx, seed.Client{})
	must(t, err)
	srv.ID, err = sd.Server(ctx, seed.Server{Hostname: srv.Host, Port: port})
	must(t, err)
	productID, err := sd.Product(ctx, seed.Product{BackupStorage: "backup", BackupsQuota: spec.quota, Settings: map[int]string{24: spec.more}})
	must(t, err)
	f := &fleet{}
	for i := range spec.vms {
		sid, err := sd.Service(ctx, seed.Service{ClientID: clientID, ProductID: productID, ServerID: srv.ID, VMID: strconv.Itoa(100 + i)})
		must(t, err)
		f.services = append(f.services, pvekeep.ServiceID(sid))
	}
	cfg := service.Config{LeaseFor: time.Minute, QuietWindow: 5 * time.Second, BackupsPerNode: spec.perNode,
		ScheduleRetryAfter: 10 * time.Minute, ScheduleBusyRetry: time.Minute}
	f.bundle = &bundle{db: db, sim: sim, clock: clock, server: srv, clientID: clientID, productID: productID,
		service: f.services[0], seed: sd, cfg: cfg}
	f.svc, f.deps = f.newProcess()
	return f
}

// newProcess is another plugin process on the same database and Proxmox:
// its own runner (lease owner) and service.
func (f *fleet) newProcess() (*service.Service, service.Deps) {
	logger := slog.New(slog.DiscardHandler)
	runner := jobs.NewRunner(f.db.Store, f.clock, logger, jobs.Config{LeaseFor: time.Minute, PollEvery: 20 * time.Millisecond})
	dial := func(ctx context.Context, s pvekeep.Server) (pve.Cluster, error) {
		return pve.Connect(ctx, pve.ConfigFromServer(s))
	}
	deps := service.Deps{Store: f.db.Store, Dial: dial, Runner: runner, Clock: f.clock, Logger: logger}
	return service.New(deps, f.cfg), deps
}

func (f *fleet) callFor(id pvekeep.ServiceID) service.Call {
	return service.Call{ServiceID: id, Actor: pvekeep.Actor{Type: pvekeep.ActorClient, ID: f.clientID}, Server: f.server}
}

// everyDayAt sets every service's schedule to every day at the next whole
// minute from the clock (UTC), and returns that instant.
func (f *fleet) everyDayAt(t *testing.T, ids ...pvekeep.ServiceID) time.Time {
	t.Helper()
	at := f.clock.Now().UTC().Truncate(time.Minute).Add(time.Minute)
	hhmm := at.Format("15:04")
	var days []service.ScheduleDayInput
	for _, d := range []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"} {
		days = append(days, service.ScheduleDayInput{Day: d, Enabled: true, Time: hhmm})
	}
	if len(ids) == 0 {
		ids = f.services
	}
	for _, id := range ids {
		sc, err := f.svc.SetSchedule(context.Background(), f.callFor(id), service.ScheduleInput{Timezone: "UTC", Days: days})
		must(t, err)
		if sc.NextRunAt == nil || !sc.NextRunAt.Equal(at) {
			t.Fatalf("next run %v, want %v", sc.NextRunAt, at)
		}
	}
	return at
}

// tickUntil ticks (budget 1 s each) until done says so, moving the clock a
// second a round so leases expire as in real life.
func (f *fleet) tickUntil(t *testing.T, svc *service.Service, rounds int, done func() bool) jobs.Stats {
	t.Helper()
	var total jobs.Stats
	for range rounds {
		st, err := svc.Tick(context.Background(), []pvekeep.Server{f.server}, time.Second)
		must(t, err)
		total.ScheduledDue += st.ScheduledDue
		total.ScheduledDispatched += st.ScheduledDispatched
		total.ScheduledSkipped += st.ScheduledSkipped
		total.ScheduledRetried += st.ScheduledRetried
		total.ScheduledFailed += st.ScheduledFailed
		total.Rotations += st.Rotations
		if done() {
			return total
		}
		f.clock.Advance(time.Second)
	}
	t.Fatalf("not done after %d ticks", rounds)
	return total
}

// vzdumps counts the simulator's vzdump tasks per guest id.
func (f *fleet) vzdumps() map[string]int {
	out := map[string]int{}
	for _, task := range f.sim.State().Tasks {
		if task.Type == "vzdump" {
			out[task.ID]++
		}
	}
	return out
}

func (f *fleet) run(t *testing.T, id pvekeep.ServiceID) *service.ScheduleRun {
	t.Helper()
	sc, err := f.svc.GetSchedule(context.Background(), f.callFor(id), "")
	must(t, err)
	return sc.LastRun
}

func (f *fleet) allRuns(t *testing.T, state string) func() bool {
	return func() bool {
		for _, id := range f.services {
			if r := f.run(t, id); r == nil || r.State != state {
				return false
			}
		}
		return true
	}
}

func (f *fleet) backups(t *testing.T, id pvekeep.ServiceID) []pvekeep.Backup {
	t.Helper()
	l, err := f.svc.ListBackups(context.Background(), f.callFor(id))
	must(t, err)
	return l.Items
}

// maxRunningVzdumps watches the simulator until stop is closed and
// reports the most vzdump tasks it ever saw running on one node at once.
func (f *fleet) maxRunningVzdumps(stop <-chan struct{}) <-chan int {
	out := make(chan int, 1)
	go func() {
		peak := 0
		for {
			perNode := map[string]int{}
			for _, task := range f.sim.State().Tasks {
				if task.Type == "vzdump" && task.Status == "running" {
					perNode[task.Node]++
					peak = max(peak, perNode[task.Node])
				}
			}
			select {
			case <-stop:
				out <- peak
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	return out
}

func TestScheduleSetRefusesBadInputAndChangesNothing(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetSpec{vms: 1, quota: 3})
	ctx := context.Background()
	good := []service.ScheduleDayInput{{Day: "mon", Enabled: true, Time: "03:00"}}
	tests := []struct {
		name  string
		in    service.ScheduleInput
		field string
	}{
		{"unknown zone", service.ScheduleInput{Timezone: "Mars/Olympus", Days: good}, "timezone"},
		{"an abbreviation is no IANA name", service.ScheduleInput{Timezone: "CEST", Days: good}, "timezone"},
		{"Local depends on the host", service.ScheduleInput{Timezone: "Local", Days: good}, "timezone"},
		{"bad panel zone when none is given", service.ScheduleInput{PanelTimezone: "nowhere", Days: good}, "panel_timezone"},
		{"unknown day", service.ScheduleInput{Timezone: "UTC", Days: []service.ScheduleDayInput{{Day: "monday", Enabled: true, Time: "03:00"}}}, "days[0].day"},
		{"a day twice", service.ScheduleInput{Timezone: "UTC", Days: []service.ScheduleDayInput{{Day: "mon", Time: "01:00"}, {Day: "mon", Enabled: true, Time: "03:00"}}}, "days[1].day"},
		{"24:00", service.ScheduleInput{Timezone: "UTC", Days: []service.ScheduleDayInput{{Day: "tue", Enabled: true, Time: "24:00"}}}, "days[0].time"},
		{"no leading zero", service.ScheduleInput{Timezone: "UTC", Days: []service.ScheduleDayInput{{Day: "tue", Enabled: true, Time: "3:00"}}}, "days[0].time"},
		{"enabled without a time", service.ScheduleInput{Timezone: "UTC", Days: []service.ScheduleDayInput{{Day: "tue", Enabled: true}}}, "days[0].time"},
		{"eight days", service.ScheduleInput{Timezone: "UTC", Days: make([]service.ScheduleDayInput, 8)}, "days"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.SetSchedule(ctx, f.callFor(f.service), tc.in)
			e, ok := pvekeep.AsError(err)
			if !ok || e.Reason != pvekeep.ReasonInvalidInput || e.Data["field"] != tc.field {
				t.Fatalf("err = %v (%+v), want invalid_input on %s", err, e, tc.field)
			}
		})
	}
	sc, err := f.svc.GetSchedule(ctx, f.callFor(f.service), "Europe/Berlin")
	must(t, err)
	if sc.Timezone != "Europe/Berlin" || sc.NextRunAt != nil || len(sc.Days) != 7 || sc.Days[1].Enabled {
		t.Errorf("after refused sets the schedule is %+v, want none in the panel's zone", sc)
	}
}

func TestScheduleSetSavesTheWeekInThePanelZoneWithItsNextRun(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetSpec{vms: 1, quota: 3})
	ctx := context.Background()
	f.clock.now = time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC) // a Saturday, the day before Berlin springs forward
	sc, err := f.svc.SetSchedule(ctx, f.callFor(f.service), service.ScheduleInput{PanelTimezone: "Europe/Berlin",
		Days: []service.ScheduleDayInput{{Day: "sun", Enabled: true, Time: "02:30"}, {Day: "wed", Enabled: true, Time: "23:00"}, {Day: "fri", Time: ""}}})
	must(t, err)
	want := time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC) // 02:30 does not exist that night: 03:00 CEST
	if sc.Timezone != "Europe/Berlin" || sc.NextRunAt == nil || !sc.NextRunAt.Equal(want) {
		t.Fatalf("schedule %+v, want Europe/Berlin and next run %v", sc, want)
	}
	got, err := f.svc.GetSchedule(ctx, f.callFor(f.service), "UTC")
	must(t, err)
	if got.Timezone != "Europe/Berlin" || !got.Days[0].Enabled || got.Days[0].Time != "02:30" || !got.Days[3].Enabled ||
		got.Days[3].Time != "23:00" || got.Days[5].Enabled || got.NextRunAt == nil || !got.NextRunAt.Equal(want) {
		t.Errorf("read back %+v", got)
	}
	// A client may not change a suspended service's schedule.
	must(t, f.seed.SetServiceStatus(ctx, int64(f.service), "Suspended"))
	if _, err := f.svc.SetSchedule(ctx, f.callFor(f.service), service.ScheduleInput{Timezone: "UTC"}); pvekeep.ReasonOf(err) != pvekeep.ReasonForbidden {
		t.Errorf("suspended: err = %v, want forbidden", err)
	}
}

func TestAdminWindowPicksAStableTimeInsideIt(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetSpec{vms: 3, quota: 3, more: "schedule_window = 01:00-03:00"})
	ctx := context.Background()
	times := map[string]bool{}
	for _, id := range f.services {
		sc, err := f.svc.SetSchedule(ctx, f.callFor(id), service.ScheduleInput{Timezone: "UTC",
			Days: []service.ScheduleDayInput{{Day: "mon", Enabled: true, Time: "18:00"}}})
		must(t, err)
		tm := sc.Days[1].Time
		if sc.Window != "01:00-03:00" || tm < "01:00" || tm >= "03:00" || !sc.Days[1].Enabled || sc.Days[2].Enabled {
			t.Fatalf("schedule %+v: want monday only, at a time inside 01:00-03:00", sc)
		}
		again, err := f.svc.GetSchedule(ctx, f.callFor(id), "")
		must(t, err)
		if again.Days[1].Time != tm {
			t.Errorf("service %d: %s then %s, not stable", id, tm, again.Days[1].Time)
		}
		times[tm] = true
	}
	if len(times) < 2 {
		t.Errorf("three services all at %v: the window does not spread them", times)
	}
}

func TestScheduledBackupRunsOncePerLocalDate(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetSpec{vms: 1, quota: 5})
	at := f.everyDayAt(t)
	// Before its time: nothing.
	st := f.tickUntil(t, f.svc, 1, func() bool { return true })
	if st.ScheduledDue != 0 || len(f.vzdumps()) != 0 {
		t.Fatalf("before its time: %+v, vzdumps %v", st, f.vzdumps())
	}
	f.clock.now = at.Add(30 * time.Second)
	st = f.tickUntil(t, f.svc, 200, f.allRuns(t, "done"))
	if st.ScheduledDue != 1 || st.ScheduledDispatched != 1 {
		t.Errorf("stats %+v, want one due and dispatched", st)
	}
	// The rest of the day: more ticks, no second backup.
	for range 5 {
		f.clock.Advance(time.Hour)
		f.tickUntil(t, f.svc, 1, func() bool { return true })
	}
	if n := f.vzdumps()["100"]; n != 1 {
		t.Errorf("%d vzdumps of 100 the first day, want 1", n)
	}
	items := f.backups(t, f.service)
	if len(items) != 1 || items[0].Origin != pvekeep.OriginScheduled || items[0].Status != pvekeep.BackupAvailable {
		t.Errorf("backups %+v, want one scheduled, available", items)
	}
	// The next day's run comes at the same time.
	f.clock.now = at.Add(24*time.Hour + time.Second)
	f.tickUntil(t, f.svc, 200, func() bool { return f.vzdumps()["100"] == 2 && f.run(t, f.service).State == "done" })
}

func TestOutageOfSeveralDaysTakesOneBackup(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetSpec{vms: 1, quota: 5})
	at := f.everyDayAt(t)
	// The cron was away for three days and a half.
	f.clock.now = at.Add(84 * time.Hour)
	st := f.tickUntil(t, f.svc, 200, f.allRuns(t, "done"))
	for range 3 {
		f.clock.Advance(time.Minute)
		f.tickUntil(t, f.svc, 1, func() bool { return true })
	}
	if n := f.vzdumps()["100"]; n != 1 || st.ScheduledDue != 1 {
		t.Errorf("%d vzdumps, %d runs due after the outage, want 1 and 1", n, st.ScheduledDue)
	}
	r := f.run(t, f.service)
	if want := at.Add(72 * time.Hour).Format("2006-01-02"); r.Date != want {
		t.Errorf("the run taken is of %s, want the latest missed date %s", r.Date, want)
	}
	sc, err := f.svc.GetSchedule(context.Background(), f.callFor(f.service), "")
	must(t, err)
	if want := at.Add(96 * time.Hour); sc.NextRunAt == nil || !sc.NextRunAt.Equal(want) {
		t.Errorf("next run %v, want %v", sc.NextRunAt, want)
	}
}

// The per-node limit: 10 due VMs on one node with limit 1 → never
// more than one vzdump running there, none waiting in Proxmox's lock
// queue, all 10 done.
func TestPerNodeLimitRunsOneBackupAtATime(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetSpec{vms: 10, quota: 3, perNode: 1})
	at := f.everyDayAt(t)
	f.clock.now = at.Add(time.Second)
	stop := make(chan struct{})
	peak := f.maxRunningVzdumps(stop)
	st := f.tickUntil(t, f.svc, 2000, f.allRuns(t, "done"))
	close(stop)
	if p := <-peak; p != 1 {
		t.Errorf("at most %d vzdumps ran at once on the node, want exactly 1", p)
	}
	got := f.vzdumps()
	for i := range 10 {
		if got[strconv.Itoa(100+i)] != 1 {
			t.Errorf("VM %d: %d vzdumps, want 1 (all: %v)", 100+i, got[strconv.Itoa(100+i)], got)
		}
	}
	for _, task := range f.sim.State().Tasks {
		for _, line := range task.Log {
			if strings.Contains(line, "trying to get global lock") {
				t.Errorf("task %s waited in Proxmox's lock queue: %q", task.UPID, line)
			}
		}
	}
	if st.ScheduledDue != 10 || st.ScheduledDispatched != 10 {
		t.Errorf("stats %+v, want 10 due and 10 dispatched", st)
	}
}

// A client's click on a node busy with a scheduled backup waits in the
// database (queued, step wait_node) and runs after it.
func TestManualBackupWaitsBehindAScheduledOneOnItsNode(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetSpec{vms: 2, quota: 3, perNode: 1})
	ctx := context.Background()
	// One pass: the scheduled vzdump is submitted, and its job holds the
	// node until a later tick sees the task end.
	at := f.everyDayAt(t, f.services[0])
	f.clock.now = at.Add(time.Second)
	_, err := f.svc.Tick(ctx, []pvekeep.Server{f.server}, 0)
	must(t, err)
	if r := f.run(t, f.services[0]); r == nil || r.State != "running" {
		t.Fatalf("scheduled run %+v, want running", r)
	}
	job, err := f.svc.CreateBackup(ctx, f.callFor(f.services[1]), "manual", "")
	must(t, err)
	if job.State != pvekeep.JobQueued || job.Step != "wait_node" {
		t.Fatalf("the click's job is %s/%s, want queued/wait_node", job.State, job.Step)
	}
	if n := f.vzdumps()["101"]; n != 0 {
		t.Fatalf("the click's vzdump went to Proxmox while the node was busy")
	}
	l, err := f.svc.ListBackups(ctx, f.callFor(f.services[1]))
	must(t, err)
	if l.ActiveJob == nil || l.ActiveJob.Step != "wait_node" {
		t.Errorf("the page shows %+v, want the job waiting for the node", l.ActiveJob)
	}
	stop := make(chan struct{})
	peak := f.maxRunningVzdumps(stop)
	f.tickUntil(t, f.svc, 3000, func() bool {
		j, err := f.svc.GetJob(ctx, f.callFor(f.services[1]), job.ID)
		must(t, err)
		return j.State == pvekeep.JobSucceeded
	})
	close(stop)
	if p := <-peak; p != 1 {
		t.Errorf("%d vzdumps ran at once, want 1", p)
	}
	if r := f.run(t, f.services[0]); r.State != "done" {
		t.Errorf("the scheduled run is %s, want done before the click's backup", r.State)
	}
}

// Two ticks at once in two processes (two runners, two services, one
// database) take each due backup exactly once.
func TestConcurrentTicksTakeEachDueBackupOnce(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetSpec{vms: 6, quota: 3, perNode: 1})
	other, _ := f.newProcess()
	at := f.everyDayAt(t)
	f.clock.now = at.Add(time.Second)
	stop := make(chan struct{})
	peak := f.maxRunningVzdumps(stop)
	var wg sync.WaitGroup
	for _, svc := range []*service.Service{f.svc, other} {
		wg.Go(func() {
			for range 3000 {
				if _, err := svc.Tick(context.Background(), []pvekeep.Server{f.server}, time.Second); err != nil {
					t.Error(err)
					return
				}
				if f.allRuns(t, "done")() {
					return
				}
				f.clock.Advance(500 * time.Millisecond)
			}
			t.Error("not done after 3000 ticks")
		})
	}
	wg.Wait()
	close(stop)
	if p := <-peak; p > 1 {
		t.Errorf("%d vzdumps ran at once on the node, want at most 1", p)
	}
	got := f.vzdumps()
	for i := range 6 {
		if n := got[strconv.Itoa(100+i)]; n != 1 {
			t.Errorf("VM %d: %d vzdumps, want exactly 1 (all %v)", 100+i, n, got)
		}
	}
	for _, id := range f.services {
		if items := f.backups(t, id); len(items) != 1 {
			t.Errorf("service %d has %d backups, want 1", id, len(items))
		}
	}
}

// seedBackups makes n available backups of the service through manual
// backups, oldest first.
func (f *fleet) seedBackups(t *testing.T, id pvekeep.ServiceID, n int) []pvekeep.Backup {
	t.Helper()
	for i := range n {
		_, err := f.svc.CreateBackup(context.Background(), f.callFor(id), fmt.Sprintf("old %d", i), "")
		must(t, err)
		f.tickUntil(t, f.svc, 500, func() bool {
			l, err := f.svc.ListBackups(context.Background(), f.callFor(id))
			must(t, err)
			return l.ActiveJob == nil
		})
		f.clock.Advance(time.Minute)
	}
	items := f.backups(t, id)
	if len(items) != n {
		t.Fatalf("seeded %d backups, want %d", len(items), n)
	}
	return items
}

func TestRotationAtAFullQuota(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		protect []int // indexes, oldest first, of the seeded backups to protect
		fail    bool  // every vzdump of the run fails
		// want: which seeded backups remain (oldest first), whether the run
		// made a new one, the run's end state and reason
		remain  []int
		newOne  bool
		state   string
		reason  string
		vzdumps int
	}{
		{name: "success removes the oldest", remain: []int{1}, newOne: true, state: "done", vzdumps: 1},
		{name: "success never removes a protected one: the oldest unprotected goes", protect: []int{0}, remain: []int{0}, newOne: true, state: "done", vzdumps: 1},
		{name: "failure keeps every old backup, retried then failed", fail: true, remain: []int{0, 1}, state: "failed", vzdumps: 3},
		{name: "all protected: skipped, nothing touched", protect: []int{0, 1}, remain: []int{0, 1}, state: "skipped", reason: "all_protected"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFleet(t, fleetSpec{vms: 1, quota: 2, more: "schedule_retries = 2"})
			ctx := context.Background()
			old := f.seedBackups(t, f.service, 2)
			// newest first → oldest first
			old[0], old[1] = old[1], old[0]
			for _, i := range tc.protect {
				b, err := f.svc.ProtectBackup(ctx, f.callFor(f.service), old[i].ID, true)
				must(t, err)
				if !b.Protected {
					t.Fatalf("protect answered %+v", b)
				}
			}
			if tc.fail {
				must(t, f.sim.InjectTaskFault(pvesim.TaskFault{Type: "vzdump", VMID: 100, ExitStatus: "unable to read disk: I/O error"}))
			}
			at := f.everyDayAt(t)
			f.clock.now = at.Add(time.Second)
			f.tickUntil(t, f.svc, 3000, func() bool {
				r := f.run(t, f.service)
				if r != nil && r.State == "waiting" {
					f.clock.Advance(10 * time.Minute) // the retry's pause
				}
				if r == nil || r.State != tc.state {
					return false
				}
				l, err := f.svc.ListBackups(ctx, f.callFor(f.service))
				must(t, err)
				return l.ActiveJob == nil
			})
			r := f.run(t, f.service)
			if r.Reason != tc.reason {
				t.Errorf("run %+v, want reason %q", r, tc.reason)
			}
			items := f.backups(t, f.service)
			have := map[pvekeep.BackupID]bool{}
			newOnes := 0
			for _, b := range items {
				have[b.ID] = true
				if b.Origin == pvekeep.OriginScheduled {
					newOnes++
				}
			}
			for i, b := range old {
				want := false
				for _, k := range tc.remain {
					want = want || k == i
				}
				if have[b.ID] != want {
					t.Errorf("seeded backup %d (protected %v): present %v, want %v", i, b.Protected, have[b.ID], want)
				}
			}
			if (newOnes == 1) != tc.newOne || newOnes > 1 {
				t.Errorf("%d scheduled backups, want new=%v", newOnes, tc.newOne)
			}
			if n := f.vzdumps()["100"]; n != 2+tc.vzdumps {
				t.Errorf("%d vzdumps, want 2 seeded + %d", n, tc.vzdumps)
			}
			// What Proxmox holds: every protected backup, still protected.
			onPVE := map[string]bool{}
			for _, v := range f.sim.State().Volumes {
				onPVE[v.Volid] = v.Protected
			}
			for _, i := range tc.protect {
				if p, ok := onPVE[old[i].Volid]; !ok || !p {
					t.Errorf("protected backup %d: on Proxmox %v, protected %v", i, ok, p)
				}
			}
			if tc.fail {
				if r.Attempts != 3 || r.MaxAttempts != 3 || !strings.Contains(r.Error, "I/O error") {
					t.Errorf("failed run %+v, want 3 of 3 attempts and Proxmox's error", r)
				}
				// The schedule card says it; the backups card's "your backup
				// failed" is for the client's own clicks.
				l, err := f.svc.ListBackups(ctx, f.callFor(f.service))
				must(t, err)
				if l.FailedBackup != nil {
					t.Errorf("the cron's failed backup is shown as the client's: %+v", l.FailedBackup)
				}
			}
			sc, err := f.svc.GetSchedule(ctx, f.callFor(f.service), "")
			must(t, err)
			if sc.SkippedReason != tc.reason {
				t.Errorf("page's skipped_reason %q, want %q", sc.SkippedReason, tc.reason)
			}
		})
	}
}

func TestProtectSetsProxmoxFlagAndRefusesWhatIsNotAvailable(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetSpec{vms: 1, quota: 3})
	ctx := context.Background()
	b := f.seedBackups(t, f.service, 1)[0]
	flag := func() bool {
		for _, v := range f.sim.State().Volumes {
			if v.Volid == b.Volid {
				return v.Protected
			}
		}
		t.Fatalf("volume %s is gone", b.Volid)
		return false
	}
	for _, want := range []bool{true, true, false} {
		got, err := f.svc.ProtectBackup(ctx, f.callFor(f.service), b.ID, want)
		must(t, err)
		if got.Protected != want || flag() != want {
			t.Errorf("protect(%v): answered %v, Proxmox has %v", want, got.Protected, flag())
		}
	}
	if _, err := f.svc.ProtectBackup(ctx, f.callFor(f.service), 999999, true); pvekeep.ReasonOf(err) != pvekeep.ReasonNotFound {
		t.Errorf("unknown backup: %v", err)
	}
	if _, err := f.svc.ProtectBackup(ctx, service.Call{ServiceID: f.service, Actor: pvekeep.Actor{Type: pvekeep.ActorClient, ID: f.clientID + 1}, Server: f.server}, b.ID, true); pvekeep.ReasonOf(err) != pvekeep.ReasonForbidden {
		t.Errorf("another client: %v", err)
	}
	// A kept backup is not removed: refused with nothing started (Proxmox
	// would refuse it in the task; the fidelity suite checks that).
	_, err := f.svc.ProtectBackup(ctx, f.callFor(f.service), b.ID, true)
	must(t, err)
	_, err = f.svc.RemoveBackup(ctx, f.callFor(f.service), b.ID)
	if e, ok := pvekeep.AsError(err); !ok || e.Reason != pvekeep.ReasonInvalidState || e.Data["state"] != "protected" {
		t.Errorf("removing a kept backup: %v, want invalid_state protected", err)
	}
	if n := len(f.sim.State().Tasks); n != 1 {
		t.Errorf("%d Proxmox tasks, want only the backup's", n)
	}
	items := f.backups(t, f.service)
	if len(items) != 1 || items[0].Status != pvekeep.BackupAvailable || !items[0].Protected {
		t.Errorf("after removing a protected backup: %+v, want it available and protected", items)
	}
}

// A VM Proxmox holds a lock on (a migration, a backup started by hand) is
// not sent a scheduled vzdump: the run waits, reason locked, without
// spending an attempt, and goes once the lock is gone.
func TestScheduledBackupWaitsForAProxmoxLock(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetSpec{vms: 1, quota: 3})
	at := f.everyDayAt(t)
	must(t, f.sim.SetLock(100, "migrate"))
	f.tickUntil(t, f.svc, 1, func() bool { return true }) // the tick's look at Proxmox sees the lock
	f.clock.now = at.Add(time.Second)
	f.tickUntil(t, f.svc, 1, func() bool { return true })
	r := f.run(t, f.service)
	if r == nil || r.State != "waiting" || r.Reason != "locked" || r.Attempts != 0 {
		t.Fatalf("run %+v, want waiting for the lock, no attempt spent", r)
	}
	if n := f.vzdumps()["100"]; n != 0 {
		t.Fatalf("%d vzdumps sent to a locked VM", n)
	}
	must(t, f.sim.SetLock(100, ""))
	f.tickUntil(t, f.svc, 500, func() bool {
		f.clock.Advance(30 * time.Second) // past the pause before the next try
		return f.run(t, f.service).State == "done"
	})
	if r := f.run(t, f.service); r.Attempts != 1 || f.vzdumps()["100"] != 1 {
		t.Errorf("run %+v and %d vzdumps, want one attempt, one vzdump", r, f.vzdumps()["100"])
	}
}

// A terminated service's schedule owes nothing: no run recorded, no
// vzdump, and the schedule moves on instead of being found due each tick.
func TestTerminatedServiceSchedulesNothing(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetSpec{vms: 1, quota: 3})
	ctx := context.Background()
	at := f.everyDayAt(t)
	must(t, f.seed.SetServiceStatus(ctx, int64(f.service), "Terminated"))
	f.clock.now = at.Add(time.Second)
	st := f.tickUntil(t, f.svc, 1, func() bool { return true })
	if st.ScheduledDue != 0 || len(f.vzdumps()) != 0 {
		t.Errorf("stats %+v, vzdumps %v: want nothing for a terminated service", st, f.vzdumps())
	}
	if due, err := f.db.Store.DueSchedulesOn(ctx, []int64{f.server.ID}, f.clock.Now(), 0); err != nil || len(due) != 0 {
		t.Errorf("still due after the tick: %+v, %v", due, err)
	}
	var n int
	must(t, f.db.Store.DB().QueryRowContext(ctx, "SELECT COUNT(*) FROM mod_pvekeep_schedule_runs").Scan(&n))
	if n != 0 {
		t.Errorf("%d runs recorded for a terminated service", n)
	}
}

// settled: the service's latest run is in state and no job of the
// service is active any more (its backup, or a rotation's removal).
func (f *fleet) settled(t *testing.T, id pvekeep.ServiceID, date, state string) func() bool {
	return func() bool {
		r := f.run(t, id)
		if r == nil || r.Date != date || r.State != state {
			return false
		}
		l, err := f.svc.ListBackups(context.Background(), f.callFor(id))
		must(t, err)
		return l.ActiveJob == nil
	}
}

// removals counts the simulator's volume deletions.
func (f *fleet) removals() int {
	n := 0
	for _, task := range f.sim.State().Tasks {
		if task.Type == "imgdel" {
			n++
		}
	}
	return n
}

func (f *fleet) backupIDs(t *testing.T, id pvekeep.ServiceID) map[pvekeep.BackupID]pvekeep.Backup {
	t.Helper()
	out := map[pvekeep.BackupID]pvekeep.Backup{}
	for _, b := range f.backups(t, id) {
		out[b.ID] = b
	}
	return out
}

// The admin lowers the Backups quota below what a service holds: the next
// scheduled backup is still taken, and then the oldest unprotected backups
// are removed, one after another, until the service is back within its
// quota. The day after, it rotates as at any full quota.
func TestScheduledBackupGoesOnAfterTheQuotaWasLowered(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetSpec{vms: 1, quota: 3})
	ctx := context.Background()
	old := f.seedBackups(t, f.service, 3) // newest first
	must(t, f.seed.SetProductSetting(ctx, f.productID, 2, "2"))
	at := f.everyDayAt(t)
	day1 := at.Format(time.DateOnly)
	f.clock.now = at.Add(time.Second)
	f.tickUntil(t, f.svc, 1500, f.settled(t, f.service, day1, "done"))
	have := f.backupIDs(t, f.service)
	if len(have) != 2 {
		t.Fatalf("%d backups after the run, want 2 (the quota): %+v", len(have), have)
	}
	if _, ok := have[old[0].ID]; !ok {
		t.Errorf("the newest old backup was removed; the two oldest should have gone: %+v", have)
	}
	if n := f.vzdumps()["100"]; n != 4 {
		t.Errorf("%d vzdumps, want 3 seeded + 1 scheduled", n)
	}
	if n := f.removals(); n != 2 {
		t.Errorf("%d removals on Proxmox, want exactly 2", n)
	}
	if r := f.run(t, f.service); r.Reason != "" || r.Attempts != 1 {
		t.Errorf("run %+v, want done without a reason, one attempt", r)
	}

	f.clock.now = at.Add(24*time.Hour + time.Second)
	day2 := f.clock.now.Format(time.DateOnly)
	f.tickUntil(t, f.svc, 1500, f.settled(t, f.service, day2, "done"))
	have = f.backupIDs(t, f.service)
	if _, ok := have[old[0].ID]; ok || len(have) != 2 || f.removals() != 3 || f.vzdumps()["100"] != 5 {
		t.Errorf("the next day: backups %+v, %d removals, %d vzdumps; want the two scheduled ones, 3, 5", have, f.removals(), f.vzdumps()["100"])
	}
}

// The customer keeps the last unprotected backup while a scheduled one is
// being made. That backup is still made, but nothing may rotate: the page
// says the service is above its quota because the others are kept, not
// that the run was skipped. The next day's run needs two unprotected
// backups to go and has one: skipped, all_protected, shown, no vzdump.
// Once a backup is no longer kept, the next run goes ahead and rotation
// brings the service back within its quota.
func TestKeepingTheLastUnprotectedBackupDuringAScheduledOne(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetSpec{vms: 1, quota: 2})
	ctx := context.Background()
	old := f.seedBackups(t, f.service, 2)
	old[0], old[1] = old[1], old[0] // oldest first
	_, err := f.svc.ProtectBackup(ctx, f.callFor(f.service), old[0].ID, true)
	must(t, err)
	at := f.everyDayAt(t)
	day := func(n int) string { return at.AddDate(0, 0, n).Format(time.DateOnly) }
	f.clock.now = at.Add(time.Second)
	f.tickUntil(t, f.svc, 500, func() bool { r := f.run(t, f.service); return r != nil && r.State == "running" })
	_, err = f.svc.ProtectBackup(ctx, f.callFor(f.service), old[1].ID, true)
	must(t, err)
	f.tickUntil(t, f.svc, 1500, f.settled(t, f.service, day(0), "done"))
	if r := f.run(t, f.service); r.Reason != "all_protected" {
		t.Errorf("run %+v, want done, reason all_protected", r)
	}
	sc, err := f.svc.GetSchedule(ctx, f.callFor(f.service), "")
	must(t, err)
	if sc.SkippedReason != "" {
		t.Errorf("the page says the run was skipped (%q), but its backup was made", sc.SkippedReason)
	}
	if n := len(f.backups(t, f.service)); n != 3 || f.removals() != 0 {
		t.Fatalf("%d backups, %d removals after the first day, want 3 and none", n, f.removals())
	}

	f.clock.now = at.Add(24*time.Hour + time.Second)
	f.tickUntil(t, f.svc, 300, f.settled(t, f.service, day(1), "skipped"))
	sc, err = f.svc.GetSchedule(ctx, f.callFor(f.service), "")
	must(t, err)
	if sc.SkippedReason != "all_protected" || sc.LastRun.Reason != "all_protected" {
		t.Errorf("second day: skipped_reason %q, run %+v; want all_protected", sc.SkippedReason, sc.LastRun)
	}
	if n := f.vzdumps()["100"]; n != 3 {
		t.Errorf("%d vzdumps after the skipped day, want 3", n)
	}

	_, err = f.svc.ProtectBackup(ctx, f.callFor(f.service), old[1].ID, false)
	must(t, err)
	f.clock.now = at.Add(48*time.Hour + time.Second)
	f.tickUntil(t, f.svc, 1500, f.settled(t, f.service, day(2), "done"))
	have := f.backupIDs(t, f.service)
	if _, kept := have[old[0].ID]; !kept || len(have) != 2 || f.vzdumps()["100"] != 4 || f.removals() != 2 {
		t.Errorf("third day: backups %+v, %d vzdumps, %d removals; want the kept one and the new one, 4, 2", have, f.vzdumps()["100"], f.removals())
	}
	if r := f.run(t, f.service); r.Reason != "" {
		t.Errorf("third day's run %+v, want done without a reason", r)
	}
}

// A failed scheduled backup is retried only while its local date lasts,
// in the schedule's zone: a retry whose pause would end on the next date,
// or that comes round only then (the cron was away), ends the run as
// failed, shown with Proxmox's message; the next date's run proceeds as
// usual.
func TestScheduledRetriesStayOnTheRunsLocalDate(t *testing.T) {
	t.Parallel()
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	must(t, err)
	tests := []struct {
		name string
		// outage: after the first attempt failed, the cron is away until
		// 00:05 the next local day.
		outage   bool
		attempts int
	}{
		{name: "the pause would end on the next date", attempts: 2},
		{name: "the cron comes back on the next date", outage: true, attempts: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFleet(t, fleetSpec{vms: 1, quota: 5, more: "schedule_retries = 5"})
			ctx := context.Background()
			f.clock.now = time.Date(2026, 12, 3, 23, 30, 0, 0, tokyo).UTC()
			var days []service.ScheduleDayInput
			for _, d := range []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"} {
				days = append(days, service.ScheduleDayInput{Day: d, Enabled: true, Time: "23:41"})
			}
			_, err := f.svc.SetSchedule(ctx, f.callFor(f.service), service.ScheduleInput{Timezone: "Asia/Tokyo", Days: days})
			must(t, err)
			must(t, f.sim.InjectTaskFault(pvesim.TaskFault{Type: "vzdump", VMID: 100, ExitStatus: "unable to read disk: I/O error"}))
			f.clock.now = time.Date(2026, 12, 3, 23, 41, 1, 0, tokyo).UTC()
			nextDay := time.Date(2026, 12, 4, 0, 5, 0, 0, tokyo)
			if tc.outage {
				f.tickUntil(t, f.svc, 500, func() bool {
					r := f.run(t, f.service)
					return r != nil && r.State == "waiting" && r.Attempts == 1
				})
				f.clock.now = nextDay.UTC()
			}
			f.tickUntil(t, f.svc, 3000, func() bool {
				r := f.run(t, f.service)
				if r != nil && r.State == "waiting" {
					f.clock.Advance(10 * time.Minute) // the retry's pause
				}
				return (r != nil && r.State == "failed") || f.clock.Now().After(nextDay.Add(30*time.Minute))
			})
			r := f.run(t, f.service)
			if r.Date != "2026-12-03" || r.State != "failed" || r.Attempts != tc.attempts || !strings.Contains(r.Error, "I/O error") {
				t.Errorf("run %+v, want 2026-12-03 failed after %d attempts, with Proxmox's message", r, tc.attempts)
			}
			if n := f.vzdumps()["100"]; n != tc.attempts {
				t.Errorf("%d vzdumps, want %d: none on the next date", n, tc.attempts)
			}
			// The next date's run goes as usual.
			f.sim.ClearFaults()
			f.clock.now = time.Date(2026, 12, 4, 23, 41, 1, 0, tokyo).UTC()
			f.tickUntil(t, f.svc, 500, f.settled(t, f.service, "2026-12-04", "done"))
			if r := f.run(t, f.service); r.Attempts != 1 || f.vzdumps()["100"] != tc.attempts+1 {
				t.Errorf("the next date's run %+v, %d vzdumps; want one attempt, one more vzdump", r, f.vzdumps()["100"])
			}
		})
	}
}
