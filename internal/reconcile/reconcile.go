package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/pvekeep/pvekeep/internal/plan"
	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// Step names one reconciliation step; stored in mod_pvekeep_jobs.step.
type Step string

const (
	StepCPURAM           Step = "cpu_ram"
	StepSystemDiskGrow   Step = "system_disk_grow"
	StepSystemDiskLimits Step = "system_disk_limits"
	StepExtraDiskCreate  Step = "extra_disk_create"
	StepExtraDiskGrow    Step = "extra_disk_grow"
	StepExtraDiskLimits  Step = "extra_disk_limits"
	StepNetwork          Step = "network"
	StepStart            Step = "start"
	StepEmail            Step = "email"
	// StepDone follows the last step.
	StepDone Step = "done"
)

// Steps in the order they run.
var Steps = []Step{
	StepCPURAM, StepSystemDiskGrow, StepSystemDiskLimits,
	StepExtraDiskCreate, StepExtraDiskGrow, StepExtraDiskLimits,
	StepNetwork, StepStart, StepEmail,
}

// IsStep reports whether s names a reconciliation step.
func IsStep(s string) bool {
	for _, st := range Steps {
		if string(st) == s {
			return true
		}
	}
	return s == string(StepDone)
}

func next(s Step) Step {
	for i, st := range Steps {
		if st == s && i+1 < len(Steps) {
			return Steps[i+1]
		}
	}
	return StepDone
}

// progress is the job's overall percentage once step s is done: the
// reconciliation is the last fifth of a restore.
func progress(s Step) int {
	for i, st := range Steps {
		if st == s {
			return 80 + (i+1)*20/len(Steps)
		}
	}
	return 100
}

// cluster is what the steps ask of Proxmox.
type cluster interface {
	VMConfig(ctx context.Context, node string, vmid pvekeep.VMID) (pve.VMConfig, error)
	VMStatus(ctx context.Context, node string, vmid pvekeep.VMID) (pve.VMStatus, error)
	UpdateConfig(ctx context.Context, node string, vmid pvekeep.VMID, ch pve.ConfigChange) error
	ResizeDisk(ctx context.Context, node string, vmid pvekeep.VMID, disk, size string) (pvekeep.UPID, error)
	StartVM(ctx context.Context, node string, vmid pvekeep.VMID) (pvekeep.UPID, error)
}

// Journal records progress under the caller's job lease.
type Journal interface {
	// Submitted records the current step's Proxmox task before anything
	// waits on it.
	Submitted(ctx context.Context, upid pvekeep.UPID) error
	// Done records that step is finished and next is the one to run.
	Done(ctx context.Context, step, next Step, pct int) error
	// Await follows a task for a bounded time: done when it stopped, with
	// failure holding Proxmox's message when it did not end well.
	Await(ctx context.Context, upid pvekeep.UPID) (done bool, failure string, err error)
}

// Notifier sends the job's email — "Backup restored", "VM reinstalled"
// or a new VM's welcome — at most once per job even when called again
// after a crash.
type Notifier interface {
	Notify(ctx context.Context) error
}

// Target is the VM and the package it must end at.
type Target struct {
	Node string
	VMID pvekeep.VMID
	VM   plan.VM
	// MACs are the network devices' MACs from before the restore.
	MACs map[string]string
	// KeepPower leaves the VM's power as it is at the start step: a
	// package change of a stopped (say, suspended) VM must not start it.
	KeepPower bool
}

// Outcome says where a Run stopped.
type Outcome struct {
	// Step is the step to run next (StepDone when all are done).
	Step Step
	// Waiting: a Proxmox task of Step is still running.
	Waiting bool
	// Failed holds why a step cannot succeed (Proxmox refused for good);
	// the job fails with it and the panel offers retry and reinstall.
	Failed string
}

// Reconciler runs the steps.
type Reconciler struct {
	logger *slog.Logger
}

// New returns a Reconciler.
func New(logger *slog.Logger) *Reconciler {
	return &Reconciler{logger: logger.With("component", "reconcile")}
}

