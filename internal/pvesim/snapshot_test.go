package pvesim

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

// snapList is GET …/snapshot as decoded JSON, by name.
func snapList(t *testing.T, b *bundle, vmid string) map[string]map[string]any {
	t.Helper()
	r := b.raw(t, "GET", "/nodes/pve1/qemu/"+vmid+"/snapshot", nil, nil)
	if r.code != 200 {
		t.Fatalf("list: %s", r.status)
	}
	out := map[string]map[string]any{}
	for _, it := range r.body["data"].([]any) {
		m := it.(map[string]any)
		out[m["name"].(string)] = m
	}
	return out
}

func mustTask(t *testing.T, b *bundle, method, path string, form url.Values) {
	t.Helper()
	if _, exit := b.runTask(t, method, path, form); exit != "OK" {
		t.Fatalf("%s %s: exit %q", method, path, exit)
	}
}

func TestSnapshotListShape(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{Clock: func() time.Time { return time.Unix(1767225600, 0) }})
	mustTask(t, b, "POST", "/nodes/pve1/qemu/100/snapshot", url.Values{"snapname": {"first"}, "description": {"before update"}})
	mustTask(t, b, "POST", "/nodes/pve1/qemu/100/snapshot", url.Values{"snapname": {"second"}, "vmstate": {"1"}})
	list := snapList(t, b, "100")
	if len(list) != 3 {
		t.Fatalf("list %v", list)
	}
	first, second, cur := list["first"], list["second"], list["current"]
	if first["description"] != "before update" || first["snaptime"] != float64(1767225600) || first["vmstate"] != float64(0) {
		t.Errorf("first = %v", first)
	}
	if _, ok := first["parent"]; ok {
		t.Errorf("first has a parent: %v", first)
	}
	if second["parent"] != "first" || second["vmstate"] != float64(1) || second["description"] != "" {
		t.Errorf("second = %v", second)
	}
	if cur["parent"] != "second" || cur["running"] != float64(1) || cur["description"] != "You are here!" || cur["digest"] != b.digest(t, "pve1", "100") {
		t.Errorf("current = %v", cur)
	}
	for name, it := range list {
		if _, ok := it["snapstate"]; ok {
			t.Errorf("%s has snapstate after its task: %v", name, it)
		}
	}
	// the snapshot's own config: its description, typed values, the state volume
	r := b.raw(t, "GET", "/nodes/pve1/qemu/100/snapshot/second/config", nil, nil)
	conf := r.body["data"].(map[string]any)
	if conf["cores"] != float64(1) || conf["snaptime"] != float64(1767225600) || conf["parent"] != "first" ||
		conf["vmstate"] != "local-lvm:vm-100-state-second" || conf["runningmachine"] == nil {
		t.Errorf("snapshot config = %v", conf)
	}
	if _, ok := conf["description"]; ok {
		t.Errorf("second has a description in its config: %v", conf)
	}
	// PUT …/config sets the description only
	if r := b.raw(t, "PUT", "/nodes/pve1/qemu/100/snapshot/second/config", url.Values{"description": {"renamed"}}, nil); r.code != 200 {
		t.Fatalf("put: %s", r.status)
	}
	if got := snapList(t, b, "100")["second"]["description"]; got != "renamed" {
		t.Errorf("description after PUT = %v", got)
	}
}

