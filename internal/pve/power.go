package pve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// dispatch sends one task-starting request exactly once and returns the
// UPID it answered. A null answer is "" (PVE did the work synchronously);
// anything else that is not a UPID is an error.
func (c *Client) dispatch(ctx context.Context, method, path string, params map[string]string) (pvekeep.UPID, error) {
	var data *string
	if err := c.send(ctx, method, path, params, &data); err != nil {
		return "", err
	}
	if data == nil || *data == "" {
		return "", nil
	}
	if _, err := ParseUPID(*data); err != nil {
		return "", fmt.Errorf("%s %s: answer is not a task: %w", method, path, err)
	}
	return pvekeep.UPID(*data), nil
}

// messageOf is PVE's message of an HTTP failure, "" for anything else.
func messageOf(err error) string {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Message + " " + strings.Join(mapValues(he.Errors), " ")
	}
	return ""
}

func mapValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, m[k])
	}
	return out
}

// StartVM starts a stopped guest (a qmstart task, or hastart for an HA
// guest) and returns its UPID. A guest that already runs is not an error:
// StartVM returns "" and nil without starting a task (bpg's StartVMAsync),
// both when status/current says so and when PVE answers "already running".
// A guest paused inside a backup (lock backup) is started, which resumes
// it, as PVE does. If another start wins the race the task fails with
// "VM N already running": WaitTask's error is then errors.Is ErrRunning,
// which a caller that wanted it running treats as done. Sent once.
func (c *Client) StartVM(ctx context.Context, node string, vmid pvekeep.VMID) (pvekeep.UPID, error) {
	st, err := c.VMStatus(ctx, node, vmid)
	if err != nil {
		return "", fmt.Errorf("start vm %d: %w", vmid, err)
	}
	paused := st.QMPStatus == "paused" || st.QMPStatus == "prelaunch"
	if st.Status == "running" && !(paused && st.Lock == "backup") {
		return "", nil
	}
	p := fmt.Sprintf("/nodes/%s/qemu/%d/status/start", seg(node), vmid)
	upid, err := c.dispatch(ctx, http.MethodPost, p, nil)
	if err != nil {
		if strings.Contains(messageOf(err), "already running") {
			return "", nil
		}
		return "", fmt.Errorf("start vm %d on %s: %w", vmid, node, withVMID(err, vmid))
	}
	return upid, nil
}

// StopVM stops a guest at once, like pulling the plug (a qmstop task), and
// returns its UPID. A guest that is already stopped is not an error: ""
// and nil, no task (PVE itself would run a task that does nothing). Sent
// once; a locked guest makes the task fail with a *LockedError.
func (c *Client) StopVM(ctx context.Context, node string, vmid pvekeep.VMID) (pvekeep.UPID, error) {
	return c.stop(ctx, "stop", node, vmid, nil)
}

// ShutdownVM asks the guest OS to power off (ACPI, or the guest agent when
// enabled) in a qmshutdown task and returns its UPID; timeout > 0 bounds
// PVE's wait (whole seconds), after which the task fails: follow with
// StopVM when the guest must go down. A stopped guest is "" and nil, as
// for StopVM. A paused guest is refused by PVE ("VM is paused - cannot
// shutdown").
func (c *Client) ShutdownVM(ctx context.Context, node string, vmid pvekeep.VMID, timeout time.Duration) (pvekeep.UPID, error) {
	var params map[string]string
	if timeout > 0 {
		secs := int64((timeout + time.Second - 1) / time.Second)
		params = map[string]string{"timeout": strconv.FormatInt(secs, 10)}
	}
	return c.stop(ctx, "shutdown", node, vmid, params)
}

func (c *Client) stop(ctx context.Context, how, node string, vmid pvekeep.VMID, params map[string]string) (pvekeep.UPID, error) {
	st, err := c.VMStatus(ctx, node, vmid)
	if err != nil {
		return "", fmt.Errorf("%s vm %d: %w", how, vmid, err)
	}
	if st.Status == "stopped" {
		return "", nil
	}
	p := fmt.Sprintf("/nodes/%s/qemu/%d/status/%s", seg(node), vmid, how)
	upid, err := c.dispatch(ctx, http.MethodPost, p, params)
	if err != nil {
		if strings.Contains(messageOf(err), "not running") {
			return "", nil
		}
		return "", fmt.Errorf("%s vm %d on %s: %w", how, vmid, node, withVMID(err, vmid))
	}
	return upid, nil
}
