package pvesim

import (
	"net/url"
	"strings"
	"testing"
)

func TestNextIDIsLowestFreeAndChecksAGivenID(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{Nodes: 1, VMs: 2}) // 100, 101 taken
	tests := []struct {
		name       string
		form       url.Values
		wantCode   int
		wantData   string
		wantErrKey string
		wantErr    string
	}{
		{"lowest free id", nil, 200, "102", "", ""},
		{"a free id is answered back", url.Values{"vmid": {"150"}}, 200, "150", "", ""},
		{"a taken id is a parameter error", url.Values{"vmid": {"101"}}, 400, "", "vmid", "VM 101 already exists"},
		{"the template's id is taken too", url.Values{"vmid": {"9000"}}, 400, "", "vmid", "VM 9000 already exists"},
		{"below 100 is not a vmid", url.Values{"vmid": {"99"}}, 400, "", "vmid", "value does not look like a valid VM ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := b.raw(t, "GET", "/cluster/nextid", tt.form, nil)
			if r.code != tt.wantCode {
				t.Fatalf("code = %d (%s %v), want %d", r.code, r.status, r.body, tt.wantCode)
			}
			if tt.wantCode == 200 {
				// PVE answers the id as a JSON string
				if got, ok := r.body["data"].(string); !ok || got != tt.wantData {
					t.Errorf("data = %#v, want %q", r.body["data"], tt.wantData)
				}
				return
			}
			errs, _ := r.body["errors"].(map[string]any)
			if got, _ := errs[tt.wantErrKey].(string); !strings.Contains(got, tt.wantErr) {
				t.Errorf("errors = %v, want %s: %q", errs, tt.wantErrKey, tt.wantErr)
			}
		})
	}
}

// An ed25519 public key as ssh-keygen writes it (the blob starts with its type).
const testSSHKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f jane@example"

func TestCloudInitOptionsAreValidatedAsPVEDoes(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{Nodes: 1, VMs: 1})
	enc := strings.NewReplacer(" ", "%20", "@", "%40", "+", "%2B", "/", "%2F", "=", "%3D").Replace(testSSHKey)
	tests := []struct {
		name     string
		form     url.Values
		wantCode int
		wantErr  string // in the status line or the param's error
	}{
		{"static ipconfig", url.Values{"ipconfig0": {"ip=192.0.2.10/24,gw=192.0.2.1"}}, 200, ""},
		{"dhcp ipconfig", url.Values{"ipconfig0": {"ip=dhcp"}}, 200, ""},
		{"a gateway next to dhcp is only warned about later", url.Values{"ipconfig0": {"ip=dhcp,gw=192.0.2.1"}}, 200, ""},
		{"an address without prefix", url.Values{"ipconfig0": {"ip=192.0.2.10"}}, 400, "value does not look like a valid ipv4 network configuration"},
		{"a prefix of 7", url.Values{"ipconfig0": {"ip=192.0.2.10/7"}}, 400, "valid ipv4 network configuration"},
		{"a gateway without an ip", url.Values{"ipconfig0": {"gw=192.0.2.1"}}, 400, "missing property required by 'gw'"},
		{"a bad gateway", url.Values{"ipconfig0": {"ip=192.0.2.10/24,gw=192.0.2.300"}}, 400, "value does not look like a valid IPv4 address"},
		{"an unknown key", url.Values{"ipconfig0": {"ip=dhcp,mask=24"}}, 400, "invalid key in comma-separated list property: mask"},
		{"nameservers", url.Values{"nameserver": {"192.0.2.53 198.51.100.53"}}, 200, ""},
		{"a bad nameserver", url.Values{"nameserver": {"192.0.2.53 not_an_address"}}, 400, "value does not look like a valid address: not_an_address"},
		{"searchdomain", url.Values{"searchdomain": {"example.net"}}, 200, ""},
		{"ciuser", url.Values{"ciuser": {"jane"}}, 200, ""},
		{"urlencoded ssh key", url.Values{"sshkeys": {enc}}, 200, ""},
		{"a raw ssh key is not urlencoded", url.Values{"sshkeys": {testSSHKey}}, 400, "invalid urlencoded string"},
		{"an encoded non-key", url.Values{"sshkeys": {"hello%20world"}}, 500, "SSH public key validation error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := b.raw(t, "PUT", "/nodes/pve1/qemu/100/config", tt.form, nil)
			if r.code != tt.wantCode {
				t.Fatalf("code = %d (%s %v), want %d", r.code, r.status, r.body, tt.wantCode)
			}
			if tt.wantErr == "" {
				return
			}
			all := r.status
			if errs, ok := r.body["errors"].(map[string]any); ok {
				for _, v := range errs {
					all += " " + v.(string)
				}
			}
			if !strings.Contains(all, tt.wantErr) {
				t.Errorf("answer %q, want %q", all, tt.wantErr)
			}
		})
	}
}

