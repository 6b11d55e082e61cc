package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"

	"github.com/go-sql-driver/mysql"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

var (
	// ErrTaskClaimed: another job already follows that Proxmox task.
	ErrTaskClaimed = errors.New("task already followed by another job")
	// ErrNotFound: the row does not exist, or exists for another service.
	ErrNotFound = errors.New("not found")
	// ErrLeaseLost: a guarded write matched no row because the job was
	// claimed by someone else, re-claimed (attempt moved on) or finished.
	// The worker must stop touching the job.
	ErrLeaseLost = errors.New("job lease lost")
	// ErrUnavailable: the database could not be reached or the connection
	// broke. Safe to retry later.
	ErrUnavailable = errors.New("database unavailable")
)

// ActiveJobError: the service already has a queued or running job.
type ActiveJobError struct {
	Job pvekeep.Job
}

func (e *ActiveJobError) Error() string {
	return fmt.Sprintf("service %d has an active job %d (%s, %s)", e.Job.ServiceID, e.Job.ID, e.Job.Kind, e.Job.State)
}

// QuotaError: the service's backups in use (creating, available, removing)
// already reach the quota.
type QuotaError struct {
	Used, Max int
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("backup quota reached (%d of %d)", e.Used, e.Max)
}

// BackupStateError: the backup is not in a status that allows the
// operation (e.g. removing a backup that is still being created).
type BackupStateError struct {
	Status pvekeep.BackupStatus
}

func (e *BackupStateError) Error() string {
	return fmt.Sprintf("backup is %s", e.Status)
}

// MySQL/MariaDB error numbers the store reacts to.
const (
	erDupEntry          = 1062
	erLockWaitTimeout   = 1205
	erLockDeadlock      = 1213
	erConCount          = 1040 // too many connections
	erServerShutdown    = 1053
	erConnectionKilled  = 1927 // MariaDB
	crConnectionError   = 2002
	crConnHostError     = 2003
	crServerGone        = 2006
	crServerLost        = 2013
	erClientInteraction = 4031 // MySQL 8: disconnected by the server because of inactivity
)

// classify marks connection-level failures as ErrUnavailable, keeping the
// driver's error in the chain. Everything else passes through unchanged.
func classify(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) {
		return err
	}
	if isConnError(err) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// classifyConnect is classify for the first contact with a server: there a
// context deadline means the server did not answer in time.
func classifyConnect(err error) error {
	if err != nil && !errors.Is(err, ErrUnavailable) && errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return classify(err)
}

func isConnError(err error) bool {
	// A context's deadline or cancellation is the caller's decision, not a
	// broken server (context.DeadlineExceeded even passes as a net.Error).
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, sql.ErrConnDone) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		switch myErr.Number {
		case crConnectionError, crConnHostError, crServerGone, crServerLost,
			erConCount, erServerShutdown, erConnectionKilled, erClientInteraction:
			return true
		}
	}
	return false
}

func mysqlErrorNumber(err error) uint16 {
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		return myErr.Number
	}
	return 0
}

// retryableTx reports whether a transaction failed only because InnoDB
// chose it as a deadlock victim or it waited too long for a lock; the whole
// transaction may then run again.
func retryableTx(err error) bool {
	n := mysqlErrorNumber(err)
	return n == erLockDeadlock || n == erLockWaitTimeout
}
