package pve

import "time"

// SetBackoff shortens the retry backoff so tests do not wait on it.
func SetBackoff(c *Client, d time.Duration) { c.backoff = d }

// EscapeNotesTemplate exposes the notes-template escaping to tests.
var EscapeNotesTemplate = escapeNotesTemplate
