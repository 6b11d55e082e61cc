package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/pvekeep/pvekeep/internal/plan"
	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// fakeVM is an in-memory VM whose tasks finish at once.
type fakeVM struct {
	cfg     pve.VMConfig
	running bool
	calls   []string // every mutating call, in order
	failOn  string   // a call that Proxmox refuses
	tasks   map[pvekeep.UPID]string
	n       int
}

func newFakeVM() *fakeVM {
	return &fakeVM{
		cfg: pve.VMConfig{
			"cores": "1", "memory": "1024", "digest": "d0",
			"scsi0": "local-lvm:vm-100-disk-0,iothread=1,size=10G",
			"net0":  "virtio=BC:24:11:00:00:99,bridge=vmbr0,firewall=1",
		},
		tasks: map[pvekeep.UPID]string{},
	}
}

func (f *fakeVM) task(kind string) pvekeep.UPID {
	f.n++
	u := pvekeep.UPID(fmt.Sprintf("UPID:pve1:%08X:00000001:00000001:%s:100:root@pam:", f.n, kind))
	f.tasks[u] = "OK"
	return u
}

func (f *fakeVM) VMConfig(context.Context, string, pvekeep.VMID) (pve.VMConfig, error) {
	out := pve.VMConfig{}
	for k, v := range f.cfg {
		out[k] = v
	}
	return out, nil
}

func (f *fakeVM) VMStatus(context.Context, string, pvekeep.VMID) (pve.VMStatus, error) {
	if f.running {
		return pve.VMStatus{Status: "running"}, nil
	}
	return pve.VMStatus{Status: "stopped"}, nil
}

func (f *fakeVM) UpdateConfig(_ context.Context, _ string, _ pvekeep.VMID, ch pve.ConfigChange) error {
	if ch.Digest != f.cfg["digest"] {
		return pve.ErrDigestMismatch
	}
	keys := make([]string, 0, len(ch.Set))
	for k, v := range ch.Set {
		if f.failOn == "update "+k {
			return &pve.HTTPError{Code: 400, Message: "invalid " + k}
		}
		if strings.HasPrefix(k, "scsi") && !strings.Contains(v, "vm-100") {
			// "<storage>:<GiB>" allocates a volume, as PVE does.
			v = strings.Replace(v, ":", ":vm-100-disk-1,size=", 1) + "G"
		}
		f.cfg[k] = v
		keys = append(keys, k)
	}
	f.cfg["digest"] += "'"
	f.calls = append(f.calls, "update "+strings.Join(keys, ","))
	return nil
}

func (f *fakeVM) ResizeDisk(_ context.Context, _ string, _ pvekeep.VMID, disk, size string) (pvekeep.UPID, error) {
	d, err := pve.ParseDrive(f.cfg[disk])
	if err != nil {
		return "", err
	}
	n, err := pve.ParseSize(size)
	if err != nil {
		return "", err
	}
	d.SetSize(n)
	f.cfg[disk] = d.String()
	f.calls = append(f.calls, "resize "+disk+" "+size)
	return f.task("resize"), nil
}

func (f *fakeVM) StartVM(context.Context, string, pvekeep.VMID) (pvekeep.UPID, error) {
	f.running = true
	f.calls = append(f.calls, "start")
	return f.task("qmstart"), nil
}

// memJournal records steps and waits on the fake's tasks.
type memJournal struct {
	f     *fakeVM
	done  []Step
	upids []pvekeep.UPID
}

func (j *memJournal) Submitted(_ context.Context, u pvekeep.UPID) error {
	j.upids = append(j.upids, u)
	return nil
}

func (j *memJournal) Done(_ context.Context, step, _ Step, _ int) error {
	j.done = append(j.done, step)
	return nil
}

func (j *memJournal) Await(_ context.Context, u pvekeep.UPID) (bool, string, error) {
	exit := j.f.tasks[u]
	if exit == "OK" {
		return true, "", nil
	}
	return true, exit, nil
}

