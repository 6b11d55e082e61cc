package pve

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	proxmox "github.com/luthermonson/go-proxmox"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// Cluster is the provider-side interface of the gateway: everything the
// plugin asks of Proxmox VE. *Client implements it over go-proxmox;
// decorators (retry, logging) may wrap it.
type Cluster interface {
	Version(ctx context.Context) (string, error)
	FindVM(ctx context.Context, vmid pvekeep.VMID) (VMRef, error)
	Guests(ctx context.Context) ([]Guest, error)
	VMStatus(ctx context.Context, node string, vmid pvekeep.VMID) (VMStatus, error)
	VMConfig(ctx context.Context, node string, vmid pvekeep.VMID) (VMConfig, error)
	VMConfigCurrent(ctx context.Context, node string, vmid pvekeep.VMID) (VMConfig, error)
	Pending(ctx context.Context, node string, vmid pvekeep.VMID) ([]PendingItem, error)
	UpdateConfig(ctx context.Context, node string, vmid pvekeep.VMID, ch ConfigChange) error
	UpdateConfigAsync(ctx context.Context, node string, vmid pvekeep.VMID, ch ConfigChange) (pvekeep.UPID, error)
	ResizeDisk(ctx context.Context, node string, vmid pvekeep.VMID, disk, size string) (pvekeep.UPID, error)
	StartVM(ctx context.Context, node string, vmid pvekeep.VMID) (pvekeep.UPID, error)
	StopVM(ctx context.Context, node string, vmid pvekeep.VMID) (pvekeep.UPID, error)
	ShutdownVM(ctx context.Context, node string, vmid pvekeep.VMID, timeout time.Duration) (pvekeep.UPID, error)
	RestoreVM(ctx context.Context, node string, req RestoreRequest) (pvekeep.UPID, error)
	CloneVM(ctx context.Context, node string, req CloneRequest) (pvekeep.UPID, error)
	NextID(ctx context.Context, from pvekeep.VMID) (pvekeep.VMID, error)
	DeleteVM(ctx context.Context, node string, vmid pvekeep.VMID, purge bool) (pvekeep.UPID, error)
	Vzdump(ctx context.Context, node string, req VzdumpRequest) (pvekeep.UPID, error)
	TaskStatus(ctx context.Context, upid pvekeep.UPID) (TaskStatus, error)
	TaskLog(ctx context.Context, upid pvekeep.UPID, start int) ([]string, error)
	Tasks(ctx context.Context, node string, f TaskFilter) ([]TaskInfo, error)
	WaitTask(ctx context.Context, upid pvekeep.UPID) (TaskResult, error)
	ListBackups(ctx context.Context, node, storage string, vmid pvekeep.VMID) ([]Volume, error)
	Volume(ctx context.Context, node, storage, volid string) (Volume, error)
	DeleteVolume(ctx context.Context, node, storage, volid string) (pvekeep.UPID, error)
	SetVolumeNotes(ctx context.Context, node, storage, volid, notes string) error
	SetVolumeProtected(ctx context.Context, node, storage, volid string, protected bool) error

	// Snapshots (snapshot.go).
	Snapshots(ctx context.Context, node string, vmid pvekeep.VMID) (Snapshots, error)
	CreateSnapshot(ctx context.Context, node string, req SnapshotRequest) (pvekeep.UPID, error)
	RollbackSnapshot(ctx context.Context, node string, vmid pvekeep.VMID, name string, start bool) (pvekeep.UPID, error)
	DeleteSnapshot(ctx context.Context, node string, vmid pvekeep.VMID, name string, force bool) (pvekeep.UPID, error)
	SnapshotConfig(ctx context.Context, node string, vmid pvekeep.VMID, name string) (VMConfig, error)
	SetSnapshotDescription(ctx context.Context, node string, vmid pvekeep.VMID, name, description string) error

	// About the server itself (server.test, server.options).
	Permissions(ctx context.Context, path string) (map[string]bool, error)
	Nodes(ctx context.Context) ([]Node, error)
	Storages(ctx context.Context, node string) ([]Storage, error)
	Bridges(ctx context.Context, node string) ([]string, error)
}

var _ Cluster = (*Client)(nil)

// Client is the gateway to one Proxmox VE endpoint. It is safe for
// concurrent use.
type Client struct {
	api     *proxmox.Client
	cfg     Config
	log     *slog.Logger
	secrets []string

	// getAttempts bounds retries of idempotent GETs on transient failures;
	// bornRetries bounds retries of a just-born task's 400.
	getAttempts int
	bornRetries int
	backoff     time.Duration
}

