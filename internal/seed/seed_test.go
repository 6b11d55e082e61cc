package seed_test

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/dbtest"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/seed"
)

var now = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func TestStandardFixtureReadsBackThroughTheStoreUnderStrictSQLMode(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	// The strictest mode a WHMCS database runs under (its own '0000-00-00'
	// defaults rule out NO_ZERO_DATE): every NOT NULL column must be given.
	conn, err := db.Store.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET SESSION sql_mode = 'STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'"); err != nil {
		t.Fatal(err)
	}
	sd := seed.New(conn, now)
	fx, err := sd.Standard(ctx, seed.FixtureSpec{
		Client:  seed.Client{FirstName: "Ada", LastName: "Lovelace", Email: "ada@example.test", Language: "german"},
		Product: seed.Product{Name: "KVM S", BackupStorage: "pbs", BackupsQuota: 9, SnapshotsQuota: 2, SnapshotLifetimeDays: 3},
		VMIDs:   []int{100, 101},
	})
	if err != nil {
		t.Fatalf("standard fixture: %v", err)
	}
	if len(fx.ServiceIDs) != 2 {
		t.Fatalf("services %v", fx.ServiceIDs)
	}
	ram := fx.Options["RAM"]
	if err := sd.SetOption(ctx, fx.ServiceIDs[1], seed.Choice{OptionID: ram.ID, SubID: ram.SubIDs[3]}); err != nil {
		t.Fatal(err)
	}
	if err := sd.SetServiceStatus(ctx, fx.ServiceIDs[1], "Suspended"); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		service int64
		vmid    pvekeep.VMID
		status  string
		opts    map[string]string
	}{
		{name: "first service has default choices", service: fx.ServiceIDs[0], vmid: 100, status: "Active",
			opts: map[string]string{"CPU Cores": "1", "RAM": "1", "System Disk": "10", "Additional Disk": "0", "Backups": "5", "Snapshots": "3"}},
		{name: "second service has its RAM changed and is suspended", service: fx.ServiceIDs[1], vmid: 101, status: "Suspended",
			opts: map[string]string{"CPU Cores": "1", "RAM": "8", "System Disk": "10", "Additional Disk": "0", "Backups": "5", "Snapshots": "3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := db.Store.Service(ctx, pvekeep.ServiceID(tc.service))
			if err != nil {
				t.Fatal(err)
			}
			if f.VMID != tc.vmid || f.Status != tc.status || f.ProductName != "KVM S" || f.ServerID != fx.ServerID {
				t.Errorf("facts %+v", f)
			}
			if f.ClientFirstName != "Ada" || f.ClientEmail != "ada@example.test" || f.ClientLanguage != "german" {
				t.Errorf("client %q %q %q", f.ClientFirstName, f.ClientEmail, f.ClientLanguage)
			}
			if got := f.ProductSettings[:4]; got[0] != "pbs" || got[1] != "9" || got[2] != "2" || got[3] != "3" {
				t.Errorf("settings %q", got)
			}
			if !maps.Equal(f.ConfigOptions, tc.opts) {
				t.Errorf("options %v, want %v", f.ConfigOptions, tc.opts)
			}
		})
	}
}