func TestSnapshotNameValidation(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	for _, tc := range []struct {
		name, status, param string
	}{
		{"1bad", "400 Parameter verification failed.", "invalid format - invalid configuration ID '1bad'"},
		{"a", "400 Parameter verification failed.", "invalid format - invalid configuration ID 'a'"},
		{"has.dot", "400 Parameter verification failed.", "invalid format - invalid configuration ID 'has.dot'"},
		{"a" + strings.Repeat("b", 40), "400 Parameter verification failed.", "value may only be 40 characters long"},
		{"current", "500 unable to use snapshot name 'current' (reserved name)", ""},
		{"pending", "500 unable to use snapshot name 'pending' (reserved name)", ""},
		{"PenDing", "500 unable to use snapshot name 'pending' (reserved name)", ""},
		{"Ab", "200 OK", ""},
		{"a-b_C" + strings.Repeat("x", 35), "200 OK", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.raw(t, "POST", "/nodes/pve1/qemu/100/snapshot", url.Values{"snapname": {tc.name}}, nil)
			if r.status != tc.status {
				t.Fatalf("status %q, want %q (%v)", r.status, tc.status, r.body)
			}
			if tc.param != "" {
				errs, _ := r.body["errors"].(map[string]any)
				if got, _ := errs["snapname"].(string); strings.TrimSpace(got) != tc.param {
					t.Errorf("errors.snapname = %q, want %q", got, tc.param)
				}
			}
		})
	}
}

// Every refusal ends the task with PVE's text and changes nothing.
func TestSnapshotTaskRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	mustTask(t, b, "POST", "/nodes/pve1/qemu/100/snapshot", url.Values{"snapname": {"keep"}})
	for _, tc := range []struct {
		name         string
		lock         string
		method, path string
		form         url.Values
		exit         string
	}{
		{"duplicate", "", "POST", "/nodes/pve1/qemu/100/snapshot", url.Values{"snapname": {"keep"}}, "snapshot name 'keep' already used"},
		{"create while backup", "backup", "POST", "/nodes/pve1/qemu/100/snapshot", url.Values{"snapname": {"other"}}, "VM is locked (backup)"},
		{"rollback while backup", "backup", "POST", "/nodes/pve1/qemu/100/snapshot/keep/rollback", nil, "VM is locked (backup)"},
		{"delete while backup", "backup", "DELETE", "/nodes/pve1/qemu/100/snapshot/keep", nil, "VM is locked (backup)"},
		{"delete while another delete", "snapshot-delete", "DELETE", "/nodes/pve1/qemu/100/snapshot/keep", url.Values{"force": {"1"}}, "VM is locked (snapshot-delete)"},
		{"rollback missing", "", "POST", "/nodes/pve1/qemu/100/snapshot/nope/rollback", nil, "snapshot 'nope' does not exist"},
		{"delete missing", "", "DELETE", "/nodes/pve1/qemu/100/snapshot/nope", nil, "snapshot 'nope' does not exist"},
		// snapshot_delete looks for the snapshot before set_lock checks the lock
		{"delete missing while locked", "backup", "DELETE", "/nodes/pve1/qemu/100/snapshot/nope", nil, "snapshot 'nope' does not exist"},
		{"rollback missing while locked", "rollback", "POST", "/nodes/pve1/qemu/100/snapshot/nope/rollback", nil, "snapshot 'nope' does not exist"},
		{"template", "", "POST", "/nodes/pve1/qemu/9000/snapshot", url.Values{"snapname": {"tt"}}, "you can't take a snapshot if it's a template"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vmid := 100
			if strings.Contains(tc.path, "/9000/") {
				vmid = 9000
			}
			if err := b.sim.SetLock(vmid, tc.lock); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = b.sim.SetLock(vmid, "") }()
			before, _ := b.sim.VMConfig(vmid)
			if _, exit := b.runTask(t, tc.method, tc.path, tc.form); exit != tc.exit {
				t.Fatalf("exit %q, want %q", exit, tc.exit)
			}
			after, _ := b.sim.VMConfig(vmid)
			if configText(after) != configText(before) {
				t.Errorf("config changed:\n%s\nwas\n%s", configText(after), configText(before))
			}
			if names, _ := b.sim.Snapshots(100); len(names) != 1 || names[0] != "keep" {
				t.Errorf("snapshots %v", names)
			}
		})
	}
	if r := b.raw(t, "PUT", "/nodes/pve1/qemu/100/snapshot/nope/config", url.Values{"description": {"x"}}, nil); r.status != "500 snapshot 'nope' does not exist" {
		t.Errorf("PUT missing: %s", r.status)
	}
	_ = b.sim.SetLock(100, "backup")
	if r := b.raw(t, "PUT", "/nodes/pve1/qemu/100/snapshot/keep/config", url.Values{"description": {"x"}}, nil); r.status != "500 VM is locked (backup)" {
		t.Errorf("PUT locked: %s", r.status)
	}
	_ = b.sim.SetLock(100, "")
}