// Run continues the sequence at from (with upid, the task that step
// already submitted, or "") and goes as far as Proxmox allows now.
func (r *Reconciler) Run(ctx context.Context, c cluster, j Journal, n Notifier, t Target, from Step, upid pvekeep.UPID) (Outcome, error) {
	step := from
	for step != StepDone {
		if upid != "" {
			done, failure, err := j.Await(ctx, upid)
			if err != nil {
				return Outcome{Step: step}, err
			}
			if !done {
				return Outcome{Step: step, Waiting: true}, nil
			}
			if failure != "" {
				// A start that lost a race to another start ends "already
				// running": the goal is reached.
				if step != StepStart || !r.running(ctx, c, t) {
					return Outcome{Step: step, Failed: fmt.Sprintf("%s: %s", step, failure)}, nil
				}
			}
		} else {
			act, err := r.apply(ctx, c, n, t, step)
			if err != nil {
				var pe *permanentError
				if errors.As(err, &pe) {
					return Outcome{Step: step, Failed: fmt.Sprintf("%s: %s", step, pe.msg)}, nil
				}
				return Outcome{Step: step}, fmt.Errorf("reconcile %s of vm %d: %w", step, t.VMID, err)
			}
			if act != "" {
				if err := j.Submitted(ctx, act); err != nil {
					return Outcome{Step: step}, err
				}
				upid = act
				continue // wait on it, then mark the step done
			}
		}
		nxt := next(step)
		if err := j.Done(ctx, step, nxt, progress(step)); err != nil {
			return Outcome{Step: step}, err
		}
		step, upid = nxt, ""
	}
	return Outcome{Step: StepDone}, nil
}

func (r *Reconciler) running(ctx context.Context, c cluster, t Target) bool {
	st, err := c.VMStatus(ctx, t.Node, t.VMID)
	return err == nil && st.Status == "running"
}

// permanentError is Proxmox refusing a step for good.
type permanentError struct{ msg string }

// Refused says whether Proxmox refused err's request for good, with its
// own words: a parameter check (4xx but 401/403) or a die (a 500 with a
// message); never a lock, a busy config lock or a changed digest, which
// a later attempt may pass. Other steps of the VM's life that write to
// Proxmox decide by the same rule as the reconciliation.
func Refused(err error) (string, bool) {
	var p *permanentError
	if errors.As(classify(err), &p) {
		return p.msg, true
	}
	return "", false
}

func (e *permanentError) Error() string { return e.msg }

