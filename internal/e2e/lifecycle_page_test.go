package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/pvekeep/pvekeep/internal/pvesim"
	"github.com/pvekeep/pvekeep/internal/seed"
)

// TestVMLifeThroughWHMCS is issue 10 as WHMCS drives it: the module
// commands run by the stand-in (cli.php command: PreModule hooks, the
// function, the status changed only on "success") against the real plugin,
// MariaDB and the simulator, the cron ticking the jobs on; the client's
// page looked at in Chromium in both themes. An order is created into a
// running VM at its package with the service's cloud-init; a suspension
// stops it, says why and refuses the client's actions; an unsuspension
// starts it; a package change grows it and a shrink is refused with the
// plugin's words; a termination destroys it.
func TestVMLifeThroughWHMCS(t *testing.T) {
	t.Parallel()
	browser := newBrowser(t)
	w := newWorld(t)
	ctx := context.Background()
	db := w.db.Store.DB()
	en := shipped(t, "en")

	// A paid order: Pending, no VM yet; WHMCS holds the password encrypted,
	// the dedicated IP and the client's SSH key in a custom field.
	clientID, err := w.seed.Client(ctx, seed.Client{FirstName: "New", LastName: "Order", Email: "new@example.test"})
	must(t, err)
	productID, err := w.seed.Product(ctx, seed.Product{Name: "KVM S", BackupStorage: "backup", BackupsQuota: 3, SnapshotsQuota: 2,
		Settings: map[int]string{5: "2", 6: "2", 7: "8", 22: fmt.Sprint(pvesim.TemplateVMID),
			24: "ipv4_gateway = 203.0.113.1\nipv4_prefix = 24\ndns_servers = 192.0.2.53\nterminate_grace_days = 0"}})
	must(t, err)
	serviceID, err := w.seed.Service(ctx, seed.Service{ClientID: clientID, ProductID: productID, ServerID: w.srvID,
		Status: "Pending", Domain: "web1.example.test"})
	must(t, err)
	password, err := seed.Encrypt(seed.StandinCCHash, `S3cret "pw"`)
	must(t, err)
	_, err = db.Exec("UPDATE tblhosting SET username = 'admin', password = ?, dedicatedip = '203.0.113.10' WHERE id = ?", password, serviceID)
	must(t, err)
	const sshKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL+RVYKIdHZP0vFs3hkTTkBvM7CvTh8B+lP1dgYx3DGk new@laptop"
	w.customField(t, productID, serviceID, "SSH Key|Your public key", sshKey)
	// The admin's "vmid" field, empty until Create fills it (README step 6).
	_, err = w.seed.VMIDField(ctx, productID)
	must(t, err)
	c := customer{clientID: clientID, serviceID: serviceID, productID: productID}
	s := w.startStandin()

	command := func(t *testing.T, name string, args ...string) (bool, string) {
		t.Helper()
		var got struct {
			Success bool   `json:"success"`
			Result  string `json:"result"`
		}
		s.cli(t, &got, append([]string{"command", name, fmt.Sprint(serviceID)}, args...)...)
		return got.Success, got.Result
	}
	status := func(t *testing.T) string {
		t.Helper()
		var st string
		must(t, db.QueryRow("SELECT domainstatus FROM tblhosting WHERE id = ?", serviceID).Scan(&st))
		return st
	}
	// run runs a command that must be accepted, and ticks its job to the end.
	run := func(t *testing.T, name, wantStatus string, args ...string) {
		t.Helper()
		if ok, msg := command(t, name, args...); !ok {
			t.Fatalf("%s answered %q, want success", name, msg)
		}
		if got := status(t); got != wantStatus {
			t.Fatalf("after %s the service is %s, want %s", name, got, wantStatus)
		}
		w.finishJobs(t, c)
	}
	screens := func(t *testing.T, name string) {
		for _, theme := range []string{"twenty-one", "six"} {
			tb := s.open(t, browser)
			tb.do(t, "size the window", chromedp.EmulateViewport(1280, 1000))
			tb.login(t, clientID, 0, nil)
			tb.goTo(t, s.productURL(c, theme))
			tb.screenshot(t, theme+"-"+name)
		}
	}

	var vmid int
	t.Run("create", func(t *testing.T) {
		run(t, "Create", "Active")
		vmid = w.boundVMID(t, c)
		c.vmid = vmid
		if vmid == pvesim.TemplateVMID || vmid <= 0 {
			t.Fatalf("the service is bound to VM %d", vmid)
		}
		var field string
		must(t, db.QueryRow(`SELECT v.value FROM tblcustomfieldsvalues v JOIN tblcustomfields f ON f.id = v.fieldid
			WHERE f.relid = ? AND f.fieldname LIKE 'vmid%' AND v.relid = ?`, productID, serviceID).Scan(&field))
		if field != fmt.Sprint(vmid) {
			t.Errorf("the admin's vmid field reads %q, want %d", field, vmid)
		}
		vm := readVM(t, w.sim, vmid)
		if vm.Cores != "2" || vm.Memory != "2048" || vm.SysGiB != 8 || !vm.Running {
			t.Errorf("the new VM is %+v, want 2 cores, 2048 MiB, an 8 GiB system disk, running", vm)
		}
		cfg, _ := w.sim.VMConfig(vmid)
		for key, want := range map[string]string{"name": "web1.example.test", "ciuser": "admin", "nameserver": "192.0.2.53"} {
			if cfg[key] != want {
				t.Errorf("cloud-init %s = %q, want %q", key, cfg[key], want)
			}
		}
		if ip := cfg["ipconfig0"]; !strings.Contains(ip, "ip=203.0.113.10/24") || !strings.Contains(ip, "gw=203.0.113.1") {
			t.Errorf("cloud-init ipconfig0 = %q, want the dedicated IP /24 with the product's gateway", ip)
		}
		if got := cfg["sshkeys"]; !strings.Contains(got, "ssh-ed25519") && !strings.Contains(got, "ssh-ed25519%20") {
			t.Errorf("cloud-init sshkeys = %q, want the client's key", got)
		}
		if got := cfg["cipassword"]; got == "" || strings.Contains(got, "S3cret") {
			t.Errorf("cloud-init cipassword = %q, want the service's password, hashed", got)
		}
		screens(t, "created")
	})
	if vmid == 0 {
		return
	}

	t.Run("suspend", func(t *testing.T) {
		const reason = `Overdue invoice <#42> & "reminders"`
		run(t, "Suspend", "Suspended", reason)
		if readVM(t, w.sim, vmid).Running {
			t.Errorf("the suspended service's VM still runs")
		}
		// WHMCS shows no module output for a Suspended service; the module
		// itself, asked anyway, says why and offers nothing.
		var ca struct{ HTML string }
		s.cli(t, &ca, "client-area", fmt.Sprint(serviceID))
		if !strings.Contains(ca.HTML, `id="pvekeep-suspended"`) || strings.Contains(ca.HTML, "<form") {
			t.Errorf("the module's page of a suspended service lacks the notice or offers forms:\n%s", ca.HTML)
		}
		if want := "Reason: Overdue invoice &lt;#42&gt; &amp; &quot;reminders&quot;"; !strings.Contains(ca.HTML, want) {
			t.Errorf("the notice does not give the reason %q escaped", reason)
		}
		if !strings.Contains(ca.HTML, strings.SplitN(en["service.suspended"], ",", 2)[0]) {
			t.Errorf("the notice does not say the service is suspended")
		}
		// The plugin refuses the client's actions itself, whatever the page.
		jobs := w.jobCount(serviceID)
		if got := w.button(c, "backupCreate", map[string]any{"pvekeep_note": "while suspended"}); got != en["service.suspended_refused"] {
			t.Errorf("a backup while suspended answered %q, want %q", got, en["service.suspended_refused"])
		}
		if got := w.button(c, "scheduleSave", map[string]any{"pvekeep_day_mon": "1", "pvekeep_time_mon": "03:00"}); got == "success" {
			t.Errorf("a schedule change while suspended answered success")
		}
		if n := w.jobCount(serviceID); n != jobs {
			t.Errorf("%d jobs after the refused actions, want %d", n, jobs)
		}
		screens(t, "suspended")
	})

	t.Run("unsuspend", func(t *testing.T) {
		run(t, "Unsuspend", "Active")
		if !readVM(t, w.sim, vmid).Running {
			t.Errorf("the unsuspended service's VM is not running")
		}
		tb := s.open(t, browser)
		tb.login(t, clientID, 0, nil)
		tb.goTo(t, s.productURL(c, ""))
		tb.mustShowPage(t)
		if tb.count(t, `#pvekeep-suspended`) != 0 || tb.count(t, `[data-pvekeep=backup-create]`) != 1 {
			t.Errorf("after Unsuspend the page shows the suspension or no Backup now form")
		}
	})

	t.Run("change package", func(t *testing.T) {
		must(t, w.seed.SetProductSetting(ctx, productID, 5, "4"))
		must(t, w.seed.SetProductSetting(ctx, productID, 7, "12"))
		run(t, "ChangePackage", "Active")
		if vm := readVM(t, w.sim, vmid); vm.Cores != "4" || vm.SysGiB != 12 || !vm.Running {
			t.Errorf("after the upgrade the VM is %+v, want 4 cores, 12 GiB, running", vm)
		}
		// A shrink is refused, in the plugin's words, and nothing changes.
		must(t, w.seed.SetProductSetting(ctx, productID, 7, "6"))
		jobs := w.jobCount(serviceID)
		ok, msg := command(t, "ChangePackage")
		if ok || !strings.Contains(strings.ToLower(msg), "disk") {
			t.Errorf("a shrink answered %v %q, want a refusal naming the disk", ok, msg)
		}
		t.Logf("the shrink's refusal as WHMCS shows it: %s", msg)
		if strings.ContainsAny(msg, "<>") {
			t.Errorf("the refusal %q is not escaped for WHMCS's raw output", msg)
		}
		if vm := readVM(t, w.sim, vmid); vm.SysGiB != 12 || vm.Cores != "4" {
			t.Errorf("after the refused shrink the VM is %+v", vm)
		}
		if n := w.jobCount(serviceID); n != jobs {
			t.Errorf("the refused shrink left %d jobs, want %d", n-jobs, 0)
		}
		must(t, w.seed.SetProductSetting(ctx, productID, 7, "12"))
	})

	t.Run("terminate", func(t *testing.T) {
		run(t, "Terminate", "Terminated")
		if _, ok := w.sim.VMConfig(vmid); ok {
			t.Errorf("VM %d still exists after Terminate", vmid)
		}
	})
}

