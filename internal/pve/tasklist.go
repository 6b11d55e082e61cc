package pve

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// TaskFilter narrows a node's task list.
type TaskFilter struct {
	VMID  pvekeep.VMID // 0: any guest
	Type  string       // e.g. "vzdump"; "": any
	Since time.Time    // zero: no lower bound on the start time
}

// TaskInfo is one entry of a node's task list.
type TaskInfo struct {
	UPID      pvekeep.UPID
	Type      string
	ID        string
	User      string // user@realm, or user@realm!token for an API token
	StartTime time.Time
	Running   bool
}

// Tasks lists a node's tasks, running and finished, newest first. It is
// how a job that may have submitted a task without learning its UPID (the
// answer was lost) finds it again instead of submitting twice; a vzdump
// waiting for the node's backup lock shows up here before it shows
// anywhere else.
func (c *Client) Tasks(ctx context.Context, node string, f TaskFilter) ([]TaskInfo, error) {
	q := url.Values{"source": {"all"}, "limit": {"500"}}
	if f.VMID != 0 {
		q.Set("vmid", strconv.Itoa(int(f.VMID)))
	}
	if f.Type != "" {
		q.Set("typefilter", f.Type)
	}
	if !f.Since.IsZero() {
		q.Set("since", strconv.FormatInt(f.Since.Unix(), 10))
	}
	var items []struct {
		UPID      string  `json:"upid"`
		Type      string  `json:"type"`
		ID        string  `json:"id"`
		User      string  `json:"user"`
		TokenID   string  `json:"tokenid"`
		StartTime flexInt `json:"starttime"`
		EndTime   flexInt `json:"endtime"`
	}
	if err := c.get(ctx, fmt.Sprintf("/nodes/%s/tasks", seg(node)), q, &items); err != nil {
		return nil, fmt.Errorf("list tasks of node %s: %w", node, err)
	}
	out := make([]TaskInfo, 0, len(items))
	for _, it := range items {
		user := it.User
		if it.TokenID != "" { // PVE splits "user@realm!token" into user and tokenid
			user += "!" + it.TokenID
		}
		out = append(out, TaskInfo{
			UPID: pvekeep.UPID(it.UPID), Type: it.Type, ID: it.ID, User: user,
			StartTime: time.Unix(int64(it.StartTime), 0).UTC(),
			// A running task has no end time yet (its status reads RUNNING).
			Running: it.EndTime == 0,
		})
	}
	return out, nil
}
