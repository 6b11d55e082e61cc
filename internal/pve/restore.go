package pve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// RestoreRequest restores a vzdump archive into a guest id
// (POST /nodes/{node}/qemu with archive=…).
type RestoreRequest struct {
	VMID    pvekeep.VMID
	Archive string // the backup's volid, e.g. "backup:backup/vzdump-qemu-100-….vma.zst"
	// Force overwrites an existing guest: PVE destroys its disks and
	// snapshots first (DESIGN §5). Without it an existing id is
	// ErrAlreadyExists.
	Force bool
	// Storage is where the disks go; "" keeps each disk's storage from the
	// archive.
	Storage string
	// Extra are non-disk options applied in the same call (cores, memory,
	// net0, name, …), over the archive's config. Drive keys are refused
	// here (PVE: "option conflicts with option 'archive'"): disks come from
	// the archive, change them afterwards.
	Extra map[string]string
}

// restoreControl are the create/restore parameters RestoreRequest sets
// itself; Extra may not carry them.
var restoreControl = map[string]bool{
	"vmid": true, "archive": true, "force": true, "storage": true, "node": true,
	"unique": true, "start": true, "live-restore": true, "pool": true,
}

// RestoreVM starts a qmrestore task and returns its UPID. Its progress
// lines read with ParseRestoreProgress. The guest must be stopped and
// unlocked: a running guest is refused before anything is sent (errors.Is
// ErrRunning; PVE would lock the config first and fail only in the task);
// a lock is a *LockedError; an existing guest without Force is
// ErrAlreadyExists. If the task fails, the guest is left unusable (PVE
// frees the old disks first): retry, or reinstall. Sent once, never retried.
func (c *Client) RestoreVM(ctx context.Context, node string, req RestoreRequest) (pvekeep.UPID, error) {
	if req.VMID <= 0 {
		return "", fmt.Errorf("restore: invalid vmid %d", req.VMID)
	}
	if req.Archive == "" {
		return "", fmt.Errorf("restore vm %d: archive is required", req.VMID)
	}
	params := map[string]string{"vmid": strconv.Itoa(int(req.VMID)), "archive": req.Archive}
	if req.Force {
		params["force"] = "1"
	}
	if req.Storage != "" {
		params["storage"] = req.Storage
	}
	for k, v := range req.Extra {
		switch {
		case restoreControl[k]:
			return "", fmt.Errorf("restore vm %d: %s is not an extra option", req.VMID, k)
		case IsDriveKey(k):
			return "", fmt.Errorf("restore vm %d: drive %s cannot be set with a restore", req.VMID, k)
		}
		params[k] = v
	}

	st, err := c.VMStatus(ctx, node, req.VMID)
	switch {
	case err == nil && st.Status == "running":
		return "", fmt.Errorf("restore vm %d on %s: %w", req.VMID, node, ErrRunning)
	case err == nil && st.Lock != "":
		return "", fmt.Errorf("restore vm %d on %s: %w", req.VMID, node, &LockedError{VMID: req.VMID, Lock: st.Lock})
	case err != nil && !errors.Is(err, ErrNotFound):
		return "", fmt.Errorf("restore vm %d: %w", req.VMID, err)
	}

	p := fmt.Sprintf("/nodes/%s/qemu", seg(node))
	upid, err := c.dispatch(ctx, http.MethodPost, p, params)
	if err != nil {
		return "", fmt.Errorf("restore vm %d from %s on %s: %w", req.VMID, req.Archive, node, withVMID(err, req.VMID))
	}
	if upid == "" {
		return "", fmt.Errorf("restore vm %d on %s: no task in the answer", req.VMID, node)
	}
	return upid, nil
}

// CloneRequest copies a guest or template into a new id
// (POST /nodes/{node}/qemu/{vmid}/clone).
type CloneRequest struct {
	Template pvekeep.VMID // the source: a template (or any guest)
	NewID    pvekeep.VMID
	Name     string // the new guest's name; "" lets PVE pick "Copy-of-VM-…"
	// Description of the new guest; "" keeps the source's. A caller can
	// mark the clone as its own with it.
	Description string
	// Full copies every disk. Without it a template is cloned linked
	// (sharing its base disks); a plain guest is always copied in full.
	Full bool
	// Linked asks for a linked clone explicitly (full=0): PVE then refuses
	// a source that is not a template, or a storage that cannot link
	// ("Linked clone feature is not supported for …"), instead of quietly
	// copying it in full.
	Linked bool
	// Storage for the copies (full clones only); "" keeps the source's.
	Storage string
	// Target is the node the clone lands on; "" is the source's node. PVE
	// allows another node only from shared storage.
	Target string
}

// CloneVM starts a qmclone task and returns its UPID. Note the task is
// named after the source: its UPID's id is Template, not NewID. An id that
// is taken is ErrAlreadyExists — after a lost answer that may be this very
// clone, so confirm the guest is ours before treating it as done. Sent
// once, never retried.
func (c *Client) CloneVM(ctx context.Context, node string, req CloneRequest) (pvekeep.UPID, error) {
	if req.Template <= 0 || req.NewID <= 0 {
		return "", fmt.Errorf("clone: invalid vmid %d → %d", req.Template, req.NewID)
	}
	if req.Storage != "" && !req.Full {
		return "", fmt.Errorf("clone vm %d: a storage needs a full clone", req.Template)
	}
	params := map[string]string{"newid": strconv.Itoa(int(req.NewID))}
	if req.Name != "" {
		params["name"] = req.Name
	}
	if req.Description != "" {
		params["description"] = req.Description
	}
	if req.Full && req.Linked {
		return "", fmt.Errorf("clone vm %d: a clone is full or linked, not both", req.Template)
	}
	if req.Full {
		params["full"] = "1"
	}
	if req.Linked {
		params["full"] = "0"
	}
	if req.Storage != "" {
		params["storage"] = req.Storage
	}
	if req.Target != "" {
		params["target"] = req.Target
	}
	p := fmt.Sprintf("/nodes/%s/qemu/%d/clone", seg(node), req.Template)
	upid, err := c.dispatch(ctx, http.MethodPost, p, params)
	if err != nil {
		return "", fmt.Errorf("clone vm %d to %d on %s: %w", req.Template, req.NewID, node, withVMID(err, req.Template))
	}
	if upid == "" {
		return "", fmt.Errorf("clone vm %d to %d on %s: no task in the answer", req.Template, req.NewID, node)
	}
	return upid, nil
}

// DeleteVM destroys a stopped guest with its disks, unreferenced disks
// included (destroy-unreferenced-disks=1), in a qmdestroy task, and returns
// its UPID. purge also removes it from backup jobs, replication and HA. A
// guest that is not there is ErrNotFound (the caller treats that as done;
// it is never retried); a running one is ErrRunning, a protected or locked
// one fails. Sent once.
func (c *Client) DeleteVM(ctx context.Context, node string, vmid pvekeep.VMID, purge bool) (pvekeep.UPID, error) {
	if vmid <= 0 {
		return "", fmt.Errorf("delete vm: invalid vmid %d", vmid)
	}
	q := url.Values{"destroy-unreferenced-disks": {"1"}, "purge": {boolParam(purge)}}
	// DELETE parameters travel in the query, as every PVE client sends them.
	p := fmt.Sprintf("/nodes/%s/qemu/%d?%s", seg(node), vmid, q.Encode())
	upid, err := c.dispatch(ctx, http.MethodDelete, p, nil)
	if err != nil {
		return "", fmt.Errorf("delete vm %d on %s: %w", vmid, node, withVMID(err, vmid))
	}
	return upid, nil
}
