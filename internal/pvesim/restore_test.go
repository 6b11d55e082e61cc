package pvesim

import (
	"net/url"
	"strings"
	"testing"
)

// post sends a form and returns the UPID of the task it started.
func (b *bundle) startTask(t *testing.T, method, path string, form url.Values) string {
	t.Helper()
	r := b.raw(t, method, path, form, nil)
	if r.code != 200 {
		t.Fatalf("%s %s: %s %v", method, path, r.status, r.body)
	}
	upid, _ := r.body["data"].(string)
	if !strings.HasPrefix(upid, "UPID:") {
		t.Fatalf("%s %s: data %v", method, path, r.body["data"])
	}
	return upid
}

func (b *bundle) runTask(t *testing.T, method, path string, form url.Values) (string, string) {
	t.Helper()
	upid := b.startTask(t, method, path, form)
	_, exit := waitTask(t, b.client, upid)
	return upid, exit
}

func (b *bundle) digest(t *testing.T, node string, vmid string) string {
	t.Helper()
	r := b.raw(t, "GET", "/nodes/"+node+"/qemu/"+vmid+"/config", nil, nil)
	d, _ := r.body["data"].(map[string]any)["digest"].(string)
	return d
}

func imageVolids(t *testing.T, b *bundle, node string, vmid string) []string {
	t.Helper()
	r := b.raw(t, "GET", "/nodes/"+node+"/storage/local-lvm/content", url.Values{"vmid": {vmid}, "content": {"images"}}, nil)
	var out []string
	for _, it := range r.body["data"].([]any) {
		out = append(out, it.(map[string]any)["volid"].(string))
	}
	return out
}

func TestRestoreRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	volid, err := b.sim.AddVolume(Volume{VMID: 100})
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"vmid": {"100"}, "archive": {volid}, "force": {"1"}}

	// running: the worker refuses and removes its create lock
	if _, exit := b.runTask(t, "POST", "/nodes/pve1/qemu", form); exit != "unable to restore VM 100 - vm is running" {
		t.Fatalf("running: %q", exit)
	}
	if conf, _ := b.sim.VMConfig(100); conf["lock"] != "" || conf["scsi0"] == "" {
		t.Fatalf("running: config after refusal %v", conf)
	}
	if _, exit := b.runTask(t, "POST", "/nodes/pve1/qemu/100/status/stop", nil); exit != "OK" {
		t.Fatal(exit)
	}
	// without force
	r := b.raw(t, "POST", "/nodes/pve1/qemu", url.Values{"vmid": {"100"}, "archive": {volid}}, nil)
	if r.status != "500 unable to restore VM 100 - VM 100 already exists on node 'pve1'" {
		t.Fatalf("no force: %s", r.status)
	}
	// locked
	_ = b.sim.SetLock(100, "backup")
	if r := b.raw(t, "POST", "/nodes/pve1/qemu", form, nil); r.status != "500 unable to restore VM 100 - VM is locked (backup)" {
		t.Fatalf("locked: %s", r.status)
	}
	_ = b.sim.SetLock(100, "")
	// protected
	if r := b.raw(t, "PUT", "/nodes/pve1/qemu/100/config", url.Values{"protection": {"1"}}, nil); r.code != 200 {
		t.Fatal(r.status)
	}
	if _, exit := b.runTask(t, "POST", "/nodes/pve1/qemu", form); exit != "unable to restore VM 100 - - protection mode enabled" {
		t.Fatalf("protected: %q", exit)
	}
	// a disk option conflicts with archive
	if r := b.raw(t, "POST", "/nodes/pve1/qemu", url.Values{"vmid": {"100"}, "archive": {volid}, "force": {"1"}, "scsi1": {"local-lvm:4"}}, nil); r.code != 400 {
		t.Fatalf("scsi1 with archive: %s", r.status)
	}
}

