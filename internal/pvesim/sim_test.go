package pvesim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	proxmox "github.com/luthermonson/go-proxmox"
)

// testSpeed makes a 10 GiB vzdump (~82 simulated seconds) take ~0.2 s.
const testSpeed = 400

// bundle is what a test gets from setup.
type bundle struct {
	sim    *Sim
	info   Info
	client *proxmox.Client // token auth
	http   *http.Client    // raw requests
}

func setup(t *testing.T, opts Options) *bundle {
	t.Helper()
	if opts.Nodes == 0 {
		opts.Nodes = 2
	}
	if opts.VMs == 0 {
		opts.VMs = 4 // 100,102 on pve1; 101,103 on pve2
	}
	if opts.Speed == 0 {
		opts.Speed = testSpeed
	}
	s := New(opts)
	info, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	hc := pinnedClient(t, info.Fingerprint)
	return &bundle{
		sim:    s,
		info:   info,
		client: proxmox.NewClient(info.URL, proxmox.WithHTTPClient(hc), proxmox.WithAPIToken(info.TokenID, info.TokenSecret)),
		http:   hc,
	}
}

// pinnedClient trusts exactly the certificate with the given fingerprint,
// as the gateway's pinning does.
func pinnedClient(t *testing.T, fingerprint string) *http.Client {
	t.Helper()
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{
			InsecureSkipVerify: true,
			VerifyConnection: func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 {
					return errors.New("no certificate")
				}
				if got := fingerprintOf(cs.PeerCertificates[0].Raw); got != fingerprint {
					return fmt.Errorf("fingerprint %s, want %s", got, fingerprint)
				}
				return nil
			},
		}},
	}
}

func fingerprintOf(der []byte) string {
	sum := sha256Sum(der)
	return fingerprintString(sum[:])
}

// rawResponse is an API answer as seen on the wire.
type rawResponse struct {
	code   int
	status string // "400 Parameter verification failed."
	body   map[string]any
}

