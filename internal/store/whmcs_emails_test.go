package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/store"
)

// tblemailsRow is one row of WHMCS's email log as the test reads it back.
type tblemailsRow struct {
	UserID                              int64
	Subject, Message, Date, To, CC, BCC string
	Attachments, FailureReason          string
	Pending, Failed, RetryCount         int
	CampaignID                          int64
	MessageDataNull                     bool
	CreatedAt, UpdatedAt                string
}

func readTblemails(t *testing.T, b *testBundle, id int64) tblemailsRow {
	t.Helper()
	var r tblemailsRow
	err := b.db.Store.DB().QueryRowContext(context.Background(), "SELECT userid, subject, message, "+
		"DATE_FORMAT(`date`, '%Y-%m-%d %H:%i:%s'), `to`, cc, bcc, attachments, failure_reason, pending, failed, retry_count, "+
		"campaign_id, message_data IS NULL, DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:%s'), DATE_FORMAT(updated_at, '%Y-%m-%d %H:%i:%s') "+
		"FROM tblemails WHERE id = ?", id).Scan(&r.UserID, &r.Subject, &r.Message, &r.Date, &r.To, &r.CC, &r.BCC,
		&r.Attachments, &r.FailureReason, &r.Pending, &r.Failed, &r.RetryCount, &r.CampaignID, &r.MessageDataNull,
		&r.CreatedAt, &r.UpdatedAt)
	if err != nil {
		t.Fatalf("read tblemails %d: %v", id, err)
	}
	return r
}

func countTblemails(t *testing.T, b *testBundle) int {
	t.Helper()
	var n int
	if err := b.db.Store.DB().QueryRowContext(context.Background(), "SELECT COUNT(*) FROM tblemails").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestLogClientEmailWritesARowLikeWHMCS(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	at := time.Date(2025, 3, 2, 10, 5, 7, 999, time.UTC)
	id, err := s.LogClientEmail(context.Background(), store.ClientEmail{ClientID: b.fx.ClientID, To: "ada@example.test",
		Subject: "Ваш сервер web1 восстановлен", Message: "<p>Sicherung wiederhergestellt: Änderungen</p>", Date: at})
	if err != nil {
		t.Fatal(err)
	}
	got := readTblemails(t, b, id)
	want := tblemailsRow{UserID: b.fx.ClientID, Subject: "Ваш сервер web1 восстановлен",
		Message: "<p>Sicherung wiederhergestellt: Änderungen</p>", Date: "2025-03-02 10:05:07", To: "ada@example.test",
		Attachments: "[]", MessageDataNull: true, CreatedAt: "2025-03-02 10:05:07", UpdatedAt: "2025-03-02 10:05:07"}
	if got != want {
		t.Errorf("tblemails row\n got %+v\nwant %+v", got, want)
	}
}

func TestLogClientEmailKeepsTheWallClockOfTheGivenZone(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skipf("no tzdata: %v", err)
	}
	at := time.Date(2025, 3, 2, 10, 5, 7, 0, time.UTC).In(berlin)
	id, err := s.LogClientEmail(context.Background(), store.ClientEmail{ClientID: b.fx.ClientID, To: "a@example.test", Subject: "s", Message: "m", Date: at})
	if err != nil {
		t.Fatal(err)
	}
	if got := readTblemails(t, b, id).Date; got != "2025-03-02 11:05:07" {
		t.Errorf("date %s, want Berlin wall time 2025-03-02 11:05:07", got)
	}
}

func TestLogClientEmailFitsEmojiIntoWHMCSUtf8mb3(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	id, err := s.LogClientEmail(context.Background(), store.ClientEmail{ClientID: b.fx.ClientID, To: "a@example.test",
		Subject: "Restored 🎉 web1", Message: "<p>note: 🎉 ok</p>", Date: t0})
	if err != nil {
		t.Fatalf("strict sql_mode rejected it: %v", err)
	}
	got := readTblemails(t, b, id)
	if got.Subject != "Restored \uFFFD web1" {
		t.Errorf("subject %q", got.Subject)
	}
	if got.Message != "<p>note: &#x1F389; ok</p>" {
		t.Errorf("message %q, want the emoji as a character reference", got.Message)
	}
}

