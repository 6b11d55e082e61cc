package pvesim

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// cloneReadRate is the simulated qemu-img/drive-mirror throughput of a
// full clone: a 4 GiB template disk takes 8 s at Speed 1.
const cloneReadRate = 512 << 20

// handleClone is clone_vm. The early checks answer synchronously; the
// worker writes "lock: clone" into the new VM's config (the source holds
// only a file lock), copies or links the disks, gives every NIC a new
// MAC and the VM a new smbios1 uuid and vmgenid, then removes the lock.
// On failure the new volumes and the config are removed again.
func (s *Sim) handleClone(r *request) (any, error) {
	node, vmid, newid := r.str("node"), r.int("vmid", 0), r.int("newid", 0)
	storage, target := r.str("storage"), r.str("target")
	if target == node || target == "localhost" {
		target = ""
	}
	if target != "" && !slices.Contains(s.nodes, target) {
		return nil, errDie("no such cluster node '%s'\n", target)
	}
	if storage != "" {
		def, ok := findStorage(storage)
		if !ok {
			return nil, errDie("storage '%s' does not exist\n", storage)
		}
		if !def.hasContent("images") {
			return nil, errParam("storage", fmt.Sprintf("storage '%s' does not support vm images", storage))
		}
		if target != "" && !def.shared {
			return nil, errDie("can't clone to non-shared storage '%s'\n", storage)
		}
	}
	s.mu.Lock()
	v, aerr := s.vmOn(node, vmid)
	if aerr != nil {
		s.mu.Unlock()
		return nil, aerr
	}
	if l := v.conf["lock"]; l != "" {
		s.mu.Unlock()
		return nil, errDie("VM is locked (%s)\n", l)
	}
	full := r.bool("full", v.conf["template"] != "1")
	if storage != "" && !full {
		s.mu.Unlock()
		return nil, errDie("parameter 'storage' not allowed for linked clones\n")
	}
	if aerr := checkCloneDrives(v.conf, full, storage); aerr != nil {
		s.mu.Unlock()
		return nil, aerr
	}
	if target != "" && !sharedVM(v.conf, storage) {
		s.mu.Unlock()
		return nil, errDie("can't clone VM to node '%s' (VM uses local storage)\n", target)
	}
	if _, exists := s.vms[newid]; exists {
		s.mu.Unlock()
		return nil, errDie("unable to create VM %d: config file already exists\n", newid)
	}
	s.mu.Unlock()

	name, description := r.str("name"), r.str("description")
	upid := s.startTask(taskSpec{
		node: node, typ: "qmclone", id: strconv.Itoa(vmid), user: r.user, vmid: vmid, ownsFaults: true,
		run: func(c *taskCtx) error {
			return s.runClone(c, node, vmid, newid, full, storage, target, name, description)
		},
	})
	return upid, nil
}

