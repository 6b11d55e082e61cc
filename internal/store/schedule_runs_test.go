package store_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/seed"
	"github.com/pvekeep/pvekeep/internal/store"
)

// Any number of ticks planning the same due schedule leave one run per
// service and date, and the schedule moved on once.
func TestPlanRunsRecordsEachDateOnceUnderConcurrentTicks(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	due := t0.Add(-time.Minute)
	sc := store.Schedule{ServiceID: b.service(0), Timezone: "UTC", NextRunAt: &due}
	sc.Days[time.Sunday] = store.ScheduleDay{Enabled: true, Time: "01:29"}
	if err := s.PutSchedule(ctx, sc, t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	list, err := s.DueSchedulesOn(ctx, []int64{b.fx.ServerID}, t0, 0)
	if err != nil || len(list) != 1 || list[0].ServerID != b.fx.ServerID || list[0].ServiceStatus != "Active" {
		t.Fatalf("due = %+v, %v", list, err)
	}
	next := due.Add(7 * 24 * time.Hour)
	var created atomic.Int32
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			n, err := s.PlanRuns(ctx, []store.PlannedRun{{RunKey: store.RunKey{ServiceID: b.service(0), Date: "2025-03-30"},
				ServerID: b.fx.ServerID, DueAt: due, MaxAttempts: 4}},
				[]store.Advance{{ServiceID: b.service(0), Expect: due, Next: &next}}, t0)
			if err != nil {
				t.Error(err)
			}
			created.Add(int32(n))
		})
	}
	wg.Wait()
	if created.Load() != 1 {
		t.Errorf("%d runs created, want 1", created.Load())
	}
	if list, _ := s.DueSchedulesOn(ctx, []int64{b.fx.ServerID}, t0, 0); len(list) != 0 {
		t.Errorf("still due after planning: %+v", list)
	}
	waiting, err := s.WaitingRuns(ctx, []int64{b.fx.ServerID}, t0, 1)
	if err != nil || len(waiting) != 1 || waiting[0].Date != "2025-03-30" || waiting[0].MaxAttempts != 4 {
		t.Errorf("waiting = %+v, %v", waiting, err)
	}
	// Another server's ticks see nothing of it.
	if w, _ := s.WaitingRuns(ctx, []int64{b.fx.ServerID + 1}, t0, 1); len(w) != 0 {
		t.Errorf("another server's tick sees %+v", w)
	}
}

// Two backup jobs racing for a node's last slot: exactly one is admitted,
// the other waits with its step saying so.
func TestAdmitToNodeLetsLimitJobsThrough(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	var leases []pvekeep.Lease
	for i := range 3 {
		j, _, _, err := s.EnqueueBackupCreate(ctx, b.newCreate(i, t0, 5))
		if err != nil {
			t.Fatal(err)
		}
		leases = append(leases, b.claim(t, s, "runner", t0, j.ID))
	}
	adm := store.NodeAdmission{ServerID: b.fx.ServerID, Node: "pve1", Limit: 2, WaitStep: "wait_node", GoStep: "dispatch", Now: t0}
	var admitted atomic.Int32
	var wg sync.WaitGroup
	for _, l := range leases {
		wg.Go(func() {
			ok, err := s.AdmitToNode(ctx, l, adm)
			if err != nil {
				t.Error(err)
			}
			if ok {
				admitted.Add(1)
			}
		})
	}
	wg.Wait()
	if admitted.Load() != 2 {
		t.Fatalf("%d jobs admitted with limit 2, want 2", admitted.Load())
	}
	waiting := 0
	for _, l := range leases {
		j, err := s.Job(ctx, l.JobID)
		if err != nil {
			t.Fatal(err)
		}
		if j.AdmittedAt == nil {
			waiting++
			if j.Step != "wait_node" {
				t.Errorf("refused job's step %q, want wait_node", j.Step)
			}
		}
	}
	if waiting != 1 {
		t.Errorf("%d jobs waiting, want 1", waiting)
	}
}

