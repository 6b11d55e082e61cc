package pvesim

import (
	"encoding/json"
	"fmt"
	"testing"
)

// A VM's /cluster/resources entry is the VM's status reshaped, as
// PVE's is from vmstatus: the same bytes as the map the handler built
// from statusJSON before it used a struct (running and stopped, a
// template, with and without a lock and tags).
func TestVMResourceIsTheStatusReshaped(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{Nodes: 2, VMs: 2})
	s := b.sim
	if err := s.SetLock(100, "backup"); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vms[101].conf["tags"] = "web;prod"
	s.vms[101].running = false
	for _, id := range []int{100, 101, TemplateVMID} {
		v := s.vms[id]
		st := s.statusJSON(v, false)
		want := map[string]any{
			"id": fmt.Sprintf("qemu/%d", v.vmid), "type": "qemu", "node": v.node, "vmid": v.vmid,
			"name": st["name"], "status": st["status"], "template": 0,
			"maxcpu": st["cpus"], "cpu": st["cpu"], "maxmem": st["maxmem"], "mem": st["mem"],
			"maxdisk": st["maxdisk"], "disk": 0, "uptime": st["uptime"],
			"netin": st["netin"], "netout": st["netout"], "diskread": st["diskread"], "diskwrite": st["diskwrite"],
		}
		for _, k := range []string{"template", "lock", "tags"} {
			if val, ok := st[k]; ok {
				want[k] = val
			}
		}
		wantJSON, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		got, err := json.Marshal(s.vmResource(v))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(wantJSON) {
			t.Errorf("vm %d:\n got %s\nwant %s", id, got, wantJSON)
		}
	}
}
