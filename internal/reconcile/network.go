package reconcile

import (
	"fmt"
	"strings"

	"github.com/pvekeep/pvekeep/internal/pve"
)

// network is step 7: the package's bridge, VLAN tag, rate and model on
// the VM's network device, with the MAC it had before the restore (the
// provider's IP allocations are bound to it). A device the VM lacks is
// created when the package names a bridge.
func network(cfg pve.VMConfig, t Target) (map[string]string, error) {
	set, err := packageNet(cfg, t)
	if err != nil {
		return nil, err
	}
	// Every other device keeps its pre-restore MAC too.
	for key, mac := range t.MACs {
		if key == t.VM.Network || cfg[key] == "" || mac == "" {
			continue
		}
		n, err := pve.ParseNet(cfg[key])
		if err != nil {
			return nil, &permanentError{msg: fmt.Sprintf("cannot read %s: %v", key, err)}
		}
		if !pve.SameMAC(n.MAC, mac) {
			n.MAC = mac
			if set == nil {
				set = map[string]string{}
			}
			set[key] = n.String()
		}
	}
	return set, nil
}

// packageNet sets the package's device.
func packageNet(cfg pve.VMConfig, t Target) (map[string]string, error) {
	key := t.VM.Network
	vm := t.VM
	if !vm.Bridge.Set && !vm.VLAN.Set && !vm.NetworkMBs.Set && !vm.NetModel.Set && t.MACs[key] == "" {
		return nil, nil
	}
	var n pve.Net
	if cur := cfg[key]; cur != "" {
		parsed, err := pve.ParseNet(cur)
		if err != nil {
			return nil, &permanentError{msg: fmt.Sprintf("cannot read %s: %v", key, err)}
		}
		n = parsed
	} else if !vm.Bridge.Set {
		return nil, nil // no device and no bridge to put one on
	} else {
		n = pve.Net{Model: "virtio"}
	}
	if vm.NetModel.Set {
		n.Model = vm.NetModel.Value
	}
	if mac := t.MACs[key]; mac != "" {
		n.MAC = mac
	}
	if vm.Bridge.Set {
		n.Bridge = vm.Bridge.Value
	}
	if vm.VLAN.Set {
		n.Tag = vm.VLAN.Value
	}
	if vm.NetworkMBs.Set {
		n.Rate = vm.NetworkMBs.Value
	}
	out := n.String()
	if cur := cfg[key]; cur != "" {
		if same, err := sameNet(cur, out); err == nil && same {
			return nil, nil
		}
	}
	return map[string]string{key: out}, nil
}

// sameNet compares two net strings by meaning: MAC case and option order
// do not count.
func sameNet(a, b string) (bool, error) {
	na, err := pve.ParseNet(a)
	if err != nil {
		return false, err
	}
	nb, err := pve.ParseNet(b)
	if err != nil {
		return false, err
	}
	na.MAC, nb.MAC = strings.ToUpper(na.MAC), strings.ToUpper(nb.MAC)
	return na.String() == nb.String(), nil
}
