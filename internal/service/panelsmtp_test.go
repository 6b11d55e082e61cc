package service

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/pvekeep/pvekeep/internal/mail"
)

// WHMCS's SMTP SSL Type becomes the mail package's TLS mode; anything
// else is refused with a message that names the field, not the password.
func TestPanelSMTPSecureMapsToTLSModes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		secure, want string
		ok           bool
	}{
		{"ssl", mail.TLSImplicit, true},
		{"tls", mail.TLSStartTLS, true},
		{"", mail.TLSNone, true},
		{"starttls", "", false},
	}
	for _, tc := range cases {
		p := PanelSMTP{Host: "127.0.0.1", Port: 2525, Username: "u", Password: "pw-secret", Secure: tc.secure, FromEmail: "a@example.test"}
		c, err := p.mailConfig()
		if (err == nil) != tc.ok || c.TLS != tc.want {
			t.Errorf("secure %q: tls %q, err %v; want %q, ok %v", tc.secure, c.TLS, err, tc.want, tc.ok)
		}
		if err != nil && strings.Contains(err.Error(), "pw-secret") {
			t.Errorf("secure %q: the error holds the password: %v", tc.secure, err)
		}
	}
}

// Printing or logging the panel's settings never shows the password.
func TestPanelSMTPNeverPrintsThePassword(t *testing.T) {
	t.Parallel()
	p := &PanelSMTP{Host: "mail.example.test", Username: "u", Password: "pw-secret", Secure: "tls", FromEmail: "a@example.test"}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "smtp", p, "value", *p)
	for _, s := range []string{fmt.Sprintf("%v %+v %#v %s", p, *p, *p, p), logs.String()} {
		if strings.Contains(s, "pw-secret") {
			t.Errorf("the password shows: %s", s)
		}
	}
}
