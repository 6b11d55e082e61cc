package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/mail/mailtest"
	"github.com/pvekeep/pvekeep/internal/plan"
	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/reconcile"
	"github.com/pvekeep/pvekeep/internal/seed"
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
