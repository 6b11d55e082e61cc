package pvesim

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// snapshot is one [snapname] section of a VM config, made and used as
// pve-guest-common's AbstractConfig (snapshot_create, snapshot_delete,
// snapshot_rollback) with qemu-server's QemuConfig hooks do it.
type snapshot struct {
	conf map[string]string // the config at snapshot time, with snaptime, description, parent, vmstate, snapstate
	seq  int64             // creation order: what a ZFS-like storage sorts its volume snapshots by
}

// snapCopySkip are the keys __snapshot_copy_config leaves out, both when
// a snapshot is taken and when it is rolled back to.
func snapCopySkip(k string) bool {
	switch k {
	case "snapstate", "snaptime", "vmstate", "lock", "digest", "description":
		return true
	}
	return reUnusedKey.MatchString(k)
}

// snapDrives are the volumes of a snapshot's (or config's) drives, CD-ROMs
// and "none" left out (foreach_volume + drive_is_cdrom), sorted by key.
func snapDrives(conf map[string]string) []disk {
	var out []disk
	for _, k := range slices.Sorted(maps.Keys(conf)) {
		if !reDiskKey.MatchString(k) {
			continue
		}
		d := parseDrive(conf[k])
		if d.isCDROM() || !strings.Contains(d.file, ":") {
			continue
		}
		out = append(out, disk{key: k, volid: d.file})
	}
	return out
}

// needVM is the method's "check => ['perm', '/vms/{vmid}', [privs], any
// => 1]": 403 unless the caller holds one of privs on the guest.
func (s *Sim) needVM(r *request, privs ...string) *apiError {
	path := fmt.Sprintf("/vms/%d", r.int("vmid", 0))
	if !s.can(r, path, privs...) {
		return errPerm(path, privs...)
	}
	return nil
}

// lvName is the logical volume behind a local-lvm volid (what lvcreate
// and lvremove print).
func lvName(volid string) string {
	_, name, _ := strings.Cut(imageKey(volid), ":")
	return name
}

func (s *Sim) handleSnapshotList(r *request) (any, error) {
	if aerr := s.needVM(r, "VM.Audit"); aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, aerr := s.vmOn(r.str("node"), r.int("vmid", 0))
	if aerr != nil {
		return nil, aerr
	}
	out := []map[string]any{}
	for _, name := range slices.Sorted(maps.Keys(v.snaps)) {
		c := v.snaps[name].conf
		ts, _ := strconv.ParseInt(c["snaptime"], 10, 64)
		item := map[string]any{"name": name, "snaptime": ts, "vmstate": 0, "description": c["description"]}
		if c["vmstate"] != "" {
			item["vmstate"] = 1
		}
		if p := c["parent"]; p != "" {
			item["parent"] = p
		}
		if st := c["snapstate"]; st != "" {
			item["snapstate"] = st
		}
		out = append(out, item)
	}
	running := 0
	if v.running {
		running = 1
	}
	cur := map[string]any{"name": "current", "digest": v.digest(), "running": running, "description": "You are here!"}
	if p := v.conf["parent"]; p != "" {
		cur["parent"] = p
	}
	return append(out, cur), nil
}

// lockedVM runs fn under the simulator's mutex on a VM that exists and
// whose config file lock is free (lock_config + load_config).
func (s *Sim) lockedVM(node string, vmid int, fn func(v *vm) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, aerr := s.vmOn(node, vmid)
	if aerr == nil {
		aerr = v.flockBusy()
	}
	if aerr != nil {
		return aerr
	}
	return fn(v)
}

// checkLock is AbstractConfig::check_lock.
func checkLock(v *vm) error {
	if l := v.conf["lock"]; l != "" {
		return fmt.Errorf("VM is locked (%s)", l)
	}
	return nil
}

