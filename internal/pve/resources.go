package pve

import (
	"context"
	"fmt"
	"net/url"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// Guest is one guest of the cluster as /cluster/resources lists it: where
// it runs, its power state and Proxmox's lock on it ("" = none).
type Guest struct {
	VMRef
	Lock string
}

// Guests lists every QEMU and LXC guest of the cluster in one request:
// what a tick refreshes the cached facts of all its services' VMs from,
// instead of asking per VM.
func (c *Client) Guests(ctx context.Context) ([]Guest, error) {
	var res []struct {
		Type     string   `json:"type"`
		VMID     flexInt  `json:"vmid"`
		Node     string   `json:"node"`
		Status   string   `json:"status"`
		Name     string   `json:"name"`
		Template flexBool `json:"template"`
		Lock     string   `json:"lock"`
	}
	// Streamed: over thousands of guests the answer is megabytes.
	if err := c.getStreamed(ctx, "/cluster/resources", url.Values{"type": {"vm"}}, &res); err != nil {
		return nil, fmt.Errorf("list guests: %w", err)
	}
	out := make([]Guest, 0, len(res))
	for _, r := range res {
		if r.Type != "qemu" && r.Type != "lxc" {
			continue
		}
		out = append(out, Guest{
			VMRef: VMRef{VMID: pvekeep.VMID(r.VMID), Node: r.Node, Type: r.Type, Status: r.Status, Name: r.Name, Template: bool(r.Template)},
			Lock:  r.Lock,
		})
	}
	return out, nil
}
