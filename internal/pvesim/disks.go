package pvesim

import (
	"github.com/pvekeep/pvekeep/internal/lazyre"

	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// image is one VM disk volume on an images storage (local-lvm is an
// lvmthin pool per node). Volumes exist on their own, as LVs do: a config
// references them, unusedN keeps them, and only vdisk_free removes them.
type image struct {
	node    string
	storage string
	name    string // LV name: vm-100-disk-0, base-9000-disk-0
	vmid    int    // owner
	size    int64
}

func (im *image) volid() string { return im.storage + ":" + im.name }

// imageKey finds the LV behind a config volid: a linked clone is
// "local-lvm:base-9000-disk-0/vm-9001-disk-0", whose own LV is the last part.
func imageKey(volid string) string {
	storage, name, ok := strings.Cut(volid, ":")
	if !ok {
		return volid
	}
	if i := strings.LastIndex(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	return storage + ":" + name
}

var reDiskName = lazyre.New(`^(?:vm|base|subvol)-(\d+)-disk-(\d+)$`)

// allocImage is vdisk_alloc on an lvmthin storage: the lowest free
// vm-<vmid>-disk-N (find_free_diskname counts vm-, base- and subvol- LVs).
// Caller holds s.mu.
func (s *Sim) allocImage(node, storage string, vmid int, size int64) *image {
	used := map[int]bool{}
	def, _ := findStorage(storage)
	for _, im := range s.images {
		if im.storage != storage || im.node != node && !def.shared {
			continue
		}
		if m := reDiskName.FindStringSubmatch(im.name); m != nil && m[1] == strconv.Itoa(vmid) {
			n, _ := strconv.Atoi(m[2])
			used[n] = true
		}
	}
	n := 0
	for used[n] {
		n++
	}
	im := &image{node: node, storage: storage, name: fmt.Sprintf("vm-%d-disk-%d", vmid, n), vmid: vmid, size: size}
	s.images[im.volid()] = im
	return im
}

// freeImage is vdisk_free. Caller holds s.mu.
func (s *Sim) freeImage(volid string) bool {
	k := imageKey(volid)
	if _, ok := s.images[k]; !ok {
		return false
	}
	delete(s.images, k)
	return true
}

// driveSpec is a parsed drive string: the volume and its options.
type driveSpec struct {
	file string
	opts map[string]string
}

// parseDrive splits "local-lvm:vm-100-disk-0,iothread=1,size=10G".
func parseDrive(val string) driveSpec {
	parts := strings.Split(val, ",")
	d := driveSpec{opts: map[string]string{}}
	for i, p := range parts {
		k, v, ok := strings.Cut(p, "=")
		switch {
		case !ok && i == 0:
			d.file = p
		case k == "file" || k == "volume":
			d.file = v
		case ok:
			d.opts[k] = v
		}
	}
	return d
}

// String is print_drive: the volume first, then the options sorted.
func (d driveSpec) String() string {
	parts := []string{d.file}
	for _, k := range slices.Sorted(maps.Keys(d.opts)) {
		parts = append(parts, k+"="+d.opts[k])
	}
	return strings.Join(parts, ",")
}

func (d driveSpec) isCDROM() bool {
	return d.opts["media"] == "cdrom" || d.file == "cdrom" || d.file == "none"
}

// reCloudInitName is a cloud-init volume's name (vm-100-cloudinit), or
// the "cloudinit" of a "storage:cloudinit" a config update asks for.
var reCloudInitName = lazyre.New(`^(?:(?:vm|base)-(\d+)-)?cloudinit$`)

// isCloudInit is drive_is_cloudinit: a CD-ROM drive whose volume is the
// VM's cloud-init image. Unlike a CD-ROM, clones copy it and destroy
// frees it.
func (d driveSpec) isCloudInit() bool {
	_, name, ok := strings.Cut(imageKey(d.file), ":")
	return ok && reCloudInitName.MatchString(name)
}

// cloudInitSize is the size of a cloud-init image on lvm(thin).
const cloudInitSize = 4 << 20

// allocCloudInit is create_disks for "storage:cloudinit": the VM's
// vm-<vmid>-cloudinit image. Caller holds s.mu.
func (s *Sim) allocCloudInit(node, storage string, vmid int) *image {
	im := &image{node: node, storage: storage, name: fmt.Sprintf("vm-%d-cloudinit", vmid), vmid: vmid, size: cloudInitSize}
	s.images[im.volid()] = im
	return im
}

// driveHotOpts are the drive options vmconfig_update_disk cannot change on
// a running VM (it "skip"s, the change stays pending).
var driveColdOpts = []string{"aio", "discard", "iothread", "queues", "product", "cache", "ssd", "vendor", "ro"}

// netSpec is a parsed netN value.
type netSpec struct {
	model, mac string
	opts       map[string]string // bridge, tag, rate, firewall, link_down, …
}

var netModels = map[string]bool{
	"e1000": true, "e1000-82540em": true, "e1000-82544gc": true, "e1000-82545em": true, "e1000e": true,
	"i82551": true, "i82557b": true, "i82559er": true, "ne2k_isa": true, "ne2k_pci": true,
	"pcnet": true, "rtl8139": true, "virtio": true, "vmxnet3": true,
}

// parseNet is parse_net (the value passed schema validation already).
func parseNet(val string) netSpec {
	n := netSpec{opts: map[string]string{}}
	for _, p := range strings.Split(val, ",") {
		if p == "" {
			continue
		}
		k, v, ok := strings.Cut(p, "=")
		switch {
		case !ok:
			n.model = k
		case netModels[k]:
			n.model, n.mac = k, v
		case k == "model":
			n.model = v
		case k == "macaddr":
			n.mac = v
		default:
			n.opts[k] = v
		}
	}
	return n
}

// String is print_net: "<model>=<MAC>", then the options sorted.
func (n netSpec) String() string {
	parts := []string{n.model + "=" + n.mac}
	for _, k := range slices.Sorted(maps.Keys(n.opts)) {
		parts = append(parts, k+"="+n.opts[k])
	}
	return strings.Join(parts, ",")
}

// randomMAC is random_ether_addr with PVE's default prefix BC:24:11.
func randomMAC() string {
	r := randUint32()
	return fmt.Sprintf("BC:24:11:%02X:%02X:%02X", byte(r>>16), byte(r>>8), byte(r))
}

// nodeBridges are the bridges every simulated node has.
var nodeBridges = []string{"vmbr0", "vmbr1"}

func hasBridge(b string) bool { return slices.Contains(nodeBridges, b) }

func (s *Sim) handleNetworkList(r *request) (any, error) {
	typ := r.str("type")
	out := []map[string]any{}
	if typ == "" || typ == "eth" {
		out = append(out, map[string]any{"iface": "eno1", "type": "eth", "method": "manual", "method6": "manual",
			"active": 1, "exists": 1, "families": []string{"inet"}, "priority": 3})
	}
	if typ == "" || typ == "bridge" || typ == "any_bridge" || typ == "any_local_bridge" || typ == "include_sdn" {
		for i, b := range nodeBridges {
			j := map[string]any{"iface": b, "type": "bridge", "method": "manual", "method6": "manual",
				"active": 1, "autostart": 1, "bridge_stp": "off", "bridge_fd": "0", "families": []string{"inet"}, "priority": 4 + i}
			if i == 0 {
				j["bridge_ports"] = "eno1"
				j["method"] = "static"
				j["cidr"] = "10.0.0.1/24"
				j["address"] = "10.0.0.1"
				j["netmask"] = "24"
				j["gateway"] = "10.0.0.254"
			} else {
				j["bridge_ports"] = ""
				j["bridge_vlan_aware"] = 1
			}
			out = append(out, j)
		}
	}
	return out, nil
}
