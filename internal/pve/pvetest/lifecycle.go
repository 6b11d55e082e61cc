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

// The guest-lifecycle tests (restore, config, resize, clone, delete,
// power) never touch Env.VMID: each clones Env.Template into
// Env.ScratchVMID, works on that copy and destroys it again. Without a
// template and a scratch id they skip.

// scratch full-clones the template into the scratch id, waits for it and
// registers its removal. It returns the node the copy is on. A scratch id
// that is taken is a failure, never deleted: it may be someone's guest.
func (s *Suite) scratch(ctx context.Context, t *testing.T, c *pve.Client, env Env) string {
	t.Helper()
	if env.Template == 0 || env.ScratchVMID == 0 {
		t.Skip("needs Env.Template and Env.ScratchVMID")
	}
	if ref, err := c.FindVM(ctx, env.ScratchVMID); err == nil {
		t.Fatalf("scratch vmid %d is taken (on %s): free it or pick another", env.ScratchVMID, ref.Node)
	}
	node := findNode(ctx, t, c, env.Template)
	upid, err := c.CloneVM(ctx, node, pve.CloneRequest{Template: env.Template, NewID: env.ScratchVMID,
		Name: "pvekeep-suite", Full: true, Storage: env.ImageStorage})
	if err != nil {
		t.Fatalf("CloneVM: %v", err)
	}
	t.Cleanup(func() { destroy(t, c, node, env.ScratchVMID) })
	if _, err := c.WaitTask(ctx, upid); err != nil {
		t.Fatalf("wait for clone: %v", err)
	}
	return node
}

// destroy stops and purges a guest the suite made; a missing one is fine.
func destroy(t *testing.T, c *pve.Client, node string, vmid pvekeep.VMID) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if upid, err := c.StopVM(ctx, node, vmid); err == nil {
		_ = waitIf(ctx, c, upid)
	}
	upid, err := c.DeleteVM(ctx, node, vmid, true)
	if err == nil {
		err = waitIf(ctx, c, upid)
	}
	if err != nil && !errors.Is(err, pve.ErrNotFound) {
		t.Logf("cleanup: delete vm %d: %v", vmid, err)
	}
}

// waitIf waits for upid unless the call had nothing to do ("").
func waitIf(ctx context.Context, c *pve.Client, upid pvekeep.UPID) error {
	if upid == "" {
		return nil
	}
	_, err := c.WaitTask(ctx, upid)
	return err
}

