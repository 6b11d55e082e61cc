// Package plan reads what a customer bought: the product's module settings
// (tblproducts.configoption1..24), overridden by the service's configurable
// options matched by name (DESIGN §5). Backup and snapshot rules read the
// quotas from it; the post-restore reconciliation reads the VM package.
//
// The numbering of the module settings is public (DESIGN §8, and
// pvekeep_ConfigOptions in hooks/pvekeep.php lays them out in the same
// order): append, never reorder.
//
// Rules: a module setting left empty means "not managed" (the VM keeps
// what it has); any value, 0 included, is managed. For limits 0 means
// unlimited; an Additional Disk of 0 means none; a Backups or Snapshots
// quota of 0 turns the feature off. A configurable option, when the
// service has one of that name, always wins.
package plan

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// Module settings, by index into ServiceFacts.ProductSettings
// (configoptionN is index N-1).
const (
	SettingBackupStorage    = 0  // configoption1: PVE storage id for backups
	SettingBackupsQuota     = 1  // configoption2
	SettingSnapshotsQuota   = 2  // configoption3
	SettingSnapshotLifetime = 3  // configoption4: days, 0 = keep
	SettingCores            = 4  // configoption5
	SettingRAM              = 5  // configoption6: GB
	SettingSystemDisk       = 6  // configoption7: GB
	SettingExtraDisk        = 7  // configoption8: GB, 0 = none
	SettingSystemReadMBs    = 8  // configoption9
	SettingSystemWriteMBs   = 9  // configoption10
	SettingSystemReadIOPS   = 10 // configoption11
	SettingSystemWriteIOPS  = 11 // configoption12
	SettingExtraReadMBs     = 12 // configoption13
	SettingExtraWriteMBs    = 13 // configoption14
	SettingExtraReadIOPS    = 14 // configoption15
	SettingExtraWriteIOPS   = 15 // configoption16
	SettingNetworkMBs       = 16 // configoption17: MB/s, 0 = unlimited
	SettingBridge           = 17 // configoption18: e.g. vmbr0
	SettingVLAN             = 18 // configoption19: 0 = untagged
	SettingNetModel         = 19 // configoption20: virtio, e1000, …
	SettingDiskStorage      = 20 // configoption21: storage for new disks
	SettingOSTemplate       = 21 // configoption22: template vmid a reinstall clones
	// SettingSnapshotRAM is configoption23, "Snapshot RAM" (a yes/no:
	// WHMCS stores "on"; "yes", "1" and "true" count too): whether a
	// client's snapshot of a running VM may save its RAM (issue 8).
	SettingSnapshotRAM              = 22
	settingsUsed                    = 24
	defaultSystemDisk               = "scsi0"
	defaultExtraDisk                = "scsi1"
	defaultNetwork                  = "net0"
	maxCount                        = 100000
	maxSnapshotLifetimeDays         = 10
	maxNetworkRateMBs       float64 = 100000
)

// Configurable option names (the part before '|') that override settings.
var optionFor = map[int]string{
	SettingBackupsQuota:    "Backups",
	SettingSnapshotsQuota:  "Snapshots",
	SettingCores:           "CPU Cores",
	SettingRAM:             "RAM",
	SettingSystemDisk:      "System Disk",
	SettingExtraDisk:       "Additional Disk",
	SettingSystemReadMBs:   "System Disk Read Bandwidth",
	SettingSystemWriteMBs:  "System Disk Write Bandwidth",
	SettingSystemReadIOPS:  "System Disk Read IOPS",
	SettingSystemWriteIOPS: "System Disk Write IOPS",
	SettingExtraReadMBs:    "Additional Disk Read Bandwidth",
	SettingExtraWriteMBs:   "Additional Disk Write Bandwidth",
	SettingExtraReadIOPS:   "Additional Disk Read IOPS",
	SettingExtraWriteIOPS:  "Additional Disk Write IOPS",
	SettingNetworkMBs:      "Network Bandwidth",
	SettingOSTemplate:      "Operating System",
}

