package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/mail/mailtest"
	"github.com/pvekeep/pvekeep/internal/plan"
	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/reconcile"
	"github.com/pvekeep/pvekeep/internal/seed"
	"github.com/pvekeep/pvekeep/internal/store"
)

// service.create through the module's PHP client, the real plugin binary,
// MariaDB, the simulator and an SMTP server; the kill tests SIGKILL the
// cron's plugin process right after each step is recorded.

// orderPackage is what a new order buys: more than the template has (1
// core, 1 GB, a 4 GiB disk), with a dedicated IP's network settings.
var orderPackage = map[int]string{
	plan.SettingCores + 1: "2", plan.SettingRAM + 1: "2", plan.SettingSystemDisk + 1: "8", plan.SettingExtraDisk + 1: "2",
	plan.SettingBridge + 1: "vmbr0", plan.SettingDiskStorage + 1: "local-lvm", plan.SettingOSTemplate + 1: "9000",
	plan.SettingMore + 1: "ipv4_gateway = 198.51.100.1\nipv4_prefix = 24\ndns_servers = 198.51.100.53",
}

const orderKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f ana@laptop"

// orderWorld is a world with SMTP and short leases, and a Pending order
// of orderPackage without a VM.
type orderWorld struct {
	*world
	smtp *mailtest.Server
	c    customer
}

func newOrderWorld(t testing.TB) *orderWorld { return newOrderWorldAt(t, 60) }

// newOrderWorldAt is newOrderWorld with the simulator speed times faster
// than Proxmox.
func newOrderWorldAt(t testing.TB, speed float64) *orderWorld {
	t.Helper()
	w := newWorldAt(t, speed)
	smtp := mailtest.Start(t)
	host, port := smtp.Addr()
	cfg := filepath.Join(t.TempDir(), "pvekeep.toml")
	body := fmt.Sprintf("[jobs]\nlease_seconds = 2\npoll_seconds = 0.1\n\n[smtp]\nhost = %q\nport = %d\ntls = \"none\"\nfrom = \"support@example.test\"\ntimeout_seconds = 5\nretry_after_seconds = 7\n", host, port)
	must(t, os.WriteFile(cfg, []byte(body), 0o600))
	w.env = append(w.env, "PVEKEEP_CONFIG="+cfg)
	ctx := context.Background()
	clientID, err := w.seed.Client(ctx, seed.Client{FirstName: "Ana", LastName: "Silva", Email: "ana@example.test"})
	must(t, err)
	productID, err := w.seed.Product(ctx, seed.Product{Name: "KVM S", BackupStorage: "backup", BackupsQuota: 2, Settings: orderPackage})
	must(t, err)
	_, err = w.seed.VMIDField(ctx, productID)
	must(t, err)
	serviceID, err := w.seed.Service(ctx, seed.Service{ClientID: clientID, ProductID: productID, ServerID: w.srvID,
		Status: "Pending", Domain: "ana-vps.example.test"})
	must(t, err)
	return &orderWorld{world: w, smtp: smtp, c: customer{clientID: clientID, serviceID: serviceID, productID: productID}}
}

// create is WHMCS's CreateAccount as the module sends it: no session (the
// system acts), the service's facts in the call.
func (ow *orderWorld) create() job {
	ow.t.Helper()
	out := ow.php(map[string]any{"do": "call", "method": "service.create", "params": ow.params(ow.c), "fields": map[string]any{
		"hostname": "ana-vps.example.test", "username": "ana", "password": "Tr1cky'pass\"word", "dedicated_ip": "198.51.100.20",
		"ssh_keys": orderKey, "config_options": map[string]any{},
	}})
	if out.Error != nil {
		ow.t.Fatalf("service.create: %d %s %v", out.Error.Code, out.Error.Message, out.Error.Data)
	}
	var res struct{ Job job }
	must(ow.t, json.Unmarshal(out.Result, &res))
	return res.Job
}

// finish ticks the cron until the job ends (reading the job row: the
// service has no VM to ask jobs.get about until the create binds it).
func (ow *orderWorld) finish(id int64) pvekeep.Job {
	ow.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		ow.tick(0.5)
		j, err := ow.db.Store.Job(context.Background(), pvekeep.JobID(id))
		must(ow.t, err)
		if j.State.Terminal() {
			return j
		}
	}
	ow.t.Fatalf("job %d did not finish within 2 minutes", id)
	return pvekeep.Job{}
}

