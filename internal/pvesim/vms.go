package pvesim

import (
	"github.com/pvekeep/pvekeep/internal/lazyre"

	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// vm is one simulated QEMU guest.
type vm struct {
	vmid    int
	node    string
	conf    map[string]string // the config file, "lock" included when set
	pending map[string]string // the [PENDING] section: values to apply
	pdel    map[string]bool   // pending deletes (true: forced)
	snaps   map[string]*snapshot
	flock   string // the task holding the config file lock (restore, clone, destroy)
	running bool
	started time.Time // simulated wall time of the last start
	pid     int
}

func newVM(vmid int, node string, now time.Time, pid int) *vm {
	seed := sha1.Sum([]byte(fmt.Sprintf("pvesim-vm-%d", vmid)))
	uuid := func(b []byte) string {
		h := hex.EncodeToString(b[:16])
		return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
	}
	other := sha1.Sum(seed[:])
	return &vm{
		vmid: vmid,
		node: node,
		conf: map[string]string{
			"boot":    "order=scsi0;net0",
			"cores":   "1",
			"cpu":     "x86-64-v2-AES",
			"memory":  "1024",
			"meta":    fmt.Sprintf("creation-qemu=9.2.0,ctime=%d", now.Unix()),
			"name":    fmt.Sprintf("vm%d", vmid),
			"net0":    fmt.Sprintf("virtio=BC:24:11:%02X:%02X:%02X,bridge=vmbr0,firewall=1", seed[0], seed[1], seed[2]),
			"numa":    "0",
			"ostype":  "l26",
			"scsi0":   fmt.Sprintf("%s:vm-%d-disk-0,iothread=1,size=10G", imagesStorage, vmid),
			"scsihw":  "virtio-scsi-single",
			"smbios1": "uuid=" + uuid(seed[:]),
			"sockets": "1",
			"vmgenid": uuid(other[:]),
		},
		pending: map[string]string{},
		pdel:    map[string]bool{},
		snaps:   map[string]*snapshot{},
		running: true,
		started: now,
		pid:     pid,
	}
}

// newTemplate is the seeded template a reinstall clones: a stopped VM
// with "template: 1" whose disk is a base volume.
func newTemplate(vmid int, node string, now time.Time) *vm {
	v := newVM(vmid, node, now, 0)
	v.running, v.pid = false, 0
	v.conf["name"] = "debian-12-template"
	v.conf["template"] = "1"
	v.conf["scsi0"] = fmt.Sprintf("%s:base-%d-disk-0,iothread=1,size=%s", imagesStorage, vmid, formatSize(templateDiskSize))
	v.conf["agent"] = "1"
	return v
}

// configText is the config file as PVE writes it (sorted keys), which the
// digest is taken over.
func configText(conf map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(conf)) {
		fmt.Fprintf(&b, "%s: %s\n", k, conf[k])
	}
	return b.String()
}

// configDigest is the SHA-1 of a config file's text.
func configDigest(raw string) string {
	sum := sha1.Sum([]byte(raw))
	return hex.EncodeToString(sum[:])
}

var reDiskKey = lazyre.New(`^(ide|sata|scsi|virtio|efidisk|tpmstate)\d+$`)

// disk is one drive of a VM config.
type disk struct {
	key, volid string
	size       int64
}

// disks lists the VM's drives that hold a volume (no CD-ROMs), sorted.
func (v *vm) disks() []disk {
	var out []disk
	for _, k := range slices.Sorted(maps.Keys(v.conf)) {
		if d, ok := v.disk(k); ok {
			out = append(out, d)
		}
	}
	return out
}

// disk is the drive at config key k, if k is a drive holding a volume.
func (v *vm) disk(k string) (disk, bool) {
	val, ok := v.conf[k]
	if !ok || !reDiskKey.MatchString(k) || strings.Contains(val, "media=cdrom") {
		return disk{}, false
	}
	parts := strings.Split(val, ",")
	d := disk{key: k, volid: parts[0]}
	for _, p := range parts[1:] {
		if sz, ok := strings.CutPrefix(p, "size="); ok {
			d.size = parseSize(sz)
		}
	}
	return d, true
}

var reSize = lazyre.New(`^(\d+(?:\.\d+)?)([KMGT](?:iB)?)?$`)

// parseSize is PVE::JSONSchema::parse_size ("10G" → bytes).
func parseSize(s string) int64 {
	m := reSize.FindStringSubmatch(s)
	if m == nil {
		return 0
	}
	f, _ := strconv.ParseFloat(m[1], 64)
	switch strings.TrimSuffix(m[2], "iB") {
	case "K":
		f *= 1 << 10
	case "M":
		f *= 1 << 20
	case "G":
		f *= 1 << 30
	case "T":
		f *= 1 << 40
	}
	return int64(f)
}

// formatSize is PVE::JSONSchema::format_size (bytes → "10G").
func formatSize(size int64) string {
	units := []string{"K", "M", "G", "T"}
	if size%1024 != 0 {
		return strconv.FormatInt(size, 10)
	}
	v := size / 1024
	for i, u := range units {
		if i == len(units)-1 || v%1024 != 0 {
			return strconv.FormatInt(v, 10) + u
		}
		v /= 1024
	}
	return strconv.FormatInt(size, 10)
}

