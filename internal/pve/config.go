package pve

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// Config is how to reach and authenticate to one Proxmox VE endpoint.
type Config struct {
	Host string // name or address; a leading "https://" and trailing "/" are tolerated
	Port int    // default 8006

	TokenID     string // user@realm!name; preferred over a password
	TokenSecret string
	Username    string // ticket login fallback, e.g. root@pam
	Password    string

	// VerifyTLS checks the certificate chain and host name against the
	// system roots. Fingerprint pins the SHA-256 of the leaf certificate
	// ("AB:CD:…", case and colons ignored) and works with self-signed
	// certificates; when both are set both must hold. With neither, the
	// connection is encrypted but not authenticated (see doc.go).
	VerifyTLS   bool
	Fingerprint string

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
	c.Host = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(c.Host), "https://"), "/")
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

func (c Config) validate() error {
	var errs []error
	if c.Host == "" || strings.ContainsAny(c.Host, "/?# ") {
		errs = append(errs, errors.New("host must be a host name or address"))
	}
	if c.Port < 1 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("port %d out of range", c.Port))
	}
	switch {
	case c.TokenID != "" || c.TokenSecret != "":
		if c.TokenID == "" || c.TokenSecret == "" {
			errs = append(errs, errors.New("token_id and token_secret go together"))
		} else if !strings.Contains(c.TokenID, "!") || !strings.Contains(c.TokenID, "@") {
			errs = append(errs, errors.New("token_id must look like user@realm!name"))
		}
	case c.Username != "" || c.Password != "":
		if c.Username == "" || c.Password == "" {
			errs = append(errs, errors.New("username and password go together"))
		}
	default:
		errs = append(errs, errors.New("an API token or a username and password is required"))
	}
	if c.Fingerprint != "" {
		if _, err := parseFingerprint(c.Fingerprint); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
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
