package store_test

import (
	"context"
	"errors"
	"maps"
	"testing"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/seed"
	"github.com/pvekeep/pvekeep/internal/store"
)

func TestServiceReadsWHMCSFacts(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	f, err := s.Service(ctx, b.service(0))
	if err != nil {
		t.Fatal(err)
	}
	if f.ServiceID != b.service(0) || f.ClientID != b.fx.ClientID || f.ProductID != b.fx.ProductID || f.ServerID != b.fx.ServerID {
		t.Errorf("ids: got %+v", f)
	}
	if f.Status != "Active" || !f.Active() || f.Domain != "vm100.example.test" || f.ProductName != "VPS" {
		t.Errorf("status/domain/product: %q %q %q", f.Status, f.Domain, f.ProductName)
	}
	if f.ClientFirstName != "Test" || f.ClientLastName != "Client" || f.ClientEmail != "client@example.test" || f.ClientLanguage != "" {
		t.Errorf("client: %q %q %q %q", f.ClientFirstName, f.ClientLastName, f.ClientEmail, f.ClientLanguage)
	}
	if f.VMID != 100 {
		t.Errorf("vmid %d, want 100 from the custom field", f.VMID)
	}
	want := [24]string{"backup", "5", "3", "7"}
	if f.ProductSettings != want {
		t.Errorf("product settings %q, want %q", f.ProductSettings, want)
	}
	wantOpts := map[string]string{"CPU Cores": "1", "RAM": "1", "System Disk": "10", "Additional Disk": "0", "Backups": "5", "Snapshots": "3"}
	if !maps.Equal(f.ConfigOptions, wantOpts) {
		t.Errorf("config options %v, want %v", f.ConfigOptions, wantOpts)
	}
}

func TestServiceUnknownIsNotFound(t *testing.T) {
	t.Parallel()
	s, _ := setup(t)
	_, err := s.Service(context.Background(), 999999)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
}

func TestServiceVMIDSources(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	tests := []struct {
		name  string
		field string // custom field value; "-" = no value row
		bind  pvekeep.VMID
		want  pvekeep.VMID
	}{
		{name: "custom field used when the plugin has no binding", field: "250", want: 250},
		{name: "custom field with spaces is accepted", field: " 251 ", want: 251},
		{name: "own table binding wins over custom field", field: "252", bind: 900, want: 900},
		{name: "own table binding works without custom field", field: "-", bind: 901, want: 901},
		{name: "non-numeric custom field is 0", field: "abc", want: 0},
		{name: "negative custom field is 0", field: "-5", want: 0},
		{name: "empty custom field is 0", field: "", want: 0},
		{name: "no custom field value is 0", field: "-", want: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, err := b.seed.Service(ctx, seed.Service{ClientID: b.fx.ClientID, ProductID: b.fx.ProductID, ServerID: b.fx.ServerID})
			if err != nil {
				t.Fatal(err)
			}
			if tc.field != "-" {
				if err := b.seed.SetVMIDField(ctx, id, b.fx.ProductID, tc.field); err != nil {
					t.Fatal(err)
				}
			}
			if tc.bind != 0 {
				if err := s.SetServiceVMID(ctx, pvekeep.ServiceID(id), tc.bind); err != nil {
					t.Fatal(err)
				}
			}
			f, err := s.Service(ctx, pvekeep.ServiceID(id))
			if err != nil {
				t.Fatal(err)
			}
			if f.VMID != tc.want {
				t.Errorf("vmid %d, want %d", f.VMID, tc.want)
			}
		})
	}
}

func TestSetServiceVMIDZeroFallsBackToCustomField(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	for _, v := range []pvekeep.VMID{555, 0} {
		if err := s.SetServiceVMID(ctx, b.service(0), v); err != nil {
			t.Fatal(err)
		}
	}
	f, err := s.Service(ctx, b.service(0))
	if err != nil {
		t.Fatal(err)
	}
	if f.VMID != 100 {
		t.Errorf("vmid %d, want the custom field's 100 after unbinding", f.VMID)
	}
}

