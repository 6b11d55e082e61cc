package pve_test

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pve/pvetest"
	"github.com/pvekeep/pvekeep/internal/pvesim"
)

// simConfig starts a simulator and returns it with a pinned token config.
func simConfig(t *testing.T, opts pvesim.Options) (*pvesim.Sim, pvesim.Info, pve.Config) {
	t.Helper()
	if opts.Nodes == 0 {
		opts.Nodes = 1
	}
	opts.Speed = 200
	sim := pvesim.New(opts)
	info, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatalf("start simulator: %v", err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	cfg, err := pvetest.ConfigFromURL(info.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.TokenID, cfg.TokenSecret, cfg.Fingerprint = info.TokenID, info.TokenSecret, info.Fingerprint
	return sim, info, cfg
}

func TestPoolReusesConnectionsOfOneServerIdentity(t *testing.T) {
	t.Parallel()
	sim, info, cfg := simConfig(t, pvesim.Options{})
	pool := pve.NewPool(0)
	ctx := context.Background()
	version := func(cfg pve.Config) {
		t.Helper()
		c, err := pool.Connect(ctx, cfg)
		if err != nil {
			t.Fatalf("Connect: %v", err)
		}
		if _, err := c.Version(ctx); err != nil {
			t.Fatalf("Version: %v", err)
		}
	}
	for range 5 {
		version(cfg) // five calls, as five requests to a warm plugin make
	}
	if n := sim.Connections(); n != 1 {
		t.Errorf("five calls through the pool opened %d connections, want 1", n)
	}
	if pool.Len() != 1 {
		t.Errorf("pool holds %d identities, want 1", pool.Len())
	}

	// Other credentials are another identity: never the same connection.
	pw := cfg
	pw.TokenID, pw.TokenSecret, pw.Username, pw.Password = "", "", info.Username, info.Password
	version(pw)
	if n := sim.Connections(); n != 2 {
		t.Errorf("a second identity made the connection count %d, want 2", n)
	}
	if pool.Len() != 2 {
		t.Errorf("pool holds %d identities, want 2", pool.Len())
	}
}

func TestConnectWithoutPoolMakesANewConnectionPerClient(t *testing.T) {
	t.Parallel()
	sim, _, cfg := simConfig(t, pvesim.Options{})
	for range 3 {
		c, err := pve.Connect(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Version(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := sim.Connections(); n != 3 {
		t.Errorf("three clients opened %d connections, want 3 (the pool is what shares them)", n)
	}
}

func TestPoolIsSafeForConcurrentCalls(t *testing.T) {
	t.Parallel()
	_, _, cfg := simConfig(t, pvesim.Options{})
	pool := pve.NewPool(0)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := pool.Connect(context.Background(), cfg)
			if err == nil {
				_, err = c.Nodes(context.Background())
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent call: %v", err)
		}
	}
	if pool.Len() != 1 {
		t.Errorf("pool holds %d identities, want 1", pool.Len())
	}
}

func TestPoolDropsTheLeastRecentlyUsedIdentityBeyondItsBound(t *testing.T) {
	t.Parallel()
	_, _, cfg := simConfig(t, pvesim.Options{})
	pool := pve.NewPool(2)
	for _, secret := range []string{"a-secret-1", "a-secret-2", "a-secret-3"} {
		c := cfg
		c.TokenSecret = secret
		if _, err := pool.Connect(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	if pool.Len() != 2 {
		t.Errorf("pool of 2 holds %d identities", pool.Len())
	}
}

func TestPoolRefusesWhatConnectRefuses(t *testing.T) {
	t.Parallel()
	_, _, cfg := simConfig(t, pvesim.Options{})
	cfg.Fingerprint = ""
	_, err := pve.NewPool(0).Connect(context.Background(), cfg)
	var ce *pve.ConfigError
	if !errors.As(err, &ce) || ce.Field != "server.fingerprint" {
		t.Fatalf("Connect unpinned, unverified = %v, want a ConfigError for server.fingerprint", err)
	}
}

func TestProbeReadsTheCertificateWithoutARequest(t *testing.T) {
	t.Parallel()
	var requests atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { requests.Add(1) }))
	t.Cleanup(srv.Close)
	host, port := hostPort(t, srv.Listener.Addr())
	cert := srv.Certificate()
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	fp := fingerprintOf(cert.Raw)
	tests := []struct {
		name       string
		cfg        pve.Config
		trusted    bool
		pinMatches bool
	}{
		{"no pin, system roots", pve.Config{Host: host, Port: port}, false, false},
		{"pinned", pve.Config{Host: host, Port: port, Fingerprint: fp}, false, true},
		{"other pin", pve.Config{Host: host, Port: port, Fingerprint: strings.Repeat("AB", 32)}, false, false},
		{"trusted roots", pve.Config{Host: host, Port: port, RootCAs: roots}, true, false},
	}
	for _, tt := range tests {
		p, err := pve.ProbeTLS(context.Background(), tt.cfg, 0)
		if err != nil {
			t.Fatalf("%s: ProbeTLS: %v", tt.name, err)
		}
		if p.Fingerprint != fp || p.Trusted != tt.trusted || p.PinMatches != tt.pinMatches {
			t.Errorf("%s: probe = %+v, want fingerprint %s trusted %v pin %v", tt.name, p, fp, tt.trusted, tt.pinMatches)
		}
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("the probe sent %d HTTP requests, want none", n)
	}
}

func TestProbeTellsWhereItFailed(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host, port := hostPort(t, ln.Addr())
	ln.Close()
	_, err = pve.ProbeTLS(context.Background(), pve.Config{Host: host, Port: port}, 0)
	var pe *pve.ProbeError
	if !errors.As(err, &pe) || pe.Stage != pve.StageConnect || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("probe of a closed port = %v, want a connect-stage refusal", err)
	}

	// A plain-TCP server that is not TLS: the handshake fails.
	plain := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(plain.Close)
	host, port = hostPort(t, plain.Listener.Addr())
	_, err = pve.ProbeTLS(context.Background(), pve.Config{Host: host, Port: port}, 0)
	if !errors.As(err, &pe) || pe.Stage != pve.StageHandshake {
		t.Errorf("probe of a plain HTTP port = %v, want a handshake-stage failure", err)
	}

	_, err = pve.ProbeTLS(context.Background(), pve.Config{Host: "x@" + host, Port: port}, 0)
	var ce *pve.ConfigError
	if !errors.As(err, &ce) || ce.Field != "server.host" {
		t.Errorf("probe of x@host = %v, want a ConfigError for server.host", err)
	}
}

func TestVerifiedCertificateNeedsNoPin(t *testing.T) {
	t.Parallel()
	sim, _, cfg := simConfig(t, pvesim.Options{})
	roots := x509.NewCertPool()
	roots.AddCert(sim.Certificate())
	cfg.Fingerprint, cfg.VerifyTLS, cfg.RootCAs = "", true, roots
	c, err := pve.Connect(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if _, err := c.Version(context.Background()); err != nil {
		t.Fatalf("Version over a CA-verified connection: %v", err)
	}
}

func fingerprintOf(der []byte) string {
	sum := sha256.Sum256(der)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

func hostPort(t *testing.T, a net.Addr) (string, int) {
	t.Helper()
	ta := a.(*net.TCPAddr)
	return ta.IP.String(), ta.Port
}
