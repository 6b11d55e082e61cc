package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/pressly/goose/v3"

	sqlfiles "github.com/pvekeep/pvekeep/sql"
)

// versionTable is goose's bookkeeping table, named into the plugin's
// namespace so it never collides with anything else in the WHMCS database.
const versionTable = "mod_pvekeep_goose_version"

// Migrate applies every pending migration to the database dsn names. Any
// number of processes may run it at once: each holds a MySQL named lock
// (GET_LOCK, one per database) on a connection of its own for the whole
// goose run, so they run one after the other and the later ones find
// nothing to do. (goose's own SessionLocker is not enough: Provider.Up
// first checks for pending migrations, creating the version table, without
// the lock.)
func Migrate(ctx context.Context, dsn string, logger *slog.Logger) error {
	logger = orDiscard(logger)
	return withProvider(ctx, dsn, logger, migrateUp(ctx, logger))
}

func migrateUp(ctx context.Context, logger *slog.Logger) func(p *goose.Provider) error {
	return func(p *goose.Provider) error {
		res, err := p.Up(ctx)
		for _, r := range res {
			if r.Error == nil && !r.Empty {
				logger.Info("migration applied", "version", r.Source.Version, "duration", r.Duration)
			}
		}
		if err != nil {
			return fmt.Errorf("migrate up: %w", classify(err))
		}
		return nil
	}
}

// MigrateDown rolls migrations back until the database is at version
// (0 = no plugin tables left). For tests and for operators undoing a
// release.
func MigrateDown(ctx context.Context, dsn string, version int64, logger *slog.Logger) error {
	return withProvider(ctx, dsn, logger, func(p *goose.Provider) error {
		if _, err := p.DownTo(ctx, version); err != nil {
			return fmt.Errorf("migrate down to %d: %w", version, classify(err))
		}
		return nil
	})
}

// Version returns the database's current migration version and the newest
// one this binary knows.
func Version(ctx context.Context, dsn string, logger *slog.Logger) (current, latest int64, err error) {
	err = withProvider(ctx, dsn, logger, func(p *goose.Provider) error {
		current, latest, err = p.GetVersions(ctx)
		if err != nil {
			return fmt.Errorf("read migration version: %w", classify(err))
		}
		return nil
	})
	return current, latest, err
}

func withProvider(ctx context.Context, dsn string, logger *slog.Logger, fn func(p *goose.Provider) error) error {
	cfg, err := parseDSN(dsn)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return withProviderConfig(ctx, cfg, logger, fn)
}

// withProviderConfig runs fn with a goose provider on a pool of its own,
// holding the migration lock (see Migrate).
func withProviderConfig(ctx context.Context, cfg *mysql.Config, logger *slog.Logger, fn func(p *goose.Provider) error) error {
	logger = orDiscard(logger).With("component", "migrate")
	if cfg.DBName == "" {
		return errors.New("migrate: the dsn names no database")
	}
	db, err := openDB(cfg)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(3) // the lock's connection plus goose's
	lockConn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", cfg.DBName, classifyConnect(err))
	}
	defer lockConn.Close()
	lock := &namedLock{logger: logger}
	if err := lock.lock(ctx, lockConn); err != nil {
		return fmt.Errorf("migrate %s: %w", cfg.DBName, err)
	}
	defer func() {
		if err := lock.unlock(context.WithoutCancel(ctx), lockConn); err != nil {
			logger.Warn("release migration lock", "err", err)
		}
	}()
	migrations, err := fs.Sub(sqlfiles.Migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectMySQL, db, migrations,
		goose.WithTableName(versionTable),
		goose.WithDisableGlobalRegistry(true),
		// Features land in parallel with numbers reserved per feature, so
		// a database may have run a higher number before a lower one
		// lands; each migration stands alone (one feature's tables).
		goose.WithAllowOutofOrder(true),
	)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return fn(p)
}

// namedLock is MySQL's GET_LOCK held on one connection: the server frees it
// if that connection dies, so a crashed migrator never blocks the next.
type namedLock struct {
	logger *slog.Logger
}

// lockName is per database, so tests migrating many databases side by side
// do not wait for each other. GET_LOCK names are limited to 64 characters.
const lockNameExpr = "CONCAT('pvekeep_migrate_', LEFT(SHA1(DATABASE()), 32))"

// lockPoll is how long one GET_LOCK call waits before ctx is checked again.
const lockPoll = 2 * time.Second

func (l *namedLock) lock(ctx context.Context, conn *sql.Conn) error {
	for {
		var got sql.NullInt64
		err := conn.QueryRowContext(ctx, "SELECT GET_LOCK("+lockNameExpr+", ?)", int(lockPoll/time.Second)).Scan(&got)
		if err != nil {
			return fmt.Errorf("take migration lock: %w", classify(err))
		}
		if got.Valid && got.Int64 == 1 {
			return nil
		}
		l.logger.Info("waiting for another migration to finish")
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("take migration lock: %w", err)
		}
	}
}

func (l *namedLock) unlock(ctx context.Context, conn *sql.Conn) error {
	if _, err := conn.ExecContext(ctx, "DO RELEASE_LOCK("+lockNameExpr+")"); err != nil {
		return fmt.Errorf("release migration lock: %w", classify(err))
	}
	return nil
}