// ours lists the VMs the create made for the service (the clone's mark).
func (ow *orderWorld) ours() []int {
	var out []int
	for _, v := range ow.sim.State().VMs {
		if strings.TrimSpace(v.Config["description"]) == fmt.Sprintf("pvekeep: WHMCS service %d", ow.c.serviceID) {
			out = append(out, v.VMID)
		}
	}
	return out
}

// checkMade asserts the one VM is at the package with the order's
// cloud-init, running, bound, and that one welcome email went out.
func (ow *orderWorld) checkMade(t *testing.T, vmid pvekeep.VMID) {
	t.Helper()
	if got := ow.ours(); len(got) != 1 || got[0] != int(vmid) {
		t.Fatalf("VMs made for the service = %v, want just %d", got, vmid)
	}
	cfg, _ := ow.sim.VMConfig(int(vmid))
	want := map[string]string{"cores": "2", "memory": "2048", "name": "ana-vps.example.test", "ciuser": "ana",
		"ipconfig0": "ip=198.51.100.20/24,gw=198.51.100.1", "nameserver": "198.51.100.53", "sshkeys": pve.URLEncode(orderKey)}
	for k, v := range want {
		if cfg[k] != v {
			t.Errorf("config %s = %q, want %q", k, cfg[k], v)
		}
	}
	for k, size := range map[string]string{"scsi0": "size=8G", "scsi1": "size=2G"} {
		if !strings.Contains(cfg[k], size) {
			t.Errorf("%s = %q, want %s", k, cfg[k], size)
		}
	}
	if !strings.HasPrefix(cfg["cipassword"], "$6$") {
		t.Errorf("cipassword = %q, want a SHA-512 crypt hash", cfg["cipassword"])
	}
	running := false
	for _, v := range ow.sim.State().VMs {
		if v.VMID == int(vmid) {
			running = v.Running && v.Lock == ""
		}
	}
	if !running {
		t.Error("the new VM is not running, or still locked")
	}
	f, err := ow.db.Store.Service(context.Background(), pvekeep.ServiceID(ow.c.serviceID))
	must(t, err)
	if f.VMID != vmid {
		t.Errorf("service bound to %d, want %d", f.VMID, vmid)
	}
	ow.smtp.WaitFor(1, 10*time.Second)
	msgs := ow.smtp.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d emails, want one welcome email", len(msgs))
	}
	if m := msgs[0]; !strings.Contains(m.TextBody, "198.51.100.20") || strings.Contains(string(m.Data), "Tr1cky") {
		t.Errorf("welcome email:\n%s", m.TextBody)
	}
	counts := map[string]int{}
	for _, task := range ow.sim.State().Tasks {
		counts[task.Type]++
	}
	if counts["qmclone"] != 1 || counts["qmstart"] != 1 {
		t.Errorf("tasks %v, want one qmclone and one qmstart", counts)
	}
}

func TestCreateAccountMakesARunningVMAtItsPackage(t *testing.T) {
	t.Parallel()
	ow := newOrderWorld(t)
	j := ow.create()
	if j.Kind != "service.create" || j.State == "failed" {
		t.Fatalf("service.create answered %+v", j)
	}
	done := ow.finish(j.ID)
	if done.State != pvekeep.JobSucceeded {
		t.Fatalf("create ended %s: %s", done.State, done.Error)
	}
	ow.checkMade(t, done.VMID)
	raw, err := os.ReadFile(ow.modLog)
	if err == nil && strings.Contains(string(raw), "Tr1cky") {
		t.Error("the module log holds the plain password")
	}
}

