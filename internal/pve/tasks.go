package pve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"time"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// TaskStatus is one reading of a task's status.
type TaskStatus struct {
	UPID       pvekeep.UPID
	Node       string
	Type       string
	ID         string
	User       string
	Running    bool
	ExitStatus string // set once stopped: OK, "WARNINGS: N" or the error text
	StartTime  time.Time
}

// TaskResult is how a finished task ended when it succeeded.
type TaskResult struct {
	UPID       pvekeep.UPID
	ExitStatus string // "OK" or "WARNINGS: N"
	Warnings   int
}

// logTailLines is how much of a failed task's log goes into *TaskError.
const logTailLines = 20

// maxPollFailures is how many consecutive transient failures WaitTask
// rides out before giving up (the task keeps running either way).
const maxPollFailures = 5

// TaskStatus reads the task's status from the node named in the UPID. A
// task that was just started can answer 400 for a moment ("no such task"
// until its status file appears): that 400 is retried a few times, with a
// ctx-aware backoff, before it is returned.
func (c *Client) TaskStatus(ctx context.Context, upid pvekeep.UPID) (TaskStatus, error) {
	info, err := ParseUPID(string(upid))
	if err != nil {
		return TaskStatus{}, fmt.Errorf("get task status: %w", err)
	}
	var s struct {
		Status     string  `json:"status"`
		ExitStatus string  `json:"exitstatus"`
		Node       string  `json:"node"`
		Type       string  `json:"type"`
		ID         string  `json:"id"`
		User       string  `json:"user"`
		StartTime  flexInt `json:"starttime"`
	}
	p := fmt.Sprintf("/nodes/%s/tasks/%s/status", seg(info.Node), seg(string(upid)))
	for attempt := 0; ; attempt++ {
		err = c.get(ctx, p, nil, &s)
		if !isJustBorn(err) || attempt >= c.bornRetries {
			break
		}
		// The first look comes soon (a status file appears within tens of
		// milliseconds); later ones back off to cover about five seconds.
		d := c.backoff / 4 << min(attempt, 5)
		if serr := sleepCtx(ctx, d); serr != nil {
			return TaskStatus{}, fmt.Errorf("get status of task %s: %w", upid, serr)
		}
	}
	if err != nil {
		return TaskStatus{}, fmt.Errorf("get status of task %s: %w", upid, err)
	}
	ts := TaskStatus{
		UPID: upid, Node: info.Node, Type: info.Type, ID: info.ID, User: info.User,
		Running: s.Status == "running", ExitStatus: s.ExitStatus, StartTime: info.StartTime,
	}
	if s.Node != "" {
		ts.Node = s.Node
	}
	if s.StartTime > 0 {
		ts.StartTime = time.Unix(int64(s.StartTime), 0).UTC()
	}
	if s.Status != "running" && s.Status != "stopped" {
		return TaskStatus{}, fmt.Errorf("get status of task %s: unexpected status %q", upid, s.Status)
	}
	return ts, nil
}

// isJustBorn: PVE answers 400 (or 500 "no such task") for a UPID whose
// status is not yet readable.
func isJustBorn(err error) bool {
	var he *HTTPError
	if !errors.As(err, &he) {
		return false
	}
	return he.Code == 400 || errors.Is(err, ErrNotFound)
}

// TaskLog returns the task's log lines from line start (0-based) to the
// end, paging through PVE's limit.
func (c *Client) TaskLog(ctx context.Context, upid pvekeep.UPID, start int) ([]string, error) {
	info, err := ParseUPID(string(upid))
	if err != nil {
		return nil, fmt.Errorf("get task log: %w", err)
	}
	if start < 0 {
		start = 0
	}
	const page = 500
	p := fmt.Sprintf("/nodes/%s/tasks/%s/log", seg(info.Node), seg(string(upid)))
	var lines []string
	for {
		var items []struct {
			N flexInt `json:"n"`
			T string  `json:"t"`
		}
		q := url.Values{"start": {strconv.Itoa(start)}, "limit": {strconv.Itoa(page)}}
		if err := c.get(ctx, p, q, &items); err != nil {
			return nil, fmt.Errorf("get log of task %s: %w", upid, err)
		}
		// An empty log file is answered with one made-up line
		// {n:1, t:"no content"} (PVE::Tools::dump_logfile).
		if start == 0 && len(items) == 1 && items[0].N == 1 && items[0].T == "no content" {
			return nil, nil
		}
		got := 0
		for _, it := range items {
			if int(it.N) <= start { // n is 1-based: line index n-1
				continue
			}
			lines = append(lines, it.T)
			start = int(it.N)
			got++
		}
		if len(items) < page || got == 0 {
			return lines, nil
		}
	}
}

// WaitTask polls until the task stops, then checks its exit status (never
// trust go-proxmox's Task.Wait, which returns nil for a failed task): OK →
// nil; "WARNINGS: N" → nil with Warnings=N; anything else → *TaskError with
// the end of the log. Cancelling ctx stops the wait (not the task).
// Transient failures while polling are ridden out a few times in a row.
func (c *Client) WaitTask(ctx context.Context, upid pvekeep.UPID) (TaskResult, error) {
	failures := 0
	for {
		st, err := c.TaskStatus(ctx, upid)
		switch {
		case err == nil:
			failures = 0
			if !st.Running {
				return c.finish(ctx, st)
			}
		case ctx.Err() != nil:
			return TaskResult{}, fmt.Errorf("wait for task %s: %w", upid, ctx.Err())
		case errors.Is(err, ErrTransient) && failures < maxPollFailures:
			failures++
			c.log.Warn("polling task failed; will retry", slog.String("upid", string(upid)),
				slog.Int("failures", failures), slog.Any("err", err))
		default:
			return TaskResult{}, fmt.Errorf("wait for task %s: %w", upid, err)
		}
		if err := sleepCtx(ctx, c.cfg.PollInterval); err != nil {
			return TaskResult{}, fmt.Errorf("wait for task %s: %w", upid, err)
		}
	}
}

func (c *Client) finish(ctx context.Context, st TaskStatus) (TaskResult, error) {
	if st.ExitStatus == "OK" {
		return TaskResult{UPID: st.UPID, ExitStatus: st.ExitStatus}, nil
	}
	if n, ok := IsWarnings(st.ExitStatus); ok {
		return TaskResult{UPID: st.UPID, ExitStatus: st.ExitStatus, Warnings: n}, nil
	}
	te := &TaskError{UPID: st.UPID, ExitStatus: st.ExitStatus, kind: classifyTask(st.ExitStatus)}
	if lines, err := c.TaskLog(ctx, st.UPID, 0); err == nil {
		if len(lines) > logTailLines {
			lines = lines[len(lines)-logTailLines:]
		}
		te.LogTail = lines
	} else {
		c.log.Warn("read log of failed task", slog.String("upid", string(st.UPID)), slog.Any("err", err))
	}
	if lock, ok := parseLock(st.ExitStatus); ok {
		te.locked = &LockedError{VMID: taskVMID(st), Lock: lock}
	} else {
		for _, l := range te.LogTail {
			if lock, ok := parseLock(l); ok {
				te.locked = &LockedError{VMID: taskVMID(st), Lock: lock}
				break
			}
		}
	}
	return TaskResult{}, te
}

func taskVMID(st TaskStatus) pvekeep.VMID {
	n, _ := strconv.Atoi(st.ID)
	return pvekeep.VMID(n)
}