// Pruning takes only ended runs of dates before the cut: a run still
// waiting or running stays, however old.
func TestPruneRunsKeepsRecentAndUnfinishedRuns(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	runs := []store.PlannedRun{
		{RunKey: store.RunKey{ServiceID: b.service(0), Date: "2025-01-01"}, ServerID: b.fx.ServerID, DueAt: t0, State: store.RunSkipped, Reason: "not_active"},
		{RunKey: store.RunKey{ServiceID: b.service(1), Date: "2025-01-01"}, ServerID: b.fx.ServerID, DueAt: t0},
		{RunKey: store.RunKey{ServiceID: b.service(2), Date: "2025-03-29"}, ServerID: b.fx.ServerID, DueAt: t0, State: store.RunSkipped, Reason: "not_active"},
	}
	if n, err := s.PlanRuns(ctx, runs, nil, t0); err != nil || n != 3 {
		t.Fatalf("planned %d, %v", n, err)
	}
	n, err := s.PruneRuns(ctx, "2025-03-01", 10)
	if err != nil || n != 1 {
		t.Fatalf("pruned %d, %v; want only the old skipped run", n, err)
	}
	w, err := s.WaitingRuns(ctx, []int64{b.fx.ServerID}, t0, 5)
	if err != nil || len(w) != 1 || w[0].ServiceID != b.service(1) {
		t.Errorf("waiting after pruning: %+v, %v", w, err)
	}
}

// A run still waiting when the service's next date comes due is skipped
// as superseded: one backup, not two in a row.
func TestPlanRunsSupersedesAnOlderWaitingRun(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	plan := func(date string) {
		t.Helper()
		if _, err := s.PlanRuns(ctx, []store.PlannedRun{{RunKey: store.RunKey{ServiceID: b.service(0), Date: date},
			ServerID: b.fx.ServerID, DueAt: t0}, {RunKey: store.RunKey{ServiceID: b.service(1), Date: date},
			ServerID: b.fx.ServerID, DueAt: t0}}, nil, t0); err != nil {
			t.Fatal(err)
		}
	}
	plan("2025-03-29")
	// Service 1's run of the 29th went ahead; service 0's still waits.
	if ok, err := s.ChangeRun(ctx, store.RunChange{Key: store.RunKey{ServiceID: b.service(1), Date: "2025-03-29"},
		From: []store.RunState{store.RunWaiting}, To: store.RunDone, Now: t0}); err != nil || !ok {
		t.Fatalf("change: %v %v", ok, err)
	}
	plan("2025-03-30")
	w, err := s.WaitingRuns(ctx, []int64{b.fx.ServerID}, t0, 10)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, r := range w {
		got[fmt.Sprintf("%d %s", r.ServiceID, r.Date)] = true
	}
	want := map[string]bool{fmt.Sprintf("%d 2025-03-30", b.service(0)): true, fmt.Sprintf("%d 2025-03-30", b.service(1)): true}
	if len(got) != 2 || !got[fmt.Sprintf("%d 2025-03-30", b.service(0))] || !got[fmt.Sprintf("%d 2025-03-30", b.service(1))] {
		t.Errorf("waiting %v, want %v", got, want)
	}
	states := map[string]string{}
	rows, err := b.db.Store.DB().QueryContext(ctx, `SELECT service_id, DATE_FORMAT(local_date, '%Y-%m-%d'), state, reason FROM mod_pvekeep_schedule_runs`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var date, state, reason string
		if err := rows.Scan(&id, &date, &state, &reason); err != nil {
			t.Fatal(err)
		}
		states[fmt.Sprintf("%d %s", id, date)] = state + " " + reason
	}
	if got := states[fmt.Sprintf("%d 2025-03-29", b.service(0))]; got != "skipped superseded" {
		t.Errorf("service 0's older waiting run is %q, want skipped superseded", got)
	}
	if got := states[fmt.Sprintf("%d 2025-03-29", b.service(1))]; got != "done " {
		t.Errorf("service 1's finished run is %q, want left done", got)
	}
}

// backupsOf makes n available backups of service i, a minute apart
// (oldest first), and protects those whose index is in protect.
func (b *testBundle) backupsOf(t *testing.T, s *store.Store, i, n int, protect ...int) []pvekeep.Backup {
	t.Helper()
	var out []pvekeep.Backup
	for k := range n {
		bk := b.availableBackup(t, s, i, t0.Add(time.Duration(k-n)*time.Hour))
		for _, p := range protect {
			if p == k {
				if err := s.SetBackupProtected(context.Background(), b.service(i), bk.ID, true); err != nil {
					t.Fatal(err)
				}
				bk.Protected = true
			}
		}
		out = append(out, bk)
	}
	return out
}

