package store

import (
	"github.com/pvekeep/pvekeep/internal/lazyre"

	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
)

// Store is the plugin's handle on its database.
type Store struct {
	db     *sqlx.DB
	logger *slog.Logger
	cfg    *mysql.Config // for EnsureMigrated's pool of its own
}

// Pool limits: the stdio transport runs one short process per request, the
// worker and socket server a handful of goroutines; ten connections are
// plenty and keep a busy panel from exhausting max_connections.
const (
	maxOpenConns    = 10
	maxIdleConns    = 5
	connMaxLifetime = 5 * time.Minute
	connMaxIdleTime = time.Minute
	dialTimeout     = 5 * time.Second
)

// parseDSN reads a go-sql-driver/mysql DSN and forces the settings the
// store relies on.
func parseDSN(dsn string) (*mysql.Config, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		// ParseDSN's message may quote the DSN, password included: never
		// pass it on.
		return nil, errors.New("parse dsn: malformed go-sql-driver/mysql DSN")
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	cfg.ClientFoundRows = true
	if cfg.Timeout == 0 {
		cfg.Timeout = dialTimeout
	}
	cfg.InterpolateParams = interpolate(dsn, cfg)
	return cfg, nil
}

// interpolate says whether the driver may put a statement's arguments
// into its text itself (interpolateParams) instead of preparing it,
// executing it and closing it: one round trip per statement instead of
// three, which is most of what a page view waits for. The driver escapes
// every argument (and follows the server's NO_BACKSLASH_ESCAPES); that is
// sound in utf8mb4 (its default) and utf8, where no multi-byte character
// hides a backslash, and it refuses the collations where one can. A DSN
// that names another charset, or says interpolateParams=false, keeps
// prepared statements.
func interpolate(dsn string, cfg *mysql.Config) bool {
	_, query, _ := strings.Cut(dsn, "?")
	params, err := url.ParseQuery(query)
	if err != nil {
		return false
	}
	if v := params.Get("interpolateParams"); v != "" {
		return cfg.InterpolateParams
	}
	for _, cs := range strings.Split(params.Get("charset"), ",") {
		switch strings.ToLower(strings.TrimSpace(cs)) {
		case "", "utf8mb4", "utf8", "utf8mb3":
		default:
			return false
		}
	}
	c := strings.ToLower(cfg.Collation)
	return c == "" || strings.HasPrefix(c, "utf8mb4_") || strings.HasPrefix(c, "utf8_") || strings.HasPrefix(c, "utf8mb3_")
}

func openDB(cfg *mysql.Config) (*sql.DB, error) {
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("create connector: %w", err)
	}
	return sql.OpenDB(conn), nil
}

// Open connects to the database named in dsn and checks it answers.
// A server that cannot be reached is ErrUnavailable.
func Open(ctx context.Context, dsn string, logger *slog.Logger) (*Store, error) {
	s, err := Connect(dsn, logger)
	if err != nil {
		return nil, err
	}
	if err := s.db.PingContext(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("open database: %w", classifyConnect(err))
	}
	return s, nil
}

// Connect prepares the pool without talking to the server: a server that
// is down now shows up as ErrUnavailable on first use, and the pool
// reconnects by itself once it is back. A long-running `serve` uses this,
// so that a database that was down when it started does not keep it
// answering "unavailable" after the database recovered.
func Connect(dsn string, logger *slog.Logger) (*Store, error) {
	logger = orDiscard(logger)
	cfg, err := parseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if cfg.DBName == "" {
		return nil, errors.New("open database: the dsn names no database")
	}
	plain := cfg.Clone()
	cfg.Logger = driverLogger{logger.With("component", "mysql")}
	db, err := openDB(cfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	db.SetMaxOpenConns(maxOpenConns)
	db.SetMaxIdleConns(maxIdleConns)
	db.SetConnMaxLifetime(connMaxLifetime)
	db.SetConnMaxIdleTime(connMaxIdleTime)
	return &Store{db: sqlx.NewDb(db, "mysql"), logger: logger.With("component", "store"), cfg: plain}, nil
}

// Close closes the connection pool.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close database: %w", err)
	}
	return nil
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping database: %w", classifyConnect(err))
	}
	return nil
}

// DB exposes the pool for the few places that need plain database/sql
// (the seed builder, tests). Production code goes through Store methods.
func (s *Store) DB() *sql.DB { return s.db.DB }

// txAttempts bounds how often a transaction that lost a deadlock is run again.
const txAttempts = 4

// inTx runs fn in a READ COMMITTED transaction, committing when fn returns
// nil. A deadlock or lock wait timeout runs the whole transaction again: fn
// must only touch the database.
func (s *Store) inTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	var err error
	for attempt := 1; attempt <= txAttempts; attempt++ {
		err = s.tryTx(ctx, fn)
		if err == nil || !retryableTx(err) || ctx.Err() != nil {
			break
		}
		s.logger.Debug("transaction retried after a lock conflict", "attempt", attempt, "err", err)
	}
	return classify(err)
}

func (s *Store) tryTx(ctx context.Context, fn func(tx *sqlx.Tx) error) (err error) {
	tx, err := s.db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}

// dbTime is how a time goes into a DATETIME(6) column: UTC, microseconds.
func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func dbTimePtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return dbTime(*t)
}

// nullString writes "" as NULL.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

var dbNameRe = lazyre.New(`^[A-Za-z0-9_]{1,64}$`)

// CreateDatabase creates database name (utf8mb4) on the server adminDSN
// points at; adminDSN's own database part is ignored. Used by tests and
// the demo.
func CreateDatabase(ctx context.Context, adminDSN, name string) error {
	return adminExec(ctx, adminDSN, name, "CREATE DATABASE `%s` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
}

// DropDatabase drops database name if it exists.
func DropDatabase(ctx context.Context, adminDSN, name string) error {
	return adminExec(ctx, adminDSN, name, "DROP DATABASE IF EXISTS `%s`")
}

func adminExec(ctx context.Context, adminDSN, name, stmt string) error {
	if !dbNameRe.MatchString(name) {
		return fmt.Errorf("database name %q: only letters, digits and _ allowed", name)
	}
	cfg, err := parseDSN(adminDSN)
	if err != nil {
		return err
	}
	cfg.DBName = ""
	db, err := openDB(cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	q := fmt.Sprintf(stmt, name)
	if _, err := db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("run %q: %w", q, classifyConnect(err))
	}
	return nil
}

// ExecScript runs a script of several SQL statements (such as
// sqlfiles.WHMCSSchema) against the database dsn names, on one connection
// of its own, so session settings the script makes stay with it.
func ExecScript(ctx context.Context, dsn, script string) error {
	cfg, err := parseDSN(dsn)
	if err != nil {
		return fmt.Errorf("exec script: %w", err)
	}
	cfg.MultiStatements = true
	db, err := openDB(cfg)
	if err != nil {
		return fmt.Errorf("exec script: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, script); err != nil {
		return fmt.Errorf("exec script: %w", classifyConnect(err))
	}
	return nil
}

func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// DSNWithDatabase returns dsn with its database part set to name, keeping
// every other setting.
func DSNWithDatabase(dsn, name string) (string, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "", errors.New("parse dsn: malformed go-sql-driver/mysql DSN")
	}
	cfg.DBName = name
	return cfg.FormatDSN(), nil
}

// driverLogger sends the MySQL driver's own messages (broken pipes and the
// like) to the store's logger instead of the driver's default stderr logger.
type driverLogger struct{ l *slog.Logger }

func (d driverLogger) Print(v ...any) { d.l.Warn(fmt.Sprint(v...)) }
