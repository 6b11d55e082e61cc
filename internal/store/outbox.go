package store

import (
	"context"
	"fmt"
	"time"
)

// PendingEmails lists emails reserved but not sent that no sender is at
// work on: rows last touched before idleSince (their job finished while
// SMTP was down, or a process died between reserving and sending), and
// rows never claimed that wait for SMTP settings (attempts 0 and a reason
// noted: nobody was able to send them). Oldest first.
func (s *Store) PendingEmails(ctx context.Context, idleSince time.Time, limit int) ([]Email, error) {
	if limit <= 0 {
		limit = 20
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+emailColumns+` FROM mod_pvekeep_emails
WHERE status = 'pending' AND (updated_at < ? OR (attempts = 0 AND error IS NOT NULL)) ORDER BY id LIMIT ?`, dbTime(idleSince), limit)
	if err != nil {
		return nil, fmt.Errorf("list pending emails: %w", classify(err))
	}
	defer rows.Close()
	var out []Email
	for rows.Next() {
		e, err := scanEmail(rows)
		if err != nil {
			return nil, fmt.Errorf("list pending emails: %w", classify(err))
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list pending emails: %w", classify(err))
	}
	return out, nil
}

// ClaimEmail takes a pending email for one sender: it succeeds only if the
// row is still pending and unchanged since e was read, counts the attempt
// and marks it as touched now, so that no other sender takes it before it
// goes idle again.
func (s *Store) ClaimEmail(ctx context.Context, e Email, now time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE mod_pvekeep_emails SET updated_at = ?, attempts = attempts + 1
WHERE id = ? AND status = 'pending' AND updated_at = ? AND attempts = ?`, dbTime(now), e.ID, dbTime(e.UpdatedAt), e.Attempts)
	if err != nil {
		return false, fmt.Errorf("claim email %d: %w", e.ID, classify(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("claim email %d: %w", e.ID, classify(err))
	}
	return n == 1, nil
}