// handleSnapshotCreate is the snapshot API call and snapshot_create:
// prepare (lock "snapshot", the section written with snapstate
// "prepare", the VM state saved when asked and running), the volume
// snapshots, commit (snapstate and lock removed, parent set).
func (s *Sim) handleSnapshotCreate(r *request) (any, error) {
	if aerr := s.needVM(r, "VM.Snapshot"); aerr != nil {
		return nil, aerr
	}
	node, vmid, name := r.str("node"), r.int("vmid", 0), r.str("snapname")
	if name == "current" {
		return nil, errDie("unable to use snapshot name 'current' (reserved name)\n")
	}
	if strings.EqualFold(name, "pending") {
		return nil, errDie("unable to use snapshot name 'pending' (reserved name)\n")
	}
	withState := r.bool("vmstate", false)
	description := r.str("description")
	if aerr := s.checkVMOn(node, vmid); aerr != nil {
		return nil, aerr
	}
	upid := s.startTask(taskSpec{
		node: node, typ: "qmsnapshot", id: strconv.Itoa(vmid), user: r.user, vmid: vmid,
		run: func(c *taskCtx) error {
			var snap *snapshot
			var running bool
			err := s.lockedVM(node, vmid, func(v *vm) error {
				if v.conf["template"] == "1" {
					return errors.New("you can't take a snapshot if it's a template")
				}
				if err := checkLock(v); err != nil {
					return err
				}
				if _, ok := v.snaps[name]; ok {
					return fmt.Errorf("snapshot name '%s' already used", name)
				}
				v.conf["lock"] = "snapshot"
				for _, other := range slices.Sorted(maps.Keys(v.snaps)) {
					if v.snaps[other].conf["parent"] == name {
						c.t.lines = append(c.t.lines, fmt.Sprintf("deleting parent '%s' reference from '%s' to avoid bogus snapshot cycle.", name, other))
						delete(v.snaps[other].conf, "parent")
					}
				}
				conf := map[string]string{}
				for k, val := range v.conf {
					if !snapCopySkip(k) {
						conf[k] = val
					}
				}
				running = v.running
				if withState && running {
					// __snapshot_save_vmstate: twice the memory plus 500 MiB for the device state
					im := &image{node: v.node, storage: imagesStorage, name: fmt.Sprintf("vm-%d-state-%s", v.vmid, name),
						vmid: v.vmid, size: (2*v.memoryMiB() + 500) << 20}
					s.images[im.volid()] = im
					conf["vmstate"] = im.volid()
					conf["runningmachine"] = "pc-i440fx-9.2+pve1"
					conf["runningcpu"] = "qemu64,+aes,enforce,+kvm_pv_eoi,+kvm_pv_unhalt,+pni,+popcnt,+sse4.1,+sse4.2,+ssse3"
				}
				conf["snapstate"] = "prepare"
				conf["snaptime"] = strconv.FormatInt(s.now().Unix(), 10)
				if description != "" {
					conf["description"] = description
				}
				s.snapSeq++
				snap = &snapshot{conf: conf, seq: s.snapSeq}
				v.snaps[name] = snap
				return nil
			})
			if err != nil {
				return err
			}
			err = s.snapshotVolumes(c, name, snap, running)
			if err != nil {
				c.logf("snapshot create failed: starting cleanup")
				_ = s.lockedVM(node, vmid, func(v *vm) error {
					if st := snap.conf["vmstate"]; st != "" {
						s.freeImage(st)
					}
					if v.snaps[name] == snap {
						delete(v.snaps, name)
					}
					if v.conf["lock"] == "snapshot" {
						delete(v.conf, "lock")
					}
					return nil
				})
				return err
			}
			return s.lockedVM(node, vmid, func(v *vm) error {
				if v.conf["lock"] != "snapshot" {
					return errors.New("missing snapshot lock")
				}
				sn, ok := v.snaps[name]
				if !ok {
					return fmt.Errorf("snapshot '%s' does not exist", name)
				}
				if sn.conf["snapstate"] != "prepare" {
					return errors.New("wrong snapshot state")
				}
				delete(sn.conf, "snapstate")
				delete(v.conf, "lock")
				v.conf["parent"] = name
				return nil
			})
		},
	})
	return upid, nil
}

