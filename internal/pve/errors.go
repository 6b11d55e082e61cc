package pve

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pvekeep/pvekeep/internal/lazyre"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// Sentinels. Every error the gateway returns is classified against these at
// the bottom (see classify); callers test with errors.Is.
var (
	// ErrNotFound: 404, or a 500 whose message says "does not exist" or
	// "no such" (PVE answers a missing VM config or storage that way).
	ErrNotFound = errors.New("pve: not found")
	// ErrAlreadyExists: PVE said "already exists".
	ErrAlreadyExists = errors.New("pve: already exists")
	// ErrTransient: a network failure or a 5xx not classified otherwise.
	// Safe to retry a GET; a POST/PUT/DELETE may or may not have happened.
	ErrTransient = errors.New("pve: transient failure")
	// ErrUnauthorized: 401 or 403 (bad credentials or a missing privilege).
	ErrUnauthorized = errors.New("pve: unauthorized")
	// ErrWrongNode: vzdump was sent to a node that does not own the VM
	// (PVE answers "OK" instead of a UPID and does nothing).
	ErrWrongNode = errors.New("pve: vm is not on that node")
	// ErrLocked: the guest holds a lock; the error in the chain is a
	// *LockedError naming it.
	ErrLocked = errors.New("pve: vm is locked")
	// ErrRunning: PVE refused because the guest is running ("vm is
	// running" from a restore, "VM 100 is running - destroy failed"), or a
	// start found it "already running". Not transient: stop it first, or,
	// after a start, treat it as done.
	ErrRunning = errors.New("pve: vm is running")
	// ErrShrink: a resize asked for a size below the disk's current one
	// ("shrinking disks is not supported"). PVE only grows disks.
	ErrShrink = errors.New("pve: shrinking disks is not supported")
	// ErrDigestMismatch: the config changed since the digest sent with the
	// update was read ("checksum mismatch (file change by other user?)").
	// Read the config again and decide again; never retry blindly.
	ErrDigestMismatch = errors.New("pve: config changed since it was read (digest mismatch)")
	// ErrBusy: PVE could not take the guest's config lock in time ("can't
	// lock file '/var/lock/qemu-server/lock-100.conf' - got timeout");
	// another operation holds it for a moment. It also matches
	// ErrTransient: try again later.
	ErrBusy = fmt.Errorf("%w: config lock busy", ErrTransient)
	// ErrNoSuchVolume: the storage answered and the volume is not on it
	// (it also matches ErrNotFound). A storage that itself does not exist
	// is plain ErrNotFound: the volume may well still be there.
	ErrNoSuchVolume = fmt.Errorf("%w: no such volume", ErrNotFound)
	// ErrRefusedValue: PVE's check of a value died ("SSH public key
	// validation error", "invalid format - …", "unable to parse …"): the
	// same request fails the same way every time.
	ErrRefusedValue = errors.New("pve: value refused")
	// ErrInvalidConfig: the connection settings cannot work (no
	// credentials, a token id of the wrong form, a bad fingerprint);
	// nothing was sent to Proxmox.
	ErrInvalidConfig = errors.New("pve: invalid connection settings")
)

// HTTPError is PVE's answer to a request that failed with an HTTP status.
// Message is PVE's own message (the reason phrase or the body's "message"),
// Errors the per-parameter reasons of a 400 "Parameter verification failed".
// Neither ever holds a credential: they are scrubbed of the configured
// secrets before the error is built.
type HTTPError struct {
	Method  string
	Path    string // API path without query, e.g. /nodes/pve1/qemu/100/status/current
	Code    int
	Message string
	Errors  map[string]string

	kind error // the sentinel, nil when none applies
}

func (e *HTTPError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %d %s", e.Method, e.Path, e.Code, e.Message)
	if len(e.Errors) > 0 {
		b.WriteString(" (")
		for i, k := range sortedKeys(e.Errors) {
			if i > 0 {
				b.WriteString("; ")
			}
			fmt.Fprintf(&b, "%s: %s", k, e.Errors[k])
		}
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap returns the sentinel the response was classified as, if any.
func (e *HTTPError) Unwrap() error { return e.kind }

// LockedError says a guest holds a Proxmox lock ("VM is locked (backup)").
// It matches errors.Is(err, ErrLocked) and keeps the cause in the chain.
type LockedError struct {
	VMID pvekeep.VMID
	Lock string // backup, clone, create, migrate, rollback, snapshot, …
	Err  error  // the HTTP or task error that said so; may be nil
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("vm %d is locked (%s)", e.VMID, e.Lock)
}

// Unwrap yields ErrLocked and the cause.
func (e *LockedError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrLocked}
	}
	return []error{ErrLocked, e.Err}
}

// TaskError is a PVE task that stopped with an exit status other than OK or
// "WARNINGS: N". LogTail holds the last lines of its log (up to 20).
type TaskError struct {
	UPID       pvekeep.UPID
	ExitStatus string
	LogTail    []string

	locked *LockedError
	kind   error // the sentinel the exit status was classified as, if any
}

