package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/store"
)

func TestEnqueueBackupCreateRecordsQueuedJobAndCreatingBackup(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	j, bk, existed, err := s.EnqueueBackupCreate(ctx, b.newCreate(0, t0, 5))
	if err != nil {
		t.Fatal(err)
	}
	if existed {
		t.Error("existed = true for a fresh request")
	}
	if j.ID == 0 || j.State != pvekeep.JobQueued || j.Kind != pvekeep.KindBackupCreate || j.BackupID != bk.ID {
		t.Errorf("job %+v", j)
	}
	if j.ServiceID != b.service(0) || j.VMID != 100 || j.ServerID != b.fx.ServerID || j.Node != "pve1" || j.Step != "submit" {
		t.Errorf("job facts %+v", j)
	}
	if string(j.Params) != `{"mode":"snapshot"}` || j.IdempotencyKey != "" || j.Attempt != 0 || j.LeaseUntil != nil {
		t.Errorf("job params/key/lease %q %q %d %v", j.Params, j.IdempotencyKey, j.Attempt, j.LeaseUntil)
	}
	want := t0.Truncate(time.Microsecond)
	if !j.CreatedAt.Equal(want) || !j.UpdatedAt.Equal(want) || j.CreatedAt.Location() != time.UTC {
		t.Errorf("job times %v %v, want %v UTC", j.CreatedAt, j.UpdatedAt, want)
	}
	if bk.ID == 0 || bk.JobID != j.ID || bk.Status != pvekeep.BackupCreating || bk.Storage != "backup" || bk.Note != "before upgrade" ||
		bk.Origin != pvekeep.OriginManual || bk.VMID != 100 || bk.ServiceID != b.service(0) || !bk.CreatedAt.Equal(want) {
		t.Errorf("backup %+v", bk)
	}
	active, ok, err := s.ActiveJob(ctx, b.service(0))
	if err != nil || !ok || active.ID != j.ID {
		t.Errorf("active job: %v %v %v", active.ID, ok, err)
	}
	if _, ok, _ := s.ActiveJob(ctx, b.service(1)); ok {
		t.Error("another service has an active job")
	}
}

func TestEnqueueBackupCreateRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		prepare func(t *testing.T, s *store.Store, b *testBundle) // on service 0
		max     int
		check   func(t *testing.T, err error)
	}{
		{
			name: "active job refuses with ActiveJobError naming it",
			prepare: func(t *testing.T, s *store.Store, b *testBundle) {
				if _, _, _, err := s.EnqueueBackupCreate(context.Background(), b.newCreate(0, t0, 5)); err != nil {
					t.Fatal(err)
				}
			},
			max: 5,
			check: func(t *testing.T, err error) {
				var ae *store.ActiveJobError
				if !errors.As(err, &ae) || ae.Job.ID == 0 || ae.Job.Kind != pvekeep.KindBackupCreate {
					t.Errorf("got %v, want *ActiveJobError with the job", err)
				}
			},
		},
		{
			name: "full quota refuses with QuotaError used and max",
			prepare: func(t *testing.T, s *store.Store, b *testBundle) {
				b.availableBackup(t, s, 0, t0)
				b.availableBackup(t, s, 0, t0.Add(time.Second))
			},
			max: 2,
			check: func(t *testing.T, err error) {
				var qe *store.QuotaError
				if !errors.As(err, &qe) || qe.Used != 2 || qe.Max != 2 {
					t.Errorf("got %v, want QuotaError{2, 2}", err)
				}
			},
		},
		{
			name:    "quota zero turns backups off",
			prepare: func(t *testing.T, s *store.Store, b *testBundle) {},
			max:     0,
			check: func(t *testing.T, err error) {
				var qe *store.QuotaError
				if !errors.As(err, &qe) || qe.Used != 0 || qe.Max != 0 {
					t.Errorf("got %v, want QuotaError{0, 0}", err)
				}
			},
		},
		{
			name: "removing backups still count towards the quota",
			prepare: func(t *testing.T, s *store.Store, b *testBundle) {
				bk := b.availableBackup(t, s, 0, t0)
				if _, _, err := s.EnqueueBackupRemove(context.Background(), store.NewBackupRemove{Job: removeJob(b, 0, t0), BackupID: bk.ID}); err != nil {
					t.Fatal(err)
				}
				// finish the removal job but leave the backup removing
				j, _, _ := s.ActiveJob(context.Background(), b.service(0))
				l := b.claim(t, s, "w", t0, j.ID)
				if err := s.FinishJob(context.Background(), l, store.JobFinish{State: pvekeep.JobFailed, Error: "x", Now: t0}); err != nil {
					t.Fatal(err)
				}
			},
			max: 1,
			check: func(t *testing.T, err error) {
				var qe *store.QuotaError
				if !errors.As(err, &qe) || qe.Used != 1 {
					t.Errorf("got %v, want QuotaError used 1", err)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, b := setup(t)
			tc.prepare(t, s, b)
			before := mustBackups(t, s, b.service(0))
			_, _, _, err := s.EnqueueBackupCreate(context.Background(), b.newCreate(0, t0.Add(time.Hour), tc.max))
			tc.check(t, err)
			if after := mustBackups(t, s, b.service(0)); len(after) != len(before) {
				t.Errorf("a refused request changed the backups: %d → %d", len(before), len(after))
			}
		})
	}
}

