package pve

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// ConfigChange is one update of a guest's config.
type ConfigChange struct {
	// Set are options to write, values as PVE reads them ("cores": "2",
	// "scsi0": Drive.String(), "scsi1": NewDiskDrive(…).String(), "net0":
	// Net.String()).
	Set map[string]string
	// Delete are options to remove.
	Delete []string
	// Digest, when set, makes PVE refuse the change if the config changed
	// since it was read (VMConfig(…).Digest()): ErrDigestMismatch. Use it
	// whenever the change is not idempotent — a new disk "storage:GiB"
	// allocates another volume each time it is sent.
	Digest string
}

// configControl are the update parameters that are not guest options.
var configControl = map[string]bool{
	"node": true, "vmid": true, "digest": true, "delete": true, "revert": true,
	"skiplock": true, "force": true, "background_delay": true,
}

func (ch ConfigChange) params() (map[string]string, error) {
	if len(ch.Set) == 0 && len(ch.Delete) == 0 {
		return nil, fmt.Errorf("no options to change")
	}
	params := make(map[string]string, len(ch.Set)+2)
	for k, v := range ch.Set {
		if configControl[k] || k == "" {
			return nil, fmt.Errorf("%q is not a config option", k)
		}
		params[k] = v
	}
	for _, k := range ch.Delete {
		if configControl[k] || k == "" || strings.Contains(k, ",") {
			return nil, fmt.Errorf("%q is not a config option", k)
		}
		if _, ok := ch.Set[k]; ok {
			return nil, fmt.Errorf("%s is both set and deleted", k)
		}
	}
	if len(ch.Delete) > 0 {
		params["delete"] = strings.Join(ch.Delete, ",") // PVE's list form
	}
	if ch.Digest != "" {
		params["digest"] = ch.Digest
	}
	return params, nil
}

// UpdateConfig changes a guest's config synchronously (PUT …/config). On a
// stopped guest the change applies at once; on a running one PVE hotplugs
// what it can and leaves the rest pending until the next stop/start
// (Pending lists it). A hotplug failure is a 400 whose HTTPError.Errors
// names the option; the change is then still pending. Sent once, never
// retried (a new disk would be allocated twice); with Digest a stale read
// is ErrDigestMismatch, a lock a *LockedError.
func (c *Client) UpdateConfig(ctx context.Context, node string, vmid pvekeep.VMID, ch ConfigChange) error {
	params, err := ch.params()
	if err != nil {
		return fmt.Errorf("update config of vm %d: %w", vmid, err)
	}
	p := fmt.Sprintf("/nodes/%s/qemu/%d/config", seg(node), vmid)
	if err := c.send(ctx, http.MethodPut, p, params, nil); err != nil {
		return fmt.Errorf("update config of vm %d on %s: %w", vmid, node, withVMID(err, vmid))
	}
	return nil
}

// UpdateConfigAsync is UpdateConfig as a qmconfig task (POST …/config),
// for changes that take time (allocating a disk on slow storage). It
// returns the UPID; "" means PVE finished it inside the call. The digest
// and lock checks happen before the task starts (and again inside it).
func (c *Client) UpdateConfigAsync(ctx context.Context, node string, vmid pvekeep.VMID, ch ConfigChange) (pvekeep.UPID, error) {
	params, err := ch.params()
	if err != nil {
		return "", fmt.Errorf("update config of vm %d: %w", vmid, err)
	}
	p := fmt.Sprintf("/nodes/%s/qemu/%d/config", seg(node), vmid)
	upid, err := c.dispatch(ctx, http.MethodPost, p, params)
	if err != nil {
		return "", fmt.Errorf("update config of vm %d on %s: %w", vmid, node, withVMID(err, vmid))
	}
	return upid, nil
}

// VMConfigCurrent reads the config the guest runs with now (current=1),
// without pending changes. VMConfig reads it with pending changes applied:
// what the guest will have after its next stop/start.
func (c *Client) VMConfigCurrent(ctx context.Context, node string, vmid pvekeep.VMID) (VMConfig, error) {
	return c.vmConfig(ctx, node, vmid, url.Values{"current": {"1"}})
}