// The lock a snapshot task holds is seen by everyone else, and a running
// backup's lock keeps snapshots out.
func TestSnapshotLocksWhileRunning(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{Speed: 20})
	for _, tc := range []struct {
		method, path string
		form         url.Values
		lock         string
	}{
		{"POST", "/nodes/pve1/qemu/100/snapshot", url.Values{"snapname": {"s1"}}, "snapshot"},
		{"POST", "/nodes/pve1/qemu/100/snapshot/s1/rollback", nil, "rollback"},
		{"DELETE", "/nodes/pve1/qemu/100/snapshot/s1", nil, "snapshot-delete"},
	} {
		upid := b.startTask(t, tc.method, tc.path, tc.form)
		waitLock(t, b, 100, tc.lock)
		// vzdump meets the lock in its own task
		vz := b.startTask(t, "POST", "/nodes/pve1/vzdump", url.Values{"vmid": {"100"}, "storage": {"backup"}})
		if _, exit := waitTask(t, b.client, vz); exit != "job errors" ||
			!hasLine(taskLog(t, b.client, vz), `VM is locked \(`+tc.lock+`\)`) {
			t.Errorf("vzdump during %s: exit %q", tc.lock, exit)
		}
		if _, exit := waitTask(t, b.client, upid); exit != "OK" {
			t.Fatalf("%s %s: %q", tc.method, tc.path, exit)
		}
		if conf, _ := b.sim.VMConfig(100); conf["lock"] != "" {
			t.Fatalf("lock left behind: %q", conf["lock"])
		}
	}
	// and the other way round: a backup in its turn keeps a snapshot out
	vz := b.startTask(t, "POST", "/nodes/pve1/vzdump", url.Values{"vmid": {"100"}, "storage": {"backup"}})
	waitLock(t, b, 100, "backup")
	if _, exit := b.runTask(t, "POST", "/nodes/pve1/qemu/100/snapshot", url.Values{"snapname": {"during"}}); exit != "VM is locked (backup)" {
		t.Errorf("snapshot during backup: %q", exit)
	}
	if _, exit := waitTask(t, b.client, vz); exit != "OK" {
		t.Errorf("vzdump: %q", exit)
	}
}

