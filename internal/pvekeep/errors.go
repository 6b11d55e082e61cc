package pvekeep

import (
	"errors"
	"fmt"
)

// Reason is the stable string the panel maps to a translated message
// (DESIGN §3). Each has exactly one JSON-RPC code, assigned in internal/api.
type Reason string

const (
	ReasonNotFound      Reason = "not_found"
	ReasonForbidden     Reason = "forbidden"
	ReasonLocked        Reason = "locked"
	ReasonQuotaExceeded Reason = "quota_exceeded"
	ReasonInvalidState  Reason = "invalid_state"
	ReasonUpstream      Reason = "upstream"
	ReasonInvalidInput  Reason = "invalid_input"
	ReasonUnavailable   Reason = "unavailable"
	ReasonCooldown      Reason = "cooldown"
)

// Error is an application error meant for the panel: a reason, a message
// safe to show (never a secret or a raw Proxmox body) and structured data.
type Error struct {
	Reason  Reason
	Message string
	Data    map[string]any
	Err     error // the cause, for logs; never sent to the panel
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Reason, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Reason, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// AsError finds the application error in err's chain.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// ReasonOf returns the reason of the application error in err's chain, or "".
func ReasonOf(err error) Reason {
	if e, ok := AsError(err); ok {
		return e.Reason
	}
	return ""
}

func NotFound(what string) *Error {
	return &Error{Reason: ReasonNotFound, Message: what + " not found", Data: map[string]any{"what": what}}
}

func Forbidden(msg string) *Error {
	return &Error{Reason: ReasonForbidden, Message: msg}
}

// Locked says the VM is busy: lock is Proxmox's lock name or the running
// job's kind; jobID is 0 when the lock is Proxmox's own.
func Locked(lock string, jobID JobID) *Error {
	d := map[string]any{"lock": lock}
	if jobID != 0 {
		d["job_id"] = jobID
	}
	return &Error{Reason: ReasonLocked, Message: "the VM is busy (" + lock + ")", Data: d}
}

func QuotaExceeded(what string, used, max int) *Error {
	return &Error{Reason: ReasonQuotaExceeded,
		Message: fmt.Sprintf("%s quota reached (%d of %d)", what, used, max),
		Data:    map[string]any{"what": what, "used": used, "max": max}}
}

func InvalidState(msg string) *Error {
	return &Error{Reason: ReasonInvalidState, Message: msg}
}

func InvalidInput(field, msg string) *Error {
	return &Error{Reason: ReasonInvalidInput, Message: msg, Data: map[string]any{"field": field}}
}

// Upstream says Proxmox refused; detail is Proxmox's own message, already
// free of secrets.
func Upstream(detail string, cause error) *Error {
	return &Error{Reason: ReasonUpstream, Message: "Proxmox refused the request",
		Data: map[string]any{"detail": detail}, Err: cause}
}

// Unavailable says a dependency (database, Proxmox) could not be reached;
// the call is safe to retry.
func Unavailable(what string, cause error) *Error {
	return &Error{Reason: ReasonUnavailable, Message: what + " is unavailable; try again",
		Data: map[string]any{"what": what, "retryable": true}, Err: cause}
}
