package pve_test

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

const (
	vmPath      = "/nodes/pve1/qemu/100"
	statusCur   = "GET " + vmPath + "/status/current"
	upidStart   = "UPID:pve1:000A1B2D:0098F6E1:66310F2B:qmstart:100:whmcs@pve!pvekeep:"
	upidGeneric = "UPID:pve1:000A1B2E:0098F6E1:66310F2C:qmrestore:100:whmcs@pve!pvekeep:"
)

// vmState answers status/current with the given state.
func vmState(f *fakePVE, status, qmp, lock string) {
	f.handle(statusCur, func(w http.ResponseWriter, r *http.Request) {
		d := map[string]any{"status": status, "vmid": 100, "name": "vm100"}
		if qmp != "" {
			d["qmpstatus"] = qmp
		}
		if lock != "" {
			d["lock"] = lock
		}
		writeData(w, d)
	})
}

func answerUPID(upid string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { writeData(w, upid) }
}

func answerFail(code int, msg string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { writeRaw(w, code, msg, `{"data":null}`) }
}

func TestPowerIsIdempotent(t *testing.T) {
	t.Parallel()
	type call func(c *pve.Client) (pvekeep.UPID, error)
	start := func(c *pve.Client) (pvekeep.UPID, error) { return c.StartVM(context.Background(), "pve1", 100) }
	stop := func(c *pve.Client) (pvekeep.UPID, error) { return c.StopVM(context.Background(), "pve1", 100) }
	shutdown := func(c *pve.Client) (pvekeep.UPID, error) {
		return c.ShutdownVM(context.Background(), "pve1", 100, 1500*time.Millisecond)
	}
	tests := []struct {
		name      string
		call      call
		endpoint  string // POST path below the vm
		status    string
		qmp, lock string
		answer    http.HandlerFunc
		wantUPID  string
		wantPosts int
		wantErr   error
	}{
		{"start a stopped vm", start, "/status/start", "stopped", "", "", answerUPID(upidStart), upidStart, 1, nil},
		{"start a running vm sends nothing", start, "/status/start", "running", "running", "", nil, "", 0, nil},
		{"start answered already running", start, "/status/start", "stopped", "", "", answerFail(500, "VM 100 already running"), "", 1, nil},
		{"start resumes a vm paused in a backup", start, "/status/start", "running", "paused", "backup", answerUPID(upidStart), upidStart, 1, nil},
		{"start of a missing vm", start, "/status/start", "", "", "", nil, "", 0, pve.ErrNotFound},
		{"start refused by a lock", start, "/status/start", "stopped", "", "", answerFail(500, "VM is locked (backup)"), "", 1, pve.ErrLocked},
		{"start failure is sent once", start, "/status/start", "stopped", "", "", answerFail(503, "Service Unavailable"), "", 1, pve.ErrTransient},
		{"stop a running vm", stop, "/status/stop", "running", "running", "", answerUPID(upidStart), upidStart, 1, nil},
		{"stop a stopped vm sends nothing", stop, "/status/stop", "stopped", "", "", nil, "", 0, nil},
		{"stop answered not running", stop, "/status/stop", "running", "", "", answerFail(500, "VM 100 not running"), "", 1, nil},
		{"shutdown a running vm", shutdown, "/status/shutdown", "running", "running", "", answerUPID(upidStart), upidStart, 1, nil},
		{"shutdown a stopped vm sends nothing", shutdown, "/status/shutdown", "stopped", "", "", nil, "", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			if tt.status != "" {
				vmState(f, tt.status, tt.qmp, tt.lock)
			} else {
				f.handle(statusCur, answerFail(500, "Configuration file 'nodes/pve1/qemu-server/100.conf' does not exist"))
			}
			if tt.answer != nil {
				f.handle("POST "+vmPath+tt.endpoint, tt.answer)
			}
			upid, err := tt.call(f.connect(t))
			if tt.wantErr == nil && err != nil {
				t.Fatalf("err = %v", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if string(upid) != tt.wantUPID {
				t.Errorf("upid = %q, want %q", upid, tt.wantUPID)
			}
			if n := f.count("POST " + vmPath + tt.endpoint); n != tt.wantPosts {
				t.Errorf("POSTs = %d, want %d", n, tt.wantPosts)
			}
		})
	}
}

func TestShutdownSendsTimeoutInSeconds(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	vmState(f, "running", "running", "")
	f.handle("POST "+vmPath+"/status/shutdown", answerUPID(upidStart))
	c := f.connect(t)
	if _, err := c.ShutdownVM(context.Background(), "pve1", 100, 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if got := f.lastBody("POST " + vmPath + "/status/shutdown"); got["timeout"] != "2" {
		t.Errorf("body = %v, want timeout 2 (rounded up)", got)
	}
	if _, err := c.ShutdownVM(context.Background(), "pve1", 100, 0); err != nil {
		t.Fatal(err)
	}
	if got := f.lastBody("POST " + vmPath + "/status/shutdown"); got != nil {
		t.Errorf("body = %v, want none without a timeout", got)
	}
}

func TestRestoreVM(t *testing.T) {
	t.Parallel()
	const archive = "backup:backup/vzdump-qemu-100-2024_05_01-10_00_00.vma.zst"
	full := pve.RestoreRequest{VMID: 100, Archive: archive, Force: true, Storage: "local-lvm",
		Extra: map[string]string{"cores": "2", "memory": "2048"}}
	tests := []struct {
		name     string
		req      pve.RestoreRequest
		status   string // "" = the vm does not exist
		lock     string
		answer   http.HandlerFunc
		wantBody map[string]any
		wantPost int
		wantErr  error
		errText  string
	}{
		{"stopped vm", full, "stopped", "", answerUPID(upidGeneric),
			map[string]any{"vmid": "100", "archive": archive, "force": "1", "storage": "local-lvm", "cores": "2", "memory": "2048"}, 1, nil, ""},
		{"minimal into a free id", pve.RestoreRequest{VMID: 100, Archive: archive}, "", "", answerUPID(upidGeneric),
			map[string]any{"vmid": "100", "archive": archive}, 1, nil, ""},
		{"running vm is refused before sending", full, "running", "", nil, nil, 0, pve.ErrRunning, ""},
		{"locked vm is refused before sending", full, "stopped", "backup", nil, nil, 0, pve.ErrLocked, ""},
		{"existing vm without force", pve.RestoreRequest{VMID: 100, Archive: archive}, "stopped", "",
			answerFail(500, "unable to restore VM 100 - VM 100 already exists on node 'pve1'"), nil, 1, pve.ErrAlreadyExists, ""},
		{"lock seen by PVE", full, "stopped", "", answerFail(500, "unable to restore VM 100 - VM is locked (snapshot)"), nil, 1, pve.ErrLocked, ""},
		{"a 503 is not re-sent", full, "stopped", "", answerFail(503, "Service Unavailable"), nil, 1, pve.ErrTransient, ""},
		{"drive in extra", pve.RestoreRequest{VMID: 100, Archive: archive, Extra: map[string]string{"scsi1": "local-lvm:4"}},
			"stopped", "", nil, nil, 0, nil, "scsi1"},
		{"control key in extra", pve.RestoreRequest{VMID: 100, Archive: archive, Extra: map[string]string{"force": "0"}},
			"stopped", "", nil, nil, 0, nil, "force"},
		{"no archive", pve.RestoreRequest{VMID: 100}, "stopped", "", nil, nil, 0, nil, "archive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			if tt.status != "" {
				vmState(f, tt.status, "", tt.lock)
			} else {
				f.handle(statusCur, answerFail(500, "Configuration file 'nodes/pve1/qemu-server/100.conf' does not exist"))
			}
			if tt.answer != nil {
				f.handle("POST /nodes/pve1/qemu", tt.answer)
			}
			upid, err := f.connect(t).RestoreVM(context.Background(), "pve1", tt.req)
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			case tt.errText != "":
				if err == nil || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.errText)
				}
			default:
				if err != nil || upid != upidGeneric {
					t.Fatalf("RestoreVM = %q, %v", upid, err)
				}
				if got := f.lastBody("POST /nodes/pve1/qemu"); !reflect.DeepEqual(got, tt.wantBody) {
					t.Errorf("body = %v, want %v", got, tt.wantBody)
				}
			}
			if tt.wantErr != nil && errors.Is(tt.wantErr, pve.ErrRunning) && errors.Is(err, pve.ErrTransient) {
				t.Errorf("running must not be transient: %v", err)
			}
			if n := f.count("POST /nodes/pve1/qemu"); n != tt.wantPost {
				t.Errorf("POSTs = %d, want %d", n, tt.wantPost)
			}
		})
	}
}

