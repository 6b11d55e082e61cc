package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// WHMCS configurable option types (tblproductconfigoptions.optiontype).
const (
	optionDropdown = 1
	optionRadio    = 2
	optionYesNo    = 3
	optionQuantity = 4
)

// serviceRow is one row of the service query: the service, its product's
// settings, its client, its vmid, and one of its configurable options (a
// service with none has one row, its option columns NULL). WHMCS keeps
// most of it in text columns; tblclients and tblproducts are LEFT JOINed,
// so a service whose product or client row is gone still reads (with
// empty values).
type serviceRow struct {
	ID          int64
	UserID      int64
	PackageID   int64
	Server      int64
	Status      string
	Domain      string
	ProductName sql.NullString
	FirstName   sql.NullString
	LastName    sql.NullString
	Email       sql.NullString
	Language    sql.NullString
	BoundVMID   sql.NullInt64
	FieldVMID   sql.NullString
	OptionName  sql.NullString
	OptionType  sql.NullString
	OptionQty   sql.NullInt64
	OptionSub   sql.NullString
}

// serviceQuery reads everything Service returns in one statement (one
// round trip: a page view pays for each), so nothing about a service is
// ever cached between calls and a changed product, binding or option
// shows on the next one.
//
// field_vmid is the value of the product custom field whose name (before
// '|') is "vmid"; the newest value row wins if WHMCS ever left two. It
// counts only when the plugin's own binding (bound_vmid) is unset.
//
// The option columns are the service's chosen configurable options,
// limited to the option groups linked to its current product: WHMCS keeps
// the rows of a previous product's options after a product change.
//
// configoption1..24 follow in order (product_settings).
var serviceQuery = func() string {
	cols := make([]string, 24)
	for i := range cols {
		cols[i] = fmt.Sprintf("COALESCE(p.configoption%d, '')", i+1)
	}
	return `
SELECT h.id, h.userid, h.packageid, h.server, h.domainstatus, h.domain,
       p.name AS product_name,
       c.firstname, c.lastname, c.email, c.language,
       ps.vmid AS bound_vmid,
       (SELECT v.value
        FROM tblcustomfields f
        JOIN tblcustomfieldsvalues v ON v.fieldid = f.id AND v.relid = h.id
        WHERE f.type = 'product' AND f.relid = h.packageid
          AND LOWER(TRIM(SUBSTRING_INDEX(f.fieldname, '|', 1))) = 'vmid'
        ORDER BY f.id, v.id DESC
        LIMIT 1) AS field_vmid,
       o.optionname AS option_name, o.optiontype AS option_type, hc.qty AS option_qty,
       COALESCE(s.optionname, '') AS option_sub,
       ` + strings.Join(cols, ", ") + `
FROM tblhosting h
LEFT JOIN tblproducts p ON p.id = h.packageid
LEFT JOIN tblclients c ON c.id = h.userid
LEFT JOIN mod_pvekeep_services ps ON ps.service_id = h.id
LEFT JOIN (tblhostingconfigoptions hc
           JOIN tblproductconfigoptions o ON o.id = hc.configid
           LEFT JOIN tblproductconfigoptionssub s ON s.id = hc.optionid AND s.configid = o.id)
  ON hc.relid = h.id
 AND o.gid IN (SELECT l.gid FROM tblproductconfiglinks l WHERE l.pid = h.packageid)
WHERE h.id = ?
ORDER BY o.order, o.id, hc.id`
}()