func TestRestoreBringsBackArchivedConfig(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	// back up 100 as it is, then change it: more cores, memory, a second
	// disk, another bridge
	if _, exit := waitTask(t, b.client, vzdump(t, b.client, "pve1", 100, "")); exit != "OK" {
		t.Fatal(exit)
	}
	volid := listBackups(t, b.client, "pve1", 100)[0].Volid
	archived, _ := b.sim.BackupConfig(volid)
	if _, exit := b.runTask(t, "POST", "/nodes/pve1/qemu/100/status/stop", nil); exit != "OK" {
		t.Fatal(exit)
	}
	r := b.raw(t, "PUT", "/nodes/pve1/qemu/100/config", url.Values{"cores": {"4"}, "memory": {"4096"}, "scsi1": {"local-lvm:8"}, "net0": {"e1000,bridge=vmbr1"}}, nil)
	if r.code != 200 {
		t.Fatalf("PUT: %s %v", r.status, r.body)
	}
	before := b.digest(t, "pve1", "100")
	if got := imageVolids(t, b, "pve1", "100"); len(got) != 2 {
		t.Fatalf("images before %v", got)
	}

	upid, exit := b.runTask(t, "POST", "/nodes/pve1/qemu", url.Values{"vmid": {"100"}, "archive": {volid}, "force": {"1"}})
	if exit != "OK" {
		t.Fatalf("restore: %q", exit)
	}
	if !strings.Contains(upid, ":qmrestore:100:") {
		t.Fatalf("UPID %s", upid)
	}
	conf, _ := b.sim.VMConfig(100)
	if conf["cores"] != "1" || conf["memory"] != "1024" || conf["net0"] != archived["net0"] || conf["lock"] != "" {
		t.Fatalf("restored config %v, archived %v", conf, archived)
	}
	if conf["scsi0"] != "local-lvm:vm-100-disk-0,iothread=1,size=10G" {
		t.Fatalf("scsi0 %q", conf["scsi0"])
	}
	// the second disk was not in the backup: kept, as unused0
	if conf["unused0"] != "local-lvm:vm-100-disk-1" || conf["scsi1"] != "" {
		t.Fatalf("unused %v", conf)
	}
	if conf["vmgenid"] == archived["vmgenid"] {
		t.Fatal("vmgenid kept")
	}
	if after := b.digest(t, "pve1", "100"); after == before {
		t.Fatal("digest unchanged")
	}
	log := taskLog(t, b.client, upid)
	for _, re := range []string{`^restore vma archive: zstd -q -d -c /mnt/backup/dump/vzdump-qemu-100-.*\.vma\.zst \| vma extract`,
		`^  Logical volume "vm-100-disk-0" successfully removed\.$`, `^new volume ID is 'local-lvm:vm-100-disk-0'$`,
		`^progress 42% \(read \d+ bytes, duration \d+ sec\)$`, `^rescan volumes\.\.\.$`,
		`^VM 100 add unreferenced volume 'local-lvm:vm-100-disk-1' as 'unused0' to config$`, `^TASK OK$`} {
		if !hasLine(log, re) {
			t.Errorf("log lacks %s:\n%s", re, strings.Join(log, "\n"))
		}
	}
}

func TestRestoreOverridesAndStart(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	volid, _ := b.sim.AddVolume(Volume{VMID: 102})
	if _, exit := b.runTask(t, "POST", "/nodes/pve1/qemu/102/status/stop", nil); exit != "OK" {
		t.Fatal(exit)
	}
	form := url.Values{"vmid": {"102"}, "archive": {volid}, "force": {"1"}, "cores": {"2"}, "memory": {"2048"},
		"net0": {"virtio=BC:24:11:00:00:02,bridge=vmbr1,rate=12.5,tag=20"}, "start": {"1"}}
	if _, exit := b.runTask(t, "POST", "/nodes/pve1/qemu", form); exit != "OK" {
		t.Fatalf("restore: %q", exit)
	}
	conf, _ := b.sim.VMConfig(102)
	if conf["cores"] != "2" || conf["memory"] != "2048" || conf["net0"] != "virtio=BC:24:11:00:00:02,bridge=vmbr1,rate=12.5,tag=20" {
		t.Fatalf("config %v", conf)
	}
	if st := b.sim.State(); !st.VMs[2].Running {
		t.Fatalf("not started: %+v", st.VMs[2])
	}
}

