package pvesim

import (
	"github.com/pvekeep/pvekeep/internal/lazyre"

	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// restoreReadRate is the simulated vma extract throughput: a 10 GiB disk
// takes 40 s at Speed 1.
const restoreReadRate = 256 << 20

// restoreJob is a validated restore (POST /nodes/{node}/qemu with archive).
type restoreJob struct {
	node, user string
	vmid       int
	archive    *volume
	storage    string // "" keeps each drive's storage from the archive
	unique     bool
	start      bool
	bwlimit    int
	override   map[string]string // non-disk options passed along
}

// handleCreateVM serves POST /nodes/{node}/qemu. Only restores are
// simulated (create_vm with "archive"); creating an empty VM is not.
func (s *Sim) handleCreateVM(r *request) (any, error) {
	node, vmid := r.str("node"), r.int("vmid", 0)
	archive := r.str("archive")
	if archive == "" {
		return nil, errDie("pvesim: creating a VM without 'archive' is not simulated\n")
	}
	job := &restoreJob{
		node: node, user: r.user, vmid: vmid, storage: r.str("storage"),
		unique: r.bool("unique", false), start: r.bool("start", false), bwlimit: r.int("bwlimit", 0),
		override: map[string]string{},
	}
	control := map[string]bool{"node": true, "vmid": true, "archive": true, "bwlimit": true, "force": true, "pool": true,
		"start": true, "ha-managed": true, "storage": true, "unique": true, "live-restore": true, "import-working-storage": true}
	for _, k := range slices.Sorted(maps.Keys(r.params)) {
		if control[k] {
			continue
		}
		if reDiskKey.MatchString(k) {
			return nil, errParam(k, "option conflicts with option 'archive'")
		}
		val := r.str(k)
		if reNetKey.MatchString(k) {
			n := parseNet(val)
			if n.mac == "" {
				n.mac = randomMAC() // add_random_macs
			}
			val = n.String()
		}
		job.override[k] = val
	}
	if job.storage != "" {
		def, ok := findStorage(job.storage)
		if !ok {
			return nil, errDie("storage '%s' does not exist\n", job.storage)
		}
		if !def.hasContent("images") {
			return nil, errDie("Content type 'images' is not available on storage '%s'\n", job.storage)
		}
	}
	emsg := fmt.Sprintf("unable to restore VM %d -", vmid)
	volid, _, aerr := realVolumeID("", archive)
	if aerr != nil {
		return nil, aerr
	}

	s.mu.Lock()
	vol, ok := s.volumes[volid]
	if !ok {
		s.mu.Unlock()
		return nil, errDie("volume '%s' does not exist\n", volid)
	}
	job.archive = vol
	// create_and_lock_config: check_vmid_unused (force allows an existing
	// VM), check_lock, then "lock: create"
	v, exists := s.vms[vmid]
	switch {
	case exists && (!r.bool("force", false) || v.node != node):
		s.mu.Unlock()
		return nil, errDie("%s VM %d already exists on node '%s'\n", emsg, vmid, v.node)
	case exists && v.flock != "":
		s.mu.Unlock()
		return nil, errDie("%s can't lock file '/var/lock/qemu-server/lock-%d.conf' - got timeout\n", emsg, vmid)
	case exists && v.conf["lock"] != "":
		l := v.conf["lock"]
		s.mu.Unlock()
		return nil, errDie("%s VM is locked (%s)\n", emsg, l)
	case !exists:
		v = &vm{vmid: vmid, node: node, conf: map[string]string{}, pending: map[string]string{},
			pdel: map[string]bool{}, snaps: map[string]*snapshot{}}
		s.vms[vmid] = v
	}
	v.conf["lock"] = "create"
	s.mu.Unlock()

	upid := s.startTask(taskSpec{
		node: node, typ: "qmrestore", id: strconv.Itoa(vmid), user: r.user, vmid: vmid, ownsFaults: true,
		run: func(c *taskCtx) error { return s.runRestore(c, job) },
	})
	return upid, nil
}

// errRestoreData marks a failure once data was written (restored_data).
var errRestoreData = errors.New("restored data")

// runRestore is the qmrestore worker: restorefn, restore_vma_archive and
// the cleanup of create_vm. A failure removes "lock: create" and leaves
// the VM as restore_vma_archive left it: once the archive header was
// read, the config is just "memory: 128", the old disks are gone and the
// new ones are freed again (restore_destroy_volumes) — the VM exists but
// cannot be used, which is why pvekeep offers retry and reinstall.
func (s *Sim) runRestore(c *taskCtx, job *restoreJob) error {
	err := s.restoreVMA(c, job)
	if err == nil {
		if job.start {
			c.logf("Execute autostart")
			s.mu.Lock()
			if v, ok := s.vms[job.vmid]; ok && !v.running {
				s.applyPending(v)
				v.running, v.started, v.pid = true, s.now(), s.allocPID()
			}
			s.mu.Unlock()
		}
		return nil
	}
	if errors.Is(err, errFaultInjected) {
		err = errors.New(c.fault.ExitStatus)
	}
	s.mu.Lock()
	v, ok := s.vms[job.vmid]
	removed := false
	if ok {
		v.flock = ""
		if v.conf["lock"] == "create" {
			delete(v.conf, "lock")
			removed = true
		}
	}
	s.mu.Unlock()
	if !removed {
		c.logf("no lock found trying to remove 'create'  lock")
	}
	c.logf("error before or during data restore, some or all disks were not completely restored. VM %d state is NOT cleaned up.", job.vmid)
	return err
}

func (s *Sim) restoreVMA(c *taskCtx, job *restoreJob) error {
	vmid := job.vmid
	emsg := fmt.Sprintf("unable to restore VM %d -", vmid)
	if err := c.sleep(500 * time.Millisecond); err != nil {
		return err
	}
	s.mu.Lock()
	v, ok := s.vms[vmid]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("Configuration file 'nodes/%s/qemu-server/%d.conf' does not exist", job.node, vmid)
	}
	protected, running := v.conf["protection"] == "1", v.running
	archived := maps.Clone(job.archive.config)
	path := job.archive.path()
	format := job.archive.format
	s.mu.Unlock()
	switch {
	case protected:
		return fmt.Errorf("%s - protection mode enabled", emsg)
	case running:
		return fmt.Errorf("%s vm is running", emsg)
	}
	if archived == nil {
		archived = map[string]string{}
	}
	ad := (&vm{conf: archived}).disks()

	// the devices and where they go (parse_backup_hints)
	type dev struct {
		key, storage string
		size         int64
		volid        string
	}
	var devs []*dev
	for _, d := range ad {
		storage, _, _ := strings.Cut(d.volid, ":")
		if job.storage != "" {
			storage = job.storage
		}
		devs = append(devs, &dev{key: d.key, storage: storage, size: d.size})
	}

	s.mu.Lock()
	v.flock = "qmrestore"
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		v.flock = ""
		s.mu.Unlock()
	}()

	cmd := "vma extract -v -r /var/tmp/vzdumptmp" + strconv.Itoa(c.t.pid) + ".fifo " + path + " /var/tmp/vzdumptmp" + strconv.Itoa(c.t.pid)
	if dec := map[string]string{"vma.zst": "zstd -q -d -c", "vma.gz": "zcat", "vma.lzo": "lzop -d -c"}[format]; dec != "" {
		cmd = dec + " " + path + " | " + strings.Replace(cmd, path, "-", 1)
	}
	c.logf("restore vma archive: %s", cmd)
	c.logf("CFG: size: %d name: qemu-server.conf", len(configText(archived)))
	for i, d := range devs {
		c.logf("DEV: dev_id=%d size: %d devname: drive-%s", i+1, d.size, d.key)
	}
	if err := c.sleep(time.Second); err != nil {
		return err
	}
	c.logf("CTIME: %s", job.archive.ctime.Format("Mon Jan _2 15:04:05 2006"))
	for _, d := range devs {
		def, ok := findStorage(d.storage)
		if !ok {
			return fmt.Errorf("storage '%s' does not exist", d.storage)
		}
		if !def.hasContent("images") {
			return fmt.Errorf("Content type 'images' is not available on storage '%s'", d.storage)
		}
	}

	// print_devmap: the config file becomes "memory: 128", the old disks
	// that the archive replaces are freed, snapshots are gone
	s.mu.Lock()
	old := v.conf
	oldSnaps := v.snaps
	v.conf = map[string]string{"memory": "128"}
	v.pending, v.pdel, v.snaps = map[string]string{}, map[string]bool{}, map[string]*snapshot{}
	var freed []string
	kept := map[string]bool{}
	restoredKeys := map[string]bool{}
	for _, d := range devs {
		restoredKeys[d.key] = true
	}
	for _, d := range (&vm{conf: old}).disks() {
		if volumeOwner(d.volid) != vmid {
			continue
		}
		if restoredKeys[d.key] && s.freeImage(d.volid) {
			freed = append(freed, imageKey(d.volid))
		} else {
			kept[d.volid] = true
		}
	}
	for _, sn := range oldSnaps {
		if st := sn.conf["vmstate"]; st != "" {
			s.freeImage(st)
		}
	}
	var lines []string
	for _, f := range freed {
		_, name, _ := strings.Cut(f, ":")
		lines = append(lines, fmt.Sprintf("  Logical volume \"%s\" successfully removed.", name))
	}
	// restore_allocate_devices
	for _, d := range devs {
		im := s.allocImage(job.node, d.storage, vmid, d.size)
		d.volid = im.volid()
		lines = append(lines, fmt.Sprintf("  Logical volume \"%s\" created.", im.name), fmt.Sprintf("new volume ID is '%s'", d.volid))
	}
	for _, d := range devs {
		lines = append(lines, fmt.Sprintf("map 'drive-%s' to '/dev/pve/%s' (write zeros = 0)", d.key, strings.TrimPrefix(d.volid, d.storage+":")))
	}
	c.t.lines = append(c.t.lines, lines...)
	s.mu.Unlock()

	destroy := func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, d := range devs {
			if s.freeImage(d.volid) {
				c.t.lines = append(c.t.lines, fmt.Sprintf("temporary volume '%s' successfully removed", d.volid))
			}
		}
	}

	// vma extract: "progress N% (read B bytes, duration S sec)" per percent
	var total int64
	for _, d := range devs {
		total += d.size
	}
	rate := float64(restoreReadRate)
	if job.bwlimit > 0 && float64(job.bwlimit)*1024 < rate {
		rate = float64(job.bwlimit) * 1024
	}
	failAt := -1
	if c.fault != nil {
		if _, ok := isWarnings(c.fault.ExitStatus); !ok && c.fault.ExitStatus != "OK" {
			failAt = 42
		}
	}
	secs := float64(total) / rate
	for pct := 1; pct <= 100; pct++ {
		if err := c.sleep(time.Duration(secs / 100 * float64(time.Second))); err != nil {
			destroy()
			return err
		}
		if pct == failAt {
			c.logf("vma: restore failed - %s", c.fault.ExitStatus)
			destroy()
			return errFaultInjected
		}
		read := total * int64(pct) / 100
		c.logf("progress %d%% (read %d bytes, duration %d sec)", pct, read, int64(secs*float64(pct)/100))
	}
	sparse := int64(float64(total) * zeroFraction)
	c.logf("total bytes read %d, sparse bytes %d (%.3g%%)", total, sparse, float64(sparse)*100/float64(max(total, 1)))
	c.logf("space reduction due to 4K zero blocks %.3g%%", zeroFraction*100/2)

	// restore_update_config_line + restore_merge_config + rescan
	s.mu.Lock()
	defer s.mu.Unlock()
	conf := map[string]string{}
	byKey := map[string]*dev{}
	for _, d := range devs {
		byKey[d.key] = d
	}
	for k, val := range archived {
		switch {
		case k == "lock" || k == "parent" || reUnusedKey.MatchString(k):
			continue
		case byKey[k] != nil:
			d := parseDrive(val)
			d.file = byKey[k].volid
			delete(d.opts, "format")
			d.opts["size"] = formatSize(byKey[k].size)
			val = d.String()
		case reNetKey.MatchString(k) && job.unique:
			n := parseNet(val)
			n.mac = randomMAC()
			val = n.String()
		case k == "vmgenid" && val != "0":
			val = randomUUID()
		case k == "smbios1" && job.unique:
			val = reSmbiosUUID.ReplaceAllString(val, "uuid="+randomUUID())
		}
		conf[k] = val
	}
	for k, val := range job.override {
		conf[k] = val
	}
	v.conf = conf
	c.t.lines = append(c.t.lines, "rescan volumes...")
	for _, volid := range slices.Sorted(maps.Keys(kept)) {
		if _, ok := s.images[imageKey(volid)]; !ok {
			continue
		}
		before := maps.Clone(v.conf)
		v.addUnused(driveSpec{file: volid, opts: map[string]string{}})
		for k := range v.conf {
			if _, had := before[k]; !had {
				c.t.lines = append(c.t.lines, fmt.Sprintf("VM %d add unreferenced volume '%s' as '%s' to config", vmid, volid, k))
			}
		}
	}
	if conf["template"] == "1" {
		c.t.lines = append(c.t.lines, "Convert to template.")
	}
	return nil
}