func waitLock(t *testing.T, b *bundle, vmid int, lock string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if conf, _ := b.sim.VMConfig(vmid); conf["lock"] == lock {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("vm %d never got lock %q", vmid, lock)
}

// Rollback as qemu-server does it: a running VM is hard-stopped, the
// snapshot's config comes back but the current description stays, pending
// changes go, disks added since become unusedN, a new vmgenid; the VM runs
// afterwards only with start=1 or a saved RAM state.
func TestSnapshotRollback(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		running     bool
		vmstate     bool
		start       bool
		wantRunning bool
	}{
		{"running, disk only", true, false, false, false},
		{"running, disk only, start", true, false, true, true},
		{"running, with RAM", true, true, false, true},
		{"stopped", false, false, false, false},
		{"stopped, start", false, false, true, true},
		{"stopped, vmstate asked but not saved", false, true, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Options{})
			if !tc.running {
				mustTask(t, b, "POST", "/nodes/pve1/qemu/100/status/stop", nil)
			}
			if r := b.raw(t, "PUT", "/nodes/pve1/qemu/100/config", url.Values{"description": {"at snapshot"}}, nil); r.code != 200 {
				t.Fatal(r.status)
			}
			form := url.Values{"snapname": {"snap"}, "description": {"snap note"}}
			if tc.vmstate {
				form.Set("vmstate", "1")
			}
			mustTask(t, b, "POST", "/nodes/pve1/qemu/100/snapshot", form)
			before, _ := b.sim.VMConfig(100)
			if got := snapList(t, b, "100")["snap"]["vmstate"]; got != float64(map[bool]int{true: 1}[tc.vmstate && tc.running]) {
				t.Errorf("vmstate = %v", got)
			}
			// changes after the snapshot
			if r := b.raw(t, "PUT", "/nodes/pve1/qemu/100/config", url.Values{"description": {"now"}, "name": {"renamed"}, "scsi1": {"local-lvm:2"}}, nil); r.code != 200 {
				t.Fatal(r.status)
			}
			if r := b.raw(t, "PUT", "/nodes/pve1/qemu/100/config", url.Values{"cores": {"4"}}, nil); r.code != 200 {
				t.Fatal(r.status)
			}
			form = url.Values{}
			if tc.start {
				form.Set("start", "1")
			}
			upid, exit := b.runTask(t, "POST", "/nodes/pve1/qemu/100/snapshot/snap/rollback", form)
			if exit != "OK" {
				t.Fatalf("rollback: %q", exit)
			}
			if !strings.Contains(upid, ":qmrollback:100:") {
				t.Errorf("upid %s", upid)
			}
			conf, _ := b.sim.VMConfig(100)
			if conf["description"] != "now" || conf["name"] != "vm100" || conf["cores"] != "1" || conf["parent"] != "snap" || conf["lock"] != "" {
				t.Errorf("after rollback %v", conf)
			}
			if _, ok := conf["scsi1"]; ok || conf["unused0"] != "local-lvm:vm-100-disk-1" {
				t.Errorf("the disk added since is not unused0: %v", conf)
			}
			if conf["vmgenid"] == before["vmgenid"] || conf["vmgenid"] == "" {
				t.Errorf("vmgenid kept: %q", conf["vmgenid"])
			}
			for _, k := range []string{"snaptime", "vmstate", "runningmachine", "runningcpu", "snapstate"} {
				if _, ok := conf[k]; ok {
					t.Errorf("%s leaked into the config: %v", k, conf)
				}
			}
			if values, deletes, _ := b.sim.VMPending(100); len(values) != 0 || len(deletes) != 0 {
				t.Errorf("pending after rollback: %v %v", values, deletes)
			}
			st := b.raw(t, "GET", "/nodes/pve1/qemu/100/status/current", nil, nil).body["data"].(map[string]any)
			if got := st["status"] == "running"; got != tc.wantRunning {
				t.Errorf("running = %v, want %v", got, tc.wantRunning)
			}
		})
	}
}