type countingNotifier struct{ n int }

func (c *countingNotifier) Notify(context.Context) error { c.n++; return nil }

func bigVM() plan.VM {
	m := func(n int) plan.Managed[int] { return plan.Managed[int]{Value: n, Set: true} }
	lim := plan.Managed[plan.Limits]{Value: plan.Limits{ReadMBs: 100, WriteMBs: 100, ReadIOPS: 1000, WriteIOPS: 1000}, Set: true}
	return plan.VM{
		Cores: m(2), MemoryMiB: m(4096), SystemDisk: "scsi0", SystemDiskGiB: m(20), SystemLimits: lim,
		ExtraDisk: "scsi1", ExtraDiskGiB: m(10), ExtraLimits: lim, DiskStorage: "local-lvm",
		Network: "net0", NetworkMBs: plan.Managed[float64]{Value: 50, Set: true}, Bridge: plan.Managed[string]{Value: "vmbr0", Set: true},
		VLAN: m(20), NetModel: plan.Managed[string]{Value: "virtio", Set: true},
	}
}

func run(t *testing.T, f *fakeVM, vm plan.VM, macs map[string]string) (Outcome, *memJournal, *countingNotifier) {
	t.Helper()
	j, n := &memJournal{f: f}, &countingNotifier{}
	out, err := New(slog.New(slog.DiscardHandler)).Run(context.Background(), f, j, n,
		Target{Node: "pve1", VMID: 100, VM: vm, MACs: macs}, Steps[0], "")
	if err != nil {
		t.Fatalf("Run() error = %v", err)
	}
	return out, j, n
}

func TestRunAppliesThePackageAndEndsDone(t *testing.T) {
	t.Parallel()
	f := newFakeVM()
	out, j, n := run(t, f, bigVM(), map[string]string{"net0": "BC:24:11:00:00:01"})
	if out.Step != StepDone || len(j.done) != len(Steps) || n.n != 1 {
		t.Fatalf("outcome %+v, %d steps done, %d emails", out, len(j.done), n.n)
	}
	want := map[string]string{
		"cores": "2", "memory": "4096",
		"scsi0": "local-lvm:vm-100-disk-0,iothread=1,size=20G,mbps_rd=100,mbps_wr=100,iops_rd=1000,iops_wr=1000",
	}
	for k, v := range want {
		if f.cfg[k] != v {
			t.Errorf("%s = %q, want %q", k, f.cfg[k], v)
		}
	}
	d, err := pve.ParseDrive(f.cfg["scsi1"])
	if err != nil || d.Size() != 10<<30 || d.Limits().IOPSWr != 1000 {
		t.Errorf("scsi1 = %q (%v), want a 10 GiB disk with limits", f.cfg["scsi1"], err)
	}
	nic, _ := pve.ParseNet(f.cfg["net0"])
	if nic.MAC != "BC:24:11:00:00:01" || nic.Tag != 20 || nic.Rate != 50 || nic.Bridge != "vmbr0" {
		t.Errorf("net0 = %q, want the recorded MAC, tag 20, rate 50", f.cfg["net0"])
	}
	if _, ok := nic.Get("firewall"); !ok {
		t.Errorf("net0 = %q lost its firewall option", f.cfg["net0"])
	}
	if !f.running {
		t.Error("the VM was not started")
	}
}

func TestRunTwiceChangesNothingTheSecondTime(t *testing.T) {
	t.Parallel()
	f := newFakeVM()
	run(t, f, bigVM(), nil)
	before := len(f.calls)
	_, _, n := run(t, f, bigVM(), nil)
	if extra := f.calls[before:]; len(extra) != 0 {
		t.Errorf("the second run made calls %v, want none", extra)
	}
	if n.n != 1 {
		t.Errorf("the notifier was called %d times on the second run; it must dedupe itself", n.n)
	}
}