// apply runs one step's check-and-act. It returns the UPID of a task it
// started, or "" when the step is already done (changed synchronously or
// nothing to change).
func (r *Reconciler) apply(ctx context.Context, c cluster, n Notifier, t Target, step Step) (pvekeep.UPID, error) {
	if step == StepEmail {
		return "", n.Notify(ctx)
	}
	if step == StepStart {
		if t.KeepPower {
			return "", nil
		}
		st, err := c.VMStatus(ctx, t.Node, t.VMID)
		if err != nil {
			return "", classify(err)
		}
		if st.Status == "running" {
			return "", nil
		}
		upid, err := c.StartVM(ctx, t.Node, t.VMID)
		return upid, classify(err)
	}
	cfg, err := c.VMConfig(ctx, t.Node, t.VMID)
	if err != nil {
		return "", classify(err)
	}
	switch step {
	case StepCPURAM:
		return "", r.update(ctx, c, t, cfg, cpuRAM(cfg, t.VM))
	case StepSystemDiskGrow, StepSystemDiskLimits:
		if !t.VM.SystemDiskGiB.Set && !t.VM.SystemLimits.Set {
			return "", nil
		}
		key := systemDisk(cfg, t.VM.SystemDisk)
		if key == "" {
			return "", &permanentError{msg: fmt.Sprintf("the VM has no system disk (%s, or a disk in its boot order)", t.VM.SystemDisk)}
		}
		if step == StepSystemDiskGrow {
			return r.grow(ctx, c, t, cfg, key, t.VM.SystemDiskGiB)
		}
		return "", r.limits(ctx, c, t, cfg, key, t.VM.SystemLimits)
	case StepExtraDiskCreate:
		if !t.VM.ExtraDiskGiB.Set || t.VM.ExtraDiskGiB.Value == 0 || cfg[t.VM.ExtraDisk] != "" {
			return "", nil
		}
		// A restore from a backup without the extra disk leaves the VM's
		// own extra disk detached as unusedN, data and all: put it back
		// rather than hand the customer an empty one.
		if key, vol := detachedDisk(cfg, t); key != "" {
			r.logger.Info("reattach detached disk", "vmid", t.VMID, "volume", vol, "as", t.VM.ExtraDisk)
			return "", r.update(ctx, c, t, cfg, map[string]string{t.VM.ExtraDisk: vol})
		}
		d := pve.NewDiskDrive(t.VM.DiskStorage, int64(t.VM.ExtraDiskGiB.Value))
		return "", r.update(ctx, c, t, cfg, map[string]string{t.VM.ExtraDisk: d.String()})
	case StepExtraDiskGrow:
		if cfg[t.VM.ExtraDisk] == "" {
			return "", nil
		}
		return r.grow(ctx, c, t, cfg, t.VM.ExtraDisk, t.VM.ExtraDiskGiB)
	case StepExtraDiskLimits:
		if cfg[t.VM.ExtraDisk] == "" {
			return "", nil
		}
		return "", r.limits(ctx, c, t, cfg, t.VM.ExtraDisk, t.VM.ExtraLimits)
	case StepNetwork:
		set, err := network(cfg, t)
		if err != nil {
			return "", err
		}
		return "", r.update(ctx, c, t, cfg, set)
	default:
		return "", fmt.Errorf("unknown step %q", step)
	}
}

// update writes changed keys, guarded by the config digest so that a
// concurrent change by someone else is noticed rather than overwritten.
func (r *Reconciler) update(ctx context.Context, c cluster, t Target, cfg pve.VMConfig, set map[string]string) error {
	if len(set) == 0 {
		return nil
	}
	r.logger.Info("apply package", "vmid", t.VMID, "node", t.Node, "set", set)
	return classify(c.UpdateConfig(ctx, t.Node, t.VMID, pve.ConfigChange{Set: set, Digest: cfg.Digest()}))
}

// systemDisk is the drive the VM boots from: the package's key when the VM
// has it (scsi0), else the first disk of `boot: order=…`, else the legacy
// `bootdisk`. VMs installed from other templates boot from virtio0 or sata0.
func systemDisk(cfg pve.VMConfig, want string) string {
	isDisk := func(k string) bool {
		if !pve.IsDriveKey(k) || cfg[k] == "" {
			return false
		}
		d, err := pve.ParseDrive(cfg[k])
		return err == nil && !d.IsCDROM()
	}
	if isDisk(want) {
		return want
	}
	if order, ok := strings.CutPrefix(cfg["boot"], "order="); ok {
		for _, k := range strings.Split(order, ";") {
			if isDisk(k) {
				return k
			}
		}
	}
	if isDisk(cfg["bootdisk"]) {
		return cfg["bootdisk"]
	}
	return ""
}

// detachedDisk finds an unusedN volume of this VM on the package's disk
// storage that can serve as the extra disk again. One elsewhere is left
// alone: attaching a disk from another storage is the provider's call.
func detachedDisk(cfg pve.VMConfig, t Target) (key, volume string) {
	prefix := fmt.Sprintf("vm-%d-disk-", t.VMID)
	for i := 0; i < 256; i++ {
		k := fmt.Sprintf("unused%d", i)
		v := cfg[k]
		if v == "" {
			continue
		}
		storage, name, ok := strings.Cut(v, ":")
		if ok && strings.HasPrefix(name, prefix) && storage == t.VM.DiskStorage {
			return k, v
		}
	}
	return "", ""
}