// A newest-only (ZFS-like) storage refuses an older target in the task,
// before anything changes; other storages roll back to any snapshot.
func TestSnapshotRollbackNewestOnly(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{NewestOnlyRollback: []string{"local-lvm"}})
	mustTask(t, b, "POST", "/nodes/pve1/qemu/100/snapshot", url.Values{"snapname": {"older"}})
	mustTask(t, b, "POST", "/nodes/pve1/qemu/100/snapshot", url.Values{"snapname": {"newer"}})
	before, _ := b.sim.VMConfig(100)
	_, exit := b.runTask(t, "POST", "/nodes/pve1/qemu/100/snapshot/older/rollback", url.Values{"start": {"1"}})
	if want := "can't rollback, 'older' is not most recent snapshot on 'local-lvm:vm-100-disk-0'"; exit != want {
		t.Fatalf("exit %q, want %q", exit, want)
	}
	if after, _ := b.sim.VMConfig(100); configText(after) != configText(before) {
		t.Errorf("config changed:\n%s", configText(after))
	}
	if st := b.raw(t, "GET", "/nodes/pve1/qemu/100/status/current", nil, nil).body["data"].(map[string]any); st["status"] != "running" {
		t.Errorf("the refused rollback stopped the VM: %v", st["status"])
	}
	mustTask(t, b, "POST", "/nodes/pve1/qemu/100/snapshot/newer/rollback", nil)
	mustTask(t, b, "DELETE", "/nodes/pve1/qemu/100/snapshot/newer", nil)
	mustTask(t, b, "POST", "/nodes/pve1/qemu/100/snapshot/older/rollback", nil)

	// the control surface lifts the flag
	mustTask(t, b, "POST", "/nodes/pve1/qemu/100/snapshot", url.Values{"snapname": {"third"}})
	res, err := b.http.Post(b.info.ControlURL+"/storages/local-lvm/rollback", "application/json", strings.NewReader(`{"newest_only":false}`))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("control: %v %v", res, err)
	}
	res.Body.Close()
	mustTask(t, b, "POST", "/nodes/pve1/qemu/100/snapshot/older/rollback", nil)
	if err := b.sim.SetNewestOnlyRollback("backup", true); err == nil {
		t.Errorf("a backup storage took the flag")
	}
}

// Deleting re-parents the children and the current state, frees the RAM
// state volume, and takes lock snapshot-delete on the way.
func TestSnapshotDeleteReparents(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	mustTask(t, b, "POST", "/nodes/pve1/qemu/100/snapshot", url.Values{"snapname": {"sa"}})
	mustTask(t, b, "POST", "/nodes/pve1/qemu/100/snapshot", url.Values{"snapname": {"sb"}, "vmstate": {"1"}})
	mustTask(t, b, "POST", "/nodes/pve1/qemu/100/snapshot", url.Values{"snapname": {"sc"}})
	if !slicesContain(imageVolids(t, b, "pve1", "100"), "local-lvm:vm-100-state-sb") {
		t.Fatalf("no state volume: %v", imageVolids(t, b, "pve1", "100"))
	}
	upid, exit := b.runTask(t, "DELETE", "/nodes/pve1/qemu/100/snapshot/sb", url.Values{"force": {"0"}})
	if exit != "OK" || !strings.Contains(upid, ":qmdelsnapshot:100:") {
		t.Fatalf("delete: %q %s", exit, upid)
	}
	list := snapList(t, b, "100")
	if _, ok := list["sb"]; ok || list["sc"]["parent"] != "sa" || list["current"]["parent"] != "sc" {
		t.Errorf("after delete b: %v", list)
	}
	if slicesContain(imageVolids(t, b, "pve1", "100"), "local-lvm:vm-100-state-sb") {
		t.Errorf("state volume left: %v", imageVolids(t, b, "pve1", "100"))
	}
	mustTask(t, b, "DELETE", "/nodes/pve1/qemu/100/snapshot/sc", nil)
	if list := snapList(t, b, "100"); list["current"]["parent"] != "sa" {
		t.Errorf("after delete c: %v", list)
	}
	mustTask(t, b, "DELETE", "/nodes/pve1/qemu/100/snapshot/sa", nil)
	if list := snapList(t, b, "100"); len(list) != 1 || list["current"]["parent"] != nil {
		t.Errorf("after delete a: %v", list)
	}
}

