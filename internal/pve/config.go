package pve

import (
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"
	"unicode"

	"github.com/pvekeep/pvekeep/internal/lazyre"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// Config is how to reach and authenticate to one Proxmox VE endpoint.
type Config struct {
	Host string // a host name or an IP address (IPv6 with or without brackets); nothing else
	Port int    // default 8006

	TokenID     string // user@realm!name; preferred over a password
	TokenSecret string
	Username    string // ticket login fallback, e.g. root@pam
	Password    string

	// VerifyTLS checks the certificate chain and host name against the
	// system roots. Fingerprint pins the SHA-256 of the leaf certificate
	// ("AB:CD:…", case and colons ignored) and works with self-signed
	// certificates; when both are set both must hold. One of them is
	// required: credentials never go over an unauthenticated connection
	// (see doc.go).
	VerifyTLS   bool
	Fingerprint string
	// RootCAs replaces the system roots for VerifyTLS (tests; nil: system).
	RootCAs *x509.CertPool

	Timeout      time.Duration // per HTTP request; default 30s
	PollInterval time.Duration // task polling; default 1s
	Logger       *slog.Logger  // default: discard
}

// ConfigFromServer turns the panel's server facts into a Config.
func ConfigFromServer(s pvekeep.Server) Config {
	return Config{
		Host:        s.Host,
		Port:        s.Port,
		TokenID:     s.TokenID,
		TokenSecret: s.TokenSecret,
		Username:    s.Username,
		Password:    s.Password,
		VerifyTLS:   s.VerifyTLS,
		Fingerprint: s.Fingerprint,
	}
}

// LogValue keeps secrets out of any log line that mentions a Config.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("host", c.Host),
		slog.Int("port", c.Port),
		slog.String("token_id", c.TokenID),
		slog.String("username", c.Username),
		slog.Bool("verify_tls", c.VerifyTLS),
		slog.Bool("pinned", c.Fingerprint != ""),
	)
}

// String never includes secrets.
func (c Config) String() string { return fmt.Sprintf("pve %s:%d", c.Host, c.Port) }

