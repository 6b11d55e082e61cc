package mail_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/mail"
	"github.com/pvekeep/pvekeep/internal/mail/mailtest"
	"github.com/pvekeep/pvekeep/lang"
	"github.com/pvekeep/pvekeep/templates"
)

const (
	secret  = "s3cret-SMTP-pa55"
	waitFor = 10 * time.Second
)

type sendBundle struct {
	srv  *mailtest.Server
	cfg  mail.Config
	logs *bytes.Buffer
}

// setupSender starts a test SMTP server and a Sender logging in to it
// with a password the tests look for in every error and log line.
func setupSender(t *testing.T) (*mail.Sender, *sendBundle) {
	t.Helper()
	srv := mailtest.Start(t)
	host, port := srv.Addr()
	cfg := mail.Config{Host: host, Port: port, TLS: mail.TLSNone, Username: "pvekeep", Password: secret,
		From: "noreply@host.example", FromName: "Example Hosting", Timeout: 5 * time.Second, HeloName: "pvekeep.test"}
	logs := &bytes.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return mail.NewSender(cfg, logger), &sendBundle{srv: srv, cfg: cfg, logs: logs}
}

// restoredMessage is the real rendered email for job 42 to client@example.net.
func restoredMessage(t *testing.T, cfg mail.Config) mail.Message {
	t.Helper()
	m, err := shippedRenderer(t).Render(mail.KindBackupRestored, "german", sampleData())
	if err != nil {
		t.Fatal(err)
	}
	m.To = "client@example.net"
	m.MessageID = cfg.MessageID(42, mail.KindBackupRestored)
	return m
}

func (b *sendBundle) assertNoSecret(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), secret) {
		t.Errorf("error reveals the password: %v", err)
	}
	if strings.Contains(b.logs.String(), secret) {
		t.Errorf("log reveals the password:\n%s", b.logs.String())
	}
}

func TestSendDeliversOneDecodableMessage(t *testing.T) {
	t.Parallel()
	s, b := setupSender(t)
	m := restoredMessage(t, b.cfg)
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	got := b.srv.WaitFor(1, waitFor)
	if len(got) != 1 {
		t.Fatalf("%d messages arrived, want 1", len(got))
	}
	r := got[0]
	if r.ParseErr != nil {
		t.Fatalf("message does not parse: %v\n%s", r.ParseErr, r.Data)
	}
	checks := []struct {
		what      string
		got, want string
	}{
		{"envelope from", r.From, "noreply@host.example"},
		{"envelope to", strings.Join(r.To, ","), "client@example.net"},
		{"auth login", r.Username, "pvekeep"},
		{"message id", r.MessageID, "<pvekeep.job-42.backup_restored@host.example>"},
		{"subject", r.Subject, "Ihr Server web1.example.net wurde aus einer Sicherung wiederhergestellt"},
		{"auto-submitted", r.Header.Get("Auto-Submitted"), "auto-generated"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
		}
	}
	for _, want := range []string{"VM-ID: 104", "web1.example.net", "Guten Tag Jane Doe,", "Änderungen"} {
		if !strings.Contains(r.TextBody, want) {
			t.Errorf("decoded text lacks %q:\n%s", want, r.TextBody)
		}
	}
	if !strings.Contains(r.HTMLBody, ">104<") || !strings.Contains(r.HTMLBody, "web1.example.net") {
		t.Errorf("decoded html lacks VM id or hostname:\n%s", r.HTMLBody)
	}
	if from := r.Header.Get("From"); !strings.Contains(from, "Example Hosting") || !strings.Contains(from, "<noreply@host.example>") {
		t.Errorf("From header %q", from)
	}
	b.assertNoSecret(t, nil)
}

func TestSendClassifiesFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		arrange   func(t *testing.T, b *sendBundle) mail.Config
		code      int
		transient bool
	}{
		{"451 at end of data is transient", func(t *testing.T, b *sendBundle) mail.Config {
			b.srv.FailNext(451, "try again later")
			return b.cfg
		}, 451, true},
		{"550 at end of data is permanent", func(t *testing.T, b *sendBundle) mail.Config {
			b.srv.FailNext(550, "no such user")
			return b.cfg
		}, 550, false},
		{"wrong password is permanent", func(t *testing.T, b *sendBundle) mail.Config {
			b.srv.RequireAuth("pvekeep", "another-password")
			return b.cfg
		}, 535, false},
		{"connection refused is transient", func(t *testing.T, b *sendBundle) mail.Config {
			cfg := b.cfg
			cfg.Port = closedPort(t)
			return cfg
		}, 0, true},
		{"invalid config is permanent", func(t *testing.T, b *sendBundle) mail.Config {
			cfg := b.cfg
			cfg.TLS = "ssl3"
			return cfg
		}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, b := setupSender(t)
			cfg := tt.arrange(t, b)
			s := mail.NewSender(cfg, slog.New(slog.NewTextHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
			err := s.Send(context.Background(), restoredMessage(t, cfg))
			if err == nil {
				t.Fatal("Send succeeded")
			}
			if got := errors.Is(err, mail.ErrTransient); got != tt.transient {
				t.Errorf("errors.Is(err, ErrTransient) = %v, want %v: %v", got, tt.transient, err)
			}
			var se *mail.SendError
			if !errors.As(err, &se) || se.Code != tt.code {
				t.Errorf("SendError code = %v, want %d: %v", se, tt.code, err)
			}
			if !strings.Contains(err.Error(), "pvekeep.job-42.backup_restored") {
				t.Errorf("error does not name the message: %v", err)
			}
			if n := len(b.srv.Messages()); n != 0 {
				t.Errorf("%d messages were accepted", n)
			}
			b.assertNoSecret(t, err)
		})
	}
}