// The task logs read like qemu-server's.
func TestSnapshotTaskLog(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	upid, exit := b.runTask(t, "POST", "/nodes/pve1/qemu/100/snapshot", url.Values{"snapname": {"snap"}, "vmstate": {"1"}})
	if exit != "OK" || !strings.Contains(upid, ":qmsnapshot:100:root@pam!pvekeep:") {
		t.Fatalf("%q %s", exit, upid)
	}
	lines := taskLog(t, b.client, upid)
	for _, re := range []string{
		`^saving VM state and RAM using storage 'local-lvm'$`,
		`^completed saving the VM state in 3s, saved \d+\.\d\d MiB$`,
		`^snapshotting 'drive-scsi0' \(local-lvm:vm-100-disk-0\)$`,
		`^  Logical volume "snap_vm-100-disk-0_snap" created\.$`,
		`^TASK OK$`,
	} {
		if !hasLine(lines, re) {
			t.Errorf("no line %s in\n%s", re, strings.Join(lines, "\n"))
		}
	}
	upid, _ = b.runTask(t, "POST", "/nodes/pve1/qemu/100/snapshot/snap/rollback", nil)
	if lines := taskLog(t, b.client, upid); !hasLine(lines, `^  Logical volume "vm-100-disk-0" successfully removed\.$`) ||
		!hasLine(lines, `^  Logical volume "vm-100-disk-0" created\.$`) {
		t.Errorf("rollback log:\n%s", strings.Join(lines, "\n"))
	}
	upid, _ = b.runTask(t, "DELETE", "/nodes/pve1/qemu/100/snapshot/snap", nil)
	if lines := taskLog(t, b.client, upid); !hasLine(lines, `^  Logical volume "vm-100-state-snap" successfully removed\.$`) ||
		!hasLine(lines, `^  Logical volume "snap_vm-100-disk-0_snap" successfully removed\.$`) {
		t.Errorf("delete log:\n%s", strings.Join(lines, "\n"))
	}
}

func slicesContain(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// The snapshot endpoints check the privileges qemu-server names for them.
func TestSnapshotPermissions(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	mustTask(t, b, "POST", "/nodes/pve1/qemu/100/snapshot", url.Values{"snapname": {"snap"}})
	b.sim.SetTokenPrivileges(map[string][]string{"/vms": {"VM.Snapshot.Rollback"}})
	for _, tc := range []struct {
		method, path string
		form         url.Values
		status       string
	}{
		{"GET", "/nodes/pve1/qemu/100/snapshot", nil, "403 Permission check failed (/vms/100, VM.Audit)"},
		{"POST", "/nodes/pve1/qemu/100/snapshot", url.Values{"snapname": {"other"}}, "403 Permission check failed (/vms/100, VM.Snapshot)"},
		{"DELETE", "/nodes/pve1/qemu/100/snapshot/snap", nil, "403 Permission check failed (/vms/100, VM.Snapshot)"},
		{"PUT", "/nodes/pve1/qemu/100/snapshot/snap/config", url.Values{"description": {"x"}}, "403 Permission check failed (/vms/100, VM.Snapshot)"},
		{"POST", "/nodes/pve1/qemu/100/snapshot/snap/rollback", url.Values{"start": {"1"}}, "403 Permission check failed (/vms/100, VM.PowerMgmt)"},
		{"GET", "/nodes/pve1/qemu/100/snapshot/snap/config", nil, "200 OK"},
		{"GET", "/nodes/pve1/qemu/100/snapshot/snap", nil, "200 OK"},
		{"POST", "/nodes/pve1/qemu/100/snapshot/snap/rollback", nil, "200 OK"},
	} {
		if r := b.raw(t, tc.method, tc.path, tc.form, nil); r.status != tc.status {
			t.Errorf("%s %s: %s, want %s", tc.method, tc.path, r.status, tc.status)
		}
	}
	r := b.raw(t, "GET", "/nodes/pve1/qemu/100/snapshot/snap", nil, nil)
	if list, _ := r.body["data"].([]any); len(list) != 2 || list[0].(map[string]any)["cmd"] != "rollback" {
		t.Errorf("cmd index %v", r.body)
	}
}

func TestMainNewestOnlyRollbackFlag(t *testing.T) {
	t.Parallel()
	var out, errb strings.Builder
	err := Main(t.Context(), []string{"--newest-only-rollback", "nope"}, &out, &errb)
	if !errors.Is(err, ErrUsage) || !strings.Contains(errb.String(), `no storage "nope"`) {
		t.Errorf("err = %v, stderr %q", err, errb.String())
	}
}