func TestCIPasswordIsHashedAndHidden(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{Nodes: 1, VMs: 1})
	const hashed = "$6$abcdefgh$0123456789abcdef"
	for _, tt := range []struct{ sent, wantPrefix string }{{"s3cret!", "$5$"}, {hashed, hashed}} {
		if r := b.raw(t, "PUT", "/nodes/pve1/qemu/100/config", url.Values{"cipassword": {tt.sent}}, nil); r.code != 200 {
			t.Fatalf("set cipassword: %s %v", r.status, r.body)
		}
		stored := b.sim.State().VMs[0].Config["cipassword"]
		if !strings.HasPrefix(stored, tt.wantPrefix) || strings.Contains(stored, "s3cret") {
			t.Errorf("stored cipassword for %q = %q, want a hash starting %q", tt.sent, stored, tt.wantPrefix)
		}
		r := b.raw(t, "GET", "/nodes/pve1/qemu/100/config", nil, nil)
		if got := r.body["data"].(map[string]any)["cipassword"]; got != "**********" {
			t.Errorf("GET config cipassword = %v, want it masked", got)
		}
	}
}

func TestCloneAcrossStoragesAndNodes(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{Nodes: 2, VMs: 2}) // 100 on pve1, 101 on pve2; template 9000 on pve1
	tests := []struct {
		name     string
		path     string
		form     url.Values
		wantCode int
		wantErr  string
		wantNode string
		wantVol  string // prefix of the new scsi0
	}{
		{"linked clone of a non-template", "/nodes/pve1/qemu/100/clone", url.Values{"newid": {"300"}, "full": {"0"}},
			500, "Linked clone feature is not supported for 'local-lvm:vm-100-disk-0' (scsi0)", "", ""},
		{"storage with a linked clone", "/nodes/pve1/qemu/9000/clone", url.Values{"newid": {"301"}, "storage": {"san"}},
			500, "parameter 'storage' not allowed for linked clones", "", ""},
		{"to another node from local storage", "/nodes/pve1/qemu/9000/clone", url.Values{"newid": {"302"}, "full": {"1"}, "target": {"pve2"}},
			500, "can't clone VM to node 'pve2' (VM uses local storage)", "", ""},
		{"to an unknown node", "/nodes/pve1/qemu/9000/clone", url.Values{"newid": {"303"}, "full": {"1"}, "target": {"pve9"}},
			500, "no such cluster node 'pve9'", "", ""},
		{"to a storage without images", "/nodes/pve1/qemu/9000/clone", url.Values{"newid": {"304"}, "full": {"1"}, "storage": {"backup"}},
			400, "storage 'backup' does not support vm images", "", ""},
		{"full clone onto shared storage on another node", "/nodes/pve1/qemu/9000/clone",
			url.Values{"newid": {"305"}, "full": {"1"}, "storage": {"san"}, "target": {"pve2"}, "name": {"web1"}}, 200, "", "pve2", "san:vm-305-disk-0"},
		{"linked clone of the template", "/nodes/pve1/qemu/9000/clone", url.Values{"newid": {"306"}}, 200, "", "pve1", "local-lvm:base-9000-disk-0/vm-306-disk-0"},
		{"full clone on the same storage", "/nodes/pve1/qemu/9000/clone", url.Values{"newid": {"307"}, "full": {"1"}}, 200, "", "pve1", "local-lvm:vm-307-disk-0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := b.raw(t, "POST", tt.path, tt.form, nil)
			if r.code != tt.wantCode {
				t.Fatalf("code = %d (%s %v), want %d", r.code, r.status, r.body, tt.wantCode)
			}
			if tt.wantCode != 200 {
				all := r.status
				if errs, ok := r.body["errors"].(map[string]any); ok {
					for _, v := range errs {
						all += " " + v.(string)
					}
				}
				if !strings.Contains(all, tt.wantErr) {
					t.Errorf("answer %q, want %q", all, tt.wantErr)
				}
				return
			}
			if _, exit := waitTask(t, b.client, r.body["data"].(string)); exit != "OK" {
				t.Fatalf("clone exit %q", exit)
			}
			newid := tt.form.Get("newid")
			for _, v := range b.sim.State().VMs {
				if v.VMID == atoi(newid) {
					if v.Node != tt.wantNode || !strings.HasPrefix(v.Config["scsi0"], tt.wantVol) || v.Lock != "" {
						t.Errorf("clone = node %s lock %q scsi0 %q, want node %s scsi0 %s…", v.Node, v.Lock, v.Config["scsi0"], tt.wantNode, tt.wantVol)
					}
					return
				}
			}
			t.Errorf("no VM %s after the clone", newid)
		})
	}
}