func TestFailingRestoreLeavesUnusableVM(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	volid, _ := b.sim.AddVolume(Volume{VMID: 100})
	if _, exit := b.runTask(t, "POST", "/nodes/pve1/qemu/100/status/stop", nil); exit != "OK" {
		t.Fatal(exit)
	}
	if err := b.sim.InjectTaskFault(TaskFault{Type: "qmrestore", VMID: 100, ExitStatus: "vma_queue_write: write error - Broken pipe", Count: 1}); err != nil {
		t.Fatal(err)
	}
	upid, exit := b.runTask(t, "POST", "/nodes/pve1/qemu", url.Values{"vmid": {"100"}, "archive": {volid}, "force": {"1"}})
	if exit != "vma_queue_write: write error - Broken pipe" {
		t.Fatalf("exit %q", exit)
	}
	conf, _ := b.sim.VMConfig(100)
	if len(conf) != 1 || conf["memory"] != "128" {
		t.Fatalf("config after failed restore %v", conf)
	}
	if got := imageVolids(t, b, "pve1", "100"); len(got) != 0 {
		t.Fatalf("images left %v", got)
	}
	log := taskLog(t, b.client, upid)
	if !hasLine(log, `^temporary volume 'local-lvm:vm-100-disk-0' successfully removed$`) || !hasLine(log, `NOT cleaned up`) {
		t.Fatalf("log:\n%s", strings.Join(log, "\n"))
	}
	// a retry from the same backup works
	if _, exit := b.runTask(t, "POST", "/nodes/pve1/qemu", url.Values{"vmid": {"100"}, "archive": {volid}, "force": {"1"}}); exit != "OK" {
		t.Fatalf("retry: %q", exit)
	}
	if conf, _ := b.sim.VMConfig(100); conf["scsi0"] == "" {
		t.Fatalf("retry config %v", conf)
	}
}