var reSmbiosUUID = lazyre.New(`uuid=[0-9a-fA-F-]+`)

// handleResize is resize_vm: a "resize" task on PVE 8+, grow only.
func (s *Sim) handleResize(r *request) (any, error) {
	if err := rootOnly(r, "skiplock"); err != nil {
		return nil, err
	}
	node, vmid := r.str("node"), r.int("vmid", 0)
	disk, sizestr, digest, skiplock := r.str("disk"), r.str("size"), r.str("digest"), r.bool("skiplock", false)
	if aerr := s.checkVMOn(node, vmid); aerr != nil {
		return nil, aerr
	}
	upid := s.startTask(taskSpec{
		node: node, typ: "resize", id: strconv.Itoa(vmid), user: r.user, vmid: vmid,
		run: func(c *taskCtx) error {
			if err := c.sleep(time.Second); err != nil {
				return err
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			v, aerr := s.vmOn(node, vmid)
			if aerr != nil {
				return aerr
			}
			if aerr := v.flockBusy(); aerr != nil {
				return aerr
			}
			if digest != "" && digest != v.digest() {
				return errors.New("checksum mismatch (file change by other user?)")
			}
			if l := v.conf["lock"]; l != "" && !skiplock {
				return fmt.Errorf("VM is locked (%s)", l)
			}
			val, ok := v.conf[disk]
			if !ok {
				return fmt.Errorf("disk '%s' does not exist", disk)
			}
			d := parseDrive(val)
			if d.isCDROM() {
				return errors.New("you can't resize a cdrom")
			}
			im, ok := s.images[imageKey(d.file)]
			if !ok {
				return fmt.Errorf("Could not determine current size of volume '%s'", d.file)
			}
			m := reResize.FindStringSubmatch(sizestr)
			if m == nil {
				return errors.New("internal error")
			}
			size := parseSize(m[2] + m[3])
			if m[1] == "+" {
				size += im.size
			}
			if size < im.size {
				return errors.New("shrinking disks is not supported")
			}
			if size == im.size {
				return nil
			}
			// lvextend rounds up to the 4 MiB extent size
			const extent = 4 << 20
			rounded := (size + extent - 1) / extent * extent
			c.t.lines = append(c.t.lines,
				fmt.Sprintf("  Size of logical volume pve/%s changed from %s (%d extents) to %s (%d extents).",
					im.name, lvmSize(im.size), im.size/extent, lvmSize(rounded), rounded/extent),
				fmt.Sprintf("  Logical volume pve/%s successfully resized.", im.name))
			im.size = rounded
			d.opts["size"] = formatSize(size)
			v.conf[disk] = d.String()
			return nil
		},
	})
	return upid, nil
}

var reResize = lazyre.New(`^(\+)?(\d+(?:\.\d+)?)([KMGT])?$`)

// lvmSize renders a size as lvm prints it ("10.00 GiB").
func lvmSize(b int64) string {
	return strings.Replace(renderBytes(float64(b), 2), " ", " ", 1)
}