// Killed right after any step, the next tick finishes the create: one VM,
// one clone, one start, one email.
func TestCreateConvergesWhenThePluginIsKilledAfterAnyStep(t *testing.T) {
	t.Parallel()
	steps := []string{"clone", "cloudinit", "bind"}
	for _, s := range reconcile.Steps {
		steps = append(steps, string(s))
	}
	steps = append(steps, "email_reserved", "email_recorded")
	for _, step := range steps {
		t.Run(step, func(t *testing.T) {
			t.Parallel()
			ow := newOrderWorld(t)
			j := ow.create()
			out := ow.php(map[string]any{"do": "cron", "servers": ow.cronServers(), "budget": 120,
				"env": map[string]string{"PVEKEEP_TEST_CRASH_AFTER_STEP": step}, "transport_error_expected": true})
			if out.TransportError == "" {
				t.Fatalf("the tick meant to crash after %s finished normally: %s", step, out.Result)
			}
			done := ow.finish(j.ID)
			if done.State != pvekeep.JobSucceeded {
				t.Fatalf("create killed after %s ended %s: %s", step, done.State, done.Error)
			}
			ow.checkMade(t, done.VMID)
		})
	}
}

// The VM's whole life through the packaged module as WHMCS runs its
// commands (the stand-in's cli.php command, which changes the service's
// status only on "success") and WHMCS's cron (AfterCronJob): Create,
// Suspend (the client's changes refused), Unsuspend, ChangePackage up,
// ChangePackage down (refused, nothing changed), Terminate (grace 0: the
// backups go with the next runs of the cron).
func TestTheVMsWholeLifeThroughTheModule(t *testing.T) {
	t.Parallel()
	requireSmarty(t)
	ow := newOrderWorld(t)
	ctx := context.Background()
	db := ow.db.Store.DB()
	pw, err := seed.Encrypt(seed.StandinCCHash, "Tr1cky'pass\"word")
	must(t, err)
	_, err = db.Exec("UPDATE tblhosting SET username = 'ana', password = ?, dedicatedip = '198.51.100.21' WHERE id = ?", pw, ow.c.serviceID)
	must(t, err)
	s := &standin{w: ow.world, env: ow.standinEnv(t.TempDir())}
	sid := fmt.Sprint(ow.c.serviceID)
	status := func() string {
		var st string
		must(t, db.QueryRow("SELECT domainstatus FROM tblhosting WHERE id = ?", ow.c.serviceID).Scan(&st))
		return st
	}
	command := func(name string) (bool, string) {
		var got struct {
			Success bool   `json:"success"`
			Result  string `json:"result"`
		}
		s.cli(t, &got, "command", name, sid)
		return got.Success, got.Result
	}
	// settle runs WHMCS's cron until the service has no active job.
	settle := func(what string) pvekeep.Job {
		t.Helper()
		for range 120 {
			var out any
			s.cli(t, &out, "cron")
			js, err := ow.db.Store.Jobs(ctx, store.JobFilter{ServiceID: pvekeep.ServiceID(ow.c.serviceID), Limit: 1})
			must(t, err)
			if len(js) > 0 && js[0].State.Terminal() {
				if js[0].State != pvekeep.JobSucceeded {
					t.Fatalf("%s ended %s: %s", what, js[0].State, js[0].Error)
				}
				return js[0]
			}
		}
		t.Fatalf("%s did not end", what)
		return pvekeep.Job{}
	}
	vm := func(vmid pvekeep.VMID) (map[string]string, bool) {
		for _, v := range ow.sim.State().VMs {
			if v.VMID == int(vmid) {
				return v.Config, v.Running
			}
		}
		return nil, false
	}

	if ok, res := command("Create"); !ok || status() != "Active" {
		t.Fatalf("Create = %v %q, status %s", ok, res, status())
	}
	made := settle("create")
	if cfg, running := vm(made.VMID); !running || cfg["ciuser"] != "ana" || cfg["ipconfig0"] != "ip=198.51.100.21/24,gw=198.51.100.1" {
		t.Fatalf("created VM running %v, config %v", running, cfg)
	}
	c := ow.c
	c.vmid = int(made.VMID)

	if ok, res := command("Suspend"); !ok || status() != "Suspended" {
		t.Fatalf("Suspend = %v %q, status %s", ok, res, status())
	}
	settle("suspend")
	if _, running := vm(made.VMID); running {
		t.Error("the VM runs after Suspend")
	}
	out := ow.call(c, c.clientID, "backups.create", map[string]any{"note": "while suspended"})
	if out.Error == nil || out.Error.Code != 1002 || out.Error.Data["state"] != "suspended" {
		t.Errorf("a client's backup while suspended = %+v, want 1002 with data.state suspended", out.Error)
	}
	var l struct {
		ServiceState string `json:"service_state"`
	}
	ow.mustCall(c, "backups.list", nil, &l)
	if l.ServiceState != "suspended" {
		t.Errorf("backups.list service_state = %q, want suspended", l.ServiceState)
	}

	if ok, res := command("Unsuspend"); !ok || status() != "Active" {
		t.Fatalf("Unsuspend = %v %q, status %s", ok, res, status())
	}
	settle("unsuspend")
	if _, running := vm(made.VMID); !running {
		t.Error("the VM is stopped after Unsuspend")
	}

	set := func(n int, v string) { must(t, ow.seed.SetProductSetting(ctx, ow.c.productID, n, v)) }
	set(plan.SettingCores+1, "4")
	set(plan.SettingRAM+1, "4")
	if ok, res := command("ChangePackage"); !ok {
		t.Fatalf("ChangePackage up = %v %q", ok, res)
	}
	settle("change package")
	if cfg, running := vm(made.VMID); cfg["cores"] != "4" || cfg["memory"] != "4096" || !running {
		t.Errorf("after the upgrade: cores %s memory %s running %v", cfg["cores"], cfg["memory"], running)
	}

	before, _ := vm(made.VMID)
	set(plan.SettingSystemDisk+1, "4")
	if ok, res := command("ChangePackage"); ok || !strings.Contains(res, "nothing was changed") {
		t.Errorf("ChangePackage to a smaller disk = %v %q, want refused saying nothing was changed", ok, res)
	}
	if after, _ := vm(made.VMID); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("a refused downgrade changed the VM:\n%v\n%v", before, after)
	}
	set(plan.SettingSystemDisk+1, "8")

	var created struct{ Job job }
	ow.mustCall(c, "backups.create", map[string]any{"note": "last one"}, &created)
	settle("backup")
	set(plan.SettingMore+1, orderPackage[plan.SettingMore+1]+"\nterminate_grace_days = 0")
	if ok, res := command("Terminate"); !ok || status() != "Terminated" {
		t.Fatalf("Terminate = %v %q, status %s", ok, res, status())
	}
	settle("terminate")
	if _, ok := ow.sim.VMConfig(int(made.VMID)); ok {
		t.Error("the VM exists after Terminate")
	}
	for range 20 {
		var out any
		s.cli(t, &out, "cron")
		bs, err := ow.db.Store.Backups(ctx, pvekeep.ServiceID(ow.c.serviceID), pvekeep.BackupAvailable, pvekeep.BackupRemoving)
		must(t, err)
		if len(bs) == 0 {
			return
		}
	}
	t.Error("the terminated service's backups are still there after 20 cron runs (grace 0)")
}

