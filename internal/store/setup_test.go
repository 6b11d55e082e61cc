package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/dbtest"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/seed"
	"github.com/pvekeep/pvekeep/internal/store"
)

// t0 is the fake clock's start; tests move time by adding to it.
var t0 = time.Date(2025, 3, 30, 1, 30, 0, 123456789, time.UTC)

type testBundle struct {
	db     *dbtest.DB
	seed   *seed.Seeder
	fx     seed.Fixture
	keySeq atomic.Int64
}

// setup gives a test its own database with one client, server and product
// and three Active services (VMIDs 100, 101, 102).
func setup(t *testing.T) (*store.Store, *testBundle) {
	t.Helper()
	db := dbtest.New(t)
	sd := seed.New(db.Store.DB(), t0)
	fx, err := sd.Standard(context.Background(), seed.FixtureSpec{VMIDs: []int{100, 101, 102}})
	if err != nil {
		t.Fatalf("seed: %v", err)
	}
	return db.Store, &testBundle{db: db, seed: sd, fx: fx}
}

func (b *testBundle) service(i int) pvekeep.ServiceID { return pvekeep.ServiceID(b.fx.ServiceIDs[i]) }

// newCreate is a valid backup.create request for service i at time at.
func (b *testBundle) newCreate(i int, at time.Time, max int) store.NewBackupCreate {
	return store.NewBackupCreate{
		Job: pvekeep.Job{
			ServiceID: b.service(i), VMID: pvekeep.VMID(100 + i), ServerID: b.fx.ServerID, Node: "pve1",
			Kind: pvekeep.KindBackupCreate, Step: "submit", Params: json.RawMessage(`{"mode":"snapshot"}`),
			ActorType: pvekeep.ActorClient, ActorID: b.fx.ClientID, CreatedAt: at,
		},
		Backup: pvekeep.Backup{Storage: "backup", Note: "before upgrade", Origin: pvekeep.OriginManual,
			Node: "pve1", VMID: pvekeep.VMID(100 + i), CreatedAt: at},
		Max: max,
	}
}

// availableBackup makes a finished, available backup for service i and
// returns it (its job has succeeded, so the service is free again).
func (b *testBundle) availableBackup(t *testing.T, s *store.Store, i int, at time.Time) pvekeep.Backup {
	t.Helper()
	ctx := context.Background()
	j, bk, _, err := s.EnqueueBackupCreate(ctx, b.newCreate(i, at, 100))
	if err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	l := b.claim(t, s, "seeder", at, j.ID)
	volid := fmt.Sprintf("backup:backup/vzdump-qemu-%d-%d.vma.zst", 100+i, b.keySeq.Add(1))
	if err := s.FinishJob(ctx, l, store.JobFinish{State: pvekeep.JobSucceeded, Now: at,
		Backup: &store.BackupChange{ID: bk.ID, Status: pvekeep.BackupAvailable, Volid: volid, SizeBytes: 1 << 30}}); err != nil {
		t.Fatalf("finish: %v", err)
	}
	got, err := s.Backup(ctx, b.service(i), bk.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// claim leases the job with id want to owner and returns the lease.
func (b *testBundle) claim(t *testing.T, s *store.Store, owner string, now time.Time, want pvekeep.JobID) pvekeep.Lease {
	t.Helper()
	jobs, err := s.ClaimJobs(context.Background(), store.ClaimRequest{Owner: owner, Limit: 100, Now: now,
		LeaseUntil: now.Add(time.Minute), ServerIDs: []int64{b.fx.ServerID}})
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	for _, j := range jobs {
		if j.ID == want {
			return store.LeaseOf(j)
		}
	}
	t.Fatalf("claim by %s did not return job %d (got %d jobs)", owner, want, len(jobs))
	return pvekeep.Lease{}
}
