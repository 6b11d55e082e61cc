package pve_test

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/pve"
)

const backupVolid = "backup:backup/vzdump-qemu-100-2024_05_01-10_00_00.vma.zst"

func TestVzdumpSendsTheContractParameters(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		req   pve.VzdumpRequest
		wantP map[string]any
	}{
		{"defaults", pve.VzdumpRequest{VMID: 100, Storage: "backup"}, map[string]any{
			"vmid": "100", "storage": "backup", "mode": "snapshot", "compress": "zstd", "remove": "0", "prune-backups": "keep-all=1"}},
		{"note escaped to one line", pve.VzdumpRequest{VMID: 100, Storage: "backup", Mode: "stop", Notes: "before upgrade\nC:\\temp {{vmid}}"},
			map[string]any{"vmid": "100", "storage": "backup", "mode": "stop", "compress": "zstd", "remove": "0", "prune-backups": "keep-all=1",
				"notes-template": `before upgrade\nC:\\temp { {vmid}}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			f.handle("POST /nodes/pve1/vzdump", func(w http.ResponseWriter, r *http.Request) { writeData(w, upid100) })
			upid, err := f.connect(t).Vzdump(context.Background(), "pve1", tt.req)
			if err != nil || upid != upid100 {
				t.Fatalf("Vzdump = %q, %v", upid, err)
			}
			if got := f.lastBody("POST /nodes/pve1/vzdump"); !reflect.DeepEqual(got, tt.wantP) {
				t.Errorf("params = %v\nwant     %v", got, tt.wantP)
			}
		})
	}
}

func TestVzdumpOnTheWrongNode(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle("POST /nodes/pve2/vzdump", func(w http.ResponseWriter, r *http.Request) { writeData(w, "OK") })
	_, err := f.connect(t).Vzdump(context.Background(), "pve2", pve.VzdumpRequest{VMID: 100, Storage: "backup"})
	if !errors.Is(err, pve.ErrWrongNode) {
		t.Fatalf("err = %v, want ErrWrongNode", err)
	}
}

// Nothing in the stack (go-proxmox, net/http, the gateway) may send a
// vzdump twice: a server that fails the first POST sees exactly one.
func TestVzdumpIsNeverRePosted(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		fail      func(w http.ResponseWriter)
		transient bool
	}{
		{"503 once", func(w http.ResponseWriter) { writeRaw(w, 503, "Service Unavailable", ``) }, true},
		{"502 once", func(w http.ResponseWriter) { writeRaw(w, 502, "Bad Gateway", ``) }, true},
		{"429 once", func(w http.ResponseWriter) { writeRaw(w, 429, "Too Many Requests", ``) }, false},
		{"connection reset once", resetConn, true},
		{"500 once", func(w http.ResponseWriter) { writeRaw(w, 500, "got timeout", `{"data":null}`) }, true},
		{"401 once", func(w http.ResponseWriter) { writeRaw(w, 401, "authentication failure", `{"data":null}`) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			calls := 0
			f.handle("POST /nodes/pve1/vzdump", func(w http.ResponseWriter, r *http.Request) {
				calls++
				if calls == 1 {
					tt.fail(w)
					return
				}
				writeData(w, upid100)
			})
			_, err := f.connect(t).Vzdump(context.Background(), "pve1", pve.VzdumpRequest{VMID: 100, Storage: "backup"})
			if err == nil {
				t.Fatal("Vzdump succeeded, so it was sent twice")
			}
			if got := errors.Is(err, pve.ErrTransient); got != tt.transient {
				t.Errorf("errors.Is(%v, ErrTransient) = %v, want %v", err, got, tt.transient)
			}
			if n := f.count("POST /nodes/pve1/vzdump"); n != 1 {
				t.Errorf("POSTs = %d, want 1", n)
			}
		})
	}
}

func TestListBackupsDecodesEveryField(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle("GET /nodes/pve1/storage/backup/content", func(w http.ResponseWriter, r *http.Request) {
		if q := r.URL.Query(); q.Get("content") != "backup" || q.Get("vmid") != "100" {
			t.Errorf("query = %v", q)
		}
		writeData(w, []map[string]any{
			{"volid": backupVolid, "content": "backup", "format": "vma.zst", "subtype": "qemu", "vmid": 100,
				"size": 1234567890, "ctime": 1714557600, "notes": "first line", "protected": 1},
			{"volid": "backup:backup/vzdump-qemu-100-2024_05_02-10_00_00.vma.zst", "content": "backup", "format": "vma.zst",
				"subtype": "qemu", "vmid": "100", "size": "42", "ctime": 1714644000, "protected": "0"},
			{"volid": "backup:backup/vzdump-qemu-100-2024_05_03-10_00_00.vma.zst", "content": "backup", "format": "vma.zst",
				"subtype": "qemu", "vmid": 100, "size": 7, "ctime": 1714730400, "protected": true},
			{"volid": "backup:backup/vzdump-qemu-100-2024_05_04-10_00_00.vma.zst", "content": "backup", "format": "vma.zst",
				"subtype": "qemu", "vmid": 100, "size": 8, "ctime": 1714816800},
		})
	})
	vols, err := f.connect(t).ListBackups(context.Background(), "pve1", "backup", 100)
	if err != nil {
		t.Fatal(err)
	}
	want := []pve.Volume{
		{Volid: backupVolid, Content: "backup", Format: "vma.zst", Subtype: "qemu", VMID: 100, Size: 1234567890,
			CTime: time.Unix(1714557600, 0).UTC(), Notes: "first line", Protected: true},
		{Volid: "backup:backup/vzdump-qemu-100-2024_05_02-10_00_00.vma.zst", Content: "backup", Format: "vma.zst", Subtype: "qemu",
			VMID: 100, Size: 42, CTime: time.Unix(1714644000, 0).UTC()},
		{Volid: "backup:backup/vzdump-qemu-100-2024_05_03-10_00_00.vma.zst", Content: "backup", Format: "vma.zst", Subtype: "qemu",
			VMID: 100, Size: 7, CTime: time.Unix(1714730400, 0).UTC(), Protected: true},
		{Volid: "backup:backup/vzdump-qemu-100-2024_05_04-10_00_00.vma.zst", Content: "backup", Format: "vma.zst", Subtype: "qemu",
			VMID: 100, Size: 8, CTime: time.Unix(1714816800, 0).UTC()},
	}
	if !reflect.DeepEqual(vols, want) {
		t.Errorf("ListBackups =\n%+v\nwant\n%+v", vols, want)
	}
}

func TestDeleteVolume(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle("GET /nodes/pve1/storage/backup/content", func(w http.ResponseWriter, r *http.Request) {
		writeData(w, []map[string]any{{"volid": backupVolid, "content": "backup", "format": "vma.zst", "vmid": 100, "size": 1}})
	})
	const delUPID = "UPID:pve1:00001234:00005678:66310F2A:imgdel::whmcs@pve!pvekeep:"
	f.handle("DELETE /nodes/pve1/storage/backup/content/"+backupVolid, func(w http.ResponseWriter, r *http.Request) {
		writeData(w, delUPID)
	})
	c := f.connect(t)
	upid, err := c.DeleteVolume(context.Background(), "pve1", "backup", backupVolid)
	if err != nil || upid != delUPID {
		t.Fatalf("DeleteVolume = %q, %v", upid, err)
	}
	missing := "backup:backup/vzdump-qemu-100-2020_01_01-00_00_00.vma.zst"
	if _, err := c.DeleteVolume(context.Background(), "pve1", "backup", missing); !errors.Is(err, pve.ErrNoSuchVolume) {
		t.Errorf("DeleteVolume(missing) err = %v, want ErrNoSuchVolume", err)
	}
	if n := f.count("DELETE /nodes/pve1/storage/backup/content/" + backupVolid); n != 1 {
		t.Errorf("DELETEs = %d, want 1", n)
	}
}

func TestSetVolumeAttributes(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	key := "PUT /nodes/pve1/storage/backup/content/" + backupVolid
	f.handle(key, func(w http.ResponseWriter, r *http.Request) { writeData(w, nil) })
	c := f.connect(t)
	if err := c.SetVolumeProtected(context.Background(), "pve1", "backup", backupVolid, true); err != nil {
		t.Fatal(err)
	}
	if got := f.lastBody(key); !reflect.DeepEqual(got, map[string]any{"protected": "1"}) {
		t.Errorf("protect body = %v", got)
	}
	if err := c.SetVolumeNotes(context.Background(), "pve1", "backup", backupVolid, "hello"); err != nil {
		t.Fatal(err)
	}
	if got := f.lastBody(key); !reflect.DeepEqual(got, map[string]any{"notes": "hello"}) {
		t.Errorf("notes body = %v", got)
	}
}
