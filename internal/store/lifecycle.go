package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// ClaimVMID records that vmid goes to a new VM of service id. It is false
// when the plugin handed vmid out before (to any service, at any time):
// Proxmox's nextid reserves nothing, and this primary key is what keeps
// two concurrent creates from cloning onto one id. Claims are never
// released, so a terminated service's id never comes back through the
// plugin.
func (s *Store) ClaimVMID(ctx context.Context, vmid pvekeep.VMID, id pvekeep.ServiceID, now time.Time) (bool, error) {
	if vmid <= 0 || id <= 0 {
		return false, fmt.Errorf("claim vmid %d for service %d: invalid id", vmid, id)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO mod_pvekeep_vmids (vmid, service_id, claimed_at) VALUES (?, ?, ?)`,
		int64(vmid), id, dbTime(now))
	if mysqlErrorNumber(err) == erDupEntry {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("claim vmid %d for service %d: %w", vmid, id, classify(err))
	}
	return true, nil
}

// MaxClaimedVMID is the highest vmid the plugin ever claimed, 0 if none:
// where a search for a free id starts, so it does not walk every id the
// plugin handed out before.
func (s *Store) MaxClaimedVMID(ctx context.Context) (pvekeep.VMID, error) {
	var n sql.NullInt64
	if err := s.db.GetContext(ctx, &n, `SELECT MAX(vmid) FROM mod_pvekeep_vmids`); err != nil {
		return 0, fmt.Errorf("read highest claimed vmid: %w", classify(err))
	}
	return pvekeep.VMID(n.Int64), nil
}

// EnqueueServiceJob records a service.* job (create, suspend, unsuspend,
// change_package, terminate) in one transaction serialised per service,
// like the other enqueues: an active job of the service refuses it
// (*ActiveJobError); a known idempotency key returns the earlier job with
// existed true.
func (s *Store) EnqueueServiceJob(ctx context.Context, j pvekeep.Job) (pvekeep.Job, bool, error) {
	if err := validateNewJob(j); err != nil {
		return pvekeep.Job{}, false, fmt.Errorf("enqueue %s for service %d: %w", j.Kind, j.ServiceID, err)
	}
	var (
		job     pvekeep.Job
		existed bool
	)
	err := s.serviceTx(ctx, j.ServiceID, j.CreatedAt, func(tx *sqlx.Tx) error {
		job, existed = pvekeep.Job{}, false
		if prev, ok, err := jobByKey(ctx, tx, j.ServiceID, j.IdempotencyKey); err != nil {
			return err
		} else if ok {
			job, existed = prev, true
			return nil
		}
		if err := refuseActive(ctx, tx, j.ServiceID); err != nil {
			return err
		}
		id, err := insertJob(ctx, tx, j)
		if err != nil {
			return err
		}
		job, err = getJob(ctx, tx, "id = ?", id)
		return err
	})
	if err != nil {
		return pvekeep.Job{}, false, fmt.Errorf("enqueue %s for service %d: %w", j.Kind, j.ServiceID, err)
	}
	return job, existed, nil
}

// BindVM binds service id to vmid in the plugin's table (clearing any
// termination: the service lives again) and writes vmid into the product
// custom field named "vmid", when the product has one, for the admin to
// see. vmid 0 removes both. One transaction.
func (s *Store) BindVM(ctx context.Context, id pvekeep.ServiceID, productID int64, vmid pvekeep.VMID, now time.Time) error {
	if id <= 0 || vmid < 0 {
		return fmt.Errorf("bind service %d to vm %d: invalid id", id, vmid)
	}
	var v any
	value := ""
	if vmid > 0 {
		v, value = int64(vmid), strconv.Itoa(int(vmid))
	}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `
INSERT INTO mod_pvekeep_services (service_id, vmid, created_at, updated_at)
VALUES (?, ?, ?, ?)
ON DUPLICATE KEY UPDATE vmid = VALUES(vmid), updated_at = VALUES(updated_at),
  terminated_at = NULL, backups_purge_after = NULL, purge_error = '', purge_attempts = 0,
  purge_next_at = NULL, purge_round_at = NULL`, id, v, dbTime(now), dbTime(now)); err != nil {
			return err
		}
		var fieldID int64
		err := tx.GetContext(ctx, &fieldID, `SELECT id FROM tblcustomfields
WHERE type = 'product' AND relid = ? AND LOWER(TRIM(SUBSTRING_INDEX(fieldname, '|', 1))) = 'vmid'
ORDER BY id LIMIT 1`, productID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // no custom field: the plugin's table alone binds
		}
		if err != nil {
			return err
		}
		// WHMCS's timestamps are local TIMESTAMPs; the database's clock
		// writes them as WHMCS itself would.
		res, err := tx.ExecContext(ctx, `UPDATE tblcustomfieldsvalues SET value = ?, updated_at = NOW()
WHERE fieldid = ? AND relid = ?`, value, fieldID, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			return err
		}
		var rows int
		if err := tx.GetContext(ctx, &rows, `SELECT COUNT(*) FROM tblcustomfieldsvalues WHERE fieldid = ? AND relid = ?`, fieldID, id); err != nil || rows > 0 {
			return err // the value was already this one
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO tblcustomfieldsvalues (fieldid, relid, value, created_at, updated_at)
VALUES (?, ?, ?, NOW(), NOW())`, fieldID, id, value)
		return err
	})
	if err != nil {
		return fmt.Errorf("bind service %d to vm %d: %w", id, vmid, classify(err))
	}
	return nil
}

