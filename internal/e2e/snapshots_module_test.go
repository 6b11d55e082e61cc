package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// pageSnapshots is backups.list's snapshots section, what the page shows.
type pageSnapshots struct {
	Status struct {
		Quotas struct {
			Snapshots struct{ Used, Max int } `json:"snapshots"`
		} `json:"quotas"`
	} `json:"status"`
	Snapshots struct {
		Quota     struct{ Used, Max int } `json:"quota"`
		LifetimeS int64                   `json:"lifetime_s"`
		Items     []struct {
			Name        string  `json:"name"`
			Description string  `json:"description"`
			CreatedAt   string  `json:"created_at"`
			ExpiresAt   *string `json:"expires_at"`
			VMState     bool    `json:"vmstate"`
			Status      string  `json:"status"`
		} `json:"items"`
		RemovedByRestore []struct{ Name string } `json:"removed_by_restore"`
	} `json:"snapshots"`
	ActiveJob *job `json:"active_job"`
}

func (w *world) pageSnapshots(c customer) pageSnapshots {
	w.t.Helper()
	var l pageSnapshots
	w.mustCall(c, "backups.list", nil, &l)
	return l
}

// snapshotClick posts the page's Take Snapshot form through the module.
func (w *world) snapshotClick(c customer, description, key string) string {
	w.t.Helper()
	return w.button(c, "snapshotCreate", map[string]any{"pvekeep_snapshot_description": description, "pvekeep_token": key})
}

// tookSnapshot takes a snapshot through the module and ticks it to its end.
func (w *world) tookSnapshot(c customer, description string) string {
	w.t.Helper()
	if got := w.snapshotClick(c, description, ""); got != "success" {
		w.t.Fatalf("Take Snapshot answered %q", got)
	}
	j := w.newestJob(c)
	if j.Kind != "snapshot.create" {
		w.t.Fatalf("newest job after Take Snapshot = %+v", j)
	}
	if done, _ := w.follow(c, j.ID); done.State != "succeeded" {
		w.t.Fatalf("snapshot %q ended %s: %s", description, done.State, done.Error)
	}
	for _, it := range w.pageSnapshots(c).Snapshots.Items {
		if it.Description == description {
			return it.Name
		}
	}
	w.t.Fatalf("snapshot %q is not listed", description)
	return ""
}

// pveConfig sets VM options through the simulator's Proxmox API, as an
// admin in the Proxmox UI would.
func (w *world) pveConfig(vmid int, values url.Values) {
	w.t.Helper()
	node := ""
	for _, v := range w.sim.State().VMs {
		if v.VMID == vmid {
			node = v.Node
		}
	}
	req, err := http.NewRequest(http.MethodPut, fmt.Sprintf("%s/nodes/%s/qemu/%d/config", w.info.URL, node, vmid), strings.NewReader(values.Encode()))
	must(w.t, err)
	req.Header.Set("Authorization", fmt.Sprintf("PVEAPIToken=%s=%s", w.info.TokenID, w.info.TokenSecret))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// The simulator's self-signed certificate; this is the test's own
	// request, not the plugin's (which pins the fingerprint).
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := hc.Do(req)
	must(w.t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		w.t.Fatalf("PUT config of %d: %s", vmid, resp.Status)
	}
}

// newestJob is the service's newest job: another test's ticks may have
// finished it already, so it need not be active any more.
func (w *world) newestJob(c customer) job {
	w.t.Helper()
	var j job
	must(w.t, w.db.Store.DB().QueryRow("SELECT id, kind FROM mod_pvekeep_jobs WHERE service_id = ? ORDER BY id DESC LIMIT 1",
		c.serviceID).Scan(&j.ID, &j.Kind))
	return j
}

func (w *world) running(vmid int) bool {
	for _, v := range w.sim.State().VMs {
		if v.VMID == vmid {
			return v.Running
		}
	}
	return false
}

