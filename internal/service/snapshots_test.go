package service_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/pvesim"
	"github.com/pvekeep/pvekeep/internal/seed"
	"github.com/pvekeep/pvekeep/internal/service"
)

// setupSnapshots is setup with a product selling `quota` snapshots that
// live `days` days (0 = kept), RAM snapshots allowed when ram is set.
func setupSnapshots(t *testing.T, quota, days int, ram string) *bundle {
	t.Helper()
	b := setup(t, 5)
	_, err := b.db.Store.DB().ExecContext(context.Background(),
		"UPDATE tblproducts SET configoption3 = ?, configoption4 = ?, configoption23 = ? WHERE id = ?",
		quota, days, ram, b.productID)
	must(t, err)
	return b
}

// takeSnapshot takes a snapshot and waits for its job.
func (b *bundle) takeSnapshot(t *testing.T, description string) pvekeep.Snapshot {
	t.Helper()
	ctx := context.Background()
	before, err := b.svc.ListSnapshots(ctx, b.call())
	must(t, err)
	_, err = b.svc.CreateSnapshot(ctx, b.call(), description, false, "")
	must(t, err)
	b.drain(t)
	l, err := b.svc.ListSnapshots(ctx, b.call())
	must(t, err)
	if len(l.Items) != len(before.Items)+1 {
		t.Fatalf("%d snapshots listed after taking one, want %d (failed job: %+v)", len(l.Items), len(before.Items)+1, l.FailedJob)
	}
	return l.Items[0]
}

func reasonOf(err error) pvekeep.Reason { return pvekeep.ReasonOf(err) }

func TestSnapshotWithADescriptionIsListedWithItsLifetime(t *testing.T) {
	t.Parallel()
	b := setupSnapshots(t, 3, 2, "")
	sn := b.takeSnapshot(t, "before\x00 the\tupgrade\n\u202e")
	ctx := context.Background()
	l, err := b.svc.ListSnapshots(ctx, b.call())
	must(t, err)
	if sn.Description != "before the upgrade" {
		t.Errorf("description %q, want it sanitised to %q", sn.Description, "before the upgrade")
	}
	if sn.Status != pvekeep.SnapshotAvailable || sn.ExpiresAt == nil {
		t.Fatalf("snapshot %+v", sn)
	}
	if got := sn.ExpiresAt.Sub(sn.CreatedAt); got != 48*time.Hour {
		t.Errorf("lifetime %s from Proxmox's snaptime, want exactly 2 days", got)
	}
	if l.Quota != (service.Usage{Used: 1, Max: 3}) || l.LifetimeDays != 2 || l.ActiveJob != nil {
		t.Errorf("quota %+v lifetime %d active %v", l.Quota, l.LifetimeDays, l.ActiveJob)
	}
	if len(sn.Name) < 2 || len(sn.Name) > 40 || sn.Name[0] < 'a' || sn.Name[0] > 'z' {
		t.Errorf("generated name %q", sn.Name)
	}
	names, _ := b.sim.Snapshots(100)
	if len(names) != 1 || names[0] != sn.Name {
		t.Errorf("Proxmox has %v, want [%s]", names, sn.Name)
	}
}

// The client page makes one call, backups.list: its snapshots section
// and its status's snapshot quota say what snapshots.list says.
func TestBackupsListCarriesTheSnapshotsSection(t *testing.T) {
	t.Parallel()
	b := setupSnapshots(t, 3, 2, "")
	sn := b.takeSnapshot(t, "page")
	l, err := b.svc.ListBackups(context.Background(), b.call())
	must(t, err)
	if l.Status.Snapshots != (service.Usage{Used: 1, Max: 3}) || l.Snapshots.Quota != l.Status.Snapshots {
		t.Errorf("status quota %+v, section quota %+v; want 1 of 3 in both", l.Status.Snapshots, l.Snapshots.Quota)
	}
	if len(l.Snapshots.Items) != 1 || l.Snapshots.Items[0].Name != sn.Name || l.Snapshots.LifetimeDays != 2 {
		t.Errorf("section %+v, want %s with a 2-day lifetime", l.Snapshots, sn.Name)
	}
}

func TestSnapshotRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		quota int
		ram   string
		take  int // snapshots taken first
		input func(t *testing.T, b *bundle) error
		want  pvekeep.Reason
	}{
		{name: "at the quota", quota: 1, take: 1, want: pvekeep.ReasonQuotaExceeded,
			input: func(t *testing.T, b *bundle) error {
				_, err := b.svc.CreateSnapshot(context.Background(), b.call(), "", false, "")
				return err
			}},
		{name: "quota 0 turns snapshots off", quota: 0, want: pvekeep.ReasonQuotaExceeded,
			input: func(t *testing.T, b *bundle) error {
				_, err := b.svc.CreateSnapshot(context.Background(), b.call(), "", false, "")
				return err
			}},
		{name: "RAM when the product does not allow it", quota: 2, want: pvekeep.ReasonInvalidInput,
			input: func(t *testing.T, b *bundle) error {
				_, err := b.svc.CreateSnapshot(context.Background(), b.call(), "", true, "")
				return err
			}},
		{name: "a name that is not a snapshot name", quota: 2, want: pvekeep.ReasonInvalidInput,
			input: func(t *testing.T, b *bundle) error {
				_, err := b.svc.RollbackSnapshot(context.Background(), b.call(), "../x", "")
				return err
			}},
		{name: "a snapshot made in the Proxmox UI", quota: 2, want: pvekeep.ReasonNotFound,
			input: func(t *testing.T, b *bundle) error {
				manualSnapshot(t, b, "manual")
				_, err := b.svc.RemoveSnapshot(context.Background(), b.call(), "manual", "")
				return err
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setupSnapshots(t, tc.quota, 0, tc.ram)
			for range tc.take {
				b.takeSnapshot(t, "")
			}
			if err := tc.input(t, b); reasonOf(err) != tc.want {
				t.Errorf("err = %v, want %s", err, tc.want)
			}
			l, err := b.svc.ListSnapshots(context.Background(), b.call())
			must(t, err)
			if len(l.Items) != tc.take || l.ActiveJob != nil {
				t.Errorf("%d snapshots and active job %v after the refusal, want %d and none", len(l.Items), l.ActiveJob, tc.take)
			}
		})
	}
}

// Twenty clicks at N−1 of N race; each one refused as locked ticks the
// jobs on and clicks again, so only the quota can stop them: exactly one
// snapshot more.
func TestTwentyConcurrentSnapshotClicksAtOneBelowTheQuotaMakeOneMore(t *testing.T) {
	t.Parallel()
	b := setupSnapshots(t, 2, 0, "")
	b.takeSnapshot(t, "first")
	ctx := context.Background()
	const clicks = 20
	errs := make([]error, clicks)
	made := make([]bool, clicks)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range clicks {
		wg.Go(func() {
			<-start
			for range 500 {
				_, err := b.svc.CreateSnapshot(ctx, b.call(), "race", false, "")
				switch reasonOf(err) {
				case pvekeep.ReasonLocked:
					if _, err := b.svc.Tick(ctx, []pvekeep.Server{b.server}, time.Second); err != nil {
						errs[i] = err
						return
					}
					continue
				case pvekeep.ReasonQuotaExceeded:
					return
				}
				errs[i], made[i] = err, err == nil
				return
			}
			errs[i] = errors.New("still locked after 500 clicks")
		})
	}
	close(start)
	wg.Wait()
	b.drain(t)
	n := 0
	for i := range clicks {
		if errs[i] != nil {
			t.Errorf("click %d: %v", i, errs[i])
		}
		if made[i] {
			n++
		}
	}
	l, err := b.svc.ListSnapshots(ctx, b.call())
	must(t, err)
	names, _ := b.sim.Snapshots(100)
	if n != 1 || len(l.Items) != 2 || len(names) != 2 {
		t.Errorf("%d clicks made a snapshot; %d listed, %d in Proxmox; want 1, 2, 2", n, len(l.Items), len(names))
	}
}

