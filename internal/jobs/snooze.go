package jobs

import (
	"errors"
	"fmt"
	"time"
)

// SnoozeError asks the runner to keep the job's lease for D instead of
// releasing it, so that no runner looks at the job again before then.
// A step returns it after a request whose fate is unknown (the answer was
// lost): Proxmox may still be processing it, and the next look must come
// after it would have shown up.
type SnoozeError struct {
	D   time.Duration
	Err error
}

func (e *SnoozeError) Error() string {
	return fmt.Sprintf("look again in %s: %v", e.D, e.Err)
}

func (e *SnoozeError) Unwrap() error { return e.Err }

// Snooze wraps err so the runner holds the job for d.
func Snooze(d time.Duration, err error) error { return &SnoozeError{D: d, Err: err} }

// AsSnooze finds a SnoozeError in err's chain.
func AsSnooze(err error) (*SnoozeError, bool) {
	var se *SnoozeError
	ok := errors.As(err, &se)
	return se, ok
}
