package pvetest

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// The snapshot tests work on the scratch guest (see lifecycle.go) and
// only ever roll back to the newest snapshot, except
// TestSnapshotRollbackNewestOnly, so they hold on any storage, ZFS
// included. Destroying the scratch guest removes its snapshots.

// NewestOnlyRollback is implemented by a Faults that can make a disk
// storage roll back only to a volume's newest snapshot, as ZFS does (the
// simulator). On a live PVE the newest-only test runs when the scratch
// guest's disk is on a zfspool storage, and skips otherwise.
type NewestOnlyRollback interface {
	SetNewestOnlyRollback(storage string, on bool) error
}

func snapshots(ctx context.Context, t *testing.T, c *pve.Client, node string, vmid pvekeep.VMID) pve.Snapshots {
	t.Helper()
	list, err := c.Snapshots(ctx, node, vmid)
	if err != nil {
		t.Fatalf("Snapshots: %v", err)
	}
	return list
}

func mustSnapshot(ctx context.Context, t *testing.T, c *pve.Client, node string, req pve.SnapshotRequest) {
	t.Helper()
	upid, err := c.CreateSnapshot(ctx, node, req)
	if err == nil {
		if info, perr := pve.ParseUPID(string(upid)); perr != nil || info.Type != "qmsnapshot" || info.ID != strconv.Itoa(int(req.VMID)) {
			t.Errorf("CreateSnapshot UPID %s: %+v, %v", upid, info, perr)
		}
	}
	mustWait(ctx, t, c, "CreateSnapshot "+req.Name, upid, err)
}