// TestSnapshotsThroughTheModule drives snapshots the way a client does:
// the page's forms posted to the module's custom functions (real PHP), the
// plugin, MariaDB and the simulator; the panel's cron runs the jobs.
func TestSnapshotsThroughTheModule(t *testing.T) {
	t.Parallel()
	shared := newWorld(t) // VMs 100, 101 and 103, one per subtest

	t.Run("take with a description, listed with its remaining lifetime", func(t *testing.T) {
		t.Parallel()
		w := shared.sub(t)
		c := w.newCustomer(100, 3)
		must(t, w.seed.SetProductSetting(context.Background(), c.productID, 4, "3")) // 3 days
		name := w.tookSnapshot(c, "before the upgrade")
		l := w.pageSnapshots(c)
		if len(l.Snapshots.Items) != 1 || l.Snapshots.Items[0].Name != name || l.Snapshots.Items[0].ExpiresAt == nil {
			t.Fatalf("listed %+v", l.Snapshots.Items)
		}
		created, err := time.Parse(time.RFC3339, l.Snapshots.Items[0].CreatedAt)
		must(t, err)
		expires, err := time.Parse(time.RFC3339, *l.Snapshots.Items[0].ExpiresAt)
		must(t, err)
		if got := expires.Sub(created); got != 72*time.Hour || l.Snapshots.LifetimeS != 3*86400 {
			t.Errorf("lifetime %s (lifetime_s %d), want 3 days", got, l.Snapshots.LifetimeS)
		}
		if l.Status.Quotas.Snapshots.Used != 1 || l.Snapshots.Quota.Used != 1 || l.Snapshots.Quota.Max != 2 {
			t.Errorf("quota: status %+v, section %+v; want 1 of 2", l.Status.Quotas.Snapshots, l.Snapshots.Quota)
		}
		if names, _ := w.sim.Snapshots(c.vmid); !slices.Equal(names, []string{name}) {
			t.Errorf("Proxmox has %v, want [%s]", names, name)
		}
	})

	t.Run("at the quota a click is refused and nothing is made", func(t *testing.T) {
		t.Parallel()
		w := shared.sub(t)
		c := w.newCustomer(101, 3) // 2 snapshots
		w.tookSnapshot(c, "one")
		w.tookSnapshot(c, "two")
		jobs := w.jobCount(c.serviceID)
		if got := w.snapshotClick(c, "three", ""); !strings.Contains(got, "You have used all 2 snapshots") {
			t.Errorf("a click at 2 of 2 answered %q, want the snapshots quota message", got)
		}
		if n := w.jobCount(c.serviceID); n != jobs {
			t.Errorf("the refused click made %d jobs", n-jobs)
		}
		if names, _ := w.sim.Snapshots(c.vmid); len(names) != 2 {
			t.Errorf("Proxmox has %v, want the 2 snapshots", names)
		}
	})

	t.Run("20 concurrent clicks at N-1 of N make exactly one more", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t) // its cron runs while the clicks keep coming
		c := w.newCustomer(100, 3)
		must(t, w.seed.SetProductSetting(context.Background(), c.productID, 3, "3"))
		w.tookSnapshot(c, "one")
		w.tookSnapshot(c, "two")
		// Each client keeps clicking while the server is busy (the first
		// accepted click's job locks it), until the click is taken or
		// refused for the quota: the lock alone must not be what keeps
		// the count at 3.
		answers := make([]string, 20)
		var clicks sync.WaitGroup
		for i := range answers {
			clicks.Add(1)
			go func() {
				defer clicks.Done()
				for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
					answers[i] = w.snapshotClick(c, fmt.Sprintf("click %d", i), fmt.Sprintf("view-%d-snapshot", i))
					if !strings.Contains(answers[i], "Your server is busy") {
						return
					}
				}
			}()
		}
		stop := make(chan struct{})
		cron := make(chan struct{})
		go func() {
			defer close(cron)
			for {
				select {
				case <-stop:
					return
				case <-time.After(300 * time.Millisecond):
					w.php(map[string]any{"do": "cron", "servers": w.cronServers(), "budget": 0.2})
				}
			}
		}()
		clicks.Wait()
		close(stop)
		<-cron
		ok := 0
		for i, a := range answers {
			switch {
			case a == "success":
				ok++
			case strings.Contains(a, "You have used all 3 snapshots"):
			default:
				t.Errorf("click %d ended with %q, want success or the quota message", i, a)
			}
		}
		if ok != 1 {
			t.Fatalf("%d of 20 clicks were taken, want exactly 1: %q", ok, answers)
		}
		if j := w.newestJob(c); j.Kind == "snapshot.create" {
			w.follow(c, j.ID)
		}
		if names, _ := w.sim.Snapshots(c.vmid); len(names) != 3 {
			t.Errorf("Proxmox has %d snapshots, want 3: %v", len(names), names)
		}
		if l := w.pageSnapshots(c); len(l.Snapshots.Items) != 3 {
			t.Errorf("%d listed, want 3", len(l.Snapshots.Items))
		}
	})

	t.Run("rollback of a running VM: running again with the snapshot's config", func(t *testing.T) {
		t.Parallel()
		w := shared.sub(t)
		c := w.newCustomer(103, 3)
		before, _ := w.sim.VMConfig(c.vmid)
		first := w.tookSnapshot(c, "good state")
		w.tookSnapshot(c, "later")
		// After the snapshots: a new name (a running VM takes it at once),
		// more memory (pending until a restart) and a new description.
		w.pveConfig(c.vmid, url.Values{"name": {"renamed-after"}, "memory": {"4096"}, "description": {"kept across the rollback"}})
		if changed, _ := w.sim.VMConfig(c.vmid); changed["name"] != "renamed-after" {
			t.Fatalf("the change did not apply: name %q", changed["name"])
		}
		if got := w.button(c, "snapshotRollback", map[string]any{"pvekeep_snapshot_name": first, "pvekeep_token": "k-rollback"}); got != "success" {
			t.Fatalf("Rollback answered %q", got)
		}
		j := w.newestJob(c)
		if j.Kind != "snapshot.rollback" {
			t.Fatalf("newest job after Rollback = %+v", j)
		}
		if done, _ := w.follow(c, j.ID); done.State != "succeeded" {
			t.Fatalf("rollback ended %s: %s", done.State, done.Error)
		}
		after, _ := w.sim.VMConfig(c.vmid)
		if after["name"] != before["name"] || after["memory"] != before["memory"] || after["parent"] != first {
			t.Errorf("after the rollback name %q memory %q parent %q, want the snapshot's %q, %q and %q",
				after["name"], after["memory"], after["parent"], before["name"], before["memory"], first)
		}
		if pending, _, _ := w.sim.VMPending(c.vmid); len(pending) != 0 {
			t.Errorf("pending changes %v survived the rollback", pending)
		}
		if after["description"] != "kept across the rollback" {
			t.Errorf("description %q: qemu-server keeps the VM's current description", after["description"])
		}
		if !w.running(c.vmid) {
			t.Error("the VM is stopped after rolling back a running VM")
		}
	})

	t.Run("newest-only storage, older target: invalid_state and nothing changed", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t) // its own simulator: the storage flag is global
		c := w.newCustomer(100, 3)
		first := w.tookSnapshot(c, "first")
		second := w.tookSnapshot(c, "second")
		must(t, w.sim.SetNewestOnlyRollback("local-lvm", true))
		got := w.button(c, "snapshotRollback", map[string]any{"pvekeep_snapshot_name": first, "pvekeep_token": "k-older"})
		if !strings.Contains(got, "only to the newest snapshot") || !strings.Contains(got, "Nothing was changed") {
			t.Errorf("Rollback to the older snapshot answered %q, want the translated newest-only message", got)
		}
		cfg, _ := w.sim.VMConfig(c.vmid)
		if cfg["parent"] != second || cfg["lock"] != "" || !w.running(c.vmid) {
			t.Errorf("the VM changed: parent %q lock %q running %v", cfg["parent"], cfg["lock"], w.running(c.vmid))
		}
		if names, _ := w.sim.Snapshots(c.vmid); len(names) != 2 {
			t.Errorf("Proxmox has %v, want both snapshots", names)
		}
		if j := w.activeJob(c); j != nil {
			t.Errorf("a job is still active: %+v", j)
		}
		// The newest one rolls back fine.
		if got := w.button(c, "snapshotRollback", map[string]any{"pvekeep_snapshot_name": second, "pvekeep_token": "k-newest"}); got != "success" {
			t.Errorf("Rollback to the newest answered %q", got)
		}
	})

	t.Run("snapshot calls during a backup are locked, and the other way round", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t) // no other test's ticks end its jobs early
		c := w.newCustomer(100, 3)
		name := w.tookSnapshot(c, "existing")
		if got := w.button(c, "backupCreate", map[string]any{"pvekeep_note": "running", "pvekeep_token": "k-backup"}); got != "success" {
			t.Fatalf("Backup now answered %q", got)
		}
		for _, click := range []struct{ function, field, value string }{
			{"snapshotCreate", "pvekeep_snapshot_description", "during the backup"},
			{"snapshotRollback", "pvekeep_snapshot_name", name},
			{"snapshotRemove", "pvekeep_snapshot_name", name},
		} {
			if got := w.button(c, click.function, map[string]any{click.field: click.value}); !strings.Contains(got, "Your server is busy (a backup is running)") {
				t.Errorf("%s during a backup answered %q, want locked", click.function, got)
			}
		}
		backup := w.activeJob(c)
		if done, _ := w.follow(c, backup.ID); done.State != "succeeded" {
			t.Fatalf("backup ended %s", done.State)
		}

		if got := w.snapshotClick(c, "second", "k-second"); got != "success" {
			t.Fatalf("Take Snapshot answered %q", got)
		}
		if got := w.button(c, "backupCreate", map[string]any{"pvekeep_note": "during", "pvekeep_token": "k-backup-2"}); !strings.Contains(got, "Your server is busy (a snapshot is being taken)") {
			t.Errorf("Backup now during a snapshot answered %q, want locked", got)
		}
		snap := w.activeJob(c)
		if snap == nil || snap.Kind != "snapshot.create" {
			t.Fatalf("active job = %+v", snap)
		}
		if done, _ := w.follow(c, snap.ID); done.State != "succeeded" {
			t.Fatalf("snapshot ended %s", done.State)
		}
		if n := len(w.pageSnapshots(c).Snapshots.Items); n != 2 {
			t.Errorf("%d snapshots, want 2", n)
		}
	})

	t.Run("another client's snapshot is refused and nothing changes", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t) // two customers, two VMs of their own
		victim := w.newCustomer(100, 3)
		name := w.tookSnapshot(victim, "mine")
		attacker := w.newCustomer(101, 3)

		// The victim's snapshot name posted on the attacker's own service.
		for _, function := range []string{"snapshotRollback", "snapshotRemove"} {
			got := w.button(attacker, function, map[string]any{"pvekeep_snapshot_name": name})
			if !strings.Contains(got, "no longer exists") {
				t.Errorf("%s of another service's snapshot answered %q, want not found", function, got)
			}
		}
		// The attacker logged in, posting on the victim's service.
		out := w.php(map[string]any{"do": "button", "function": "snapshotRemove", "params": w.params(victim),
			"post": map[string]any{"pvekeep_snapshot_name": name}, "session_uid": attacker.clientID})
		if !strings.Contains(string(out.Result), "You cannot change this service") {
			t.Errorf("removing on another client's service answered %s, want forbidden", out.Result)
		}
		if names, _ := w.sim.Snapshots(victim.vmid); !slices.Equal(names, []string{name}) {
			t.Errorf("Proxmox has %v, want the victim's snapshot untouched", names)
		}
		for _, task := range w.sim.State().Tasks {
			if task.Type == "qmdelsnapshot" || task.Type == "qmrollback" {
				t.Errorf("Proxmox ran %s", task.UPID)
			}
		}
	})
}

