package service_test

import (
	"context"
	"encoding/json"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/mail/mailtest"
	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/pvesim"
	"github.com/pvekeep/pvekeep/internal/seed"
	"github.com/pvekeep/pvekeep/internal/service"
	"github.com/pvekeep/pvekeep/internal/store"
)

// The VM's life through the real store (MariaDB), gateway and simulator:
// service.create, suspend, unsuspend, change_package and terminate.

// testKey is an ed25519 public key (a well-formed blob, nobody's key).
const testKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f jane@laptop"

// newVMProduct is a product whose package differs from the template (1
// core, 1 GB, a 4 GiB disk) in every managed way: 2 cores, 2 GB, an
// 8 GB system disk, a 2 GB additional disk, and More Settings for the
// network.
func newVMProduct(t *testing.T, b *bundle, settings map[int]string) int64 {
	t.Helper()
	s := map[int]string{5: "2", 6: "2", 7: "8", 8: "2", 21: "local-lvm", 22: "9000",
		24: "ipv4_gateway = 192.0.2.1\nipv4_prefix = 25\ndns_servers = 192.0.2.53, 198.51.100.53\nsearchdomain = example.net"}
	for k, v := range settings {
		s[k] = v
	}
	pid, err := b.seed.Product(context.Background(), seed.Product{BackupStorage: "backup", BackupsQuota: 3, Settings: s})
	must(t, err)
	if _, err := b.seed.VMIDField(context.Background(), pid); err != nil {
		t.Fatal(err)
	}
	return pid
}

// newOrder is a Pending service of product pid without a VM.
func newOrder(t *testing.T, b *bundle, pid int64, domain string) pvekeep.ServiceID {
	t.Helper()
	id, err := b.seed.Service(context.Background(), seed.Service{ClientID: b.clientID, ProductID: pid, ServerID: b.server.ID,
		Status: "Pending", Domain: domain})
	must(t, err)
	return pvekeep.ServiceID(id)
}

func (b *bundle) system(id pvekeep.ServiceID) service.Call {
	return service.Call{ServiceID: id, Actor: pvekeep.Actor{Type: pvekeep.ActorSystem}, Server: b.server}
}

// waitJob ticks until the job has ended and returns it.
func (b *bundle) waitJob(t *testing.T, id pvekeep.JobID) pvekeep.Job {
	t.Helper()
	for range 600 {
		_, err := b.svc.Tick(context.Background(), []pvekeep.Server{b.server}, time.Second)
		must(t, err)
		j, err := b.db.Store.Job(context.Background(), id)
		must(t, err)
		if j.State.Terminal() {
			return j
		}
		b.clock.Advance(time.Second)
	}
	t.Fatalf("job %d still active after 600 ticks", id)
	return pvekeep.Job{}
}

func (b *bundle) vm(t *testing.T, vmid pvekeep.VMID) (pvesim.VMState, bool) {
	t.Helper()
	for _, v := range b.sim.State().VMs {
		if v.VMID == int(vmid) {
			return v, true
		}
	}
	return pvesim.VMState{}, false
}

func createReq() service.CreateRequest {
	return service.CreateRequest{Username: "jane", Password: "Corr3ct-horse!", DedicatedIP: "192.0.2.10", SSHKeys: testKey + "\n\n"}
}

