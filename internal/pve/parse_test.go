package pve_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/pve"
)

func TestParseUPID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want pve.UPIDInfo
		ok   bool
	}{
		{"vzdump by a token", "UPID:pve1:000A1B2C:0098F6E1:66310F2A:vzdump:100:root@pam!pvekeep:",
			pve.UPIDInfo{Node: "pve1", PID: 0xA1B2C, PStart: 0x98F6E1, StartTime: time.Unix(0x66310F2A, 0).UTC(),
				Type: "vzdump", ID: "100", User: "root@pam!pvekeep"}, true},
		{"nine hex digit pstart and empty id", "UPID:node-a:00001234:1A2B3C4D5:66310F2A:aptupdate::root@pam:",
			pve.UPIDInfo{Node: "node-a", PID: 0x1234, PStart: 0x1A2B3C4D5, StartTime: time.Unix(0x66310F2A, 0).UTC(),
				Type: "aptupdate", ID: "", User: "root@pam"}, true},
		{"imgdel with a volid id is not a upid (colon in id)", "UPID:pve1:00001234:00001234:66310F2A:imgdel:backup:backup/x:root@pam:", pve.UPIDInfo{}, false},
		{"missing trailing colon", "UPID:pve1:00001234:00001234:66310F2A:vzdump:100:root@pam", pve.UPIDInfo{}, false},
		{"short pid", "UPID:pve1:1234:00001234:66310F2A:vzdump:100:root@pam:", pve.UPIDInfo{}, false},
		{"not a upid", "OK", pve.UPIDInfo{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pve.ParseUPID(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("ParseUPID(%q) err = %v, want ok=%v", tt.in, err, tt.ok)
			}
			if got != tt.want {
				t.Errorf("ParseUPID(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseProgress(t *testing.T) {
	t.Parallel()
	tests := []struct {
		line string
		pct  int
		ok   bool
	}{
		// qemu-server's "%3d%% (…) in …" behind vzdump's "INFO: " prefix.
		{"INFO:   0% (0.0 B of 10.0 GiB) in 0s, read: 0 B/s, write: 0 B/s", 0, true},
		{"INFO:   7% (748.0 MiB of 10.0 GiB) in 3s, read: 249.3 MiB/s, write: 240.1 MiB/s", 7, true},
		{"INFO:  42% (4.2 GiB of 10.0 GiB) in 5s, read: 850.0 MiB/s, write: 820.0 MiB/s", 42, true},
		{"INFO: 100% (10.0 GiB of 10.0 GiB) in 12s, read: 853.3 MiB/s, write: 0 B/s", 100, true},
		{"INFO: backup is sparse: 8.21 GiB (82%) total zero data", 0, false},
		{"INFO: backup was done incrementally, reused 9.00 GiB (90%)", 0, false},
		{"INFO: transferred 10.00 GiB in 12 seconds (853.3 MiB/s)", 0, false},
		{"INFO: starting new backup job: vzdump 100 --mode snapshot --compress zstd", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			pct, ok := pve.ParseProgress(tt.line)
			if pct != tt.pct || ok != tt.ok {
				t.Errorf("ParseProgress(%q) = %d, %v; want %d, %v", tt.line, pct, ok, tt.pct, tt.ok)
			}
		})
	}
}

func TestParseArchiveAndVolid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, line, storage, target, volid string
		ok                                 bool
	}{
		{"dir storage", "INFO: creating vzdump archive '/mnt/pve/backup/dump/vzdump-qemu-100-2024_05_01-10_00_00.vma.zst'",
			"backup", "/mnt/pve/backup/dump/vzdump-qemu-100-2024_05_01-10_00_00.vma.zst",
			"backup:backup/vzdump-qemu-100-2024_05_01-10_00_00.vma.zst", true},
		{"local storage", "INFO: creating vzdump archive '/var/lib/vz/dump/vzdump-qemu-101-2024_05_01-10_00_00.vma'",
			"local", "/var/lib/vz/dump/vzdump-qemu-101-2024_05_01-10_00_00.vma",
			"local:backup/vzdump-qemu-101-2024_05_01-10_00_00.vma", true},
		{"proxmox backup server", "INFO: creating Proxmox Backup Server archive 'vm/100/2024-05-01T10:00:00Z'",
			"pbs", "vm/100/2024-05-01T10:00:00Z", "pbs:backup/vm/100/2024-05-01T10:00:00Z", true},
		{"archive size line", "INFO: archive file size: 1.23GB", "", "", "", false},
		{"log file line", "INFO: starting new backup job: vzdump 100 --storage backup", "", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target, ok := pve.ParseArchive(tt.line)
			if target != tt.target || ok != tt.ok {
				t.Fatalf("ParseArchive(%q) = %q, %v; want %q, %v", tt.line, target, ok, tt.target, tt.ok)
			}
			if !ok {
				return
			}
			if got := pve.VolidFromArchive(tt.storage, target); got != tt.volid {
				t.Errorf("VolidFromArchive(%q, %q) = %q, want %q", tt.storage, target, got, tt.volid)
			}
		})
	}
}

