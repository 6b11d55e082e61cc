package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/store"
)

func (b *testBundle) newRestore(i int, at time.Time, backup pvekeep.BackupID) store.NewRestore {
	return store.NewRestore{
		Job: pvekeep.Job{
			ServiceID: b.service(i), VMID: pvekeep.VMID(100 + i), ServerID: b.fx.ServerID, Node: "pve1",
			Kind: pvekeep.KindBackupRestore, Step: "stop", Params: json.RawMessage(`{"mac":"BC:24:11:00:00:01"}`),
			ActorType: pvekeep.ActorClient, ActorID: b.fx.ClientID, CreatedAt: at,
		},
		BackupID: backup,
	}
}

func TestEnqueueRestoreHoldsTheServiceAndKeepsTheBackup(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	bk := b.availableBackup(t, s, 0, t0)
	job, existed, err := s.EnqueueRestore(ctx, b.newRestore(0, t0.Add(time.Minute), bk.ID))
	if err != nil || existed {
		t.Fatalf("EnqueueRestore() = %v, existed %v", err, existed)
	}
	if job.Kind != pvekeep.KindBackupRestore || job.State != pvekeep.JobQueued || job.BackupID != bk.ID || string(job.Params) != `{"mac":"BC:24:11:00:00:01"}` {
		t.Errorf("job = %+v", job)
	}
	got, err := s.Backup(ctx, b.service(0), bk.ID)
	if err != nil || got.Status != pvekeep.BackupAvailable {
		t.Errorf("backup after enqueue = %+v (%v), want still available", got, err)
	}
	_, _, err = s.EnqueueRestore(ctx, b.newRestore(0, t0.Add(2*time.Minute), bk.ID))
	var aj *store.ActiveJobError
	if !errors.As(err, &aj) || aj.Job.ID != job.ID {
		t.Errorf("second restore error = %v, want the first job active", err)
	}
}

func TestEnqueueRestoreRefusals(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	other := b.availableBackup(t, s, 1, t0)
	_, _, err := s.EnqueueRestore(ctx, b.newRestore(0, t0, other.ID))
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("restoring another service's backup: error = %v, want ErrNotFound", err)
	}
	creating, _, _, err := s.EnqueueBackupCreate(ctx, b.newCreate(2, t0, 5))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = s.EnqueueRestore(ctx, b.newRestore(2, t0, creating.BackupID))
	var aj *store.ActiveJobError
	if !errors.As(err, &aj) {
		t.Errorf("restoring a backup still being created: error = %v, want the create job active", err)
	}
}

func TestEnqueueReinstallNeedsNoBackup(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	r := b.newRestore(0, t0, 0)
	r.Job.Kind = pvekeep.KindVMReinstall
	job, _, err := s.EnqueueRestore(context.Background(), r)
	if err != nil || job.Kind != pvekeep.KindVMReinstall || job.BackupID != 0 {
		t.Fatalf("EnqueueRestore(reinstall) = %+v, %v", job, err)
	}
}

func TestUpdateJobClearsTheUPIDOfAFinishedStep(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	bk := b.availableBackup(t, s, 0, t0)
	job, _, err := s.EnqueueRestore(ctx, b.newRestore(0, t0, bk.ID))
	if err != nil {
		t.Fatal(err)
	}
	l := b.claim(t, s, "w", t0, job.ID)
	upd := store.JobUpdate{State: pvekeep.JobRunning, Step: "stop", UPID: "UPID:pve1:00000001:00000001:00000001:qmstop:100:root@pam:", Now: t0}
	if err := s.UpdateJob(ctx, l, upd); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateJob(ctx, l, store.JobUpdate{State: pvekeep.JobRunning, Step: "restore", ClearUPID: true, Now: t0}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Job(ctx, job.ID)
	if err != nil || got.UPID != "" || got.Step != "restore" {
		t.Errorf("job = %+v (%v), want step restore with no UPID", got, err)
	}
	if err := s.UpdateJob(ctx, l, store.JobUpdate{State: pvekeep.JobRunning, Step: "x", UPID: "u", ClearUPID: true, Now: t0}); err == nil {
		t.Error("UpdateJob accepted a UPID and ClearUPID together")
	}
}
