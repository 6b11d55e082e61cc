package plan

import (
	"testing"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

func settings(kv map[int]string) [24]string {
	var s [24]string
	for k, v := range kv {
		s[k] = v
	}
	return s
}

func TestQuotasComeFromSettingsAndOptions(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		facts     pvekeep.ServiceFacts
		backups   int
		snapshots int
		lifetime  int
		storage   string
	}{
		{
			name:    "product settings give the quotas",
			facts:   pvekeep.ServiceFacts{ProductSettings: settings(map[int]string{0: "backup", 1: "3", 2: "2", 3: "5"})},
			backups: 3, snapshots: 2, lifetime: 5, storage: "backup",
		},
		{
			name: "configurable options override product settings",
			facts: pvekeep.ServiceFacts{ProductSettings: settings(map[int]string{0: "backup", 1: "3", 2: "2"}),
				ConfigOptions: map[string]string{"Backups": "7", "Snapshots": "0"}},
			backups: 7, snapshots: 0, storage: "backup",
		},
		{
			name:    "empty quota means the feature is off",
			facts:   pvekeep.ServiceFacts{ProductSettings: settings(map[int]string{0: " backup "})},
			storage: "backup",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := FromFacts(tc.facts)
			if err != nil {
				t.Fatalf("FromFacts() error = %v", err)
			}
			if p.BackupsMax != tc.backups || p.SnapshotsMax != tc.snapshots || p.SnapshotLifetimeDays != tc.lifetime || p.BackupStorage != tc.storage {
				t.Errorf("FromFacts() = %+v", p)
			}
		})
	}
}

func TestVMPackage(t *testing.T) {
	t.Parallel()
	f := pvekeep.ServiceFacts{
		ProductSettings: settings(map[int]string{
			SettingCores: "1", SettingRAM: "1", SettingSystemDisk: "10", SettingExtraDisk: "0",
			SettingSystemReadMBs: "100", SettingNetworkMBs: "50", SettingBridge: "vmbr1", SettingVLAN: "20",
			SettingNetModel: "virtio", SettingOSTemplate: "9000",
		}),
		ConfigOptions: map[string]string{"CPU Cores": "2", "RAM": "4", "System Disk": "20", "Additional Disk": "10"},
	}
	p, err := FromFacts(f)
	if err != nil {
		t.Fatalf("FromFacts() error = %v", err)
	}
	vm := p.VM
	checks := []struct {
		name string
		ok   bool
	}{
		{"cores from the option", vm.Cores == managed(2)},
		{"RAM GB become MiB", vm.MemoryMiB == managed(4096)},
		{"system disk from the option", vm.SystemDiskGiB == managed(20)},
		{"extra disk from the option", vm.ExtraDiskGiB == managed(10)},
		{"system limits set as a whole", vm.SystemLimits == managed(Limits{ReadMBs: 100})},
		{"extra limits unmanaged", !vm.ExtraLimits.Set},
		{"network rate", vm.NetworkMBs == managed(50.0)},
		{"bridge", vm.Bridge == managed("vmbr1")},
		{"vlan", vm.VLAN == managed(20)},
		{"model", vm.NetModel == managed("virtio")},
		{"template", vm.OSTemplate == managed(9000)},
		{"default drive keys", vm.SystemDisk == "scsi0" && vm.ExtraDisk == "scsi1" && vm.Network == "net0"},
		{"default disk storage", vm.DiskStorage == "local-lvm"},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: VM = %+v", c.name, vm)
		}
	}
}

func TestEmptySettingsLeaveTheVMAlone(t *testing.T) {
	t.Parallel()
	p, err := FromFacts(pvekeep.ServiceFacts{})
	if err != nil {
		t.Fatal(err)
	}
	vm := p.VM
	if vm.Cores.Set || vm.MemoryMiB.Set || vm.SystemDiskGiB.Set || vm.ExtraDiskGiB.Set || vm.SystemLimits.Set ||
		vm.NetworkMBs.Set || vm.Bridge.Set || vm.VLAN.Set || vm.NetModel.Set || vm.OSTemplate.Set {
		t.Errorf("an empty product manages %+v, want nothing", vm)
	}
}

func TestMisconfigurationIsInvalidState(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		facts pvekeep.ServiceFacts
	}{
		{"a quota that is not a number", pvekeep.ServiceFacts{ProductSettings: settings(map[int]string{SettingBackupsQuota: "three"})}},
		{"a negative option", pvekeep.ServiceFacts{ConfigOptions: map[string]string{"Backups": "-1"}}},
		{"zero cores", pvekeep.ServiceFacts{ProductSettings: settings(map[int]string{SettingCores: "0"})}},
		{"zero RAM from an option", pvekeep.ServiceFacts{ConfigOptions: map[string]string{"RAM": "0"}}},
		{"a VLAN out of range", pvekeep.ServiceFacts{ProductSettings: settings(map[int]string{SettingVLAN: "5000"})}},
		{"a bridge with a comma", pvekeep.ServiceFacts{ProductSettings: settings(map[int]string{SettingBridge: "vmbr0,tag=5"})}},
		{"a network rate that is not a number", pvekeep.ServiceFacts{ConfigOptions: map[string]string{"Network Bandwidth": "fast"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := FromFacts(tc.facts)
			if pvekeep.ReasonOf(err) != pvekeep.ReasonInvalidState {
				t.Fatalf("FromFacts() error = %v, want invalid_state", err)
			}
		})
	}
}

func TestSnapshotLifetimeIsOneToTenDaysOrKept(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		value string
		ok    bool
	}{{"0", true}, {"1", true}, {"10", true}, {"11", false}, {"365", false}} {
		_, err := QuotasFromFacts(pvekeep.ServiceFacts{ProductSettings: settings(map[int]string{SettingSnapshotLifetime: tc.value})})
		if (err == nil) != tc.ok {
			t.Errorf("lifetime %s: err = %v, want ok %v", tc.value, err, tc.ok)
		}
	}
}
