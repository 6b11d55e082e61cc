package dbtest_test

import (
	"context"
	"testing"

	"github.com/pvekeep/pvekeep/internal/dbtest"
)

func TestNewGivesMigratedDatabaseWithWHMCSTables(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	for _, table := range []string{"tblhosting", "tblproducts", "tblcustomfieldsvalues", "mod_pvekeep_jobs", "mod_pvekeep_backups", "mod_pvekeep_emails"} {
		var n int
		err := db.Store.DB().QueryRowContext(ctx,
			"SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", db.Name, table).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("table %s missing in %s", table, db.Name)
		}
	}
}

func TestNewDropsTheDatabaseAtCleanup(t *testing.T) {
	t.Parallel()
	var name string
	t.Run("inner", func(t *testing.T) {
		name = dbtest.New(t).Name
	})
	probe := dbtest.New(t)
	var n int
	if err := probe.Store.DB().QueryRowContext(context.Background(),
		"SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ?", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("database %s still exists after its test ended", name)
	}
}
