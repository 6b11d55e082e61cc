package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// EmailStatus is the life of one job email.
type EmailStatus string

const (
	EmailPending EmailStatus = "pending" // reserved, not (yet) handed to SMTP
	EmailSent    EmailStatus = "sent"
	EmailFailed  EmailStatus = "failed"
	// EmailSkipped is an email that is not to be sent: the client opted out
	// of product emails, or has no address. Error says which.
	EmailSkipped EmailStatus = "skipped"
)

// Email is one email a job sends (mod_pvekeep_emails), at most one per
// (job, kind).
type Email struct {
	ID        int64
	JobID     pvekeep.JobID
	Kind      string // e.g. "backup.restored"
	Recipient string
	Subject   string
	Status    EmailStatus
	// Attempts counts the sends begun (each claim of the row).
	Attempts int
	// Error is why it is not sent (yet): the last failure, or why it
	// waits (no SMTP settings) or was skipped.
	Error       string
	SentAt      *time.Time
	TblEmailsID int64 // the copy logged in WHMCS's tblemails, 0 = none
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

const emailColumns = `id, job_id, kind, recipient, subject, status, attempts, COALESCE(error, ''), sent_at,
COALESCE(tblemails_id, 0), created_at, updated_at`

func scanEmail(r scanner) (Email, error) {
	var e Email
	err := r.Scan(&e.ID, &e.JobID, &e.Kind, &e.Recipient, &e.Subject, &e.Status, &e.Attempts, &e.Error, &e.SentAt,
		&e.TblEmailsID, &e.CreatedAt, &e.UpdatedAt)
	return e, err
}

// ReserveEmail records that job e.JobID is about to send the e.Kind email
// (status pending). created is false when a row for (job, kind) already
// exists: it is returned instead, and the caller sends only if that row is
// not sent (a retried step never mails twice).
func (s *Store) ReserveEmail(ctx context.Context, e Email) (Email, bool, error) {
	if e.JobID <= 0 || e.Kind == "" || e.CreatedAt.IsZero() {
		return Email{}, false, fmt.Errorf("reserve email for job %d: job id, kind and created_at are required", e.JobID)
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO mod_pvekeep_emails
(job_id, kind, recipient, subject, status, created_at, updated_at) VALUES (?, ?, ?, ?, 'pending', ?, ?)`,
		e.JobID, e.Kind, e.Recipient, e.Subject, dbTime(e.CreatedAt), dbTime(e.CreatedAt))
	created := true
	var id int64
	switch {
	case err == nil:
		if id, err = res.LastInsertId(); err != nil {
			return Email{}, false, fmt.Errorf("reserve %s email for job %d: %w", e.Kind, e.JobID, classify(err))
		}
	case mysqlErrorNumber(err) == erDupEntry:
		created = false
	default:
		return Email{}, false, fmt.Errorf("reserve %s email for job %d: %w", e.Kind, e.JobID, classify(err))
	}
	q := "SELECT " + emailColumns + " FROM mod_pvekeep_emails WHERE job_id = ? AND kind = ?"
	args := []any{e.JobID, e.Kind}
	if created {
		q, args = "SELECT "+emailColumns+" FROM mod_pvekeep_emails WHERE id = ?", []any{id}
	}
	got, err := scanEmail(s.db.QueryRowContext(ctx, q, args...))
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			err = ErrNotFound
		}
		return Email{}, false, fmt.Errorf("reserve %s email for job %d: %w", e.Kind, e.JobID, classify(err))
	}
	return got, created, nil
}

// MarkEmailSent records a successful send (and the tblemails copy, 0 = none).
func (s *Store) MarkEmailSent(ctx context.Context, id int64, sentAt time.Time, tblEmailsID int64) error {
	var tbl any
	if tblEmailsID > 0 {
		tbl = tblEmailsID
	}
	return s.markEmail(ctx, id, `status = 'sent', error = NULL, sent_at = ?, tblemails_id = ?, updated_at = ?`,
		dbTime(sentAt), tbl, dbTime(sentAt))
}

// MarkEmailFailed records a failed send; a later retry may reserve it again
// only by sending and calling MarkEmailSent.
func (s *Store) MarkEmailFailed(ctx context.Context, id int64, reason string, now time.Time) error {
	return s.markEmail(ctx, id, `status = 'failed', error = ?, updated_at = ?`, reason, dbTime(now))
}

// MarkEmailSkipped records that a pending email is not to be sent, and
// why (the client opted out of product emails, or has no address).
func (s *Store) MarkEmailSkipped(ctx context.Context, id int64, reason string, now time.Time) error {
	return s.markEmail(ctx, id, `status = 'skipped', error = ?, updated_at = ?`, reason, dbTime(now))
}

// NoteEmailWaiting records why a pending email is not sent yet (no SMTP
// settings, or a temporary failure) without releasing or taking it: it
// stays pending for the outbox. A row no longer pending is left alone.
func (s *Store) NoteEmailWaiting(ctx context.Context, id int64, reason string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE mod_pvekeep_emails SET error = ? WHERE id = ? AND status = 'pending'`,
		reason, id); err != nil {
		return fmt.Errorf("update email %d: %w", id, classify(err))
	}
	return nil
}

func (s *Store) markEmail(ctx context.Context, id int64, set string, args ...any) error {
	res, err := s.db.ExecContext(ctx, "UPDATE mod_pvekeep_emails SET "+set+" WHERE id = ?", append(args, id)...)
	if err != nil {
		return fmt.Errorf("update email %d: %w", id, classify(err))
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("update email %d: %w", id, classify(err))
	} else if n != 1 {
		return fmt.Errorf("update email %d: %w", id, ErrNotFound)
	}
	return nil
}