func (b *bundle) raw(t *testing.T, method, path string, form url.Values, hdr http.Header) rawResponse {
	t.Helper()
	var body io.Reader
	u := b.info.URL + path
	if method == http.MethodGet || method == http.MethodDelete {
		if len(form) > 0 {
			u += "?" + form.Encode()
		}
	} else if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if hdr == nil {
		req.Header.Set("Authorization", fmt.Sprintf("PVEAPIToken=%s=%s", b.info.TokenID, b.info.TokenSecret))
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	res, err := b.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	out := rawResponse{code: res.StatusCode, status: res.Status}
	data, _ := io.ReadAll(res.Body)
	if len(data) > 0 {
		if err := json.Unmarshal(data, &out.body); err != nil {
			t.Fatalf("%s %s: body %q is not JSON: %v", method, path, data, err)
		}
	}
	return out
}

// waitTask polls a task's status until it stops, tolerating the
// just-forked 400, and returns whether it was seen running and the exit.
func waitTask(t *testing.T, c *proxmox.Client, upid string) (sawRunning bool, exit string) {
	t.Helper()
	ctx := context.Background()
	task := proxmox.NewTask(proxmox.UPID(upid), c)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		err := task.Ping(ctx)
		switch {
		case err != nil && strings.Contains(err.Error(), "no such task"):
		case err != nil:
			t.Fatalf("task status %s: %v", upid, err)
		case task.Status == "running":
			sawRunning = true
		case task.Status == "stopped":
			return sawRunning, task.ExitStatus
		default:
			t.Fatalf("task status %q", task.Status)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("task %s did not stop", upid)
	return false, ""
}

func taskLog(t *testing.T, c *proxmox.Client, upid string) []string {
	t.Helper()
	var lines []struct {
		N int    `json:"n"`
		T string `json:"t"`
	}
	node := strings.Split(upid, ":")[1]
	if err := c.Get(context.Background(), fmt.Sprintf("/nodes/%s/tasks/%s/log?start=0&limit=0", node, upid), &lines); err != nil {
		t.Fatalf("task log: %v", err)
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		if l.N != i+1 {
			t.Fatalf("log line %d numbered %d", i+1, l.N)
		}
		out[i] = l.T
	}
	return out
}

func hasLine(lines []string, re string) bool {
	r := regexp.MustCompile(re)
	for _, l := range lines {
		if r.MatchString(l) {
			return true
		}
	}
	return false
}

// backupItem is the storage listing item as the gateway decodes it.
type backupItem struct {
	Volid     string `json:"volid"`
	Size      int64  `json:"size"`
	Ctime     int64  `json:"ctime"`
	Format    string `json:"format"`
	Subtype   string `json:"subtype"`
	Content   string `json:"content"`
	VMID      int    `json:"vmid"`
	Notes     string `json:"notes"`
	Protected *int   `json:"protected"`
}

func listBackups(t *testing.T, c *proxmox.Client, node string, vmid int) []backupItem {
	t.Helper()
	var items []backupItem
	if err := c.Get(context.Background(), fmt.Sprintf("/nodes/%s/storage/backup/content?content=backup&vmid=%d", node, vmid), &items); err != nil {
		t.Fatalf("list backups: %v", err)
	}
	return items
}

func vzdump(t *testing.T, c *proxmox.Client, node string, vmid int, notes string) string {
	t.Helper()
	remove := proxmox.IntOrBool(false)
	prune := "keep-all=1"
	task, err := mustNode(t, c, node).Vzdump(context.Background(), &proxmox.VirtualMachineBackupOptions{
		VMID: uint64(vmid), Storage: "backup", Mode: "snapshot", Compress: "zstd",
		NotesTemplate: notes, Remove: &remove, PruneBackups: &prune,
	})
	if err != nil {
		t.Fatalf("vzdump %d on %s: %v", vmid, node, err)
	}
	return string(task.UPID)
}

func mustNode(t *testing.T, c *proxmox.Client, name string) *proxmox.Node {
	t.Helper()
	n, err := c.Node(context.Background(), name)
	if err != nil {
		t.Fatalf("node %s: %v", name, err)
	}
	return n
}

func TestLoginWithTokenAndTicket(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	ctx := context.Background()
	if _, err := b.client.Version(ctx); err != nil {
		t.Fatalf("token version: %v", err)
	}

	ticketClient := proxmox.NewClient(b.info.URL, proxmox.WithHTTPClient(b.http),
		proxmox.WithCredentials(&proxmox.Credentials{Username: b.info.Username, Password: b.info.Password}))
	if _, err := ticketClient.Version(ctx); err != nil {
		t.Fatalf("ticket version: %v", err)
	}
	// a non-GET needs the CSRF token, which go-proxmox sends
	upid := vzdump(t, ticketClient, "pve1", 100, "via ticket")
	if m := reUPID.FindStringSubmatch(upid); m == nil || m[8] != "root@pam" {
		t.Fatalf("UPID %q: want user root@pam", upid)
	}

	sess := ticketClient.Session()
	cookie := http.Header{"Cookie": {cookieName + "=" + sess.Ticket}}
	if r := b.raw(t, "GET", "/version", nil, cookie); r.code != 200 {
		t.Fatalf("GET with ticket cookie: %s", r.status)
	}
	r := b.raw(t, "POST", "/nodes/pve1/vzdump", url.Values{"vmid": {"102"}}, cookie)
	if r.status != "401 Permission denied - invalid csrf token" {
		t.Fatalf("POST without CSRF token: %s", r.status)
	}
}

func TestBadAuthAnswers401(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	tests := []struct {
		name   string
		hdr    http.Header
		status string
	}{
		{"no credentials", http.Header{}, "401 No ticket"},
		{"wrong token secret", http.Header{"Authorization": {"PVEAPIToken=" + b.info.TokenID + "=nope"}}, "401 Authentication failed!"},
		{"unknown token id", http.Header{"Authorization": {"PVEAPIToken=root@pam!other=" + b.info.TokenSecret}}, "401 Authentication failed!"},
		{"forged ticket", http.Header{"Cookie": {cookieName + "=PVE:root@pam:00000000::x"}}, "401 Authentication failed!"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := b.raw(t, "GET", "/version", nil, tt.hdr); r.status != tt.status {
				t.Fatalf("status %q, want %q", r.status, tt.status)
			}
		})
	}
	t.Run("go-proxmox sees ErrNotAuthorized", func(t *testing.T) {
		c := proxmox.NewClient(b.info.URL, proxmox.WithHTTPClient(b.http), proxmox.WithAPIToken(b.info.TokenID, "wrong"))
		if _, err := c.Version(context.Background()); !proxmox.IsNotAuthorized(err) {
			t.Fatalf("err %v, want not authorized", err)
		}
		c = proxmox.NewClient(b.info.URL, proxmox.WithHTTPClient(b.http), proxmox.WithLogins("root@pam", "wrong"))
		if _, err := c.Version(context.Background()); !proxmox.IsNotAuthorized(err) {
			t.Fatalf("err %v, want not authorized", err)
		}
	})
}

func TestVersion(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	v, err := b.client.Version(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if v.Release != pveRelease || !strings.HasPrefix(v.Version, pveRelease) || v.RepoID == "" {
		t.Fatalf("version %+v", v)
	}
}

func TestClusterResourcesFilterByType(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{Nodes: 2, VMs: 4})
	cl, err := b.client.Cluster(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	vms, err := cl.Resources(context.Background(), "vm")
	if err != nil {
		t.Fatal(err)
	}
	if len(vms) != 6 {
		t.Fatalf("%d vm resources, want 4 VMs and 2 templates", len(vms))
	}
	wantNode := map[uint64]string{100: "pve1", 101: "pve2", 102: "pve1", 103: "pve2", 9000: "pve1", 9001: "pve2"}
	for _, r := range vms {
		wantStatus, wantTemplate := "running", uint64(0)
		if r.VMID >= TemplateVMID {
			wantStatus, wantTemplate = "stopped", 1
		}
		if r.Type != "qemu" || r.ID != fmt.Sprintf("qemu/%d", r.VMID) || r.Node != wantNode[r.VMID] || r.Status != wantStatus || r.Template != wantTemplate {
			t.Errorf("resource %+v", r)
		}
	}
	nodes, err := cl.Resources(context.Background(), "node")
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 2 || nodes[0].Type != "node" {
		t.Fatalf("node resources %+v", nodes)
	}
	if r := b.raw(t, "GET", "/cluster/resources", url.Values{"type": {"lxc"}}, nil); r.code != 400 {
		t.Fatalf("type=lxc: %s", r.status)
	}
}

func TestVMStatusAndConfig(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	vm, err := mustNode(t, b.client, "pve2").VirtualMachine(context.Background(), 101)
	if err != nil {
		t.Fatal(err)
	}
	if vm.Status != "running" || vm.CPUs != 1 || vm.MaxMem != 1<<30 || vm.MaxDisk != 10<<30 || vm.Name != "vm101" || vm.Lock != "" {
		t.Fatalf("status %+v", vm)
	}
	cfg := vm.VirtualMachineConfig
	if cfg.Cores == nil || *cfg.Cores != 1 || !strings.Contains(cfg.SCSIs["scsi0"], "local-lvm:vm-101-disk-0") || !strings.Contains(cfg.SCSIs["scsi0"], "size=10G") ||
		!strings.HasPrefix(cfg.Nets["net0"], "virtio=") || !strings.Contains(cfg.Nets["net0"], "bridge=vmbr0") || cfg.Digest == "" {
		t.Fatalf("config %+v", cfg)
	}
	// the VM lives on pve2: pve1 has no config file for it
	r := b.raw(t, "GET", "/nodes/pve1/qemu/101/status/current", nil, nil)
	if r.status != "500 Configuration file 'nodes/pve1/qemu-server/101.conf' does not exist" {
		t.Fatalf("wrong node: %s", r.status)
	}
}

func TestVzdumpRunsAndListsVolume(t *testing.T) {
	t.Parallel()
	// slow enough that the task is certainly seen running (~2 s)
	b := setup(t, Options{Speed: 40})
	before := b.sim.now().Unix()
	upid := vzdump(t, b.client, "pve1", 100, "before upgrade")
	m := reUPID.FindStringSubmatch(upid)
	if m == nil || m[1] != "pve1" || m[6] != "vzdump" || m[7] != "100" || m[8] != b.info.TokenID {
		t.Fatalf("UPID %q does not parse as a pve1 vzdump of 100 by the token", upid)
	}
	sawRunning, exit := waitTask(t, b.client, upid)
	if !sawRunning || exit != "OK" {
		t.Fatalf("running seen %v, exit %q", sawRunning, exit)
	}
	lines := taskLog(t, b.client, upid)
	for _, re := range []string{
		`^INFO: starting new backup job: vzdump 100 .*--storage backup`,
		`^INFO: Starting Backup of VM 100 \(qemu\)$`,
		`^INFO: include disk 'scsi0' 'local-lvm:vm-100-disk-0' 10G$`,
		`^INFO: creating vzdump archive '/mnt/backup/dump/vzdump-qemu-100-\d{4}_\d\d_\d\d-\d\d_\d\d_\d\d\.vma\.zst'$`,
		`^INFO:\s+\d+% \(\d+\.\d (GiB|MiB) of 10\.0 GiB\) in \d+s, read: \S+ MiB/s, write: \S+ MiB/s$`,
		`^INFO: 100% \(10\.0 GiB of 10\.0 GiB\)`,
		`^INFO: archive file size: \d+\.\d\dGB$`,
		`^INFO: Finished Backup of VM 100 \(00:01:\d\d\)$`,
		`^INFO: Backup job finished successfully$`,
	} {
		if !hasLine(lines, re) {
			t.Errorf("log lacks %s:\n%s", re, strings.Join(lines, "\n"))
		}
	}
	if last := lines[len(lines)-1]; last != "TASK OK" {
		t.Errorf("last log line %q", last)
	}

	items := listBackups(t, b.client, "pve1", 100)
	if len(items) != 1 {
		t.Fatalf("listing %+v", items)
	}
	it := items[0]
	if !regexp.MustCompile(`^backup:backup/vzdump-qemu-100-\d{4}_\d\d_\d\d-\d\d_\d\d_\d\d\.vma\.zst$`).MatchString(it.Volid) ||
		it.Size <= 0 || it.Ctime < before || it.Format != "vma.zst" || it.Subtype != "qemu" || it.VMID != 100 ||
		it.Notes != "before upgrade" || it.Protected != nil || it.Content != "backup" {
		t.Fatalf("item %+v", it)
	}
	// the archive keeps the config of backup time
	conf, ok := b.sim.BackupConfig(it.Volid)
	if !ok || conf["cores"] != "1" || conf["lock"] != "" || !strings.Contains(conf["scsi0"], "vm-100-disk-0") {
		t.Fatalf("archived config %v", conf)
	}
	if cfg, _ := b.sim.VMConfig(100); cfg["lock"] != "" {
		t.Fatalf("lock left behind: %q", cfg["lock"])
	}
	var text string
	if err := b.client.Get(context.Background(), "/nodes/pve1/vzdump/extractconfig?volume="+url.QueryEscape(it.Volid), &text); err != nil ||
		!strings.Contains(text, "\ncores: 1\n") || !strings.Contains(text, "#qmdump#map:scsi0:drive-scsi0:local-lvm:raw:") {
		t.Fatalf("extractconfig %q, %v", text, err)
	}
	// the shared storage lists the same volume from the other node
	if got := listBackups(t, b.client, "pve2", 100); len(got) != 1 || got[0].Volid != it.Volid {
		t.Fatalf("pve2 listing %+v", got)
	}
}

func TestVzdumpToNonOwnerNodeAnswersOK(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	r := b.raw(t, "POST", "/nodes/pve2/vzdump", url.Values{"vmid": {"100"}, "storage": {"backup"}}, nil)
	if r.code != 200 || r.body["data"] != "OK" {
		t.Fatalf("answer %s %v", r.status, r.body)
	}
	task, err := mustNode(t, b.client, "pve2").Vzdump(context.Background(), &proxmox.VirtualMachineBackupOptions{VMID: 100, Storage: "backup"})
	if err != nil || task.UPID != "OK" {
		t.Fatalf("go-proxmox: %v %+v", err, task)
	}
	if n := len(b.sim.State().Tasks); n != 0 {
		t.Fatalf("%d tasks started", n)
	}
}

func TestVzdumpsOnOneNodeSerialise(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{Speed: 100})
	first := vzdump(t, b.client, "pve1", 100, "first")
	// wait until the first job holds the node lock
	deadline := time.Now().Add(10 * time.Second)
	for !b.sim.State().Nodes[0].VzdumpLocked {
		if time.Now().After(deadline) {
			t.Fatal("first vzdump never took the lock")
		}
		time.Sleep(time.Millisecond)
	}
	second := vzdump(t, b.client, "pve1", 102, "second")
	// VM 102 is locked only once its job got the global lock
	gotLock := func() bool {
		for _, ts := range b.sim.State().Tasks {
			if ts.UPID == second {
				return hasLine(ts.Log, `^INFO: got global lock$`)
			}
		}
		return false
	}
	for !gotLock() {
		if time.Now().After(deadline) {
			t.Fatal("second vzdump never got the lock")
		}
		if conf, _ := b.sim.VMConfig(102); conf["lock"] == "backup" && !gotLock() {
			t.Fatal("VM 102 locked before its job got the global lock")
		}
		time.Sleep(time.Millisecond)
	}
	if _, exit := waitTask(t, b.client, first); exit != "OK" {
		t.Fatalf("first exit %q", exit)
	}
	if _, exit := waitTask(t, b.client, second); exit != "OK" {
		t.Fatalf("second exit %q", exit)
	}
	lines := taskLog(t, b.client, second)
	if lines[0] != "INFO: trying to get global lock - waiting..." || lines[1] != "INFO: got global lock" ||
		!strings.HasPrefix(lines[2], "INFO: starting new backup job: vzdump 102") {
		t.Fatalf("second log starts %q", lines[:3])
	}
	// a vzdump on the other node does not wait
	other := vzdump(t, b.client, "pve2", 101, "")
	waitTask(t, b.client, other)
	if hasLine(taskLog(t, b.client, other), "global lock") {
		t.Fatal("pve2 job waited for pve1's lock")
	}
	for _, vmid := range []int{100, 102} {
		if conf, _ := b.sim.VMConfig(vmid); conf["lock"] != "" {
			t.Fatalf("VM %d still locked", vmid)
		}
	}
}

func TestTaskFaultFailsVzdump(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	if err := b.sim.InjectTaskFault(TaskFault{Type: "vzdump", VMID: 100, ExitStatus: "vma_queue_write: write error - Broken pipe", Count: 1}); err != nil {
		t.Fatal(err)
	}
	upid := vzdump(t, b.client, "pve1", 100, "doomed")
	// PVE's vzdump dies with "job errors"; the guest's reason is in its log.
	if _, exit := waitTask(t, b.client, upid); exit != "job errors" {
		t.Fatalf("exit %q, want %q", exit, "job errors")
	}
	lines := taskLog(t, b.client, upid)
	if !hasLine(lines, `^ERROR: Backup of VM 100 failed - vma_queue_write: write error - Broken pipe$`) ||
		!hasLine(lines, `^INFO: Backup job finished with errors$`) ||
		lines[len(lines)-1] != "TASK ERROR: job errors" {
		t.Fatalf("log:\n%s", strings.Join(lines, "\n"))
	}
	if items := listBackups(t, b.client, "pve1", 100); len(items) != 0 {
		t.Fatalf("failed backup left %+v", items)
	}
	if conf, _ := b.sim.VMConfig(100); conf["lock"] != "" {
		t.Fatalf("lock left behind: %q", conf["lock"])
	}
	// the fault was used up
	if _, exit := waitTask(t, b.client, vzdump(t, b.client, "pve1", 100, "")); exit != "OK" {
		t.Fatalf("second exit %q", exit)
	}
}

func TestLockedVMRefusesBackupAndConfigChange(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	if err := b.sim.SetLock(100, "snapshot"); err != nil {
		t.Fatal(err)
	}
	vm, err := mustNode(t, b.client, "pve1").VirtualMachine(context.Background(), 100)
	if err != nil || vm.Lock != "snapshot" {
		t.Fatalf("status lock %q, %v", vm.Lock, err)
	}
	upid := vzdump(t, b.client, "pve1", 100, "")
	if _, exit := waitTask(t, b.client, upid); exit != "job errors" {
		t.Fatalf("exit %q", exit)
	}
	if !hasLine(taskLog(t, b.client, upid), `^ERROR: Backup of VM 100 failed - VM is locked \(snapshot\)$`) {
		t.Fatal("no locked error in log")
	}
	for _, method := range []string{"PUT", "POST"} {
		r := b.raw(t, method, "/nodes/pve1/qemu/100/config", url.Values{"cores": {"2"}}, nil)
		if r.status != "500 VM is locked (snapshot)" || r.body["message"] != "VM is locked (snapshot)\n" {
			t.Fatalf("%s config: %s %v", method, r.status, r.body)
		}
	}
	// a token is not root@pam: skiplock is refused
	r := b.raw(t, "PUT", "/nodes/pve1/qemu/100/config", url.Values{"delete": {"lock"}, "skiplock": {"1"}}, nil)
	if r.code != 400 || r.body["errors"].(map[string]any)["skiplock"] != "Only root may use this option." {
		t.Fatalf("skiplock with token: %s %v", r.status, r.body)
	}
	if conf, _ := b.sim.VMConfig(100); conf["lock"] != "snapshot" {
		t.Fatal("lock changed")
	}
}

func TestConfigUpdates(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	if r := b.raw(t, "PUT", "/nodes/pve1/qemu/100/config", url.Values{"cores": {"2"}, "memory": {"2048"}}, nil); r.code != 200 {
		t.Fatalf("PUT: %s %v", r.status, r.body)
	}
	r := b.raw(t, "POST", "/nodes/pve1/qemu/100/config", url.Values{"scsi1": {"local-lvm:4"}, "delete": {"numa"}}, nil)
	if r.code != 200 {
		t.Fatalf("POST: %s %v", r.status, r.body)
	}
	if _, exit := waitTask(t, b.client, r.body["data"].(string)); exit != "OK" {
		t.Fatalf("qmconfig exit %q", exit)
	}
	// VM 100 runs: the new disk hotplugs, cores, memory and numa wait
	conf, _ := b.sim.VMConfig(100)
	pending, deletes, _ := b.sim.VMPending(100)
	if conf["cores"] != "1" || conf["memory"] != "1024" || conf["scsi1"] != "local-lvm:vm-100-disk-1,size=4G" || conf["numa"] != "0" {
		t.Fatalf("config %v", conf)
	}
	if pending["cores"] != "2" || pending["memory"] != "2048" || !slicesEqual(deletes, []string{"numa"}) {
		t.Fatalf("pending %v, deletes %v", pending, deletes)
	}
	r = b.raw(t, "PUT", "/nodes/pve1/qemu/100/config", url.Values{"cores": {"4"}, "digest": {"0000"}}, nil)
	if r.code != 500 {
		t.Fatalf("stale digest: %s", r.status)
	}
}

func TestProtectedVolumeDeleteFails(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	volid, err := b.sim.AddVolume(Volume{VMID: 100, Notes: "keep me", Protected: true, Time: time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	if volid != "backup:backup/vzdump-qemu-100-2026_11_01-03_00_00.vma.zst" {
		t.Fatalf("volid %q", volid)
	}
	items := listBackups(t, b.client, "pve1", 100)
	if len(items) != 1 || items[0].Protected == nil || *items[0].Protected != 1 || items[0].Notes != "keep me" {
		t.Fatalf("listing %+v", items)
	}
	path := "/nodes/pve1/storage/backup/content/" + volid
	var upid string
	if err := b.client.Delete(context.Background(), path, &upid); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(upid, ":imgdel:100@backup:") {
		t.Fatalf("UPID %q", upid)
	}
	if _, exit := waitTask(t, b.client, upid); exit != "cannot remove protected volume 'backup/vzdump-qemu-100-2026_11_01-03_00_00.vma.zst' on 'backup'" {
		t.Fatalf("exit %q", exit)
	}
	if err := b.client.Put(context.Background(), path, map[string]any{"protected": false, "notes": "now free"}, nil); err != nil {
		t.Fatal(err)
	}
	var vol map[string]any
	if err := b.client.Get(context.Background(), path, &vol); err != nil || vol["notes"] != "now free" || vol["protected"] != float64(0) {
		t.Fatalf("volume %v, %v", vol, err)
	}
	if err := b.client.Delete(context.Background(), path, &upid); err != nil {
		t.Fatal(err)
	}
	if _, exit := waitTask(t, b.client, upid); exit != "OK" {
		t.Fatalf("exit %q", exit)
	}
	if items := listBackups(t, b.client, "pve1", 100); len(items) != 0 {
		t.Fatalf("listing after delete %+v", items)
	}
}

func TestSchemaValidation(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	tests := []struct {
		name         string
		method, path string
		form         url.Values
		param, error string
	}{
		{"unknown parameter", "POST", "/nodes/pve1/vzdump", url.Values{"vmid": {"100"}, "colour": {"red"}},
			"colour", "property is not defined in schema and the schema does not allow additional properties"},
		{"bad enum", "POST", "/nodes/pve1/vzdump", url.Values{"vmid": {"100"}, "compress": {"xz"}},
			"compress", "value 'xz' does not have a value in the enumeration '0, 1, gzip, lzo, zstd'"},
		{"boolean must be 0 or 1", "POST", "/nodes/pve1/vzdump", url.Values{"vmid": {"100"}, "remove": {"true"}},
			"remove", "type check ('boolean') failed - got 'true'"},
		{"integer type", "GET", "/nodes/pve1/storage/backup/content", url.Values{"vmid": {"abc"}},
			"vmid", "type check ('integer') failed - got 'abc'"},
		{"format before range", "GET", "/nodes/pve1/storage/backup/content", url.Values{"vmid": {"99"}},
			"vmid", "invalid format - value does not look like a valid VM ID\n"},
		{"integer range", "POST", "/nodes/pve1/vzdump", url.Values{"vmid": {"100"}, "ionice": {"9"}},
			"ionice", "value must have a maximum value of 8"},
		{"vmid list format", "POST", "/nodes/pve1/vzdump", url.Values{"vmid": {"100,abc"}},
			"vmid", "invalid format - value does not look like a valid VM ID\n"},
		{"maxLength", "POST", "/nodes/pve1/vzdump", url.Values{"vmid": {"100"}, "storage": {"backup"}, "notes-template": {strings.Repeat("x", 1025)}},
			"notes-template", "value may only be 1024 characters long"},
		{"requires", "POST", "/nodes/pve1/vzdump", url.Values{"vmid": {"100"}, "notes-template": {"x"}},
			"storage", "missing property required by 'notes-template'"},
		{"storage id format", "GET", "/nodes/pve1/storage", url.Values{"storage": {"no/slash"}},
			"storage", "invalid format - storage ID 'no/slash' contains illegal characters\n"},
		{"property string", "PUT", "/nodes/pve1/qemu/100/config", url.Values{"net0": {"virtio,bridge=vmbr0,colour=red"}},
			"net0", "invalid format - format error\ncolour: property is not defined in schema and the schema does not allow additional properties\n"},
		{"indexed key out of range", "PUT", "/nodes/pve1/qemu/100/config", url.Values{"net99": {"virtio,bridge=vmbr0"}},
			"net99", "property is not defined in schema and the schema does not allow additional properties"},
		{"missing required", "GET", "/nodes/pve1/tasks/UPID:pve1:0000AAAA:0000BBBB:6740A3B2:vzdump:100:root@pam:/status", nil,
			"upid", "no such task"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := b.raw(t, tt.method, tt.path, tt.form, nil)
			if r.status != "400 Parameter verification failed." {
				t.Fatalf("status %q body %v", r.status, r.body)
			}
			errs, _ := r.body["errors"].(map[string]any)
			if errs[tt.param] != tt.error || r.body["data"] != nil {
				t.Fatalf("errors %q, want %s: %q", errs, tt.param, tt.error)
			}
		})
	}
	t.Run("missing password", func(t *testing.T) {
		r := b.raw(t, "POST", "/access/ticket", url.Values{"username": {"root@pam"}}, http.Header{})
		if r.code != 400 || r.body["errors"].(map[string]any)["password"] != "property is missing and it is not optional" {
			t.Fatalf("%s %v", r.status, r.body)
		}
	})
	t.Run("JSON body with native types", func(t *testing.T) {
		req := map[string]any{"vmid": 100, "storage": "backup", "remove": false, "compress": "zstd", "lockwait": 1.5}
		var data any
		err := b.client.Post(context.Background(), "/nodes/pve1/vzdump", req, &data)
		if err == nil || !strings.Contains(err.Error(), `"lockwait":"type check ('integer') failed - got '1.5'"`) {
			t.Fatalf("err %v", err)
		}
	})
}

func TestJustBornUPIDAnswers400(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{TaskVisibleAfter: time.Hour})
	upid := vzdump(t, b.client, "pve1", 100, "")
	r := b.raw(t, "GET", "/nodes/pve1/tasks/"+upid+"/status", nil, nil)
	if r.code != 400 || r.body["errors"].(map[string]any)["upid"] != "no such task" {
		t.Fatalf("fresh UPID: %s %v", r.status, r.body)
	}
	r = b.raw(t, "GET", "/nodes/pve1/tasks/not-a-upid/status", nil, nil)
	if r.code != 400 || r.body["errors"].(map[string]any)["upid"] != "unable to parse worker upid" {
		t.Fatalf("garbage UPID: %s %v", r.status, r.body)
	}
}

func TestTaskLogPagingAndList(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	upid := vzdump(t, b.client, "pve1", 100, "")
	waitTask(t, b.client, upid)
	all := taskLog(t, b.client, upid)
	r := b.raw(t, "GET", "/nodes/pve1/tasks/"+upid+"/log", url.Values{"start": {"2"}, "limit": {"3"}}, nil)
	data := r.body["data"].([]any)
	if len(data) != 3 || r.body["total"] != float64(len(all)) {
		t.Fatalf("page %v total %v", data, r.body["total"])
	}
	if first := data[0].(map[string]any); first["n"] != float64(3) || first["t"] != all[2] {
		t.Fatalf("first line of page %v", first)
	}
	tasks, err := mustNode(t, b.client, "pve1").Tasks(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 1 || string(tasks[0].UPID) != upid || tasks[0].Status != "OK" {
		t.Fatalf("task list %+v", tasks)
	}
}

func TestHTTPFaultsAndControlSurface(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	post := func(path string, body any) {
		t.Helper()
		data, _ := json.Marshal(body)
		res, err := b.http.Post(b.info.ControlURL+path, "application/json", bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("POST %s: %s", path, res.Status)
		}
	}
	post("/faults/http", map[string]any{"method": "GET", "path_regex": "^/version$", "status": 503, "count": 1})
	if r := b.raw(t, "GET", "/version", nil, nil); r.code != 503 {
		t.Fatalf("faulted: %s", r.status)
	}
	if r := b.raw(t, "GET", "/version", nil, nil); r.code != 200 {
		t.Fatalf("after fault: %s", r.status)
	}

	post("/faults/http", map[string]any{"path_regex": "^/nodes$", "delay": "300ms"})
	slow := &http.Client{Transport: b.http.Transport, Timeout: 50 * time.Millisecond}
	c := proxmox.NewClient(b.info.URL, proxmox.WithHTTPClient(slow), proxmox.WithAPIToken(b.info.TokenID, b.info.TokenSecret))
	if _, err := c.Nodes(context.Background()); err == nil {
		t.Fatal("delayed request did not time out")
	}
	req, _ := http.NewRequest(http.MethodDelete, b.info.ControlURL+"/faults", nil)
	if res, err := b.http.Do(req); err != nil || res.StatusCode != 200 {
		t.Fatalf("clear faults: %v", err)
	}

	post("/vms/102/lock", map[string]any{"lock": "backup"})
	post("/volumes", map[string]any{"vmid": 103, "notes": "planted"})
	res, err := b.http.Get(b.info.ControlURL + "/state")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var st State
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st.VMs[2].VMID != 102 || st.VMs[2].Lock != "backup" || len(st.Volumes) != 1 || st.Volumes[0].Notes != "planted" ||
		st.Volumes[0].Config["name"] != "vm103" || len(st.HTTPFaults) != 0 {
		t.Fatalf("state %+v", st)
	}
}

func TestPowerTasks(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	vm, err := mustNode(t, b.client, "pve1").VirtualMachine(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	task, err := vm.Stop(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(task.UPID), ":qmstop:100:") {
		t.Fatalf("UPID %s", task.UPID)
	}
	if _, exit := waitTask(t, b.client, string(task.UPID)); exit != "OK" {
		t.Fatalf("stop exit %q", exit)
	}
	task, err = vm.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	waitTask(t, b.client, string(task.UPID))
	task, err = vm.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, exit := waitTask(t, b.client, string(task.UPID)); exit != "VM 100 already running" {
		t.Fatalf("second start exit %q", exit)
	}
}

func TestCloseStopsRunningTasks(t *testing.T) {
	t.Parallel()
	s := New(Options{VMs: 1, Speed: 1})
	info, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := proxmox.NewClient(info.URL, proxmox.WithHTTPClient(pinnedClient(t, info.Fingerprint)), proxmox.WithAPIToken(info.TokenID, info.TokenSecret))
	vzdump(t, c, "pve1", 100, "")
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return while a realistic-speed vzdump ran")
	}
}

func TestMainPrintsOneJSONLine(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- Main(ctx, []string{"--listen", "127.0.0.1:0", "--nodes", "2", "--vms", "3", "--speed", "50"}, &stdout, &stderr)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stdout.String(), "\n") {
		if time.Now().After(deadline) {
			t.Fatalf("no line printed; stderr: %s", stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	var info Info
	if err := json.Unmarshal([]byte(stdout.String()), &info); err != nil {
		t.Fatalf("line %q: %v", stdout.String(), err)
	}
	if !strings.HasPrefix(info.URL, "https://127.0.0.1:") || !strings.HasSuffix(info.URL, "/api2/json") ||
		info.TokenID != "root@pam!pvekeep" || info.TokenSecret == "" || info.Username != "root@pam" || info.Password == "" ||
		!regexp.MustCompile(`^([0-9A-F]{2}:){31}[0-9A-F]{2}$`).MatchString(info.Fingerprint) || !strings.HasSuffix(info.ControlURL, "/_sim") {
		t.Fatalf("info %+v", info)
	}
	c := proxmox.NewClient(info.URL, proxmox.WithHTTPClient(pinnedClient(t, info.Fingerprint)), proxmox.WithAPIToken(info.TokenID, info.TokenSecret))
	nodes, err := c.Nodes(context.Background())
	if err != nil || len(nodes) != 2 {
		t.Fatalf("nodes %v %v", nodes, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(stdout.String(), "\n"); n != 1 {
		t.Fatalf("%d stdout lines", n)
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

func TestVzdumpLockwaitTimeoutEndsWithoutStatus(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	// a 200 GiB disk keeps the first job ~1600 simulated seconds, far past a 1-minute lockwait
	if r := b.raw(t, "PUT", "/nodes/pve1/qemu/100/config", url.Values{"scsi0": {"local-lvm:vm-100-disk-0,iothread=1,size=200G"}}, nil); r.code != 200 {
		t.Fatalf("grow disk: %s %v", r.status, r.body)
	}
	vzdump(t, b.client, "pve1", 100, "")
	deadline := time.Now().Add(10 * time.Second)
	for !b.sim.State().Nodes[0].VzdumpLocked {
		if time.Now().After(deadline) {
			t.Fatal("first vzdump never took the lock")
		}
		time.Sleep(time.Millisecond)
	}
	r := b.raw(t, "POST", "/nodes/pve1/vzdump", url.Values{"vmid": {"102"}, "storage": {"backup"}, "lockwait": {"1"}}, nil)
	if r.code != 200 {
		t.Fatalf("second vzdump: %s %v", r.status, r.body)
	}
	upid := r.body["data"].(string)
	if _, exit := waitTask(t, b.client, upid); exit != "unexpected status" {
		t.Fatalf("exit %q", exit)
	}
	lines := taskLog(t, b.client, upid)
	if want := []string{"INFO: trying to get global lock - waiting...", "ERROR: can't acquire lock '/var/run/vzdump.lock' - got timeout"}; !slicesEqual(lines, want) {
		t.Fatalf("log %q, want %q", lines, want)
	}
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestNotesTemplate(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	tests := []struct {
		name, template, notes, exit string
	}{
		{"variables", `{{guestname}} on {{node}} in {{cluster}} ({{vmid}})`, "vm100 on pve1 in pvesim (100)", "OK"},
		{"escapes keep the first line in listings", `first\nsecond \\ done`, "first", "OK"},
		{"unknown variable warns", `{{colour}}`, "", "WARNINGS: 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := map[string]bool{}
			for _, it := range listBackups(t, b.client, "pve1", 100) {
				before[it.Volid] = true
			}
			upid := vzdump(t, b.client, "pve1", 100, tt.template)
			if _, exit := waitTask(t, b.client, upid); exit != tt.exit {
				t.Fatalf("exit %q, want %q", exit, tt.exit)
			}
			for _, it := range listBackups(t, b.client, "pve1", 100) {
				if !before[it.Volid] {
					if it.Notes != tt.notes {
						t.Fatalf("notes %q, want %q", it.Notes, tt.notes)
					}
					return
				}
			}
			t.Fatal("no new volume")
		})
	}
}

func TestUnknownPathNodeAndVolume(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	tests := []struct {
		name, method, path string
		form               url.Values
		status             string
	}{
		{"unserved path", "GET", "/nodes/pve1/lxc", nil, "501 Method 'GET /nodes/pve1/lxc' not implemented"},
		{"unknown node", "GET", "/nodes/pve9/qemu", nil, "500 hostname lookup 'pve9' failed - failed to get address info for: pve9: Name or service not known"},
		{"unknown vm", "GET", "/nodes/pve1/qemu/999/config", nil, "500 Configuration file 'nodes/pve1/qemu-server/999.conf' does not exist"},
		{"missing backup", "GET", "/nodes/pve1/storage/backup/content/backup:backup/vzdump-qemu-100-2020_01_01-00_00_00.vma.zst", nil,
			"500 volume_size_info on 'backup:backup/vzdump-qemu-100-2020_01_01-00_00_00.vma.zst' failed - no format"},
		{"unknown storage", "GET", "/nodes/pve1/storage/nfs/content", nil, "500 storage 'nfs' does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := b.raw(t, tt.method, tt.path, tt.form, nil); r.status != tt.status {
				t.Fatalf("status %q, want %q (%v)", r.status, tt.status, r.body)
			}
		})
	}
}

func TestDeleteWithDelayAnswersSynchronously(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	free, _ := b.sim.AddVolume(Volume{VMID: 100, Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	kept, _ := b.sim.AddVolume(Volume{VMID: 100, Time: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), Protected: true})
	r := b.raw(t, "DELETE", "/nodes/pve1/storage/backup/content/"+free, url.Values{"delay": {"5"}}, nil)
	if r.code != 200 || r.body["data"] != nil {
		t.Fatalf("delete free: %s %v", r.status, r.body)
	}
	r = b.raw(t, "DELETE", "/nodes/pve1/storage/backup/content/"+kept, url.Values{"delay": {"5"}}, nil)
	if !strings.HasPrefix(r.status, "500 cannot remove protected volume") {
		t.Fatalf("delete protected: %s %v", r.status, r.body)
	}
	if items := listBackups(t, b.client, "pve1", 100); len(items) != 1 || items[0].Volid != kept {
		t.Fatalf("listing %+v", items)
	}
}