// customField sets a product custom field (created on first use) of a
// service, as WHMCS keeps what the client typed at the order.
func (w *world) customField(t *testing.T, productID, serviceID int64, name, value string) {
	t.Helper()
	db := w.db.Store.DB()
	res, err := db.Exec(`INSERT INTO tblcustomfields (type, relid, fieldname, fieldtype, description, fieldoptions, regexpr,
		adminonly, required, showorder, showinvoice, sortorder, created_at, updated_at)
		VALUES ('product', ?, ?, 'textarea', '', '', '', '', '', 'on', '', 0, NOW(), NOW())`, productID, name)
	must(t, err)
	id, err := res.LastInsertId()
	must(t, err)
	_, err = db.Exec(`INSERT INTO tblcustomfieldsvalues (fieldid, relid, value, created_at, updated_at) VALUES (?, ?, ?, NOW(), NOW())`,
		id, serviceID, value)
	must(t, err)
}

// systemCall calls a method about c's service as WHMCS's automation does
// (no session: the system acts), decoding the result into v.
func (w *world) systemCall(t *testing.T, c customer, method string, fields map[string]any, v any) {
	t.Helper()
	if fields == nil {
		fields = map[string]any{}
	}
	out := w.php(map[string]any{"do": "call", "method": method, "params": w.params(c), "fields": fields})
	if out.Error != nil {
		t.Fatalf("%s: error %d %s %v", method, out.Error.Code, out.Error.Message, out.Error.Data)
	}
	must(t, json.Unmarshal(out.Result, v))
}

