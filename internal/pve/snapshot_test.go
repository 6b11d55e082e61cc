package pve_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/pve"
)

const snapPath = "/nodes/pve1/qemu/100/snapshot"

func TestValidSnapshotName(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		ok   bool
	}{
		{"pvk-20260101-a1", true},
		{"Ab", true},
		{"a_b-C9", true},
		{"a" + strings.Repeat("x", 39), true},
		{"a" + strings.Repeat("x", 40), false},
		{"a", false},
		{"", false},
		{"1abc", false},
		{"-abc", false},
		{"has.dot", false},
		{"has space", false},
		{"current", false},
		{"pending", false},
		{"PENDING", false},
		{"Current", true}, // only the lower-case "current" is reserved
	} {
		if got := pve.ValidSnapshotName(tt.name); got != tt.ok {
			t.Errorf("ValidSnapshotName(%q) = %v, want %v", tt.name, got, tt.ok)
		}
	}
}

// The list as PVE sends it (any order, ints sometimes as strings, the
// "current" entry last) comes back sorted, typed and without "current".
func TestSnapshotsParse(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle("GET "+snapPath, func(w http.ResponseWriter, r *http.Request) {
		writeData(w, []map[string]any{
			{"name": "b", "snaptime": "1767312000", "vmstate": 1, "description": "", "parent": "a"},
			{"name": "current", "digest": "abc", "running": 1, "description": "You are here!", "parent": "c"},
			{"name": "c", "snaptime": 1767398400, "vmstate": 0, "description": "x", "parent": "b", "snapstate": "delete"},
			{"name": "a", "snaptime": 1767225600, "vmstate": 0, "description": "first\nsecond line"},
			{"name": "bb", "snaptime": 1767398400, "vmstate": 0, "description": "", "parent": "c"},
		})
	})
	got, err := f.connect(t).Snapshots(context.Background(), "pve1", 100)
	if err != nil {
		t.Fatal(err)
	}
	if got.Current != "c" || !got.Running || got.Digest != "abc" || len(got.Items) != 4 {
		t.Fatalf("Snapshots = %+v", got)
	}
	want := []pve.Snapshot{
		{Name: "a", Description: "first\nsecond line", Time: time.Unix(1767225600, 0).UTC()},
		{Name: "b", Time: time.Unix(1767312000, 0).UTC(), VMState: true, Parent: "a"},
		{Name: "c", Description: "x", Time: time.Unix(1767398400, 0).UTC(), Parent: "b", State: "delete"},
		{Name: "bb", Time: time.Unix(1767398400, 0).UTC(), Parent: "c"}, // after its parent, though its name sorts first
	}
	for i, w := range want {
		if got.Items[i] != w {
			t.Errorf("item %d = %+v, want %+v", i, got.Items[i], w)
		}
	}
	if sn, ok := got.Find("b"); !ok || !sn.VMState {
		t.Errorf("Find(b) = %+v, %v", sn, ok)
	}
}