// Creates from separate plugin processes at the same moment — WHMCS
// accepting several orders at once — never clone onto one vmid: each
// claims its id in the database before the clone.
func TestConcurrentCreateAccountsGetDistinctVMIDs(t *testing.T) {
	t.Parallel()
	ow := newOrderWorld(t)
	ctx := context.Background()
	orders := []customer{ow.c}
	for i := range 3 {
		sid, err := ow.seed.Service(ctx, seed.Service{ClientID: ow.c.clientID, ProductID: ow.c.productID, ServerID: ow.srvID,
			Status: "Pending", Domain: fmt.Sprintf("order%d.example.test", i)})
		must(t, err)
		orders = append(orders, customer{clientID: ow.c.clientID, serviceID: sid, productID: ow.c.productID})
	}
	type answer struct {
		job job
		err string
	}
	answers := make([]answer, len(orders))
	var wg sync.WaitGroup
	for i, c := range orders {
		wg.Go(func() {
			raw, _ := json.Marshal(map[string]any{"do": "call", "method": "service.create", "params": ow.params(c), "fields": map[string]any{}})
			cmd := exec.Command(ow.phpBin, filepath.Join(repoDir, "hooks", "tests", "e2e", "driver.php"), string(raw))
			cmd.Env = append(os.Environ(), "PVEKEEP_BIN="+binary, "PVEKEEP_DSN="+ow.db.DSN, "PVEKEEP_MODULE_LOG="+ow.modLog)
			cmd.Env = append(cmd.Env, ow.env...)
			out, err := cmd.Output()
			var o struct {
				Result struct{ Job job } `json:"result"`
				Error  *rpcError         `json:"error"`
			}
			switch {
			case err != nil:
				answers[i].err = err.Error()
			case json.Unmarshal(out, &o) != nil || o.Error != nil:
				answers[i].err = string(out)
			default:
				answers[i].job = o.Result.Job
			}
		})
	}
	wg.Wait()
	vmids := map[pvekeep.VMID]int64{}
	for i, a := range answers {
		if a.err != "" {
			t.Fatalf("service.create of %d: %s", orders[i].serviceID, a.err)
		}
		done := ow.finish(a.job.ID)
		if done.State != pvekeep.JobSucceeded {
			t.Fatalf("create of %d ended %s: %s", orders[i].serviceID, done.State, done.Error)
		}
		if prev, dup := vmids[done.VMID]; dup {
			t.Errorf("services %d and %d both got vmid %d", prev, orders[i].serviceID, done.VMID)
		}
		vmids[done.VMID] = orders[i].serviceID
	}
	clones := 0
	for _, task := range ow.sim.State().Tasks {
		if task.Type == "qmclone" {
			clones++
		}
	}
	if clones != len(orders) {
		t.Errorf("%d clones for %d orders", clones, len(orders))
	}
}