func TestIsWarnings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in string
		n  int
		ok bool
	}{
		{"WARNINGS: 1", 1, true},
		{"WARNINGS: 12", 12, true},
		{"OK", 0, false},
		{"job errors", 0, false},
		{"WARNINGS:", 0, false},
		{"unexpected status", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			n, ok := pve.IsWarnings(tt.in)
			if n != tt.n || ok != tt.ok {
				t.Errorf("IsWarnings(%q) = %d, %v; want %d, %v", tt.in, n, ok, tt.n, tt.ok)
			}
		})
	}
}

func TestEscapeNotesTemplate(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 1023) + `\`
	tests := []struct{ name, in, want string }{
		{"plain", "before upgrade", "before upgrade"},
		{"newlines become the \\n escape", "a\nb\r\nc\rd", `a\nb\nc\nd`},
		{"backslash doubled", `C:\temp`, `C:\\temp`},
		{"template variables neutralised", "{{vmid}} {{{x}}}", "{ {vmid}} { { {x}}}"},
		{"cut at 1024 without half an escape", long, strings.Repeat("a", 1023)},
		{"cut at 1024 without half a rune", strings.Repeat("a", 1023) + "é", strings.Repeat("a", 1023)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := pve.EscapeNotesTemplate(tt.in)
			if got != tt.want {
				t.Errorf("escape(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if strings.ContainsAny(got, "\r\n") || len(got) > 1024 {
				t.Errorf("escape(%q) is not one line of at most 1024 bytes", tt.in)
			}
		})
	}
}

func TestParseRestoreProgress(t *testing.T) {
	t.Parallel()
	tests := []struct {
		line string
		pct  int
		ok   bool
	}{
		{"progress 42% (read 4509715456 bytes, duration 5 sec)", 42, true},
		{"progress 100% (read 10737418240 bytes, duration 61 sec)", 100, true},
		{"progress 0% (read 0 bytes, duration 0 sec)", 0, true},
		{"progress 1% (read 130023424 bytes, zeroes = 45% (58720256 bytes), duration 0 sec)", 1, true},
		{"progress 101% (read 1 bytes, duration 0 sec)", 0, false},
		{"restore image complete (bytes=12884901888, duration=94.68s, speed=129.78MB/s)", 0, false},
		{"restore vma archive: zstd -q -d -c /mnt/backup/dump/vzdump-qemu-100.vma.zst | vma extract -v -r /var/tmp/vzdumptmp1.fifo - /var/tmp/vzdumptmp1", 0, false},
		{"INFO:  42% (4.2 GiB of 10.0 GiB) in 5s, read: 1.0 GiB/s, write: 1.0 GiB/s", 0, false}, // a vzdump line
		{"new volume ID is 'local-lvm:vm-100-disk-0'", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		pct, ok := pve.ParseRestoreProgress(tt.line)
		if pct != tt.pct || ok != tt.ok {
			t.Errorf("ParseRestoreProgress(%q) = %d, %v; want %d, %v", tt.line, pct, ok, tt.pct, tt.ok)
		}
	}
}