func TestRollbackOfARunningVMLeavesItRunningAtTheSnapshot(t *testing.T) {
	t.Parallel()
	b := setupSnapshots(t, 3, 0, "")
	first := b.takeSnapshot(t, "first")
	second := b.takeSnapshot(t, "second")
	ctx := context.Background()
	j, err := b.svc.RollbackSnapshot(ctx, b.call(), first.Name, "")
	must(t, err)
	if j.Kind != pvekeep.KindSnapshotRollback {
		t.Errorf("job kind %s", j.Kind)
	}
	b.drain(t)
	got, err := b.svc.GetJob(ctx, b.call(), j.ID)
	must(t, err)
	if got.State != pvekeep.JobSucceeded {
		t.Fatalf("rollback job %s: %s", got.State, got.Error)
	}
	cfg, _ := b.sim.VMConfig(100)
	if cfg["parent"] != first.Name {
		t.Errorf("VM's parent snapshot %q, want %q", cfg["parent"], first.Name)
	}
	if !vmRunning(b, 100) {
		t.Error("VM stopped after rolling back a running VM")
	}
	names, _ := b.sim.Snapshots(100)
	if len(names) != 2 || names[1] != second.Name {
		t.Errorf("snapshots %v, want both kept", names)
	}
}

func vmRunning(b *bundle, vmid int) bool {
	for _, v := range b.sim.State().VMs {
		if v.VMID == vmid {
			return v.Running
		}
	}
	return false
}

func TestRollbackToAnOlderSnapshotOnNewestOnlyStorageChangesNothing(t *testing.T) {
	t.Parallel()
	b := setupSnapshots(t, 3, 0, "")
	first := b.takeSnapshot(t, "first")
	second := b.takeSnapshot(t, "second")
	must(t, b.sim.SetNewestOnlyRollback("local-lvm", true))
	ctx := context.Background()
	_, err := b.svc.RollbackSnapshot(ctx, b.call(), first.Name, "")
	if reasonOf(err) != pvekeep.ReasonInvalidState {
		t.Fatalf("rollback to an older snapshot on newest-only storage: %v, want invalid_state", err)
	}
	if e, _ := pvekeep.AsError(err); e.Data["state"] != "not_newest_snapshot" {
		t.Errorf("data = %v, want state not_newest_snapshot for the panel's translation", e.Data)
	}
	cfg, _ := b.sim.VMConfig(100)
	if cfg["parent"] != second.Name || cfg["lock"] != "" || !vmRunning(b, 100) {
		t.Errorf("VM changed: parent %q lock %q running %v", cfg["parent"], cfg["lock"], vmRunning(b, 100))
	}
	l, err := b.svc.ListSnapshots(ctx, b.call())
	must(t, err)
	if l.ActiveJob != nil || l.FailedJob == nil {
		t.Errorf("active %v failed %v: want the VM free and the failure shown", l.ActiveJob, l.FailedJob)
	}
	// The newest one still rolls back.
	if _, err := b.svc.RollbackSnapshot(ctx, b.call(), second.Name, ""); err != nil {
		t.Errorf("rollback to the newest: %v", err)
	}
	b.drain(t)
}

func TestExpiryRemovesExactlyTheExpiredSnapshots(t *testing.T) {
	t.Parallel()
	b := setupSnapshots(t, 3, 1, "")
	old := b.takeSnapshot(t, "old")
	b.clock.Advance(12 * time.Hour)
	young := b.takeSnapshot(t, "young")
	b.clock.Advance(13 * time.Hour) // old is 25 h old, young 13 h
	ctx := context.Background()
	st, err := b.svc.Tick(ctx, []pvekeep.Server{b.server}, time.Second)
	must(t, err)
	if st.SnapshotsExpiring != 1 {
		t.Errorf("tick queued %d expiries, want 1", st.SnapshotsExpiring)
	}
	b.drain(t)
	names, _ := b.sim.Snapshots(100)
	if len(names) != 1 || names[0] != young.Name {
		t.Errorf("Proxmox has %v, want only %s", names, young.Name)
	}
	l, err := b.svc.ListSnapshots(ctx, b.call())
	must(t, err)
	if len(l.Items) != 1 || l.Items[0].Name != young.Name {
		t.Errorf("listed %+v, want only %s", l.Items, young.Name)
	}
	all, err := b.db.Store.Snapshots(ctx, b.service)
	must(t, err)
	for _, sn := range all {
		if sn.Name == old.Name && (sn.Status != pvekeep.SnapshotRemoved || sn.RemovedReason != pvekeep.SnapshotRemovedByExpiry) {
			t.Errorf("expired record %+v", sn)
		}
	}
}