func TestPendingOnRunningVMAppliesAtRestart(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	form := url.Values{"cores": {"2"}, "memory": {"2048"}, "scsi0": {"local-lvm:vm-100-disk-0,iothread=1,mbps_rd=100,mbps_wr=50,iops_rd=1000,iops_wr=500,size=10G"},
		"net0": {"virtio,bridge=vmbr1,tag=10,rate=25,firewall=0,link_down=1"}, "name": {"renamed"}}
	if r := b.raw(t, "PUT", "/nodes/pve1/qemu/100/config", form, nil); r.code != 200 {
		t.Fatalf("PUT: %s %v", r.status, r.body)
	}
	conf, _ := b.sim.VMConfig(100)
	pending, _, _ := b.sim.VMPending(100)
	// limits, network and name go live; cores and memory wait
	if conf["scsi0"] != form.Get("scsi0") || conf["name"] != "renamed" || conf["cores"] != "1" {
		t.Fatalf("current %v", conf)
	}
	net := conf["net0"]
	if !regexpMatch(`^virtio=BC:24:11:[0-9A-F:]{8},bridge=vmbr1,firewall=0,link_down=1,rate=25,tag=10$`, net) {
		t.Fatalf("net0 %q", net)
	}
	if len(pending) != 2 || pending["cores"] != "2" || pending["memory"] != "2048" {
		t.Fatalf("pending %v", pending)
	}
	// GET config merges, current=1 does not; /pending lists both
	r := b.raw(t, "GET", "/nodes/pve1/qemu/100/config", nil, nil)
	if r.body["data"].(map[string]any)["cores"] != float64(2) {
		t.Fatalf("merged %v", r.body["data"])
	}
	r = b.raw(t, "GET", "/nodes/pve1/qemu/100/config", url.Values{"current": {"1"}}, nil)
	if r.body["data"].(map[string]any)["cores"] != float64(1) {
		t.Fatalf("current %v", r.body["data"])
	}
	r = b.raw(t, "GET", "/nodes/pve1/qemu/100/pending", nil, nil)
	found := false
	for _, it := range r.body["data"].([]any) {
		m := it.(map[string]any)
		if m["key"] == "cores" && m["value"] == float64(1) && m["pending"] == float64(2) { // typed, as PVE sends them
			found = true
		}
	}
	if !found {
		t.Fatalf("pending list %v", r.body["data"])
	}
	// a stale digest is refused
	if r := b.raw(t, "PUT", "/nodes/pve1/qemu/100/config", url.Values{"cores": {"3"}, "digest": {strings.Repeat("0", 40)}}, nil); r.status != "500 checksum mismatch (file change by other user?)" {
		t.Fatalf("digest: %s", r.status)
	}
	// a bridge the node lacks: a hotplug problem, left pending
	r = b.raw(t, "PUT", "/nodes/pve1/qemu/100/config", url.Values{"net1": {"virtio,bridge=vmbr9"}}, nil)
	if r.code != 400 || !strings.Contains(r.body["errors"].(map[string]any)["net1"].(string), "bridge 'vmbr9' does not exist") {
		t.Fatalf("vmbr9: %s %v", r.status, r.body)
	}
	if r := b.raw(t, "PUT", "/nodes/pve1/qemu/100/config", url.Values{"delete": {"net1"}}, nil); r.code != 200 {
		t.Fatalf("delete net1: %s", r.status)
	}
	// shutdown applies the pending changes
	if _, exit := b.runTask(t, "POST", "/nodes/pve1/qemu/100/status/shutdown", url.Values{"timeout": {"30"}}); exit != "OK" {
		t.Fatal(exit)
	}
	conf, _ = b.sim.VMConfig(100)
	pending, _, _ = b.sim.VMPending(100)
	if conf["cores"] != "2" || conf["memory"] != "2048" || len(pending) != 0 {
		t.Fatalf("after shutdown %v pending %v", conf, pending)
	}
	if _, exit := b.runTask(t, "POST", "/nodes/pve1/qemu/100/status/start", nil); exit != "OK" {
		t.Fatal(exit)
	}
	// a shutdown the guest does not finish in time
	if _, exit := b.runTask(t, "POST", "/nodes/pve1/qemu/100/status/shutdown", url.Values{"timeout": {"1"}}); exit != "VM quit/powerdown failed - got timeout" {
		t.Fatalf("short shutdown: %q", exit)
	}
	if _, exit := b.runTask(t, "POST", "/nodes/pve1/qemu/100/status/shutdown", url.Values{"timeout": {"1"}, "forceStop": {"1"}}); exit != "OK" {
		t.Fatalf("forced shutdown: %q", exit)
	}
}