func TestCreateMakesARunningVMAtThePackageWithCloudInit(t *testing.T) {
	t.Parallel()
	srv := mailtest.Start(t)
	w := setupMail(t, srv, nil)
	b := w.bundle
	ctx := context.Background()
	pid := newVMProduct(t, b, nil)
	id := newOrder(t, b, pid, "web1.example.net")

	job, err := b.svc.CreateVM(ctx, b.system(id), createReq())
	must(t, err)
	if job.Kind != pvekeep.KindServiceCreate || job.State.Terminal() || job.VMID <= 0 {
		t.Fatalf("CreateVM = %+v, want an active create job with a vmid", job)
	}
	if job.UPID == "" {
		t.Errorf("the call answered before Proxmox accepted the clone (no UPID)")
	}
	if strings.Contains(string(job.Params), "Corr3ct") {
		t.Fatalf("the job row holds the plain password: %s", job.Params)
	}
	done := b.waitJob(t, job.ID)
	if done.State != pvekeep.JobSucceeded {
		t.Fatalf("create ended %s: %s", done.State, done.Error)
	}
	// Once Proxmox has it, the row keeps not even the hash.
	var params string
	must(t, b.db.Store.DB().QueryRow("SELECT params FROM mod_pvekeep_jobs WHERE id = ?", job.ID).Scan(&params))
	if strings.Contains(params, "$6$") || !json.Valid([]byte(params)) || len(params) < 10 {
		t.Errorf("the finished create's params still hold the password hash (or lost the rest): %s", params)
	}
	v, ok := b.vm(t, job.VMID)
	if !ok {
		t.Fatalf("no VM %d after the create", job.VMID)
	}
	want := map[string]string{
		"name": "web1.example.net", "cores": "2", "memory": "2048",
		"ciuser": "jane", "ipconfig0": "ip=192.0.2.10/25,gw=192.0.2.1",
		"nameserver": "192.0.2.53 198.51.100.53", "searchdomain": "example.net", "sshkeys": pve.URLEncode(testKey),
	}
	for k, val := range want {
		if v.Config[k] != val {
			t.Errorf("config %s = %q, want %q", k, v.Config[k], val)
		}
	}
	if v.Config["ide2"] != "local-lvm:vm-"+strconv.Itoa(int(job.VMID))+"-cloudinit,media=cdrom" {
		t.Errorf("ide2 = %q, want the VM's cloud-init drive (the template has none)", v.Config["ide2"])
	}
	if !v.Running || v.Lock != "" || v.Config["template"] != "" {
		t.Errorf("VM running %v lock %q template %q, want running, unlocked, no template", v.Running, v.Lock, v.Config["template"])
	}
	if !strings.Contains(v.Config["scsi0"], "size=8G") || !strings.Contains(v.Config["scsi1"], "size=2G") {
		t.Errorf("disks scsi0 %q scsi1 %q, want 8G and 2G", v.Config["scsi0"], v.Config["scsi1"])
	}
	if pw := v.Config["cipassword"]; !strings.HasPrefix(pw, "$6$") || strings.Contains(pw, "Corr3ct") {
		t.Errorf("cipassword = %q, want a SHA-512 crypt hash", pw)
	}
	f, err := b.db.Store.Service(ctx, id)
	must(t, err)
	if f.VMID != job.VMID {
		t.Errorf("service bound to %d, want %d", f.VMID, job.VMID)
	}
	var field string
	must(t, b.db.Store.DB().QueryRowContext(ctx, `SELECT v.value FROM tblcustomfieldsvalues v
JOIN tblcustomfields f ON f.id = v.fieldid WHERE f.relid = ? AND v.relid = ?`, pid, id).Scan(&field))
	if field != strconv.Itoa(int(job.VMID)) {
		t.Errorf("vmid custom field = %q, want %d", field, job.VMID)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d emails, want one welcome email", len(msgs))
	}
	if m := msgs[0]; !strings.Contains(m.Subject, "web1.example.net") || !strings.Contains(m.TextBody, "192.0.2.10") ||
		!strings.Contains(m.TextBody, "jane") || strings.Contains(string(m.Data), "Corr3ct") {
		t.Errorf("welcome email %q:\n%s", m.Subject, m.TextBody)
	}
	// WHMCS's Create clicked again: the same job, no second VM.
	again, err := b.svc.CreateVM(ctx, b.system(id), createReq())
	if err != nil || again.ID != job.ID {
		t.Errorf("create again = job %d, %v; want job %d", again.ID, err, job.ID)
	}
}

func TestCreateWithoutIPUsesDHCPAndNoGateway(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	pid := newVMProduct(t, b, map[int]string{24: "ipv4_gateway = 192.0.2.1"})
	id := newOrder(t, b, pid, "dhcp.example.net")
	job, err := b.svc.CreateVM(ctx, b.system(id), service.CreateRequest{})
	must(t, err)
	if done := b.waitJob(t, job.ID); done.State != pvekeep.JobSucceeded {
		t.Fatalf("create ended %s: %s", done.State, done.Error)
	}
	v, _ := b.vm(t, job.VMID)
	if v.Config["ipconfig0"] != "ip=dhcp" || v.Config["ciuser"] != "" || v.Config["cipassword"] != "" {
		t.Errorf("cloud-init ipconfig0 %q ciuser %q cipassword %q, want DHCP and the template's user", v.Config["ipconfig0"], v.Config["ciuser"], v.Config["cipassword"])
	}
}

func TestConcurrentCreatesNeverShareAVMID(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	pid := newVMProduct(t, b, nil)
	const n = 6
	ids := make([]pvekeep.ServiceID, n)
	for i := range ids {
		ids[i] = newOrder(t, b, pid, "c"+strconv.Itoa(i)+".example.net")
	}
	jobs := make([]pvekeep.Job, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			jobs[i], errs[i] = b.svc.CreateVM(ctx, b.system(ids[i]), service.CreateRequest{})
		}()
	}
	wg.Wait()
	seen := map[pvekeep.VMID]int{}
	for i, j := range jobs {
		must(t, errs[i])
		if prev, dup := seen[j.VMID]; dup {
			t.Errorf("services %d and %d got vmid %d", ids[prev], ids[i], j.VMID)
		}
		seen[j.VMID] = i
	}
	for _, j := range jobs {
		if done := b.waitJob(t, j.ID); done.State != pvekeep.JobSucceeded {
			t.Errorf("create %d ended %s: %s", j.ID, done.State, done.Error)
		}
	}
	for vmid := range seen {
		if _, ok := b.vm(t, vmid); !ok {
			t.Errorf("no VM %d", vmid)
		}
	}
}

func TestCreateRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	tests := []struct {
		name       string
		settings   map[int]string
		actor      pvekeep.ActorType
		req        service.CreateRequest
		wantReason pvekeep.Reason
		wantField  string
	}{
		{"a client may not create", nil, pvekeep.ActorClient, service.CreateRequest{}, pvekeep.ReasonForbidden, ""},
		{"no template", map[int]string{22: ""}, pvekeep.ActorSystem, service.CreateRequest{}, pvekeep.ReasonInvalidState, ""},
		{"a template that is a VM", map[int]string{22: "100"}, pvekeep.ActorSystem, service.CreateRequest{}, pvekeep.ReasonInvalidState, ""},
		{"a node not in the cluster", map[int]string{24: "node = pve2"}, pvekeep.ActorSystem, service.CreateRequest{}, pvekeep.ReasonInvalidState, ""},
		{"a bad dedicated IP", nil, pvekeep.ActorSystem, service.CreateRequest{DedicatedIP: "10.0.0.300"}, pvekeep.ReasonInvalidInput, "dedicated_ip"},
		{"a bad user name", nil, pvekeep.ActorSystem, service.CreateRequest{Username: "Root User"}, pvekeep.ReasonInvalidInput, "username"},
		// Proxmox would refuse it only at the cloud-init step, after the clone.
		{"a mistyped SSH key", nil, pvekeep.ActorSystem, service.CreateRequest{SSHKeys: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl a@b\nssh-ed25519 AAAAmistyped"}, pvekeep.ReasonInvalidInput, "ssh_keys"},
		// The package must fit the node before WHMCS hears "success":
		// Proxmox would refuse these only after the clone, at the start.
		{"a bridge the node lacks", map[int]string{18: "vmbr9"}, pvekeep.ActorSystem, service.CreateRequest{}, pvekeep.ReasonInvalidState, ""},
		{"a disk storage the node lacks", map[int]string{21: "nosuch"}, pvekeep.ActorSystem, service.CreateRequest{}, pvekeep.ReasonInvalidState, ""},
		{"a disk storage without VM images", map[int]string{21: "backup"}, pvekeep.ActorSystem, service.CreateRequest{}, pvekeep.ReasonInvalidState, ""},
	}
	msgs := map[string]string{ // what the admin must be told to change
		"a bridge the node lacks":          `Network Bridge (configoption18) "vmbr9" does not exist on node pve1`,
		"a disk storage the node lacks":    `"nosuch"`,
		"a disk storage without VM images": `"backup"`,
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pid := newVMProduct(t, b, tt.settings)
			id := newOrder(t, b, pid, "refused.example.net")
			c := b.system(id)
			c.Actor = pvekeep.Actor{Type: tt.actor, ID: b.clientID}
			if tt.actor == pvekeep.ActorSystem {
				c.Actor.ID = 0
			}
			before := len(b.sim.State().VMs)
			claimed, err := b.db.Store.MaxClaimedVMID(ctx)
			must(t, err)
			_, err = b.svc.CreateVM(ctx, c, tt.req)
			e, ok := pvekeep.AsError(err)
			if !ok || e.Reason != tt.wantReason {
				t.Fatalf("CreateVM err = %v, want %s", err, tt.wantReason)
			}
			if now, err := b.db.Store.MaxClaimedVMID(ctx); err != nil || now != claimed {
				t.Errorf("highest claimed vmid %d → %d (%v): a refused create claimed one", claimed, now, err)
			}
			if js, err := b.db.Store.Jobs(ctx, store.JobFilter{ServiceID: id}); err != nil || len(js) != 0 {
				t.Errorf("a refused create left %d jobs (%v)", len(js), err)
			}
			if want := msgs[tt.name]; !strings.Contains(e.Message, want) {
				t.Errorf("message %q does not name %q", e.Message, want)
			}
			if tt.wantField != "" && e.Data["field"] != tt.wantField {
				t.Errorf("field = %v, want %s", e.Data["field"], tt.wantField)
			}
			if after := len(b.sim.State().VMs); after != before {
				t.Errorf("VMs %d → %d: a refused create made something", before, after)
			}
		})
	}
	// A service already bound to a VM gets no second one.
	if _, err := b.svc.CreateVM(ctx, b.system(b.service), service.CreateRequest{}); pvekeep.ReasonOf(err) != pvekeep.ReasonInvalidState {
		t.Errorf("create for a bound service: err = %v, want invalid_state", err)
	}
}

// A clone that fails leaves no VM and says so; a package that cannot be
// applied removes the half-made VM and its binding.
func TestFailedCreateLeavesNoVM(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	pid := newVMProduct(t, b, nil)
	id := newOrder(t, b, pid, "fail.example.net")
	must(t, b.sim.InjectTaskFault(pvesim.TaskFault{Type: "qmclone", VMID: 9000, ExitStatus: "clone failed: out of space", Count: 1}))
	job, err := b.svc.CreateVM(ctx, b.system(id), service.CreateRequest{})
	must(t, err)
	done := b.waitJob(t, job.ID)
	if done.State != pvekeep.JobFailed || !strings.Contains(done.Error, "no VM was left behind") {
		t.Errorf("create = %s %q, want failed saying no VM is left", done.State, done.Error)
	}
	if _, ok := b.vm(t, job.VMID); ok {
		t.Errorf("VM %d exists after the failed clone", job.VMID)
	}

	// A VM that does not start: the half-made VM goes. (A bridge the
	// node lacks is refused by the call: TestCreateRefusals.)
	must(t, b.sim.InjectTaskFault(pvesim.TaskFault{Type: "qmstart", ExitStatus: "start failed: QEMU exited with code 1", Count: 1}))
	pid = newVMProduct(t, b, nil)
	id = newOrder(t, b, pid, "fail2.example.net")
	job, err = b.svc.CreateVM(ctx, b.system(id), service.CreateRequest{})
	must(t, err)
	done = b.waitJob(t, job.ID)
	if done.State != pvekeep.JobFailed || !strings.Contains(done.Error, "was removed") {
		t.Errorf("create = %s %q, want failed with the VM removed", done.State, done.Error)
	}
	if _, ok := b.vm(t, job.VMID); ok {
		t.Errorf("VM %d exists after the failed create", job.VMID)
	}
	if f, err := b.db.Store.Service(ctx, id); err != nil || f.VMID != 0 {
		t.Errorf("service bound to %d (%v) after the failed create, want none", f.VMID, err)
	}
}

