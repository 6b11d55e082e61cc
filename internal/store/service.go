package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
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
	FieldID     sql.NullInt64
	FieldRowID  sql.NullInt64
	FieldVMID   sql.NullString
	OptionName  sql.NullString
	OptionType  sql.NullString
	OptionQty   sql.NullInt64
	OptionSub   sql.NullString
	OptionOrder sql.NullInt64
	OptionID    sql.NullInt64
	OptionRow   sql.NullInt64
}

// chosenOption is one configurable option row, with what orders it:
// WHMCS's option order, then ids (a later row of the same name wins).
type chosenOption struct {
	order, id, row int64
	name, typ, sub string
	qty            int64
}

// serviceQuery reads everything Service returns in one statement (one
// round trip: a page view pays for each), so nothing about a service is
// ever cached between calls and a changed product, binding or option
// shows on the next one.
//
// field_vmid is a value of the product custom field whose name (before
// '|') is "vmid": the first such field's newest value row wins if WHMCS
// ever left several (each is a row; the choice is made in Go). It counts
// only when the plugin's own binding (bound_vmid) is unset. A correlated
// subquery picking it in SQL cost the statement about half its time.
//
// The option columns are the service's chosen configurable options,
// limited to the option groups linked to its current product: WHMCS keeps
// the rows of a previous product's options after a product change. They
// are put in order in Go: sorting in SQL would sort the wide rows (24
// TEXT settings each), which doubled the statement's time.
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
       f.id AS field_id, v.id AS field_value_id, v.value AS field_vmid,
       o.optionname AS option_name, o.optiontype AS option_type, hc.qty AS option_qty,
       COALESCE(s.optionname, '') AS option_sub,
       o.order AS option_order, o.id AS option_id, hc.id AS option_row,
       ` + strings.Join(cols, ", ") + `
FROM tblhosting h
LEFT JOIN tblproducts p ON p.id = h.packageid
LEFT JOIN tblclients c ON c.id = h.userid
LEFT JOIN mod_pvekeep_services ps ON ps.service_id = h.id
LEFT JOIN tblcustomfields f ON f.type = 'product' AND f.relid = h.packageid
  AND LOWER(TRIM(SUBSTRING_INDEX(f.fieldname, '|', 1))) = 'vmid'
LEFT JOIN tblcustomfieldsvalues v ON v.fieldid = f.id AND v.relid = h.id
LEFT JOIN (tblhostingconfigoptions hc
           JOIN tblproductconfigoptions o ON o.id = hc.configid
           LEFT JOIN tblproductconfigoptionssub s ON s.id = hc.optionid AND s.configid = o.id)
  ON hc.relid = h.id
 AND o.gid IN (SELECT l.gid FROM tblproductconfiglinks l WHERE l.pid = h.packageid)
WHERE h.id = ?`
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
		f       pvekeep.ServiceFacts
		found   bool
		options []chosenOption
		bound   bool
		field   serviceRow // the row holding the custom field value that counts
	)
	for rows.Next() {
		var row serviceRow
		var settings [24]string
		dest := []any{&row.ID, &row.UserID, &row.PackageID, &row.Server, &row.Status, &row.Domain,
			&row.ProductName, &row.FirstName, &row.LastName, &row.Email, &row.Language,
			&row.BoundVMID, &row.FieldID, &row.FieldRowID, &row.FieldVMID, &row.OptionName, &row.OptionType, &row.OptionQty, &row.OptionSub,
			&row.OptionOrder, &row.OptionID, &row.OptionRow}
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
				bound = true
			}
		}
		if !bound && row.FieldRowID.Valid && (!field.FieldRowID.Valid || row.FieldID.Int64 < field.FieldID.Int64 ||
			row.FieldID.Int64 == field.FieldID.Int64 && row.FieldRowID.Int64 > field.FieldRowID.Int64) {
			field = row
		}
		if row.OptionName.Valid {
			options = append(options, chosenOption{
				order: row.OptionOrder.Int64, id: row.OptionID.Int64, row: row.OptionRow.Int64,
				name: row.OptionName.String, typ: row.OptionType.String, sub: row.OptionSub.String, qty: row.OptionQty.Int64,
			})
		}
	}
	if err := rows.Err(); err != nil {
		return pvekeep.ServiceFacts{}, fmt.Errorf("read service %d: %w", id, classify(err))
	}
	if !found {
		return pvekeep.ServiceFacts{}, fmt.Errorf("read service %d: %w", id, ErrNotFound)
	}
	if field.FieldRowID.Valid {
		f.VMID = parseVMID(field.FieldVMID.String)
	}
	slices.SortFunc(options, func(a, b chosenOption) int {
		return cmp.Or(cmp.Compare(a.order, b.order), cmp.Compare(a.id, b.id), cmp.Compare(a.row, b.row))
	})
	for _, o := range options {
		addConfigOption(f.ConfigOptions, o.name, o.typ, o.qty, o.sub)
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