func TestUpdateConfig(t *testing.T) {
	t.Parallel()
	const key = "PUT " + vmPath + "/config"
	tests := []struct {
		name     string
		ch       pve.ConfigChange
		answer   http.HandlerFunc
		wantBody map[string]any
		wantPuts int
		wantErr  error
		errText  string
	}{
		{"set delete digest", pve.ConfigChange{Set: map[string]string{"cores": "2", "scsi1": "local-lvm:4"}, Delete: []string{"balloon", "unused0"}, Digest: "abc"},
			func(w http.ResponseWriter, r *http.Request) { writeData(w, nil) },
			map[string]any{"cores": "2", "scsi1": "local-lvm:4", "delete": "balloon,unused0", "digest": "abc"}, 1, nil, ""},
		{"digest mismatch", pve.ConfigChange{Set: map[string]string{"cores": "2"}, Digest: "old"},
			answerFail(500, "checksum mismatch (file change by other user?)"), nil, 1, pve.ErrDigestMismatch, ""},
		{"locked", pve.ConfigChange{Set: map[string]string{"cores": "2"}}, answerFail(500, "VM is locked (backup)"), nil, 1, pve.ErrLocked, ""},
		{"a 503 is not re-sent", pve.ConfigChange{Set: map[string]string{"scsi1": "local-lvm:4"}}, answerFail(503, "Service Unavailable"), nil, 1, pve.ErrTransient, ""},
		{"a value check's die is final", pve.ConfigChange{Set: map[string]string{"sshkeys": "x"}}, answerFail(500, "SSH public key validation error"), nil, 1, pve.ErrRefusedValue, ""},
		{"hotplug problem keeps the per-option reason", pve.ConfigChange{Set: map[string]string{"cores": "64"}},
			func(w http.ResponseWriter, r *http.Request) {
				writeRaw(w, 400, "Parameter verification failed.", `{"data":null,"errors":{"cores":"hotplug problem - unable to hotplug cores"}}`)
			}, nil, 1, nil, "cores: hotplug problem"},
		{"nothing to change", pve.ConfigChange{}, nil, nil, 0, nil, "no options"},
		{"set and delete the same", pve.ConfigChange{Set: map[string]string{"cores": "2"}, Delete: []string{"cores"}}, nil, nil, 0, nil, "both set and deleted"},
		{"control key", pve.ConfigChange{Set: map[string]string{"digest": "x"}}, nil, nil, 0, nil, "not a config option"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			if tt.answer != nil {
				f.handle(key, tt.answer)
			}
			err := f.connect(t).UpdateConfig(context.Background(), "pve1", 100, tt.ch)
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if !errors.Is(tt.wantErr, pve.ErrTransient) && errors.Is(err, pve.ErrTransient) {
					t.Errorf("%v must not be transient: %v", tt.wantErr, err)
				}
			case tt.errText != "":
				if err == nil || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.errText)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if got := f.lastBody(key); !reflect.DeepEqual(got, tt.wantBody) {
					t.Errorf("body = %v, want %v", got, tt.wantBody)
				}
			}
			if n := f.count(key); n != tt.wantPuts {
				t.Errorf("PUTs = %d, want %d", n, tt.wantPuts)
			}
		})
	}
}

