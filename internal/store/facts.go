package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

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
// ever asked about it. CheckedAt is the last time Proxmox said so: the
// row's own time, or the later time of its server's last refresh when
// that refresh confirmed the row without writing it (the row is credited
// to the service's current server and the service is one a refresh
// covers).
func (s *Store) VMFacts(ctx context.Context, id pvekeep.ServiceID) (VMFacts, bool, error) {
	var f VMFacts
	err := s.db.QueryRowContext(ctx, `SELECT f.service_id, f.vmid, f.node, f.power, f.pve_lock,
  CASE WHEN f.server_id > 0 AND h.server = f.server_id AND h.domainstatus IN ('Active', 'Suspended')
    AND sw.checked_at > f.checked_at THEN sw.checked_at ELSE f.checked_at END
FROM mod_pvekeep_vm_facts f
LEFT JOIN tblhosting h ON h.id = f.service_id
LEFT JOIN mod_pvekeep_facts_sweeps sw ON sw.server_id = f.server_id
WHERE f.service_id = ?`, id).Scan(&f.ServiceID, &f.VMID, &f.Node, &f.Power, &f.Lock, &f.CheckedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return VMFacts{}, false, nil
	}
	if err != nil {
		return VMFacts{}, false, fmt.Errorf("read vm facts of service %d: %w", id, classify(err))
	}
	return f, true, nil
}

// Same reports whether two facts say the same about a VM as the database
// would store them (the columns' cuts applied), whatever their times.
func (f VMFacts) Same(g VMFacts) bool {
	return f.ServiceID == g.ServiceID && f.VMID == g.VMID &&
		cut(f.Node, factsNodeLen) == cut(g.Node, factsNodeLen) &&
		cut(f.Power, factsPowerLen) == cut(g.Power, factsPowerLen) &&
		cut(f.Lock, factsLockLen) == cut(g.Lock, factsLockLen)
}

// factsPerStatement keeps one statement's placeholders (6 a row) well
// under MySQL's 65,535.
const factsPerStatement = 1000

// SaveVMFacts records facts a click learnt, many services in one
// statement (a thousand at a time). A row already holding newer facts (a
// click that asked Proxmox while another's answer was on its way) keeps
// them. A row it writes is no server refresh's any more (server_id 0):
// the refreshes' later times are not credited to it until one confirms it.
func (s *Store) SaveVMFacts(ctx context.Context, facts ...VMFacts) error {
	return saveVMFacts(ctx, s.db, 0, facts)
}

func saveVMFacts(ctx context.Context, db sqlx.ExecerContext, serverID int64, facts []VMFacts) error {
	for len(facts) > 0 {
		n := min(len(facts), factsPerStatement)
		if err := saveVMFactsOnce(ctx, db, serverID, facts[:n]); err != nil {
			return err
		}
		facts = facts[n:]
	}
	return nil
}