// Connect validates cfg, builds the HTTP client (TLS policy, timeouts, no
// transport retries) and, for password auth, logs in to get a ticket. With
// a token no request is made. Settings that cannot work — including a
// server that cannot be authenticated (no pin, no verification) — are a
// *ConfigError and nothing is sent. Each call makes its own connections;
// a long-lived process uses a Pool to reuse them.
func Connect(ctx context.Context, cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return connect(ctx, cfg, newTransport(cfg))
}

// newTransport is the HTTP transport for one server identity: its TLS
// policy is built from cfg, so it must not serve another identity.
func newTransport(cfg Config) *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsConfig(cfg),
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: cfg.Timeout,
	}
}

// connect builds a Client over base; cfg is validated and defaulted.
func connect(ctx context.Context, cfg Config, base http.RoundTripper) (*Client, error) {
	log := cfg.Logger.With(slog.String("component", "pve"), slog.String("host", cfg.Host))
	c := &Client{
		cfg:         cfg,
		log:         log,
		secrets:     secretsOf(cfg),
		getAttempts: 3,
		bornRetries: 7,
		backoff:     200 * time.Millisecond,
	}
	httpClient := &http.Client{
		Transport: &captureTransport{base: base, secrets: c.secrets},
		Timeout:   cfg.Timeout,
	}
	baseURL := "https://" + net.JoinHostPort(dialHost(cfg.Host), strconv.Itoa(cfg.Port)) + "/api2/json"
	opts := []proxmox.Option{
		// Our own *http.Client: go-proxmox then installs no retry
		// RoundTripper (only WithRetry does), so nothing below us can
		// replay a POST. Its logger stays at its default (errors only,
		// and it logs none of ours) so bodies never reach a log.
		proxmox.WithHTTPClient(httpClient),
		proxmox.WithUserAgent("pvekeep"),
	}
	if cfg.TokenID != "" {
		opts = append(opts, proxmox.WithAPIToken(cfg.TokenID, cfg.TokenSecret))
	} else {
		opts = append(opts, proxmox.WithCredentials(&proxmox.Credentials{Username: cfg.Username, Password: cfg.Password}))
	}
	c.api = proxmox.NewClient(baseURL, opts...)

	if cfg.TokenID == "" {
		err := c.call(ctx, "login", func(ctx context.Context) error { return c.api.CreateSession(ctx) },
			http.MethodPost, "/access/ticket")
		if err != nil {
			return nil, fmt.Errorf("log in to %s as %s: %w", cfg, cfg.Username, err)
		}
	}
	return c, nil
}

func secretsOf(cfg Config) []string {
	var s []string
	for _, v := range []string{cfg.TokenSecret, cfg.Password} {
		if v != "" {
			s = append(s, v)
		}
	}
	return s
}

// CertError is a server certificate the TLS policy refused: not the
// pinned one, or (with VerifyTLS) not trusted by the roots. Fingerprint is
// the SHA-256 of the certificate the server presented, as PVE shows it, so
// the admin can compare it with the node's and pin it.
type CertError struct {
	Fingerprint string // presented
	Pinned      string // "" unless the pin did not match
	Err         error  // the chain verification error, when that failed
}

func (e *CertError) Error() string {
	if e.Pinned != "" {
		return fmt.Sprintf("pve certificate fingerprint %s does not match the pinned %s", e.Fingerprint, e.Pinned)
	}
	return fmt.Sprintf("verify pve certificate (fingerprint %s): %v", e.Fingerprint, e.Err)
}

func (e *CertError) Unwrap() error { return e.Err }

// tlsConfig applies the TLS policy described in doc.go. The certificate is
// always checked by VerifyConnection, so a refusal carries the presented
// fingerprint; validate has made sure a pin or VerifyTLS is set.
func tlsConfig(cfg Config) *tls.Config {
	pin, _ := parseFingerprint(cfg.Fingerprint) // validated; nil when unset
	host := dialHost(cfg.Host)
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host, InsecureSkipVerify: true}
	tc.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("pve presented no certificate")
		}
		leaf := cs.PeerCertificates[0]
		sum := sha256.Sum256(leaf.Raw)
		if cfg.VerifyTLS {
			if err := verifyChain(cs.PeerCertificates, host, cfg.RootCAs); err != nil {
				return &CertError{Fingerprint: formatFingerprint(sum[:]), Err: err}
			}
		}
		if cfg.Fingerprint != "" && subtle.ConstantTimeCompare(sum[:], pin) != 1 {
			return &CertError{Fingerprint: formatFingerprint(sum[:]), Pinned: formatFingerprint(pin)}
		}
		if cfg.Fingerprint == "" && !cfg.VerifyTLS {
			// validate refuses this; never talk to an unauthenticated peer.
			return &CertError{Fingerprint: formatFingerprint(sum[:]), Err: errors.New("neither verified nor pinned")}
		}
		return nil
	}
	return tc
}

