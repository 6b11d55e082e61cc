package mail

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// TLS modes of Config.TLS.
const (
	TLSStartTLS = "starttls" // plain connect, then STARTTLS, which is required (default; port 587)
	TLSImplicit = "tls"      // TLS from the first byte, "SMTPS" (port 465)
	TLSNone     = "none"     // no TLS at all: a relay on the same host or a test server (port 25)
)

// DefaultTimeout bounds connecting and each SMTP command when Config.Timeout is 0.
const DefaultTimeout = 30 * time.Second

// Config is how the plugin reaches its SMTP server. The zero values of
// Port, TLS and Timeout take defaults (withDefaults).
type Config struct {
	Host     string `toml:"host"`
	Port     int    `toml:"port"` // 0: 587 for starttls, 465 for tls, 25 for none
	Username string `toml:"username"`
	Password string `toml:"password"`  // never logged, never in an error
	From     string `toml:"from"`      // envelope and header sender, a bare address
	FromName string `toml:"from_name"` // display name of From, may be empty
	// TLS is "starttls" (default), "tls" or "none".
	TLS string `toml:"tls"`
	// Timeout bounds connecting and each SMTP command; 0 means DefaultTimeout.
	Timeout time.Duration `toml:"timeout"`
	// HeloName is the name sent in EHLO; "" means this host's name.
	HeloName string `toml:"helo_name"`
	// RootCAs, when set, replaces the system's roots for verifying the
	// server (tests; a private CA).
	RootCAs *x509.CertPool `toml:"-"`
}

func (c Config) withDefaults() Config {
	c.Host = strings.TrimSpace(c.Host)
	c.TLS = strings.ToLower(strings.TrimSpace(c.TLS))
	if c.TLS == "" {
		c.TLS = TLSStartTLS
	}
	if c.Port == 0 {
		switch c.TLS {
		case TLSImplicit:
			c.Port = 465
		case TLSNone:
			c.Port = 25
		default:
			c.Port = 587
		}
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// Validate reports the first problem with c after defaults are applied.
// It refuses to send a password over a connection without TLS unless the
// server is on this host.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Host == "":
		return errors.New("mail config: host is required")
	case strings.ContainsAny(c.Host, " /:") && net.ParseIP(c.Host) == nil:
		return fmt.Errorf("mail config: host %q must be a host name or an IP address, without scheme or port", c.Host)
	case c.Port < 1 || c.Port > 65535:
		return fmt.Errorf("mail config: port %d out of range", c.Port)
	case c.TLS != TLSStartTLS && c.TLS != TLSImplicit && c.TLS != TLSNone:
		return fmt.Errorf("mail config: tls %q must be starttls, tls or none", c.TLS)
	case c.Timeout < 0:
		return fmt.Errorf("mail config: timeout %s must not be negative", c.Timeout)
	case c.Password != "" && c.Username == "":
		return errors.New("mail config: a password needs a username")
	case c.Username != "" && c.TLS == TLSNone && !isLoopback(c.Host):
		return fmt.Errorf("mail config: refusing to send the SMTP password to %s without TLS; use starttls or tls", c.Host)
	case hasControl(c.FromName) || hasControl(c.Username) || strings.ContainsFunc(c.HeloName, unicode.IsSpace):
		return errors.New("mail config: from_name, username and helo_name must not contain control characters (helo_name no spaces)")
	}
	if err := checkAddress(c.From); err != nil {
		return fmt.Errorf("mail config: from: %w", err)
	}
	return nil
}

// MessageID is the Message-ID of the kind email of job jobID:
// <pvekeep.job-42.backup_restored@example.net>, the domain taken from From.
// It is the same on every attempt, so a retried send that already reached
// the server is a recognisable duplicate.
func (c Config) MessageID(jobID int64, kind string) string {
	domain := "pvekeep"
	if at := strings.LastIndexByte(c.From, '@'); at >= 0 && at < len(c.From)-1 {
		domain = c.From[at+1:]
	}
	return fmt.Sprintf("<pvekeep.job-%d.%s@%s>", jobID, kind, domain)
}

// LogValue keeps the password out of every log line.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("host", c.Host),
		slog.Int("port", c.Port),
		slog.String("tls", c.TLS),
		slog.String("username", c.Username),
		slog.Bool("password_set", c.Password != ""),
		slog.String("from", c.From),
		slog.String("from_name", c.FromName),
		slog.Duration("timeout", c.Timeout),
		slog.String("helo_name", c.HeloName),
	)
}

// String never includes the password, so %v and %+v are safe too.
func (c Config) String() string {
	return "smtp://" + c.Username + "@" + net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) + " tls=" + c.TLS + " from=" + c.From
}

// GoString keeps %#v from printing the password.
func (c Config) GoString() string { return "mail.Config{" + c.String() + "}" }

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func hasControl(s string) bool { return strings.ContainsFunc(s, unicode.IsControl) }

// checkAddress accepts a bare address (user@example.net), nothing else.
func checkAddress(addr string) error {
	if addr == "" {
		return errors.New("address is required")
	}
	a, err := mail.ParseAddress(addr)
	if err != nil || a.Name != "" || a.Address != addr {
		return fmt.Errorf("%q is not a bare email address", addr)
	}
	return nil
}
