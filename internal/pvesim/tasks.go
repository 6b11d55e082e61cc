package pvesim

import (
	"github.com/pvekeep/pvekeep/internal/lazyre"

	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// task is one simulated worker process with its log.
type task struct {
	upid, node, typ, id, user string
	pid                       int
	pstart                    int64
	start                     time.Time // simulated wall time
	born                      time.Time // real time, for the just-forked window
	lines                     []string
	running                   bool
	exit                      string
	end                       time.Time
	ended                     time.Time // real time it ended, for TaskState.Elapsed
}

// taskSpec describes a task to start.
type taskSpec struct {
	node, typ, id, user string
	vmid                int // for matching task faults; 0 when none
	// ownsFaults means run applies a matched fault itself (vzdump fails
	// mid-backup); otherwise a failing fault replaces run entirely.
	ownsFaults bool
	run        func(c *taskCtx) error
}

// taskCtx is what a running task sees.
type taskCtx struct {
	s        *Sim
	t        *task
	ctx      context.Context
	warnings int
	fault    *TaskFault
}

// errNoStatus ends a task without a final "TASK …" line, as a worker that
// calls exit() does; PVE then reports "unexpected status".
var errNoStatus = errors.New("worker exited without status")

func (c *taskCtx) logf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	for _, l := range strings.Split(strings.TrimRight(line, "\n"), "\n") {
		c.t.lines = append(c.t.lines, l)
	}
}

// warnf logs a warning line and counts it, like log_warn.
func (c *taskCtx) warnf(format string, args ...any) {
	c.warnings++
	c.logf("WARN: "+format, args...)
}

// sleep waits a simulated duration.
func (c *taskCtx) sleep(d time.Duration) error { return c.s.sleep(c.ctx, d) }

// now is the simulated wall time.
func (c *taskCtx) now() time.Time { return c.s.now() }

var reUPID = lazyre.New(`^UPID:([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):([^:\s/]+):([^:\s/]*):([^:\s/]+):$`)

// nodeBoot is when a node booted, for pstart (clock ticks since boot).
func (s *Sim) nodeBoot(node string) time.Time {
	return s.bootTime.Add(-time.Duration(3+len(node)) * 24 * time.Hour)
}

// startTask forks a simulated worker and returns its UPID.
func (s *Sim) startTask(spec taskSpec) string {
	now := s.now()
	s.mu.Lock()
	pid := s.allocPID()
	pstart := int64(now.Sub(s.nodeBoot(spec.node)).Seconds() * 100)
	upid := fmt.Sprintf("UPID:%s:%08X:%08X:%08X:%s:%s:%s:", spec.node, pid, pstart, now.Unix(), spec.typ, spec.id, spec.user)
	t := &task{
		upid: upid, node: spec.node, typ: spec.typ, id: spec.id, user: spec.user,
		pid: pid, pstart: pstart, start: now, born: time.Now(), running: true,
	}
	s.tasks[upid] = t
	s.taskOrder = append(s.taskOrder, t)
	fault := s.takeTaskFault(spec.typ, spec.vmid)
	s.mu.Unlock()

	c := &taskCtx{s: s, t: t, ctx: s.ctx, fault: fault}
	s.log.Debug("task started", "upid", upid)
	s.tasksW.Add(1)
	go func() {
		defer s.tasksW.Done()
		s.finishTask(c, s.runTask(c, spec))
	}()
	return upid
}

func (s *Sim) runTask(c *taskCtx, spec taskSpec) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("simulator panic: %v", p)
		}
	}()
	if c.fault != nil && !spec.ownsFaults {
		if _, ok := isWarnings(c.fault.ExitStatus); !ok && c.fault.ExitStatus != "OK" {
			if err := c.sleep(time.Second); err != nil {
				return err
			}
			return errors.New(c.fault.ExitStatus)
		}
	}
	return spec.run(c)
}

// finishTask writes the final log line and the exit status.
func (s *Sim) finishTask(c *taskCtx, err error) {
	if err == nil && c.fault != nil {
		if n, ok := isWarnings(c.fault.ExitStatus); ok {
			for c.warnings < n {
				c.warnf("simulated warning %d", c.warnings+1)
			}
		}
	}
	var exit, last string
	switch {
	case errors.Is(err, errNoStatus):
		exit = "unexpected status"
	case errors.Is(err, context.Canceled):
		exit, last = "interrupted by signal", "TASK ERROR: interrupted by signal"
	case err != nil:
		msg := strings.TrimRight(err.Error(), "\n")
		if i := strings.LastIndex(msg, "\n"); i >= 0 {
			msg = msg[i+1:]
		}
		exit, last = msg, "TASK ERROR: "+msg
	case c.warnings > 0:
		exit = fmt.Sprintf("WARNINGS: %d", c.warnings)
		last = "TASK " + exit
	default:
		exit, last = "OK", "TASK OK"
	}
	if last != "" {
		c.logf("%s", last)
	}
	s.mu.Lock()
	c.t.running = false
	c.t.exit = exit
	c.t.end = s.now()
	c.t.ended = time.Now()
	s.mu.Unlock()
	s.log.Debug("task finished", "upid", c.t.upid, "exitstatus", exit)
}

func isWarnings(status string) (int, bool) {
	rest, ok := strings.CutPrefix(status, "WARNINGS: ")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil
}

