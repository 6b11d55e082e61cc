package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

type snapshotList struct {
	Items []struct {
		Name string `json:"name"`
	} `json:"items"`
	ActiveJob *job `json:"active_job"`
}

// The cron's removal of an expired snapshot, its plugin process killed
// right after it recorded the qmdelsnapshot it submitted, is finished by
// the next ticks without asking Proxmox twice.
func TestExpiryKilledAfterSubmittingTheRemovalConverges(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	// Short leases: the killed tick's lease runs out in seconds.
	cfg := filepath.Join(t.TempDir(), "pvekeep.toml")
	must(t, os.WriteFile(cfg, []byte("[jobs]\nlease_seconds = 2\npoll_seconds = 0.1\n"), 0o600))
	w.env = append(w.env, "PVEKEEP_CONFIG="+cfg)
	c := w.newCustomer(100, 3)
	ctx := context.Background()
	must(t, w.seed.SetProductSetting(ctx, c.productID, 4, "1")) // a lifetime of 1 day
	var created struct{ Job job }
	w.mustCall(c, "snapshots.create", map[string]any{"description": "old"}, &created)
	if done, _ := w.follow(c, created.Job.ID); done.State != "succeeded" {
		t.Fatalf("snapshot ended %s: %s", done.State, done.Error)
	}
	_, err := w.db.Store.DB().ExecContext(ctx,
		"UPDATE mod_pvekeep_snapshots SET expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 HOUR WHERE service_id = ?", c.serviceID)
	must(t, err)

	out := w.php(map[string]any{"do": "cron", "servers": w.cronServers(), "budget": 30,
		"env": map[string]string{"PVEKEEP_TEST_CRASH_AFTER_STEP": "snapshot-delete"}, "transport_error_expected": true})
	if out.TransportError == "" {
		t.Fatalf("the tick meant to crash after snapshot-delete finished normally: %s", out.Result)
	}
	var l snapshotList
	w.mustCall(c, "snapshots.list", nil, &l)
	if l.ActiveJob == nil || l.ActiveJob.Kind != "snapshot.remove" {
		t.Fatalf("active job after the crash = %+v, want the removal", l.ActiveJob)
	}
	if done, _ := w.follow(c, l.ActiveJob.ID); done.State != "succeeded" {
		t.Fatalf("removal ended %s: %s", done.State, done.Error)
	}
	n := 0
	for _, task := range w.sim.State().Tasks {
		if task.Type == "qmdelsnapshot" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("qmdelsnapshot ran %d times, want 1", n)
	}
	if names, _ := w.sim.Snapshots(100); len(names) != 0 {
		t.Errorf("Proxmox still has %v", names)
	}
	var reason string
	must(t, w.db.Store.DB().QueryRowContext(ctx, "SELECT removed_reason FROM mod_pvekeep_snapshots WHERE service_id = ?", c.serviceID).Scan(&reason))
	if reason != "expired" {
		t.Errorf("removed_reason = %q, want expired", reason)
	}
}
