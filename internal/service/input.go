package service

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// MaxNoteBytes bounds a backup note. Proxmox's notes-template takes at most
// 1024 characters after escaping; 512 bytes of text leave room for every
// backslash to be doubled.
const MaxNoteBytes = 512

// MaxIdempotencyKey bounds idempotency keys: a UUID or a hex token fits
// with room to spare (the column itself takes 128).
const MaxIdempotencyKey = 64

// cleanNote makes a client's note safe to hand to Proxmox: valid UTF-8, one
// line, no control or format characters, trimmed, at most MaxNoteBytes. Text
// that is too long is refused rather than cut, so that what is stored is
// exactly what the client typed, minus the invisible parts.
//
// Text that is not UTF-8 never gets this far through the JSON-RPC API,
// which refuses it before decoding (encoding/json would have replaced the
// bad bytes with U+FFFD, hiding them from this check); the check here
// keeps the promise for Go callers of the service. A U+FFFD the client
// really sent is kept like any other character.
func cleanNote(field, s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", pvekeep.InvalidInput(field, "the note is not valid UTF-8")
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			b.WriteRune(' ')
		case unicode.IsControl(r), unicode.Is(unicode.Cf, r):
			// dropped: control, bidi overrides, zero-width characters
		default:
			b.WriteRune(r)
		}
	}
	out := strings.Join(strings.Fields(b.String()), " ")
	if len(out) > MaxNoteBytes {
		return "", pvekeep.InvalidInput(field, "the note is too long")
	}
	return out, nil
}

// checkIdempotencyKey accepts printable ASCII keys of bounded length.
func checkIdempotencyKey(k string) error {
	if len(k) > MaxIdempotencyKey {
		return pvekeep.InvalidInput("idempotency_key", "the idempotency key is too long")
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return pvekeep.InvalidInput("idempotency_key", "the idempotency key must be printable ASCII")
		}
	}
	return nil
}
