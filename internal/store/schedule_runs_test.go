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
