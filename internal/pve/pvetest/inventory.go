package pvetest

import (
	"slices"
	"testing"

	"github.com/pvekeep/pvekeep/internal/pve"
)

// A create checks the package against the target node before it claims
// anything: the node's bridges (Linux or OVS) hold the guest's own
// bridge, and its storages say their content and whether they are
// enabled and active; a bridge the node lacks is not listed.
func (s *Suite) TestNodeBridgesAndStorages(t *testing.T) {
	env, c, ctx := s.setup(t)
	ref, err := c.FindVM(ctx, env.VMID)
	if err != nil {
		t.Fatalf("FindVM(%d): %v", env.VMID, err)
	}
	bridges, err := c.Bridges(ctx, ref.Node)
	if err != nil {
		t.Fatalf("Bridges(%s): %v", ref.Node, err)
	}
	if len(bridges) == 0 {
		t.Fatalf("Bridges(%s) = none", ref.Node)
	}
	if !slices.IsSorted(bridges) {
		t.Errorf("Bridges(%s) = %v, not sorted", ref.Node, bridges)
	}
	if net, err := pve.ParseNet(mustConfig(ctx, t, c, ref.Node, env.VMID)["net0"]); err == nil && net.Bridge != "" && !slices.Contains(bridges, net.Bridge) {
		t.Errorf("Bridges(%s) = %v, without the guest's own %s", ref.Node, bridges, net.Bridge)
	}
	if slices.Contains(bridges, "pvekeep-none9") {
		t.Errorf("Bridges(%s) lists a bridge no node has", ref.Node)
	}
	sts, err := c.Storages(ctx, ref.Node)
	if err != nil {
		t.Fatalf("Storages(%s): %v", ref.Node, err)
	}
	find := func(id string) pve.Storage {
		t.Helper()
		i := slices.IndexFunc(sts, func(st pve.Storage) bool { return st.ID == id })
		if i < 0 {
			t.Fatalf("Storages(%s) = %+v, without %s", ref.Node, sts, id)
		}
		return sts[i]
	}
	if st := find(env.Storage); !st.Holds("backup") || !st.Enabled || !st.Active || st.Type == "" {
		t.Errorf("backup storage %s = %+v, want enabled, active, content backup", env.Storage, st)
	}
	if env.ImageStorage != "" {
		if st := find(env.ImageStorage); !st.Holds("images") || !st.Enabled || !st.Active {
			t.Errorf("image storage %s = %+v, want enabled, active, content images", env.ImageStorage, st)
		}
	}
	if env.SharedImageStorage != "" {
		if st := find(env.SharedImageStorage); !st.Shared || !st.Holds("images") {
			t.Errorf("shared image storage %s = %+v, want shared, content images", env.SharedImageStorage, st)
		}
	}
}
