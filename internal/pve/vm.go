package pve

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// VMRef is where a guest lives, from /cluster/resources.
type VMRef struct {
	VMID     pvekeep.VMID
	Node     string
	Type     string // "qemu" or "lxc"
	Status   string // running, stopped, …
	Name     string
	Template bool
}

// VMStatus is a guest's current state (status/current).
type VMStatus struct {
	VMID      pvekeep.VMID
	Status    string // "running" or "stopped"
	QMPStatus string // running, paused, prelaunch, … ("" when unknown)
	Lock      string // "" when unlocked
	Name      string
	Uptime    time.Duration
}

// Locked reports whether the guest holds a Proxmox lock.
func (s VMStatus) Locked() bool { return s.Lock != "" }

// VMConfig is a guest's configuration, every value rendered as a string
// the way PVE prints it (booleans as 1/0). "digest" is kept so a later
// update can be made conditional on it (ConfigChange.Digest).
type VMConfig map[string]string

// Lock returns the config's lock ("" when unlocked).
func (c VMConfig) Lock() string { return c["lock"] }

// Digest returns the config digest.
func (c VMConfig) Digest() string { return c["digest"] }

// Version returns PVE's version, e.g. "8.2.4".
func (c *Client) Version(ctx context.Context) (string, error) {
	var v struct {
		Version string `json:"version"`
		Release string `json:"release"`
	}
	if err := c.get(ctx, "/version", nil, &v); err != nil {
		return "", fmt.Errorf("get pve version: %w", err)
	}
	return v.Version, nil
}

// FindVM finds the node that holds vmid now (guests migrate).
func (c *Client) FindVM(ctx context.Context, vmid pvekeep.VMID) (VMRef, error) {
	var res []struct {
		Type     string   `json:"type"`
		VMID     flexInt  `json:"vmid"`
		Node     string   `json:"node"`
		Status   string   `json:"status"`
		Name     string   `json:"name"`
		Template flexBool `json:"template"`
	}
	if err := c.get(ctx, "/cluster/resources", url.Values{"type": {"vm"}}, &res); err != nil {
		return VMRef{}, fmt.Errorf("find vm %d: %w", vmid, err)
	}
	for _, r := range res {
		if pvekeep.VMID(r.VMID) == vmid && (r.Type == "qemu" || r.Type == "lxc") {
			return VMRef{VMID: vmid, Node: r.Node, Type: r.Type, Status: r.Status,
				Name: r.Name, Template: bool(r.Template)}, nil
		}
	}
	return VMRef{}, fmt.Errorf("find vm %d: %w", vmid, ErrNotFound)
}

// VMStatus reads status/current of a QEMU guest.
func (c *Client) VMStatus(ctx context.Context, node string, vmid pvekeep.VMID) (VMStatus, error) {
	var s struct {
		Status    string  `json:"status"`
		QMPStatus string  `json:"qmpstatus"`
		Lock      string  `json:"lock"`
		Name      string  `json:"name"`
		Uptime    flexInt `json:"uptime"`
	}
	p := fmt.Sprintf("/nodes/%s/qemu/%d/status/current", seg(node), vmid)
	if err := c.get(ctx, p, nil, &s); err != nil {
		return VMStatus{}, fmt.Errorf("get status of vm %d on %s: %w", vmid, node, withVMID(err, vmid))
	}
	return VMStatus{VMID: vmid, Status: s.Status, QMPStatus: s.QMPStatus, Lock: s.Lock,
		Name: s.Name, Uptime: time.Duration(s.Uptime) * time.Second}, nil
}

// VMConfig reads a QEMU guest's config with pending changes applied (PVE's
// default): what the guest will run with after its next stop/start. Use
// VMConfigCurrent for what it runs with now, Pending for the difference.
func (c *Client) VMConfig(ctx context.Context, node string, vmid pvekeep.VMID) (VMConfig, error) {
	return c.vmConfig(ctx, node, vmid, nil)
}