// snapshotVolumes logs and times the VM state save and the volume
// snapshots as __snapshot_create_vol_snapshots_hook,
// __snapshot_create_vol_snapshot and LvmThinPlugin's lvcreate print them.
func (s *Sim) snapshotVolumes(c *taskCtx, name string, snap *snapshot, running bool) error {
	s.mu.Lock()
	state, drives := snap.conf["vmstate"], snapDrives(snap.conf)
	mem := snap.conf["memory"]
	s.mu.Unlock()
	if running && state != "" {
		storage, _, _ := strings.Cut(state, ":")
		c.logf("saving VM state and RAM using storage '%s'", storage)
		mib, _ := strconv.ParseInt(mem, 10, 64)
		if mib <= 0 {
			mib = 512
		}
		saved := mib * 4 / 10 // a guest rarely dirties all of its memory
		for i := int64(1); i <= 2; i++ {
			if err := c.sleep(time.Second); err != nil {
				return err
			}
			c.logf("%s in %s", renderBytes(float64(saved*i/3<<20), 2), renderDuration(i))
		}
		if err := c.sleep(time.Second); err != nil {
			return err
		}
		c.logf("completed saving the VM state in %s, saved %s", renderDuration(3), renderBytes(float64(saved<<20), 2))
	}
	for _, d := range drives {
		c.logf("snapshotting 'drive-%s' (%s)", d.key, d.volid)
		if err := c.sleep(time.Second); err != nil {
			return err
		}
		c.logf("  Logical volume \"snap_%s_%s\" created.", lvName(d.volid), name)
	}
	return nil
}

// handleSnapshotDelete is the delsnapshot API call and snapshot_delete:
// the snapshot must exist, then set_lock "snapshot-delete" (refused while
// another lock is held), snapstate "delete", the VM state volume freed,
// the volume snapshots removed, the section dropped and its children
// re-parented. force (removal from the config even if removing disk
// snapshots fails) is accepted; removing them never fails here.
func (s *Sim) handleSnapshotDelete(r *request) (any, error) {
	if aerr := s.needVM(r, "VM.Snapshot"); aerr != nil {
		return nil, aerr
	}
	node, vmid, name := r.str("node"), r.int("vmid", 0), r.str("snapname")
	if aerr := s.checkVMOn(node, vmid); aerr != nil {
		return nil, aerr
	}
	upid := s.startTask(taskSpec{
		node: node, typ: "qmdelsnapshot", id: strconv.Itoa(vmid), user: r.user, vmid: vmid,
		run: func(c *taskCtx) error {
			var drives []disk
			err := s.lockedVM(node, vmid, func(v *vm) error {
				sn, ok := v.snaps[name]
				if !ok {
					return fmt.Errorf("snapshot '%s' does not exist", name)
				}
				if err := checkLock(v); err != nil {
					return err
				}
				v.conf["lock"] = "snapshot-delete"
				if v.conf["template"] == "1" {
					return errors.New("you can't delete a snapshot if vm is a template")
				}
				sn.conf["snapstate"] = "delete"
				if st := sn.conf["vmstate"]; st != "" {
					s.freeImage(st)
					delete(sn.conf, "vmstate")
					c.t.lines = append(c.t.lines, fmt.Sprintf("  Logical volume \"%s\" successfully removed.", lvName(st)))
				}
				drives = snapDrives(sn.conf)
				return nil
			})
			if err != nil {
				return err
			}
			for _, d := range drives {
				if err := c.sleep(time.Second); err != nil {
					return err
				}
				c.logf("  Logical volume \"snap_%s_%s\" successfully removed.", lvName(d.volid), name)
			}
			return s.lockedVM(node, vmid, func(v *vm) error {
				if v.conf["lock"] != "snapshot-delete" {
					return errors.New("encountered invalid lock, expected 'snapshot-delete'")
				}
				sn, ok := v.snaps[name]
				if !ok {
					return fmt.Errorf("snapshot '%s' does not exist", name)
				}
				parent := sn.conf["parent"]
				if v.conf["parent"] == name {
					setOrDelete(v.conf, "parent", parent)
				}
				for other, osn := range v.snaps {
					if other != name && osn.conf["parent"] == name {
						setOrDelete(osn.conf, "parent", parent)
					}
				}
				delete(v.snaps, name)
				delete(v.conf, "lock")
				return nil
			})
		},
	})
	return upid, nil
}

func setOrDelete(m map[string]string, k, v string) {
	if v == "" {
		delete(m, k)
	} else {
		m[k] = v
	}
}