func TestUpdateConfigAsync(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	const key = "POST " + vmPath + "/config"
	f.handle(key, answerUPID(upidGeneric))
	c := f.connect(t)
	upid, err := c.UpdateConfigAsync(context.Background(), "pve1", 100, pve.ConfigChange{Set: map[string]string{"memory": "2048"}})
	if err != nil || upid != upidGeneric {
		t.Fatalf("UpdateConfigAsync = %q, %v", upid, err)
	}
	f.handle(key, func(w http.ResponseWriter, r *http.Request) { writeData(w, nil) })
	if upid, err = c.UpdateConfigAsync(context.Background(), "pve1", 100, pve.ConfigChange{Delete: []string{"tags"}}); err != nil || upid != "" {
		t.Fatalf("UpdateConfigAsync answered null = %q, %v; want done", upid, err)
	}
	if got := f.lastBody(key); got["delete"] != "tags" {
		t.Errorf("body = %v", got)
	}
	f.handle(key, func(w http.ResponseWriter, r *http.Request) { writeData(w, "OK") })
	if _, err = c.UpdateConfigAsync(context.Background(), "pve1", 100, pve.ConfigChange{Delete: []string{"tags"}}); err == nil {
		t.Fatal("an answer that is not a UPID was accepted")
	}
}