func (v *vm) memoryMiB() int64 {
	m := v.conf["memory"]
	if m == "" {
		return 512
	}
	if cur, ok := strings.CutPrefix(m, "current="); ok {
		m = cur
	}
	m, _, _ = strings.Cut(m, ",")
	n, err := strconv.ParseInt(m, 10, 64)
	if err != nil {
		return 512
	}
	return n
}

func (v *vm) cpus() int {
	if n, err := strconv.Atoi(v.conf["vcpus"]); err == nil && n > 0 {
		return n
	}
	sockets, cores := 1, 1
	if n, err := strconv.Atoi(v.conf["sockets"]); err == nil && n > 0 {
		sockets = n
	}
	if n, err := strconv.Atoi(v.conf["cores"]); err == nil && n > 0 {
		cores = n
	}
	return sockets * cores
}

// bootDiskSize is the size of the first disk in the boot order, else of
// the first disk. The boot order's keys are looked up, not every disk
// parsed: /cluster/resources asks this of every VM.
func (v *vm) bootDiskSize() int64 {
	if order, ok := strings.CutPrefix(v.conf["boot"], "order="); ok {
		for k := range strings.SplitSeq(order, ";") {
			if d, ok := v.disk(k); ok {
				return d.size
			}
		}
	}
	if ds := v.disks(); len(ds) > 0 {
		return ds[0].size
	}
	return 0
}

// vmStats is PVE::QemuServer::vmstatus's figures for one VM, which
// status/current, a node's qemu list and /cluster/resources report.
type vmStats struct {
	name, status                               string
	cpus, pid                                  int
	cpu                                        float64
	maxmem, mem, maxdisk                       int64
	uptime, netin, netout, diskread, diskwrite int64
	template                                   bool
	lock, tags                                 string
}

func (s *Sim) vmStats(v *vm) vmStats {
	st := vmStats{name: v.conf["name"], status: "stopped", cpus: v.cpus(), maxmem: v.memoryMiB() << 20,
		maxdisk: v.bootDiskSize(), template: v.conf["template"] == "1", lock: v.conf["lock"], tags: v.conf["tags"]}
	if st.name == "" {
		st.name = fmt.Sprintf("VM %d", v.vmid)
	}
	if v.running {
		up := int64(s.now().Sub(v.started).Seconds())
		st.status, st.pid, st.uptime, st.cpu = "running", v.pid, up, 0.0123
		st.mem = st.maxmem * 2 / 5
		st.netin, st.netout, st.diskread, st.diskwrite = up*1200, up*800, up*40960, up*20480
	}
	return st
}

// statusJSON is PVE::QemuServer::vmstatus for one VM.
func (s *Sim) statusJSON(v *vm, full bool) map[string]any {
	st := s.vmStats(v)
	d := map[string]any{
		"vmid":      v.vmid,
		"status":    st.status,
		"name":      st.name,
		"cpus":      st.cpus,
		"maxmem":    st.maxmem,
		"maxdisk":   st.maxdisk,
		"disk":      0,
		"uptime":    st.uptime,
		"cpu":       st.cpu,
		"mem":       st.mem,
		"memhost":   st.mem,
		"netin":     st.netin,
		"netout":    st.netout,
		"diskread":  st.diskread,
		"diskwrite": st.diskwrite,
	}
	if v.running {
		d["pid"] = st.pid
	}
	if st.template {
		d["template"] = 1
	}
	if st.lock != "" {
		d["lock"] = st.lock
	}
	if st.tags != "" {
		d["tags"] = st.tags
	}
	if full {
		d["qmpstatus"] = d["status"]
		d["ha"] = map[string]any{"managed": 0}
		if v.running {
			d["running-machine"] = "pc-i440fx-9.2+pve1"
			d["running-qemu"] = "9.2.0"
		}
		if strings.HasPrefix(v.conf["agent"], "1") || strings.Contains(v.conf["agent"], "enabled=1") {
			d["agent"] = 1
		}
	}
	return d
}

// vmOn finds a VM on the node a request was sent to; like PVE, a VM that
// lives elsewhere has no config file here. Caller holds s.mu.
func (s *Sim) vmOn(node string, vmid int) (*vm, *apiError) {
	v, ok := s.vms[vmid]
	if !ok || v.node != node {
		return nil, errDie("Configuration file 'nodes/%s/qemu-server/%d.conf' does not exist\n", node, vmid)
	}
	return v, nil
}

// checkVMOn is vmOn for a handler that only needs to know, before it
// starts its task, that the VM is on the node: it takes and releases s.mu.
func (s *Sim) checkVMOn(node string, vmid int) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, aerr := s.vmOn(node, vmid)
	return aerr
}

func (s *Sim) handleVMList(r *request) (any, error) {
	node := r.str("node")
	full := r.bool("full", false)
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []map[string]any{}
	for _, id := range slices.Sorted(maps.Keys(s.vms)) {
		if v := s.vms[id]; v.node == node {
			out = append(out, s.statusJSON(v, full))
		}
	}
	return out, nil
}

