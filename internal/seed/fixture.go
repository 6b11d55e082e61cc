package seed

import (
	"context"
	"fmt"
)

// Fixture is a small, complete panel: one client, one Proxmox server, one
// product with the package options of DESIGN §5 and services bound to VMs.
type Fixture struct {
	ClientID   int64
	ServerID   int64
	ProductID  int64
	GroupID    int64
	Options    map[string]OptionRef // by option name before '|'
	ServiceIDs []int64              // one per VMID, in order
}

// FixtureSpec says what Standard builds. Zero values give a product with
// backup storage "backup", 5 backups, 3 snapshots kept 7 days.
type FixtureSpec struct {
	Client  Client
	Server  Server
	Product Product
	VMIDs   []int // one Active service per VMID, bound through the vmid custom field
}

// Standard builds the fixture. Each service chooses the first sub-option
// of every dropdown and quantity 0 of every quantity option.
func (s *Seeder) Standard(ctx context.Context, spec FixtureSpec) (Fixture, error) {
	var f Fixture
	var err error
	if f.ClientID, err = s.Client(ctx, spec.Client); err != nil {
		return f, err
	}
	if f.ServerID, err = s.Server(ctx, spec.Server); err != nil {
		return f, err
	}
	p := spec.Product
	if p.BackupStorage == "" {
		p.BackupStorage = "backup"
	}
	if p.BackupsQuota == 0 {
		p.BackupsQuota = 5
	}
	if p.SnapshotsQuota == 0 {
		p.SnapshotsQuota = 3
	}
	if p.SnapshotLifetimeDays == 0 {
		p.SnapshotLifetimeDays = 7
	}
	if f.ProductID, err = s.Product(ctx, p); err != nil {
		return f, err
	}
	if f.GroupID, err = s.OptionGroup(ctx, "VPS options", f.ProductID); err != nil {
		return f, err
	}
	f.Options = map[string]OptionRef{}
	for _, o := range standardOptions {
		o.GroupID = f.GroupID
		ref, err := s.Option(ctx, o)
		if err != nil {
			return f, err
		}
		f.Options[beforePipe(o.Name)] = ref
	}
	for _, vmid := range spec.VMIDs {
		var choices []Choice
		for _, o := range standardOptions {
			ref := f.Options[beforePipe(o.Name)]
			// quantity options keep their single sub-option row, qty 0
			choices = append(choices, Choice{OptionID: ref.ID, SubID: ref.SubIDs[0]})
		}
		id, err := s.Service(ctx, Service{
			ClientID: f.ClientID, ProductID: f.ProductID, ServerID: f.ServerID,
			Domain: fmt.Sprintf("vm%d.example.test", vmid), VMID: fmt.Sprint(vmid), Options: choices,
		})
		if err != nil {
			return f, err
		}
		f.ServiceIDs = append(f.ServiceIDs, id)
	}
	return f, nil
}

var standardOptions = []Option{
	{Name: "CPU Cores|CPU Cores", Type: Dropdown, Subs: []string{"1|1 Core", "2|2 Cores", "4|4 Cores"}},
	{Name: "RAM|Memory", Type: Dropdown, Subs: []string{"1|1 GB", "2|2 GB", "4|4 GB", "8|8 GB"}},
	{Name: "System Disk|System Disk", Type: Dropdown, Subs: []string{"10|10 GB", "20|20 GB", "40|40 GB"}},
	{Name: "Additional Disk|Additional Disk", Type: Quantity, Min: 0, Max: 500},
	{Name: "Backups|Backups", Type: Dropdown, Subs: []string{"5|5 backups", "10|10 backups", "0|No backups"}},
	{Name: "Snapshots|Snapshots", Type: Dropdown, Subs: []string{"3|3 snapshots", "5|5 snapshots", "0|No snapshots"}},
}

func beforePipe(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '|' {
			return s[:i]
		}
	}
	return s
}
