package service_test

import (
	"context"
	"strings"
	"testing"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/seed"
	"github.com/pvekeep/pvekeep/internal/service"
)

func (b *bundle) as(actor pvekeep.Actor) service.Call {
	c := b.call()
	c.Actor = actor
	return c
}

var (
	anAdmin    = pvekeep.Actor{Type: pvekeep.ActorAdmin, ID: 1}
	theSystem  = pvekeep.Actor{Type: pvekeep.ActorSystem}
	someClient = func(b *bundle) pvekeep.Actor { return pvekeep.Actor{Type: pvekeep.ActorClient, ID: b.clientID} }
)

// The admin tab's methods are the panel's admins' and system's only: the
// service's own client is refused, and nothing changes.
func TestAdminMethodsRefuseClients(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	bk := b.backupOnStorage(t)
	if _, err := b.svc.Overview(ctx, b.as(someClient(b))); pvekeep.ReasonOf(err) != pvekeep.ReasonForbidden {
		t.Errorf("overview as the client: err = %v, want forbidden", err)
	}
	if _, err := b.svc.SelectBackup(ctx, b.as(someClient(b)), bk.ID); pvekeep.ReasonOf(err) != pvekeep.ReasonForbidden {
		t.Errorf("select as the client: err = %v, want forbidden", err)
	}
	for _, a := range []pvekeep.Actor{anAdmin, theSystem} {
		o, err := b.svc.Overview(ctx, b.as(a))
		must(t, err)
		if o.SelectedBackupID != 0 {
			t.Errorf("overview as %s: selected %d after a refused selection, want 0", a.Type, o.SelectedBackupID)
		}
	}
}

// admin.select_backup records the pick for the admin buttons, clears it
// with 0, and refuses another service's backup as not found, keeping the
// pick it had.
func TestSelectBackupKeepsToTheServicesOwnBackups(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	mine := b.backupOnStorage(t)

	other := *b
	sid, err := b.seed.Service(ctx, seed.Service{ClientID: b.clientID, ProductID: b.productID, ServerID: b.server.ID, VMID: "101"})
	must(t, err)
	other.service = pvekeep.ServiceID(sid)
	theirs := other.backupOnStorage(t)

	got, err := b.svc.SelectBackup(ctx, b.as(anAdmin), mine.ID)
	must(t, err)
	if got != mine.ID {
		t.Fatalf("selected %d, want %d", got, mine.ID)
	}
	if _, err := b.svc.SelectBackup(ctx, b.as(anAdmin), theirs.ID); pvekeep.ReasonOf(err) != pvekeep.ReasonNotFound {
		t.Errorf("selecting another service's backup: err = %v, want not_found", err)
	}
	if _, err := b.svc.SelectBackup(ctx, b.as(anAdmin), -1); pvekeep.ReasonOf(err) != pvekeep.ReasonInvalidInput {
		t.Errorf("selecting -1: err = %v, want invalid_input", err)
	}
	o, err := b.svc.Overview(ctx, b.as(anAdmin))
	must(t, err)
	if o.SelectedBackupID != mine.ID {
		t.Errorf("selected after the refusals = %d, want still %d", o.SelectedBackupID, mine.ID)
	}
	if _, err := b.svc.SelectBackup(ctx, b.as(anAdmin), 0); err != nil {
		t.Fatal(err)
	}
	if o, err = b.svc.Overview(ctx, b.as(anAdmin)); err != nil || o.SelectedBackupID != 0 {
		t.Errorf("selected after clearing = %d, %v; want 0", o.SelectedBackupID, err)
	}
}

// A picked backup that was removed since is no longer offered as picked.
func TestOverviewForgetsAPickedBackupOnceRemoved(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	bk := b.backupOnStorage(t)
	_, err := b.svc.SelectBackup(ctx, b.as(anAdmin), bk.ID)
	must(t, err)
	_, err = b.svc.RemoveBackup(ctx, b.as(anAdmin), bk.ID)
	must(t, err)
	b.drain(t)
	o, err := b.svc.Overview(ctx, b.as(anAdmin))
	must(t, err)
	if o.SelectedBackupID != 0 || len(o.Backups) != 0 {
		t.Errorf("after removal: selected %d, backups %d; want 0 and none", o.SelectedBackupID, len(o.Backups))
	}
	if _, err := b.svc.SelectBackup(ctx, b.as(anAdmin), bk.ID); pvekeep.ReasonOf(err) != pvekeep.ReasonInvalidState {
		t.Errorf("selecting a removed backup: err = %v, want invalid_state", err)
	}
}

// The overview shows the VM as last seen, the backups, the last jobs with
// their errors and a failed restore, from the database alone.
func TestOverviewShowsJobsBackupsAndAFailedRestore(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	bk := b.backupOnStorage(t)
	b.breakNextRestore(t)
	job, err := b.svc.RestoreBackup(ctx, b.call(), bk.ID, "")
	must(t, err)
	b.drain(t)
	_, err = b.svc.Tick(ctx, []pvekeep.Server{b.server}, 0)
	must(t, err)

	pc := b.countingService(service.Config{})
	o, err := pc.svc.Overview(ctx, b.as(anAdmin))
	must(t, err)
	if n := pc.dials.Load(); n != 0 {
		t.Errorf("admin.overview connected to Proxmox %d times, want never", n)
	}
	if o.Status.VMID != 100 || o.Status.CheckedAt == nil {
		t.Errorf("status = %+v, want vm 100 with a checked_at", o.Status)
	}
	if len(o.Backups) != 1 || o.Backups[0].ID != bk.ID || o.Backups[0].Volid == "" {
		t.Errorf("backups = %+v, want %d with its volid", o.Backups, bk.ID)
	}
	if len(o.Jobs) != 2 || o.Jobs[0].ID != job.ID || o.Jobs[0].Error == "" {
		t.Errorf("jobs = %+v, want the failed restore %d (with its error) first, then the backup", o.Jobs, job.ID)
	}
	if o.FailedRestore == nil || o.FailedRestore.ID != job.ID {
		t.Errorf("failed restore = %+v, want %d", o.FailedRestore, job.ID)
	}
}

// A product whose settings cannot be read fails the client's page, but
// the admin's overview still shows the service, and why.
func TestOverviewShowsAServiceWhoseProductIsMisconfigured(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	must(t, b.seed.SetProductSetting(ctx, b.productID, 2, "many"))
	if _, err := b.svc.ListBackups(ctx, b.call()); err == nil {
		t.Fatal("backups.list of a misconfigured product answered")
	}
	o, err := b.svc.Overview(ctx, b.as(anAdmin))
	must(t, err)
	if o.Status.VMID != 100 || !strings.Contains(o.SettingsError, "many") {
		t.Errorf("overview = vmid %d, settings error %q; want vm 100 and the setting's problem", o.Status.VMID, o.SettingsError)
	}
}