// waitingRun plans a waiting run of service i for date.
func (b *testBundle) waitingRun(t *testing.T, s *store.Store, i int, date string, dueAt time.Time) store.RunKey {
	t.Helper()
	k := store.RunKey{ServiceID: b.service(i), Date: date}
	if n, err := s.PlanRuns(context.Background(), []store.PlannedRun{{RunKey: k, ServerID: b.fx.ServerID, DueAt: dueAt, MaxAttempts: 3}}, nil, t0); err != nil || n != 1 {
		t.Fatalf("plan run %v: %d, %v", k, n, err)
	}
	return k
}

func (b *testBundle) scheduledBackup(k store.RunKey, i, quota int, now time.Time) store.NewScheduledBackup {
	c := b.newCreate(i, now, 0)
	c.Job.ActorType, c.Job.ActorID, c.Backup.Origin = pvekeep.ActorSystem, 0, pvekeep.OriginScheduled
	return store.NewScheduledBackup{Run: k, Create: c, Quota: quota, RetryAfter: time.Minute}
}

// A due run goes ahead when enough unprotected backups exist to make room
// for it (used + 1 − quota of them), whether the quota is full or was
// lowered below what the service holds; otherwise it is skipped,
// all_protected. A removal in flight is waited for (reason rotating).
func TestEnqueueScheduledBackupGoesAheadWhenRotationCanMakeRoom(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		quota     int
		backups   int
		protect   []int
		removing  bool // a removal of the oldest unprotected one is in flight
		outcome   store.RunOutcome
		reason    string
		wantState store.RunState
	}{
		{name: "room left", quota: 3, backups: 2, outcome: store.RunDispatched, wantState: store.RunRunning},
		{name: "full quota, one unprotected", quota: 2, backups: 2, protect: []int{0}, outcome: store.RunDispatched, wantState: store.RunRunning},
		{name: "full quota, all protected", quota: 2, backups: 2, protect: []int{0, 1}, outcome: store.RunSkippedNow, reason: store.ReasonAllProtected, wantState: store.RunSkipped},
		{name: "quota lowered from 3 to 2", quota: 2, backups: 3, outcome: store.RunDispatched, wantState: store.RunRunning},
		{name: "quota lowered from 4 to 1, all unprotected", quota: 1, backups: 4, outcome: store.RunDispatched, wantState: store.RunRunning},
		{name: "one over, only one unprotected: two must go", quota: 2, backups: 3, protect: []int{0, 1}, outcome: store.RunSkippedNow, reason: store.ReasonAllProtected, wantState: store.RunSkipped},
		{name: "a removal in flight is waited for", quota: 2, backups: 3, removing: true, outcome: store.RunBusy, reason: store.ReasonRotating, wantState: store.RunWaiting},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, b := setup(t)
			ctx := context.Background()
			old := b.backupsOf(t, s, 0, tc.backups, tc.protect...)
			if tc.removing {
				rm := pvekeep.Job{ServiceID: b.service(0), VMID: 100, ServerID: b.fx.ServerID, Node: "pve1", Kind: pvekeep.KindBackupRemove,
					Step: "dispatch", ActorType: pvekeep.ActorSystem, CreatedAt: t0}
				if _, _, err := s.EnqueueBackupRemove(ctx, store.NewBackupRemove{Job: rm, BackupID: old[0].ID}); err != nil {
					t.Fatal(err)
				}
			}
			k := b.waitingRun(t, s, 0, "2025-03-30", t0)
			outcome, reason, job, _, err := s.EnqueueScheduledBackup(ctx, b.scheduledBackup(k, 0, tc.quota, t0))
			if err != nil {
				t.Fatal(err)
			}
			if outcome != tc.outcome || reason != tc.reason {
				t.Errorf("outcome %d %q, want %d %q", outcome, reason, tc.outcome, tc.reason)
			}
			if (job.ID != 0) != (tc.outcome == store.RunDispatched) {
				t.Errorf("job %+v for outcome %d", job, outcome)
			}
			_, _, run, ok, err := s.ScheduleView(ctx, b.service(0))
			if err != nil || !ok || run.State != tc.wantState || run.Reason != tc.reason {
				t.Errorf("run %+v (%v, %v), want %s %q", run, ok, err, tc.wantState, tc.reason)
			}
		})
	}
}

