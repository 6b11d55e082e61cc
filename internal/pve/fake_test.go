package pve_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/pve"
)

const (
	testTokenID     = "whmcs@pve!pvekeep"
	testTokenSecret = "5f1c2d3e-aaaa-bbbb-cccc-0123456789ab"
)

// fakePVE is an httptest TLS server answering the few PVE paths a test
// registers, counting every request by "METHOD /path" (path decoded,
// without /api2/json).
type fakePVE struct {
	srv *httptest.Server

	mu     sync.Mutex
	routes map[string]http.HandlerFunc
	hits   map[string]int
	bodies map[string][]map[string]any
}

func newFake(t *testing.T) *fakePVE {
	t.Helper()
	f := &fakePVE{routes: map[string]http.HandlerFunc{}, hits: map[string]int{}, bodies: map[string][]map[string]any{}}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakePVE) serve(w http.ResponseWriter, r *http.Request) {
	key := r.Method + " " + strings.TrimPrefix(r.URL.Path, "/api2/json")
	var body map[string]any
	if r.Body != nil {
		_ = json.NewDecoder(r.Body).Decode(&body)
	}
	f.mu.Lock()
	f.hits[key]++
	f.bodies[key] = append(f.bodies[key], body)
	h := f.routes[key]
	f.mu.Unlock()
	if h == nil {
		writeRaw(w, 501, fmt.Sprintf("Method '%s' not implemented", key), `{"data":null}`)
		return
	}
	h(w, r)
}

func (f *fakePVE) handle(key string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes[key] = h
}

func (f *fakePVE) count(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[key]
}

func (f *fakePVE) lastBody(key string) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.bodies[key]
	if len(b) == 0 {
		return nil
	}
	return b[len(b)-1]
}

func (f *fakePVE) fingerprint() string {
	sum := sha256.Sum256(f.srv.Certificate().Raw)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

func (f *fakePVE) config() pve.Config {
	u, _ := url.Parse(f.srv.URL)
	port, _ := strconv.Atoi(u.Port())
	return pve.Config{
		Host: u.Hostname(), Port: port,
		TokenID: testTokenID, TokenSecret: testTokenSecret,
		Fingerprint:  f.fingerprint(),
		PollInterval: time.Millisecond,
		Timeout:      5 * time.Second,
	}
}

func (f *fakePVE) connect(t *testing.T) *pve.Client {
	t.Helper()
	c, err := pve.Connect(context.Background(), f.config())
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	pve.SetBackoff(c, time.Millisecond)
	return c
}

// writeData answers {"data": v} with 200.
func writeData(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	_ = json.NewEncoder(w).Encode(map[string]any{"data": v})
}

// writeRaw answers with PVE's habit of putting the message in the HTTP
// reason phrase, which net/http cannot do, so the connection is hijacked.
func writeRaw(w http.ResponseWriter, code int, reason, body string) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, reason, code)
		return
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\nContent-Type: application/json;charset=UTF-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		code, reason, len(body), body)
	_ = buf.Flush()
}

// resetConn drops the connection without an answer.
func resetConn(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
		}
	}
}

// logBuffer is a concurrency-safe sink for a debug-level slog logger.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