func TestFailedExpiryIsRetriedByLaterTicksAndShownToTheAdmin(t *testing.T) {
	t.Parallel()
	b := setupSnapshots(t, 3, 1, "")
	sn := b.takeSnapshot(t, "old")
	ctx := context.Background()
	// The client's last click: a backup that failed.
	must(t, b.sim.InjectTaskFault(pvesim.TaskFault{Type: "vzdump", VMID: 100, ExitStatus: "unable to read disk: I/O error", Count: 1}))
	failed, err := b.svc.CreateBackup(ctx, b.call(), "fails", "")
	must(t, err)
	b.drain(t)
	b.clock.Advance(25 * time.Hour)
	// Proxmox holds a lock of its own: the removal fails, the service is
	// freed again.
	must(t, b.sim.SetLock(100, "backup"))
	_, err = b.svc.Tick(ctx, []pvekeep.Server{b.server}, time.Second)
	must(t, err)
	b.drain(t)
	if l, err := b.svc.ListBackups(ctx, b.call()); err != nil || l.FailedBackup == nil || l.FailedBackup.ID != failed.ID {
		t.Errorf("after the cron's failed expiry the client's failed backup is no longer shown: %+v, %v", l.FailedBackup, err)
	}
	all, err := b.db.Store.Snapshots(ctx, b.service)
	must(t, err)
	if len(all) != 1 || all[0].Status != pvekeep.SnapshotAvailable || all[0].LastError == "" || all[0].Attempts < 1 {
		t.Fatalf("after a failed expiry: %+v", all)
	}
	o, err := b.svc.Overview(ctx, service.Call{ServiceID: b.service, Actor: pvekeep.Actor{Type: pvekeep.ActorAdmin, ID: 1}, Server: b.server})
	must(t, err)
	if len(o.Snapshots) != 1 || o.Snapshots[0].LastError == "" {
		t.Errorf("admin overview snapshots %+v, want the failed expiry shown", o.Snapshots)
	}
	if cl, err := b.svc.ListSnapshots(ctx, b.call()); err != nil || cl.FailedJob != nil {
		t.Errorf("the client's list shows the cron's failed expiry: %+v, %v", cl.FailedJob, err)
	}
	must(t, b.sim.SetLock(100, ""))
	// Not on every tick: the next try waits 10 minutes after a failure.
	jobs := b.jobCount(t)
	_, err = b.svc.Tick(ctx, []pvekeep.Server{b.server}, time.Second)
	must(t, err)
	if n := b.jobCount(t); n != jobs {
		t.Errorf("a tick right after the failure retried it (%d new jobs)", n-jobs)
	}
	b.clock.Advance(11 * time.Minute)
	_, err = b.svc.Tick(ctx, []pvekeep.Server{b.server}, time.Second)
	must(t, err)
	b.drain(t)
	if names, _ := b.sim.Snapshots(100); len(names) != 0 {
		t.Errorf("Proxmox still has %v after the retry", names)
	}
	got, err := b.db.Store.Snapshot(ctx, b.service, sn.ID)
	must(t, err)
	if got.Status != pvekeep.SnapshotRemoved || got.LastError != "" {
		t.Errorf("after the retry: %+v", got)
	}
}