// Take, list (with "current"), describe, refuse a taken name, roll back to
// the newest (the snapshot's config returns, the guest's description
// stays), delete (children and "current" re-parented), delete again.
func (s *Suite) TestSnapshotLifecycle(t *testing.T) {
	env, c, ctx := s.setup(t)
	node := s.scratch(ctx, t, c, env)
	vmid := env.ScratchVMID
	if list := snapshots(ctx, t, c, node, vmid); len(list.Items) != 0 || list.Current != "" || list.Running || list.Digest == "" {
		t.Fatalf("a fresh clone's snapshots = %+v", list)
	}
	before := time.Now()
	mustSnapshot(ctx, t, c, node, pve.SnapshotRequest{VMID: vmid, Name: "pvk-a", Description: "first one"})
	list := snapshots(ctx, t, c, node, vmid)
	a, ok := list.Find("pvk-a")
	if !ok || a.Description != "first one" || a.VMState || a.Parent != "" || a.State != "" || list.Current != "pvk-a" {
		t.Fatalf("after the first snapshot: %+v", list)
	}
	if a.Time.Before(before.Add(-time.Hour)) || a.Time.After(time.Now().Add(time.Hour)) {
		t.Errorf("snaptime %v is not about now (%v)", a.Time, before)
	}

	upid, err := c.CreateSnapshot(ctx, node, pve.SnapshotRequest{VMID: vmid, Name: "pvk-a"})
	if err == nil {
		_, err = c.WaitTask(ctx, upid)
	}
	if !errors.Is(err, pve.ErrAlreadyExists) {
		t.Errorf("a taken name: err = %v, want ErrAlreadyExists", err)
	}

	cores := func() int {
		n, _ := strconv.Atoi(mustConfig(ctx, t, c, node, vmid)["cores"])
		return max(n, 1)
	}
	atB := cores() + 1
	if err := c.UpdateConfig(ctx, node, vmid, pve.ConfigChange{Set: map[string]string{
		"cores": strconv.Itoa(atB), "description": "at snapshot b"}}); err != nil {
		t.Fatalf("UpdateConfig: %v", err)
	}
	mustSnapshot(ctx, t, c, node, pve.SnapshotRequest{VMID: vmid, Name: "pvk-b"})
	list = snapshots(ctx, t, c, node, vmid)
	if b, ok := list.Find("pvk-b"); !ok || b.Parent != "pvk-a" || b.Description != "" || list.Current != "pvk-b" ||
		len(list.Items) != 2 || list.Items[0].Name != "pvk-a" {
		t.Fatalf("after the second snapshot: %+v", list)
	}
	conf, err := c.SnapshotConfig(ctx, node, vmid, "pvk-b")
	if err != nil || conf["cores"] != strconv.Itoa(atB) || conf["parent"] != "pvk-a" || conf["snaptime"] == "" {
		t.Errorf("SnapshotConfig(pvk-b) = %v, %v", conf, err)
	}
	if _, ok := conf["description"]; ok {
		t.Errorf("the guest's description went into the snapshot: %v", conf)
	}
	if err := c.SetSnapshotDescription(ctx, node, vmid, "pvk-b", "renamed"); err != nil {
		t.Fatalf("SetSnapshotDescription: %v", err)
	}
	if b, _ := snapshots(ctx, t, c, node, vmid).Find("pvk-b"); b.Description != "renamed" {
		t.Errorf("description after SetSnapshotDescription = %q", b.Description)
	}

	if err := c.UpdateConfig(ctx, node, vmid, pve.ConfigChange{Set: map[string]string{
		"cores": strconv.Itoa(atB + 1), "description": "after"}}); err != nil {
		t.Fatalf("UpdateConfig: %v", err)
	}
	upid, err = c.RollbackSnapshot(ctx, node, vmid, "pvk-b", false)
	if err == nil {
		if info, _ := pve.ParseUPID(string(upid)); info.Type != "qmrollback" {
			t.Errorf("rollback UPID %s", upid)
		}
	}
	mustWait(ctx, t, c, "RollbackSnapshot", upid, err)
	cfg := mustConfig(ctx, t, c, node, vmid)
	if cfg["cores"] != strconv.Itoa(atB) || cfg["description"] != "after" || cfg["parent"] != "pvk-b" || cfg.Lock() != "" {
		t.Errorf("after rollback: cores %q (want %d), description %q (want the guest's current one), parent %q, lock %q",
			cfg["cores"], atB, cfg["description"], cfg["parent"], cfg.Lock())
	}

	upid, err = c.DeleteSnapshot(ctx, node, vmid, "pvk-a", false)
	if err == nil {
		if info, _ := pve.ParseUPID(string(upid)); info.Type != "qmdelsnapshot" {
			t.Errorf("delete UPID %s", upid)
		}
	}
	mustWait(ctx, t, c, "DeleteSnapshot pvk-a", upid, err)
	list = snapshots(ctx, t, c, node, vmid)
	if b, ok := list.Find("pvk-b"); !ok || b.Parent != "" || len(list.Items) != 1 || list.Current != "pvk-b" {
		t.Errorf("after deleting the parent: %+v", list)
	}
	upid, err = c.DeleteSnapshot(ctx, node, vmid, "pvk-b", false)
	mustWait(ctx, t, c, "DeleteSnapshot pvk-b", upid, err)
	if list := snapshots(ctx, t, c, node, vmid); len(list.Items) != 0 || list.Current != "" {
		t.Errorf("after deleting all: %+v", list)
	}
	upid, err = c.DeleteSnapshot(ctx, node, vmid, "pvk-b", false)
	if err == nil {
		_, err = c.WaitTask(ctx, upid)
	}
	if !errors.Is(err, pve.ErrNotFound) {
		t.Errorf("deleting it again: err = %v, want ErrNotFound", err)
	}
	upid, err = c.RollbackSnapshot(ctx, node, vmid, "pvk-b", false)
	if err == nil {
		_, err = c.WaitTask(ctx, upid)
	}
	if !errors.Is(err, pve.ErrNotFound) {
		t.Errorf("rolling back to a missing snapshot: err = %v, want ErrNotFound", err)
	}
	if _, err := c.Snapshots(ctx, node, missingVMID); !errors.Is(err, pve.ErrNotFound) {
		t.Errorf("Snapshots(missing guest): err = %v, want ErrNotFound", err)
	}
}

