package e2e

import (
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/pvekeep/pvekeep/internal/dbtest"
	"github.com/pvekeep/pvekeep/internal/store"
	sqlfiles "github.com/pvekeep/pvekeep/sql"
)

// The panel never runs `pvekeep migrate`: ten plugin processes spawned at
// once against a database without the plugin's tables all answer, and
// the tables are made, each migration once.
func TestTenFirstProcessesMigrateTheDatabaseOnce(t *testing.T) {
	t.Parallel()
	_, dsn := dbtest.NewEmpty(t)
	const procs = 10
	outs := make([]string, procs)
	errs := make([]error, procs)
	var wg sync.WaitGroup
	for i := range procs {
		wg.Go(func() {
			cmd := exec.Command(binary, "serve")
			cmd.Env = append(os.Environ(), "PVEKEEP_DSN="+dsn)
			cmd.Stdin = strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"plugin.hello","params":{"api_version":1}}` + "\n")
			out, err := cmd.Output()
			outs[i], errs[i] = string(out), err
		})
	}
	wg.Wait()
	for i := range procs {
		if errs[i] != nil || !strings.Contains(outs[i], `"result"`) {
			t.Errorf("process %d: %v, answered %q", i, errs[i], outs[i])
		}
	}
	cur, latest, err := store.Version(t.Context(), dsn, nil)
	if err != nil || cur != latest {
		t.Fatalf("after the first processes: version %d of %d (%v)", cur, latest, err)
	}
	st, err := store.Open(t.Context(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var runs, distinct int
	if err := st.DB().QueryRow(`SELECT COUNT(*), COUNT(DISTINCT version_id) FROM mod_pvekeep_goose_version
WHERE version_id > 0`).Scan(&runs, &distinct); err != nil {
		t.Fatal(err)
	}
	// Counted from the files: the numbers may have gaps (each issue keeps
	// a range of them), the latest is not the count.
	files, err := fs.Glob(sqlfiles.Migrations, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if runs != distinct || distinct != len(files) {
		t.Errorf("goose recorded %d runs of %d migrations, want each of %d once", runs, distinct, len(files))
	}
}
