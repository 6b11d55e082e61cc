package store_test

import (
	"context"
	"database/sql"
	"log/slog"
	"sync"
	"testing"

	"github.com/pvekeep/pvekeep/internal/dbtest"
	"github.com/pvekeep/pvekeep/internal/store"
)

var pluginTables = []string{
	"mod_pvekeep_services", "mod_pvekeep_jobs", "mod_pvekeep_backups",
	"mod_pvekeep_schedules", "mod_pvekeep_snapshots", "mod_pvekeep_emails",
}

func countPluginTables(t *testing.T, dsn string) int {
	t.Helper()
	st, err := store.Open(context.Background(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	return countTables(t, st.DB())
}

func countTables(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	err := db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM information_schema.tables
WHERE table_schema = DATABASE() AND table_name IN (?, ?, ?, ?, ?, ?)`,
		pluginTables[0], pluginTables[1], pluginTables[2], pluginTables[3], pluginTables[4], pluginTables[5]).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestMigrateUpDownUpRoundTrips(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, dsn := dbtest.NewEmpty(t)
	log := slog.New(slog.DiscardHandler)

	if err := store.Migrate(ctx, dsn, log); err != nil {
		t.Fatalf("up: %v", err)
	}
	cur, latest, err := store.Version(ctx, dsn, log)
	if err != nil {
		t.Fatal(err)
	}
	if cur != latest || latest < 6 {
		t.Fatalf("after up: version %d, latest %d; want equal and >= 6", cur, latest)
	}
	if n := countPluginTables(t, dsn); n != len(pluginTables) {
		t.Fatalf("after up: %d plugin tables, want %d", n, len(pluginTables))
	}

	if err := store.MigrateDown(ctx, dsn, 0, log); err != nil {
		t.Fatalf("down: %v", err)
	}
	if cur, _, _ := store.Version(ctx, dsn, log); cur != 0 {
		t.Fatalf("after down: version %d, want 0", cur)
	}
	if n := countPluginTables(t, dsn); n != 0 {
		t.Fatalf("after down: %d plugin tables left", n)
	}

	if err := store.Migrate(ctx, dsn, log); err != nil {
		t.Fatalf("up again: %v", err)
	}
	if n := countPluginTables(t, dsn); n != len(pluginTables) {
		t.Fatalf("after up again: %d plugin tables", n)
	}
}

func TestMigrateTwiceIsANoOp(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t) // already migrated
	if err := store.Migrate(context.Background(), db.DSN, nil); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
}

func TestMigrateConcurrentRunsAllSucceed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, dsn := dbtest.NewEmpty(t)
	const runners = 4
	errs := make([]error, runners)
	var wg sync.WaitGroup
	for i := range runners {
		wg.Go(func() { errs[i] = store.Migrate(ctx, dsn, nil) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("runner %d: %v", i, err)
		}
	}
	cur, latest, err := store.Version(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cur != latest {
		t.Errorf("version %d, want %d", cur, latest)
	}
	if n := countPluginTables(t, dsn); n != len(pluginTables) {
		t.Errorf("%d plugin tables, want %d", n, len(pluginTables))
	}
}
