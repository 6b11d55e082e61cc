package pve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/pvekeep/pvekeep/internal/lazyre"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// Snapshot errors (see also classifyTask).
var (
	// ErrInvalidSnapshotName: a name PVE would refuse (not a pve-configid
	// of 2–40 characters, or the reserved "current" / "pending"). Checked
	// before anything is sent.
	ErrInvalidSnapshotName = errors.New("pve: invalid snapshot name")
	// ErrNotNewestSnapshot: the guest's disks are on a storage that rolls
	// back only to a volume's newest snapshot (ZFS) and the target is not
	// it ("can't rollback, 'X' is not most recent snapshot on 'vol'"). PVE
	// refuses before it stops the guest or changes anything. Remove the
	// newer snapshots first, or choose the newest.
	ErrNotNewestSnapshot = errors.New("pve: not the most recent snapshot on a storage that rolls back only to that")
)

// snapshotNameRe is PVE's pve-configid; the schema adds maxLength 40.
var snapshotNameRe = lazyre.New(`^[A-Za-z][A-Za-z0-9_-]+$`)

// ValidSnapshotName reports whether PVE accepts name for a new snapshot:
// a letter, then letters, digits, "_" or "-", 2–40 characters in all, and
// not "current" or "pending" (any case).
func ValidSnapshotName(name string) bool {
	return len(name) <= 40 && snapshotNameRe.MatchString(name) &&
		name != "current" && !strings.EqualFold(name, "pending")
}

// Snapshot is one snapshot of a guest.
type Snapshot struct {
	Name        string
	Description string    // "" when none
	Time        time.Time // snaptime, UTC; zero when PVE has none
	VMState     bool      // the guest's RAM was saved with it: a rollback resumes the guest
	Parent      string    // the snapshot it was taken after; "" for the first
	// State is PVE's snapstate while a task works on the snapshot, or after
	// one failed half-way: "prepare" (being taken) or "delete" (being
	// removed). "" for a complete snapshot; only those can be rolled back to.
	State string
}

// Snapshots is a guest's snapshot list (GET …/snapshot) with PVE's
// "current" entry taken apart.
type Snapshots struct {
	Items   []Snapshot // oldest first (by Time; within a second parents first, then by Name)
	Current string     // the snapshot the guest's present state descends from; "" when none
	Running bool       // the guest runs
	Digest  string     // the guest config's digest
}

// Find returns the snapshot called name.
func (s Snapshots) Find(name string) (Snapshot, bool) {
	for _, it := range s.Items {
		if it.Name == name {
			return it, true
		}
	}
	return Snapshot{}, false
}