// boundVMID is the VM the plugin bound c's service to.
func (w *world) boundVMID(t *testing.T, c customer) int {
	t.Helper()
	var st struct {
		VMID int `json:"vmid"`
	}
	w.systemCall(t, c, "service.status", nil, &st)
	return st.VMID
}

// finishJobs ticks the panel's cron until c's service's newest job has
// ended, failing the test unless it succeeded. (The job's row is read:
// jobs.get needs a VM bound, which a create's job gives the service only
// on its way.)
func (w *world) finishJobs(t *testing.T, c customer) {
	t.Helper()
	db := w.db.Store.DB()
	var id int64
	must(t, db.QueryRow("SELECT id FROM mod_pvekeep_jobs WHERE service_id = ? ORDER BY id DESC LIMIT 1", c.serviceID).Scan(&id))
	for i := 0; i < 600; i++ {
		var kind, state, msg string
		must(t, db.QueryRow("SELECT kind, state, error FROM mod_pvekeep_jobs WHERE id = ?", id).Scan(&kind, &state, &msg))
		if state != "queued" && state != "running" {
			if state != "succeeded" {
				t.Fatalf("job %d (%s) ended %s: %s", id, kind, state, msg)
			}
			return
		}
		w.tick(0.2)
	}
	var step, state string
	must(t, db.QueryRow("SELECT step, state FROM mod_pvekeep_jobs WHERE id = ?", id).Scan(&step, &state))
	t.Fatalf("job %d did not finish: %s at step %q", id, state, step)
}
