package mail_test

import (
	"context"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/mail"
	"github.com/pvekeep/pvekeep/internal/mail/mailtest"
)

// Each TLS mode reaches a server that speaks it, with the login, and the
// message travels encrypted exactly when a TLS mode was asked for.
func TestSendSpeaksEachTLSMode(t *testing.T) {
	t.Parallel()
	cases := []struct {
		server  string
		tls     string
		wantTLS bool
	}{
		{mailtest.TLSImplicit, mail.TLSImplicit, true},
		{mailtest.TLSStartTLS, mail.TLSStartTLS, true},
		{mailtest.TLSNone, mail.TLSNone, false},
	}
	for _, tc := range cases {
		t.Run(tc.tls, func(t *testing.T) {
			t.Parallel()
			srv := mailtest.StartWith(t, mailtest.Options{TLS: tc.server})
			srv.RequireAuth("pvekeep", secret)
			host, port := srv.Addr()
			cfg := mail.Config{Host: host, Port: port, TLS: tc.tls, Username: "pvekeep", Password: secret,
				From: "noreply@host.example", Timeout: 5 * time.Second, RootCAs: srv.CertPool()}
			if err := mail.NewSender(cfg, nil).Send(context.Background(), restoredMessage(t, cfg)); err != nil {
				t.Fatal(err)
			}
			got := srv.Messages()
			if len(got) != 1 || got[0].TLS != tc.wantTLS || got[0].Username != "pvekeep" {
				t.Fatalf("received %+v, want 1 message with tls %v, logged in as pvekeep", got, tc.wantTLS)
			}
		})
	}
}

// STARTTLS is required, not opportunistic: a server that does not offer
// it gets no message (and no password).
func TestStartTLSRefusesAServerWithoutIt(t *testing.T) {
	t.Parallel()
	srv := mailtest.Start(t)
	host, port := srv.Addr()
	cfg := mail.Config{Host: host, Port: port, TLS: mail.TLSStartTLS, Username: "pvekeep", Password: secret,
		From: "noreply@host.example", Timeout: 5 * time.Second}
	if err := mail.NewSender(cfg, nil).Send(context.Background(), restoredMessage(t, cfg)); err == nil {
		t.Fatal("sent without STARTTLS")
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d messages arrived, want 0", n)
	}
}
