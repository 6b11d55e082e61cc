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

// newSnapshot is a valid snapshot.create request for service i at time at.
func (b *testBundle) newSnapshot(i int, at time.Time, max int) store.NewSnapshotCreate {
	exp := at.Add(24 * time.Hour)
	return store.NewSnapshotCreate{
		Job: pvekeep.Job{
			ServiceID: b.service(i), VMID: pvekeep.VMID(100 + i), ServerID: b.fx.ServerID, Node: "pve1",
			Kind: pvekeep.KindSnapshotCreate, Step: "dispatch",
			ActorType: pvekeep.ActorClient, ActorID: b.fx.ClientID, CreatedAt: at,
		},
		Snapshot: pvekeep.Snapshot{VMID: pvekeep.VMID(100 + i), Name: fmt.Sprintf("pk%d", b.keySeq.Add(1)),
			Description: "before upgrade", CreatedAt: at, ExpiresAt: &exp},
		Max: max,
	}
}

// snapClick asks for a snapshot until the answer is a job (finished at
// once, as a fast qmsnapshot would) or a quota refusal.
func snapClick(ctx context.Context, s *store.Store, b *testBundle, i, max int) (o clickOutcome) {
	owner := fmt.Sprintf("snap-click-%d", i)
	for attempt := 0; attempt < 10000; attempt++ {
		at := t0.Add(time.Hour + time.Duration(attempt)*time.Millisecond)
		r := b.newSnapshot(0, at, max)
		until := at.Add(time.Minute)
		r.Job.LeaseOwner, r.Job.LeaseUntil = owner, &until
		j, sn, _, err := s.EnqueueSnapshotCreate(ctx, r)
		var qe *store.SnapshotQuotaError
		var ae *store.ActiveJobError
		switch {
		case errors.As(err, &ae):
			continue
		case errors.As(err, &qe):
			o.quota = true
			return o
		case err != nil:
			o.err = err
			return o
		}
		o.err = s.FinishJob(ctx, store.LeaseOf(j), store.JobFinish{State: pvekeep.JobSucceeded, Now: at,
			Snapshot: &store.SnapshotChange{ID: sn.ID, Status: pvekeep.SnapshotAvailable}})
		o.ok = o.err == nil
		return o
	}
	o.err = errors.New("still refused as locked after 10000 attempts")
	return o
}

// 20 concurrent clicks at N−1 of N make exactly one more snapshot. Each
// click retries while another's job is active and every job finishes at
// once, so the one-job lock never turns a click away for good: only the
// quota check stops them (without it, all 20 succeed).
func TestSnapshotQuotaHoldsForTwentyClicksAtOneBelow(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	const clicks, max = 20, 3
	for range max - 1 {
		if o := snapClick(ctx, s, b, 99, 100); !o.ok {
			t.Fatalf("seed snapshot: %+v", o)
		}
	}
	out := make([]clickOutcome, clicks)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range clicks {
		wg.Go(func() {
			<-start
			out[i] = snapClick(ctx, s, b, i, max)
		})
	}
	close(start)
	wg.Wait()
	oks, quotas := 0, 0
	for i, o := range out {
		switch {
		case o.err != nil:
			t.Errorf("click %d: %v", i, o.err)
		case o.ok:
			oks++
		case o.quota:
			quotas++
		}
	}
	if oks != 1 || quotas != clicks-1 {
		t.Errorf("%d clicks took a snapshot and %d were refused by the quota at %d of %d; want 1 and %d", oks, quotas, max-1, max, clicks-1)
	}
	got, err := s.Snapshots(ctx, b.service(0), pvekeep.SnapshotCreating, pvekeep.SnapshotAvailable, pvekeep.SnapshotRemoving)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != max {
		t.Errorf("%d snapshots in use, want %d", len(got), max)
	}
}

func TestSnapshotJobsRefusals(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	r := b.newSnapshot(0, t0, 5)
	j, sn, _, err := s.EnqueueSnapshotCreate(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	job := func(kind pvekeep.JobKind, svc int, name string) store.NewSnapshotJob {
		return store.NewSnapshotJob{Name: name, Job: pvekeep.Job{ServiceID: b.service(svc), ServerID: b.fx.ServerID, Kind: kind, Step: "dispatch",
			ActorType: pvekeep.ActorClient, ActorID: b.fx.ClientID, CreatedAt: t0.Add(time.Second)}}
	}
	var ae *store.ActiveJobError
	if _, _, _, err := s.EnqueueSnapshotJob(ctx, job(pvekeep.KindSnapshotRollback, 0, sn.Name)); !errors.As(err, &ae) {
		t.Errorf("rollback while the snapshot is being taken: %v, want the active job", err)
	}
	l := b.claim(t, s, "w", t0, j.ID)
	if err := s.FinishJob(ctx, l, store.JobFinish{State: pvekeep.JobSucceeded, Now: t0,
		Snapshot: &store.SnapshotChange{ID: sn.ID, Status: pvekeep.SnapshotAvailable}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		req  store.NewSnapshotJob
		want error
	}{
		{name: "another service's snapshot name", req: job(pvekeep.KindSnapshotRemove, 1, sn.Name), want: store.ErrNotFound},
		{name: "unknown name", req: job(pvekeep.KindSnapshotRollback, 0, "pknothere"), want: store.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, _, err := s.EnqueueSnapshotJob(ctx, tc.req); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
	rj, rs, _, err := s.EnqueueSnapshotJob(ctx, job(pvekeep.KindSnapshotRemove, 0, sn.Name))
	if err != nil || rs.Status != pvekeep.SnapshotRemoving {
		t.Fatalf("remove: %v, status %s", err, rs.Status)
	}
	// A failed removal puts it back, with the error for the admin tab.
	l = b.claim(t, s, "w2", t0.Add(2*time.Second), rj.ID)
	if err := s.FinishJob(ctx, l, store.JobFinish{State: pvekeep.JobFailed, Error: "boom", Now: t0,
		Snapshot: &store.SnapshotChange{ID: sn.ID, Status: pvekeep.SnapshotAvailable, Error: "boom"}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Snapshot(ctx, b.service(0), sn.ID)
	if err != nil || got.Status != pvekeep.SnapshotAvailable || got.LastError != "boom" || got.Attempts != 1 {
		t.Errorf("after a failed removal: %+v %v", got, err)
	}
	exp, err := s.ExpiredSnapshots(ctx, []int64{b.fx.ServerID}, t0.Add(25*time.Hour), 10)
	if err != nil || len(exp) != 1 || exp[0].ID != sn.ID || exp[0].ServerID != b.fx.ServerID {
		t.Errorf("expired = %+v, %v; want the one snapshot", exp, err)
	}
	if exp, _ := s.ExpiredSnapshots(ctx, []int64{b.fx.ServerID}, t0.Add(23*time.Hour), 10); len(exp) != 0 {
		t.Errorf("expired before its time: %+v", exp)
	}
}
