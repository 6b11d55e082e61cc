package store_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/pvekeep/pvekeep/internal/store"
)

// The driver puts arguments into the statement text itself only where its
// escaping is sound: utf8mb4/utf8, and not when the DSN says otherwise.
func TestInterpolateParamsOnlyWhereEscapingIsSound(t *testing.T) {
	for dsn, want := range map[string]bool{
		"u:p@unix(/run/mysqld/mysqld.sock)/db":                             true,
		"u:p@tcp(db:3306)/db?charset=utf8mb4":                              true,
		"u:p@tcp(db:3306)/db?charset=utf8mb4&collation=utf8mb4_unicode_ci": true,
		"u:p@tcp(db:3306)/db?charset=utf8":                                 true,
		"u:p@tcp(db:3306)/db?interpolateParams=false":                      false,
		"u:p@tcp(db:3306)/db?charset=gbk":                                  false,
		"u:p@tcp(db:3306)/db?charset=sjis,utf8mb4":                         false,
		"u:p@tcp(db:3306)/db?collation=latin1_swedish_ci":                  false,
	} {
		if got := store.Interpolates(dsn); got != want {
			t.Errorf("interpolateParams for %s = %v, want %v", dsn, got, want)
		}
	}
}

// Strings the driver escapes into the statement come back byte for byte,
// also when the server runs with NO_BACKSLASH_ESCAPES (the driver reads
// that from the server and escapes quotes by doubling them instead).
func TestInterpolatedStringsRoundTrip(t *testing.T) {
	t.Parallel()
	_, b := setup(t)
	ctx := context.Background()
	node := `a'b"c\d?e` + "\x00\n\r\x1a" + `\'); --`
	for _, mode := range []string{"", "NO_BACKSLASH_ESCAPES"} {
		t.Run("sql_mode="+mode, func(t *testing.T) {
			cfg, err := mysql.ParseDSN(b.db.DSN)
			if err != nil {
				t.Fatal(err)
			}
			if mode != "" {
				if cfg.Params == nil {
					cfg.Params = map[string]string{}
				}
				cfg.Params["sql_mode"] = "'" + mode + "'"
			}
			s, err := store.Open(ctx, cfg.FormatDSN(), slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var got string
			if err := s.DB().QueryRowContext(ctx, "SELECT @@SESSION.sql_mode").Scan(&got); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(got, "NO_BACKSLASH_ESCAPES") != (mode != "") {
				t.Fatalf("session sql_mode = %q, want it to follow %q", got, mode)
			}
			f := store.VMFacts{ServiceID: b.service(0), VMID: 100, Node: node, Power: "running", CheckedAt: time.Now()}
			if err := s.SaveVMFacts(ctx, f); err != nil {
				t.Fatal(err)
			}
			read, ok, err := s.VMFacts(ctx, b.service(0))
			if err != nil || !ok || read.Node != node {
				t.Errorf("node read back = %q (%v, %v), want %q", read.Node, ok, err, node)
			}
		})
	}
}