// After a scheduled backup succeeded above the quota, the oldest
// unprotected backups are removed one after another (one job at a time:
// the run stays rotating and waits for the removal in flight, never
// queueing a second) until the service is back within its quota; then
// the run is done.
func TestRotateAfterRunRemovesTheOldestUntilWithinTheQuota(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	// Quota lowered to 2 while the service held 3; the run made a 4th.
	old := b.backupsOf(t, s, 0, 3, 1)
	fresh := b.availableBackup(t, s, 0, t0)
	k := b.waitingRun(t, s, 0, "2025-03-30", t0)
	if ok, err := s.ChangeRun(ctx, store.RunChange{Key: k, From: []store.RunState{store.RunWaiting}, To: store.RunRunning, Now: t0}); err != nil || !ok {
		t.Fatalf("run to running: %v %v", ok, err)
	}
	rot := func(at time.Time) (pvekeep.BackupID, pvekeep.Job, bool) {
		t.Helper()
		removed, job, locked, err := s.RotateAfterRun(ctx, store.Rotation{Run: k, Quota: 2, Keep: fresh.ID,
			Job: pvekeep.Job{ServiceID: b.service(0), VMID: 100, ServerID: b.fx.ServerID, Kind: pvekeep.KindBackupRemove,
				Step: "dispatch", ActorType: pvekeep.ActorSystem, CreatedAt: at}})
		if err != nil {
			t.Fatal(err)
		}
		return removed, job, locked
	}
	state := func() store.Run {
		t.Helper()
		_, _, run, _, err := s.ScheduleView(ctx, b.service(0))
		if err != nil {
			t.Fatal(err)
		}
		return run
	}
	finish := func(job pvekeep.Job, at time.Time, ok bool) {
		t.Helper()
		l := b.claim(t, s, "runner", at, job.ID)
		f := store.JobFinish{State: pvekeep.JobSucceeded, Now: at, Backup: &store.BackupChange{ID: job.BackupID, Status: pvekeep.BackupRemoved, RemovedAt: &at}}
		if !ok {
			f = store.JobFinish{State: pvekeep.JobFailed, Error: "storage offline", Now: at, Backup: &store.BackupChange{ID: job.BackupID, Status: pvekeep.BackupAvailable}}
		}
		if err := s.FinishJob(ctx, l, f); err != nil {
			t.Fatal(err)
		}
	}

	removed, job, _ := rot(t0)
	if removed != old[0].ID || job.BackupID != old[0].ID {
		t.Fatalf("first removal %d (job %+v), want the oldest unprotected %d", removed, job, old[0].ID)
	}
	if r := state(); r.State != store.RunRotating || r.Reason != store.ReasonRotating {
		t.Fatalf("after the first removal the run is %s %q, want rotating: one more must go", r.State, r.Reason)
	}
	// The removal is in flight: waited for, not doubled.
	if removed, job, locked := rot(t0.Add(time.Minute)); removed != 0 || job.ID != 0 || !locked {
		t.Fatalf("with a removal in flight: removed %d, job %d, locked %v; want nothing queued", removed, job.ID, locked)
	}
	if r := state(); r.State != store.RunRotating || r.Reason != store.ReasonRotating {
		t.Errorf("waiting for the removal the run is %s %q, want rotating rotating", r.State, r.Reason)
	}
	finish(job, t0.Add(2*time.Minute), true)
	// The next oldest unprotected one (old[1] is kept) goes, and with it
	// the service is back within its quota.
	removed, job2, _ := rot(t0.Add(3 * time.Minute))
	if removed != old[2].ID {
		t.Fatalf("second removal %d, want %d (never the kept one, never the new one)", removed, old[2].ID)
	}
	if r := state(); r.State != store.RunDone || r.Reason != "" {
		t.Errorf("back within the quota the run is %s %q, want done", r.State, r.Reason)
	}
	finish(job2, t0.Add(4*time.Minute), true)
	left, err := s.Backups(ctx, b.service(0), pvekeep.BackupAvailable, pvekeep.BackupCreating, pvekeep.BackupRemoving)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 2 {
		t.Errorf("%d backups left, want 2 (the kept one and the new one): %+v", len(left), left)
	}
}