func TestSuspendStopsAndRefusesClientUnsuspendStarts(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	job, err := b.svc.SuspendVM(ctx, b.system(b.service))
	must(t, err)
	if done := b.waitJob(t, job.ID); done.State != pvekeep.JobSucceeded {
		t.Fatalf("suspend ended %s: %s", done.State, done.Error)
	}
	if v, _ := b.vm(t, 100); v.Running {
		t.Error("VM 100 runs after the suspend")
	}
	must(t, b.seed.SetServiceStatus(ctx, int64(b.service), "Suspended")) // what WHMCS does on success
	_, err = b.svc.CreateBackup(ctx, b.call(), "while suspended", "")
	if e, ok := pvekeep.AsError(err); !ok || e.Reason != pvekeep.ReasonForbidden || e.Data["state"] != "suspended" {
		t.Errorf("a client's backup while suspended: err = %v, want forbidden with data.state suspended", err)
	}
	l, err := b.svc.ListBackups(ctx, b.call())
	must(t, err)
	if l.ServiceState != service.StateSuspended {
		t.Errorf("backups.list service_state = %q, want suspended", l.ServiceState)
	}
	job, err = b.svc.UnsuspendVM(ctx, b.system(b.service))
	must(t, err)
	if done := b.waitJob(t, job.ID); done.State != pvekeep.JobSucceeded {
		t.Fatalf("unsuspend ended %s: %s", done.State, done.Error)
	}
	if v, _ := b.vm(t, 100); !v.Running {
		t.Error("VM 100 is stopped after the unsuspend")
	}
}

func TestLifecycleCommandsRefuseALockedVM(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	must(t, b.sim.SetLock(100, "backup"))
	for name, run := range map[string]func(context.Context, service.Call) (pvekeep.Job, error){
		"suspend": b.svc.SuspendVM, "unsuspend": b.svc.UnsuspendVM, "change_package": b.svc.ChangePackage, "terminate": b.svc.TerminateVM,
	} {
		_, err := run(ctx, b.system(b.service))
		if e, ok := pvekeep.AsError(err); !ok || e.Reason != pvekeep.ReasonLocked || e.Data["lock"] != "backup" {
			t.Errorf("%s of a VM locked by a backup: err = %v, want locked (backup)", name, err)
		}
	}
}

func TestChangePackageGrowsAndRefusesAShrink(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	pid := newVMProduct(t, b, nil)
	id := newOrder(t, b, pid, "grow.example.net")
	job, err := b.svc.CreateVM(ctx, b.system(id), service.CreateRequest{})
	must(t, err)
	if done := b.waitJob(t, job.ID); done.State != pvekeep.JobSucceeded {
		t.Fatalf("create ended %s: %s", done.State, done.Error)
	}
	must(t, b.seed.SetServiceStatus(ctx, int64(id), "Active"))
	vmid := job.VMID
	startsBefore := countTasks(b, "qmstart", vmid)

	// Up: 4 cores, 4 GB, a 12 GB system disk: CPU and RAM wait for a restart.
	up := newVMProduct(t, b, map[int]string{5: "4", 6: "4", 7: "12"})
	must(t, b.seed.SetServiceProduct(ctx, int64(id), up))
	job, err = b.svc.ChangePackage(ctx, b.system(id))
	must(t, err)
	if done := b.waitJob(t, job.ID); done.State != pvekeep.JobSucceeded {
		t.Fatalf("change up ended %s: %s", done.State, done.Error)
	}
	v, _ := b.vm(t, vmid)
	if v.Config["cores"] != "4" || v.Config["memory"] != "4096" || !strings.Contains(v.Config["scsi0"], "size=12G") || !v.Running {
		t.Errorf("after the upgrade: cores %s memory %s scsi0 %s running %v", v.Config["cores"], v.Config["memory"], v.Config["scsi0"], v.Running)
	}
	if n := countTasks(b, "qmstart", vmid) - startsBefore; n != 1 {
		t.Errorf("%d starts for the upgrade, want one restart (CPU and RAM are not hotplugged)", n)
	}

	// Only the disk limits change: applied live, no restart.
	startsBefore = countTasks(b, "qmstart", vmid)
	limits := newVMProduct(t, b, map[int]string{5: "4", 6: "4", 7: "12", 9: "100"})
	must(t, b.seed.SetServiceProduct(ctx, int64(id), limits))
	job, err = b.svc.ChangePackage(ctx, b.system(id))
	must(t, err)
	if done := b.waitJob(t, job.ID); done.State != pvekeep.JobSucceeded {
		t.Fatalf("change limits ended %s: %s", done.State, done.Error)
	}
	if n := countTasks(b, "qmstart", vmid) - startsBefore; n != 0 {
		t.Errorf("%d starts for a live change, want none", n)
	}

	// Down: a smaller system disk, or no additional disk, is refused; nothing changes.
	before, _ := b.vm(t, vmid)
	for name, s := range map[string]map[int]string{
		"smaller system disk":     {5: "1", 6: "1", 7: "4"},
		"additional disk gone":    {5: "4", 6: "4", 7: "12", 8: "0"},
		"smaller additional disk": {5: "4", 6: "4", 7: "12", 8: "1"},
		// Proxmox would take the config but the VM would not start again.
		"a bridge the node lacks": {5: "8", 6: "4", 7: "12", 18: "vmbr9"},
	} {
		down := newVMProduct(t, b, s)
		must(t, b.seed.SetServiceProduct(ctx, int64(id), down))
		_, err = b.svc.ChangePackage(ctx, b.system(id))
		if e, ok := pvekeep.AsError(err); !ok || e.Reason != pvekeep.ReasonInvalidState || !strings.Contains(e.Message, "nothing was changed") {
			t.Errorf("%s: err = %v, want invalid_state saying nothing was changed", name, err)
		}
	}
	after, _ := b.vm(t, vmid)
	for k, val := range before.Config {
		if after.Config[k] != val {
			t.Errorf("refused downgrade changed %s: %q → %q", k, val, after.Config[k])
		}
	}
}