// rollbackBlocker is volume_rollback_is_possible of a storage that rolls
// back only to its newest snapshot (ZFSPoolPlugin): a snapshot taken
// after the target that holds the same volume blocks it. Caller holds s.mu.
func (s *Sim) rollbackBlocker(v *vm, name string) error {
	target := v.snaps[name]
	for _, d := range snapDrives(target.conf) {
		storage, _, _ := strings.Cut(d.volid, ":")
		if !s.newestOnly[storage] {
			continue
		}
		for _, other := range v.snaps {
			if other.seq <= target.seq {
				continue
			}
			for _, od := range snapDrives(other.conf) {
				if od.volid == d.volid {
					return fmt.Errorf("can't rollback, '%s' is not most recent snapshot on '%s'", name, d.volid)
				}
			}
		}
	}
	return nil
}

// handleSnapshotRollback is the rollback API call and snapshot_rollback:
// the volumes checked (a newest-only storage refuses an older target
// before anything changes), the lock checked, a running VM hard-stopped,
// lock "rollback", the volumes rolled back, then the snapshot's config
// applied keeping the VM's current description and unusedN entries
// (__snapshot_apply_config), pending changes dropped, a new vmgenid, and
// the VM resumed from a saved state or, with start, started.
func (s *Sim) handleSnapshotRollback(r *request) (any, error) {
	if aerr := s.needVM(r, "VM.Snapshot", "VM.Snapshot.Rollback"); aerr != nil {
		return nil, aerr
	}
	node, vmid, name := r.str("node"), r.int("vmid", 0), r.str("snapname")
	start := r.bool("start", false)
	if start {
		// the worker starts the guest itself: VM.PowerMgmt is checked up front
		if aerr := s.needVM(r, "VM.PowerMgmt"); aerr != nil {
			return nil, aerr
		}
	}
	if aerr := s.checkVMOn(node, vmid); aerr != nil {
		return nil, aerr
	}
	upid := s.startTask(taskSpec{
		node: node, typ: "qmrollback", id: strconv.Itoa(vmid), user: r.user, vmid: vmid,
		run: func(c *taskCtx) error {
			var drives []disk
			err := s.lockedVM(node, vmid, func(v *vm) error {
				if v.conf["template"] == "1" {
					return errors.New("you can't rollback if vm is a template")
				}
				sn, ok := v.snaps[name]
				if !ok {
					return fmt.Errorf("snapshot '%s' does not exist", name)
				}
				if err := s.rollbackBlocker(v, name); err != nil {
					return err
				}
				if st := sn.conf["snapstate"]; st != "" {
					return fmt.Errorf("unable to rollback to incomplete snapshot (snapstate = %s)", st)
				}
				if err := checkLock(v); err != nil {
					return err
				}
				if v.running {
					// __snapshot_rollback_vm_stop: vm_stop without shutdown, a hard stop
					v.running, v.pid = false, 0
					s.applyPending(v)
				}
				v.conf["lock"] = "rollback"
				drives = snapDrives(sn.conf)
				return nil
			})
			if err != nil {
				return err
			}
			for _, d := range drives {
				if err := c.sleep(time.Second); err != nil {
					return err
				}
				c.logf("  Logical volume \"%s\" successfully removed.", lvName(d.volid))
				c.logf("  Logical volume \"%s\" created.", lvName(d.volid))
			}
			var resume bool
			err = s.lockedVM(node, vmid, func(v *vm) error {
				sn, ok := v.snaps[name]
				if !ok {
					return fmt.Errorf("snapshot '%s' does not exist", name)
				}
				if v.conf["lock"] != "rollback" {
					return errors.New("got wrong lock")
				}
				delete(v.conf, "lock")
				inSnap := map[string]bool{}
				for _, d := range snapDrives(sn.conf) {
					inSnap[d.volid] = true
				}
				for _, d := range snapDrives(v.conf) {
					if !inSnap[d.volid] {
						v.addUnused(parseDrive(d.volid))
					}
				}
				conf := map[string]string{}
				for k, val := range v.conf {
					if reUnusedKey.MatchString(k) || k == "description" {
						conf[k] = val
					}
				}
				for k, val := range sn.conf {
					if !snapCopySkip(k) {
						conf[k] = val
					}
				}
				conf["parent"] = name
				// __snapshot_rollback_hook
				delete(conf, "runningmachine")
				delete(conf, "runningcpu")
				delete(conf, "running-nets-host-mtu")
				if conf["vmgenid"] != "" {
					conf["vmgenid"] = randomUUID()
				}
				v.conf = conf
				v.pending, v.pdel = map[string]string{}, map[string]bool{}
				v.cleanupUnused()
				if sn.conf["vmstate"] != "" {
					v.running, v.started, v.pid = true, s.now(), s.allocPID()
					resume = true
				}
				return nil
			})
			if err != nil {
				return err
			}
			if start && !resume {
				return s.lockedVM(node, vmid, func(v *vm) error {
					if v.running {
						return nil
					}
					if err := checkLock(v); err != nil {
						return err
					}
					v.running, v.started, v.pid = true, s.now(), s.allocPID()
					return nil
				})
			}
			return nil
		},
	})
	return upid, nil
}