func TestSendRetryAfterTransientFailureDeliversSameMessageID(t *testing.T) {
	t.Parallel()
	s, b := setupSender(t)
	m := restoredMessage(t, b.cfg)
	b.srv.FailNext(451, "greylisted")
	if err := s.Send(context.Background(), m); !errors.Is(err, mail.ErrTransient) {
		t.Fatalf("first send: %v, want transient", err)
	}
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatalf("retry: %v", err)
	}
	got := b.srv.WaitFor(1, waitFor)
	if len(got) != 1 || got[0].MessageID != m.MessageID {
		t.Fatalf("got %d messages (%+v), want one with %s", len(got), got, m.MessageID)
	}
}

func TestSendHonoursContext(t *testing.T) {
	t.Parallel()
	t.Run("cancelled before sending", func(t *testing.T) {
		t.Parallel()
		s, b := setupSender(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := s.Send(ctx, restoredMessage(t, b.cfg))
		if !errors.Is(err, context.Canceled) || !errors.Is(err, mail.ErrTransient) {
			t.Fatalf("err = %v, want context.Canceled and ErrTransient", err)
		}
		if n := len(b.srv.Messages()); n != 0 {
			t.Errorf("%d messages were accepted", n)
		}
	})
	t.Run("cancelled while the server holds the data", func(t *testing.T) {
		t.Parallel()
		s, b := setupSender(t)
		held, release := b.srv.HoldNext()
		defer release()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		errc := make(chan error, 1)
		go func() { errc <- s.Send(ctx, restoredMessage(t, b.cfg)) }()
		select {
		case <-held:
		case err := <-errc:
			t.Fatalf("Send returned before the server got the data: %v", err)
		}
		cancel()
		select {
		case err := <-errc:
			if !errors.Is(err, context.Canceled) || !errors.Is(err, mail.ErrTransient) {
				t.Fatalf("err = %v, want context.Canceled and ErrTransient", err)
			}
			b.assertNoSecret(t, err)
		case <-time.After(waitFor):
			t.Fatal("Send did not return after its context was cancelled")
		}
	})
	t.Run("deadline while the server holds the data", func(t *testing.T) {
		t.Parallel()
		s, b := setupSender(t)
		_, release := b.srv.HoldNext()
		defer release()
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		err := s.Send(ctx, restoredMessage(t, b.cfg))
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, mail.ErrTransient) {
			t.Fatalf("err = %v, want DeadlineExceeded and ErrTransient", err)
		}
	})
}

func TestSendRefusesMalformedMessages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(*mail.Message)
	}{
		{"no recipient", func(m *mail.Message) { m.To = "" }},
		{"recipient with a name", func(m *mail.Message) { m.To = "Jane <jane@example.net>" }},
		{"header injection in recipient", func(m *mail.Message) { m.To = "jane@example.net\r\nBcc: x@example.net" }},
		{"no message id", func(m *mail.Message) { m.MessageID = "" }},
		{"message id without brackets", func(m *mail.Message) { m.MessageID = "job-1@pvekeep" }},
		{"no subject", func(m *mail.Message) { m.Subject = " " }},
		{"no text", func(m *mail.Message) { m.Text = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, b := setupSender(t)
			m := restoredMessage(t, b.cfg)
			tt.change(&m)
			err := s.Send(context.Background(), m)
			if err == nil || errors.Is(err, mail.ErrTransient) {
				t.Fatalf("err = %v, want a permanent error", err)
			}
			if n := len(b.srv.Messages()); n != 0 {
				t.Errorf("%d messages were accepted", n)
			}
		})
	}
}

