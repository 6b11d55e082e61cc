package store_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/seed"
	"github.com/pvekeep/pvekeep/internal/store"
)

func claimReq(b *testBundle, owner string, now time.Time, limit int) store.ClaimRequest {
	return store.ClaimRequest{Owner: owner, Limit: limit, Now: now, LeaseUntil: now.Add(time.Minute), ServerIDs: []int64{b.fx.ServerID}}
}

// manyServices adds n services on the fixture's server and queues one
// backup job for each; it returns the job ids.
func manyJobs(t *testing.T, s *store.Store, b *testBundle, n int) []pvekeep.JobID {
	t.Helper()
	ctx := context.Background()
	var ids []pvekeep.JobID
	for i := range n {
		sid, err := b.seed.Service(ctx, seed.Service{ClientID: b.fx.ClientID, ProductID: b.fx.ProductID, ServerID: b.fx.ServerID,
			VMID: fmt.Sprint(200 + i)})
		if err != nil {
			t.Fatal(err)
		}
		r := b.newCreate(0, t0, 5)
		r.Job.ServiceID = pvekeep.ServiceID(sid)
		j, _, _, err := s.EnqueueBackupCreate(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	return ids
}

func TestClaimJobsLeasesOldestFirstAndCountsAttempt(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	ids := manyJobs(t, s, b, 3)
	got, err := s.ClaimJobs(ctx, claimReq(b, "w1", t0, 2))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != ids[0] || got[1].ID != ids[1] {
		t.Fatalf("claimed %v, want the two oldest %v", jobIDs(got), ids[:2])
	}
	for _, j := range got {
		if j.LeaseOwner != "w1" || j.Attempt != 1 || j.LeaseUntil == nil || !j.LeaseUntil.Equal(t0.Add(time.Minute).Truncate(time.Microsecond)) {
			t.Errorf("job %d lease %q attempt %d until %v", j.ID, j.LeaseOwner, j.Attempt, j.LeaseUntil)
		}
		if j.State != pvekeep.JobQueued {
			t.Errorf("job %d state %s: claiming must not change the state", j.ID, j.State)
		}
	}
	// Leased jobs are not claimable again until the lease ends.
	again, err := s.ClaimJobs(ctx, claimReq(b, "w2", t0.Add(30*time.Second), 10))
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 1 || again[0].ID != ids[2] {
		t.Errorf("second claim got %v, want only %d", jobIDs(again), ids[2])
	}
}

func jobIDs(js []pvekeep.Job) []pvekeep.JobID {
	out := []pvekeep.JobID{}
	for _, j := range js {
		out = append(out, j.ID)
	}
	return out
}

func TestClaimJobsFilters(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	manyJobs(t, s, b, 2)
	tests := []struct {
		name string
		req  store.ClaimRequest
	}{
		{name: "no server ids claims nothing", req: store.ClaimRequest{Owner: "w", Limit: 10, Now: t0, LeaseUntil: t0.Add(time.Minute)}},
		{name: "another server's runner claims nothing", req: store.ClaimRequest{Owner: "w", Limit: 10, Now: t0, LeaseUntil: t0.Add(time.Minute), ServerIDs: []int64{b.fx.ServerID + 100}}},
		{name: "limit zero claims nothing", req: store.ClaimRequest{Owner: "w", Limit: 0, Now: t0, LeaseUntil: t0.Add(time.Minute), ServerIDs: []int64{b.fx.ServerID}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ClaimJobs(ctx, tc.req)
			if err != nil || len(got) != 0 {
				t.Errorf("got %v %v, want nothing", jobIDs(got), err)
			}
		})
	}
	// Finished jobs are never claimed.
	all, err := s.ClaimJobs(ctx, claimReq(b, "w", t0, 10))
	if err != nil || len(all) != 2 {
		t.Fatalf("claim: %v %v", jobIDs(all), err)
	}
	for _, j := range all {
		if err := s.FinishJob(ctx, store.LeaseOf(j), store.JobFinish{State: pvekeep.JobSucceeded, Now: t0}); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.ClaimJobs(ctx, claimReq(b, "w", t0.Add(time.Hour), 10)); err != nil || len(got) != 0 {
		t.Errorf("finished jobs claimed: %v %v", jobIDs(got), err)
	}
}

func TestClaimJobsTwoOwnersConcurrentlyNeverShareAJob(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	const jobs = 40
	manyJobs(t, s, b, jobs)
	var (
		mu   sync.Mutex
		seen = map[pvekeep.JobID]string{}
		errs []error
		wg   sync.WaitGroup
	)
	start := make(chan struct{})
	for _, owner := range []string{"alpha", "beta"} {
		wg.Go(func() {
			<-start
			for range 30 {
				got, err := s.ClaimJobs(ctx, claimReq(b, owner, t0, 3))
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				}
				for _, j := range got {
					if prev, dup := seen[j.ID]; dup {
						errs = append(errs, fmt.Errorf("job %d claimed by %s and %s", j.ID, prev, owner))
					}
					seen[j.ID] = owner
				}
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	if len(seen) != jobs {
		t.Errorf("%d jobs claimed, want all %d", len(seen), jobs)
	}
}

func TestClaimJobsRetakesExpiredAndReleasedLeases(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	ids := manyJobs(t, s, b, 2)
	first, err := s.ClaimJobs(ctx, claimReq(b, "crashed", t0, 10))
	if err != nil || len(first) != 2 {
		t.Fatalf("claim: %v %v", jobIDs(first), err)
	}
	// Job 1's owner releases it; job 0's owner dies.
	if err := s.ReleaseLease(ctx, store.LeaseOf(first[1])); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(10 * time.Second) // before job 0's lease ends
	got, err := s.ClaimJobs(ctx, claimReq(b, "next", now, 10))
	if err != nil || len(got) != 1 || got[0].ID != ids[1] || got[0].Attempt != 2 {
		t.Fatalf("after release: %v %v, want job %d at attempt 2", jobIDs(got), err, ids[1])
	}
	now = t0.Add(2 * time.Minute) // job 0's lease has ended
	got, err = s.ClaimJobs(ctx, claimReq(b, "rescuer", now, 1))
	if err != nil || len(got) != 1 || got[0].ID != ids[0] || got[0].LeaseOwner != "rescuer" || got[0].Attempt != 2 {
		t.Fatalf("after expiry: %+v %v, want job %d for rescuer at attempt 2", got, err, ids[0])
	}
	// The crashed owner wakes up: every write is refused.
	stale := store.LeaseOf(first[0])
	if err := s.UpdateJob(ctx, stale, store.JobUpdate{State: pvekeep.JobRunning, Step: "wait", Now: now}); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("stale update: %v, want ErrLeaseLost", err)
	}
}

func TestLeaseGuardedWritesByAStaleHolderChangeNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name  string
		write func(s *store.Store, l pvekeep.Lease, bk pvekeep.BackupID) error
	}{
		{name: "UpdateJob", write: func(s *store.Store, l pvekeep.Lease, _ pvekeep.BackupID) error {
			return s.UpdateJob(ctx, l, store.JobUpdate{State: pvekeep.JobRunning, Step: "stale", ProgressPct: 99, UPID: "UPID:stale", Now: t0.Add(time.Hour)})
		}},
		{name: "FinishJob", write: func(s *store.Store, l pvekeep.Lease, bk pvekeep.BackupID) error {
			return s.FinishJob(ctx, l, store.JobFinish{State: pvekeep.JobFailed, Error: "stale", Now: t0.Add(time.Hour),
				Backup: &store.BackupChange{ID: bk, Status: pvekeep.BackupFailed}})
		}},
		{name: "ExtendLease", write: func(s *store.Store, l pvekeep.Lease, _ pvekeep.BackupID) error {
			return s.ExtendLease(ctx, l, t0.Add(time.Hour))
		}},
		{name: "ReleaseLease", write: func(s *store.Store, l pvekeep.Lease, _ pvekeep.BackupID) error {
			return s.ReleaseLease(ctx, l)
		}},
	}
	staleLeases := []struct {
		name  string
		lease func(current pvekeep.Lease) pvekeep.Lease
	}{
		{name: "other owner", lease: func(c pvekeep.Lease) pvekeep.Lease { c.Owner = "intruder"; return c }},
		{name: "older attempt", lease: func(c pvekeep.Lease) pvekeep.Lease { c.Attempt--; return c }},
		{name: "other job", lease: func(c pvekeep.Lease) pvekeep.Lease { c.JobID += 1000; return c }},
	}
	for _, tc := range tests {
		for _, sl := range staleLeases {
			t.Run(tc.name+" with "+sl.name+" is ErrLeaseLost", func(t *testing.T) {
				t.Parallel()
				s, b := setup(t)
				j, bk, _, err := s.EnqueueBackupCreate(ctx, b.newCreate(0, t0, 5))
				if err != nil {
					t.Fatal(err)
				}
				b.claim(t, s, "old", t0, j.ID)
				cur := b.claim(t, s, "new", t0.Add(2*time.Minute), j.ID) // attempt 2
				beforeJob, _ := s.Job(ctx, j.ID)
				beforeBk, _ := s.Backup(ctx, b.service(0), bk.ID)

				err = tc.write(s, sl.lease(cur), bk.ID)
				if !errors.Is(err, store.ErrLeaseLost) {
					t.Fatalf("got %v, want ErrLeaseLost", err)
				}
				afterJob, _ := s.Job(ctx, j.ID)
				afterBk, _ := s.Backup(ctx, b.service(0), bk.ID)
				if fmt.Sprintf("%+v", afterJob) != fmt.Sprintf("%+v", beforeJob) {
					t.Errorf("job changed:\n%+v\n%+v", beforeJob, afterJob)
				}
				if fmt.Sprintf("%+v", afterBk) != fmt.Sprintf("%+v", beforeBk) {
					t.Errorf("backup changed:\n%+v\n%+v", beforeBk, afterBk)
				}
				// The current holder still can write.
				if err := tc.write(s, cur, bk.ID); err != nil {
					t.Errorf("current holder: %v", err)
				}
			})
		}
	}
}

func TestUpdateJobWritesProgressAndKeepsZeroFields(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	j, _, _, err := s.EnqueueBackupCreate(ctx, b.newCreate(0, t0, 5))
	if err != nil {
		t.Fatal(err)
	}
	l := b.claim(t, s, "w", t0, j.ID)
	started := t0.Add(time.Second)
	steps := []struct {
		u     store.JobUpdate
		check func(j pvekeep.Job) bool
	}{
		{u: store.JobUpdate{State: pvekeep.JobRunning, Step: "wait", UPID: "UPID:pve2:1", Node: "pve2", StartedAt: &started, Now: started},
			check: func(j pvekeep.Job) bool {
				return j.State == pvekeep.JobRunning && j.Step == "wait" && j.UPID == "UPID:pve2:1" && j.Node == "pve2" &&
					j.StartedAt != nil && j.StartedAt.Equal(started.Truncate(time.Microsecond)) && j.ProgressPct == 0
			}},
		{u: store.JobUpdate{State: pvekeep.JobRunning, Step: "wait", ProgressPct: 42, Now: t0.Add(2 * time.Second)},
			check: func(j pvekeep.Job) bool {
				return j.ProgressPct == 42 && j.UPID == "UPID:pve2:1" && j.Node == "pve2" && j.StartedAt != nil &&
					j.UpdatedAt.Equal(t0.Add(2*time.Second).Truncate(time.Microsecond))
			}},
		// Writing exactly the same values again still counts as holding the lease.
		{u: store.JobUpdate{State: pvekeep.JobRunning, Step: "wait", ProgressPct: 42, Now: t0.Add(2 * time.Second)},
			check: func(j pvekeep.Job) bool { return j.ProgressPct == 42 }},
	}
	for i, st := range steps {
		if err := s.UpdateJob(ctx, l, st.u); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		got, err := s.Job(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !st.check(got) {
			t.Errorf("step %d: job %+v", i, got)
		}
	}
	if err := s.UpdateJob(ctx, l, store.JobUpdate{State: pvekeep.JobSucceeded, Now: t0}); err == nil || errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("terminal state through UpdateJob: %v, want a usage error", err)
	}
	if err := s.ExtendLease(ctx, l, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Job(ctx, j.ID)
	if got.LeaseUntil == nil || !got.LeaseUntil.Equal(t0.Add(time.Hour).Truncate(time.Microsecond)) {
		t.Errorf("lease until %v after extend", got.LeaseUntil)
	}
}

func TestFinishJobSuccessFreesServiceAndRecordsBackup(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	j, bk, _, err := s.EnqueueBackupCreate(ctx, b.newCreate(0, t0, 5))
	if err != nil {
		t.Fatal(err)
	}
	l := b.claim(t, s, "w", t0, j.ID)
	ctime := t0.Add(30 * time.Second)
	end := t0.Add(time.Minute)
	if err := s.FinishJob(ctx, l, store.JobFinish{State: pvekeep.JobSucceeded, Now: end,
		Backup: &store.BackupChange{ID: bk.ID, Status: pvekeep.BackupAvailable, Volid: "backup:backup/vzdump-qemu-100.vma.zst", SizeBytes: 12345, CreatedAt: &ctime}}); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Job(ctx, j.ID)
	if got.State != pvekeep.JobSucceeded || got.ProgressPct != 100 || got.FinishedAt == nil || !got.FinishedAt.Equal(end.Truncate(time.Microsecond)) || got.LeaseUntil != nil {
		t.Errorf("job %+v", got)
	}
	if _, ok, _ := s.ActiveJob(ctx, b.service(0)); ok {
		t.Error("service still has an active job")
	}
	gb, _ := s.Backup(ctx, b.service(0), bk.ID)
	if gb.Status != pvekeep.BackupAvailable || gb.Volid != "backup:backup/vzdump-qemu-100.vma.zst" || gb.SizeBytes != 12345 || !gb.CreatedAt.Equal(ctime.Truncate(time.Microsecond)) {
		t.Errorf("backup %+v", gb)
	}
	// Finishing twice is a lost lease (the job is no longer active).
	if err := s.FinishJob(ctx, l, store.JobFinish{State: pvekeep.JobFailed, Now: end}); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("second finish: %v, want ErrLeaseLost", err)
	}
	// The service takes a new job now.
	if _, _, _, err := s.EnqueueBackupCreate(ctx, b.newCreate(0, end, 5)); err != nil {
		t.Errorf("next job: %v", err)
	}
}

func TestFinishJobRecordsItsLastStepOnlyWhenGiven(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, step, want string
	}{
		{"no step keeps the job's", "", "dispatch"},
		{"a step replaces it", "intact", "intact"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, b := setup(t)
			ctx := context.Background()
			j, _, _, err := s.EnqueueBackupCreate(ctx, b.newCreate(0, t0, 5))
			if err != nil {
				t.Fatal(err)
			}
			l := b.claim(t, s, "w", t0, j.ID)
			if err := s.UpdateJob(ctx, l, store.JobUpdate{State: pvekeep.JobRunning, Step: "dispatch", Now: t0}); err != nil {
				t.Fatal(err)
			}
			if err := s.FinishJob(ctx, l, store.JobFinish{State: pvekeep.JobFailed, Error: "no", Step: tc.step, Now: t0}); err != nil {
				t.Fatal(err)
			}
			got, _ := s.Job(ctx, j.ID)
			if got.Step != tc.want {
				t.Errorf("step after finish = %q, want %q", got.Step, tc.want)
			}
		})
	}
}

func TestFinishJobWithAnotherServicesBackupChangesNothing(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	other := b.availableBackup(t, s, 1, t0)
	j, _, _, err := s.EnqueueBackupCreate(ctx, b.newCreate(0, t0, 5))
	if err != nil {
		t.Fatal(err)
	}
	l := b.claim(t, s, "w", t0, j.ID)
	err = s.FinishJob(ctx, l, store.JobFinish{State: pvekeep.JobSucceeded, Now: t0,
		Backup: &store.BackupChange{ID: other.ID, Status: pvekeep.BackupRemoved}})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
	if got, _ := s.Job(ctx, j.ID); got.State != pvekeep.JobQueued {
		t.Errorf("job state %s, want unchanged queued", got.State)
	}
	if got, _ := s.Backup(ctx, b.service(1), other.ID); got.Status != pvekeep.BackupAvailable {
		t.Errorf("other service's backup %s, want available", got.Status)
	}
}

func TestCancelJobEndsActiveJobWhoeverHoldsIt(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	j, bk, _, err := s.EnqueueBackupCreate(ctx, b.newCreate(0, t0, 5))
	if err != nil {
		t.Fatal(err)
	}
	l := b.claim(t, s, "w", t0, j.ID)
	if err := s.CancelJob(ctx, j.ID, store.JobFinish{State: pvekeep.JobCancelled, Error: "cancelled by admin", Now: t0,
		Backup: &store.BackupChange{ID: bk.ID, Status: pvekeep.BackupFailed}}); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateJob(ctx, l, store.JobUpdate{State: pvekeep.JobRunning, Now: t0}); !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("worker after cancel: %v, want ErrLeaseLost", err)
	}
	if err := s.CancelJob(ctx, j.ID, store.JobFinish{State: pvekeep.JobCancelled, Now: t0}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second cancel: %v, want ErrNotFound", err)
	}
	if _, ok, _ := s.ActiveJob(ctx, b.service(0)); ok {
		t.Error("service still locked after cancel")
	}
}