func saveVMFactsOnce(ctx context.Context, db sqlx.ExecerContext, serverID int64, facts []VMFacts) error {
	var b strings.Builder
	b.WriteString("INSERT INTO mod_pvekeep_vm_facts (service_id, vmid, server_id, node, power, pve_lock, checked_at) VALUES ")
	args := make([]any, 0, 7*len(facts))
	for i, f := range facts {
		if f.ServiceID <= 0 || f.CheckedAt.IsZero() {
			return fmt.Errorf("save vm facts: service %d: service id and checked_at are required", f.ServiceID)
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?)")
		args = append(args, f.ServiceID, f.VMID, serverID, cut(f.Node, factsNodeLen), cut(f.Power, factsPowerLen),
			cut(f.Lock, factsLockLen), dbTime(f.CheckedAt))
	}
	// checked_at last: MySQL evaluates the assignments in order, and the
	// ones before must still compare with the old value.
	b.WriteString(` ON DUPLICATE KEY UPDATE
  vmid      = IF(VALUES(checked_at) >= checked_at, VALUES(vmid), vmid),
  server_id = IF(VALUES(checked_at) >= checked_at, VALUES(server_id), server_id),
  node      = IF(VALUES(checked_at) >= checked_at, VALUES(node), node),
  power     = IF(VALUES(checked_at) >= checked_at, VALUES(power), power),
  pve_lock  = IF(VALUES(checked_at) >= checked_at, VALUES(pve_lock), pve_lock),
  checked_at = GREATEST(checked_at, VALUES(checked_at))`)
	if _, err := db.ExecContext(ctx, b.String(), args...); err != nil {
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
// the facts of, with the facts stored for it when the tick read it.
type ServiceVM struct {
	ServiceID pvekeep.ServiceID
	ServerID  int64
	VMID      pvekeep.VMID
	// Stored is the service's facts row (Stored.ServiceID 0: none yet);
	// SweptBy the server whose refresh last wrote or confirmed it (0: a
	// click's, or none).
	Stored  VMFacts
	SweptBy int64
}

// ServerFacts is one panel server's part of FactsOnServers.
type ServerFacts struct {
	ServerID int64
	// Generation is that of the server's last committed refresh (0: none
	// yet); SaveFactsSweep commits only over it.
	Generation int64
	// Services are the server's Active and Suspended services that have a
	// VM, bound in the plugin's table, else named by the product custom
	// field "vmid" (as Service reads it), in service order.
	Services []ServiceVM
	// Stale are services whose rows are credited to this server's refresh
	// that no longer covers them (moved to another server, no longer
	// Active or Suspended, or without a VM).
	Stale []pvekeep.ServiceID
}

// FactsOnServers reads what a tick's refresh compares Proxmox's answer
// with, for the given panel servers (tblhosting.server): each server's
// services with their stored facts and its refresh generation. One
// statement for all of them, so rows and generations are of one moment.
func (s *Store) FactsOnServers(ctx context.Context, serverIDs []int64) (map[int64]*ServerFacts, error) {
	if len(serverIDs) == 0 {
		return nil, nil
	}
	args := make([]any, 0, 2*len(serverIDs))
	for range 2 {
		for _, id := range serverIDs {
			args = append(args, id)
		}
	}
	in := placeholders(len(serverIDs))
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
   LIMIT 1) END AS field_vmid,
  fa.vmid, fa.server_id, fa.node, fa.power, fa.pve_lock, fa.checked_at, sw.generation, 1 AS live
FROM tblhosting h
LEFT JOIN mod_pvekeep_services ps ON ps.service_id = h.id
LEFT JOIN mod_pvekeep_vm_facts fa ON fa.service_id = h.id
LEFT JOIN mod_pvekeep_facts_sweeps sw ON sw.server_id = h.server
WHERE h.server IN (`+in+`) AND h.domainstatus IN ('Active', 'Suspended')
UNION ALL
-- rows a refresh of these servers confirmed whose service it covers no more
SELECT fa.service_id, fa.server_id, NULL, NULL,
  fa.vmid, fa.server_id, fa.node, fa.power, fa.pve_lock, fa.checked_at, sw.generation, 0
FROM mod_pvekeep_vm_facts fa
LEFT JOIN tblhosting h ON h.id = fa.service_id
LEFT JOIN mod_pvekeep_facts_sweeps sw ON sw.server_id = fa.server_id
WHERE fa.server_id IN (`+in+`)
  AND NOT (h.server <=> fa.server_id AND h.domainstatus IN ('Active', 'Suspended'))
ORDER BY 1`, args...)
	if err != nil {
		return nil, fmt.Errorf("list services of %d servers: %w", len(serverIDs), classify(err))
	}
	defer rows.Close()
	out := map[int64]*ServerFacts{}
	for rows.Next() {
		var (
			sv                    ServiceVM
			bound, factsVMID, gen sql.NullInt64
			sweptBy               sql.NullInt64
			field                 sql.NullString
			node, power, lock     sql.NullString
			checked               sql.NullTime
			live                  bool
		)
		if err := rows.Scan(&sv.ServiceID, &sv.ServerID, &bound, &field,
			&factsVMID, &sweptBy, &node, &power, &lock, &checked, &gen, &live); err != nil {
			return nil, fmt.Errorf("list services of %d servers: %w", len(serverIDs), classify(err))
		}
		sf := out[sv.ServerID]
		if sf == nil {
			sf = &ServerFacts{ServerID: sv.ServerID, Generation: gen.Int64}
			out[sv.ServerID] = sf
		}
		if bound.Valid && bound.Int64 > 0 {
			sv.VMID = pvekeep.VMID(bound.Int64)
		} else {
			sv.VMID = parseVMID(field.String)
		}
		sv.SweptBy = sweptBy.Int64
		if checked.Valid {
			sv.Stored = VMFacts{ServiceID: sv.ServiceID, VMID: pvekeep.VMID(factsVMID.Int64), Node: node.String,
				Power: power.String, Lock: lock.String, CheckedAt: checked.Time}
		}
		switch {
		case live && sv.VMID > 0:
			sf.Services = append(sf.Services, sv)
		case sv.SweptBy == sv.ServerID:
			sf.Stale = append(sf.Stale, sv.ServiceID)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list services of %d servers: %w", len(serverIDs), classify(err))
	}
	return out, nil
}

// FactsSweep is what one server's refresh learnt: Proxmox's answer at
// CheckedAt, compared with the rows read at Generation.
type FactsSweep struct {
	ServerID   int64
	Generation int64
	CheckedAt  time.Time
	// Changed are the facts that differ from the rows read (or whose rows
	// were not the server's refresh's); the others are confirmed as they are.
	Changed []VMFacts
	// Stale are rows the server's refresh no longer covers.
	Stale []pvekeep.ServiceID
}

// ErrSweepLost: another refresh of the server committed since the rows
// were read; this one wrote nothing.
var ErrSweepLost = errors.New("another refresh of the server's vm facts committed first")

// SaveFactsSweep commits a server's refresh in one transaction: the
// server's refresh time and generation (only over the generation read,
// else ErrSweepLost), the changed rows, and the stale rows' credit taken
// away. The rows left alone are then the refresh's by their server_id.
// Without CheckedAt (Proxmox was not asked: the server has no service to
// ask about) it only takes the stale rows' credit away, which is always
// safe.
func (s *Store) SaveFactsSweep(ctx context.Context, sw FactsSweep) error {
	if sw.ServerID <= 0 || sw.CheckedAt.IsZero() && len(sw.Changed) > 0 {
		return fmt.Errorf("save vm facts of server %d: server id and checked_at are required", sw.ServerID)
	}
	var err error
	if sw.CheckedAt.IsZero() {
		err = s.inTx(ctx, func(tx *sqlx.Tx) error { return clearStaleFacts(ctx, tx, sw.ServerID, sw.Stale) })
	} else if len(sw.Changed) == 0 && len(sw.Stale) == 0 {
		// An idle refresh: one statement, atomic on its own.
		err = advanceSweep(ctx, s.db, sw)
	} else {
		err = s.inTx(ctx, func(tx *sqlx.Tx) error {
			if err := advanceSweep(ctx, tx, sw); err != nil {
				return err
			}
			if err := saveVMFacts(ctx, tx, sw.ServerID, sw.Changed); err != nil {
				return err
			}
			return clearStaleFacts(ctx, tx, sw.ServerID, sw.Stale)
		})
	}
	if errors.Is(err, ErrSweepLost) {
		return err
	}
	if err != nil {
		return fmt.Errorf("save vm facts of server %d: %w", sw.ServerID, classify(err))
	}
	return nil
}

// advanceSweep records the server's refresh time and its next generation,
// only over the generation the refresh read (else ErrSweepLost). In a
// transaction it holds the server's row until the commit, so a concurrent
// refresh waits, then finds the generation moved on.
func advanceSweep(ctx context.Context, db sqlx.ExecerContext, sw FactsSweep) error {
	var (
		res sql.Result
		err error
	)
	if sw.Generation == 0 {
		res, err = db.ExecContext(ctx, `INSERT IGNORE INTO mod_pvekeep_facts_sweeps (server_id, generation, checked_at)
VALUES (?, 1, ?)`, sw.ServerID, dbTime(sw.CheckedAt))
	} else {
		res, err = db.ExecContext(ctx, `UPDATE mod_pvekeep_facts_sweeps SET generation = generation + 1, checked_at = ?
WHERE server_id = ? AND generation = ?`, dbTime(sw.CheckedAt), sw.ServerID, sw.Generation)
	}
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return ErrSweepLost
	}
	return nil
}

// clearStaleFacts takes the server's refresh's credit from the rows of
// services it no longer covers.
func clearStaleFacts(ctx context.Context, tx *sqlx.Tx, serverID int64, stale []pvekeep.ServiceID) error {
	for len(stale) > 0 {
		n := min(len(stale), factsPerStatement)
		args := make([]any, 0, n+1)
		args = append(args, serverID)
		for _, id := range stale[:n] {
			args = append(args, id)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE mod_pvekeep_vm_facts SET server_id = 0
WHERE server_id = ? AND service_id IN (`+placeholders(n)+`)`, args...); err != nil {
			return err
		}
		stale = stale[n:]
	}
	return nil
}