// verifyChain checks a presented chain against roots (nil: the system's)
// and the host name.
func verifyChain(certs []*x509.Certificate, host string, roots *x509.CertPool) error {
	inter := x509.NewCertPool()
	for _, ic := range certs[1:] {
		inter.AddCert(ic)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{DNSName: host, Intermediates: inter, Roots: roots})
	return err
}

// exchangeKey carries a per-call *exchange through the request context to
// captureTransport.
type exchangeKey struct{}

// exchange records the last HTTP answer of one gateway call: go-proxmox's
// handleResponse reduces a 500 to its status line and drops the body, so
// the transport keeps what the classification needs.
type exchange struct {
	mu     sync.Mutex
	status int
	err    *HTTPError
	// data, when set, receives a successful answer's "data", decoded by
	// the transport as the body streams in (decodeErr if it cannot be);
	// go-proxmox then gets an empty object. Its own reading holds the
	// whole body and parses it twice over (the envelope, then "data"),
	// which for a large answer (/cluster/resources over thousands of
	// guests) is most of the call's cost.
	data      any
	decodeErr error
}

// captureTransport passes every request through unchanged and never
// retries; for an error status it reads the body (bounded), builds the
// *HTTPError, records it in the call's exchange and hands go-proxmox an
// identical response with the body still readable.
type captureTransport struct {
	base    http.RoundTripper
	secrets []string
}

func (t *captureTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	ex, _ := req.Context().Value(exchangeKey{}).(*exchange)
	if ex == nil {
		return res, nil
	}
	ex.mu.Lock()
	defer ex.mu.Unlock()
	ex.status = res.StatusCode
	ex.err, ex.decodeErr = nil, nil
	if res.StatusCode < 300 && ex.data != nil {
		ex.decodeErr = decodeData(res.Body, ex.data)
		_ = res.Body.Close()
		res.Body = io.NopCloser(strings.NewReader("{}"))
		res.ContentLength = 2
		return res, nil
	}
	if res.StatusCode < 400 {
		return res, nil
	}
	body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	_ = res.Body.Close()
	res.Body = io.NopCloser(bytes.NewReader(body))
	ex.err = t.httpError(req, res, body)
	return res, nil
}

// decodeData decodes the "data" member of an API answer into v, reading
// the body as it streams; other members are skipped.
func decodeData(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	if tok, err := dec.Token(); err != nil {
		return err
	} else if tok != json.Delim('{') {
		return fmt.Errorf("answer is %v, not an object", tok)
	}
	found := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if key, _ := tok.(string); key == "data" && !found {
			if err := dec.Decode(v); err != nil {
				return err
			}
			found = true
			continue
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return err
	}
	if !found {
		return errors.New("answer has no data")
	}
	return nil
}

func (t *captureTransport) httpError(req *http.Request, res *http.Response, body []byte) *HTTPError {
	var doc struct {
		Message string            `json:"message"`
		Errors  map[string]string `json:"errors"`
	}
	_ = json.Unmarshal(body, &doc)
	msg := strings.TrimSpace(doc.Message)
	if msg == "" {
		// PVE puts its message in the reason phrase: "500 VM 100 …".
		msg = strings.TrimSpace(strings.TrimPrefix(res.Status, strconv.Itoa(res.StatusCode)))
	}
	if msg == "" {
		msg = http.StatusText(res.StatusCode)
	}
	msg = scrub(msg, t.secrets)
	var errs map[string]string
	if len(doc.Errors) > 0 {
		errs = make(map[string]string, len(doc.Errors))
		for k, v := range doc.Errors {
			errs[k] = scrub(strings.TrimSpace(v), t.secrets)
		}
	}
	return &HTTPError{
		Method:  req.Method,
		Path:    apiPath(req.URL),
		Code:    res.StatusCode,
		Message: msg,
		Errors:  errs,
		kind:    classify(res.StatusCode, msg),
	}
}