func TestConfigCurrentAndPending(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle("GET "+vmPath+"/config", func(w http.ResponseWriter, r *http.Request) {
		cores := 4 // pending-merged
		if r.URL.Query().Get("current") == "1" {
			cores = 2
		}
		writeData(w, map[string]any{"cores": cores, "digest": "d1"})
	})
	f.handle("GET "+vmPath+"/pending", func(w http.ResponseWriter, r *http.Request) {
		writeData(w, []map[string]any{
			{"key": "memory", "value": 2048},
			{"key": "cores", "value": 2, "pending": 4},
			{"key": "balloon", "value": "0", "delete": 1},
			{"key": "tags", "value": "a", "delete": "2"},
			{"key": "net1", "pending": "virtio,bridge=vmbr0"},
			{"key": "digest", "value": "d1"},
		})
	})
	c := f.connect(t)
	ctx := context.Background()
	cur, err := c.VMConfigCurrent(ctx, "pve1", 100)
	if err != nil || cur["cores"] != "2" {
		t.Fatalf("VMConfigCurrent = %v, %v", cur, err)
	}
	merged, err := c.VMConfig(ctx, "pve1", 100)
	if err != nil || merged["cores"] != "4" {
		t.Fatalf("VMConfig = %v, %v", merged, err)
	}
	items, err := c.Pending(ctx, "pve1", 100)
	if err != nil {
		t.Fatal(err)
	}
	want := []pve.PendingItem{
		{Key: "balloon", Value: "0", HasValue: true, Delete: true},
		{Key: "cores", Value: "2", HasValue: true, Pending: "4", HasPending: true},
		{Key: "digest", Value: "d1", HasValue: true},
		{Key: "memory", Value: "2048", HasValue: true},
		{Key: "net1", Pending: "virtio,bridge=vmbr0", HasPending: true},
		{Key: "tags", Value: "a", HasValue: true, Delete: true, Force: true},
	}
	if !reflect.DeepEqual(items, want) {
		t.Errorf("Pending =\n%+v\nwant\n%+v", items, want)
	}
	var keys []string
	for _, it := range pve.PendingChanges(items) {
		keys = append(keys, it.Key)
	}
	if strings.Join(keys, ",") != "balloon,cores,net1,tags" {
		t.Errorf("PendingChanges = %v", keys)
	}
}

