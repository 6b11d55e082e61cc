package service_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/mail"
	"github.com/pvekeep/pvekeep/internal/mail/mailtest"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/service"
	"github.com/pvekeep/pvekeep/internal/store"
	"github.com/pvekeep/pvekeep/lang"
	"github.com/pvekeep/pvekeep/templates"
)

const smtpSecret = "whmcs-SMTP-s3cret"

// mailWorld is a bundle whose service has no config-file SMTP (unless
// configured) and builds the panel's mailer for test servers it trusts.
type mailWorld struct {
	*bundle
	logs *bytes.Buffer
}

func setupMail(t *testing.T, configured *mailtest.Server, trust *mailtest.Server) *mailWorld {
	t.Helper()
	b := setup(t, 3)
	logs := &bytes.Buffer{}
	deps := b.deps
	deps.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	logger := deps.Logger
	deps.NewMailer = func(c mail.Config) (service.Mailer, error) {
		if trust != nil {
			c.RootCAs = trust.CertPool()
		}
		c.Timeout = 5 * time.Second
		return mail.New(c, templates.Files, lang.Files, logger)
	}
	if configured != nil {
		host, port := configured.Addr()
		m, err := mail.New(mail.Config{Host: host, Port: port, TLS: mail.TLSNone, From: "config@example.test", Timeout: 5 * time.Second},
			templates.Files, lang.Files, nil)
		must(t, err)
		deps.Mailer = m
	}
	b.svc = service.New(deps, b.cfg)
	return &mailWorld{bundle: b, logs: logs}
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// panelSMTP is WHMCS's mail settings for a test server.
func panelSMTP(srv *mailtest.Server, secure string) *service.PanelSMTP {
	host, port := srv.Addr()
	return &service.PanelSMTP{Host: host, Port: port, Username: "whmcs", Password: smtpSecret, Secure: secure,
		FromEmail: "billing@example.test", FromName: "Example Hosting"}
}

// restoreWith restores a backup and ticks, with smtp, until the job ended.
func (w *mailWorld) restoreWith(t *testing.T, smtp *service.PanelSMTP) pvekeep.Job {
	t.Helper()
	ctx := context.Background()
	bk := w.backupOnStorage(t)
	job, err := w.svc.RestoreBackup(ctx, w.call(), bk.ID, "")
	must(t, err)
	for i := 0; i < 400; i++ {
		_, err := w.svc.TickWithSMTP(ctx, []pvekeep.Server{w.server}, time.Second, smtp)
		must(t, err)
		j, err := w.svc.GetJob(ctx, w.call(), job.ID)
		must(t, err)
		if j.State.Terminal() {
			return j
		}
		w.clock.Advance(time.Second)
	}
	t.Fatal("restore still running after 400 ticks")
	return job
}

func (w *mailWorld) emails(t *testing.T) []store.Email {
	t.Helper()
	o, err := w.svc.Overview(context.Background(), w.as(anAdmin))
	must(t, err)
	return o.Emails
}

// WHMCS's SMTP SSL Type maps to the mail modes: "ssl" is TLS from the
// first byte, "tls" STARTTLS, "" none; each sends the restore email with
// the panel's login.
func TestPanelSMTPSendsInEachSecureMode(t *testing.T) {
	t.Parallel()
	cases := []struct {
		secure, server string
		wantTLS        bool
	}{
		{"ssl", mailtest.TLSImplicit, true},
		{"tls", mailtest.TLSStartTLS, true},
		{"", mailtest.TLSNone, false},
	}
	for _, tc := range cases {
		t.Run("secure="+tc.secure, func(t *testing.T) {
			t.Parallel()
			srv := mailtest.StartWith(t, mailtest.Options{TLS: tc.server})
			srv.RequireAuth("whmcs", smtpSecret)
			w := setupMail(t, nil, srv)
			job := w.restoreWith(t, panelSMTP(srv, tc.secure))
			if job.State != pvekeep.JobSucceeded {
				t.Fatalf("restore %s: %s", job.State, job.Error)
			}
			got := srv.Messages()
			if len(got) != 1 || got[0].TLS != tc.wantTLS || got[0].From != "billing@example.test" {
				t.Fatalf("received %+v, want one message from billing@example.test, tls %v", got, tc.wantTLS)
			}
			if e := w.emails(t); len(e) != 1 || e[0].Status != store.EmailSent || e[0].Attempts != 1 {
				t.Errorf("emails = %+v, want one sent at the first attempt", e)
			}
		})
	}
}

// Without SMTP settings the restore email is not dropped: it waits,
// queued with the reason, and the next tick that has the panel's settings
// sends it at once.
func TestRestoreEmailWaitsForSMTPSettingsThenGoes(t *testing.T) {
	t.Parallel()
	srv := mailtest.Start(t)
	w := setupMail(t, nil, nil)
	job := w.restoreWith(t, nil)
	if job.State != pvekeep.JobSucceeded {
		t.Fatalf("restore %s: %s", job.State, job.Error)
	}
	e := w.emails(t)
	if len(e) != 1 || e[0].Status != store.EmailPending || !strings.Contains(e[0].Error, "no SMTP settings") || e[0].Attempts != 0 {
		t.Fatalf("emails = %+v, want one queued, with the reason, never tried", e)
	}
	st, err := w.svc.TickWithSMTP(context.Background(), []pvekeep.Server{w.server}, 0, panelSMTP(srv, ""))
	must(t, err)
	if st.EmailsSent != 1 || len(srv.Messages()) != 1 {
		t.Fatalf("tick sent %d (server got %d), want the waiting email", st.EmailsSent, len(srv.Messages()))
	}
	if e := w.emails(t); e[0].Status != store.EmailSent {
		t.Errorf("email = %+v, want sent", e[0])
	}
}

// A client who opted out of product emails in WHMCS gets none: the email
// ends skipped, with the reason, for the admin to see.
func TestClientWhoOptedOutOfProductEmailsGetsNone(t *testing.T) {
	t.Parallel()
	srv := mailtest.Start(t)
	w := setupMail(t, nil, nil)
	_, err := w.db.Store.DB().ExecContext(context.Background(), "UPDATE tblclients SET email_preferences = ? WHERE id = ?",
		`{"general":1,"invoice":1,"support":1,"product":0,"domain":1,"affiliate":1}`, w.clientID)
	must(t, err)
	w.restoreWith(t, panelSMTP(srv, ""))
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d emails sent, want none", n)
	}
	if e := w.emails(t); len(e) != 1 || e[0].Status != store.EmailSkipped || !strings.Contains(e[0].Error, "opted out") {
		t.Errorf("emails = %+v, want one skipped because the client opted out", e)
	}
}

