// Package dbtest gives a test its own throwaway MariaDB/MySQL database: the
// WHMCS tables loaded from sql/testdata, the plugin's migrations applied,
// and everything dropped when the test ends.
//
// The server comes from PVEKEEP_TEST_DSN (an admin DSN, database part
// ignored), by default root over the local socket. When it cannot be
// reached the test is skipped, unless PVEKEEP_TEST_DISALLOW_SKIP=1 (CI),
// which makes it fail instead.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/store"
	sqlfiles "github.com/pvekeep/pvekeep/sql"
)

// DefaultAdminDSN is used when PVEKEEP_TEST_DSN is unset.
const DefaultAdminDSN = "root@unix(/run/mysqld/mysqld.sock)/"

// DB is one test's database.
type DB struct {
	Name  string       // pvekeep_t_<random>
	DSN   string       // go-sql-driver/mysql DSN of this database
	Store *store.Store // open on DSN, closed at cleanup
}

// AdminDSN is the server tests create databases on.
func AdminDSN() string {
	if dsn := os.Getenv("PVEKEEP_TEST_DSN"); dsn != "" {
		return dsn
	}
	return DefaultAdminDSN
}

// setupTimeout bounds creating and loading one database.
const setupTimeout = 60 * time.Second

// New creates a fresh database for t with the WHMCS schema and all
// migrations, and drops it when t ends.
func New(t testing.TB) *DB {
	t.Helper()
	name, dsn := NewEmpty(t)
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	if err := store.ExecScript(ctx, dsn, sqlfiles.WHMCSSchema); err != nil {
		t.Fatalf("dbtest: load WHMCS schema: %v", err)
	}
	if err := store.Migrate(ctx, dsn, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("dbtest: migrate: %v", err)
	}
	st, err := store.Open(ctx, dsn, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("dbtest: open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return &DB{Name: name, DSN: dsn, Store: st}
}

// NewEmpty creates a fresh, empty database (no WHMCS tables, no
// migrations), drops it when t ends and returns its name and DSN: for
// migration tests.
func NewEmpty(t testing.TB) (name, dsn string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	admin := AdminDSN()
	name = "pvekeep_t_" + randomHex(6)
	if err := store.CreateDatabase(ctx, admin, name); err != nil {
		if errors.Is(err, store.ErrUnavailable) && os.Getenv("PVEKEEP_TEST_DISALLOW_SKIP") != "1" {
			t.Skipf("dbtest: no MariaDB/MySQL at PVEKEEP_TEST_DSN (default %s), skipping: %v", DefaultAdminDSN, err)
		}
		t.Fatalf("dbtest: create database (PVEKEEP_TEST_DSN or %s): %v", DefaultAdminDSN, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		if err := store.DropDatabase(ctx, admin, name); err != nil {
			t.Errorf("dbtest: drop database %s: %v", name, err)
		}
	})
	dsn, err := store.DSNWithDatabase(admin, name)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	return name, dsn
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