func TestResizeDisk(t *testing.T) {
	t.Parallel()
	const key = "PUT " + vmPath + "/resize"
	tests := []struct {
		name     string
		disk     string
		size     string
		answer   http.HandlerFunc
		wantUPID string
		wantPuts int
		wantErr  error
		errText  string
	}{
		{"pve 8 task", "scsi0", "32G", answerUPID(upidGeneric), upidGeneric, 1, nil, ""},
		{"older pve answers null when done", "scsi0", "+2G", func(w http.ResponseWriter, r *http.Request) { writeData(w, nil) }, "", 1, nil, ""},
		{"shrink refused synchronously (pve 7)", "scsi0", "1G", answerFail(500, "shrinking disks is not supported"), "", 1, pve.ErrShrink, ""},
		{"missing disk", "scsi5", "1G", answerFail(500, "disk 'scsi5' does not exist"), "", 1, pve.ErrNotFound, ""},
		{"bad size", "scsi0", "32 GB", nil, "", 0, nil, "invalid size"},
		{"not a disk", "net0", "32G", nil, "", 0, nil, "not a disk"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			if tt.answer != nil {
				f.handle(key, tt.answer)
			}
			upid, err := f.connect(t).ResizeDisk(context.Background(), "pve1", 100, tt.disk, tt.size)
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) || errors.Is(err, pve.ErrTransient) {
					t.Fatalf("err = %v, want %v (not transient)", err, tt.wantErr)
				}
			case tt.errText != "":
				if err == nil || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.errText)
				}
			default:
				if err != nil || string(upid) != tt.wantUPID {
					t.Fatalf("ResizeDisk = %q, %v; want %q", upid, err, tt.wantUPID)
				}
				if got := f.lastBody(key); got["disk"] != tt.disk || got["size"] != tt.size {
					t.Errorf("body = %v", got)
				}
			}
			if n := f.count(key); n != tt.wantPuts {
				t.Errorf("PUTs = %d, want %d", n, tt.wantPuts)
			}
		})
	}
}

func TestCloneVM(t *testing.T) {
	t.Parallel()
	const key = "POST /nodes/pve1/qemu/9000/clone"
	tests := []struct {
		name     string
		req      pve.CloneRequest
		answer   http.HandlerFunc
		wantBody map[string]any
		wantErr  error
		errText  string
	}{
		{"full with storage and target", pve.CloneRequest{Template: 9000, NewID: 105, Name: "vm105", Full: true, Storage: "local-lvm", Target: "pve2"},
			answerUPID(upidGeneric), map[string]any{"newid": "105", "name": "vm105", "full": "1", "storage": "local-lvm", "target": "pve2"}, nil, ""},
		{"linked leaves full out", pve.CloneRequest{Template: 9000, NewID: 105},
			answerUPID(upidGeneric), map[string]any{"newid": "105"}, nil, ""},
		{"id taken", pve.CloneRequest{Template: 9000, NewID: 105, Full: true},
			answerFail(500, "unable to create VM 105: config file already exists"), nil, pve.ErrAlreadyExists, ""},
		{"storage without full", pve.CloneRequest{Template: 9000, NewID: 105, Storage: "local-lvm"}, nil, nil, nil, "full clone"},
		{"no new id", pve.CloneRequest{Template: 9000}, nil, nil, nil, "invalid vmid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			if tt.answer != nil {
				f.handle(key, tt.answer)
			}
			upid, err := f.connect(t).CloneVM(context.Background(), "pve1", tt.req)
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			case tt.errText != "":
				if err == nil || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.errText)
				}
				if f.count(key) != 0 {
					t.Errorf("a refused request was sent")
				}
			default:
				if err != nil || upid != upidGeneric {
					t.Fatalf("CloneVM = %q, %v", upid, err)
				}
				if got := f.lastBody(key); !reflect.DeepEqual(got, tt.wantBody) {
					t.Errorf("body = %v, want %v", got, tt.wantBody)
				}
			}
		})
	}
}