// A rollback stops a running guest hard; it runs afterwards with start or
// when the snapshot holds its RAM.
func (s *Suite) TestSnapshotRollbackOfRunningGuest(t *testing.T) {
	env, c, ctx := s.setup(t)
	node := s.scratch(ctx, t, c, env)
	vmid := env.ScratchVMID
	upid, err := c.StartVM(ctx, node, vmid)
	mustWait(ctx, t, c, "StartVM", upid, err)

	mustSnapshot(ctx, t, c, node, pve.SnapshotRequest{VMID: vmid, Name: "pvk-disk"})
	if list := snapshots(ctx, t, c, node, vmid); !list.Running {
		t.Errorf("list says the guest is not running: %+v", list)
	}
	upid, err = c.RollbackSnapshot(ctx, node, vmid, "pvk-disk", false)
	mustWait(ctx, t, c, "RollbackSnapshot", upid, err)
	if st := powerState(ctx, t, c, node, vmid); st != "stopped" {
		t.Errorf("after a rollback without start: %s, want stopped", st)
	}
	upid, err = c.StartVM(ctx, node, vmid)
	mustWait(ctx, t, c, "StartVM", upid, err)
	upid, err = c.RollbackSnapshot(ctx, node, vmid, "pvk-disk", true)
	mustWait(ctx, t, c, "RollbackSnapshot start", upid, err)
	if st := powerState(ctx, t, c, node, vmid); st != "running" {
		t.Errorf("after a rollback with start: %s, want running", st)
	}

	mustSnapshot(ctx, t, c, node, pve.SnapshotRequest{VMID: vmid, Name: "pvk-ram", VMState: true})
	if ram, ok := snapshots(ctx, t, c, node, vmid).Find("pvk-ram"); !ok || !ram.VMState || ram.Parent != "pvk-disk" {
		t.Fatalf("RAM snapshot = %+v", ram)
	}
	upid, err = c.RollbackSnapshot(ctx, node, vmid, "pvk-ram", false)
	mustWait(ctx, t, c, "RollbackSnapshot pvk-ram", upid, err)
	if st := powerState(ctx, t, c, node, vmid); st != "running" {
		t.Errorf("after a rollback to a RAM snapshot: %s, want running", st)
	}

	// RAM is saved only from a running guest
	upid, err = c.StopVM(ctx, node, vmid)
	mustWait(ctx, t, c, "StopVM", upid, err)
	mustSnapshot(ctx, t, c, node, pve.SnapshotRequest{VMID: vmid, Name: "pvk-off", VMState: true})
	if off, _ := snapshots(ctx, t, c, node, vmid).Find("pvk-off"); off.VMState {
		t.Errorf("a stopped guest's snapshot says it holds RAM: %+v", off)
	}
}

// A locked guest refuses every snapshot task with a *LockedError naming
// the lock, and nothing changes.
func (s *Suite) TestSnapshotOfLockedGuest(t *testing.T) {
	env, c, ctx := s.setup(t)
	f := needFaults(t, env)
	node := s.scratch(ctx, t, c, env)
	vmid := env.ScratchVMID
	mustSnapshot(ctx, t, c, node, pve.SnapshotRequest{VMID: vmid, Name: "pvk-keep"})
	must(t, f.SetLock(vmid, "backup"))
	t.Cleanup(func() { _ = f.SetLock(vmid, "") })
	digest := mustConfig(ctx, t, c, node, vmid).Digest()
	for name, call := range map[string]func() (pvekeep.UPID, error){
		"create": func() (pvekeep.UPID, error) {
			return c.CreateSnapshot(ctx, node, pve.SnapshotRequest{VMID: vmid, Name: "pvk-new"})
		},
		"rollback": func() (pvekeep.UPID, error) { return c.RollbackSnapshot(ctx, node, vmid, "pvk-keep", true) },
		"delete":   func() (pvekeep.UPID, error) { return c.DeleteSnapshot(ctx, node, vmid, "pvk-keep", false) },
	} {
		upid, err := call()
		if err == nil {
			_, err = c.WaitTask(ctx, upid)
		}
		var le *pve.LockedError
		if !errors.As(err, &le) || le.Lock != "backup" || le.VMID != vmid {
			t.Errorf("%s on a guest locked for backup: err = %v, want a LockedError (backup)", name, err)
		}
	}
	if err := c.SetSnapshotDescription(ctx, node, vmid, "pvk-keep", "x"); !errors.Is(err, pve.ErrLocked) {
		t.Errorf("SetSnapshotDescription on a locked guest: err = %v, want ErrLocked", err)
	}
	list := snapshots(ctx, t, c, node, vmid)
	if len(list.Items) != 1 || list.Items[0].Name != "pvk-keep" || list.Items[0].Description != "" {
		t.Errorf("snapshots changed: %+v", list)
	}
	if cfg := mustConfig(ctx, t, c, node, vmid); cfg.Digest() != digest || cfg.Lock() != "backup" {
		t.Errorf("config changed: lock %q", cfg.Lock())
	}
}

