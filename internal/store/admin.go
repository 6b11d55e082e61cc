package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// SelectedBackup is the backup the admin picked for the service's admin
// Restore / Remove buttons (mod_pvekeep_services.selected_backup_id); 0 =
// none.
func (s *Store) SelectedBackup(ctx context.Context, id pvekeep.ServiceID) (pvekeep.BackupID, error) {
	var v sql.NullInt64
	err := s.db.GetContext(ctx, &v, "SELECT selected_backup_id FROM mod_pvekeep_services WHERE service_id = ?", id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read selected backup of service %d: %w", id, classify(err))
	}
	return pvekeep.BackupID(v.Int64), nil
}

// SelectBackup records the admin's pick; 0 clears it. The backup must be
// one of the service's own (checked in the same statement): another
// service's, or an unknown one, is ErrNotFound and changes nothing.
func (s *Store) SelectBackup(ctx context.Context, id pvekeep.ServiceID, backupID pvekeep.BackupID) error {
	if id <= 0 || backupID < 0 {
		return fmt.Errorf("select backup %d of service %d: invalid id", backupID, id)
	}
	if backupID == 0 {
		if _, err := s.db.ExecContext(ctx, `UPDATE mod_pvekeep_services
SET selected_backup_id = NULL, updated_at = UTC_TIMESTAMP(6) WHERE service_id = ?`, id); err != nil {
			return fmt.Errorf("clear selected backup of service %d: %w", id, classify(err))
		}
		return nil
	}
	// A service row may not exist yet (vmid from the custom field): it is
	// made here with vmid NULL, which keeps the custom field in charge.
	res, err := s.db.ExecContext(ctx, `
INSERT INTO mod_pvekeep_services (service_id, vmid, selected_backup_id, created_at, updated_at)
SELECT b.service_id, NULL, b.id, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6)
FROM mod_pvekeep_backups b WHERE b.id = ? AND b.service_id = ?
ON DUPLICATE KEY UPDATE selected_backup_id = VALUES(selected_backup_id), updated_at = VALUES(updated_at)`, backupID, id)
	if err != nil {
		return fmt.Errorf("select backup %d of service %d: %w", backupID, id, classify(err))
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("select backup %d of service %d: %w", backupID, id, classify(err))
	} else if n == 0 {
		return fmt.Errorf("select backup %d of service %d: %w", backupID, id, ErrNotFound)
	}
	return nil
}

// ServiceEmails lists the emails of the service's jobs, newest first, at
// most limit (0 = 10).
func (s *Store) ServiceEmails(ctx context.Context, id pvekeep.ServiceID, limit int) ([]Email, error) {
	if limit <= 0 {
		limit = 10
	}
	q := "SELECT " + emailColumns + ` FROM mod_pvekeep_emails
WHERE job_id IN (SELECT id FROM mod_pvekeep_jobs WHERE service_id = ?) ORDER BY id DESC LIMIT ?`
	rows, err := s.db.QueryContext(ctx, q, id, limit)
	if err != nil {
		return nil, fmt.Errorf("list emails of service %d: %w", id, classify(err))
	}
	defer rows.Close()
	out := []Email{}
	for rows.Next() {
		e, err := scanEmail(rows)
		if err != nil {
			return nil, fmt.Errorf("list emails of service %d: %w", id, classify(err))
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list emails of service %d: %w", id, classify(err))
	}
	return out, nil
}

// ProductEmailsOptOut reports whether the client turned product emails off
// in WHMCS (tblclients.email_preferences, a JSON object such as
// {"general":1,"product":0,…}; a missing key or column value means the
// default, which is to receive them).
func (s *Store) ProductEmailsOptOut(ctx context.Context, clientID int64) (bool, error) {
	var v sql.NullString
	err := s.db.GetContext(ctx, &v, "SELECT email_preferences FROM tblclients WHERE id = ?", clientID)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read email preferences of client %d: %w", clientID, classify(err))
	}
	return optedOut(v.String, "product"), nil
}

// optedOut reads one key of WHMCS's email preferences: off when it is 0,
// false, "0" or "" (WHMCS has stored each over the versions); on otherwise
// and when missing or unreadable.
func optedOut(prefs, key string) bool {
	var m map[string]any
	if strings.TrimSpace(prefs) == "" || json.Unmarshal([]byte(prefs), &m) != nil {
		return false
	}
	v, ok := m[key]
	if !ok || v == nil {
		return false
	}
	switch x := v.(type) {
	case bool:
		return !x
	case float64:
		return x == 0
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(x))
		return strings.TrimSpace(x) == "" || (err == nil && n == 0) || strings.EqualFold(strings.TrimSpace(x), "false")
	}
	return false
}