// apiPath strips the /api2/json prefix and the query.
func apiPath(u *url.URL) string {
	p := u.EscapedPath()
	if i := strings.Index(p, "/api2/json"); i >= 0 {
		p = p[i+len("/api2/json"):]
	}
	return p
}

// call runs one go-proxmox request with an exchange attached and turns
// whatever went wrong into a classified error. It never retries.
func (c *Client) call(ctx context.Context, op string, fn func(ctx context.Context) error, method, path string) error {
	return c.callWith(ctx, &exchange{}, op, fn, method, path)
}

// callWith is call over an exchange the caller prepared (exchange.data).
func (c *Client) callWith(ctx context.Context, ex *exchange, op string, fn func(ctx context.Context) error, method, path string) error {
	start := time.Now()
	err := fn(context.WithValue(ctx, exchangeKey{}, ex))
	ex.mu.Lock()
	status, herr, derr := ex.status, ex.err, ex.decodeErr
	ex.mu.Unlock()
	c.log.Debug("pve request", slog.String("op", op), slog.String("method", method),
		slog.String("path", path), slog.Int("status", status), slog.Duration("took", time.Since(start)))
	if herr != nil {
		// go-proxmox lets some error statuses through as success (a 404
		// with {"data":null} decodes fine): the status decides, not it.
		return herr
	}
	if err == nil && derr != nil {
		err = derr
	}
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s %s: %w", method, path, ctxErr)
	}
	if errors.Is(err, proxmox.ErrNotAuthorized) {
		return &HTTPError{Method: method, Path: path, Code: http.StatusUnauthorized,
			Message: "authentication failure", kind: ErrUnauthorized}
	}
	if status != 0 {
		// An answer came (2xx) but could not be decoded.
		return fmt.Errorf("%s %s: decode answer: %s", method, path, scrub(err.Error(), c.secrets))
	}
	var ce *CertError
	if errors.As(err, &ce) {
		return &transportError{method: method, path: path, err: ce}
	}
	return &transportError{method: method, path: path,
		err: errors.New(scrub(err.Error(), c.secrets)), transient: !isTLSRefusal(err)}
}

// isTLSRefusal reports a certificate problem: retrying cannot help.
func isTLSRefusal(err error) bool {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci) ||
		strings.Contains(err.Error(), "fingerprint")
}

// get GETs path (with query q) into v, retrying transient failures a few
// times with a ctx-aware backoff. GETs change nothing, so this is safe.
func (c *Client) get(ctx context.Context, path string, q url.Values, v any) error {
	return c.getWith(ctx, path, q, v, false)
}

// getStreamed is get for a large answer: its data is decoded into v as
// the body streams in (exchange.data), not read whole and parsed twice.
func (c *Client) getStreamed(ctx context.Context, path string, q url.Values, v any) error {
	return c.getWith(ctx, path, q, v, true)
}

func (c *Client) getWith(ctx context.Context, path string, q url.Values, v any, streamed bool) error {
	full := path
	if len(q) > 0 {
		full += "?" + q.Encode()
	}
	var err error
	for attempt := 0; attempt < c.getAttempts; attempt++ {
		if attempt > 0 {
			if serr := sleepCtx(ctx, c.backoff<<(attempt-1)); serr != nil {
				return fmt.Errorf("GET %s: %w", path, serr)
			}
		}
		ex, target := &exchange{}, v
		if streamed {
			ex.data, target = v, nil
		}
		err = c.callWith(ctx, ex, "get", func(ctx context.Context) error {
			return c.api.Req(ctx, http.MethodGet, full, nil, target)
		}, http.MethodGet, path)
		if err == nil || !errors.Is(err, ErrTransient) {
			return err
		}
	}
	return err
}

// send issues one POST/PUT/DELETE with the given parameters exactly once:
// nothing in the stack retries it (see doc.go).
func (c *Client) send(ctx context.Context, method, path string, params map[string]string, v any) error {
	var data []byte
	if params != nil {
		var err error
		if data, err = json.Marshal(params); err != nil {
			return fmt.Errorf("%s %s: encode: %w", method, path, err)
		}
	}
	return c.call(ctx, strings.ToLower(method), func(ctx context.Context) error {
		return c.api.Req(ctx, method, path, data, v)
	}, method, path)
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func seg(s string) string { return url.PathEscape(s) }