// The click that takes a snapshot, its plugin process killed right after
// it recorded the qmsnapshot it submitted (or the qmrollback), is finished
// by the ticks: one snapshot, one task.
func TestSnapshotClicksKilledAfterSubmittingConverge(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, step, function, taskType string }{
		{"take", "snapshot", "snapshotCreate", "qmsnapshot"},
		{"rollback", "rollback", "snapshotRollback", "qmrollback"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			// Short leases: the killed click's lease runs out in seconds,
			// not the default 2 minutes the follow would wait out.
			cfg := filepath.Join(t.TempDir(), "pvekeep.toml")
			must(t, os.WriteFile(cfg, []byte("[jobs]\nlease_seconds = 2\npoll_seconds = 0.1\n"), 0o600))
			w.env = append(w.env, "PVEKEEP_CONFIG="+cfg)
			c := w.newCustomer(100, 3)
			post := map[string]any{"pvekeep_snapshot_description": "killed", "pvekeep_token": "k-kill"}
			if tc.function == "snapshotRollback" {
				post = map[string]any{"pvekeep_snapshot_name": w.tookSnapshot(c, "target"), "pvekeep_token": "k-kill"}
			}
			killed := w.sub(t)
			killed.env = append(append([]string(nil), w.env...), "PVEKEEP_TEST_CRASH_AFTER_STEP="+tc.step)
			got := killed.button(c, tc.function, post)
			if got == "success" {
				t.Fatalf("the click meant to crash after %s answered success", tc.step)
			}
			j := w.activeJob(c)
			if j == nil || j.Kind != "snapshot."+map[string]string{"snapshotCreate": "create", "snapshotRollback": "rollback"}[tc.function] {
				t.Fatalf("active job after the crash = %+v", j)
			}
			if done, _ := w.follow(c, j.ID); done.State != "succeeded" {
				t.Fatalf("job ended %s: %s", done.State, done.Error)
			}
			n := 0
			for _, task := range w.sim.State().Tasks {
				if task.Type == tc.taskType {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%s ran %d times, want once", tc.taskType, n)
			}
			names, _ := w.sim.Snapshots(c.vmid)
			if len(names) != 1 {
				t.Errorf("Proxmox has %v, want one snapshot", names)
			}
			if !w.running(c.vmid) {
				t.Error("the VM is not running")
			}
		})
	}
}