func TestSnapshotAndBackupLockEachOtherOut(t *testing.T) {
	t.Parallel()
	b := setupSnapshots(t, 3, 0, "")
	ctx := context.Background()
	_, err := b.svc.CreateBackup(ctx, b.call(), "b", "")
	must(t, err)
	if _, err := b.svc.CreateSnapshot(ctx, b.call(), "", false, ""); reasonOf(err) != pvekeep.ReasonLocked {
		t.Errorf("snapshot during a backup: %v, want locked", err)
	}
	b.drain(t)
	sn := b.takeSnapshot(t, "s")
	_, err = b.svc.RemoveSnapshot(ctx, b.call(), sn.Name, "")
	must(t, err)
	if _, err := b.svc.CreateBackup(ctx, b.call(), "b2", ""); reasonOf(err) != pvekeep.ReasonLocked {
		t.Errorf("backup during a snapshot removal: %v, want locked", err)
	}
	b.drain(t)
	// Proxmox's own locks count too.
	for _, lock := range []string{"backup", "snapshot", "rollback"} {
		must(t, b.sim.SetLock(100, lock))
		if _, err := b.svc.CreateSnapshot(ctx, b.call(), "", false, ""); reasonOf(err) != pvekeep.ReasonLocked {
			t.Errorf("snapshot while Proxmox holds %q: %v, want locked", lock, err)
		}
	}
	must(t, b.sim.SetLock(100, ""))
}

func TestAnotherClientsSnapshotNameIsRefused(t *testing.T) {
	t.Parallel()
	b := setupSnapshots(t, 3, 0, "")
	sn := b.takeSnapshot(t, "mine")
	ctx := context.Background()
	other, err := b.seed.Client(ctx, seed.Client{Email: "other@example.com"})
	must(t, err)
	otherSvc, err := b.seed.Service(ctx, seed.Service{ClientID: other, ProductID: b.productID, ServerID: b.server.ID, VMID: "101"})
	must(t, err)
	theirs := service.Call{ServiceID: pvekeep.ServiceID(otherSvc), Actor: pvekeep.Actor{Type: pvekeep.ActorClient, ID: other}, Server: b.server}
	if _, err := b.svc.RemoveSnapshot(ctx, theirs, sn.Name, ""); reasonOf(err) != pvekeep.ReasonNotFound {
		t.Errorf("other client removing it through their own service: %v, want not_found", err)
	}
	theirs.ServiceID = b.service
	if _, err := b.svc.RollbackSnapshot(ctx, theirs, sn.Name, ""); reasonOf(err) != pvekeep.ReasonForbidden {
		t.Errorf("other client rolling back on this service: %v, want forbidden", err)
	}
	if names, _ := b.sim.Snapshots(100); len(names) != 1 {
		t.Errorf("Proxmox has %v, want the snapshot untouched", names)
	}
}

func TestRestoreMarksTheSnapshotsItDestroyed(t *testing.T) {
	t.Parallel()
	b := setupSnapshots(t, 3, 0, "")
	ctx := context.Background()
	_, err := b.svc.CreateBackup(ctx, b.call(), "b", "")
	must(t, err)
	b.drain(t)
	sn := b.takeSnapshot(t, "s")
	bl, err := b.svc.ListBackups(ctx, b.call())
	must(t, err)
	_, err = b.svc.RestoreBackup(ctx, b.call(), bl.Items[0].ID, "")
	must(t, err)
	b.drain(t)
	l, err := b.svc.ListSnapshots(ctx, b.call())
	must(t, err)
	if len(l.Items) != 0 || len(l.RemovedByRestore) != 1 || l.RemovedByRestore[0].Name != sn.Name || l.Quota.Used != 0 {
		t.Errorf("after the restore: items %+v, removed by restore %+v, quota %+v", l.Items, l.RemovedByRestore, l.Quota)
	}
	// Once the client takes a snapshot again, that is old news.
	b.clock.Advance(time.Minute)
	b.takeSnapshot(t, "after")
	l, err = b.svc.ListSnapshots(ctx, b.call())
	must(t, err)
	if len(l.Items) != 1 || len(l.RemovedByRestore) != 0 {
		t.Errorf("after a new snapshot: items %d, removed by restore %+v; want 1 and no notice", len(l.Items), l.RemovedByRestore)
	}
}