func TestServiceConfigOptions(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	ram := b.fx.Options["RAM"]
	disk := b.fx.Options["Additional Disk"]

	yesno, err := b.seed.Option(ctx, seed.Option{GroupID: b.fx.GroupID, Name: "Include RAM|Snapshot RAM", Type: seed.YesNo})
	if err != nil {
		t.Fatal(err)
	}
	radio, err := b.seed.Option(ctx, seed.Option{GroupID: b.fx.GroupID, Name: "Network Bandwidth", Type: seed.Radio,
		Subs: []string{"100|100 MB/s", " 250 |250 MB/s"}})
	if err != nil {
		t.Fatal(err)
	}
	// An option of a group NOT linked to the product: must be ignored.
	otherGroup, err := b.seed.OptionGroup(ctx, "other product's options")
	if err != nil {
		t.Fatal(err)
	}
	stale, err := b.seed.Option(ctx, seed.Option{GroupID: otherGroup, Name: "Stale", Type: seed.Dropdown, Subs: []string{"x|X"}})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		choice seed.Choice
		key    string
		want   string // "" = key absent
	}{
		{name: "dropdown gives the sub-option value before the pipe", choice: seed.Choice{OptionID: ram.ID, SubID: ram.SubIDs[2]}, key: "RAM", want: "4"},
		{name: "quantity gives qty", choice: seed.Choice{OptionID: disk.ID, SubID: disk.SubIDs[0], Qty: 50}, key: "Additional Disk", want: "50"},
		{name: "yes/no gives qty 1", choice: seed.Choice{OptionID: yesno.ID, SubID: yesno.SubIDs[0], Qty: 1}, key: "Include RAM", want: "1"},
		{name: "radio gives trimmed sub-option value", choice: seed.Choice{OptionID: radio.ID, SubID: radio.SubIDs[1]}, key: "Network Bandwidth", want: "250"},
		{name: "dropdown whose sub-option is gone is absent", choice: seed.Choice{OptionID: radio.ID, SubID: 987654}, key: "Network Bandwidth", want: ""},
		{name: "option of an unlinked group is ignored", choice: seed.Choice{OptionID: stale.ID, SubID: stale.SubIDs[0]}, key: "Stale", want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, err := b.seed.Service(ctx, seed.Service{ClientID: b.fx.ClientID, ProductID: b.fx.ProductID, ServerID: b.fx.ServerID,
				Options: []seed.Choice{tc.choice}})
			if err != nil {
				t.Fatal(err)
			}
			f, err := s.Service(ctx, pvekeep.ServiceID(id))
			if err != nil {
				t.Fatal(err)
			}
			got, ok := f.ConfigOptions[tc.key]
			if tc.want == "" {
				if ok {
					t.Errorf("%s = %q, want absent", tc.key, got)
				}
				return
			}
			if got != tc.want {
				t.Errorf("%s = %q, want %q", tc.key, got, tc.want)
			}
		})
	}
}

func TestServiceProductSettingsAllTwentyFour(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	settings := map[int]string{}
	for n := 1; n <= 24; n++ {
		settings[n] = "v" + string(rune('a'+n-1))
	}
	pid, err := b.seed.Product(ctx, seed.Product{Name: "Big", Settings: settings})
	if err != nil {
		t.Fatal(err)
	}
	id, err := b.seed.Service(ctx, seed.Service{ClientID: b.fx.ClientID, ProductID: pid, ServerID: b.fx.ServerID, Status: "Suspended"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.Service(ctx, pvekeep.ServiceID(id))
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 24; n++ {
		if f.ProductSettings[n-1] != settings[n] {
			t.Errorf("configoption%d = %q, want %q", n, f.ProductSettings[n-1], settings[n])
		}
	}
	if f.Status != "Suspended" || f.Active() {
		t.Errorf("status %q active=%v", f.Status, f.Active())
	}
	if len(f.ConfigOptions) != 0 {
		t.Errorf("options %v, want none (no group linked)", f.ConfigOptions)
	}
}

func TestServiceAfterProductChangeIgnoresOldOptions(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	pid, err := b.seed.Product(ctx, seed.Product{Name: "Other"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.seed.SetServiceProduct(ctx, int64(b.service(0)), pid); err != nil {
		t.Fatal(err)
	}
	f, err := s.Service(ctx, b.service(0))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.ConfigOptions) != 0 || f.ProductName != "Other" {
		t.Errorf("after product change: product %q options %v", f.ProductName, f.ConfigOptions)
	}
}

// WHMCS may leave two value rows for one field: the newest counts, and
// the service's configurable options read the same however many there are.
func TestServiceNewestVMIDFieldValueWinsAndOptionsStay(t *testing.T) {
	t.Parallel()
	s, b := setup(t)
	ctx := context.Background()
	id := b.fx.ServiceIDs[0]
	before, err := s.Service(ctx, pvekeep.ServiceID(id))
	if err != nil {
		t.Fatal(err)
	}
	fid, err := b.seed.VMIDField(ctx, b.fx.ProductID)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"300", "301"} {
		if _, err := b.db.Store.DB().ExecContext(ctx, `INSERT INTO tblcustomfieldsvalues
(fieldid, relid, value, created_at, updated_at) VALUES (?, ?, ?, NOW(), NOW())`, fid, id, v); err != nil {
			t.Fatal(err)
		}
	}
	f, err := s.Service(ctx, pvekeep.ServiceID(id))
	if err != nil {
		t.Fatal(err)
	}
	if f.VMID != 301 {
		t.Errorf("vmid %d, want the newest value row's 301", f.VMID)
	}
	if len(before.ConfigOptions) == 0 || !maps.Equal(f.ConfigOptions, before.ConfigOptions) {
		t.Errorf("options with three value rows = %v, want %v as with one", f.ConfigOptions, before.ConfigOptions)
	}
}
