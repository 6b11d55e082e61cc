package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
)

// ClientEmail is a copy of an email sent to a client, for WHMCS's email
// log (tblemails), which the admin area shows under the client's Emails
// tab and the client area under Email History.
type ClientEmail struct {
	ClientID int64  // tblclients.id
	To       string // the recipient's address
	Subject  string
	Message  string // the HTML body, as WHMCS logs its own emails
	// Date is when it was sent. WHMCS writes this column in the panel's
	// (PHP's) local time, so pass the time in that zone when it is known;
	// it is stored as the wall-clock time of Date's own location.
	Date time.Time
}

// whmcsDateTime is how WHMCS writes DATETIME and TIMESTAMP columns: the
// local wall-clock time, no zone.
const whmcsDateTime = "2006-01-02 15:04:05"

func (e ClientEmail) validate() error {
	switch {
	case e.ClientID <= 0:
		return errors.New("client id must be positive")
	case strings.TrimSpace(e.To) == "":
		return errors.New("recipient is required")
	case e.Date.IsZero():
		return errors.New("date is required")
	}
	return nil
}

// logClientEmailSQL fills every column the way WHMCS's own logging of a
// sent client email does: not pending, not failed, no cc/bcc, no
// attachments (WHMCS keeps a JSON list there, "[]" when empty), no
// campaign.
const logClientEmailSQL = "INSERT INTO tblemails " +
	"(userid, subject, message, `date`, `to`, cc, bcc, attachments, pending, message_data, " +
	"failed, failure_reason, retry_count, created_at, updated_at, campaign_id) " +
	"VALUES (?, ?, ?, ?, ?, '', '', '[]', 0, NULL, 0, '', 0, ?, ?, 0)"

func logClientEmail(ctx context.Context, ex sqlx.ExecerContext, e ClientEmail) (int64, error) {
	if err := e.validate(); err != nil {
		return 0, err
	}
	at := e.Date.Format(whmcsDateTime)
	res, err := ex.ExecContext(ctx, logClientEmailSQL,
		e.ClientID, basicPlane(e.Subject, false), basicPlane(e.Message, true), at, basicPlane(e.To, false), at, at)
	if err != nil {
		return 0, classify(err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, classify(err)
	}
	return id, nil
}

// LogClientEmail records e in tblemails and returns the new row's id.
func (s *Store) LogClientEmail(ctx context.Context, e ClientEmail) (int64, error) {
	id, err := logClientEmail(ctx, s.db, e)
	if err != nil {
		return 0, fmt.Errorf("log email to client %d: %w", e.ClientID, err)
	}
	return id, nil
}

// MarkEmailSentAndLog marks the mod_pvekeep_emails row id sent and logs e
// in tblemails in one transaction, so the WHMCS email log and the plugin's
// sent mark never disagree. It is idempotent: for a row already marked
// sent it does nothing (no second log entry). An unknown id is
// ErrNotFound.
func (s *Store) MarkEmailSentAndLog(ctx context.Context, id int64, sentAt time.Time, e ClientEmail) error {
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var status EmailStatus
		err := tx.GetContext(ctx, &status, "SELECT status FROM mod_pvekeep_emails WHERE id = ? FOR UPDATE", id)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return classify(err)
		}
		if status == EmailSent {
			return nil
		}
		tblID, err := logClientEmail(ctx, tx, e)
		if err != nil {
			return fmt.Errorf("log in tblemails: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE mod_pvekeep_emails
SET status = 'sent', error = NULL, sent_at = ?, tblemails_id = ?, updated_at = ? WHERE id = ?`,
			dbTime(sentAt), tblID, dbTime(sentAt), id); err != nil {
			return classify(err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark email %d sent: %w", id, err)
	}
	return nil
}

// DefaultClientLanguage is the panel's default language (tblconfiguration
// "Language", e.g. "english"), which WHMCS uses for a client whose
// tblclients.language is empty. "" when the setting is missing.
func (s *Store) DefaultClientLanguage(ctx context.Context) (string, error) {
	var v string
	err := s.db.GetContext(ctx, &v, "SELECT value FROM tblconfiguration WHERE setting = 'Language'")
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read default language: %w", classify(err))
	}
	return strings.TrimSpace(v), nil
}

// basicPlane makes s fit WHMCS's utf8mb3 tables, which reject characters
// beyond the Basic Multilingual Plane (emoji) under strict sql_mode: in
// HTML they become numeric character references, which show the same;
// in plain text U+FFFD. Invalid UTF-8 becomes U+FFFD too.
func basicPlane(s string, html bool) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r > 0xFFFF || r == utf8.RuneError }) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r > 0xFFFF && html:
			fmt.Fprintf(&b, "&#x%X;", r)
		case r > 0xFFFF:
			b.WriteRune(utf8.RuneError)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