func TestDisksOnlyGrowAndAnExtraDiskIsNeverDeleted(t *testing.T) {
	t.Parallel()
	f := newFakeVM()
	f.cfg["scsi0"] = "local-lvm:vm-100-disk-0,size=50G"
	f.cfg["scsi1"] = "local-lvm:vm-100-disk-1,size=30G"
	vm := bigVM()
	vm.ExtraDiskGiB = plan.Managed[int]{Value: 0, Set: true} // the package dropped the extra disk
	run(t, f, vm, nil)
	for _, c := range f.calls {
		if strings.HasPrefix(c, "resize") {
			t.Errorf("a larger disk was resized: %s", c)
		}
	}
	if !strings.Contains(f.cfg["scsi1"], "size=30G") {
		t.Errorf("scsi1 = %q, want the customer's disk kept", f.cfg["scsi1"])
	}
}

func TestUnmanagedValuesAreLeftAlone(t *testing.T) {
	t.Parallel()
	f := newFakeVM()
	f.running = true
	run(t, f, plan.VM{SystemDisk: "scsi0", ExtraDisk: "scsi1", Network: "net0"}, nil)
	if len(f.calls) != 0 {
		t.Errorf("an empty package made calls %v", f.calls)
	}
}

func TestRefusedStepFailsTheOutcome(t *testing.T) {
	t.Parallel()
	f := newFakeVM()
	f.failOn = "update memory"
	out, j, n := run(t, f, bigVM(), nil)
	if out.Failed == "" || out.Step != StepCPURAM || len(j.done) != 0 || n.n != 0 {
		t.Fatalf("outcome %+v after a refused step (done %v, emails %d)", out, j.done, n.n)
	}
}

func TestAResumedStepWaitsOnItsTaskInsteadOfActingAgain(t *testing.T) {
	t.Parallel()
	f := newFakeVM()
	u := f.task("resize")
	j, n := &memJournal{f: f}, &countingNotifier{}
	out, err := New(slog.New(slog.DiscardHandler)).Run(context.Background(), f, j, n,
		Target{Node: "pve1", VMID: 100, VM: bigVM()}, StepSystemDiskGrow, u)
	if err != nil || out.Step != StepDone {
		t.Fatalf("Run() = %+v, %v", out, err)
	}
	if j.done[0] != StepSystemDiskGrow {
		t.Errorf("first step done = %s, want the resumed one", j.done[0])
	}
	for _, c := range f.calls {
		if strings.HasPrefix(c, "resize scsi0") {
			t.Errorf("the resumed grow resized again (%s) instead of waiting on its task", c)
		}
	}
}

func TestALostStartRaceCountsAsStarted(t *testing.T) {
	t.Parallel()
	f := newFakeVM()
	u := f.task("qmstart")
	f.tasks[u] = "VM 100 already running"
	f.running = true
	j, n := &memJournal{f: f}, &countingNotifier{}
	out, err := New(slog.New(slog.DiscardHandler)).Run(context.Background(), f, j, n,
		Target{Node: "pve1", VMID: 100, VM: bigVM()}, StepStart, u)
	if err != nil || out.Failed != "" || out.Step != StepDone {
		t.Fatalf("Run() = %+v, %v; want done", out, err)
	}
}

func TestProxmoxRefusalsAreFinalAndBusyIsRetried(t *testing.T) {
	t.Parallel()
	var pe *permanentError
	cases := []struct {
		name  string
		err   error
		final bool
	}{
		{"a 500 with Proxmox's message", &pve.HTTPError{Code: 500, Message: "storage 'nope' does not exist"}, true},
		{"a 400", &pve.HTTPError{Code: 400, Message: "invalid format"}, true},
		{"the config lock busy", fmt.Errorf("%w: %w", pve.ErrBusy, &pve.HTTPError{Code: 500, Message: "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout"}), false},
		{"a proxy's 502", &pve.HTTPError{Code: 502}, false},
		{"unauthorized", &pve.HTTPError{Code: 401, Message: "no ticket"}, false},
	}
	for _, tc := range cases {
		if got := errors.As(classify(tc.err), &pe); got != tc.final {
			t.Errorf("%s: final = %v, want %v", tc.name, got, tc.final)
		}
	}
	if errors.As(classify(&pve.HTTPError{Method: "PUT", Path: "/nodes/pve1/qemu/100/config", Code: 500, Message: "no space"}), &pe) && strings.Contains(pe.msg, "/nodes/") {
		t.Errorf("a refusal's message %q shows our request path", pe.msg)
	}
}

