package service

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/pvekeep/pvekeep/internal/plan"
	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// refuseUnfit says why the package cannot be applied to a VM on node,
// asking Proxmox only what two GETs answer: the bridge of the product's
// "Network Bridge" (configoption18) must be one of the node's Linux or
// OVS bridges, and with disks the storage of "Disk Storage"
// (configoption21) must be on the node, enabled, active and hold VM
// images. A create or change_package that would fail there only after
// WHMCS heard "success" is refused in the call instead, nothing changed.
func refuseUnfit(ctx context.Context, pc pve.Cluster, node string, vm plan.VM, disks bool) error {
	if disks {
		sts, err := pc.Storages(ctx, node)
		if err != nil {
			return pveError("list storages", err)
		}
		i := slices.IndexFunc(sts, func(st pve.Storage) bool { return st.ID == vm.DiskStorage })
		why := ""
		switch {
		case i < 0:
			why = "does not exist on node " + node
		case !sts[i].Enabled:
			why = "is disabled on node " + node
		case !sts[i].Active:
			why = "is not active on node " + node
		case !sts[i].Holds("images"):
			why = "does not hold VM disks (content \"images\") on node " + node
		}
		if why != "" {
			return pvekeep.InvalidState(fmt.Sprintf("the product's Disk Storage (configoption21) %q %s, so nothing was changed: set the module setting \"Disk Storage\" to a storage for VM disks on that node", vm.DiskStorage, why))
		}
	}
	if vm.Bridge.Set && vm.Bridge.Value != "" {
		bridges, err := pc.Bridges(ctx, node)
		if err != nil {
			return pveError("list bridges", err)
		}
		if !slices.Contains(bridges, vm.Bridge.Value) {
			return pvekeep.InvalidState(fmt.Sprintf("the product's Network Bridge (configoption18) %q does not exist on node %s, so nothing was changed: set the module setting \"Network Bridge\" to one of its bridges (%s)",
				vm.Bridge.Value, node, bridgeList(bridges)))
		}
	}
	return nil
}

func bridgeList(bs []string) string {
	if len(bs) == 0 {
		return "it has none"
	}
	return strings.Join(bs, ", ")
}