func (e *TaskError) Error() string {
	return fmt.Sprintf("task %s failed: %s", e.UPID, e.ExitStatus)
}

// Unwrap yields a *LockedError when the exit status or log says the guest
// was locked, so errors.Is(err, ErrLocked) works for task failures too, and
// the sentinel the exit status reads as (see classifyTask): ErrShrink for a
// resize on PVE 8+, ErrRunning for "already running"/"vm is running",
// ErrAlreadyExists (also a snapshot name "already used"), ErrNotFound,
// ErrDigestMismatch, ErrNotNewestSnapshot.
func (e *TaskError) Unwrap() []error {
	var errs []error
	if e.locked != nil {
		errs = append(errs, e.locked)
	}
	if e.kind != nil {
		errs = append(errs, e.kind)
	}
	return errs
}

// transportError is a request that got no HTTP answer (refused, reset,
// timed out). It is transient unless the TLS handshake was refused.
type transportError struct {
	method, path string
	err          error
	transient    bool
}

func (e *transportError) Error() string {
	return fmt.Sprintf("%s %s: %v", e.method, e.path, e.err)
}

func (e *transportError) Unwrap() []error {
	if e.transient {
		return []error{ErrTransient, e.err}
	}
	return []error{e.err}
}

var lockRe = lazyre.New(`(?:VM|CT|[Gg]uest)(?: \d+)? is locked \(([A-Za-z0-9_-]+)\)`)

// parseLock finds "VM is locked (backup)" in a PVE message.
func parseLock(msg string) (string, bool) {
	m := lockRe.FindStringSubmatch(msg)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// runningRe matches PVE's refusals because a guest runs: "VM 100 already
// running" (vm_start), "unable to restore VM 100 - vm is running"
// (qmrestore), "VM 100 is running - destroy failed" (destroy_vm).
var runningRe = lazyre.New(`(?i)\b(?:already running|vm(?: \d+)? is running)\b`)

// permanent picks the sentinel for a PVE "die" message that no retry can
// change. PVE answers every die with a 500, so without this they would all
// read as transient.
func permanent(msg string) error {
	lower := strings.ToLower(msg)
	switch {
	case strings.Contains(lower, "shrinking disks is not supported"):
		return ErrShrink
	case strings.Contains(lower, "checksum mismatch") || strings.Contains(lower, "detected modified configuration"):
		return ErrDigestMismatch
	case runningRe.MatchString(msg):
		return ErrRunning
	case strings.Contains(lower, "is not most recent snapshot"):
		return ErrNotNewestSnapshot
	case strings.Contains(lower, "snapshot name") && strings.Contains(lower, "(reserved name)"):
		return ErrInvalidSnapshotName
	case strings.Contains(lower, "validation error") || strings.Contains(lower, "invalid format") ||
		strings.Contains(lower, "unable to parse"):
		return ErrRefusedValue
	}
	return nil
}

// classify picks the sentinel for an HTTP failure (bpg's
// validateResponseCode, widened to "no such" and PVE's proxy codes 595/596,
// and to the permanent refusals of permanent).
func classify(code int, msg string) error {
	lower := strings.ToLower(msg)
	switch {
	case code == 401 || code == 403:
		return ErrUnauthorized
	case code == 404:
		return ErrNotFound
	case strings.Contains(lower, "already exists"):
		return ErrAlreadyExists
	case code >= 500 && (strings.Contains(lower, "does not exist") || strings.Contains(lower, "no such")):
		return ErrNotFound
	case code >= 500:
		if _, ok := parseLock(msg); ok {
			return ErrLocked
		}
		if strings.Contains(lower, "can't lock file") && strings.Contains(lower, "got timeout") {
			return ErrBusy
		}
		if kind := permanent(msg); kind != nil {
			return kind
		}
		return ErrTransient
	}
	if _, ok := parseLock(msg); ok {
		return ErrLocked
	}
	return nil
}

// classifyTask picks the sentinel a failed task's exit status reads as. A
// lock is handled apart (it becomes a *LockedError). "job errors" and other
// summaries read as nothing.
func classifyTask(exitstatus string) error {
	lower := strings.ToLower(exitstatus)
	if kind := permanent(exitstatus); kind != nil {
		return kind
	}
	switch {
	case strings.Contains(lower, "already exists"),
		strings.HasPrefix(lower, "snapshot name '") && strings.HasSuffix(lower, "' already used"):
		return ErrAlreadyExists
	case strings.Contains(lower, "does not exist") || strings.Contains(lower, "no such"):
		return ErrNotFound
	}
	return nil
}

// withVMID turns an HTTP error that says the guest is locked into a
// *LockedError carrying the vmid the call was about.
func withVMID(err error, vmid pvekeep.VMID) error {
	var he *HTTPError
	if errors.As(err, &he) {
		if lock, ok := parseLock(he.Message); ok {
			return &LockedError{VMID: vmid, Lock: lock, Err: err}
		}
	}
	return err
}

// scrub removes every secret from s. Secrets shorter than 4 bytes are
// ignored (they would mangle ordinary text and cannot be meaningful).
func scrub(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return s
}
