package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/store"
)

func TestPendingEmailsAreClaimedByOneSender(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	bk := b.availableBackup(t, s, 0, t0)
	e, _, err := s.ReserveEmail(ctx, store.Email{JobID: bk.JobID, Kind: "backup_restored", Recipient: "a@example.test", CreatedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.PendingEmails(ctx, t0, 10); err != nil || len(got) != 0 {
		t.Fatalf("PendingEmails(before it went idle) = %v, %v; want none", got, err)
	}
	got, err := s.PendingEmails(ctx, t0.Add(time.Minute), 10)
	if err != nil || len(got) != 1 || got[0].ID != e.ID {
		t.Fatalf("PendingEmails() = %v, %v; want the reserved email", got, err)
	}
	first, err := s.ClaimEmail(ctx, got[0], t0.Add(2*time.Minute))
	if err != nil || !first {
		t.Fatalf("first ClaimEmail() = %v, %v; want true", first, err)
	}
	second, err := s.ClaimEmail(ctx, got[0], t0.Add(2*time.Minute))
	if err != nil || second {
		t.Fatalf("second ClaimEmail() with the same read = %v, %v; want false", second, err)
	}
	if err := s.MarkEmailSentAndLog(ctx, e.ID, t0.Add(3*time.Minute), store.ClientEmail{ClientID: b.fx.ClientID, To: "a@example.test", Subject: "s", Message: "m", Date: t0}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.PendingEmails(ctx, t0.Add(time.Hour), 10); err != nil || len(got) != 0 {
		t.Errorf("PendingEmails() after sending = %v, %v; want none", got, err)
	}
}