func (c *Client) vmConfig(ctx context.Context, node string, vmid pvekeep.VMID, q url.Values) (VMConfig, error) {
	var raw map[string]json.RawMessage
	p := fmt.Sprintf("/nodes/%s/qemu/%d/config", seg(node), vmid)
	if err := c.get(ctx, p, q, &raw); err != nil {
		return nil, fmt.Errorf("get config of vm %d on %s: %w", vmid, node, withVMID(err, vmid))
	}
	cfg := make(VMConfig, len(raw))
	for k, v := range raw {
		cfg[k] = rawString(v)
	}
	return cfg, nil
}

// PendingItem is one option of GET …/pending: its current value and, when
// a change waits for the next stop/start, the pending value or delete.
type PendingItem struct {
	Key        string
	Value      string // current value; "" when HasValue is false
	HasValue   bool
	Pending    string // the value it will get; "" when HasPending is false
	HasPending bool
	Delete     bool // the option will be removed
	Force      bool // … by a forced delete (PVE's delete=2)
}

// Changing reports whether a change of this option is pending.
func (p PendingItem) Changing() bool { return p.HasPending || p.Delete }

// Pending lists the guest's options with their pending changes, sorted by
// key. PendingChanges filters the ones that will change.
func (c *Client) Pending(ctx context.Context, node string, vmid pvekeep.VMID) ([]PendingItem, error) {
	var items []struct {
		Key     string          `json:"key"`
		Value   json.RawMessage `json:"value"`
		Pending json.RawMessage `json:"pending"`
		Delete  flexInt         `json:"delete"`
	}
	p := fmt.Sprintf("/nodes/%s/qemu/%d/pending", seg(node), vmid)
	if err := c.get(ctx, p, nil, &items); err != nil {
		return nil, fmt.Errorf("get pending config of vm %d on %s: %w", vmid, node, withVMID(err, vmid))
	}
	out := make([]PendingItem, 0, len(items))
	for _, it := range items {
		pi := PendingItem{Key: it.Key, Delete: it.Delete > 0, Force: it.Delete == 2}
		if present(it.Value) {
			pi.Value, pi.HasValue = rawString(it.Value), true
		}
		if present(it.Pending) {
			pi.Pending, pi.HasPending = rawString(it.Pending), true
		}
		out = append(out, pi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// PendingChanges keeps the items whose change is pending.
func PendingChanges(items []PendingItem) []PendingItem {
	var out []PendingItem
	for _, it := range items {
		if it.Changing() {
			out = append(out, it)
		}
	}
	return out
}

func present(b json.RawMessage) bool {
	s := strings.TrimSpace(string(b))
	return s != "" && s != "null"
}

// ResizeDisk grows a disk (PUT …/resize). size is absolute ("32G") or
// relative ("+2G"), digits with an optional fraction and K/M/G/T
// (FormatSizeGiB writes one). PVE 8+ runs it as a "resize" task whose UPID
// is returned; older PVE answers null once done, which is "" and nil. A
// size below the current one is ErrShrink — from the call on older PVE,
// from the task (WaitTask) on PVE 8+; the same size is a successful no-op.
// A disk the guest lacks is ErrNotFound. Sent once.
func (c *Client) ResizeDisk(ctx context.Context, node string, vmid pvekeep.VMID, disk, size string) (pvekeep.UPID, error) {
	if !IsDriveKey(disk) {
		return "", fmt.Errorf("resize vm %d: %q is not a disk", vmid, disk)
	}
	if !resizeSizeRe.MatchString(size) {
		return "", fmt.Errorf("resize vm %d %s: invalid size %q", vmid, disk, size)
	}
	p := fmt.Sprintf("/nodes/%s/qemu/%d/resize", seg(node), vmid)
	upid, err := c.dispatch(ctx, http.MethodPut, p, map[string]string{"disk": disk, "size": size})
	if err != nil {
		return "", fmt.Errorf("resize %s of vm %d to %s on %s: %w", disk, vmid, size, node, withVMID(err, vmid))
	}
	return upid, nil
}