func countTasks(b *bundle, typ string, vmid pvekeep.VMID) int {
	n := 0
	for _, task := range b.sim.State().Tasks {
		if task.Type == typ && task.ID == strconv.Itoa(int(vmid)) {
			n++
		}
	}
	return n
}

func TestTerminateDestroysTheVMAndRemovesBackupsAfterTheGrace(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	must(t, b.seed.SetProductSetting(ctx, b.productID, 24, "terminate_grace_days = 2"))
	bj, err := b.svc.CreateBackup(ctx, b.call(), "keep me", "")
	must(t, err)
	if done := b.waitJob(t, bj.ID); done.State != pvekeep.JobSucceeded {
		t.Fatalf("backup ended %s: %s", done.State, done.Error)
	}
	must(t, b.seed.SetProductSetting(ctx, b.productID, 3, "2")) // a snapshots quota
	sj, err := b.svc.CreateSnapshot(ctx, b.call(), "before the end", false, "")
	must(t, err)
	if done := b.waitJob(t, sj.ID); done.State != pvekeep.JobSucceeded {
		t.Fatalf("snapshot ended %s: %s", done.State, done.Error)
	}
	job, err := b.svc.TerminateVM(ctx, b.system(b.service))
	must(t, err)
	if done := b.waitJob(t, job.ID); done.State != pvekeep.JobSucceeded {
		t.Fatalf("terminate ended %s: %s", done.State, done.Error)
	}
	if _, ok := b.vm(t, 100); ok {
		t.Fatal("VM 100 exists after the terminate")
	}
	if sn, err := b.db.Store.Snapshots(ctx, b.service, pvekeep.SnapshotAvailable); err != nil || len(sn) != 0 {
		t.Errorf("snapshot records after the terminate = %v (%v), want none available", sn, err)
	}
	must(t, b.seed.SetServiceStatus(ctx, int64(b.service), "Terminated"))
	f, err := b.db.Store.Service(ctx, b.service)
	if err != nil || f.VMID != 100 {
		t.Errorf("binding after terminate = %d (%v), want 100 kept as history", f.VMID, err)
	}
	available := func() int {
		bs, err := b.db.Store.Backups(ctx, b.service, pvekeep.BackupAvailable)
		must(t, err)
		return len(bs)
	}
	// A later service given the same vmid (Proxmox may hand it out again)
	// never sees the terminated service's backups.
	other, err := b.seed.Service(ctx, seed.Service{ClientID: b.clientID, ProductID: b.productID, ServerID: b.server.ID, VMID: "100"})
	must(t, err)
	ol, err := b.svc.ListBackups(ctx, service.Call{ServiceID: pvekeep.ServiceID(other), Actor: pvekeep.Actor{Type: pvekeep.ActorClient, ID: b.clientID}, Server: b.server})
	must(t, err)
	if len(ol.Items) != 0 {
		t.Errorf("a new service on vmid 100 lists %d backups of the terminated one", len(ol.Items))
	}
	// Within the grace the backup stays, tick after tick.
	b.clock.Advance(47 * time.Hour)
	for range 3 {
		_, err := b.svc.Tick(ctx, []pvekeep.Server{b.server}, time.Second)
		must(t, err)
	}
	if n := available(); n != 1 {
		t.Fatalf("%d backups within the grace, want 1", n)
	}
	// After it, the cron removes it, from storage too.
	b.clock.Advance(2 * time.Hour)
	for i := 0; i < 50 && available() > 0; i++ {
		_, err := b.svc.Tick(ctx, []pvekeep.Server{b.server}, time.Second)
		must(t, err)
		b.clock.Advance(time.Second)
	}
	if n := available(); n != 0 {
		t.Errorf("%d backups after the grace, want 0", n)
	}
	for _, v := range b.sim.State().Volumes {
		if v.VMID == 100 {
			t.Errorf("volume %s still on storage", v.Volid)
		}
	}
	_, err = b.svc.Tick(ctx, []pvekeep.Server{b.server}, time.Second) // sees none left: the purge is done
	must(t, err)
	term, err := b.db.Store.ServiceTermination(ctx, b.service)
	must(t, err)
	if term.TerminatedAt == nil || term.PurgeAfter != nil {
		t.Errorf("termination record = %+v, want terminated with the purge done", term)
	}
}