// cpuRAM is step 1: cores (one socket, so cores are the vCPUs the package
// sells) and memory, with the balloon kept below the memory and a vcpus
// setting no higher than the cores (PVE refuses more).
func cpuRAM(cfg pve.VMConfig, vm plan.VM) map[string]string {
	set := map[string]string{}
	if vm.Cores.Set {
		if cfg["cores"] != strconv.Itoa(vm.Cores.Value) {
			set["cores"] = strconv.Itoa(vm.Cores.Value)
		}
		if s := cfg["sockets"]; s != "" && s != "1" {
			set["sockets"] = "1"
		}
		if v, err := strconv.Atoi(cfg["vcpus"]); err == nil && v > vm.Cores.Value {
			set["vcpus"] = strconv.Itoa(vm.Cores.Value)
		}
	}
	if vm.MemoryMiB.Set {
		mem := strconv.Itoa(vm.MemoryMiB.Value)
		if cfg["memory"] != mem {
			set["memory"] = mem
		}
		if b, err := strconv.Atoi(cfg["balloon"]); err == nil && b > vm.MemoryMiB.Value {
			set["balloon"] = mem
		}
	}
	return set
}

// grow resizes a disk up to the package's size; never down.
func (r *Reconciler) grow(ctx context.Context, c cluster, t Target, cfg pve.VMConfig, key string, gib plan.Managed[int]) (pvekeep.UPID, error) {
	if !gib.Set || gib.Value == 0 || cfg[key] == "" {
		return "", nil
	}
	d, err := pve.ParseDrive(cfg[key])
	if err != nil {
		return "", &permanentError{msg: fmt.Sprintf("cannot read drive %s: %v", key, err)}
	}
	want := int64(gib.Value) << 30
	switch have := d.Size(); {
	case have == want:
		return "", nil
	case have > want:
		r.logger.Warn("disk larger than the package; disks only grow", "vmid", t.VMID, "disk", key, "have", have, "want", want)
		return "", nil
	}
	r.logger.Info("grow disk", "vmid", t.VMID, "disk", key, "to_gib", gib.Value)
	upid, err := c.ResizeDisk(ctx, t.Node, t.VMID, key, pve.FormatSizeGiB(int64(gib.Value)))
	return upid, classify(err)
}

// limits rewrites a drive's bandwidth and IOPS options (the whole drive
// string, as Proxmox takes them).
func (r *Reconciler) limits(ctx context.Context, c cluster, t Target, cfg pve.VMConfig, key string, l plan.Managed[plan.Limits]) error {
	if !l.Set || cfg[key] == "" {
		return nil
	}
	d, err := pve.ParseDrive(cfg[key])
	if err != nil {
		return &permanentError{msg: fmt.Sprintf("cannot read drive %s: %v", key, err)}
	}
	d.SetLimits(pve.DiskLimits{
		MBpsRd: float64(l.Value.ReadMBs), MBpsWr: float64(l.Value.WriteMBs),
		IOPSRd: int64(l.Value.ReadIOPS), IOPSWr: int64(l.Value.WriteIOPS),
	})
	if d.String() == cfg[key] {
		return nil
	}
	return r.update(ctx, c, t, cfg, map[string]string{key: d.String()})
}

// classify marks Proxmox's definitive refusals as permanent: a 4xx, and
// its generic 500 with a message (a storage that does not exist, a full
// pool), which no later tick would change. Worth a later tick: Proxmox
// unreachable or behind a failing proxy, the VM locked for a moment, its
// config lock busy, a config changed under us (the next tick re-reads).
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pve.ErrShrink) {
		return &permanentError{msg: "shrinking disks is not supported"}
	}
	if errors.Is(err, pve.ErrDigestMismatch) || errors.Is(err, pve.ErrLocked) || errors.Is(err, pve.ErrBusy) {
		return err
	}
	var he *pve.HTTPError
	if !errors.As(err, &he) || he.Code == 401 || he.Code == 403 {
		return err
	}
	if he.Code >= 400 && he.Code < 500 || he.Code == 500 && he.Message != "" {
		// Proxmox's own words only: never our method, path or URL.
		return &permanentError{msg: strings.TrimSpace(he.Message)}
	}
	return err
}