// handleSnapshotCmdIndex is snapshot_cmd_idx: the two commands, whether
// or not the snapshot exists.
func (s *Sim) handleSnapshotCmdIndex(r *request) (any, error) {
	return []map[string]any{{"cmd": "rollback"}, {"cmd": "config"}}, nil
}

func (s *Sim) handleSnapshotConfigGet(r *request) (any, error) {
	if aerr := s.needVM(r, "VM.Snapshot", "VM.Snapshot.Rollback", "VM.Audit"); aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, aerr := s.vmOn(r.str("node"), r.int("vmid", 0))
	if aerr != nil {
		return nil, aerr
	}
	sn, ok := v.snaps[r.str("snapname")]
	if !ok {
		return nil, errDie("snapshot '%s' does not exist\n", r.str("snapname"))
	}
	returns := s.schema.paths["/nodes/{node}/qemu/{vmid}/config"]["GET"].Returns
	out := map[string]any{}
	for k, val := range sn.conf {
		out[k] = returns.typedValue(k, val)
	}
	return out, nil
}

// handleSnapshotConfigPut is update_snapshot_config: without a
// description it does nothing at all; otherwise the VM must not be locked.
func (s *Sim) handleSnapshotConfigPut(r *request) (any, error) {
	if aerr := s.needVM(r, "VM.Snapshot"); aerr != nil {
		return nil, aerr
	}
	if !r.has("description") {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, aerr := s.vmOn(r.str("node"), r.int("vmid", 0))
	if aerr == nil {
		aerr = v.flockBusy()
	}
	if aerr != nil {
		return nil, aerr
	}
	if err := checkLock(v); err != nil {
		return nil, errDie("%s\n", err)
	}
	sn, ok := v.snaps[r.str("snapname")]
	if !ok {
		return nil, errDie("snapshot '%s' does not exist\n", r.str("snapname"))
	}
	setOrDelete(sn.conf, "description", r.str("description"))
	return nil, nil
}

// SetNewestOnlyRollback makes a storage roll back only to a volume's
// newest snapshot, as ZFS does (on: an older target fails the qmrollback
// task with "can't rollback, 'X' is not most recent snapshot on
// 'storage:volume'" before anything changes), or lifts that again.
func (s *Sim) SetNewestOnlyRollback(storage string, on bool) error {
	d, ok := findStorage(storage)
	if !ok || !d.hasContent("images") {
		return fmt.Errorf("storage '%s' does not exist or holds no disk images", storage)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		s.newestOnly[storage] = true
	} else {
		delete(s.newestOnly, storage)
	}
	return nil
}

// Snapshots lists a VM's snapshot names, oldest first (in the order
// they were taken, snaptime having only whole seconds).
func (s *Sim) Snapshots(vmid int) ([]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vms[vmid]
	if !ok {
		return nil, false
	}
	names := slices.Collect(maps.Keys(v.snaps))
	slices.SortFunc(names, func(a, b string) int {
		if c := cmp.Compare(v.snaps[a].seq, v.snaps[b].seq); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return names, true
}