func (s *Sim) taskJSON(t *task, withStatus bool) map[string]any {
	out := map[string]any{
		"upid":      t.upid,
		"node":      t.node,
		"pid":       t.pid,
		"pstart":    t.pstart,
		"starttime": t.start.Unix(),
		"type":      t.typ,
		"id":        t.id,
		"user":      t.user,
	}
	if user, tokenid, ok := strings.Cut(t.user, "!"); ok {
		out["user"], out["tokenid"] = user, tokenid
	}
	if withStatus {
		if t.running {
			out["status"] = "running"
		} else {
			out["status"] = "stopped"
			out["exitstatus"] = t.exit
		}
	}
	return out
}

// lookupTask finds a task by the UPID in a request; the path node must be
// the task's node (the log lives there).
func (s *Sim) lookupTask(r *request) (*task, *apiError) {
	upid := r.str("upid")
	if !reUPID.MatchString(upid) {
		return nil, errParam("upid", "unable to parse worker upid")
	}
	t, ok := s.tasks[upid]
	if !ok || t.node != r.str("node") {
		return nil, nil
	}
	return t, nil
}

func (s *Sim) handleTaskStatus(r *request) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, aerr := s.lookupTask(r)
	if aerr != nil {
		return nil, aerr
	}
	if t == nil || (s.opts.TaskVisibleAfter > 0 && time.Since(t.born) < s.opts.TaskVisibleAfter) {
		return nil, errParam("upid", "no such task")
	}
	return s.taskJSON(t, true), nil
}

// withTotal is a result with PVE's "total" attribute next to "data".
type withTotal struct {
	data  any
	total int
}

func (s *Sim) handleTaskLog(r *request) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, aerr := s.lookupTask(r)
	if aerr != nil {
		return nil, aerr
	}
	if r.bool("download", false) {
		return nil, errDie("download is not supported by the simulator\n")
	}
	var lines []string
	if t != nil && !(s.opts.TaskVisibleAfter > 0 && time.Since(t.born) < s.opts.TaskVisibleAfter) {
		lines = t.lines
	} else {
		return withTotal{data: []map[string]any{{"n": 1, "t": "unable to open file - No such file or directory"}}, total: 1}, nil
	}
	start, limit := r.int("start", 0), r.int("limit", 50)
	out := []map[string]any{}
	count := 0
	for _, l := range lines {
		count++
		if count <= start {
			continue
		}
		if limit != 0 && len(out) >= limit {
			continue
		}
		out = append(out, map[string]any{"n": count, "t": l})
	}
	if count == 0 {
		count = 1
		out = append(out, map[string]any{"n": 1, "t": "no content"})
	}
	return withTotal{data: out, total: count}, nil
}

func statusType(exit string) string {
	switch {
	case exit == "":
		return "unknown"
	case exit == "OK":
		return "ok"
	case strings.HasPrefix(exit, "WARNINGS: "):
		return "warning"
	case exit == "unexpected status":
		return "unknown"
	}
	return "error"
}

func (s *Sim) handleTaskList(r *request) (any, error) {
	node := r.str("node")
	start, limit := r.int("start", 0), r.int("limit", 50)
	source := r.str("source")
	if source == "" {
		source = "archive"
	}
	errorsOnly := r.bool("errors", false)
	statusFilter := map[string]bool{"ok": true, "warning": true, "error": true, "unknown": true}
	if r.has("statusfilter") && !errorsOnly {
		statusFilter = map[string]bool{}
		for _, f := range splitList(r.str("statusfilter")) {
			statusFilter[strings.ToLower(f)] = true
		}
	} else if errorsOnly {
		statusFilter["ok"] = false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tasks := make([]*task, 0, len(s.taskOrder))
	for _, t := range s.taskOrder {
		if t.node == node {
			tasks = append(tasks, t)
		}
	}
	sort.SliceStable(tasks, func(i, j int) bool { return tasks[i].start.After(tasks[j].start) })
	out := []map[string]any{}
	count := 0
	for _, t := range tasks {
		if t.running && source == "archive" || !t.running && source == "active" {
			continue
		}
		if uf := r.str("userfilter"); uf != "" && !strings.Contains(strings.ToLower(t.user), strings.ToLower(uf)) {
			continue
		}
		if tf := r.str("typefilter"); tf != "" && t.typ != tf {
			continue
		}
		if r.has("vmid") && t.id != r.str("vmid") {
			continue
		}
		if r.has("since") && t.start.Unix() < int64(r.int("since", 0)) {
			continue
		}
		if r.has("until") && t.start.Unix() > int64(r.int("until", 0)) {
			continue
		}
		st := "unknown"
		if !t.running {
			st = statusType(t.exit)
		}
		if !t.running && !statusFilter[st] {
			continue
		}
		count++
		if count <= start || len(out) >= limit {
			continue
		}
		j := s.taskJSON(t, false)
		if t.running {
			j["status"] = "RUNNING"
		} else {
			j["status"] = t.exit
			j["endtime"] = t.end.Unix()
		}
		out = append(out, j)
	}
	return withTotal{data: out, total: count}, nil
}

// awaitTask waits up to a simulated duration for a task to stop, for the
// endpoints with a background delay; done is false when it still runs.
func (s *Sim) awaitTask(ctx context.Context, upid string, d time.Duration) (done bool, exit string) {
	deadline := time.Now().Add(s.scaled(d))
	for {
		s.mu.Lock()
		t := s.tasks[upid]
		running, exit := t.running, t.exit
		s.mu.Unlock()
		if !running {
			return true, exit
		}
		if !time.Now().Before(deadline) {
			return false, ""
		}
		t2 := time.NewTimer(5 * time.Millisecond)
		select {
		case <-t2.C:
		case <-ctx.Done():
			t2.Stop()
			return false, ""
		case <-s.ctx.Done():
			t2.Stop()
			return false, ""
		}
	}
}