func TestDigestMismatchIsRetriedNotFailed(t *testing.T) {
	t.Parallel()
	if err := classify(pve.ErrDigestMismatch); !errors.Is(err, pve.ErrDigestMismatch) {
		t.Errorf("classify(digest mismatch) = %v, want it retried", err)
	}
	var pe *permanentError
	if err := classify(fmt.Errorf("resize: %w", pve.ErrShrink)); !errors.As(err, &pe) {
		t.Errorf("classify(shrink) = %v, want permanent", err)
	}
}

func TestADetachedExtraDiskIsReattachedNotReplaced(t *testing.T) {
	t.Parallel()
	f := newFakeVM()
	f.cfg["unused0"] = "local-lvm:vm-100-disk-1"
	run(t, f, bigVM(), nil)
	if !strings.HasPrefix(f.cfg["scsi1"], "local-lvm:vm-100-disk-1") {
		t.Errorf("scsi1 = %q, want the detached disk reattached", f.cfg["scsi1"])
	}
}

func TestVcpusIsCappedAtTheCores(t *testing.T) {
	t.Parallel()
	set := cpuRAM(pve.VMConfig{"cores": "4", "vcpus": "4"}, bigVM())
	if set["cores"] != "2" || set["vcpus"] != "2" {
		t.Errorf("cpuRAM() = %v, want cores and vcpus 2", set)
	}
}

func TestEveryNICKeepsItsMAC(t *testing.T) {
	t.Parallel()
	cfg := pve.VMConfig{"net0": "virtio=BC:24:11:00:00:99,bridge=vmbr0", "net1": "virtio=BC:24:11:00:00:98,bridge=vmbr1"}
	set, err := network(cfg, Target{VM: plan.VM{Network: "net0"}, MACs: map[string]string{"net0": "BC:24:11:00:00:01", "net1": "BC:24:11:00:00:02"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(set["net0"], "BC:24:11:00:00:01") || !strings.Contains(set["net1"], "BC:24:11:00:00:02") {
		t.Errorf("network() = %v, want both MACs restored", set)
	}
}

func TestTheSystemDiskComesFromTheBootOrder(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		cfg  pve.VMConfig
		want string
	}{
		{"the package's key when present", pve.VMConfig{"scsi0": "local-lvm:vm-100-disk-0,size=10G"}, "scsi0"},
		{"the first disk of the boot order", pve.VMConfig{"boot": "order=ide2;virtio0;net0", "ide2": "none,media=cdrom", "virtio0": "local-lvm:vm-100-disk-0,size=10G"}, "virtio0"},
		{"the legacy bootdisk", pve.VMConfig{"bootdisk": "sata0", "sata0": "local-lvm:vm-100-disk-0,size=10G"}, "sata0"},
		{"none", pve.VMConfig{"ide2": "none,media=cdrom"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := systemDisk(tc.cfg, "scsi0"); got != tc.want {
				t.Errorf("systemDisk() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestAManagedSystemDiskThatIsMissingFailsLoudly(t *testing.T) {
	t.Parallel()
	f := newFakeVM()
	delete(f.cfg, "scsi0")
	out, _, _ := run(t, f, bigVM(), nil)
	if out.Failed == "" || out.Step != StepSystemDiskGrow {
		t.Errorf("outcome %+v, want a failure at the system disk", out)
	}
}
