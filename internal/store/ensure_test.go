package store_test

import (
	"context"
	"io/fs"
	"sync"
	"testing"

	"github.com/pvekeep/pvekeep/internal/dbtest"
	"github.com/pvekeep/pvekeep/internal/store"
	sqlfiles "github.com/pvekeep/pvekeep/sql"
)

// appliedRows counts goose's bookkeeping rows: one per migration run.
func appliedRows(t *testing.T, dsn string) int {
	t.Helper()
	st, err := store.Open(context.Background(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var n int
	if err := st.DB().QueryRow("SELECT COUNT(*) FROM mod_pvekeep_goose_version WHERE version_id > 0").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Ten processes (each its own pool, as spawned plugins have) start at once
// on a database without the plugin's tables.
func TestEnsureMigratedConcurrentFirstStartsAllSucceedAndMigrateOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, dsn := dbtest.NewEmpty(t)
	const starts = 10
	errs := make([]error, starts)
	migrated := make([]bool, starts)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range starts {
		wg.Go(func() {
			st, err := store.Connect(dsn, nil)
			if err != nil {
				errs[i] = err
				return
			}
			defer st.Close()
			<-start
			migrated[i], errs[i] = st.EnsureMigrated(ctx)
		})
	}
	close(start)
	wg.Wait()
	ran := 0
	for i := range starts {
		if errs[i] != nil {
			t.Errorf("start %d: %v", i, errs[i])
		}
		if migrated[i] {
			ran++
		}
	}
	if ran == 0 {
		t.Error("no start reported migrating an empty database")
	}
	if n, want := appliedRows(t, dsn), embeddedMigrationsCount(); n != want {
		t.Errorf("goose recorded %d migration runs, want %d (each migration once)", n, want)
	}
	if n := countPluginTables(t, dsn); n != len(pluginTables) {
		t.Errorf("%d plugin tables, want %d", n, len(pluginTables))
	}
}

func TestEnsureMigrated(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		downTo       int64 // roll back to this version first; -1: leave migrated
		wantMigrated bool
	}{
		{name: "an up-to-date database is left alone", downTo: -1, wantMigrated: false},
		{name: "a database one migration behind is brought up", downTo: int64(embeddedMigrationsCount() - 1), wantMigrated: true},
		{name: "a database without the plugin's tables gets them", downTo: 0, wantMigrated: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := dbtest.New(t)
			if tc.downTo >= 0 {
				if err := store.MigrateDown(ctx, db.DSN, tc.downTo, nil); err != nil {
					t.Fatal(err)
				}
			}
			migrated, err := db.Store.EnsureMigrated(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if migrated != tc.wantMigrated {
				t.Errorf("migrated = %v, want %v", migrated, tc.wantMigrated)
			}
			cur, latest, err := store.Version(ctx, db.DSN, nil)
			if err != nil || cur != latest {
				t.Errorf("after: version %d of %d (%v)", cur, latest, err)
			}
		})
	}
}

func embeddedMigrationsCount() int {
	files, _ := fs.Glob(sqlfiles.Migrations, "migrations/*.sql")
	return len(files)
}

// BenchmarkEnsureMigratedUpToDate is what every request pays once its
// process has a connection: the one version query.
func BenchmarkEnsureMigratedUpToDate(b *testing.B) {
	db := dbtest.New(b)
	ctx := context.Background()
	for b.Loop() {
		if migrated, err := db.Store.EnsureMigrated(ctx); err != nil || migrated {
			b.Fatalf("migrated=%v err=%v", migrated, err)
		}
	}
}

// BenchmarkEnsureMigratedSpawnedProcess is what a process the panel
// spawns pays before answering: connect, the version query, close.
func BenchmarkEnsureMigratedSpawnedProcess(b *testing.B) {
	db := dbtest.New(b)
	ctx := context.Background()
	for b.Loop() {
		st, err := store.Connect(db.DSN, nil)
		if err != nil {
			b.Fatal(err)
		}
		if migrated, err := st.EnsureMigrated(ctx); err != nil || migrated {
			b.Fatalf("migrated=%v err=%v", migrated, err)
		}
		st.Close()
	}
}
