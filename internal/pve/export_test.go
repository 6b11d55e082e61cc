package pve

import "time"

// SetBackoff shortens the retry backoff so tests do not wait on it.
func SetBackoff(c *Client, d time.Duration) { c.backoff = d }

// EscapeNotesTemplate exposes the notes-template escaping to tests.
var EscapeNotesTemplate = escapeNotesTemplate

// SHA512Crypt exposes the hash with a chosen salt for the known answers.
func SHA512Crypt(pw, salt string) string { return sha512Crypt([]byte(pw), []byte(salt)) }