func (s *Sim) runClone(c *taskCtx, node string, vmid, newid int, full bool, storage, target, name, description string) error {
	if err := c.sleep(300 * time.Millisecond); err != nil {
		return err
	}
	s.mu.Lock()
	v, aerr := s.vmOn(node, vmid)
	if aerr != nil {
		s.mu.Unlock()
		return aerr
	}
	if l := v.conf["lock"]; l != "" {
		s.mu.Unlock()
		return fmt.Errorf("VM is locked (%s)", l)
	}
	if _, exists := s.vms[newid]; exists {
		s.mu.Unlock()
		return fmt.Errorf("unable to create VM %d: config file already exists", newid)
	}
	old := maps.Clone(v.conf)
	newconf := map[string]string{}
	var drives []string
	for _, k := range slices.Sorted(maps.Keys(old)) {
		val := old[k]
		switch {
		case k == "parent" || k == "snaptime" || k == "vmstate" || k == "snapstate" || k == "lock" ||
			k == "runningcpu" || k == "runningmachine" || reUnusedKey.MatchString(k):
		case reNetKey.MatchString(k):
			n := parseNet(val)
			n.mac = randomMAC()
			newconf[k] = n.String()
		case reDiskKey.MatchString(k) && (!parseDrive(val).isCDROM() || parseDrive(val).isCloudInit()):
			drives = append(drives, k)
		default:
			newconf[k] = val
		}
	}
	newconf["smbios1"] = reSmbiosUUID.ReplaceAllString(newconf["smbios1"], "uuid="+randomUUID())
	if newconf["vmgenid"] != "" {
		newconf["vmgenid"] = randomUUID()
	}
	delete(newconf, "template")
	if name != "" {
		newconf["name"] = name
	} else {
		src := old["name"]
		if src == "" {
			src = strconv.Itoa(vmid)
		}
		newconf["name"] = "Copy-of-VM-" + src
	}
	if description != "" {
		newconf["description"] = description
	}
	nv := &vm{vmid: newid, node: node, conf: map[string]string{"lock": "clone"}, pending: map[string]string{},
		pdel: map[string]bool{}, snaps: map[string]*snapshot{}}
	s.vms[newid] = nv
	v.flock = "qmclone"
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		v.flock = ""
		s.mu.Unlock()
	}()

	c.logf("creating a clone of VM %d with ID %d", vmid, newid)
	var created []string
	fail := func(err error) error {
		s.mu.Lock()
		for _, volid := range created {
			s.freeImage(volid)
		}
		delete(s.vms, newid)
		s.mu.Unlock()
		return fmt.Errorf("clone failed: %w", err)
	}
	failAt := -1
	if c.fault != nil {
		if _, ok := isWarnings(c.fault.ExitStatus); !ok && c.fault.ExitStatus != "OK" {
			failAt = 50
		}
	}
	for _, k := range drives {
		d := parseDrive(old[k])
		sid, _, _ := strings.Cut(d.file, ":")
		if storage != "" {
			sid = storage
		}
		if d.isCloudInit() {
			// clone_disk makes the clone a cloud-init image of its own
			s.mu.Lock()
			im := s.allocCloudInit(node, sid, newid)
			created = append(created, im.volid())
			d.file = im.volid()
			newconf[k] = d.String()
			s.mu.Unlock()
			c.logf("create full clone of drive %s (%s)", k, parseDrive(old[k]).file)
			continue
		}
		s.mu.Lock()
		src, ok := s.images[imageKey(d.file)]
		size := int64(0)
		if ok {
			size = src.size
		}
		s.mu.Unlock()
		if !ok {
			return fail(fmt.Errorf("no such logical volume pve/%s", strings.TrimPrefix(imageKey(d.file), sid+":")))
		}
		kind := "linked"
		if full {
			kind = "full"
		}
		c.logf("create %s clone of drive %s (%s)", kind, k, d.file)
		s.mu.Lock()
		im := s.allocImage(node, sid, newid, size)
		created = append(created, im.volid())
		s.mu.Unlock()
		newfile := im.volid()
		if !full {
			// a linked clone of a base volume: base-9000-disk-0/vm-990-disk-0
			_, base, _ := strings.Cut(imageKey(d.file), ":")
			newfile = sid + ":" + base + "/" + im.name
			c.logf("  Logical volume \"%s\" created.", im.name)
		} else {
			c.logf("  Logical volume \"%s\" created.", im.name)
			c.logf("transferred 0.0 B of %s (0.00%%)", renderBytes(float64(size), 1))
			secs := float64(size) / cloneReadRate
			for pct := 10; pct <= 100; pct += 10 {
				if err := c.sleep(time.Duration(secs / 10 * float64(time.Second))); err != nil {
					return fail(err)
				}
				if pct >= failAt && failAt >= 0 {
					return fail(errors.New(c.fault.ExitStatus))
				}
				c.logf("transferred %s of %s (%.2f%%)", renderBytes(float64(size)*float64(pct)/100, 1),
					renderBytes(float64(size), 1), float64(pct))
			}
		}
		d.file = newfile
		s.mu.Lock()
		newconf[k] = d.String()
		s.mu.Unlock()
	}
	if failAt >= 0 && len(drives) == 0 {
		return fail(errors.New(c.fault.ExitStatus))
	}
	s.mu.Lock()
	nv.conf = newconf
	if target != "" {
		// the config file is renamed into the target node's directory
		nv.node = target
	}
	s.mu.Unlock()
	return nil
}

