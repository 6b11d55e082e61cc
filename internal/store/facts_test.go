package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/seed"
	"github.com/pvekeep/pvekeep/internal/store"
)

// Facts saved later but seen earlier (a tick's answer arriving after a
// click's) never overwrite newer ones.
func TestSaveVMFactsKeepsTheNewerFacts(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	newer := store.VMFacts{ServiceID: b.service(0), VMID: 100, Node: "pve2", Power: "stopped", Lock: "backup", CheckedAt: t0.Add(time.Minute)}
	older := store.VMFacts{ServiceID: b.service(0), VMID: 100, Node: "pve1", Power: "running", CheckedAt: t0}
	if err := s.SaveVMFacts(ctx, newer); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveVMFacts(ctx, older, store.VMFacts{ServiceID: b.service(1), VMID: 101, Power: "missing", CheckedAt: t0}); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.VMFacts(ctx, b.service(0))
	if err != nil || !ok {
		t.Fatalf("VMFacts() = %v, %v", ok, err)
	}
	if got.Node != "pve2" || got.Power != "stopped" || got.Lock != "backup" || !got.CheckedAt.Equal(newer.CheckedAt.Truncate(time.Microsecond)) {
		t.Errorf("facts = %+v, want the newer %+v", got, newer)
	}
	if got, ok, err := s.VMFacts(ctx, b.service(1)); err != nil || !ok || got.Power != "missing" {
		t.Errorf("second service's facts = %+v, %v, %v; want missing", got, ok, err)
	}
	if _, ok, err := s.VMFacts(ctx, b.service(2)); err != nil || ok {
		t.Errorf("never-seen service: ok = %v, err = %v; want no facts", ok, err)
	}
}