// The config file's [smtp] wins over the panel's settings.
func TestConfigFileSMTPWinsOverThePanels(t *testing.T) {
	t.Parallel()
	configured, panel := mailtest.Start(t), mailtest.Start(t)
	w := setupMail(t, configured, nil)
	w.restoreWith(t, panelSMTP(panel, ""))
	if c, p := len(configured.Messages()), len(panel.Messages()); c != 1 || p != 0 {
		t.Errorf("config file's server got %d, panel's %d; want 1 and 0", c, p)
	}
}

// The panel's SMTP password is never stored or logged: not when the
// server refuses the login, not when the settings cannot be used.
func TestPanelSMTPPasswordIsNeverStoredOrLogged(t *testing.T) {
	t.Parallel()
	srv := mailtest.Start(t)
	srv.RequireAuth("whmcs", "another-password")
	w := setupMail(t, nil, nil)
	w.restoreWith(t, panelSMTP(srv, ""))
	e := w.emails(t)
	if len(e) != 1 || e[0].Status != store.EmailFailed || e[0].Error == "" {
		t.Fatalf("emails = %+v, want one failed with the server's refusal", e)
	}
	// Plain SMTP with a login to a remote host is refused before connecting.
	remote := &service.PanelSMTP{Host: "mail.example.test", Port: 25, Username: "whmcs", Password: smtpSecret, FromEmail: "billing@example.test"}
	w2 := setupMail(t, nil, nil)
	w2.restoreWith(t, remote)
	e2 := w2.emails(t)
	if len(e2) != 1 || e2[0].Status != store.EmailPending || !strings.Contains(e2[0].Error, "WHMCS's mail settings cannot be used") {
		t.Fatalf("emails = %+v, want one queued because the settings cannot be used", e2)
	}
	for _, ww := range []*mailWorld{w, w2} {
		var n int
		must(t, ww.db.Store.DB().QueryRowContext(context.Background(), `SELECT
 (SELECT COUNT(*) FROM mod_pvekeep_emails WHERE error LIKE ?) + (SELECT COUNT(*) FROM mod_pvekeep_jobs WHERE error LIKE ? OR params LIKE ?)`,
			"%"+smtpSecret+"%", "%"+smtpSecret+"%", "%"+smtpSecret+"%").Scan(&n))
		if n != 0 {
			t.Errorf("%d rows hold the SMTP password", n)
		}
		if strings.Contains(ww.logs.String(), smtpSecret) {
			t.Errorf("the log holds the SMTP password:\n%s", ww.logs.String())
		}
	}
}