// Grace 0: the backups go with the first tick after the terminate.
func TestTerminateWithZeroGraceRemovesBackupsAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	must(t, b.seed.SetProductSetting(ctx, b.productID, 24, "terminate_grace_days = 0"))
	bj, err := b.svc.CreateBackup(ctx, b.call(), "", "")
	must(t, err)
	b.waitJob(t, bj.ID)
	job, err := b.svc.TerminateVM(ctx, b.system(b.service))
	must(t, err)
	b.waitJob(t, job.ID)
	for range 20 {
		_, err := b.svc.Tick(ctx, []pvekeep.Server{b.server}, time.Second)
		must(t, err)
		b.clock.Advance(time.Second)
	}
	bs, err := b.db.Store.Backups(ctx, b.service, pvekeep.BackupAvailable, pvekeep.BackupRemoving)
	must(t, err)
	if len(bs) != 0 {
		t.Errorf("%d backups left with grace 0", len(bs))
	}
}

// A suspended service's scheduled backup still runs: suspension stops the
// VM, not the backups the customer is owed back when they pay.
func TestScheduledBackupRunsWhileSuspended(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetSpec{vms: 1, quota: 5})
	ctx := context.Background()
	at := f.everyDayAt(t)
	job, err := f.svc.SuspendVM(ctx, service.Call{ServiceID: f.service, Actor: pvekeep.Actor{Type: pvekeep.ActorSystem}, Server: f.server})
	must(t, err)
	if done := f.waitJob(t, job.ID); done.State != pvekeep.JobSucceeded {
		t.Fatalf("suspend ended %s: %s", done.State, done.Error)
	}
	must(t, f.seed.SetServiceStatus(ctx, int64(f.service), "Suspended"))
	f.clock.now = at.Add(30 * time.Second)
	f.tickUntil(t, f.svc, 200, f.allRuns(t, "done"))
	if n := f.vzdumps()["100"]; n != 1 {
		t.Errorf("%d scheduled vzdumps of the suspended service's VM, want 1", n)
	}
}

// The purge removes every backup it can: one Proxmox will not remove is
// skipped, shown on the admin's overview and tried again after a pause
// that grows (5 minutes, then 10), not on every tick; one the client kept
// (protected) is unprotected and removed — the client is gone.
func TestTerminatePurgeSkipsAFailingBackupAndRetriesItAfterAPause(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	must(t, b.seed.SetProductSetting(ctx, b.productID, 24, "terminate_grace_days = 0"))
	for range 3 {
		bj, err := b.svc.CreateBackup(ctx, b.call(), "", "")
		must(t, err)
		if done := b.waitJob(t, bj.ID); done.State != pvekeep.JobSucceeded {
			t.Fatalf("backup ended %s: %s", done.State, done.Error)
		}
	}
	bs, err := b.db.Store.Backups(ctx, b.service, pvekeep.BackupAvailable)
	must(t, err)
	if len(bs) != 3 {
		t.Fatalf("%d backups, want 3", len(bs))
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].ID < bs[j].ID })
	stuck, kept := bs[0], bs[1] // the oldest is the one the purge takes first
	must(t, b.sim.InjectHTTPFault(pvesim.HTTPFault{Method: "DELETE", PathRegex: regexp.QuoteMeta(path.Base(stuck.Volid)),
		Status: 500, Message: "storage hook refused the removal"}))
	pc, err := pve.Connect(ctx, pve.ConfigFromServer(b.server))
	must(t, err)
	must(t, pc.SetVolumeProtected(ctx, "pve1", "backup", kept.Volid, true))
	job, err := b.svc.TerminateVM(ctx, b.system(b.service))
	must(t, err)
	b.waitJob(t, job.ID)
	admin := service.Call{ServiceID: b.service, Actor: pvekeep.Actor{Type: pvekeep.ActorAdmin, ID: 1}, Server: b.server}
	ticks := func(n int) {
		t.Helper()
		for range n {
			_, err := b.svc.Tick(ctx, []pvekeep.Server{b.server}, time.Second)
			must(t, err)
			b.clock.Advance(time.Second)
		}
	}
	tries := func() int { // removal jobs of the stuck backup
		t.Helper()
		js, err := b.db.Store.Jobs(ctx, store.JobFilter{ServiceID: b.service, Kinds: []pvekeep.JobKind{pvekeep.KindBackupRemove}})
		must(t, err)
		n := 0
		for _, j := range js {
			if j.BackupID == stuck.ID {
				n++
			}
		}
		return n
	}
	onStorage := func(volid string) bool {
		for _, v := range b.sim.State().Volumes {
			if v.Volid == volid {
				return true
			}
		}
		return false
	}
	ticks(30)
	for _, x := range bs[1:] {
		if onStorage(x.Volid) {
			t.Errorf("backup %s (protected: %v) still on storage: one failing backup blocked the rest", x.Volid, x.ID == kept.ID)
		}
	}
	o, err := b.svc.Overview(ctx, admin)
	must(t, err)
	if o.Termination == nil || !strings.Contains(o.Termination.PurgeError, stuck.Volid) || o.Termination.Attempts != 1 || o.Termination.PurgeAfter == nil {
		t.Fatalf("overview termination = %+v, want the stuck backup's failure, one round", o.Termination)
	}
	if n := tries(); n != 1 {
		t.Errorf("the stuck backup was tried %d times in 30 s, want once (then a pause)", n)
	}
	// The first pause is 5 minutes; the second round fails too, and the
	// pause after it is 10.
	b.clock.Advance(4 * time.Minute)
	ticks(5)
	if n := tries(); n != 1 {
		t.Errorf("tried %d times within the first pause, want 1", n)
	}
	ticks(60)
	if n := tries(); n != 2 {
		t.Errorf("tried %d times after the first pause, want 2", n)
	}
	b.clock.Advance(6 * time.Minute)
	ticks(5)
	if n := tries(); n != 2 {
		t.Errorf("tried %d times 6 minutes into the second pause (10 minutes), want 2", n)
	}
	b.sim.ClearFaults()
	b.clock.Advance(4 * time.Minute)
	ticks(30)
	o, err = b.svc.Overview(ctx, admin)
	must(t, err)
	if o.Termination == nil || o.Termination.PurgeAfter != nil || onStorage(stuck.Volid) {
		t.Errorf("after the fault cleared: termination %+v, on storage %v; want the purge done", o.Termination, onStorage(stuck.Volid))
	}
}