// MarkTerminated records that service id's VM was destroyed at and that
// its backups are to be removed once purgeAfter has passed. The binding
// stays, as history.
func (s *Store) MarkTerminated(ctx context.Context, id pvekeep.ServiceID, at, purgeAfter time.Time) error {
	_, err := s.db.ExecContext(ctx, `
INSERT INTO mod_pvekeep_services (service_id, vmid, terminated_at, backups_purge_after, created_at, updated_at)
VALUES (?, NULL, ?, ?, ?, ?)
ON DUPLICATE KEY UPDATE terminated_at = VALUES(terminated_at), backups_purge_after = VALUES(backups_purge_after),
  purge_error = '', purge_attempts = 0, purge_next_at = NULL, purge_round_at = NULL, updated_at = VALUES(updated_at)`,
		id, dbTime(at), dbTime(purgeAfter), dbTime(at), dbTime(at))
	if err != nil {
		return fmt.Errorf("mark service %d terminated: %w", id, classify(err))
	}
	return nil
}

// PurgeDue is a terminated service whose backups are due for removal.
type PurgeDue struct {
	ServiceID  pvekeep.ServiceID `db:"service_id"`
	ServerID   int64             `db:"server_id"`
	PurgeAfter time.Time         `db:"backups_purge_after"`
	Error      string            `db:"purge_error"`
	Attempts   int               `db:"purge_attempts"`
	// RoundAt is when the current round began (nil: at PurgeAfter): a
	// removal that failed since then is not tried again in this round.
	RoundAt *time.Time `db:"purge_round_at"`
}

// Round is when the current round of the purge began.
func (d PurgeDue) Round() time.Time {
	if d.RoundAt != nil && d.RoundAt.After(d.PurgeAfter) {
		return *d.RoundAt
	}
	return d.PurgeAfter
}

