package pve

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// VzdumpRequest is one backup of one guest.
type VzdumpRequest struct {
	VMID     pvekeep.VMID
	Storage  string
	Mode     string // snapshot (default), suspend or stop
	Compress string // zstd (default); PVE's own default is none
	// Notes is the backup's note as plain text. It is escaped into a
	// one-line notes-template (backslashes doubled, line breaks as "\n",
	// "{{" broken up so no template variable expands).
	Notes string
}

// Vzdump starts a backup on node, which must be the node that owns the
// guest: elsewhere PVE answers "OK" and does nothing, reported as
// ErrWrongNode. It always sends remove=0 and prune-backups=keep-all=1 so
// PVE never prunes a customer's backups. The POST is sent exactly once and
// never retried: on ErrTransient the backup may or may not have started.
func (c *Client) Vzdump(ctx context.Context, node string, req VzdumpRequest) (pvekeep.UPID, error) {
	if req.VMID <= 0 {
		return "", fmt.Errorf("vzdump: invalid vmid %d", req.VMID)
	}
	if req.Storage == "" {
		return "", fmt.Errorf("vzdump vm %d: storage is required", req.VMID)
	}
	params := map[string]string{
		"vmid":          strconv.Itoa(int(req.VMID)),
		"storage":       req.Storage,
		"mode":          cmp.Or(req.Mode, "snapshot"),
		"compress":      cmp.Or(req.Compress, "zstd"),
		"remove":        "0",
		"prune-backups": "keep-all=1",
	}
	if n := escapeNotesTemplate(req.Notes); strings.TrimSpace(n) != "" {
		params["notes-template"] = n
	}
	var data *string
	p := fmt.Sprintf("/nodes/%s/vzdump", seg(node))
	if err := c.send(ctx, http.MethodPost, p, params, &data); err != nil {
		return "", fmt.Errorf("vzdump vm %d on %s: %w", req.VMID, node, withVMID(err, req.VMID))
	}
	if data == nil {
		return "", fmt.Errorf("vzdump vm %d on %s: empty answer", req.VMID, node)
	}
	if *data == "OK" {
		return "", fmt.Errorf("vzdump vm %d on %s: %w", req.VMID, node, ErrWrongNode)
	}
	if _, err := ParseUPID(*data); err != nil {
		return "", fmt.Errorf("vzdump vm %d on %s: %w", req.VMID, node, err)
	}
	return pvekeep.UPID(*data), nil
}
