package pve_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/pvekeep/pvekeep/internal/pve"
)

const statusPath = "GET /nodes/pve1/tasks/" + upid100 + "/status"
const logPath = "GET /nodes/pve1/tasks/" + upid100 + "/log"

// step is one answer of the task status endpoint.
type step struct {
	code       int // 0 = 200
	status     string
	exitstatus string
}

func TestWaitTask(t *testing.T) {
	t.Parallel()
	running := step{status: "running"}
	tests := []struct {
		name     string
		steps    []step // the last one repeats
		log      []string
		warnings int
		failed   bool
		locked   string
	}{
		{"ok after running", []step{running, running, {status: "stopped", exitstatus: "OK"}}, nil, 0, false, ""},
		{"warnings are success", []step{running, {status: "stopped", exitstatus: "WARNINGS: 3"}}, nil, 3, false, ""},
		{"just-born 400 is retried", []step{{code: 400}, {code: 400}, running, {status: "stopped", exitstatus: "OK"}}, nil, 0, false, ""},
		{"transient 503 while polling is ridden out", []step{running, {code: 503}, {status: "stopped", exitstatus: "OK"}}, nil, 0, false, ""},
		{"failure carries the log tail", []step{running, {status: "stopped", exitstatus: "job errors"}},
			[]string{"INFO: starting new backup job: vzdump 100", "ERROR: Backup of VM 100 failed - no space left on device", "INFO: Backup job finished with errors", "TASK ERROR: job errors"},
			0, true, ""},
		{"a lock in the log makes it a LockedError", []step{{status: "stopped", exitstatus: "job errors"}},
			[]string{"ERROR: Backup of VM 100 failed - VM is locked (snapshot)", "TASK ERROR: job errors"}, 0, true, "snapshot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			var mu sync.Mutex
			i := 0
			f.handle(statusPath, func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				s := tt.steps[min(i, len(tt.steps)-1)]
				i++
				mu.Unlock()
				switch s.code {
				case 0:
					d := map[string]any{"status": s.status, "upid": upid100, "node": "pve1", "type": "vzdump", "id": "100",
						"pid": 1, "pstart": 2, "starttime": 1714491178, "user": "whmcs@pve!pvekeep"}
					if s.exitstatus != "" {
						d["exitstatus"] = s.exitstatus
					}
					writeData(w, d)
				case 400:
					writeRaw(w, 400, "Parameter verification failed.", `{"data":null,"errors":{"upid":"unable to parse worker upid"}}`)
				default:
					writeRaw(w, s.code, "Service Unavailable", ``)
				}
			})
			f.handle(logPath, func(w http.ResponseWriter, r *http.Request) {
				var items []map[string]any
				for n, l := range tt.log {
					items = append(items, map[string]any{"n": n + 1, "t": l})
				}
				writeData(w, items)
			})
			res, err := f.connect(t).WaitTask(context.Background(), upid100)
			if !tt.failed {
				if err != nil {
					t.Fatalf("WaitTask: %v", err)
				}
				if res.Warnings != tt.warnings || res.UPID != upid100 {
					t.Errorf("result = %+v, want %d warnings", res, tt.warnings)
				}
				return
			}
			var te *pve.TaskError
			if !errors.As(err, &te) {
				t.Fatalf("err = %v, want *TaskError", err)
			}
			if te.ExitStatus != "job errors" || strings.Join(te.LogTail, "\n") != strings.Join(tt.log, "\n") {
				t.Errorf("TaskError = %+v", te)
			}
			var le *pve.LockedError
			if got := errors.As(err, &le); got != (tt.locked != "") || (got && (le.Lock != tt.locked || le.VMID != 100)) {
				t.Errorf("LockedError = %+v, want lock %q", le, tt.locked)
			}
		})
	}
}

func TestTaskStatusJustBornRetryIsBounded(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle(statusPath, func(w http.ResponseWriter, r *http.Request) {
		writeRaw(w, 400, "Parameter verification failed.", `{"data":null,"errors":{"upid":"no such task"}}`)
	})
	_, err := f.connect(t).TaskStatus(context.Background(), upid100)
	var he *pve.HTTPError
	if !errors.As(err, &he) || he.Code != 400 {
		t.Fatalf("err = %v, want the 400", err)
	}
	if n := f.count(statusPath); n != 8 {
		t.Errorf("status requests = %d, want 8 (1 + 7 retries)", n)
	}
}

func TestWaitTaskHonoursCancellation(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	polled := make(chan struct{}, 100)
	f.handle(statusPath, func(w http.ResponseWriter, r *http.Request) {
		writeData(w, map[string]any{"status": "running"})
		polled <- struct{}{}
	})
	cfg := f.config()
	cfg.PollInterval = 1 << 62 // only a ctx-aware sleep can end this wait
	c, err := pve.Connect(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.WaitTask(ctx, upid100)
		done <- err
	}()
	<-polled
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitTask err = %v, want context.Canceled", err)
	}
}

func TestTaskLogPagesToTheEnd(t *testing.T) {
	t.Parallel()
	const total = 1234
	f := newFake(t)
	f.handle(logPath, func(w http.ResponseWriter, r *http.Request) {
		start, _ := strconv.Atoi(r.URL.Query().Get("start"))
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		if limit == 0 {
			limit = 50 // what older PVE does with limit 0
		}
		items := []map[string]any{}
		for n := start + 1; n <= total && len(items) < limit; n++ {
			items = append(items, map[string]any{"n": n, "t": fmt.Sprintf("line %d", n)})
		}
		writeData(w, items)
	})
	c := f.connect(t)
	tests := []struct {
		start, want int
		first       string
	}{
		{0, total, "line 1"},
		{1200, 34, "line 1201"},
		{total, 0, ""},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.start), func(t *testing.T) {
			lines, err := c.TaskLog(context.Background(), upid100, tt.start)
			if err != nil {
				t.Fatal(err)
			}
			if len(lines) != tt.want || (tt.want > 0 && lines[0] != tt.first) {
				t.Errorf("TaskLog(start=%d) = %d lines (first %q), want %d (first %q)", tt.start, len(lines), first(lines), tt.want, tt.first)
			}
		})
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