// checkCloneDrives is clone_vm's per-drive check: a full clone needs the
// "copy" feature of every disk's storage, a linked one "clone", which
// lvmthin has only for a template's base volumes and plain lvm never.
func checkCloneDrives(conf map[string]string, full bool, storage string) *apiError {
	for _, k := range slices.Sorted(maps.Keys(conf)) {
		if !reDiskKey.MatchString(k) {
			continue
		}
		d := parseDrive(conf[k])
		if d.isCDROM() {
			continue
		}
		sid, _, _ := strings.Cut(d.file, ":")
		def, ok := findStorage(sid)
		if !ok {
			return errDie("storage '%s' does not exist\n", sid)
		}
		_, volname, _ := strings.Cut(imageKey(d.file), ":")
		base := strings.HasPrefix(volname, "base-")
		switch {
		case full && !def.hasFeature("copy", base):
			return errDie("Full clone feature is not supported for '%s' (%s)\n", d.file, k)
		case !full && !def.hasFeature("clone", base):
			return errDie("Linked clone feature is not supported for '%s' (%s)\n", d.file, k)
		}
	}
	return nil
}

// sharedVM is check_storage_access_clone's verdict: every disk ends on
// shared storage (the target storage when one is given), so the clone
// may be moved to another node.
func sharedVM(conf map[string]string, storage string) bool {
	for k, val := range conf {
		if !reDiskKey.MatchString(k) {
			continue
		}
		d := parseDrive(val)
		if d.isCDROM() {
			continue
		}
		sid, _, _ := strings.Cut(d.file, ":")
		if storage != "" {
			sid = storage
		}
		if def, ok := findStorage(sid); !ok || !def.shared {
			return false
		}
	}
	return true
}

// handleDestroy is destroy_vm: early checks answer synchronously
// (protection, running), the qmdestroy worker repeats them, checks the
// lock (unless skiplock), frees the disks the VM owns (unusedN, pending
// and snapshot state included; with destroy-unreferenced-disks also its
// unreferenced volumes) and removes the config.
func (s *Sim) handleDestroy(r *request) (any, error) {
	if err := rootOnly(r, "skiplock"); err != nil {
		return nil, err
	}
	node, vmid := r.str("node"), r.int("vmid", 0)
	skiplock, purgeUnref := r.bool("skiplock", false), r.bool("destroy-unreferenced-disks", false)
	early := func() (*vm, error) {
		v, aerr := s.vmOn(node, vmid)
		if aerr != nil {
			return nil, aerr
		}
		if v.conf["protection"] == "1" {
			return nil, errDie("can't remove VM %d - protection mode enabled\n", vmid)
		}
		if v.running {
			return nil, errDie("VM %d is running - destroy failed\n", vmid)
		}
		return v, nil
	}
	s.mu.Lock()
	_, err := early()
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	purge := r.bool("purge", false)
	upid := s.startTask(taskSpec{
		node: node, typ: "qmdestroy", id: strconv.Itoa(vmid), user: r.user, vmid: vmid,
		run: func(c *taskCtx) error {
			if err := c.sleep(time.Second); err != nil {
				return err
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			v, err := early()
			if err != nil {
				return err
			}
			if aerr := v.flockBusy(); aerr != nil {
				return aerr
			}
			if l := v.conf["lock"]; l != "" && !skiplock && l != "suspended" {
				return fmt.Errorf("VM is locked (%s)", l)
			}
			confs := []map[string]string{v.conf, v.pending}
			for _, sn := range v.snaps {
				if st := sn.conf["vmstate"]; st != "" {
					confs = append(confs, map[string]string{"vmstate": st})
				}
			}
			for _, conf := range confs {
				for _, k := range slices.Sorted(maps.Keys(conf)) {
					if !reDiskKey.MatchString(k) && !reUnusedKey.MatchString(k) && k != "vmstate" {
						continue
					}
					d := parseDrive(conf[k])
					if d.isCDROM() && !d.isCloudInit() || volumeOwner(d.file) != vmid {
						continue
					}
					if im, ok := s.images[imageKey(d.file)]; ok {
						s.freeImage(d.file)
						c.t.lines = append(c.t.lines, fmt.Sprintf("  Logical volume \"%s\" successfully removed.", im.name))
					}
				}
			}
			if purgeUnref {
				for _, k := range slices.Sorted(maps.Keys(s.images)) {
					im := s.images[k]
					def, _ := findStorage(im.storage)
					if im.vmid == vmid && (im.node == node || def.shared) {
						delete(s.images, k)
						c.t.lines = append(c.t.lines, fmt.Sprintf("  Logical volume \"%s\" successfully removed.", im.name))
					}
				}
			}
			if purge {
				c.t.lines = append(c.t.lines, fmt.Sprintf("purging VM %d from related configurations..", vmid))
			}
			delete(s.vms, vmid)
			delete(s.lastBackup, vmid)
			return nil
		},
	})
	return upid, nil
}