// ServicesOnServers finds the VM of each Active or Suspended service of the
// servers, bound or from the custom field, and skips the rest.
func TestServicesOnServersListsTheServersLiveVMs(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	if err := s.SetServiceVMID(ctx, b.service(1), 555); err != nil {
		t.Fatal(err)
	}
	if err := b.seed.SetServiceStatus(ctx, int64(b.service(2)), "Terminated"); err != nil {
		t.Fatal(err)
	}
	otherServer, err := b.seed.Server(ctx, seed.Server{Hostname: "pve-other"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.seed.Service(ctx, seed.Service{ClientID: b.fx.ClientID, ProductID: b.fx.ProductID, ServerID: otherServer, VMID: "700"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.ServicesOnServers(ctx, []int64{b.fx.ServerID})
	if err != nil {
		t.Fatal(err)
	}
	want := []store.ServiceVM{
		{ServiceID: b.service(0), ServerID: b.fx.ServerID, VMID: 100},
		{ServiceID: b.service(1), ServerID: b.fx.ServerID, VMID: 555},
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("ServicesOnServers() = %+v, want %+v", got, want)
	}
}

// WHMCS's email preferences: "product" 0 (in any of the spellings WHMCS
// has stored) opts out; missing, 1 or unreadable does not.
func TestProductEmailsOptOutReadsWHMCSPreferences(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	cases := []struct {
		prefs any // nil = NULL
		want  bool
	}{
		{nil, false},
		{`{"general":1,"invoice":1,"support":1,"product":1,"domain":1,"affiliate":1}`, false},
		{`{"general":1,"invoice":1,"support":1,"product":0,"domain":1,"affiliate":1}`, true},
		{`{"product":false}`, true},
		{`{"product":"0"}`, true},
		{`{"product":"1"}`, false},
		{`{"general":0}`, false},
		{`not json`, false},
	}
	for _, tc := range cases {
		if _, err := b.db.Store.DB().ExecContext(ctx, "UPDATE tblclients SET email_preferences = ? WHERE id = ?", tc.prefs, b.fx.ClientID); err != nil {
			t.Fatal(err)
		}
		got, err := s.ProductEmailsOptOut(ctx, b.fx.ClientID)
		if err != nil || got != tc.want {
			t.Errorf("email_preferences %v: opted out = %v, %v; want %v", tc.prefs, got, err, tc.want)
		}
	}
}

// The admin's pick is one of the service's own backups: another service's
// is ErrNotFound and changes nothing; 0 clears.
func TestSelectBackupRefusesAnotherServicesBackup(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	mine := b.availableBackup(t, s, 0, t0)
	theirs := b.availableBackup(t, s, 1, t0)
	if err := s.SelectBackup(ctx, b.service(0), mine.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.SelectBackup(ctx, b.service(0), theirs.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SelectBackup(another service's) = %v, want ErrNotFound", err)
	}
	if got, err := s.SelectedBackup(ctx, b.service(0)); err != nil || got != mine.ID {
		t.Errorf("SelectedBackup() = %d, %v; want %d", got, err, mine.ID)
	}
	if err := s.SelectBackup(ctx, b.service(0), 0); err != nil {
		t.Fatal(err)
	}
	if got, err := s.SelectedBackup(ctx, b.service(0)); err != nil || got != 0 {
		t.Errorf("SelectedBackup() after clearing = %d, %v; want 0", got, err)
	}
	if got, err := s.SelectedBackup(ctx, b.service(2)); err != nil || got != pvekeep.BackupID(0) {
		t.Errorf("SelectedBackup() of a service without a row = %d, %v; want 0", got, err)
	}
}

// An email that waits for SMTP settings (never claimed, a reason noted)
// is for the next sender at once; one a sender claimed only once idle.
func TestPendingEmailsOffersEmailsWaitingForSMTPAtOnce(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	waiting := b.availableBackup(t, s, 0, t0)
	claimed := b.availableBackup(t, s, 1, t0)
	w, _, err := s.ReserveEmail(ctx, store.Email{JobID: waiting.JobID, Kind: "backup_restored", CreatedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := s.ReserveEmail(ctx, store.Email{JobID: claimed.JobID, Kind: "backup_restored", CreatedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.NoteEmailWaiting(ctx, w.ID, "no SMTP settings"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.ClaimEmail(ctx, c, t0); err != nil || !ok {
		t.Fatalf("ClaimEmail() = %v, %v", ok, err)
	}
	got, err := s.PendingEmails(ctx, t0, 10)
	if err != nil || len(got) != 1 || got[0].ID != w.ID || got[0].Error != "no SMTP settings" || got[0].Attempts != 0 {
		t.Fatalf("PendingEmails(before idle) = %+v, %v; want only the waiting one", got, err)
	}
	if err := s.MarkEmailSkipped(ctx, w.ID, "opted out", t0); err != nil {
		t.Fatal(err)
	}
	emails, err := s.ServiceEmails(ctx, b.service(0), 0)
	if err != nil || len(emails) != 1 || emails[0].Status != store.EmailSkipped || emails[0].Error != "opted out" {
		t.Errorf("ServiceEmails() = %+v, %v; want the skipped email with its reason", emails, err)
	}
	if got, err := s.PendingEmails(ctx, t0.Add(time.Hour), 10); err != nil || len(got) != 1 || got[0].ID != c.ID || got[0].Attempts != 1 {
		t.Errorf("PendingEmails(idle) = %+v, %v; want the claimed one, 1 attempt", got, err)
	}
}

// A tick over more services than one statement may carry saves them all.
func TestSaveVMFactsSavesMoreThanOneStatementHolds(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	ctx := context.Background()
	facts := make([]store.VMFacts, 2345)
	for i := range facts {
		facts[i] = store.VMFacts{ServiceID: pvekeep.ServiceID(100000 + i), VMID: pvekeep.VMID(1000 + i), Node: "pve1", Power: "running", CheckedAt: t0}
	}
	if err := s.SaveVMFacts(ctx, facts...); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 999, 1000, 2344} {
		got, ok, err := s.VMFacts(ctx, facts[i].ServiceID)
		if err != nil || !ok || got.VMID != facts[i].VMID {
			t.Errorf("facts of service %d = %+v, %v, %v; want vm %d", facts[i].ServiceID, got, ok, err, facts[i].VMID)
		}
	}
}