func TestNewDiskDeleteAndResize(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	if _, exit := b.runTask(t, "POST", "/nodes/pve1/qemu/100/status/stop", nil); exit != "OK" {
		t.Fatal(exit)
	}
	if _, exit := b.runTask(t, "POST", "/nodes/pve1/qemu/100/config", url.Values{"scsi1": {"local-lvm:20,iops_rd=300,mbps_wr_max=80"}}); exit != "OK" {
		t.Fatal(exit)
	}
	conf, _ := b.sim.VMConfig(100)
	if conf["scsi1"] != "local-lvm:vm-100-disk-1,iops_rd=300,mbps_wr_max=80,size=20G" {
		t.Fatalf("scsi1 %q", conf["scsi1"])
	}
	if got := imageVolids(t, b, "pve1", "100"); len(got) != 2 || got[1] != "local-lvm:vm-100-disk-1" {
		t.Fatalf("images %v", got)
	}
	// grow by +5G, then to 30G; shrinking fails
	if _, exit := b.runTask(t, "PUT", "/nodes/pve1/qemu/100/resize", url.Values{"disk": {"scsi1"}, "size": {"+5G"}}); exit != "OK" {
		t.Fatal(exit)
	}
	if _, exit := b.runTask(t, "PUT", "/nodes/pve1/qemu/100/resize", url.Values{"disk": {"scsi1"}, "size": {"30G"}}); exit != "OK" {
		t.Fatal(exit)
	}
	if _, exit := b.runTask(t, "PUT", "/nodes/pve1/qemu/100/resize", url.Values{"disk": {"scsi1"}, "size": {"10G"}}); exit != "shrinking disks is not supported" {
		t.Fatalf("shrink: %q", exit)
	}
	if _, exit := b.runTask(t, "PUT", "/nodes/pve1/qemu/100/resize", url.Values{"disk": {"scsi2"}, "size": {"10G"}}); exit != "disk 'scsi2' does not exist" {
		t.Fatalf("missing disk: %q", exit)
	}
	conf, _ = b.sim.VMConfig(100)
	if !strings.HasSuffix(conf["scsi1"], ",size=30G") {
		t.Fatalf("scsi1 %q", conf["scsi1"])
	}
	r := b.raw(t, "GET", "/nodes/pve1/storage/local-lvm/content/local-lvm:vm-100-disk-1", nil, nil)
	if r.body["data"].(map[string]any)["size"] != float64(30<<30) {
		t.Fatalf("volume %v", r.body)
	}
	// deleting the disk key keeps the volume as unused0; deleting that frees it
	if r := b.raw(t, "PUT", "/nodes/pve1/qemu/100/config", url.Values{"delete": {"scsi1"}}, nil); r.code != 200 {
		t.Fatal(r.status)
	}
	conf, _ = b.sim.VMConfig(100)
	if conf["unused0"] != "local-lvm:vm-100-disk-1" || conf["scsi1"] != "" {
		t.Fatalf("after delete %v", conf)
	}
	if r := b.raw(t, "PUT", "/nodes/pve1/qemu/100/config", url.Values{"delete": {"unused0"}}, nil); r.code != 200 {
		t.Fatal(r.status)
	}
	if got := imageVolids(t, b, "pve1", "100"); len(got) != 1 {
		t.Fatalf("images after unused delete %v", got)
	}
}

func TestSchemaRejectsBadValuesOnNewEndpoints(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	for _, c := range []struct {
		method, path string
		form         url.Values
		param        string
	}{
		{"PUT", "/nodes/pve1/qemu/100/resize", url.Values{"disk": {"scsi0"}, "size": {"-5G"}}, "size"},
		{"PUT", "/nodes/pve1/qemu/100/resize", url.Values{"disk": {"net0"}, "size": {"5G"}}, "disk"},
		{"PUT", "/nodes/pve1/qemu/100/config", url.Values{"scsi1": {"local-lvm:4,mbps_rd=fast"}}, "scsi1"},
		{"PUT", "/nodes/pve1/qemu/100/config", url.Values{"net0": {"virtio,tag=5000"}}, "net0"},
		{"PUT", "/nodes/pve1/qemu/100/config", url.Values{"net0": {"virtio=01:00:00:00:00:01"}}, "net0"},
		{"PUT", "/nodes/pve1/qemu/100/config", url.Values{"net0": {"fastnic,bridge=vmbr0"}}, "net0"},
		{"POST", "/nodes/pve1/qemu", url.Values{"vmid": {"100"}, "archive": {"backup:backup/x.vma.zst"}, "force": {"yes"}}, "force"},
		{"POST", "/nodes/pve1/qemu/9000/clone", url.Values{"newid": {"42"}}, "newid"},
		{"DELETE", "/nodes/pve1/qemu/100", url.Values{"purge": {"2"}}, "purge"},
		{"POST", "/nodes/pve1/qemu/100/snapshot", url.Values{"snapname": {"1bad"}}, "snapname"},
	} {
		r := b.raw(t, c.method, c.path, c.form, nil)
		errs, _ := r.body["errors"].(map[string]any)
		if r.code != 400 || errs[c.param] == nil {
			t.Errorf("%s %s %v: %s %v", c.method, c.path, c.form, r.status, r.body)
		}
	}
}