func TestLogClientEmailRefusesIncompleteEntries(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ok := store.ClientEmail{ClientID: b.fx.ClientID, To: "a@example.test", Subject: "s", Message: "m", Date: t0}
	tests := []struct {
		name   string
		change func(*store.ClientEmail)
	}{
		{"no client", func(e *store.ClientEmail) { e.ClientID = 0 }},
		{"no recipient", func(e *store.ClientEmail) { e.To = " " }},
		{"no date", func(e *store.ClientEmail) { e.Date = time.Time{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ok
			tt.change(&e)
			if _, err := s.LogClientEmail(context.Background(), e); err == nil {
				t.Fatal("logged")
			}
		})
	}
	if n := countTblemails(t, b); n != 0 {
		t.Errorf("%d rows written", n)
	}
}

// reservedEmail reserves the backup_restored email of a fresh job on
// service i (one active job per service).
func reservedEmail(t *testing.T, s *store.Store, b *testBundle, i int) store.Email {
	t.Helper()
	j, _, _, err := s.EnqueueBackupCreate(context.Background(), b.newCreate(i, t0, 5))
	if err != nil {
		t.Fatal(err)
	}
	e, _, err := s.ReserveEmail(context.Background(), store.Email{JobID: j.ID, Kind: "backup_restored",
		Recipient: "ada@example.test", Subject: "Backup restored", CreatedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestMarkEmailSentAndLogLinksBothRowsOnce(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	e := reservedEmail(t, s, b, 0)
	ce := store.ClientEmail{ClientID: b.fx.ClientID, To: "ada@example.test", Subject: "Backup restored", Message: "<p>x</p>", Date: t0}
	sentAt := t0.Add(time.Second)
	if err := s.MarkEmailSentAndLog(ctx, e.ID, sentAt, ce); err != nil {
		t.Fatal(err)
	}
	got, created, err := s.ReserveEmail(ctx, store.Email{JobID: e.JobID, Kind: e.Kind, CreatedAt: t0})
	if err != nil || created {
		t.Fatalf("re-reserve: created=%v err=%v", created, err)
	}
	if got.Status != store.EmailSent || got.SentAt == nil || !got.SentAt.Equal(sentAt.Truncate(time.Microsecond)) || got.TblEmailsID == 0 {
		t.Fatalf("row after mark: %+v", got)
	}
	if r := readTblemails(t, b, got.TblEmailsID); r.Subject != "Backup restored" || r.UserID != b.fx.ClientID {
		t.Errorf("linked tblemails row %+v", r)
	}

	// A retried step marks again: no second log entry, the link stays.
	if err := s.MarkEmailSentAndLog(ctx, e.ID, sentAt.Add(time.Minute), ce); err != nil {
		t.Fatalf("second mark: %v", err)
	}
	if n := countTblemails(t, b); n != 1 {
		t.Errorf("%d tblemails rows after a repeated mark, want 1", n)
	}
	again, _, _ := s.ReserveEmail(ctx, store.Email{JobID: e.JobID, Kind: e.Kind, CreatedAt: t0})
	if again.TblEmailsID != got.TblEmailsID || !again.SentAt.Equal(*got.SentAt) {
		t.Errorf("repeated mark changed the row: %+v, was %+v", again, got)
	}
}

func TestMarkEmailSentAndLogIsAllOrNothing(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	ce := store.ClientEmail{ClientID: b.fx.ClientID, To: "ada@example.test", Subject: "s", Message: "m", Date: t0}
	tests := []struct {
		name   string
		sentAt time.Time
		ce     func(store.ClientEmail) store.ClientEmail
	}{
		// the log insert fails: nothing is marked
		{"log entry too long", t0, func(c store.ClientEmail) store.ClientEmail { c.Subject = strings.Repeat("x", 70000); return c }},
		{"log entry invalid", t0, func(c store.ClientEmail) store.ClientEmail { c.ClientID = 0; return c }},
		// the mark fails after the insert: the log entry is rolled back
		{"sent_at out of range", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), func(c store.ClientEmail) store.ClientEmail { return c }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := reservedEmail(t, s, b, i)
			if err := s.MarkEmailSentAndLog(ctx, e.ID, tt.sentAt, tt.ce(ce)); err == nil {
				t.Fatal("MarkEmailSentAndLog succeeded")
			}
			got, _, err := s.ReserveEmail(ctx, store.Email{JobID: e.JobID, Kind: e.Kind, CreatedAt: t0})
			if err != nil || got.Status != store.EmailPending || got.TblEmailsID != 0 {
				t.Errorf("row after a failed mark: %+v err=%v, want pending and unlinked", got, err)
			}
			if n := countTblemails(t, b); n != 0 {
				t.Errorf("%d tblemails rows after a failed mark", n)
			}
		})
	}
	if err := s.MarkEmailSentAndLog(ctx, 999999, t0, ce); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown email: %v, want ErrNotFound", err)
	}
	if n := countTblemails(t, b); n != 0 {
		t.Errorf("%d tblemails rows after marking an unknown email", n)
	}
}

func TestDefaultClientLanguageReadsThePanelSetting(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	if _, err := b.db.Store.DB().ExecContext(ctx, "DELETE FROM tblconfiguration WHERE setting = 'Language'"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.DefaultClientLanguage(ctx); err != nil || got != "" {
		t.Errorf("without the setting: %q, %v; want \"\"", got, err)
	}
	if _, err := b.db.Store.DB().ExecContext(ctx,
		"INSERT INTO tblconfiguration (setting, value, created_at, updated_at) VALUES ('Language', ' german ', NOW(), NOW())"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.DefaultClientLanguage(ctx); err != nil || got != "german" {
		t.Errorf("with Language=german: %q, %v", got, err)
	}
}