// Plan is the whole purchased package.
type Plan struct {
	Quotas
	VM VM
}

// Quotas is what backups and snapshots need of the package. It is read
// on its own so that a misconfigured VM field (a VLAN typo, say) fails
// only what applies the VM package, not listing or taking backups.
type Quotas struct {
	BackupStorage        string
	BackupsMax           int
	SnapshotsMax         int
	SnapshotLifetimeDays int // 0 = keep
	// SnapshotRAM: a snapshot may save the running VM's RAM.
	SnapshotRAM bool
}

// Managed is a value the package sets, or nothing when the package leaves
// it to the VM.
type Managed[T any] struct {
	Value T
	Set   bool
}

func managed[T any](v T) Managed[T] { return Managed[T]{Value: v, Set: true} }

// Limits are one disk's bandwidth (MB/s) and IOPS limits; 0 = unlimited.
type Limits struct {
	ReadMBs, WriteMBs, ReadIOPS, WriteIOPS int
}

// VM is what the reconciliation makes the VM look like.
type VM struct {
	Cores     Managed[int]
	MemoryMiB Managed[int] // RAM GB × 1024

	SystemDisk    string       // drive key, scsi0
	SystemDiskGiB Managed[int] // grow only
	SystemLimits  Managed[Limits]

	ExtraDisk    string       // drive key, scsi1
	ExtraDiskGiB Managed[int] // 0 = none; grow only
	ExtraLimits  Managed[Limits]
	DiskStorage  string // where a missing extra disk is created

	Network    string // net0
	NetworkMBs Managed[float64]
	Bridge     Managed[string]
	VLAN       Managed[int] // 0 = untagged
	NetModel   Managed[string]

	OSTemplate Managed[int] // template vmid for a reinstall
}

// FromFacts builds the plan. A value that is not what its field needs is
// the provider's misconfiguration: invalid_state, never a guess.
func FromFacts(f pvekeep.ServiceFacts) (Plan, error) {
	q, err := QuotasFromFacts(f)
	if err != nil {
		return Plan{}, err
	}
	r := reader{f: f}
	p := Plan{Quotas: q}
	vm := VM{SystemDisk: defaultSystemDisk, ExtraDisk: defaultExtraDisk, Network: defaultNetwork}
	vm.Cores = r.count(SettingCores)
	if vm.Cores.Set && vm.Cores.Value == 0 {
		r.fail(SettingCores, "0 cores")
	}
	if ram := r.count(SettingRAM); ram.Set {
		if ram.Value == 0 {
			r.fail(SettingRAM, "0 GB of RAM")
		}
		vm.MemoryMiB = managed(ram.Value * 1024)
	}
	vm.SystemDiskGiB = r.count(SettingSystemDisk)
	vm.SystemLimits = r.limits(SettingSystemReadMBs, SettingSystemWriteMBs, SettingSystemReadIOPS, SettingSystemWriteIOPS)
	vm.ExtraDiskGiB = r.count(SettingExtraDisk)
	vm.ExtraLimits = r.limits(SettingExtraReadMBs, SettingExtraWriteMBs, SettingExtraReadIOPS, SettingExtraWriteIOPS)
	vm.DiskStorage = strings.TrimSpace(f.ProductSettings[SettingDiskStorage])
	if vm.DiskStorage == "" {
		vm.DiskStorage = "local-lvm"
	}
	vm.NetworkMBs = r.rate(SettingNetworkMBs)
	vm.Bridge = r.word(SettingBridge)
	vm.VLAN = r.count(SettingVLAN)
	if vm.VLAN.Value > 4094 {
		r.fail(SettingVLAN, "a VLAN tag above 4094")
	}
	vm.NetModel = r.word(SettingNetModel)
	vm.OSTemplate = r.count(SettingOSTemplate)
	p.VM = vm
	if r.err != nil {
		return Plan{}, r.err
	}
	return p, nil
}

