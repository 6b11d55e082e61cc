package pve

import (
	"github.com/pvekeep/pvekeep/internal/lazyre"

	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// UPIDInfo is a decoded task id
// (UPID:node:pid(8 hex):pstart(8-9 hex):starttime(8 hex):type:id:user:,
// PVE::Tools::upid_encode).
type UPIDInfo struct {
	Node      string
	PID       int
	PStart    uint64
	StartTime time.Time // UTC
	Type      string    // vzdump, imgdel, qmstart, …
	ID        string    // usually the vmid; "" for node-wide tasks
	User      string    // root@pam, or user@realm!token
}

var upidRe = lazyre.New(`^UPID:([a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):([^:\s]+):([^:\s]*):([^:\s]+):$`)

// ParseUPID decodes s the way PVE's upid_decode does.
func ParseUPID(s string) (UPIDInfo, error) {
	m := upidRe.FindStringSubmatch(s)
	if m == nil {
		return UPIDInfo{}, fmt.Errorf("parse upid %q: malformed", s)
	}
	pid, _ := strconv.ParseUint(m[2], 16, 32)
	pstart, _ := strconv.ParseUint(m[3], 16, 64)
	start, _ := strconv.ParseInt(m[4], 16, 64)
	return UPIDInfo{
		Node:      m[1],
		PID:       int(pid),
		PStart:    pstart,
		StartTime: time.Unix(start, 0).UTC(),
		Type:      m[5],
		ID:        m[6],
		User:      m[7],
	}, nil
}

// progressRe matches qemu-server's backup status line,
// sprintf("%3d%% ($transferred_h of $target_h) in %s, read: …, write: …"),
// as it appears in the task log behind vzdump's "INFO: " prefix. It does
// not match "backup is sparse: 1.0 GiB (12%) total zero data".
var progressRe = lazyre.New(`^(?:\S+ \S+ )?INFO:\s+(\d{1,3})% \(`)

// ParseProgress reads the percentage from a vzdump progress log line
// ("INFO:  42% (4.2 GiB of 10.0 GiB) in 5s, read: …") → 42.
func ParseProgress(line string) (pct int, ok bool) {
	m := progressRe.FindStringSubmatch(line)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n > 100 {
		return 0, false
	}
	return n, true
}

// restoreProgressRe matches the progress lines a qmrestore task log
// carries: vma extract's "progress 42% (read 4509715456 bytes, duration 5
// sec)" (pve-qemu vma-reader.c) and pbs-restore's "progress 42% (read …
// bytes, zeroes = 40% (… bytes), duration 94 sec)". qemu-server prints them
// unprefixed (no "INFO:").
var restoreProgressRe = lazyre.New(`^(?:\S+ \S+ )?progress (\d{1,3})% \(read \d+ bytes`)

// ParseRestoreProgress reads the percentage from a qmrestore progress line
// → 42. A VMA archive counts all disks together; a Proxmox Backup Server
// restore counts each disk from 0 to 100 in turn (one "restore proxmox
// backup image" line before each), so the percentage can fall back.
func ParseRestoreProgress(line string) (pct int, ok bool) {
	m := restoreProgressRe.FindStringSubmatch(line)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n > 100 {
		return 0, false
	}
	return n, true
}

// archiveRe matches PVE::VZDump's "creating $archive_txt archive '$target'",
// where $archive_txt is "vzdump", "Proxmox Backup Server" or a backup
// provider's name.
var archiveRe = lazyre.New(`^(?:\S+ \S+ )?INFO: creating (?:.+ )?archive '(.+)'\s*$`)

// ParseArchive returns the archive target named by a vzdump log line
// ("INFO: creating vzdump archive '/mnt/backup/dump/vzdump-qemu-100-….vma.zst'").
func ParseArchive(line string) (target string, ok bool) {
	m := archiveRe.FindStringSubmatch(line)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// VolidFromArchive builds the volid PVE gives the archive, as VZDump.pm does:
// "$storeid:backup/" plus the file's base name, or plus the whole target for
// Proxmox Backup Server targets (which are not paths: "vm/100/2024-…Z").
func VolidFromArchive(storage, target string) string {
	name := target
	if strings.HasPrefix(target, "/") {
		name = path.Base(target)
	}
	return storage + ":backup/" + name
}

var warningsRe = lazyre.New(`^WARNINGS: (\d+)$`)

// IsWarnings reports whether a task exit status is "WARNINGS: N" — a task
// that succeeded with N warnings.
func IsWarnings(exitstatus string) (n int, ok bool) {
	m := warningsRe.FindStringSubmatch(strings.TrimSpace(exitstatus))
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return 0, false
	}
	return n, true
}

// escapeNotesTemplate makes a note safe as vzdump's notes-template: one
// line, backslashes escaped, line breaks sent as the template's "\n"
// escape, and {{…}} broken up so PVE neither expands a variable nor warns
// about an unknown one (PVE::VZDump's verify_notes_template).
func escapeNotesTemplate(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	s = strings.ReplaceAll(s, "\n", `\n`)
	for strings.Contains(s, "{{") {
		s = strings.ReplaceAll(s, "{{", "{ {")
	}
	return truncateTemplate(s, maxNotesTemplate)
}

// maxNotesTemplate is the schema's maxLength of notes-template.
const maxNotesTemplate = 1024

// truncateTemplate cuts s to at most max bytes without splitting a UTF-8
// character or leaving half of a "\\" or "\n" escape at the end.
func truncateTemplate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	s = s[:cut]
	trailing := len(s) - len(strings.TrimRight(s, `\`))
	if trailing%2 == 1 {
		s = s[:len(s)-1]
	}
	return s
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
