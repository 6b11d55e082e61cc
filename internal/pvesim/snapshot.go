package pvesim

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
)

// snapshot is one [snapname] section of a VM config (pve-guest-common's
// AbstractConfig snapshot_create/delete/rollback).
type snapshot struct {
	conf map[string]string // the config at snapshot time, with snaptime, description, parent, vmstate
}

func (s *Sim) handleSnapshotList(r *request) (any, error) {
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

// snapTask runs a snapshot worker under a config lock, as the
// AbstractConfig snapshot functions do: check_lock, set the lock, work,
// remove the lock.
func (s *Sim) snapTask(r *request, typ, lock string, took time.Duration, pre func(v *vm) error, work func(c *taskCtx, v *vm) error) (any, error) {
	node, vmid := r.str("node"), r.int("vmid", 0)
	s.mu.Lock()
	_, aerr := s.vmOn(node, vmid)
	s.mu.Unlock()
	if aerr != nil {
		return nil, aerr
	}
	upid := s.startTask(taskSpec{
		node: node, typ: typ, id: strconv.Itoa(vmid), user: r.user, vmid: vmid,
		run: func(c *taskCtx) error {
			s.mu.Lock()
			v, aerr := s.vmOn(node, vmid)
			if aerr == nil {
				aerr = v.flockBusy()
			}
			if aerr != nil {
				s.mu.Unlock()
				return aerr
			}
			if l := v.conf["lock"]; l != "" {
				s.mu.Unlock()
				return fmt.Errorf("VM is locked (%s)", l)
			}
			if err := pre(v); err != nil {
				s.mu.Unlock()
				return err
			}
			v.conf["lock"] = lock
			s.mu.Unlock()
			err := c.sleep(took)
			s.mu.Lock()
			defer s.mu.Unlock()
			if v.conf["lock"] == lock {
				delete(v.conf, "lock")
			}
			if err != nil {
				return err
			}
			return work(c, v)
		},
	})
	return upid, nil
}

func (s *Sim) handleSnapshotCreate(r *request) (any, error) {
	name := r.str("snapname")
	if name == "current" {
		return nil, errDie("unable to use snapshot name 'current' (reserved name)\n")
	}
	if name == "pending" || name == "PENDING" {
		return nil, errDie("unable to use snapshot name 'pending' (reserved name)\n")
	}
	withState := r.bool("vmstate", false)
	description := r.str("description")
	return s.snapTask(r, "qmsnapshot", "snapshot", 3*time.Second, func(v *vm) error {
		if v.conf["template"] == "1" {
			return errors.New("you can't take a snapshot if it's a template")
		}
		if _, ok := v.snaps[name]; ok {
			return fmt.Errorf("snapshot name '%s' already used", name)
		}
		return nil
	}, func(c *taskCtx, v *vm) error {
		conf := maps.Clone(v.conf)
		for k := range conf {
			if reUnusedKey.MatchString(k) {
				delete(conf, k)
			}
		}
		conf["snaptime"] = strconv.FormatInt(s.now().Unix(), 10)
		if description != "" {
			conf["description"] = description
		} else {
			delete(conf, "description")
		}
		if withState && v.running {
			im := &image{node: v.node, storage: imagesStorage, name: fmt.Sprintf("vm-%d-state-%s", v.vmid, name),
				vmid: v.vmid, size: 2*v.memoryMiB()<<20 + 8<<20}
			s.images[im.volid()] = im
			conf["vmstate"] = im.volid()
			conf["runningmachine"] = "pc-i440fx-9.2+pve1"
		}
		v.snaps[name] = &snapshot{conf: conf}
		v.conf["parent"] = name
		return nil
	})
}

func (s *Sim) handleSnapshotDelete(r *request) (any, error) {
	name := r.str("snapname")
	return s.snapTask(r, "qmdelsnapshot", "snapshot-delete", 2*time.Second, func(v *vm) error {
		if _, ok := v.snaps[name]; !ok {
			return fmt.Errorf("snapshot '%s' does not exist", name)
		}
		return nil
	}, func(c *taskCtx, v *vm) error {
		sn := v.snaps[name]
		if st := sn.conf["vmstate"]; st != "" {
			s.freeImage(st)
		}
		parent := sn.conf["parent"]
		for _, other := range v.snaps {
			if other.conf["parent"] == name {
				setOrDelete(other.conf, "parent", parent)
			}
		}
		if v.conf["parent"] == name {
			setOrDelete(v.conf, "parent", parent)
		}
		delete(v.snaps, name)
		return nil
	})
}

func setOrDelete(m map[string]string, k, v string) {
	if v == "" {
		delete(m, k)
	} else {
		m[k] = v
	}
}

func (s *Sim) handleSnapshotRollback(r *request) (any, error) {
	name := r.str("snapname")
	start := r.bool("start", false)
	return s.snapTask(r, "qmrollback", "rollback", 2*time.Second, func(v *vm) error {
		if v.conf["template"] == "1" {
			return errors.New("you can't rollback if vm is a template")
		}
		if _, ok := v.snaps[name]; !ok {
			return fmt.Errorf("snapshot '%s' does not exist", name)
		}
		if v.running {
			// __snapshot_rollback_vm_stop: a hard stop
			v.running, v.pid = false, 0
		}
		return nil
	}, func(c *taskCtx, v *vm) error {
		sn := v.snaps[name]
		conf := maps.Clone(sn.conf)
		delete(conf, "snaptime")
		delete(conf, "vmstate")
		delete(conf, "runningmachine")
		for k, val := range v.conf {
			if reUnusedKey.MatchString(k) {
				conf[k] = val
			}
		}
		conf["parent"] = name
		v.conf = conf
		v.pending, v.pdel = map[string]string{}, map[string]bool{}
		if start || sn.conf["vmstate"] != "" {
			v.running, v.started, v.pid = true, s.now(), s.allocPID()
		}
		return nil
	})
}

func (s *Sim) handleSnapshotConfigGet(r *request) (any, error) {
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

func (s *Sim) handleSnapshotConfigPut(r *request) (any, error) {
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
	if r.has("description") {
		setOrDelete(sn.conf, "description", r.str("description"))
	}
	return nil, nil
}

// Snapshots lists a VM's snapshot names, oldest first.
func (s *Sim) Snapshots(vmid int) ([]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vms[vmid]
	if !ok {
		return nil, false
	}
	names := slices.Collect(maps.Keys(v.snaps))
	slices.SortFunc(names, func(a, b string) int {
		return compareInts(v.snaps[a].conf["snaptime"], v.snaps[b].conf["snaptime"], a, b)
	})
	return names, true
}

func compareInts(x, y, a, b string) int {
	i, _ := strconv.ParseInt(x, 10, 64)
	j, _ := strconv.ParseInt(y, 10, 64)
	switch {
	case i < j:
		return -1
	case i > j:
		return 1
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