func regexpMatch(re, s string) bool { return hasLine([]string{s}, re) }

func TestCloneTemplateAndDestroy(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	tmpl, _ := b.sim.VMConfig(TemplateVMID)
	if tmpl["template"] != "1" || tmpl["name"] != "debian-12-template" {
		t.Fatalf("template %v", tmpl)
	}
	upid := b.startTask(t, "POST", "/nodes/pve1/qemu/9000/clone", url.Values{"newid": {"990"}, "name": {"client-990"}, "full": {"1"}, "storage": {"local-lvm"}})
	if !strings.Contains(upid, ":qmclone:9000:") {
		t.Fatalf("UPID %s", upid)
	}
	// the new VM carries "lock: clone" while the worker runs
	if _, exit := waitTask(t, b.client, upid); exit != "OK" {
		t.Fatalf("clone: %q", exit)
	}
	conf, _ := b.sim.VMConfig(990)
	if conf["name"] != "client-990" || conf["template"] != "" || conf["lock"] != "" || conf["scsi0"] != "local-lvm:vm-990-disk-0,iothread=1,size=4G" {
		t.Fatalf("clone config %v", conf)
	}
	if conf["net0"] == tmpl["net0"] || !strings.HasPrefix(conf["net0"], "virtio=BC:24:11:") || conf["smbios1"] == tmpl["smbios1"] {
		t.Fatalf("clone identity %v", conf)
	}
	if r := b.raw(t, "POST", "/nodes/pve1/qemu/9000/clone", url.Values{"newid": {"990"}}, nil); r.status != "500 unable to create VM 990: config file already exists" {
		t.Fatalf("existing newid: %s", r.status)
	}
	// a linked clone of the template references the base volume
	if _, exit := b.runTask(t, "POST", "/nodes/pve1/qemu/9000/clone", url.Values{"newid": {"991"}}); exit != "OK" {
		t.Fatal(exit)
	}
	if conf, _ := b.sim.VMConfig(991); conf["scsi0"] != "local-lvm:base-9000-disk-0/vm-991-disk-0,iothread=1,size=4G" || conf["name"] != "Copy-of-VM-debian-12-template" {
		t.Fatalf("linked clone %v", conf)
	}
	// a template cannot start
	if _, exit := b.runTask(t, "POST", "/nodes/pve1/qemu/9000/status/start", nil); exit != "you can't start a vm if it's a template" {
		t.Fatalf("start template: %q", exit)
	}

	// destroy: refused while running, with protection; works when stopped
	if _, exit := b.runTask(t, "POST", "/nodes/pve1/qemu/990/status/start", nil); exit != "OK" {
		t.Fatal(exit)
	}
	if r := b.raw(t, "DELETE", "/nodes/pve1/qemu/990", url.Values{"purge": {"1"}}, nil); r.status != "500 VM 990 is running - destroy failed" {
		t.Fatalf("running: %s", r.status)
	}
	if _, exit := b.runTask(t, "POST", "/nodes/pve1/qemu/990/status/stop", nil); exit != "OK" {
		t.Fatal(exit)
	}
	_ = b.raw(t, "PUT", "/nodes/pve1/qemu/990/config", url.Values{"protection": {"1"}}, nil)
	if r := b.raw(t, "DELETE", "/nodes/pve1/qemu/990", nil, nil); r.status != "500 can't remove VM 990 - protection mode enabled" {
		t.Fatalf("protected: %s", r.status)
	}
	_ = b.raw(t, "PUT", "/nodes/pve1/qemu/990/config", url.Values{"delete": {"protection"}}, nil)
	_ = b.sim.SetLock(990, "backup")
	if _, exit := b.runTask(t, "DELETE", "/nodes/pve1/qemu/990", url.Values{"purge": {"1"}}); exit != "VM is locked (backup)" {
		t.Fatalf("locked: %q", exit)
	}
	_ = b.sim.SetLock(990, "")
	upid, exit := b.runTask(t, "DELETE", "/nodes/pve1/qemu/990", url.Values{"purge": {"1"}, "destroy-unreferenced-disks": {"1"}})
	if exit != "OK" || !strings.Contains(upid, ":qmdestroy:990:") {
		t.Fatalf("destroy: %s %q", upid, exit)
	}
	if _, ok := b.sim.VMConfig(990); ok {
		t.Fatal("990 still exists")
	}
	if got := imageVolids(t, b, "pve1", "990"); len(got) != 0 {
		t.Fatalf("images left %v", got)
	}
	r := b.raw(t, "GET", "/cluster/resources", url.Values{"type": {"vm"}}, nil)
	for _, it := range r.body["data"].([]any) {
		if it.(map[string]any)["vmid"] == float64(990) {
			t.Fatal("990 still in /cluster/resources")
		}
	}
	if r := b.raw(t, "DELETE", "/nodes/pve1/qemu/990", nil, nil); r.status != "500 Configuration file 'nodes/pve1/qemu-server/990.conf' does not exist" {
		t.Fatalf("missing: %s", r.status)
	}
}

