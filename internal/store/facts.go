package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// VMFacts is what Proxmox last said about a service's VM
// (mod_pvekeep_vm_facts): where it runs, its power state and Proxmox's
// lock on it, as of CheckedAt.
type VMFacts struct {
	ServiceID pvekeep.ServiceID
	VMID      pvekeep.VMID
	Node      string
	Power     string // running, stopped, paused, …, or "missing"
	Lock      string // Proxmox's lock, "" = none
	CheckedAt time.Time
}

// Limits of the columns; longer values from Proxmox are cut, not refused.
const (
	factsNodeLen  = 64
	factsPowerLen = 16
	factsLockLen  = 32
)

// VMFacts returns the cached facts of the service's VM, if Proxmox was
// ever asked about it.
func (s *Store) VMFacts(ctx context.Context, id pvekeep.ServiceID) (VMFacts, bool, error) {
	var f VMFacts
	err := s.db.QueryRowContext(ctx, `SELECT service_id, vmid, node, power, pve_lock, checked_at
FROM mod_pvekeep_vm_facts WHERE service_id = ?`, id).Scan(&f.ServiceID, &f.VMID, &f.Node, &f.Power, &f.Lock, &f.CheckedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return VMFacts{}, false, nil
	}
	if err != nil {
		return VMFacts{}, false, fmt.Errorf("read vm facts of service %d: %w", id, classify(err))
	}
	return f, true, nil
}

// factsPerStatement keeps one statement's placeholders (6 a row) well
// under MySQL's 65,535.
const factsPerStatement = 1000

// SaveVMFacts records facts, many services in one statement (a thousand
// at a time). A row already holding newer facts (a click that asked
// Proxmox while a tick's answer was on its way) keeps them.
func (s *Store) SaveVMFacts(ctx context.Context, facts ...VMFacts) error {
	for len(facts) > factsPerStatement {
		if err := s.saveVMFacts(ctx, facts[:factsPerStatement]); err != nil {
			return err
		}
		facts = facts[factsPerStatement:]
	}
	return s.saveVMFacts(ctx, facts)
}

func (s *Store) saveVMFacts(ctx context.Context, facts []VMFacts) error {
	if len(facts) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("INSERT INTO mod_pvekeep_vm_facts (service_id, vmid, node, power, pve_lock, checked_at) VALUES ")
	args := make([]any, 0, 6*len(facts))
	for i, f := range facts {
		if f.ServiceID <= 0 || f.CheckedAt.IsZero() {
			return fmt.Errorf("save vm facts: service %d: service id and checked_at are required", f.ServiceID)
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?)")
		args = append(args, f.ServiceID, f.VMID, cut(f.Node, factsNodeLen), cut(f.Power, factsPowerLen),
			cut(f.Lock, factsLockLen), dbTime(f.CheckedAt))
	}
	// checked_at last: MySQL evaluates the assignments in order, and the
	// ones before must still compare with the old value.
	b.WriteString(` ON DUPLICATE KEY UPDATE
  vmid     = IF(VALUES(checked_at) >= checked_at, VALUES(vmid), vmid),
  node     = IF(VALUES(checked_at) >= checked_at, VALUES(node), node),
  power    = IF(VALUES(checked_at) >= checked_at, VALUES(power), power),
  pve_lock = IF(VALUES(checked_at) >= checked_at, VALUES(pve_lock), pve_lock),
  checked_at = GREATEST(checked_at, VALUES(checked_at))`)
	if _, err := s.db.ExecContext(ctx, b.String(), args...); err != nil {
		return fmt.Errorf("save vm facts of %d services: %w", len(facts), classify(err))
	}
	return nil
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// ServiceVM is a service with a VM on a panel server: what a tick refreshes
// the facts of.
type ServiceVM struct {
	ServiceID pvekeep.ServiceID
	ServerID  int64
	VMID      pvekeep.VMID
}

// ServicesOnServers lists the Active and Suspended services of the given
// panel servers (tblhosting.server) that have a VM: bound in the plugin's
// table, else named by the product custom field "vmid" (as Service
// reads it). One query for all of them.
func (s *Store) ServicesOnServers(ctx context.Context, serverIDs []int64) ([]ServiceVM, error) {
	if len(serverIDs) == 0 {
		return nil, nil
	}
	args := make([]any, 0, len(serverIDs))
	for _, id := range serverIDs {
		args = append(args, id)
	}
	rows, err := s.db.QueryContext(ctx, `
SELECT h.id, h.server, ps.vmid,
  -- only for services the plugin's table does not bind: a fleet's worth
  -- of correlated lookups otherwise (a tick reads every service)
  CASE WHEN ps.vmid IS NULL OR ps.vmid <= 0 THEN
  (SELECT v.value
   FROM tblcustomfields f
   JOIN tblcustomfieldsvalues v ON v.fieldid = f.id AND v.relid = h.id
   WHERE f.type = 'product' AND f.relid = h.packageid
     AND LOWER(TRIM(SUBSTRING_INDEX(f.fieldname, '|', 1))) = 'vmid'
   ORDER BY f.id, v.id DESC
   LIMIT 1) END AS field_vmid
FROM tblhosting h
LEFT JOIN mod_pvekeep_services ps ON ps.service_id = h.id
WHERE h.server IN (`+placeholders(len(serverIDs))+`) AND h.domainstatus IN ('Active', 'Suspended')
ORDER BY h.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list services of %d servers: %w", len(serverIDs), classify(err))
	}
	defer rows.Close()
	var out []ServiceVM
	for rows.Next() {
		var (
			sv    ServiceVM
			bound sql.NullInt64
			field sql.NullString
		)
		if err := rows.Scan(&sv.ServiceID, &sv.ServerID, &bound, &field); err != nil {
			return nil, fmt.Errorf("list services of %d servers: %w", len(serverIDs), classify(err))
		}
		if bound.Valid && bound.Int64 > 0 {
			sv.VMID = pvekeep.VMID(bound.Int64)
		} else {
			sv.VMID = parseVMID(field.String)
		}
		if sv.VMID > 0 {
			out = append(out, sv)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list services of %d servers: %w", len(serverIDs), classify(err))
	}
	return out, nil
}