func mustBackups(t *testing.T, s *store.Store, id pvekeep.ServiceID, st ...pvekeep.BackupStatus) []pvekeep.Backup {
	t.Helper()
	out, err := s.Backups(context.Background(), id, st...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func removeJob(b *testBundle, i int, at time.Time) pvekeep.Job {
	return pvekeep.Job{ServiceID: b.service(i), ServerID: b.fx.ServerID, Kind: pvekeep.KindBackupRemove, Step: "delete",
		ActorType: pvekeep.ActorClient, ActorID: b.fx.ClientID, CreatedAt: at}
}

func TestEnqueueBackupCreateSameIdempotencyKeyReturnsSameJob(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	r := b.newCreate(0, t0, 5)
	r.Job.IdempotencyKey = "click-1"
	j1, b1, existed1, err := s.EnqueueBackupCreate(ctx, r)
	if err != nil || existed1 {
		t.Fatalf("first: %v existed=%v", err, existed1)
	}
	// The retry comes later, after the job finished: still the same job,
	// and no quota/active checks get in the way.
	l := b.claim(t, s, "w", t0, j1.ID)
	if err := s.FinishJob(ctx, l, store.JobFinish{State: pvekeep.JobSucceeded, Now: t0,
		Backup: &store.BackupChange{ID: b1.ID, Status: pvekeep.BackupAvailable, Volid: "backup:backup/x.vma.zst"}}); err != nil {
		t.Fatal(err)
	}
	r.Job.CreatedAt = t0.Add(time.Minute)
	r.Max = 1
	j2, b2, existed2, err := s.EnqueueBackupCreate(ctx, r)
	if err != nil || !existed2 {
		t.Fatalf("retry: %v existed=%v", err, existed2)
	}
	if j2.ID != j1.ID || b2.ID != b1.ID || b2.Status != pvekeep.BackupAvailable {
		t.Errorf("retry returned job %d backup %d (%s), want job %d backup %d", j2.ID, b2.ID, b2.Status, j1.ID, b1.ID)
	}
	if n := len(mustBackups(t, s, b.service(0))); n != 1 {
		t.Errorf("%d backups, want 1", n)
	}
	// The same key on another service is another request.
	r2 := b.newCreate(1, t0, 5)
	r2.Job.IdempotencyKey = "click-1"
	j3, _, existed3, err := s.EnqueueBackupCreate(ctx, r2)
	if err != nil || existed3 || j3.ID == j1.ID {
		t.Errorf("same key, other service: job %d existed=%v err=%v", j3.ID, existed3, err)
	}
}

// The clicks race for the service's one active job, so this proves the
// one-job-per-service lock; TestEnqueueBackupCreateQuotaHoldsWhileJobsFinishAmidClicks
// proves the quota.
func TestEnqueueBackupCreateConcurrentClicksMakeOneActiveJob(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	for i := range 9 {
		b.availableBackup(t, s, 0, t0.Add(time.Duration(i)*time.Second))
	}
	const clicks = 20
	var (
		wg                sync.WaitGroup
		mu                sync.Mutex
		ok, quota, active int
		other             []error
	)
	start := make(chan struct{})
	for i := range clicks {
		wg.Go(func() {
			<-start
			_, _, _, err := s.EnqueueBackupCreate(ctx, b.newCreate(0, t0.Add(time.Hour+time.Duration(i)), 10))
			mu.Lock()
			defer mu.Unlock()
			var qe *store.QuotaError
			var ae *store.ActiveJobError
			switch {
			case err == nil:
				ok++
			case errors.As(err, &qe):
				quota++
			case errors.As(err, &ae):
				active++
			default:
				other = append(other, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if ok != 1 || len(other) != 0 || quota+active != clicks-1 {
		t.Errorf("ok=%d quota=%d active=%d other=%v; want exactly one success, the rest refused", ok, quota, active, other)
	}
	if n := len(mustBackups(t, s, b.service(0), pvekeep.BackupCreating, pvekeep.BackupAvailable, pvekeep.BackupRemoving)); n != 10 {
		t.Errorf("%d backups in use, want 10", n)
	}
}

// Each click retries while another click's job is active, and every job
// finishes the moment it is recorded, freeing the service: the one-job lock
// never turns a click away for good, so only the quota can stop the
// backups at 10. (Without the quota check every click succeeds.)
func TestEnqueueBackupCreateQuotaHoldsWhileJobsFinishAmidClicks(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	for i := range 9 {
		b.availableBackup(t, s, 0, t0.Add(time.Duration(i)*time.Second))
	}
	const clicks, max = 12, 10
	out := make([]clickOutcome, clicks)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range clicks {
		wg.Go(func() {
			<-start
			out[i] = clickUntilDecided(ctx, s, b, i, max)
		})
	}
	close(start)
	wg.Wait()
	var oks int
	for i, o := range out {
		switch {
		case o.err != nil:
			t.Errorf("click %d: %v", i, o.err)
		case o.ok:
			oks++
		}
	}
	if oks != 1 {
		t.Errorf("%d clicks made a backup at 9 of %d, want 1", oks, max)
	}
	if n := len(mustBackups(t, s, b.service(0), pvekeep.BackupCreating, pvekeep.BackupAvailable, pvekeep.BackupRemoving)); n != max {
		t.Errorf("%d backups in use, want %d", n, max)
	}
}

type clickOutcome struct {
	ok, quota bool // made a backup; refused by the quota
	err       error
}

// clickUntilDecided asks for a backup until the answer is a job (which it
// then finishes at once, as a fast vzdump would) or a quota refusal.
func clickUntilDecided(ctx context.Context, s *store.Store, b *testBundle, i, max int) (o clickOutcome) {
	owner := fmt.Sprintf("click-%d", i)
	for attempt := 0; attempt < 10000; attempt++ {
		at := t0.Add(time.Hour + time.Duration(attempt)*time.Millisecond)
		r := b.newCreate(0, at, max)
		until := at.Add(time.Minute)
		r.Job.LeaseOwner, r.Job.LeaseUntil = owner, &until
		j, bk, _, err := s.EnqueueBackupCreate(ctx, r)
		var qe *store.QuotaError
		var ae *store.ActiveJobError
		switch {
		case errors.As(err, &ae):
			continue // another click's job is still active
		case errors.As(err, &qe):
			o.quota = true
			return o
		case err != nil:
			o.err = err
			return o
		}
		o.err = s.FinishJob(ctx, store.LeaseOf(j), store.JobFinish{State: pvekeep.JobSucceeded, Now: at,
			Backup: &store.BackupChange{ID: bk.ID, Status: pvekeep.BackupAvailable,
				Volid: fmt.Sprintf("backup:backup/vzdump-qemu-100-%s.vma.zst", owner), SizeBytes: 1}})
		o.ok = o.err == nil
		return o
	}
	o.err = errors.New("still refused as locked after 10000 attempts")
	return o
}

func TestEnqueueBackupCreateConcurrentSameKeyMakesOneJob(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	const clicks = 10
	ids := make([]pvekeep.JobID, clicks)
	errs := make([]error, clicks)
	var wg sync.WaitGroup
	for i := range clicks {
		wg.Go(func() {
			r := b.newCreate(0, t0, 5)
			r.Job.IdempotencyKey = "same"
			j, _, _, err := s.EnqueueBackupCreate(ctx, r)
			ids[i], errs[i] = j.ID, err
		})
	}
	wg.Wait()
	for i := range clicks {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Errorf("click %d: job %d err %v, want job %d", i, ids[i], errs[i], ids[0])
		}
	}
}

func TestEnqueueBackupRemove(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		target func(t *testing.T, s *store.Store, b *testBundle) pvekeep.BackupID // backup to remove, from service 0
		check  func(t *testing.T, err error)
	}{
		{
			name: "another service's backup is not found",
			target: func(t *testing.T, s *store.Store, b *testBundle) pvekeep.BackupID {
				return b.availableBackup(t, s, 1, t0).ID
			},
			check: wantIs(store.ErrNotFound),
		},
		{
			name:   "unknown backup is not found",
			target: func(t *testing.T, s *store.Store, b *testBundle) pvekeep.BackupID { return 987654 },
			check:  wantIs(store.ErrNotFound),
		},
		{
			name: "backup being created is refused by the active job",
			target: func(t *testing.T, s *store.Store, b *testBundle) pvekeep.BackupID {
				_, bk, _, err := s.EnqueueBackupCreate(context.Background(), b.newCreate(0, t0, 5))
				if err != nil {
					t.Fatal(err)
				}
				return bk.ID
			},
			check: func(t *testing.T, err error) {
				var ae *store.ActiveJobError
				if !errors.As(err, &ae) {
					t.Errorf("got %v, want *ActiveJobError", err)
				}
			},
		},
		{
			name: "failed backup is refused with its status",
			target: func(t *testing.T, s *store.Store, b *testBundle) pvekeep.BackupID {
				j, bk, _, err := s.EnqueueBackupCreate(context.Background(), b.newCreate(0, t0, 5))
				if err != nil {
					t.Fatal(err)
				}
				l := b.claim(t, s, "w", t0, j.ID)
				if err := s.FinishJob(context.Background(), l, store.JobFinish{State: pvekeep.JobFailed, Error: "vzdump failed", Now: t0,
					Backup: &store.BackupChange{ID: bk.ID, Status: pvekeep.BackupFailed}}); err != nil {
					t.Fatal(err)
				}
				return bk.ID
			},
			check: func(t *testing.T, err error) {
				var se *store.BackupStateError
				if !errors.As(err, &se) || se.Status != pvekeep.BackupFailed {
					t.Errorf("got %v, want BackupStateError{failed}", err)
				}
			},
		},
		{
			name: "available backup gets a removal job",
			target: func(t *testing.T, s *store.Store, b *testBundle) pvekeep.BackupID {
				return b.availableBackup(t, s, 0, t0).ID
			},
			check: wantIs(nil),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, b := setup(t)
			ctx := context.Background()
			id := tc.target(t, s, b)
			j, existed, err := s.EnqueueBackupRemove(ctx, store.NewBackupRemove{Job: removeJob(b, 0, t0.Add(time.Hour)), BackupID: id})
			tc.check(t, err)
			if err != nil {
				return
			}
			if existed || j.Kind != pvekeep.KindBackupRemove || j.BackupID != id || j.State != pvekeep.JobQueued || j.VMID != 100 || j.Node != "pve1" {
				t.Errorf("job %+v existed=%v", j, existed)
			}
			bk, err := s.Backup(ctx, b.service(0), id)
			if err != nil || bk.Status != pvekeep.BackupRemoving {
				t.Errorf("backup status %s err %v, want removing", bk.Status, err)
			}
		})
	}
}

func wantIs(target error) func(t *testing.T, err error) {
	return func(t *testing.T, err error) {
		t.Helper()
		if target == nil {
			if err != nil {
				t.Errorf("got %v, want success", err)
			}
			return
		}
		if !errors.Is(err, target) {
			t.Errorf("got %v, want %v", err, target)
		}
	}
}

func TestEnqueueBackupRemoveSameKeyReturnsSameJob(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	bk := b.availableBackup(t, s, 0, t0)
	r := store.NewBackupRemove{Job: removeJob(b, 0, t0), BackupID: bk.ID}
	r.Job.IdempotencyKey = "rm-1"
	j1, existed1, err := s.EnqueueBackupRemove(ctx, r)
	if err != nil || existed1 {
		t.Fatalf("first: %v %v", err, existed1)
	}
	j2, existed2, err := s.EnqueueBackupRemove(ctx, r)
	if err != nil || !existed2 || j2.ID != j1.ID {
		t.Errorf("retry: job %d existed=%v err=%v, want job %d", j2.ID, existed2, err, j1.ID)
	}
}

func TestBackupIsScopedByService(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	bk := b.availableBackup(t, s, 1, t0)
	if _, err := s.Backup(ctx, b.service(0), bk.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("other service's backup: %v, want ErrNotFound", err)
	}
	got, err := s.Backup(ctx, b.service(1), bk.ID)
	if err != nil || got.ID != bk.ID || got.Volid == "" || got.SizeBytes != 1<<30 {
		t.Errorf("own backup: %+v %v", got, err)
	}
	if _, err := s.BackupByVolid(ctx, b.service(0), bk.Volid); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("other service's volid: %v, want ErrNotFound", err)
	}
	if got, err := s.BackupByVolid(ctx, b.service(1), bk.Volid); err != nil || got.ID != bk.ID {
		t.Errorf("own volid: %v %v", got.ID, err)
	}
}

func TestBackupsListsNewestFirstAndFiltersByStatus(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	old := b.availableBackup(t, s, 0, t0)
	mid := b.availableBackup(t, s, 0, t0.Add(time.Hour))
	_, creating, _, err := s.EnqueueBackupCreate(ctx, b.newCreate(0, t0.Add(2*time.Hour), 5))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		statuses []pvekeep.BackupStatus
		want     []pvekeep.BackupID
	}{
		{name: "no status lists all", want: []pvekeep.BackupID{creating.ID, mid.ID, old.ID}},
		{name: "available only", statuses: []pvekeep.BackupStatus{pvekeep.BackupAvailable}, want: []pvekeep.BackupID{mid.ID, old.ID}},
		{name: "creating only", statuses: []pvekeep.BackupStatus{pvekeep.BackupCreating}, want: []pvekeep.BackupID{creating.ID}},
		{name: "removed none", statuses: []pvekeep.BackupStatus{pvekeep.BackupRemoved}, want: []pvekeep.BackupID{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := mustBackups(t, s, b.service(0), tc.statuses...)
			ids := []pvekeep.BackupID{}
			for _, g := range got {
				ids = append(ids, g.ID)
			}
			if fmt.Sprint(ids) != fmt.Sprint(tc.want) {
				t.Errorf("got %v, want %v", ids, tc.want)
			}
		})
	}
	if n, err := s.BackupsUsed(ctx, b.service(0)); err != nil || n != 3 {
		t.Errorf("used %d %v, want 3", n, err)
	}
}

func TestJobsListsNewestFirstWithFilters(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	done := b.availableBackup(t, s, 0, t0)
	q0, _, _, err := s.EnqueueBackupCreate(ctx, b.newCreate(0, t0.Add(time.Hour), 5))
	if err != nil {
		t.Fatal(err)
	}
	q1, _, _, err := s.EnqueueBackupCreate(ctx, b.newCreate(1, t0.Add(time.Hour), 5))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		f    store.JobFilter
		want []pvekeep.JobID
	}{
		{name: "all services", f: store.JobFilter{}, want: []pvekeep.JobID{q1.ID, q0.ID, done.JobID}},
		{name: "one service", f: store.JobFilter{ServiceID: b.service(0)}, want: []pvekeep.JobID{q0.ID, done.JobID}},
		{name: "queued only", f: store.JobFilter{States: []pvekeep.JobState{pvekeep.JobQueued}}, want: []pvekeep.JobID{q1.ID, q0.ID}},
		{name: "limit", f: store.JobFilter{Limit: 1}, want: []pvekeep.JobID{q1.ID}},
		{name: "kind without jobs", f: store.JobFilter{Kinds: []pvekeep.JobKind{pvekeep.KindBackupRemove}}, want: []pvekeep.JobID{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Jobs(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			ids := []pvekeep.JobID{}
			for _, g := range got {
				ids = append(ids, g.ID)
			}
			if fmt.Sprint(ids) != fmt.Sprint(tc.want) {
				t.Errorf("got %v, want %v", ids, tc.want)
			}
		})
	}
}

func TestJobUnknownIsNotFound(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	if _, err := s.Job(context.Background(), 424242); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
}

func TestIdempotencyKeysDifferingInCaseAreDifferentRequests(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	r := b.newCreate(0, t0, 5)
	r.Job.IdempotencyKey = "CaseKey-XYZ"
	j1, b1, _, err := s.EnqueueBackupCreate(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	// Finish it, so that the one-job-per-service lock cannot be what
	// answers the second request.
	l := b.claim(t, s, "w", t0, j1.ID)
	if err := s.FinishJob(ctx, l, store.JobFinish{State: pvekeep.JobSucceeded, Now: t0,
		Backup: &store.BackupChange{ID: b1.ID, Status: pvekeep.BackupAvailable, Volid: "backup:backup/x.vma.zst"}}); err != nil {
		t.Fatal(err)
	}
	r.Job.IdempotencyKey = "casekey-xyz"
	r.Job.CreatedAt = t0.Add(time.Minute)
	j2, _, existed, err := s.EnqueueBackupCreate(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if existed || j2.ID == j1.ID {
		t.Errorf("casekey-xyz replayed job %d of CaseKey-XYZ (existed=%v); want a job of its own", j1.ID, existed)
	}
	if got, ok, err := s.JobByKey(ctx, b.service(0), "CASEKEY-XYZ"); err != nil || ok {
		t.Errorf("JobByKey(CASEKEY-XYZ) = job %d, found=%v, err=%v; want not found", got.ID, ok, err)
	}
}