// TestSnapshotsPage looks at the Snapshots card in Chromium, in both
// themes: the counter, the countdown moving without a reload, Take
// Snapshot posted from the page, Rollback confirmed with the warning, and
// the buttons greyed with the reason while the rollback runs.
func TestSnapshotsPage(t *testing.T) {
	t.Parallel()
	browser := newBrowser(t)
	w := newWorldAt(t, 8) // a rollback runs long enough to see the page busy
	s := w.startStandin()
	for i, theme := range []string{"twenty-one", "six"} {
		t.Run(theme, func(t *testing.T) {
			t.Parallel()
			w := w.sub(t)
			c := w.newCustomer(100+i, 3)
			ctx := context.Background()
			must(t, w.seed.SetProductSetting(ctx, c.productID, 3, "3")) // 3 snapshots
			must(t, w.seed.SetProductSetting(ctx, c.productID, 4, "1")) // kept 1 day
			w.tookSnapshot(c, `before the "kernel" upgrade`)
			tb := s.open(t, browser)
			tb.do(t, "size the window", chromedp.EmulateViewport(1280, 1200))
			tb.login(t, c.clientID, 0, nil)
			tb.page = s.productURL(c, theme)
			tb.load(t)

			if got := tb.text(t, `#pvekeep-snapshots-quota`); got != "1/3" {
				t.Errorf("the counter reads %q, want 1/3", got)
			}
			first := tb.text(t, `.pvekeep-snapshot-remaining`)
			// A page drawn within the second the job saw the snapshot
			// done still has the whole day left.
			if !strings.HasPrefix(first, "0 days 23:") && first != "1 day 00:00:00" {
				t.Errorf("the remaining lifetime reads %q, want 0 days 23:… (or the whole day)", first)
			}
			eval[bool](t, tb, `window.__pvekeepSamePage = true`)
			time.Sleep(2200 * time.Millisecond)
			second := tb.text(t, `.pvekeep-snapshot-remaining`)
			if second == first || second > first { // same layout: a later time sorts lower
				t.Errorf("the countdown did not move down: %q, then %q", first, second)
			}
			if !eval[bool](t, tb, `window.__pvekeepSamePage === true`) {
				t.Errorf("the page reloaded while counting down")
			}
			if got := tb.text(t, `.pvekeep-snapshots-note`); !strings.Contains(got, "not backups") {
				t.Errorf("the note reads %q", got)
			}
			tb.screenshot(t, theme+"-snapshots")

			// Take Snapshot from the page.
			tb.do(t, "type a description", chromedp.SendKeys(chromedp.CSS(`#pvekeep-snapshot-description`), "from the page"))
			tb.submit(t, `[data-pvekeep=snapshot-create-submit]`)
			if got := tb.attr(t, `#pvekeep-flash`, "data-kind"); got != "success" {
				t.Fatalf("after Take Snapshot the flash is %q: %q", got, tb.text(t, `#pvekeep-flash`))
			}
			j := w.newestJob(c)
			if j.Kind != "snapshot.create" {
				t.Fatalf("newest job after Take Snapshot = %+v", j)
			}
			if done, _ := w.follow(c, j.ID); done.State != "succeeded" {
				t.Fatalf("snapshot ended %s: %s", done.State, done.Error)
			}
			tb.load(t)
			if n := tb.count(t, `tr[data-pvekeep-snapshot]`); n != 2 {
				t.Fatalf("%d snapshots on the page, want 2", n)
			}

			// Rollback to the first one, confirmed with the warning.
			tb.submit(t, `tr[data-pvekeep-snapshot]:last-child [data-pvekeep=snapshot-rollback]`)
			if cs := tb.confirms(); len(cs) == 0 || !strings.Contains(cs[len(cs)-1], "is lost") {
				t.Errorf("Rollback asked %q, want the warning that changes are lost", cs)
			}
			if got := tb.attr(t, `#pvekeep-flash`, "data-kind"); got != "success" {
				t.Fatalf("after Rollback the flash is %q: %q", got, tb.text(t, `#pvekeep-flash`))
			}
			if tb.count(t, `#pvekeep-snapshots-lock`) != 1 {
				t.Errorf("while the rollback runs the card does not say why nothing can be done")
			}
			for _, sel := range []string{`[data-pvekeep=snapshot-rollback]`, `[data-pvekeep=snapshot-remove]`, `[data-pvekeep=snapshot-create-submit]`} {
				if n, d := tb.count(t, sel), tb.count(t, sel+`[disabled]`); n == 0 || d != n {
					t.Errorf("while the rollback runs %d of %d %s are disabled", d, n, sel)
				}
			}
			tb.screenshot(t, theme+"-snapshots-busy")
			if j := w.newestJob(c); j.Kind != "snapshot.rollback" {
				t.Fatalf("newest job after Rollback = %+v", j)
			} else if done, _ := w.follow(c, j.ID); done.State != "succeeded" {
				t.Fatalf("rollback ended %s: %s", done.State, done.Error)
			}
			tb.load(t)
			if n := tb.count(t, `[data-pvekeep=snapshot-rollback]:not([disabled])`); n != 2 {
				t.Errorf("after the rollback %d Rollback buttons are enabled, want 2", n)
			}
		})
	}
}