// QuotasFromFacts reads the backup storage, the quotas and the snapshot
// lifetime, and nothing else of the package.
func QuotasFromFacts(f pvekeep.ServiceFacts) (Quotas, error) {
	r := reader{f: f}
	q := Quotas{BackupStorage: strings.TrimSpace(f.ProductSettings[SettingBackupStorage])}
	q.BackupsMax = r.count(SettingBackupsQuota).Value
	q.SnapshotsMax = r.count(SettingSnapshotsQuota).Value
	q.SnapshotLifetimeDays = r.count(SettingSnapshotLifetime).Value
	if q.SnapshotLifetimeDays > maxSnapshotLifetimeDays {
		// Snapshots are a short-lived safety net (DESIGN §5): 1–10 days or kept.
		r.fail(SettingSnapshotLifetime, fmt.Sprintf("a snapshot lifetime of %d days (1 to %d, or 0 to keep)", q.SnapshotLifetimeDays, maxSnapshotLifetimeDays))
	}
	switch strings.ToLower(strings.TrimSpace(f.ProductSettings[SettingSnapshotRAM])) {
	case "on", "yes", "1", "true":
		q.SnapshotRAM = true
	}
	if r.err != nil {
		return Quotas{}, r.err
	}
	return q, nil
}

// reader reads settings and options, keeping the first error.
type reader struct {
	f   pvekeep.ServiceFacts
	err error
}

// raw is the option's value when the service has the option, else the
// module setting's.
func (r *reader) raw(setting int) (string, string) {
	if name, ok := optionFor[setting]; ok {
		if v, ok := r.f.ConfigOptions[name]; ok {
			return strings.TrimSpace(v), "configurable option " + name
		}
	}
	return strings.TrimSpace(r.f.ProductSettings[setting]), fmt.Sprintf("configoption%d", setting+1)
}

func (r *reader) fail(setting int, what string) {
	if r.err == nil {
		_, where := r.raw(setting)
		e := pvekeep.InvalidState("the product is misconfigured: " + where)
		e.Err = fmt.Errorf("%s", what)
		r.err = e
	}
}

func (r *reader) count(setting int) Managed[int] {
	v, _ := r.raw(setting)
	if v == "" {
		return Managed[int]{}
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > maxCount {
		r.fail(setting, fmt.Sprintf("%q is not a count", v))
		return Managed[int]{}
	}
	return managed(n)
}

func (r *reader) rate(setting int) Managed[float64] {
	v, _ := r.raw(setting)
	if v == "" {
		return Managed[float64]{}
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil || n < 0 || n > maxNetworkRateMBs {
		r.fail(setting, fmt.Sprintf("%q is not a rate", v))
		return Managed[float64]{}
	}
	return managed(n)
}

// word is a short identifier such as a bridge or a NIC model.
func (r *reader) word(setting int) Managed[string] {
	v, _ := r.raw(setting)
	if v == "" {
		return Managed[string]{}
	}
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') || len(v) > 40 {
			r.fail(setting, fmt.Sprintf("%q is not an identifier", v))
			return Managed[string]{}
		}
	}
	return managed(v)
}

// limits are managed as a whole: once any of the four is set, the others
// mean unlimited.
func (r *reader) limits(readMBs, writeMBs, readIOPS, writeIOPS int) Managed[Limits] {
	parts := []Managed[int]{r.count(readMBs), r.count(writeMBs), r.count(readIOPS), r.count(writeIOPS)}
	set := false
	for _, p := range parts {
		set = set || p.Set
	}
	if !set {
		return Managed[Limits]{}
	}
	return managed(Limits{ReadMBs: parts[0].Value, WriteMBs: parts[1].Value, ReadIOPS: parts[2].Value, WriteIOPS: parts[3].Value})
}
