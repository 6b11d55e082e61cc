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

// FactsOnServers finds the VM of each Active or Suspended service of the
// servers, bound or from the custom field, and skips the rest.
func TestFactsOnServersListsTheServersLiveVMs(t *testing.T) {
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
	got, err := s.FactsOnServers(ctx, []int64{b.fx.ServerID})
	if err != nil {
		t.Fatal(err)
	}
	want := []store.ServiceVM{
		{ServiceID: b.service(0), ServerID: b.fx.ServerID, VMID: 100},
		{ServiceID: b.service(1), ServerID: b.fx.ServerID, VMID: 555},
	}
	sf := got[b.fx.ServerID]
	if len(got) != 1 || sf == nil || len(sf.Services) != len(want) || sf.Services[0] != want[0] || sf.Services[1] != want[1] ||
		sf.Generation != 0 || len(sf.Stale) != 0 {
		t.Errorf("FactsOnServers() = %+v, want one server with %+v", got, want)
	}
}

// A refresh that changes nothing writes no facts row, yet the rows it
// confirmed read as of the refresh; rows it did not confirm (a click's
// since, a service it no longer covers) keep their own time.
func TestSaveFactsSweepCreditsTheRowsItConfirmed(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	srv := b.fx.ServerID
	read := func() *store.ServerFacts {
		t.Helper()
		got, err := s.FactsOnServers(ctx, []int64{srv})
		if err != nil {
			t.Fatal(err)
		}
		return got[srv]
	}
	checkedAt := func(i int) time.Time {
		t.Helper()
		f, ok, err := s.VMFacts(ctx, b.service(i))
		if err != nil || !ok {
			t.Fatalf("VMFacts(%d) = %v, %v", i, ok, err)
		}
		return f.CheckedAt
	}
	sf := read()
	var first []store.VMFacts
	for _, sv := range sf.Services {
		first = append(first, store.VMFacts{ServiceID: sv.ServiceID, VMID: sv.VMID, Node: "pve1", Power: "running", CheckedAt: t0})
	}
	if err := s.SaveFactsSweep(ctx, store.FactsSweep{ServerID: srv, Generation: sf.Generation, CheckedAt: t0, Changed: first}); err != nil {
		t.Fatal(err)
	}
	sf = read()
	if sf.Generation != 1 || sf.Services[0].SweptBy != srv || !sf.Services[0].Stored.Same(first[0]) {
		t.Fatalf("after the first refresh: %+v", sf)
	}

	// A click learns newer facts of service 1; service 2 is terminated.
	if err := s.SaveVMFacts(ctx, store.VMFacts{ServiceID: b.service(1), VMID: 101, Node: "pve1", Power: "stopped", CheckedAt: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := b.seed.SetServiceStatus(ctx, int64(b.service(2)), "Terminated"); err != nil {
		t.Fatal(err)
	}
	sf = read()
	if len(sf.Services) != 2 || len(sf.Stale) != 1 || sf.Stale[0] != b.service(2) || sf.Services[1].SweptBy != 0 {
		t.Fatalf("after a click and a termination: %+v", sf)
	}
	t1 := t0.Add(5 * time.Minute)
	stale := read()
	if err := s.SaveFactsSweep(ctx, store.FactsSweep{ServerID: srv, Generation: sf.Generation, CheckedAt: t1, Stale: sf.Stale}); err != nil {
		t.Fatal(err)
	}
	if got := checkedAt(0); !got.Equal(t1.Truncate(time.Microsecond)) {
		t.Errorf("confirmed row checked at %v, want the refresh's %v", got, t1)
	}
	if got := checkedAt(1); !got.Equal(t0.Add(time.Minute).Truncate(time.Microsecond)) {
		t.Errorf("the click's row checked at %v, want the click's own time", got)
	}
	if err := b.seed.SetServiceStatus(ctx, int64(b.service(2)), "Active"); err != nil {
		t.Fatal(err)
	}
	if got := checkedAt(2); !got.Equal(t0.Truncate(time.Microsecond)) {
		t.Errorf("a row the refresh no longer covered checked at %v, want its own %v", got, t0)
	}

	// A refresh that read before another one committed writes nothing.
	lost := store.FactsSweep{ServerID: srv, Generation: stale.Generation, CheckedAt: t1.Add(time.Minute),
		Changed: []store.VMFacts{{ServiceID: b.service(0), VMID: 100, Power: "missing", CheckedAt: t1.Add(time.Minute)}}}
	if err := s.SaveFactsSweep(ctx, lost); !errors.Is(err, store.ErrSweepLost) {
		t.Fatalf("SaveFactsSweep(stale generation) = %v, want ErrSweepLost", err)
	}
	if f, _, _ := s.VMFacts(ctx, b.service(0)); f.Power != "running" || !f.CheckedAt.Equal(t1.Truncate(time.Microsecond)) {
		t.Errorf("after a lost refresh: %+v, want the committed one's facts", f)
	}
	if err := s.SaveFactsSweep(ctx, store.FactsSweep{ServerID: srv, Generation: 0, CheckedAt: t1.Add(time.Minute)}); !errors.Is(err, store.ErrSweepLost) {
		t.Errorf("SaveFactsSweep(generation 0 over a recorded one) = %v, want ErrSweepLost", err)
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