// Services whose backups cannot be removed do not keep the others
// waiting: the cron looks at 20 services a tick, the ones it looked at
// least recently first, and a stuck one pauses.
func TestTerminatePurgeIsNotStarvedByStuckServices(t *testing.T) {
	t.Parallel()
	f := newFleet(t, fleetSpec{vms: 21, quota: 2, more: "terminate_grace_days = 0"})
	ctx := context.Background()
	for _, id := range f.services {
		bj, err := f.svc.CreateBackup(ctx, service.Call{ServiceID: id, Actor: pvekeep.Actor{Type: pvekeep.ActorClient, ID: f.clientID}, Server: f.server}, "", "")
		must(t, err)
		if done := f.waitJob(t, bj.ID); done.State != pvekeep.JobSucceeded {
			t.Fatalf("backup ended %s: %s", done.State, done.Error)
		}
	}
	// Every backup of VMs 100–119 is stuck; VM 120's is not.
	must(t, f.sim.InjectHTTPFault(pvesim.HTTPFault{Method: "DELETE", PathRegex: `vzdump-qemu-1[01][0-9]-`,
		Status: 500, Message: "storage hook refused the removal"}))
	for _, id := range f.services {
		job, err := f.svc.TerminateVM(ctx, service.Call{ServiceID: id, Actor: pvekeep.Actor{Type: pvekeep.ActorSystem}, Server: f.server})
		must(t, err)
		if done := f.waitJob(t, job.ID); done.State != pvekeep.JobSucceeded {
			t.Fatalf("terminate ended %s: %s", done.State, done.Error)
		}
	}
	last := f.services[20]
	for range 20 {
		_, err := f.svc.Tick(ctx, []pvekeep.Server{f.server}, time.Second)
		must(t, err)
		f.clock.Advance(time.Second)
	}
	if bs, err := f.db.Store.Backups(ctx, last, pvekeep.BackupAvailable); err != nil || len(bs) != 0 {
		t.Errorf("service %d still has %d backups (%v): 20 stuck services starved its purge", last, len(bs), err)
	}
}

// A terminated service can be created again: a new VM under a new vmid,
// the termination (and its pending backup purge) cleared. A protected VM
// is not terminated at all.
func TestCreateAfterTerminateMakesANewVM(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	pid := newVMProduct(t, b, nil)
	id := newOrder(t, b, pid, "again.example.net")
	first, err := b.svc.CreateVM(ctx, b.system(id), service.CreateRequest{})
	must(t, err)
	b.waitJob(t, first.ID)

	pc, err := pve.Connect(ctx, pve.ConfigFromServer(b.server))
	must(t, err)
	must(t, pc.UpdateConfig(ctx, "pve1", first.VMID, pve.ConfigChange{Set: map[string]string{"protection": "1"}}))
	if _, err := b.svc.TerminateVM(ctx, b.system(id)); pvekeep.ReasonOf(err) != pvekeep.ReasonInvalidState {
		t.Errorf("terminate of a protected VM: err = %v, want invalid_state", err)
	}
	if _, ok := b.vm(t, first.VMID); !ok {
		t.Fatal("the protected VM is gone")
	}
	must(t, pc.UpdateConfig(ctx, "pve1", first.VMID, pve.ConfigChange{Delete: []string{"protection"}}))
	term, err := b.svc.TerminateVM(ctx, b.system(id))
	must(t, err)
	b.waitJob(t, term.ID)
	must(t, b.seed.SetServiceStatus(ctx, int64(id), "Terminated"))

	second, err := b.svc.CreateVM(ctx, b.system(id), service.CreateRequest{})
	must(t, err)
	if second.ID == first.ID || second.VMID == first.VMID {
		t.Fatalf("create after terminate = job %d vmid %d, want a new job and vmid (first: %d, %d)", second.ID, second.VMID, first.ID, first.VMID)
	}
	if done := b.waitJob(t, second.ID); done.State != pvekeep.JobSucceeded {
		t.Fatalf("second create ended %s: %s", done.State, done.Error)
	}
	tr, err := b.db.Store.ServiceTermination(ctx, id)
	must(t, err)
	if tr.TerminatedAt != nil || tr.PurgeAfter != nil {
		t.Errorf("termination after the new create = %+v, want cleared", tr)
	}
}