// A package change or a termination whose cron process is killed right
// after a step still ends as it should: the VM at the new package,
// restarted once; the VM destroyed once. (A package change's
// reconciliation mostly runs inside the call, within its budget; the
// restore's kill tests cover those steps of the same engine.)
func TestChangePackageAndTerminateConvergeWhenKilled(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ method, step string }{
		{"service.change_package", "done"},
		{"service.change_package", "restart_down"},
		{"service.terminate", "stop"},
	} {
		t.Run(tt.method+" after "+tt.step, func(t *testing.T) {
			t.Parallel()
			ow := newOrderWorld(t)
			made := ow.finish(ow.create().ID)
			if made.State != pvekeep.JobSucceeded {
				t.Fatalf("create ended %s: %s", made.State, made.Error)
			}
			must(t, ow.seed.SetServiceStatus(context.Background(), ow.c.serviceID, "Active"))
			for n, v := range map[int]string{plan.SettingCores + 1: "4", plan.SettingRAM + 1: "4", plan.SettingSystemDisk + 1: "12"} {
				must(t, ow.seed.SetProductSetting(context.Background(), ow.c.productID, n, v))
			}
			out := ow.php(map[string]any{"do": "call", "method": tt.method, "params": ow.params(ow.c), "fields": map[string]any{}})
			if out.Error != nil {
				t.Fatalf("%s: %d %s", tt.method, out.Error.Code, out.Error.Message)
			}
			var res struct{ Job job }
			must(t, json.Unmarshal(out.Result, &res))
			crash := ow.php(map[string]any{"do": "cron", "servers": ow.cronServers(), "budget": 120,
				"env": map[string]string{"PVEKEEP_TEST_CRASH_AFTER_STEP": tt.step}, "transport_error_expected": true})
			if crash.TransportError == "" {
				t.Fatalf("the tick meant to crash after %s finished normally: %s", tt.step, crash.Result)
			}
			done := ow.finish(res.Job.ID)
			if done.State != pvekeep.JobSucceeded {
				t.Fatalf("%s killed after %s ended %s: %s", tt.method, tt.step, done.State, done.Error)
			}
			counts := map[string]int{}
			for _, task := range ow.sim.State().Tasks {
				if task.ID == fmt.Sprint(made.VMID) {
					counts[task.Type]++
				}
			}
			cfg, exists := ow.sim.VMConfig(int(made.VMID))
			if tt.method == "service.terminate" {
				if exists || counts["qmdestroy"] != 1 {
					t.Errorf("after the terminate: VM exists %v, tasks %v; want it destroyed once", exists, counts)
				}
				return
			}
			if cfg["cores"] != "4" || cfg["memory"] != "4096" || !strings.Contains(cfg["scsi0"], "size=12G") {
				t.Errorf("after the change: cores %s memory %s scsi0 %s", cfg["cores"], cfg["memory"], cfg["scsi0"])
			}
			// one start by the create, one by the restart for CPU and RAM
			if counts["qmstart"] != 2 {
				t.Errorf("tasks of the VM %v, want 2 qmstart (create, one restart)", counts)
			}
		})
	}
}
