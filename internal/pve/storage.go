package pve

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/pvekeep/pvekeep/internal/lazyre"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// Volume is one item of a storage's content listing. Decoded with our own
// struct: go-proxmox's StorageContent mis-tags "protected".
type Volume struct {
	Volid     string
	Content   string // "backup"
	Format    string // e.g. "vma.zst", "pbs-vm"
	Subtype   string // "qemu" or "lxc" for backups
	VMID      pvekeep.VMID
	Size      int64
	CTime     time.Time // UTC
	Notes     string    // first line only (PVE returns no more in a listing)
	Protected bool
}

type volumeJSON struct {
	Volid     string   `json:"volid"`
	Content   string   `json:"content"`
	Format    string   `json:"format"`
	Subtype   string   `json:"subtype"`
	VMID      flexInt  `json:"vmid"`
	Size      flexInt  `json:"size"`
	CTime     flexInt  `json:"ctime"`
	Notes     string   `json:"notes"`
	Protected flexBool `json:"protected"`
}

func (v volumeJSON) volume() Volume {
	out := Volume{
		Volid: v.Volid, Content: v.Content, Format: v.Format, Subtype: v.Subtype,
		VMID: pvekeep.VMID(v.VMID), Size: int64(v.Size), Notes: v.Notes, Protected: bool(v.Protected),
	}
	if v.CTime > 0 {
		out.CTime = time.Unix(int64(v.CTime), 0).UTC()
	}
	return out
}

// ListBackups lists the backup volumes of vmid on a storage (vmid 0: all).
func (c *Client) ListBackups(ctx context.Context, node, storage string, vmid pvekeep.VMID) ([]Volume, error) {
	q := url.Values{"content": {"backup"}}
	if vmid > 0 {
		q.Set("vmid", strconv.Itoa(int(vmid)))
	}
	var items []volumeJSON
	p := fmt.Sprintf("/nodes/%s/storage/%s/content", seg(node), seg(storage))
	if err := c.get(ctx, p, q, &items); err != nil {
		return nil, fmt.Errorf("list backups of vm %d on %s/%s: %w", vmid, node, storage, err)
	}
	out := make([]Volume, 0, len(items))
	for _, it := range items {
		out = append(out, it.volume())
	}
	return out, nil
}

var backupVMIDRe = lazyre.New(`(?:^|/)vzdump-(?:qemu|lxc|openvz)-(\d+)-|^[^:]*:backup/(?:vm|ct)/(\d+)/`)

// Volume finds one backup volume by volid. It reads the content listing
// (filtered by the vmid named in the volid when there is one) rather than
// GET …/content/{volume}, which answers a missing file with an unhelpful
// "volume_size_info … failed" 500 and leaves out ctime and vmid.
func (c *Client) Volume(ctx context.Context, node, storage, volid string) (Volume, error) {
	var vmid pvekeep.VMID
	if m := backupVMIDRe.FindStringSubmatch(volid); m != nil {
		n, _ := strconv.Atoi(m[1] + m[2])
		vmid = pvekeep.VMID(n)
	}
	vols, err := c.ListBackups(ctx, node, storage, vmid)
	if err != nil {
		return Volume{}, fmt.Errorf("get volume %s: %w", volid, err)
	}
	for _, v := range vols {
		if v.Volid == volid {
			return v, nil
		}
	}
	return Volume{}, fmt.Errorf("get volume %s on %s/%s: %w", volid, node, storage, ErrNoSuchVolume)
}

// DeleteVolume removes a backup volume. PVE does it in an "imgdel" task,
// whose UPID is returned (wait on it: a protected volume makes the task
// fail); "" means PVE removed it synchronously. A volume that is not there
// is ErrNoSuchVolume: PVE would happily "delete" a missing archive, so it
// is looked up first. Sent once, never retried.
func (c *Client) DeleteVolume(ctx context.Context, node, storage, volid string) (pvekeep.UPID, error) {
	if _, err := c.Volume(ctx, node, storage, volid); err != nil {
		return "", fmt.Errorf("delete volume: %w", err)
	}
	var upid *string
	p := fmt.Sprintf("/nodes/%s/storage/%s/content/%s", seg(node), seg(storage), seg(volid))
	if err := c.send(ctx, http.MethodDelete, p, nil, &upid); err != nil {
		return "", fmt.Errorf("delete volume %s: %w", volid, err)
	}
	if upid == nil {
		return "", nil
	}
	return pvekeep.UPID(*upid), nil
}

// SetVolumeNotes replaces a backup's notes (PUT, synchronous).
func (c *Client) SetVolumeNotes(ctx context.Context, node, storage, volid, notes string) error {
	p := fmt.Sprintf("/nodes/%s/storage/%s/content/%s", seg(node), seg(storage), seg(volid))
	if err := c.send(ctx, http.MethodPut, p, map[string]string{"notes": notes}, nil); err != nil {
		return fmt.Errorf("set notes of %s: %w", volid, err)
	}
	return nil
}

// SetVolumeProtected sets or clears a backup's protection (PUT, synchronous).
func (c *Client) SetVolumeProtected(ctx context.Context, node, storage, volid string, protected bool) error {
	p := fmt.Sprintf("/nodes/%s/storage/%s/content/%s", seg(node), seg(storage), seg(volid))
	if err := c.send(ctx, http.MethodPut, p, map[string]string{"protected": boolParam(protected)}, nil); err != nil {
		return fmt.Errorf("set protection of %s: %w", volid, err)
	}
	return nil
}