// The clone's config reads "lock: clone" while the disks are copied.
func TestCloneShowsLockCloneWhileCopying(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{Nodes: 1, VMs: 1, Speed: 20})
	upid := b.startTask(t, "POST", "/nodes/pve1/qemu/9000/clone", url.Values{"newid": {"400"}, "full": {"1"}})
	sawLock := false
	for range 200 {
		r := b.raw(t, "GET", "/nodes/pve1/qemu/400/config", nil, nil)
		if r.code == 200 {
			if r.body["data"].(map[string]any)["lock"] == "clone" {
				sawLock = true
				break
			}
		}
	}
	if !sawLock {
		t.Error("never saw lock: clone on the new VM")
	}
	if _, exit := waitTask(t, b.client, upid); exit != "OK" {
		t.Fatalf("clone exit %q", exit)
	}
}

func TestDestroyFreesDisksOnSharedStorage(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{Nodes: 2, VMs: 1})
	if _, exit := b.runTask(t, "POST", "/nodes/pve1/qemu/9000/clone", url.Values{"newid": {"500"}, "full": {"1"}, "storage": {"san"}, "target": {"pve2"}}); exit != "OK" {
		t.Fatalf("clone exit %q", exit)
	}
	_, exit := b.runTask(t, "DELETE", "/nodes/pve2/qemu/500", url.Values{"purge": {"1"}, "destroy-unreferenced-disks": {"1"}})
	if exit != "OK" {
		t.Fatalf("destroy exit %q", exit)
	}
	r := b.raw(t, "GET", "/nodes/pve2/storage/san/content", url.Values{"vmid": {"500"}}, nil)
	if items, _ := r.body["data"].([]any); len(items) != 0 {
		t.Errorf("volumes of 500 after destroy = %v", items)
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// "storage:cloudinit" makes the VM's cloud-init image (a CD-ROM drive on
// vm-N-cloudinit); a clone gets one of its own and destroy frees it.
func TestCloudInitDriveIsMadeClonedAndFreed(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{Nodes: 1, VMs: 1})
	b.runTask(t, "POST", "/nodes/pve1/qemu/100/status/stop", nil) // ide is not hotplugged
	if r := b.raw(t, "PUT", "/nodes/pve1/qemu/100/config", url.Values{"ide2": {"local-lvm:cloudinit"}}, nil); r.code != 200 {
		t.Fatalf("add cloud-init drive: %s %v", r.status, r.body)
	}
	if got := b.sim.State().VMs[0].Config["ide2"]; got != "local-lvm:vm-100-cloudinit,media=cdrom" {
		t.Errorf("ide2 = %q, want local-lvm:vm-100-cloudinit,media=cdrom", got)
	}
	if vols := imageVolids(t, b, "pve1", "100"); !strings.Contains(strings.Join(vols, " "), "local-lvm:vm-100-cloudinit") {
		t.Errorf("volumes of 100 = %v, want its cloud-init image", vols)
	}
	if r := b.raw(t, "PUT", "/nodes/pve1/qemu/100/config", url.Values{"ide3": {"nosuch:cloudinit"}}, nil); r.code != 500 ||
		!strings.Contains(r.status, "storage 'nosuch' does not exist") {
		t.Errorf("cloud-init on a missing storage: %s %v", r.status, r.body)
	}
	if _, exit := b.runTask(t, "POST", "/nodes/pve1/qemu/100/clone", url.Values{"newid": {"310"}}); exit != "OK" {
		t.Fatalf("clone exit %q", exit)
	}
	cfg, _ := b.sim.VMConfig(310)
	if cfg["ide2"] != "local-lvm:vm-310-cloudinit,media=cdrom" {
		t.Errorf("clone's ide2 = %q, want an image of its own", cfg["ide2"])
	}
	if _, exit := b.runTask(t, "DELETE", "/nodes/pve1/qemu/310", url.Values{"purge": {"1"}}); exit != "OK" {
		t.Fatalf("destroy exit %q", exit)
	}
	if vols := imageVolids(t, b, "pve1", "310"); len(vols) != 0 {
		t.Errorf("volumes of 310 after destroy = %v", vols)
	}
}