func mustWait(ctx context.Context, t *testing.T, c *pve.Client, what string, upid pvekeep.UPID, err error) {
	t.Helper()
	if err == nil {
		err = waitIf(ctx, c, upid)
	}
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func mustConfig(ctx context.Context, t *testing.T, c *pve.Client, node string, vmid pvekeep.VMID) pve.VMConfig {
	t.Helper()
	cfg, err := c.VMConfig(ctx, node, vmid)
	if err != nil {
		t.Fatalf("VMConfig: %v", err)
	}
	return cfg
}

func powerState(ctx context.Context, t *testing.T, c *pve.Client, node string, vmid pvekeep.VMID) string {
	t.Helper()
	st, err := c.VMStatus(ctx, node, vmid)
	if err != nil {
		t.Fatalf("VMStatus: %v", err)
	}
	return st.Status
}

// Clone a template into a new id; a second clone onto it is
// ErrAlreadyExists; delete with purge; deleting again is ErrNotFound.
func (s *Suite) TestCloneAndDelete(t *testing.T) {
	env, c, ctx := s.setup(t)
	node := s.scratch(ctx, t, c, env)
	ref, err := c.FindVM(ctx, env.ScratchVMID)
	if err != nil || ref.Template || ref.Type != "qemu" || ref.Node != node {
		t.Fatalf("FindVM(clone) = %+v, %v", ref, err)
	}
	cfg := mustConfig(ctx, t, c, node, env.ScratchVMID)
	if cfg["name"] != "pvekeep-suite" || cfg["template"] == "1" || cfg.Lock() != "" {
		t.Errorf("clone config = %v", cfg)
	}
	if d, err := pve.ParseDrive(cfg["scsi0"]); err != nil || d.Size() <= 0 ||
		!strings.Contains(d.Volume(), "vm-"+strconv.Itoa(int(env.ScratchVMID))+"-disk-") {
		t.Errorf("clone scsi0 = %q (%v), want its own full copy", cfg["scsi0"], err)
	}
	_, err = c.CloneVM(ctx, findNode(ctx, t, c, env.Template), pve.CloneRequest{Template: env.Template, NewID: env.ScratchVMID, Full: true})
	if !errors.Is(err, pve.ErrAlreadyExists) {
		t.Errorf("clone onto a taken id: err = %v, want ErrAlreadyExists", err)
	}

	upid, err := c.DeleteVM(ctx, node, env.ScratchVMID, true)
	mustWait(ctx, t, c, "DeleteVM", upid, err)
	if _, err := c.FindVM(ctx, env.ScratchVMID); !errors.Is(err, pve.ErrNotFound) {
		t.Errorf("FindVM after delete: err = %v, want ErrNotFound", err)
	}
	if _, err := c.DeleteVM(ctx, node, env.ScratchVMID, true); !errors.Is(err, pve.ErrNotFound) {
		t.Errorf("delete again: err = %v, want ErrNotFound", err)
	}
}

// Deleting a guest that is not there is ErrNotFound (callers treat it as
// done). Needs no scratch guest.
func (s *Suite) TestDeleteMissingVM(t *testing.T) {
	env, c, ctx := s.setup(t)
	node := findNode(ctx, t, c, env.VMID)
	if _, err := c.DeleteVM(ctx, node, missingVMID, true); !errors.Is(err, pve.ErrNotFound) || errors.Is(err, pve.ErrTransient) {
		t.Errorf("DeleteVM(missing) err = %v, want ErrNotFound", err)
	}
}

// Stop and start are idempotent: a second one is "" and nil, no task.
func (s *Suite) TestStopStartIdempotent(t *testing.T) {
	env, c, ctx := s.setup(t)
	node := s.scratch(ctx, t, c, env)
	vmid := env.ScratchVMID
	if upid, err := c.StopVM(ctx, node, vmid); err != nil || upid != "" {
		t.Errorf("StopVM of a stopped clone = %q, %v; want no task", upid, err)
	}
	upid, err := c.StartVM(ctx, node, vmid)
	if err == nil && upid == "" {
		t.Fatal("StartVM of a stopped guest started no task")
	}
	mustWait(ctx, t, c, "StartVM", upid, err)
	if st := powerState(ctx, t, c, node, vmid); st != "running" {
		t.Fatalf("after start: %s", st)
	}
	if upid, err := c.StartVM(ctx, node, vmid); err != nil || upid != "" {
		t.Errorf("second StartVM = %q, %v; want no task", upid, err)
	}
	upid, err = c.StopVM(ctx, node, vmid)
	if err == nil && upid == "" {
		t.Fatal("StopVM of a running guest started no task")
	}
	mustWait(ctx, t, c, "StopVM", upid, err)
	if st := powerState(ctx, t, c, node, vmid); st != "stopped" {
		t.Fatalf("after stop: %s", st)
	}
	if upid, err := c.StopVM(ctx, node, vmid); err != nil || upid != "" {
		t.Errorf("second StopVM = %q, %v; want no task", upid, err)
	}
	if upid, err := c.ShutdownVM(ctx, node, vmid, 30*time.Second); err != nil || upid != "" {
		t.Errorf("ShutdownVM of a stopped guest = %q, %v; want no task", upid, err)
	}
}

// Restore: refused while the guest runs; once stopped, the config comes
// back from the archive (with the non-disk options of the call on top),
// and the task log carries restore progress.
func (s *Suite) TestRestore(t *testing.T) {
	env, c, ctx := s.setup(t)
	node := s.scratch(ctx, t, c, env)
	vmid := env.ScratchVMID
	before := mustConfig(ctx, t, c, node, vmid)

	upid, err := c.Vzdump(ctx, node, pve.VzdumpRequest{VMID: vmid, Storage: env.Storage, Notes: "pvetest restore"})
	if err != nil {
		t.Fatalf("Vzdump: %v", err)
	}
	volid := waitBackup(ctx, t, c, env, upid)

	cores, _ := strconv.Atoi(before["cores"])
	changed := strconv.Itoa(max(cores, 1) + 1)
	if err := c.UpdateConfig(ctx, node, vmid, pve.ConfigChange{Set: map[string]string{"cores": changed}}); err != nil {
		t.Fatalf("UpdateConfig: %v", err)
	}
	upid, err = c.StartVM(ctx, node, vmid)
	mustWait(ctx, t, c, "StartVM", upid, err)

	req := pve.RestoreRequest{VMID: vmid, Archive: volid, Force: true, Extra: map[string]string{"name": "pvekeep-restored"}}
	if _, err := c.RestoreVM(ctx, node, req); !errors.Is(err, pve.ErrRunning) {
		t.Fatalf("RestoreVM of a running guest: err = %v, want ErrRunning", err)
	}
	upid, err = c.StopVM(ctx, node, vmid)
	mustWait(ctx, t, c, "StopVM", upid, err)

	upid, err = c.RestoreVM(ctx, node, req)
	if err != nil {
		t.Fatalf("RestoreVM: %v", err)
	}
	if info, err := pve.ParseUPID(string(upid)); err != nil || info.Type != "qmrestore" || info.ID != strconv.Itoa(int(vmid)) {
		t.Errorf("restore UPID %s = %+v, %v", upid, info, err)
	}
	if _, err := c.WaitTask(ctx, upid); err != nil {
		t.Fatalf("wait for restore: %v", err)
	}
	lines, err := c.TaskLog(ctx, upid, 0)
	if err != nil {
		t.Fatalf("TaskLog: %v", err)
	}
	progress := 0
	for _, l := range lines {
		if _, ok := pve.ParseRestoreProgress(l); ok {
			progress++
		}
	}
	if progress == 0 {
		t.Errorf("no progress line in the restore log:\n%s", strings.Join(lines, "\n"))
	}

	after := mustConfig(ctx, t, c, node, vmid)
	if after["cores"] != before["cores"] || after["memory"] != before["memory"] {
		t.Errorf("restored cores/memory = %s/%s, want the archive's %s/%s", after["cores"], after["memory"], before["cores"], before["memory"])
	}
	if after["name"] != "pvekeep-restored" {
		t.Errorf("restored name = %q, want the call's override", after["name"])
	}
	if after.Lock() != "" {
		t.Errorf("restored guest still locked (%s)", after.Lock())
	}
	d, err := pve.ParseDrive(after["scsi0"])
	if b, _ := pve.ParseDrive(before["scsi0"]); err != nil || d.Size() != b.Size() {
		t.Errorf("restored scsi0 = %q (%v), want the size of %q", after["scsi0"], err, before["scsi0"])
	}
	if st := powerState(ctx, t, c, node, vmid); st != "stopped" {
		t.Errorf("restored guest is %s, want stopped (no start was asked)", st)
	}
}

// A failed restore is a *TaskError and leaves no lock behind.
func (s *Suite) TestRestoreFailedTask(t *testing.T) {
	env, c, ctx := s.setup(t)
	f := needFaults(t, env)
	node := s.scratch(ctx, t, c, env)
	vmid := env.ScratchVMID
	upid, err := c.Vzdump(ctx, node, pve.VzdumpRequest{VMID: vmid, Storage: env.Storage})
	if err != nil {
		t.Fatalf("Vzdump: %v", err)
	}
	volid := waitBackup(ctx, t, c, env, upid)
	must(t, f.FailTask("qmrestore", vmid, "command 'vma extract' failed: exit code 133"))
	upid, err = c.RestoreVM(ctx, node, pve.RestoreRequest{VMID: vmid, Archive: volid, Force: true})
	if err != nil {
		t.Fatalf("RestoreVM: %v", err)
	}
	_, err = c.WaitTask(ctx, upid)
	var te *pve.TaskError
	if !errors.As(err, &te) || !strings.Contains(te.ExitStatus, "vma extract") {
		t.Fatalf("WaitTask err = %v, want the injected *TaskError", err)
	}
	if cfg := mustConfig(ctx, t, c, node, vmid); cfg.Lock() != "" {
		t.Errorf("failed restore left lock %q", cfg.Lock())
	}
}

// A synchronous config update applies; one sent with a stale digest is
// ErrDigestMismatch and changes nothing.
func (s *Suite) TestConfigDigest(t *testing.T) {
	env, c, ctx := s.setup(t)
	node := s.scratch(ctx, t, c, env)
	vmid := env.ScratchVMID
	stale := mustConfig(ctx, t, c, node, vmid)
	if err := c.UpdateConfig(ctx, node, vmid, pve.ConfigChange{Set: map[string]string{"cores": "2"}, Digest: stale.Digest()}); err != nil {
		t.Fatalf("UpdateConfig with the current digest: %v", err)
	}
	err := c.UpdateConfig(ctx, node, vmid, pve.ConfigChange{Set: map[string]string{"cores": "3"}, Digest: stale.Digest()})
	if !errors.Is(err, pve.ErrDigestMismatch) || errors.Is(err, pve.ErrTransient) {
		t.Fatalf("UpdateConfig with a stale digest: err = %v, want ErrDigestMismatch", err)
	}
	if cfg := mustConfig(ctx, t, c, node, vmid); cfg["cores"] != "2" || cfg.Digest() == stale.Digest() {
		t.Errorf("config after = cores %s digest %s", cfg["cores"], cfg.Digest())
	}
	if err := c.UpdateConfig(ctx, node, vmid, pve.ConfigChange{Delete: []string{"cores"}}); err != nil {
		t.Fatalf("UpdateConfig delete: %v", err)
	}
	if cfg := mustConfig(ctx, t, c, node, vmid); cfg["cores"] != "" {
		t.Errorf("cores after delete = %q", cfg["cores"])
	}
}

// A new disk from "storage:GiB" with limits, grown absolutely and
// relatively; shrinking is ErrShrink; limits rewritten on the whole drive.
func (s *Suite) TestNewDiskResizeAndLimits(t *testing.T) {
	env, c, ctx := s.setup(t)
	if env.ImageStorage == "" {
		t.Skip("needs Env.ImageStorage")
	}
	node := s.scratch(ctx, t, c, env)
	vmid := env.ScratchVMID
	cfg := mustConfig(ctx, t, c, node, vmid)
	if cfg["scsi1"] != "" {
		t.Fatalf("the clone already has scsi1: %s", cfg["scsi1"])
	}
	limits := pve.DiskLimits{MBpsRd: 100, MBpsWr: 50, IOPSRd: 1000, IOPSWr: 500}
	nd := pve.NewDiskDrive(env.ImageStorage, 1)
	nd.SetLimits(limits)
	if err := c.UpdateConfig(ctx, node, vmid, pve.ConfigChange{Set: map[string]string{"scsi1": nd.String()}, Digest: cfg.Digest()}); err != nil {
		t.Fatalf("add scsi1: %v", err)
	}
	drive := func() pve.Drive {
		t.Helper()
		d, err := pve.ParseDrive(mustConfig(ctx, t, c, node, vmid)["scsi1"])
		if err != nil {
			t.Fatalf("scsi1: %v", err)
		}
		return d
	}
	d := drive()
	if d.Storage() != env.ImageStorage || d.Volume() == nd.Volume() || d.Size() != 1<<30 || d.Limits() != limits {
		t.Fatalf("new scsi1 = %q (limits %+v), want a 1G volume on %s with %+v", d, d.Limits(), env.ImageStorage, limits)
	}

	for _, step := range []struct {
		size string
		want int64
	}{{pve.FormatSizeGiB(2), 2 << 30}, {"+1G", 3 << 30}, {"3G", 3 << 30}} {
		upid, err := c.ResizeDisk(ctx, node, vmid, "scsi1", step.size)
		mustWait(ctx, t, c, "ResizeDisk "+step.size, upid, err)
		if got := drive().Size(); got != step.want {
			t.Errorf("after resize to %s size = %d, want %d", step.size, got, step.want)
		}
	}
	upid, err := c.ResizeDisk(ctx, node, vmid, "scsi1", "1G")
	if err == nil {
		err = waitIf(ctx, c, upid)
	}
	if !errors.Is(err, pve.ErrShrink) {
		t.Errorf("shrink: err = %v, want ErrShrink", err)
	}
	upid, err = c.ResizeDisk(ctx, node, vmid, "scsi7", "1G")
	if err == nil {
		err = waitIf(ctx, c, upid)
	}
	if !errors.Is(err, pve.ErrNotFound) {
		t.Errorf("resize of a missing disk: err = %v, want ErrNotFound", err)
	}

	d = drive()
	d.SetLimits(pve.DiskLimits{MBpsRd: 20})
	if err := c.UpdateConfig(ctx, node, vmid, pve.ConfigChange{Set: map[string]string{"scsi1": d.String()}}); err != nil {
		t.Fatalf("rewrite limits: %v", err)
	}
	if got := drive(); got.Limits() != (pve.DiskLimits{MBpsRd: 20}) || got.Size() != 3<<30 {
		t.Errorf("after rewrite scsi1 = %q", got)
	}
}

// On a running guest a change that cannot be hotplugged waits in pending:
// VMConfig shows it, VMConfigCurrent not; stopping applies it.
func (s *Suite) TestPendingOnRunningVM(t *testing.T) {
	env, c, ctx := s.setup(t)
	node := s.scratch(ctx, t, c, env)
	vmid := env.ScratchVMID
	upid, err := c.StartVM(ctx, node, vmid)
	mustWait(ctx, t, c, "StartVM", upid, err)
	cur, err := c.VMConfigCurrent(ctx, node, vmid)
	if err != nil {
		t.Fatalf("VMConfigCurrent: %v", err)
	}
	old := cur["cores"]
	n, _ := strconv.Atoi(old)
	want := strconv.Itoa(max(n, 1) + 1)
	if err := c.UpdateConfig(ctx, node, vmid, pve.ConfigChange{Set: map[string]string{"cores": want}}); err != nil {
		t.Fatalf("UpdateConfig on a running guest: %v", err)
	}
	items, err := c.Pending(ctx, node, vmid)
	if err != nil {
		t.Fatalf("Pending: %v", err)
	}
	found := false
	for _, it := range pve.PendingChanges(items) {
		if it.Key == "cores" {
			found = true
			if !it.HasPending || it.Pending != want || it.Value != old {
				t.Errorf("pending cores = %+v, want %s → %s", it, old, want)
			}
		}
	}
	if !found {
		t.Fatalf("cores is not pending on a running guest: %+v", items)
	}
	if cur, _ := c.VMConfigCurrent(ctx, node, vmid); cur["cores"] != old {
		t.Errorf("current cores = %q, want still %q", cur["cores"], old)
	}
	if merged := mustConfig(ctx, t, c, node, vmid); merged["cores"] != want {
		t.Errorf("pending-merged cores = %q, want %q", merged["cores"], want)
	}
	upid, err = c.StopVM(ctx, node, vmid)
	mustWait(ctx, t, c, "StopVM", upid, err)
	items, err = c.Pending(ctx, node, vmid)
	if err != nil {
		t.Fatalf("Pending after stop: %v", err)
	}
	if ch := pve.PendingChanges(items); len(ch) != 0 {
		t.Errorf("still pending after stop: %+v", ch)
	}
	if cur, _ := c.VMConfigCurrent(ctx, node, vmid); cur["cores"] != want {
		t.Errorf("current cores after stop = %q, want %q", cur["cores"], want)
	}
}
