package service

import (
	"strings"
	"testing"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

func TestCleanNote(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in, want string
		wantField      bool
	}{
		{name: "plain text is kept", in: "before upgrade", want: "before upgrade"},
		{name: "newlines become one space", in: "line one\r\nline two\n", want: "line one line two"},
		{name: "control characters are dropped", in: "a\x00b\x1bc\x7f", want: "abc"},
		{name: "bidi override and zero-width are dropped", in: "safe\u202Etxt.exe\u200B", want: "safetxt.exe"},
		{name: "runs of spaces collapse and ends are trimmed", in: "  a   b  ", want: "a b"},
		{name: "non-ASCII letters are kept", in: "Sicherung vor Änderung — резерв", want: "Sicherung vor Änderung — резерв"},
		{name: "backslashes are kept for the gateway to escape", in: `C:\temp`, want: `C:\temp`},
		{name: "invalid UTF-8 is refused", in: "bad \xff byte", wantField: true},
		{name: "a replacement character the client typed is kept", in: "a \ufffd b", want: "a \ufffd b"},
		{name: "too long is refused, not cut", in: strings.Repeat("x", MaxNoteBytes+1), wantField: true},
		{name: "exactly the limit is accepted", in: strings.Repeat("x", MaxNoteBytes), want: strings.Repeat("x", MaxNoteBytes)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := cleanNote("note", tc.in)
			if tc.wantField {
				if pvekeep.ReasonOf(err) != pvekeep.ReasonInvalidInput {
					t.Fatalf("cleanNote(%q) error = %v, want invalid_input", tc.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("cleanNote(%q) error = %v", tc.in, err)
			}
			if got != tc.want {
				t.Errorf("cleanNote(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestCheckIdempotencyKey(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, key string
		ok        bool
	}{
		{"empty key means no key", "", true},
		{"uuid is accepted", "6f1c2b4e-9a7d-4c1e-8f3a-0b2d4e6f8a1c", true},
		{"space is refused", "a b", false},
		{"non-ASCII is refused", "ключ", false},
		{"longer than the column is refused", strings.Repeat("k", MaxIdempotencyKey+1), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := checkIdempotencyKey(tc.key)
			if (err == nil) != tc.ok {
				t.Errorf("checkIdempotencyKey(%q) = %v, want ok=%v", tc.key, err, tc.ok)
			}
		})
	}
}

func TestTaskFailure(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		exit  string
		lines []string
		want  string
	}{
		{name: "exit status when the log has no ERROR line", exit: "unable to open file", want: "unable to open file"},
		{
			name: "ERROR lines win over a generic exit status",
			exit: "job errors",
			lines: []string{"INFO: starting new backup job", "ERROR: Backup of VM 100 failed - no space left on device",
				"INFO: Backup job finished with errors"},
			want: "Backup of VM 100 failed - no space left on device",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := taskFailure(tc.exit, tc.lines); got != tc.want {
				t.Errorf("taskFailure() = %q, want %q", got, tc.want)
			}
		})
	}
}
