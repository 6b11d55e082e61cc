package pve

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// What the plugin asks about a server itself rather than about one guest:
// for server.test and the module settings' dropdowns (server.options).

// Permissions reads the caller's effective privileges on one ACL path
// (GET /access/permissions?path=…), which every user and token may ask
// about itself. The answer holds each granted privilege; inherited grants
// count (PVE resolves propagation itself).
func (c *Client) Permissions(ctx context.Context, path string) (map[string]bool, error) {
	var res map[string]map[string]json.RawMessage // privilege → propagate (1/0)
	if err := c.get(ctx, "/access/permissions", url.Values{"path": {path}}, &res); err != nil {
		return nil, fmt.Errorf("read permissions on %s: %w", path, err)
	}
	out := map[string]bool{}
	for priv := range res[path] {
		out[priv] = true
	}
	return out, nil
}

// Node is one cluster member from GET /nodes.
type Node struct {
	Name   string
	Online bool
	// Mem and MaxMem are the node's used and total memory in bytes (0
	// when PVE did not say): what a new VM's placement weighs.
	Mem, MaxMem int64
}

// Nodes lists the cluster's nodes, sorted by name.
func (c *Client) Nodes(ctx context.Context) ([]Node, error) {
	var res []struct {
		Node   string  `json:"node"`
		Status string  `json:"status"`
		Mem    flexInt `json:"mem"`
		MaxMem flexInt `json:"maxmem"`
	}
	if err := c.get(ctx, "/nodes", nil, &res); err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	out := make([]Node, 0, len(res))
	for _, n := range res {
		out = append(out, Node{Name: n.Node, Online: n.Status == "online", Mem: int64(n.Mem), MaxMem: int64(n.MaxMem)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Storage is one storage as a node sees it (GET /nodes/{node}/storage).
// PVE lists only the storages the caller may audit or allocate on.
type Storage struct {
	ID      string
	Type    string   // dir, lvmthin, zfspool, pbs, nfs, …
	Content []string // backup, images, rootdir, iso, …
	Enabled bool
	Active  bool
	Shared  bool
}

// Holds reports whether the storage takes content of kind ct.
func (s Storage) Holds(ct string) bool {
	for _, c := range s.Content {
		if c == ct {
			return true
		}
	}
	return false
}

// Storages lists the storages configured for node, sorted by id.
func (c *Client) Storages(ctx context.Context, node string) ([]Storage, error) {
	var res []struct {
		Storage string   `json:"storage"`
		Type    string   `json:"type"`
		Content string   `json:"content"`
		Enabled flexBool `json:"enabled"`
		Active  flexBool `json:"active"`
		Shared  flexBool `json:"shared"`
	}
	if err := c.get(ctx, fmt.Sprintf("/nodes/%s/storage", seg(node)), nil, &res); err != nil {
		return nil, fmt.Errorf("list storages of %s: %w", node, err)
	}
	out := make([]Storage, 0, len(res))
	for _, r := range res {
		var content []string
		for _, ct := range strings.Split(r.Content, ",") {
			if ct = strings.TrimSpace(ct); ct != "" {
				content = append(content, ct)
			}
		}
		out = append(out, Storage{ID: r.Storage, Type: r.Type, Content: content,
			Enabled: bool(r.Enabled), Active: bool(r.Active), Shared: bool(r.Shared)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Bridges lists node's Linux and OVS bridges (GET
// /nodes/{node}/network?type=any_bridge), sorted by name.
func (c *Client) Bridges(ctx context.Context, node string) ([]string, error) {
	var res []struct {
		Iface string `json:"iface"`
		Type  string `json:"type"`
	}
	q := url.Values{"type": {"any_bridge"}}
	if err := c.get(ctx, fmt.Sprintf("/nodes/%s/network", seg(node)), q, &res); err != nil {
		return nil, fmt.Errorf("list bridges of %s: %w", node, err)
	}
	var out []string
	for _, r := range res {
		if r.Type == "bridge" || r.Type == "OVSBridge" {
			out = append(out, r.Iface)
		}
	}
	sort.Strings(out)
	return out, nil
}
