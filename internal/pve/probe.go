package pve

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// Probe is what a connection check learns about a server before any
// credential is sent: where the name points, whether the port answers and
// which certificate it presents.
type Probe struct {
	Host  string
	Port  int
	Addrs []string // the addresses the host resolved to (the host itself for a literal)
	// Fingerprint is the SHA-256 of the leaf certificate, "AB:CD:…" as PVE
	// shows it (Datacenter → node → System → Certificates).
	Fingerprint string
	Subject     string
	NotAfter    time.Time
	// Trusted says the chain verifies against the roots (cfg.RootCAs or
	// the system's) for Host; TrustErr says why not.
	Trusted  bool
	TrustErr error
	// PinMatches says the presented certificate is the pinned one
	// (false when no fingerprint is configured).
	PinMatches bool
}

// ProbeStage names where a probe failed.
type ProbeStage string

const (
	StageResolve   ProbeStage = "resolve"   // the host name did not resolve
	StageConnect   ProbeStage = "connect"   // no TCP connection to host:port
	StageHandshake ProbeStage = "handshake" // connected, but no TLS handshake
)

// ProbeError is a probe that could not reach the certificate.
type ProbeError struct {
	Stage ProbeStage
	Host  string
	Port  int
	Err   error
}

func (e *ProbeError) Error() string {
	return fmt.Sprintf("probe %s:%d: %s: %v", e.Host, e.Port, e.Stage, e.Err)
}

func (e *ProbeError) Unwrap() error { return e.Err }

// ProbeTLS resolves cfg.Host, opens a TCP connection to it and completes
// a TLS handshake, each within timeout (default 5s), and reports the
// certificate. It sends no HTTP request and no credential, so it is safe
// against any server, authenticated or not. Only the host, port, pin and
// roots of cfg are used; a host that is not a plain name or address is a
// *ConfigError.
func ProbeTLS(ctx context.Context, cfg Config, timeout time.Duration) (Probe, error) {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	if cfg.Port == 0 {
		cfg.Port = 8006
	}
	if err := CheckHost(cfg.Host); err != nil {
		return Probe{}, err
	}
	host := dialHost(cfg.Host)
	p := Probe{Host: host, Port: cfg.Port}
	fail := func(stage ProbeStage, err error) (Probe, error) {
		return p, &ProbeError{Stage: stage, Host: host, Port: cfg.Port, Err: err}
	}

	if a, err := netip.ParseAddr(host); err == nil {
		p.Addrs = []string{a.String()}
	} else {
		rctx, cancel := context.WithTimeout(ctx, timeout)
		addrs, err := net.DefaultResolver.LookupHost(rctx, host)
		cancel()
		if err != nil {
			return fail(StageResolve, err)
		}
		p.Addrs = addrs
	}

	d := &net.Dialer{Timeout: timeout}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	raw, err := d.DialContext(dctx, "tcp", net.JoinHostPort(host, strconv.Itoa(cfg.Port)))
	if err != nil {
		return fail(StageConnect, err)
	}
	defer raw.Close()

	// Read the certificate without judging it: the judgement is reported,
	// not enforced, and nothing but the handshake is sent.
	conn := tls.Client(raw, &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host, InsecureSkipVerify: true})
	hctx, hcancel := context.WithTimeout(ctx, timeout)
	defer hcancel()
	if err := conn.HandshakeContext(hctx); err != nil {
		return fail(StageHandshake, err)
	}
	defer conn.Close()
	certs := conn.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return fail(StageHandshake, errors.New("the server presented no certificate"))
	}
	leaf := certs[0]
	sum := sha256.Sum256(leaf.Raw)
	p.Fingerprint = formatFingerprint(sum[:])
	p.Subject = leaf.Subject.String()
	p.NotAfter = leaf.NotAfter.UTC()
	if err := verifyChain(certs, host, cfg.RootCAs); err != nil {
		p.TrustErr = err
	} else {
		p.Trusted = true
	}
	if pin, err := parseFingerprint(cfg.Fingerprint); err == nil {
		p.PinMatches = subtle.ConstantTimeCompare(sum[:], pin) == 1
	}
	return p, nil
}