func TestDeleteVM(t *testing.T) {
	t.Parallel()
	const key = "DELETE " + vmPath
	tests := []struct {
		name    string
		purge   bool
		answer  http.HandlerFunc
		wantErr error
		isNot   error
	}{
		{"purge", true, answerUPID(upidGeneric), nil, nil},
		{"no purge", false, answerUPID(upidGeneric), nil, nil},
		{"missing vm", true, answerFail(500, "Configuration file 'nodes/pve1/qemu-server/100.conf' does not exist"), pve.ErrNotFound, pve.ErrTransient},
		{"running vm", true, answerFail(500, "VM 100 is running - destroy failed"), pve.ErrRunning, pve.ErrTransient},
		{"a 503 is not re-sent", true, answerFail(503, "Service Unavailable"), pve.ErrTransient, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			var query string
			var body bool
			f.handle(key, func(w http.ResponseWriter, r *http.Request) {
				query = r.URL.RawQuery
				body = r.ContentLength > 0
				tt.answer(w, r)
			})
			upid, err := f.connect(t).DeleteVM(context.Background(), "pve1", 100, tt.purge)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || (tt.isNot != nil && errors.Is(err, tt.isNot)) {
					t.Fatalf("err = %v, want %v and not %v", err, tt.wantErr, tt.isNot)
				}
			} else {
				if err != nil || upid != upidGeneric {
					t.Fatalf("DeleteVM = %q, %v", upid, err)
				}
				want := "destroy-unreferenced-disks=1&purge=" + map[bool]string{true: "1", false: "0"}[tt.purge]
				if query != want || body {
					t.Errorf("query %q (body %v), want %q and no body", query, body, want)
				}
			}
			if n := f.count(key); n != 1 {
				t.Errorf("DELETEs = %d, want 1", n)
			}
		})
	}
}

// Task failures read as the sentinels of the call that started them.
func TestTaskErrorClassification(t *testing.T) {
	t.Parallel()
	tests := []struct {
		exit  string
		is    error
		isNot []error
	}{
		{"VM 100 already running", pve.ErrRunning, []error{pve.ErrTransient}},
		{"unable to restore VM 100 - vm is running", pve.ErrRunning, nil},
		{"shrinking disks is not supported", pve.ErrShrink, nil},
		{"disk 'scsi1' does not exist", pve.ErrNotFound, nil},
		{"unable to create VM 105: config file already exists", pve.ErrAlreadyExists, nil},
		{"checksum mismatch (file change by other user?)", pve.ErrDigestMismatch, nil},
		{"unable to restore VM 100 - VM is locked (create)", pve.ErrLocked, []error{pve.ErrRunning}},
		{"job errors", nil, []error{pve.ErrRunning, pve.ErrNotFound, pve.ErrShrink, pve.ErrAlreadyExists, pve.ErrLocked}},
	}
	for _, tt := range tests {
		t.Run(tt.exit, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			f.handle("GET /nodes/pve1/tasks/"+upidGeneric+"/status", func(w http.ResponseWriter, r *http.Request) {
				writeData(w, map[string]any{"status": "stopped", "exitstatus": tt.exit})
			})
			f.handle("GET /nodes/pve1/tasks/"+upidGeneric+"/log", func(w http.ResponseWriter, r *http.Request) {
				writeData(w, []map[string]any{{"n": 1, "t": "TASK ERROR: " + tt.exit}})
			})
			_, err := f.connect(t).WaitTask(context.Background(), upidGeneric)
			var te *pve.TaskError
			if !errors.As(err, &te) || te.ExitStatus != tt.exit {
				t.Fatalf("err = %v, want a *TaskError", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
			}
			for _, s := range tt.isNot {
				if errors.Is(err, s) {
					t.Errorf("errors.Is(%v, %v) = true", err, s)
				}
			}
		})
	}
}