// Each task-starting call sends exactly the parameters PVE expects, once;
// a 503 is not re-sent; a bad name sends nothing.
func TestSnapshotCallsSendOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFake(t)
	answerUPID := func(w http.ResponseWriter, r *http.Request) { writeData(w, upid100) }
	f.handle("POST "+snapPath, answerUPID)
	f.handle("POST "+snapPath+"/s1/rollback", answerUPID)
	f.handle("DELETE "+snapPath+"/s1", func(w http.ResponseWriter, r *http.Request) {
		if got := r.URL.Query().Get("force"); got != "1" {
			t.Errorf("force = %q", got)
		}
		answerUPID(w, r)
	})
	c := f.connect(t)

	for _, tt := range []struct {
		req  pve.SnapshotRequest
		want map[string]any
	}{
		{pve.SnapshotRequest{VMID: 100, Name: "s1"}, map[string]any{"snapname": "s1"}},
		{pve.SnapshotRequest{VMID: 100, Name: "s1", Description: "before update", VMState: true},
			map[string]any{"snapname": "s1", "description": "before update", "vmstate": "1"}},
	} {
		upid, err := c.CreateSnapshot(ctx, "pve1", tt.req)
		if err != nil || upid != upid100 {
			t.Fatalf("CreateSnapshot(%+v) = %q, %v", tt.req, upid, err)
		}
		if got := f.lastBody("POST " + snapPath); !sameParams(got, tt.want) {
			t.Errorf("CreateSnapshot(%+v) sent %v, want %v", tt.req, got, tt.want)
		}
	}
	if _, err := c.CreateSnapshot(ctx, "pve1", pve.SnapshotRequest{VMID: 100, Name: "current"}); !errors.Is(err, pve.ErrInvalidSnapshotName) {
		t.Errorf("name current: err = %v", err)
	}
	if n := f.count("POST " + snapPath); n != 2 {
		t.Errorf("POSTs = %d, want 2 (a bad name sends nothing)", n)
	}

	if _, err := c.RollbackSnapshot(ctx, "pve1", 100, "s1", false); err != nil {
		t.Fatal(err)
	}
	if got := f.lastBody("POST " + snapPath + "/s1/rollback"); len(got) != 0 {
		t.Errorf("rollback without start sent %v (start must stay out: older PVE refuses it)", got)
	}
	if _, err := c.RollbackSnapshot(ctx, "pve1", 100, "s1", true); err != nil {
		t.Fatal(err)
	}
	if got := f.lastBody("POST " + snapPath + "/s1/rollback"); !sameParams(got, map[string]any{"start": "1"}) {
		t.Errorf("rollback with start sent %v", got)
	}
	if _, err := c.DeleteSnapshot(ctx, "pve1", 100, "s1", true); err != nil {
		t.Fatal(err)
	}

	f.handle("POST "+snapPath, func(w http.ResponseWriter, r *http.Request) { writeRaw(w, 503, "Service Unavailable", ``) })
	if _, err := c.CreateSnapshot(ctx, "pve1", pve.SnapshotRequest{VMID: 100, Name: "s2"}); !errors.Is(err, pve.ErrTransient) {
		t.Errorf("503: err = %v, want ErrTransient", err)
	}
	if n := f.count("POST " + snapPath); n != 3 {
		t.Errorf("POSTs = %d, want 3 (the 503 is not re-sent)", n)
	}
}

func sameParams(got, want map[string]any) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// The exit statuses of failed snapshot tasks read as the sentinels the
// service decides on.
func TestSnapshotTaskFailuresClassified(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		exit string
		want error
		lock string
	}{
		{"snapshot name 'pvk-1' already used", pve.ErrAlreadyExists, ""},
		{"can't rollback, 'pvk-1' is not most recent snapshot on 'local-zfs:vm-100-disk-0'", pve.ErrNotNewestSnapshot, ""},
		{"snapshot 'pvk-1' does not exist", pve.ErrNotFound, ""},
		{"VM is locked (backup)", pve.ErrLocked, "backup"},
		{"VM is locked (snapshot-delete)", pve.ErrLocked, "snapshot-delete"},
		{"unable to rollback to incomplete snapshot (snapstate = delete)", nil, ""},
	} {
		t.Run(tt.exit, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			f.handle(statusPath, func(w http.ResponseWriter, r *http.Request) {
				writeData(w, map[string]any{"status": "stopped", "exitstatus": tt.exit, "upid": upid100, "node": "pve1",
					"type": "qmrollback", "id": "100", "starttime": 1714491178, "user": "whmcs@pve!pvekeep"})
			})
			f.handle(logPath, func(w http.ResponseWriter, r *http.Request) {
				writeData(w, []map[string]any{{"n": 1, "t": "TASK ERROR: " + tt.exit}})
			})
			_, err := f.connect(t).WaitTask(context.Background(), upid100)
			var te *pve.TaskError
			if !errors.As(err, &te) || te.ExitStatus != tt.exit {
				t.Fatalf("err = %v, want a *TaskError", err)
			}
			for _, s := range []error{pve.ErrAlreadyExists, pve.ErrNotNewestSnapshot, pve.ErrNotFound, pve.ErrLocked, pve.ErrTransient} {
				if got := errors.Is(err, s); got != (s == tt.want) {
					t.Errorf("errors.Is(err, %v) = %v", s, got)
				}
			}
			var le *pve.LockedError
			if tt.lock != "" && (!errors.As(err, &le) || le.Lock != tt.lock || le.VMID != 100) {
				t.Errorf("LockedError = %+v, want lock %s", le, tt.lock)
			}
		})
	}
}