// Service reads what WHMCS knows about service id (see
// pvekeep.ServiceFacts), in one statement. An unknown id is ErrNotFound.
func (s *Store) Service(ctx context.Context, id pvekeep.ServiceID) (pvekeep.ServiceFacts, error) {
	rows, err := s.db.QueryContext(ctx, serviceQuery, id)
	if err != nil {
		return pvekeep.ServiceFacts{}, fmt.Errorf("read service %d: %w", id, classify(err))
	}
	defer rows.Close()
	var (
		f     pvekeep.ServiceFacts
		found bool
	)
	for rows.Next() {
		var row serviceRow
		var settings [24]string
		dest := []any{&row.ID, &row.UserID, &row.PackageID, &row.Server, &row.Status, &row.Domain,
			&row.ProductName, &row.FirstName, &row.LastName, &row.Email, &row.Language,
			&row.BoundVMID, &row.FieldVMID, &row.OptionName, &row.OptionType, &row.OptionQty, &row.OptionSub}
		for i := range settings {
			dest = append(dest, &settings[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return pvekeep.ServiceFacts{}, fmt.Errorf("read service %d: %w", id, classify(err))
		}
		if !found {
			found = true
			f = pvekeep.ServiceFacts{
				ServiceID:       pvekeep.ServiceID(row.ID),
				ClientID:        row.UserID,
				ProductID:       row.PackageID,
				ServerID:        row.Server,
				Status:          row.Status,
				Domain:          row.Domain,
				ProductName:     row.ProductName.String,
				ClientFirstName: row.FirstName.String,
				ClientLastName:  row.LastName.String,
				ClientEmail:     row.Email.String,
				ClientLanguage:  row.Language.String,
				ProductSettings: settings,
				ConfigOptions:   map[string]string{},
			}
			if row.BoundVMID.Valid && row.BoundVMID.Int64 > 0 {
				f.VMID = pvekeep.VMID(row.BoundVMID.Int64)
			} else if row.FieldVMID.Valid {
				f.VMID = parseVMID(row.FieldVMID.String)
			}
		}
		if row.OptionName.Valid {
			addConfigOption(f.ConfigOptions, row.OptionName.String, row.OptionType.String, row.OptionQty.Int64, row.OptionSub.String)
		}
	}
	if err := rows.Err(); err != nil {
		return pvekeep.ServiceFacts{}, fmt.Errorf("read service %d: %w", id, classify(err))
	}
	if !found {
		return pvekeep.ServiceFacts{}, fmt.Errorf("read service %d: %w", id, ErrNotFound)
	}
	return f, nil
}

// addConfigOption records one chosen configurable option under its name
// (before '|'): a dropdown's or radio's chosen sub-option (before '|'), a
// yes/no's or quantity's number.
func addConfigOption(out map[string]string, name, typ string, qty int64, sub string) {
	key := beforePipe(name)
	if key == "" {
		return
	}
	t, _ := strconv.Atoi(strings.TrimSpace(typ))
	switch t {
	case optionDropdown, optionRadio:
		if sub == "" {
			return // the chosen sub-option is gone; the product default applies
		}
		out[key] = beforePipe(sub)
	case optionYesNo, optionQuantity:
		out[key] = strconv.FormatInt(qty, 10)
	}
}

// beforePipe is WHMCS's "value|Display Name" convention: the part before
// the first '|', trimmed.
func beforePipe(s string) string {
	v, _, _ := strings.Cut(s, "|")
	return strings.TrimSpace(v)
}

// maxVMID is Proxmox's upper bound for guest ids.
const maxVMID = 999_999_999

// parseVMID accepts a positive decimal id (surrounding spaces allowed);
// anything else is 0, "not bound".
func parseVMID(s string) pvekeep.VMID {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n <= 0 || n > maxVMID {
		return 0
	}
	return pvekeep.VMID(n)
}

// SetServiceVMID binds service id to vmid in the plugin's own table; the
// binding wins over the product custom field. vmid 0 removes the binding
// (the custom field applies again). The time written is the database's
// UTC clock: the binding carries no business time.
func (s *Store) SetServiceVMID(ctx context.Context, id pvekeep.ServiceID, vmid pvekeep.VMID) error {
	if id <= 0 || vmid < 0 {
		return fmt.Errorf("bind service %d to vm %d: invalid id", id, vmid)
	}
	var v any
	if vmid > 0 {
		v = int64(vmid)
	}
	_, err := s.db.ExecContext(ctx, `
INSERT INTO mod_pvekeep_services (service_id, vmid, created_at, updated_at)
VALUES (?, ?, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))
ON DUPLICATE KEY UPDATE vmid = VALUES(vmid), updated_at = VALUES(updated_at)`, id, v)
	if err != nil {
		return fmt.Errorf("bind service %d to vm %d: %w", id, vmid, classify(err))
	}
	return nil
}