func (c Config) withDefaults() Config {
	if c.Port == 0 {
		c.Port = 8006
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// ConfigError is a connection setting that cannot work, named by the
// panel's field (server.host, server.token_secret, server.fingerprint, …).
// Message says what is wrong and what to set, in words an admin can act on;
// it never holds a secret. It matches errors.Is(err, ErrInvalidConfig):
// nothing was sent to Proxmox.
type ConfigError struct {
	Field   string
	Message string
}

func (e *ConfigError) Error() string { return e.Message }

// Unwrap yields ErrInvalidConfig.
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

func (c Config) validate() error {
	var errs []error
	if err := CheckHost(c.Host); err != nil {
		errs = append(errs, err)
	}
	if c.Port < 1 || c.Port > 65535 {
		errs = append(errs, &ConfigError{"server.port", fmt.Sprintf("the port %d is out of range: Proxmox's API listens on 8006", c.Port)})
	}
	errs = append(errs, c.checkCredentials()...)
	if err := c.checkTLS(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// checkCredentials checks the token or password fields for shape only.
func (c Config) checkCredentials() []error {
	var errs []error
	switch {
	case c.TokenID != "" || c.TokenSecret != "":
		if c.TokenID == "" || c.TokenSecret == "" {
			errs = append(errs, &ConfigError{"server.token_secret", "the API token id and its secret go together: set the token id (user@realm!name) as the username and the secret as the password"})
		} else if !tokenIDRe.MatchString(c.TokenID) {
			errs = append(errs, &ConfigError{"server.token_id", "the API token id must look like user@realm!name, e.g. whmcs@pve!pvekeep"})
		}
		if hasControl(c.TokenSecret) {
			errs = append(errs, &ConfigError{"server.token_secret", "the API token secret contains a line break or another control character: paste the secret again, exactly as Proxmox showed it"})
		}
	case c.Username != "" || c.Password != "":
		if c.Username == "" || c.Password == "" {
			errs = append(errs, &ConfigError{"server.password", "the username and password go together"})
		} else if hasControl(c.Username) {
			errs = append(errs, &ConfigError{"server.username", "the username contains a control character: set it as user@realm, e.g. root@pam"})
		}
		if hasControl(c.Password) {
			errs = append(errs, &ConfigError{"server.password", "the password contains a line break or another control character: enter it again"})
		}
	default:
		errs = append(errs, &ConfigError{"server", "the Proxmox server has neither an API token nor a username and password"})
	}
	return errs
}

// checkTLS refuses settings that cannot authenticate the server: the
// credentials would go to whoever answers.
func (c Config) checkTLS() error {
	if c.Fingerprint != "" {
		if _, err := parseFingerprint(c.Fingerprint); err != nil {
			return &ConfigError{"server.fingerprint", "the Access Hash is not a certificate fingerprint: " + err.Error()}
		}
		return nil
	}
	if !c.VerifyTLS {
		return &ConfigError{"server.fingerprint", "the Proxmox server's certificate is neither verified nor pinned, so the module will not send it the credentials: " +
			"put the certificate's SHA-256 fingerprint in the server's Access Hash (Test Connection shows it), " +
			"or use a certificate from a trusted CA and enable TLS verification"}
	}
	return nil
}

var (
	tokenIDRe  = lazyre.New(`^[^\s:/@]+@[A-Za-z][A-Za-z0-9.\-_]*![A-Za-z][A-Za-z0-9.\-_]*$`)
	hostnameRe = lazyre.New(`^(?:[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\.?$`)
)

// CheckHost accepts a host name (letters, digits, "-", "_", dots), an IPv4
// address, or an IPv6 address with or without brackets. A scheme, a path,
// user info ("x@host": net/url would connect to the part after "@"), a
// port, spaces or control characters are refused with a *ConfigError for
// server.host saying what to enter instead.
func CheckHost(host string) error {
	bad := func(why string) error {
		return &ConfigError{"server.host", fmt.Sprintf("the server's host name %q %s: enter only the host name or IP address, e.g. pve1.example.net", clipHost(host), why)}
	}
	switch {
	case host == "":
		return &ConfigError{"server.host", "the Proxmox server has no host name: enter its host name or IP address, e.g. pve1.example.net"}
	case strings.Contains(host, "://"):
		return bad("contains a scheme")
	case strings.ContainsFunc(host, unicode.IsSpace) || hasControl(host):
		return bad("contains spaces or control characters")
	case strings.Contains(host, "@"):
		return bad(`contains "@"`)
	case strings.ContainsAny(host, "/?#\\"):
		return bad("contains a path")
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")); err == nil {
		if strings.HasPrefix(host, "[") != strings.HasSuffix(host, "]") || (a.Is4() && host != a.String()) {
			return bad("is not a valid address")
		}
		return nil
	}
	if strings.Contains(host, ":") {
		return bad("contains a port or is not a valid IPv6 address (put the port in the Port field)")
	}
	if len(host) > 253 || !hostnameRe.MatchString(host) {
		return bad("is not a valid host name")
	}
	return nil
}

// dialHost is the host as net.JoinHostPort wants it (IPv6 without brackets).
func dialHost(host string) string {
	return strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
}

func clipHost(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// hasControl reports a control character (newline, NUL, DEL, …): one in a
// secret breaks the HTTP header it travels in.
func hasControl(s string) bool {
	return strings.ContainsFunc(s, unicode.IsControl)
}

// CheckFingerprint reports whether s reads as a SHA-256 certificate
// fingerprint ("AB:CD:…", case and separators ignored).
func CheckFingerprint(s string) error {
	_, err := parseFingerprint(s)
	return err
}

// parseFingerprint accepts "AB:CD:…", "ab cd …" or plain hex of a SHA-256.
func parseFingerprint(s string) ([]byte, error) {
	clean := strings.Map(func(r rune) rune {
		switch r {
		case ':', ' ', '\t', '-':
			return -1
		}
		return r
	}, s)
	b, err := hex.DecodeString(clean)
	if err != nil || len(b) != 32 {
		return nil, errors.New("fingerprint must be the SHA-256 of the certificate (64 hex digits, colons allowed)")
	}
	return b, nil
}

// formatFingerprint writes a SHA-256 the way PVE shows it: "AB:CD:…".
func formatFingerprint(sum []byte) string {
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}