// With local storage a VM lands on the node with the most free memory
// that has a template of the same name, cloned from that template; a
// named node works the same way, and one without such a template is
// refused. Shared storage lets the product's template go anywhere.
func TestCreatePlacesTheVMOnTheLeastLoadedNodeWithATemplate(t *testing.T) {
	t.Parallel()
	b := setupOn(t, 3, 3, nil, service.Config{}) // VM 100 runs on pve1, 101 on pve2; pve3 is idle
	ctx := context.Background()
	tests := []struct {
		name         string
		settings     map[int]string
		dropTemplate int // a template to remove first (0: none)
		wantNode     string
		wantTemplate string // the clone task's id
		wantReason   pvekeep.Reason
	}{
		{"auto: the idle node, its own template", nil, 0, "pve3", "9002", ""},
		{"a named node, its own template", map[int]string{24: "node = pve2"}, 0, "pve2", "9001", ""},
		// pve3 runs the first case's VM by now: the freest node is computed
		{"shared storage: the product's template onto the freest node", map[int]string{21: "san"}, 0, "", "9000", ""},
		{"a named node without a template of that name", map[int]string{24: "node = pve3"}, 9002, "", "", pvekeep.ReasonInvalidState},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.dropTemplate != 0 {
				pc, err := pve.Connect(ctx, pve.ConfigFromServer(b.server))
				must(t, err)
				upid, err := pc.DeleteVM(ctx, "pve3", pvekeep.VMID(tt.dropTemplate), true)
				must(t, err)
				_, err = pc.WaitTask(ctx, upid)
				must(t, err)
			}
			wantNode := tt.wantNode
			if wantNode == "" {
				pc, err := pve.Connect(ctx, pve.ConfigFromServer(b.server))
				must(t, err)
				nodes, err := pc.Nodes(ctx)
				must(t, err)
				free := int64(-1)
				for _, n := range nodes {
					if n.MaxMem-n.Mem > free {
						wantNode, free = n.Name, n.MaxMem-n.Mem
					}
				}
			}
			pid := newVMProduct(t, b, tt.settings)
			id := newOrder(t, b, pid, "placed.example.net")
			job, err := b.svc.CreateVM(ctx, b.system(id), service.CreateRequest{})
			if tt.wantReason != "" {
				if pvekeep.ReasonOf(err) != tt.wantReason {
					t.Fatalf("CreateVM err = %v, want %s", err, tt.wantReason)
				}
				return
			}
			must(t, err)
			if done := b.waitJob(t, job.ID); done.State != pvekeep.JobSucceeded {
				t.Fatalf("create ended %s: %s", done.State, done.Error)
			}
			v, _ := b.vm(t, job.VMID)
			if v.Node != wantNode || !v.Running {
				t.Errorf("VM on %s running %v, want running on %s", v.Node, v.Running, wantNode)
			}
			cloned := ""
			for _, task := range b.sim.State().Tasks {
				if task.Type == "qmclone" {
					cloned = task.ID // the latest
				}
			}
			if cloned != tt.wantTemplate {
				t.Errorf("cloned template %s, want %s", cloned, tt.wantTemplate)
			}
		})
	}
}

// Proxmox refusing the cloud-init write with a reason (a die: HTTP 500
// with a message) fails the create at once and removes the clone: the
// same write would fail the same way for the job's whole lifetime.
func TestCreateRefusedAtCloudInitFailsAndRemovesTheClone(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	pid := newVMProduct(t, b, nil)
	id := newOrder(t, b, pid, "refused-ci.example.net")
	must(t, b.sim.InjectHTTPFault(pvesim.HTTPFault{PathRegex: `^/nodes/[^/]+/qemu/[0-9]+/config$`, Method: "PUT", Status: 500,
		Message: "storage 'local-lvm' does not support content-type 'images'", Count: 100}))
	job, err := b.svc.CreateVM(ctx, b.system(id), service.CreateRequest{Hostname: "refused-ci.example.net"})
	must(t, err)
	done := b.waitJob(t, job.ID)
	b.sim.ClearFaults()
	if done.State != pvekeep.JobFailed || !strings.Contains(done.Error, "does not support content-type 'images'") {
		t.Errorf("create = %s %q, want failed with Proxmox's reason", done.State, done.Error)
	}
	if _, ok := b.vm(t, job.VMID); ok {
		t.Errorf("VM %d exists after the refused cloud-init", job.VMID)
	}
}