// Snapshots lists a guest's snapshots. A missing guest is ErrNotFound.
// Retried on transient failures (a GET).
func (c *Client) Snapshots(ctx context.Context, node string, vmid pvekeep.VMID) (Snapshots, error) {
	var items []struct {
		Name        string   `json:"name"`
		Description string   `json:"description"`
		SnapTime    flexInt  `json:"snaptime"`
		VMState     flexBool `json:"vmstate"`
		Parent      string   `json:"parent"`
		SnapState   string   `json:"snapstate"`
		Running     flexBool `json:"running"`
		Digest      string   `json:"digest"`
	}
	if err := c.get(ctx, snapshotPath(node, vmid, ""), nil, &items); err != nil {
		return Snapshots{}, fmt.Errorf("list snapshots of vm %d on %s: %w", vmid, node, withVMID(err, vmid))
	}
	var out Snapshots
	for _, it := range items {
		if it.Name == "current" {
			out.Current, out.Running, out.Digest = it.Parent, bool(it.Running), it.Digest
			continue
		}
		sn := Snapshot{Name: it.Name, Description: it.Description, VMState: bool(it.VMState),
			Parent: it.Parent, State: it.SnapState}
		if it.SnapTime > 0 {
			sn.Time = time.Unix(int64(it.SnapTime), 0).UTC()
		}
		out.Items = append(out.Items, sn)
	}
	slices.SortStableFunc(out.Items, func(a, b Snapshot) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		// snaptime has whole seconds: within one, a parent comes first
		switch {
		case b.Parent == a.Name:
			return -1
		case a.Parent == b.Name:
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out, nil
}

// SnapshotRequest takes a snapshot (POST …/snapshot).
type SnapshotRequest struct {
	VMID        pvekeep.VMID
	Name        string // see ValidSnapshotName
	Description string // stored with the snapshot; "" for none
	// VMState saves the guest's RAM too, so a rollback resumes it where it
	// was. PVE ignores it for a guest that is not running.
	VMState bool
}

// CreateSnapshot starts a qmsnapshot task and returns its UPID. A bad name
// is ErrInvalidSnapshotName and nothing is sent. The task holds the
// guest's lock "snapshot"; it fails with a *LockedError when the guest is
// locked (a backup running, another snapshot task), with ErrAlreadyExists
// when the name is taken. Sent once, never retried: after an ambiguous
// failure, list the snapshots to see whether it was taken.
func (c *Client) CreateSnapshot(ctx context.Context, node string, req SnapshotRequest) (pvekeep.UPID, error) {
	if !ValidSnapshotName(req.Name) {
		return "", fmt.Errorf("snapshot vm %d: %q: %w", req.VMID, req.Name, ErrInvalidSnapshotName)
	}
	params := map[string]string{"snapname": req.Name}
	if req.Description != "" {
		params["description"] = req.Description
	}
	if req.VMState {
		params["vmstate"] = "1"
	}
	upid, err := c.dispatch(ctx, http.MethodPost, snapshotPath(node, req.VMID, ""), params)
	if err != nil {
		return "", fmt.Errorf("snapshot vm %d on %s as %s: %w", req.VMID, node, req.Name, withVMID(err, req.VMID))
	}
	return upid, nil
}

// RollbackSnapshot starts a qmrollback task that returns the guest to
// snapshot name and returns its UPID. PVE stops a running guest hard
// first; afterwards it runs again only when the snapshot holds its RAM or
// start is set (start came with qemu-server in late 2022, PVE 7.3; it is
// sent only when set). The
// guest keeps its current description. The task holds lock "rollback";
// it fails with a *LockedError when the guest is locked, ErrNotFound when
// there is no such snapshot, ErrNotNewestSnapshot on a newest-only
// storage — those three before anything changed. Sent once, never retried.
func (c *Client) RollbackSnapshot(ctx context.Context, node string, vmid pvekeep.VMID, name string, start bool) (pvekeep.UPID, error) {
	if name == "" || strings.Contains(name, "/") {
		return "", fmt.Errorf("roll back vm %d: %q: %w", vmid, name, ErrInvalidSnapshotName)
	}
	var params map[string]string
	if start {
		params = map[string]string{"start": "1"}
	}
	upid, err := c.dispatch(ctx, http.MethodPost, snapshotPath(node, vmid, name)+"/rollback", params)
	if err != nil {
		return "", fmt.Errorf("roll back vm %d on %s to %s: %w", vmid, node, name, withVMID(err, vmid))
	}
	return upid, nil
}

// DeleteSnapshot starts a qmdelsnapshot task and returns its UPID. The
// task holds lock "snapshot-delete"; a missing snapshot fails it with
// ErrNotFound (a caller removing it treats that as done), a locked guest
// with a *LockedError. force drops the snapshot from the config even if
// removing a disk's snapshot fails. Sent once, never retried.
func (c *Client) DeleteSnapshot(ctx context.Context, node string, vmid pvekeep.VMID, name string, force bool) (pvekeep.UPID, error) {
	if name == "" || strings.Contains(name, "/") {
		return "", fmt.Errorf("delete snapshot of vm %d: %q: %w", vmid, name, ErrInvalidSnapshotName)
	}
	p := snapshotPath(node, vmid, name)
	if force {
		p += "?force=1"
	}
	upid, err := c.dispatch(ctx, http.MethodDelete, p, nil)
	if err != nil {
		return "", fmt.Errorf("delete snapshot %s of vm %d on %s: %w", name, vmid, node, withVMID(err, vmid))
	}
	return upid, nil
}

// SnapshotConfig reads the guest config saved with a snapshot (with its
// snaptime, parent, description and, for a RAM snapshot, vmstate). A
// missing snapshot or guest is ErrNotFound.
func (c *Client) SnapshotConfig(ctx context.Context, node string, vmid pvekeep.VMID, name string) (VMConfig, error) {
	var raw map[string]json.RawMessage
	if err := c.get(ctx, snapshotPath(node, vmid, name)+"/config", nil, &raw); err != nil {
		return nil, fmt.Errorf("get config of snapshot %s of vm %d on %s: %w", name, vmid, node, withVMID(err, vmid))
	}
	cfg := make(VMConfig, len(raw))
	for k, v := range raw {
		cfg[k] = rawString(v)
	}
	return cfg, nil
}

// SetSnapshotDescription replaces a snapshot's description (synchronous).
// A locked guest is a *LockedError, a missing snapshot ErrNotFound.
func (c *Client) SetSnapshotDescription(ctx context.Context, node string, vmid pvekeep.VMID, name, description string) error {
	err := c.send(ctx, http.MethodPut, snapshotPath(node, vmid, name)+"/config",
		map[string]string{"description": description}, nil)
	if err != nil {
		return fmt.Errorf("describe snapshot %s of vm %d on %s: %w", name, vmid, node, withVMID(err, vmid))
	}
	return nil
}

func snapshotPath(node string, vmid pvekeep.VMID, name string) string {
	p := fmt.Sprintf("/nodes/%s/qemu/%d/snapshot", seg(node), vmid)
	if name != "" {
		p += "/" + seg(name)
	}
	return p
}
