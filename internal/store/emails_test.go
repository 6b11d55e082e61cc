package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/store"
)

func TestReserveEmailOncePerJobAndKind(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	j, _, _, err := s.EnqueueBackupCreate(ctx, b.newCreate(0, t0, 5))
	if err != nil {
		t.Fatal(err)
	}
	e := store.Email{JobID: j.ID, Kind: "backup.restored", Recipient: "client@example.test", Subject: "Backup restored", CreatedAt: t0}
	first, created, err := s.ReserveEmail(ctx, e)
	if err != nil || !created || first.Status != store.EmailPending || first.ID == 0 {
		t.Fatalf("first reserve: %+v created=%v err=%v", first, created, err)
	}
	if err := s.MarkEmailSent(ctx, first.ID, t0.Add(time.Second), 77); err != nil {
		t.Fatal(err)
	}
	again, created, err := s.ReserveEmail(ctx, e)
	if err != nil || created || again.ID != first.ID || again.Status != store.EmailSent || again.TblEmailsID != 77 || again.SentAt == nil {
		t.Errorf("second reserve: %+v created=%v err=%v, want the sent row", again, created, err)
	}
	other := e
	other.Kind = "backup.failed"
	if _, created, err := s.ReserveEmail(ctx, other); err != nil || !created {
		t.Errorf("other kind: created=%v err=%v", created, err)
	}
	if err := s.MarkEmailFailed(ctx, 999999, "smtp down", t0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown email: %v, want ErrNotFound", err)
	}
}