// Proxmox not answering the list after a restore: the restore destroyed
// every snapshot, so no record may stay to count or to fail a rollback.
func TestRestoreForgetsTheSnapshotsWhenProxmoxCannotListThem(t *testing.T) {
	t.Parallel()
	b := setupSnapshots(t, 3, 0, "")
	ctx := context.Background()
	_, err := b.svc.CreateBackup(ctx, b.call(), "b", "")
	must(t, err)
	b.drain(t)
	b.takeSnapshot(t, "s")
	bl, err := b.svc.ListBackups(ctx, b.call())
	must(t, err)
	must(t, b.sim.InjectHTTPFault(pvesim.HTTPFault{Method: "GET", PathRegex: `/qemu/100/snapshot$`, Status: 500, Message: "down", Count: 1000}))
	_, err = b.svc.RestoreBackup(ctx, b.call(), bl.Items[0].ID, "")
	must(t, err)
	b.drain(t)
	b.sim.ClearFaults()
	l, err := b.svc.ListSnapshots(ctx, b.call())
	must(t, err)
	if len(l.Items) != 0 || l.Quota.Used != 0 {
		t.Errorf("after the restore: items %+v, quota %+v; want none", l.Items, l.Quota)
	}
}

func TestAdminSeesSnapshotsMadeInProxmoxFlaggedApart(t *testing.T) {
	t.Parallel()
	b := setupSnapshots(t, 3, 0, "")
	mine := b.takeSnapshot(t, "mine")
	ctx := context.Background()
	admin := service.Call{ServiceID: b.service, Actor: pvekeep.Actor{Type: pvekeep.ActorAdmin, ID: 1}, Server: b.server}
	manualSnapshot(t, b, "manual")
	l, err := b.svc.ListSnapshots(ctx, admin)
	must(t, err)
	if l.ForeignError != nil || len(l.Foreign) != 1 || l.Foreign[0].Name != "manual" || len(l.Items) != 1 || l.Items[0].Name != mine.Name || l.Quota.Used != 1 {
		t.Errorf("admin list: foreign %+v (%v), items %+v", l.Foreign, l.ForeignError, l.Items)
	}
	cl, err := b.svc.ListSnapshots(ctx, b.call())
	must(t, err)
	if cl.Foreign != nil || len(cl.Items) != 1 {
		t.Errorf("a client sees foreign snapshots: %+v, items %+v", cl.Foreign, cl.Items)
	}
}

// manualSnapshot takes a snapshot the way an admin in the Proxmox UI
// would: straight through the API, unknown to the plugin.
func manualSnapshot(t *testing.T, b *bundle, name string) {
	t.Helper()
	ctx := context.Background()
	pc, err := pve.Connect(ctx, pve.ConfigFromServer(b.server))
	must(t, err)
	upid, err := pc.CreateSnapshot(ctx, "pve1", pve.SnapshotRequest{VMID: 100, Name: name})
	must(t, err)
	for {
		ts, err := pc.TaskStatus(ctx, upid)
		must(t, err)
		if !ts.Running {
			if ts.ExitStatus != "OK" {
				t.Fatalf("manual snapshot: %s", ts.ExitStatus)
			}
			return
		}
		time.Sleep(10 * time.Millisecond) // the simulator's task, not an assertion
	}
}

func (b *bundle) tasksOfType(typ string) int {
	n := 0
	for _, task := range b.sim.State().Tasks {
		if task.Type == typ {
			n++
		}
	}
	return n
}

// The answer to the snapshot request is lost (it lands 3 s later): the
// job waits out the quiet window, finds the task in Proxmox's list and
// follows it, never asking for a second snapshot.
func TestLostAnswerToASnapshotIsAdoptedNotResubmitted(t *testing.T) {
	t.Parallel()
	b := setupSnapshots(t, 3, 0, "")
	b.clock.real = true
	ctx := context.Background()
	must(t, b.sim.InjectHTTPFault(pvesim.HTTPFault{Method: "POST", PathRegex: "/snapshot$", Delay: 3 * time.Second, Detached: true, Count: 1}))
	clicked := time.Now()
	job, err := b.svc.CreateSnapshot(ctx, b.call(), "lost answer", false, "")
	must(t, err)
	b.drain(t)
	time.Sleep(time.Until(clicked.Add(4 * time.Second))) // when a second submission would show
	got, err := b.svc.GetJob(ctx, b.call(), job.ID)
	must(t, err)
	if got.State != pvekeep.JobSucceeded {
		t.Fatalf("job ended %s (%s), want succeeded", got.State, got.Error)
	}
	if n := b.tasksOfType("qmsnapshot"); n != 1 {
		t.Errorf("qmsnapshot ran %d times, want 1", n)
	}
	if names, _ := b.sim.Snapshots(100); len(names) != 1 {
		t.Errorf("Proxmox has %v, want one snapshot", names)
	}
}