func TestSendFoldsHeaderInjectionInNames(t *testing.T) {
	t.Parallel()
	s, b := setupSender(t)
	m := restoredMessage(t, b.cfg)
	m.ToName = "Jane\r\nBcc: victim@example.net"
	m.Subject = "Hello\r\nBcc: victim@example.net"
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	r := b.srv.WaitFor(1, waitFor)[0]
	if len(r.To) != 1 || r.Header.Get("Bcc") != "" {
		t.Errorf("injected recipient: envelope %v, Bcc %q", r.To, r.Header.Get("Bcc"))
	}
}

func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	ok := mail.Config{Host: "smtp.example.net", Username: "u", Password: secret, From: "noreply@example.net"}
	tests := []struct {
		name   string
		change func(*mail.Config)
		valid  bool
	}{
		{"defaults", func(*mail.Config) {}, true},
		{"implicit tls", func(c *mail.Config) { c.TLS = "TLS" }, true},
		{"no auth", func(c *mail.Config) { c.Username, c.Password = "", "" }, true},
		{"none to loopback with auth", func(c *mail.Config) { c.TLS, c.Host = "none", "127.0.0.1" }, true},
		{"none to localhost without auth", func(c *mail.Config) { c.TLS, c.Host, c.Username, c.Password = "none", "localhost", "", "" }, true},
		{"ipv6 host", func(c *mail.Config) { c.Host = "2001:db8::25" }, true},
		{"no host", func(c *mail.Config) { c.Host = "" }, false},
		{"host with scheme", func(c *mail.Config) { c.Host = "smtp://smtp.example.net" }, false},
		{"host with port", func(c *mail.Config) { c.Host = "smtp.example.net:587" }, false},
		{"port out of range", func(c *mail.Config) { c.Port = 70000 }, false},
		{"unknown tls", func(c *mail.Config) { c.TLS = "ssl" }, false},
		{"negative timeout", func(c *mail.Config) { c.Timeout = -time.Second }, false},
		{"password without username", func(c *mail.Config) { c.Username = "" }, false},
		{"password in clear to a remote host", func(c *mail.Config) { c.TLS = "none" }, false},
		{"no from", func(c *mail.Config) { c.From = "" }, false},
		{"from with name", func(c *mail.Config) { c.From = "Hosting <noreply@example.net>" }, false},
		{"from name with line break", func(c *mail.Config) { c.FromName = "A\r\nBcc: x@example.net" }, false},
		{"helo with space", func(c *mail.Config) { c.HeloName = "a b" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := ok
			tt.change(&c)
			err := c.Validate()
			if (err == nil) != tt.valid {
				t.Fatalf("Validate() = %v, want valid=%v", err, tt.valid)
			}
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("error reveals the password: %v", err)
			}
		})
	}
}

func TestConfigNeverPrintsThePassword(t *testing.T) {
	t.Parallel()
	c := mail.Config{Host: "smtp.example.net", Port: 587, Username: "u", Password: secret, From: "noreply@example.net"}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("mail", "cfg", c)
	for _, s := range []string{logs.String(), fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), c.String()} {
		if strings.Contains(s, secret) {
			t.Errorf("password printed: %s", s)
		}
	}
	if !strings.Contains(logs.String(), `"password_set":true`) {
		t.Errorf("log does not say a password is set: %s", logs.String())
	}
}

func TestMessageIDIsStablePerJobAndKind(t *testing.T) {
	t.Parallel()
	c := mail.Config{From: "noreply@host.example"}
	if a, b := c.MessageID(42, "backup_restored"), c.MessageID(42, "backup_restored"); a != b || a != "<pvekeep.job-42.backup_restored@host.example>" {
		t.Errorf("MessageID = %q, %q", a, b)
	}
	if c.MessageID(42, "backup_restored") == c.MessageID(43, "backup_restored") {
		t.Error("two jobs share a Message-ID")
	}
	if got := (mail.Config{}).MessageID(1, "k"); got != "<pvekeep.job-1.k@pvekeep>" {
		t.Errorf("without From: %q", got)
	}
}

func TestMailerComposesAndSends(t *testing.T) {
	t.Parallel()
	_, b := setupSender(t)
	if _, err := mail.New(mail.Config{}, templates.Files, lang.Files, nil); err == nil {
		t.Fatal("New accepted an empty config")
	}
	m, err := mail.New(b.cfg, templates.Files, lang.Files, nil)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := m.Compose(mail.KindBackupRestored, "russian", sampleData())
	if err != nil {
		t.Fatal(err)
	}
	msg.To, msg.MessageID = "client@example.net", "<job-7.backup_restored@pvekeep>"
	if err := m.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	r := b.srv.WaitFor(1, waitFor)[0]
	if r.MessageID != "<job-7.backup_restored@pvekeep>" || !strings.Contains(r.TextBody, "Имя хоста: web1.example.net") {
		t.Errorf("got %s:\n%s", r.MessageID, r.TextBody)
	}
}