func (s *Sim) handleVMStatus(r *request) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.vmOn(r.str("node"), r.int("vmid", 0))
	if err != nil {
		return nil, err
	}
	return s.statusJSON(v, true), nil
}

// rootOnly refuses options only root@pam may use; an API token, even
// root@pam's, is not root@pam.
func rootOnly(r *request, keys ...string) *apiError {
	for _, k := range keys {
		if r.bool(k, false) && r.user != rootUser {
			return errParam(k, "Only root may use this option.")
		}
	}
	return nil
}

// powerTask starts qmstart/qmstop/qmshutdown after PVE's synchronous checks.
func (s *Sim) powerTask(r *request, typ string, took time.Duration, apply func(c *taskCtx, v *vm) error) (any, error) {
	if err := rootOnly(r, "skiplock", "keepActive", "migratedfrom", "stateuri"); err != nil {
		return nil, err
	}
	node, vmid := r.str("node"), r.int("vmid", 0)
	s.mu.Lock()
	_, err := s.vmOn(node, vmid)
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	skiplock := r.bool("skiplock", false)
	upid := s.startTask(taskSpec{
		node: node, typ: typ, id: strconv.Itoa(vmid), user: r.user, vmid: vmid,
		run: func(c *taskCtx) error {
			if err := c.sleep(took / 4); err != nil {
				return err
			}
			s.mu.Lock()
			v, aerr := s.vmOn(node, vmid)
			if aerr != nil {
				s.mu.Unlock()
				return aerr
			}
			lock, running, busy := v.conf["lock"], v.running, v.flockBusy()
			s.mu.Unlock()
			if busy != nil {
				return busy
			}
			if !running && typ != "qmstart" {
				lock = "" // _do_vm_stop returns before its lock check
			}
			if lock != "" && !skiplock && !(typ == "qmstart" && lock == "backup" && running) {
				return fmt.Errorf("VM is locked (%s)", lock)
			}
			if err := c.sleep(took * 3 / 4); err != nil {
				return err
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			return apply(c, v)
		},
	})
	return upid, nil
}

func (s *Sim) handleVMStart(r *request) (any, error) {
	return s.powerTask(r, "qmstart", 2*time.Second, func(c *taskCtx, v *vm) error {
		if v.conf["template"] == "1" {
			return fmt.Errorf("you can't start a vm if it's a template")
		}
		if v.running {
			if v.conf["lock"] == "backup" {
				return nil // resumes the VM inside the running backup
			}
			return fmt.Errorf("VM %d already running", v.vmid)
		}
		// vm_start applies pending changes first
		s.applyPending(v)
		for _, k := range slices.Sorted(maps.Keys(v.conf)) {
			if !reNetKey.MatchString(k) {
				continue
			}
			if b := parseNet(v.conf[k]).opts["bridge"]; b != "" && !hasBridge(b) {
				c.t.lines = append(c.t.lines, fmt.Sprintf("bridge '%s' does not exist", b),
					fmt.Sprintf("kvm: -netdev type=tap,id=%s,ifname=tap%di%s,script=/usr/libexec/qemu-server/pve-bridge,downscript=/usr/libexec/qemu-server/pve-bridgedown,vhost=on: network script /usr/libexec/qemu-server/pve-bridge failed with status 512",
						k, v.vmid, strings.TrimPrefix(k, "net")))
				return fmt.Errorf("start failed: QEMU exited with code 1")
			}
		}
		v.running, v.started, v.pid = true, s.now(), s.allocPID()
		return nil
	})
}

// handleVMStop is a hard stop (vm_stop with force); vm_stop_cleanup
// applies pending changes.
func (s *Sim) handleVMStop(r *request) (any, error) {
	return s.powerTask(r, "qmstop", time.Second, func(c *taskCtx, v *vm) error {
		if !v.running {
			return nil
		}
		v.running, v.pid = false, 0
		s.applyPending(v)
		return nil
	})
}

// guestShutdownTime is how long the simulated guest takes to power off
// after an ACPI request.
const guestShutdownTime = 6 * time.Second

// handleVMShutdown asks the guest to power off and waits up to timeout
// (default 60 s); on timeout it fails, or with forceStop kills the VM.
func (s *Sim) handleVMShutdown(r *request) (any, error) {
	timeout := time.Duration(r.int("timeout", 60)) * time.Second
	force := r.bool("forceStop", false)
	took := guestShutdownTime
	if timeout < took {
		took = timeout
	}
	return s.powerTask(r, "qmshutdown", took, func(c *taskCtx, v *vm) error {
		if !v.running {
			return nil
		}
		if timeout < guestShutdownTime {
			if !force {
				return fmt.Errorf("VM quit/powerdown failed - got timeout")
			}
			c.t.lines = append(c.t.lines, "VM still running - terminating now with SIGTERM")
		}
		v.running, v.pid = false, 0
		s.applyPending(v)
		return nil
	})
}