// A removal that failed is not tried again and again by the run: the run
// ends done, reason rotate_failed, the service still above its quota.
func TestRotateAfterRunStopsWhenItsRemovalFailed(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	old := b.backupsOf(t, s, 0, 3)
	fresh := b.availableBackup(t, s, 0, t0)
	k := b.waitingRun(t, s, 0, "2025-03-30", t0)
	if ok, err := s.ChangeRun(ctx, store.RunChange{Key: k, From: []store.RunState{store.RunWaiting}, To: store.RunRunning, Now: t0}); err != nil || !ok {
		t.Fatalf("run to running: %v %v", ok, err)
	}
	rotation := store.Rotation{Run: k, Quota: 2, Keep: fresh.ID, Job: pvekeep.Job{ServiceID: b.service(0), VMID: 100, ServerID: b.fx.ServerID,
		Kind: pvekeep.KindBackupRemove, Step: "dispatch", ActorType: pvekeep.ActorSystem, CreatedAt: t0}}
	removed, job, _, err := s.RotateAfterRun(ctx, rotation)
	if err != nil || removed != old[0].ID {
		t.Fatalf("first removal %d, %v; want %d", removed, err, old[0].ID)
	}
	l := b.claim(t, s, "runner", t0, job.ID)
	if err := s.FinishJob(ctx, l, store.JobFinish{State: pvekeep.JobFailed, Error: "storage offline", Now: t0,
		Backup: &store.BackupChange{ID: old[0].ID, Status: pvekeep.BackupAvailable}}); err != nil {
		t.Fatal(err)
	}
	rotation.Job.CreatedAt = t0.Add(time.Minute)
	removed, job, _, err = s.RotateAfterRun(ctx, rotation)
	if err != nil || removed != 0 || job.ID != 0 {
		t.Fatalf("after a failed removal: removed %d, job %d, %v; want nothing more", removed, job.ID, err)
	}
	_, _, run, _, err := s.ScheduleView(ctx, b.service(0))
	if err != nil || run.State != store.RunDone || run.Reason != "rotate_failed" {
		t.Errorf("run %+v, %v; want done rotate_failed", run, err)
	}
}

// The dispatch order is fair: first attempts before retries, then the
// oldest due first, then by service; each node's queue is cut at
// perNode in that order.
func TestWaitingRunsComeInFairOrder(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	// A fourth service, of the highest id.
	id3, err := b.seed.Service(ctx, seed.Service{ClientID: b.fx.ClientID, ProductID: b.fx.ProductID, ServerID: b.fx.ServerID, VMID: "103"})
	if err != nil {
		t.Fatal(err)
	}
	s3 := pvekeep.ServiceID(id3)
	// Service 0's run is the oldest due but a retry: last. Service 3's is
	// due before those of services 1 and 2, which are due at the same
	// time: the lower service id first.
	runs := []store.PlannedRun{
		{RunKey: store.RunKey{ServiceID: b.service(0), Date: "2025-03-30"}, ServerID: b.fx.ServerID, DueAt: t0.Add(-3 * time.Hour)},
		{RunKey: store.RunKey{ServiceID: b.service(2), Date: "2025-03-30"}, ServerID: b.fx.ServerID, DueAt: t0.Add(-time.Hour)},
		{RunKey: store.RunKey{ServiceID: b.service(1), Date: "2025-03-30"}, ServerID: b.fx.ServerID, DueAt: t0.Add(-time.Hour)},
		{RunKey: store.RunKey{ServiceID: s3, Date: "2025-03-30"}, ServerID: b.fx.ServerID, DueAt: t0.Add(-2 * time.Hour)},
	}
	if _, err := s.PlanRuns(ctx, runs, nil, t0.Add(-4*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.db.Store.DB().ExecContext(ctx, `UPDATE mod_pvekeep_schedule_runs SET attempts = 1 WHERE service_id = ?`, b.service(0)); err != nil {
		t.Fatal(err)
	}
	key := func(w store.WaitingRun) string { return fmt.Sprintf("%d %s", w.ServiceID, w.Date) }
	want := []string{
		fmt.Sprintf("%d 2025-03-30", s3),
		fmt.Sprintf("%d 2025-03-30", b.service(1)),
		fmt.Sprintf("%d 2025-03-30", b.service(2)),
		fmt.Sprintf("%d 2025-03-30", b.service(0)),
	}
	for perNode := 1; perNode <= len(want); perNode++ {
		w, err := s.WaitingRuns(ctx, []int64{b.fx.ServerID}, t0, perNode)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range w {
			got = append(got, key(r))
		}
		if fmt.Sprint(got) != fmt.Sprint(want[:perNode]) {
			t.Errorf("perNode %d: order %v, want %v", perNode, got, want[:perNode])
		}
	}
}