func TestSameIdempotencyKeyTakesOneSnapshot(t *testing.T) {
	t.Parallel()
	b := setupSnapshots(t, 3, 0, "")
	ctx := context.Background()
	first, err := b.svc.CreateSnapshot(ctx, b.call(), "once", false, "key-1")
	must(t, err)
	again, err := b.svc.CreateSnapshot(ctx, b.call(), "once", false, "key-1")
	must(t, err)
	if again.ID != first.ID {
		t.Errorf("retry got job %d, want %d", again.ID, first.ID)
	}
	b.drain(t)
	later, err := b.svc.CreateSnapshot(ctx, b.call(), "once", false, "key-1")
	must(t, err)
	if later.ID != first.ID {
		t.Errorf("late retry got job %d, want %d", later.ID, first.ID)
	}
	if _, err := b.svc.RemoveSnapshot(ctx, b.call(), "pkwhatever", "key-1"); reasonOf(err) != pvekeep.ReasonInvalidInput {
		t.Errorf("the key reused for a removal: %v, want invalid_input", err)
	}
	if names, _ := b.sim.Snapshots(100); len(names) != 1 || b.tasksOfType("qmsnapshot") != 1 {
		t.Errorf("Proxmox has %v after %d qmsnapshot tasks, want one", names, b.tasksOfType("qmsnapshot"))
	}
}

// A snapshot with the VM's RAM resumes the VM on rollback even when it was
// stopped at the click.
func TestRollbackToARAMSnapshotLeavesTheVMRunning(t *testing.T) {
	t.Parallel()
	b := setupSnapshots(t, 3, 0, "on")
	ctx := context.Background()
	_, err := b.svc.CreateSnapshot(ctx, b.call(), "with ram", true, "")
	must(t, err)
	b.drain(t)
	l, err := b.svc.ListSnapshots(ctx, b.call())
	must(t, err)
	if len(l.Items) != 1 || !l.Items[0].VMState || !l.RAMAllowed {
		t.Fatalf("items %+v ram allowed %v: want one snapshot with RAM", l.Items, l.RAMAllowed)
	}
	b.stopVM(t, 100)
	if vmRunning(b, 100) {
		t.Fatal("VM still running after stop")
	}
	_, err = b.svc.RollbackSnapshot(ctx, b.call(), l.Items[0].Name, "")
	must(t, err)
	b.drain(t)
	if !vmRunning(b, 100) {
		t.Error("VM stopped after rolling back to a snapshot with RAM")
	}
}

func (b *bundle) jobCount(t *testing.T) int {
	t.Helper()
	var n int
	must(t, b.db.Store.DB().QueryRow("SELECT COUNT(*) FROM mod_pvekeep_jobs WHERE service_id = ?", b.service).Scan(&n))
	return n
}

// stopVM stops the VM through Proxmox's API, as an admin in its UI would,
// and waits for the task.
func (b *bundle) stopVM(t *testing.T, vmid int) {
	t.Helper()
	ctx := context.Background()
	pc, err := pve.Connect(ctx, pve.ConfigFromServer(b.server))
	must(t, err)
	upid, err := pc.StopVM(ctx, "pve1", pvekeep.VMID(vmid))
	must(t, err)
	for {
		ts, err := pc.TaskStatus(ctx, upid)
		must(t, err)
		if !ts.Running {
			return
		}
		time.Sleep(10 * time.Millisecond) // the simulator's task, not an assertion
	}
}