// On a storage that rolls back only to the newest snapshot (ZFS), an
// older target is ErrNotNewestSnapshot and nothing changes, the guest
// still running; once the newer one is gone it works.
func (s *Suite) TestSnapshotRollbackNewestOnly(t *testing.T) {
	env, c, ctx := s.setup(t)
	node := s.scratch(ctx, t, c, env)
	vmid := env.ScratchVMID
	d, err := pve.ParseDrive(mustConfig(ctx, t, c, node, vmid)["scsi0"])
	if err != nil {
		t.Fatalf("scratch scsi0: %v", err)
	}
	storage, _, _ := strings.Cut(d.Volume(), ":")
	if no, ok := env.Faults.(NewestOnlyRollback); ok {
		must(t, no.SetNewestOnlyRollback(storage, true))
		t.Cleanup(func() { _ = no.SetNewestOnlyRollback(storage, false) })
	} else {
		stores, err := c.Storages(ctx, node)
		if err != nil {
			t.Fatalf("Storages: %v", err)
		}
		zfs := false
		for _, st := range stores {
			zfs = zfs || (st.ID == storage && st.Type == "zfspool")
		}
		if !zfs {
			t.Skipf("storage %s rolls back to any snapshot (not zfspool)", storage)
		}
	}
	mustSnapshot(ctx, t, c, node, pve.SnapshotRequest{VMID: vmid, Name: "pvk-old"})
	mustSnapshot(ctx, t, c, node, pve.SnapshotRequest{VMID: vmid, Name: "pvk-new"})
	upid, err := c.StartVM(ctx, node, vmid)
	mustWait(ctx, t, c, "StartVM", upid, err)
	digest := mustConfig(ctx, t, c, node, vmid).Digest()

	upid, err = c.RollbackSnapshot(ctx, node, vmid, "pvk-old", true)
	if err == nil {
		_, err = c.WaitTask(ctx, upid)
	}
	var te *pve.TaskError
	if !errors.Is(err, pve.ErrNotNewestSnapshot) || !errors.As(err, &te) ||
		!strings.HasPrefix(te.ExitStatus, "can't rollback, 'pvk-old' is not most recent snapshot on '"+storage+":") {
		t.Fatalf("rollback to the older snapshot: err = %v, want ErrNotNewestSnapshot with ZFS's text", err)
	}
	if cfg := mustConfig(ctx, t, c, node, vmid); cfg.Digest() != digest || cfg.Lock() != "" {
		t.Errorf("the refused rollback changed the config (lock %q)", cfg.Lock())
	}
	if st := powerState(ctx, t, c, node, vmid); st != "running" {
		t.Errorf("the refused rollback left the guest %s", st)
	}

	upid, err = c.DeleteSnapshot(ctx, node, vmid, "pvk-new", false)
	mustWait(ctx, t, c, "DeleteSnapshot pvk-new", upid, err)
	upid, err = c.RollbackSnapshot(ctx, node, vmid, "pvk-old", true)
	mustWait(ctx, t, c, "RollbackSnapshot pvk-old", upid, err)
	if st := powerState(ctx, t, c, node, vmid); st != "running" {
		t.Errorf("after rollback with start: %s", st)
	}
}