func TestSnapshotsAndRestoreDropsThem(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	if _, exit := b.runTask(t, "POST", "/nodes/pve1/qemu/100/snapshot", url.Values{"snapname": {"before-update"}, "description": {"pvekeep"}, "vmstate": {"1"}}); exit != "OK" {
		t.Fatal(exit)
	}
	if _, exit := b.runTask(t, "POST", "/nodes/pve1/qemu/100/snapshot", url.Values{"snapname": {"before-update"}}); exit != "snapshot name 'before-update' already used" {
		t.Fatalf("duplicate: %q", exit)
	}
	if r := b.raw(t, "POST", "/nodes/pve1/qemu/100/snapshot", url.Values{"snapname": {"current"}}, nil); r.status != "500 unable to use snapshot name 'current' (reserved name)" {
		t.Fatalf("current: %s", r.status)
	}
	r := b.raw(t, "GET", "/nodes/pve1/qemu/100/snapshot", nil, nil)
	list := r.body["data"].([]any)
	if len(list) != 2 || list[1].(map[string]any)["name"] != "current" || list[1].(map[string]any)["parent"] != "before-update" || list[0].(map[string]any)["vmstate"] != float64(1) {
		t.Fatalf("list %v", list)
	}
	_ = b.raw(t, "PUT", "/nodes/pve1/qemu/100/config", url.Values{"name": {"changed"}}, nil)
	// rollback hard-stops the running VM; with vmstate it runs again
	if _, exit := b.runTask(t, "POST", "/nodes/pve1/qemu/100/snapshot/before-update/rollback", nil); exit != "OK" {
		t.Fatal(exit)
	}
	if conf, _ := b.sim.VMConfig(100); conf["name"] != "vm100" || conf["parent"] != "before-update" {
		t.Fatalf("after rollback %v", conf)
	}
	if names, _ := b.sim.Snapshots(100); len(names) != 1 {
		t.Fatalf("snapshots %v", names)
	}
	// a restore drops all snapshots and their state volumes
	volid, _ := b.sim.AddVolume(Volume{VMID: 100})
	if _, exit := b.runTask(t, "POST", "/nodes/pve1/qemu/100/status/stop", nil); exit != "OK" {
		t.Fatal(exit)
	}
	if _, exit := b.runTask(t, "POST", "/nodes/pve1/qemu", url.Values{"vmid": {"100"}, "archive": {volid}, "force": {"1"}}); exit != "OK" {
		t.Fatal(exit)
	}
	if names, _ := b.sim.Snapshots(100); len(names) != 0 {
		t.Fatalf("snapshots after restore %v", names)
	}
	if got := imageVolids(t, b, "pve1", "100"); len(got) != 1 {
		t.Fatalf("images after restore %v", got)
	}
	if _, exit := b.runTask(t, "DELETE", "/nodes/pve1/qemu/100/snapshot/before-update", nil); exit != "snapshot 'before-update' does not exist" {
		t.Fatalf("delete missing: %q", exit)
	}
}
