package store

import (
	"context"
	"database/sql"
	"errors"
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

// serviceRow is what the service query returns. WHMCS keeps most of it in
// text columns; tblclients and tblproducts are LEFT JOINed, so a service
// whose product or client row is gone still reads (with empty values).
type serviceRow struct {
	ID          int64          `db:"id"`
	UserID      int64          `db:"userid"`
	PackageID   int64          `db:"packageid"`
	Server      int64          `db:"server"`
	Status      string         `db:"domainstatus"`
	Domain      string         `db:"domain"`
	ProductName sql.NullString `db:"product_name"`
	FirstName   sql.NullString `db:"firstname"`
	LastName    sql.NullString `db:"lastname"`
	Email       sql.NullString `db:"email"`
	Language    sql.NullString `db:"language"`
	BoundVMID   sql.NullInt64  `db:"bound_vmid"`
}

const serviceQuery = `
SELECT h.id, h.userid, h.packageid, h.server, h.domainstatus, h.domain,
       p.name AS product_name,
       c.firstname, c.lastname, c.email, c.language,
       ps.vmid AS bound_vmid
FROM tblhosting h
LEFT JOIN tblproducts p ON p.id = h.packageid
LEFT JOIN tblclients c ON c.id = h.userid
LEFT JOIN mod_pvekeep_services ps ON ps.service_id = h.id
WHERE h.id = ?`

// productSettingsQuery reads configoption1..24 in order.
var productSettingsQuery = func() string {
	cols := make([]string, 24)
	for i := range cols {
		cols[i] = fmt.Sprintf("COALESCE(configoption%d, '')", i+1)
	}
	return "SELECT " + strings.Join(cols, ", ") + " FROM tblproducts WHERE id = ?"
}()

// vmidFieldQuery finds the value of the product custom field whose name
// (before '|') is "vmid", for one service. The newest value row wins if
// WHMCS ever left two.
const vmidFieldQuery = `
SELECT v.value
FROM tblcustomfields f
JOIN tblcustomfieldsvalues v ON v.fieldid = f.id AND v.relid = ?
WHERE f.type = 'product' AND f.relid = ?
  AND LOWER(TRIM(SUBSTRING_INDEX(f.fieldname, '|', 1))) = 'vmid'
ORDER BY f.id, v.id DESC
LIMIT 1`

// configOptionsQuery reads the service's chosen configurable options,
// limited to the option groups linked to its current product: WHMCS keeps
// the rows of a previous product's options after a product change.
const configOptionsQuery = `
SELECT o.optionname, o.optiontype, hc.qty, COALESCE(s.optionname, '') AS subname
FROM tblhostingconfigoptions hc
JOIN tblproductconfigoptions o ON o.id = hc.configid
LEFT JOIN tblproductconfigoptionssub s ON s.id = hc.optionid AND s.configid = o.id
WHERE hc.relid = ?
  AND o.gid IN (SELECT l.gid FROM tblproductconfiglinks l WHERE l.pid = ?)
ORDER BY o.order, o.id, hc.id`

// Service reads what WHMCS knows about service id (see
// pvekeep.ServiceFacts). An unknown id is ErrNotFound.
func (s *Store) Service(ctx context.Context, id pvekeep.ServiceID) (pvekeep.ServiceFacts, error) {
	var row serviceRow
	if err := s.db.GetContext(ctx, &row, serviceQuery, id); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return pvekeep.ServiceFacts{}, fmt.Errorf("read service %d: %w", id, ErrNotFound)
		}
		return pvekeep.ServiceFacts{}, fmt.Errorf("read service %d: %w", id, classify(err))
	}
	f := pvekeep.ServiceFacts{
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
		ConfigOptions:   map[string]string{},
	}

	if err := s.readProductSettings(ctx, row.PackageID, &f.ProductSettings); err != nil {
		return pvekeep.ServiceFacts{}, fmt.Errorf("read service %d: %w", id, err)
	}

	if row.BoundVMID.Valid && row.BoundVMID.Int64 > 0 {
		f.VMID = pvekeep.VMID(row.BoundVMID.Int64)
	} else {
		var v string
		err := s.db.QueryRowxContext(ctx, vmidFieldQuery, row.ID, row.PackageID).Scan(&v)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return pvekeep.ServiceFacts{}, fmt.Errorf("read service %d vmid field: %w", id, classify(err))
		default:
			f.VMID = parseVMID(v)
		}
	}

	if err := s.readConfigOptions(ctx, row.ID, row.PackageID, f.ConfigOptions); err != nil {
		return pvekeep.ServiceFacts{}, fmt.Errorf("read service %d: %w", id, err)
	}
	return f, nil
}

func (s *Store) readProductSettings(ctx context.Context, productID int64, out *[24]string) error {
	dest := make([]any, len(out))
	for i := range out {
		dest[i] = &out[i]
	}
	err := s.db.QueryRowxContext(ctx, productSettingsQuery, productID).Scan(dest...)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("read product %d settings: %w", productID, classify(err))
	}
	return nil
}

func (s *Store) readConfigOptions(ctx context.Context, serviceID, productID int64, out map[string]string) error {
	rows, err := s.db.QueryxContext(ctx, configOptionsQuery, serviceID, productID)
	if err != nil {
		return fmt.Errorf("read configurable options: %w", classify(err))
	}
	defer rows.Close()
	for rows.Next() {
		var name, typ, sub string
		var qty int64
		if err := rows.Scan(&name, &typ, &qty, &sub); err != nil {
			return fmt.Errorf("read configurable options: %w", classify(err))
		}
		key := beforePipe(name)
		if key == "" {
			continue
		}
		t, _ := strconv.Atoi(strings.TrimSpace(typ))
		switch t {
		case optionDropdown, optionRadio:
			if sub == "" {
				continue // the chosen sub-option is gone; the product default applies
			}
			out[key] = beforePipe(sub)
		case optionYesNo, optionQuantity:
			out[key] = strconv.FormatInt(qty, 10)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read configurable options: %w", classify(err))
	}
	return nil
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