func TestEnqueueWithLeaseIsHeldByTheCaller(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	r := b.newCreate(0, t0, 5)
	until := t0.Add(time.Minute)
	r.Job.LeaseOwner, r.Job.LeaseUntil = "api-req-1", &until
	j, _, _, err := s.EnqueueBackupCreate(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if j.Attempt != 1 || j.LeaseOwner != "api-req-1" {
		t.Fatalf("job lease %q attempt %d", j.LeaseOwner, j.Attempt)
	}
	if got, _ := s.ClaimJobs(ctx, claimReq(b, "tick", t0.Add(time.Second), 10)); len(got) != 0 {
		t.Errorf("tick took a job its creator holds: %v", jobIDs(got))
	}
	if err := s.UpdateJob(ctx, store.LeaseOf(j), store.JobUpdate{State: pvekeep.JobRunning, Step: "wait", Now: t0}); err != nil {
		t.Errorf("creator update: %v", err)
	}
}

func TestUnreachableDatabaseIsErrUnavailable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tests := []struct {
		name string
		dsn  string
	}{
		{name: "closed tcp port", dsn: "root@tcp(" + addr + ")/whmcs"},
		{name: "missing unix socket", dsn: "root@unix(/nonexistent/mysqld.sock)/whmcs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := store.Open(ctx, tc.dsn, nil)
			if !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("Open: %v, want ErrUnavailable", err)
			}
			if err := store.Migrate(ctx, tc.dsn, nil); !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("Migrate: %v, want ErrUnavailable", err)
			}
		})
	}
}

func TestKilledConnectionIsErrUnavailable(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	admin, err := store.Open(ctx, b.db.DSN, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	// Hold one connection across the kill so the pool cannot hide it.
	conn, err := s.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var connID int64
	if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&connID); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.DB().ExecContext(ctx, fmt.Sprintf("KILL %d", connID)); err != nil {
		t.Fatal(err)
	}
	_, err = conn.ExecContext(ctx, "SELECT 1")
	if err == nil {
		t.Fatal("query on a killed connection succeeded")
	}
	if !errors.Is(store.Classify(err), store.ErrUnavailable) {
		t.Errorf("query on a killed connection: %v, want it classified ErrUnavailable", err)
	}
	// The pool recovers by itself: the store keeps working.
	if _, err := s.Service(ctx, b.service(0)); err != nil {
		t.Errorf("after the kill: %v", err)
	}
}