// PurgesDue lists terminated services on the given servers whose grace
// has passed by now, whose backups are not all removed yet and that are
// not pausing after a failed round; the one looked at least recently
// first (purge_next_at, else the end of the grace), so services whose
// backups cannot be removed never keep the others waiting.
func (s *Store) PurgesDue(ctx context.Context, serverIDs []int64, now time.Time, limit int) ([]PurgeDue, error) {
	if len(serverIDs) == 0 {
		return nil, nil
	}
	q, args, err := sqlx.In(`SELECT ps.service_id, h.server AS server_id, ps.backups_purge_after, ps.purge_error, ps.purge_attempts,
  ps.purge_round_at
FROM mod_pvekeep_services ps
JOIN tblhosting h ON h.id = ps.service_id
WHERE ps.backups_purge_after IS NOT NULL AND ps.backups_purge_after <= ?
  AND (ps.purge_next_at IS NULL OR ps.purge_next_at <= ?) AND h.server IN (?)
ORDER BY COALESCE(ps.purge_next_at, ps.backups_purge_after), ps.service_id
LIMIT ?`, dbTime(now), dbTime(now), serverIDs, limit)
	if err != nil {
		return nil, fmt.Errorf("list due backup purges: %w", err)
	}
	var out []PurgeDue
	if err := s.db.SelectContext(ctx, &out, s.db.Rebind(q), args...); err != nil {
		return nil, fmt.Errorf("list due backup purges: %w", classify(err))
	}
	for i := range out {
		out[i].PurgeAfter = out[i].PurgeAfter.UTC()
		if out[i].RoundAt != nil {
			t := out[i].RoundAt.UTC()
			out[i].RoundAt = &t
		}
	}
	return out, nil
}

// NotePurge records what one look at a terminated service's backups
// found. done ends the purge (backups_purge_after NULL, the error
// cleared). Otherwise the service goes to the back of the queue
// (purge_next_at = now); with a non-empty msg — the round left backups
// Proxmox would not remove — msg is what the admin reads, the round is
// counted, and neither the service is looked at nor a new round begins
// before retryAt.
func (s *Store) NotePurge(ctx context.Context, id pvekeep.ServiceID, done bool, msg string, now, retryAt time.Time) error {
	var err error
	switch {
	case done:
		_, err = s.db.ExecContext(ctx, `UPDATE mod_pvekeep_services SET backups_purge_after = NULL, purge_error = '',
  purge_next_at = NULL, purge_round_at = NULL, updated_at = ?
WHERE service_id = ?`, dbTime(now), id)
	case msg != "":
		_, err = s.db.ExecContext(ctx, `UPDATE mod_pvekeep_services SET purge_error = ?, purge_attempts = purge_attempts + 1,
  purge_next_at = ?, purge_round_at = ?, updated_at = ?
WHERE service_id = ?`, cut(msg, 1024), dbTime(retryAt), dbTime(retryAt), dbTime(now), id)
	default:
		_, err = s.db.ExecContext(ctx, `UPDATE mod_pvekeep_services SET purge_next_at = ? WHERE service_id = ?`, dbTime(now), id)
	}
	if err != nil {
		return fmt.Errorf("note backup purge of service %d: %w", id, classify(err))
	}
	return nil
}

// Termination is what the plugin recorded about a service's termination.
type Termination struct {
	TerminatedAt *time.Time `db:"terminated_at"`
	PurgeAfter   *time.Time `db:"backups_purge_after"`
	PurgeError   string     `db:"purge_error"`
	Attempts     int        `db:"purge_attempts"`
	// NextAt is when the cron looks at the backups again; after a round
	// that left some (PurgeError), the end of its pause.
	NextAt *time.Time `db:"purge_next_at"`
}

// ServiceTermination reads it; a service never terminated has zero values.
func (s *Store) ServiceTermination(ctx context.Context, id pvekeep.ServiceID) (Termination, error) {
	var t Termination
	err := s.db.GetContext(ctx, &t, `SELECT terminated_at, backups_purge_after, purge_error, purge_attempts, purge_next_at
FROM mod_pvekeep_services WHERE service_id = ?`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return Termination{}, nil
	}
	if err != nil {
		return Termination{}, fmt.Errorf("read termination of service %d: %w", id, classify(err))
	}
	return t, nil
}
