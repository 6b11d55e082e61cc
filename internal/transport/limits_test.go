package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sourcegraph/jsonrpc2"
)

// watchdog only bounds a broken server; no outcome depends on it.
const watchdog = 30 * time.Second

// handlerFunc adapts a function to Handler.
type handlerFunc func(ctx context.Context, method string, params json.RawMessage) (any, *jsonrpc2.Error)

func (f handlerFunc) Call(ctx context.Context, method string, params json.RawMessage) (any, *jsonrpc2.Error) {
	return f(ctx, method, params)
}

// signalLogger sends on the returned channel each time the server logs
// msg, and passes every record on to testLogger.
func signalLogger(t *testing.T, msg string) (*slog.Logger, <-chan struct{}) {
	ch := make(chan struct{}, 100)
	return slog.New(&signalHandler{next: testLogger(t).Handler(), msg: msg, ch: ch}), ch
}

type signalHandler struct {
	next slog.Handler
	msg  string
	ch   chan struct{}
}

func (h *signalHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *signalHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		select {
		case h.ch <- struct{}{}:
		default:
		}
	}
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *signalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &signalHandler{next: h.next.WithAttrs(as), msg: h.msg, ch: h.ch}
}

func (h *signalHandler) WithGroup(g string) slog.Handler {
	return &signalHandler{next: h.next.WithGroup(g), msg: h.msg, ch: h.ch}
}

func waitSignal(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(watchdog):
		t.Fatalf("the server never logged that %s", what)
	}
}

const limitReached = "connection limit reached; new connections wait"

// readUntilClosed reads c until the server closes it and returns what came.
func readUntilClosed(t *testing.T, c net.Conn) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(watchdog))
	got, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept the connection open (read so far %q)", got)
	}
	return got
}

func TestServeUnixCutsASlowLorisLine(t *testing.T) {
	t.Parallel()
	path, _ := startUnixWith(t, &fakeHandler{}, UnixConfig{ReadTimeout: 100 * time.Millisecond}, testLogger(t))
	c := dialUnix(t, path).c
	if _, err := io.WriteString(c, `{"jsonrpc":"2.0","id":1,"method":"echo","params":{"x":"`); err != nil {
		t.Fatal(err)
	}
	// One byte every 10 ms: never idle as long as the read timeout, but
	// the line never ends.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := c.Write([]byte("a")); err != nil {
					return
				}
			}
		}
	}()
	if got := readUntilClosed(t, c); len(got) != 0 {
		t.Errorf("the cut connection got an answer %q; a partial line is not a request", got)
	}
	// The server itself is fine.
	if resp, err := dialUnix(t, path).call(2, "echo", []int{1}); err != nil || string(resp["result"]) != "[1]" {
		t.Errorf("call after the cut: %v, %v", resp, err)
	}
}

func TestServeUnixClosesAnIdleConnectionAfterAnsweringIt(t *testing.T) {
	t.Parallel()
	path, _ := startUnixWith(t, &fakeHandler{}, UnixConfig{ReadTimeout: 100 * time.Millisecond}, testLogger(t))
	u := dialUnix(t, path)
	if resp, err := u.call(1, "echo", []int{1}); err != nil || string(resp["result"]) != "[1]" {
		t.Fatalf("call: %v, %v", resp, err)
	}
	if got := readUntilClosed(t, u.c); len(got) != 0 {
		t.Errorf("idle connection got %q", got)
	}
}

func TestServeUnixServesNoMoreThanMaxConnsAtOnce(t *testing.T) {
	t.Parallel()
	var firstClosed, servedEarly atomic.Bool
	h := handlerFunc(func(_ context.Context, method string, _ json.RawMessage) (any, *jsonrpc2.Error) {
		if method == "third" && !firstClosed.Load() {
			servedEarly.Store(true)
		}
		return "ok", nil
	})
	logger, full := signalLogger(t, limitReached)
	path, _ := startUnixWith(t, h, UnixConfig{MaxConns: 2}, logger)
	a, b := dialUnix(t, path), dialUnix(t, path)
	for _, u := range []*unixClient{a, b} {
		if _, err := u.call(1, "first", []int{}); err != nil {
			t.Fatal(err)
		}
	}
	waitSignal(t, full, "its two connections are the limit")

	c := dialUnix(t, path) // queued by the kernel, not served
	answered := make(chan error, 1)
	go func() {
		resp, err := c.call(3, "third", []int{})
		if err == nil && string(resp["result"]) != `"ok"` {
			err = errors.New("answer " + string(resp["result"]))
		}
		answered <- err
	}()
	firstClosed.Store(true)
	_ = a.c.Close()
	select {
	case err := <-answered:
		if err != nil {
			t.Fatalf("third connection: %v", err)
		}
	case <-time.After(watchdog):
		t.Fatal("the third connection was never served after the first closed")
	}
	if servedEarly.Load() {
		t.Error("the third connection was served while two others were open")
	}
	if _, err := b.call(4, "first", []int{}); err != nil {
		t.Errorf("second connection after the third was served: %v", err)
	}
}

// Not parallel: it measures the heap, which other tests would disturb.
func TestServeUnixMemoryOfPartialLinesIsBoundedByTheCap(t *testing.T) {
	const maxConns, extra = 4, 8
	logger, full := signalLogger(t, limitReached)
	path, stop := startUnixWith(t, &fakeHandler{}, UnixConfig{MaxConns: maxConns}, logger)
	partial := bytes.Repeat([]byte("a"), MaxLineBytes-1) // never ends
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range maxConns {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		// Returns once the server has read all but a socket buffer's worth.
		if _, err := c.Write(partial); err != nil {
			t.Fatal(err)
		}
	}
	waitSignal(t, full, "its connections are the limit")
	var wg sync.WaitGroup
	for range extra {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		wg.Go(func() { _, _ = c.Write(partial) }) // blocks: nobody reads it
	}

	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	perConn := int64(MaxLineBytes + 2 + 64<<10)
	if limit := maxConns*perConn + 1<<20; grew > limit {
		t.Errorf("heap grew by %.1f MiB with %d connections (cap %d) holding %d-byte partial lines; want at most %.1f MiB",
			float64(grew)/(1<<20), maxConns+extra, maxConns, len(partial), float64(limit)/(1<<20))
	}
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	if err := stop(); err != nil && !strings.Contains(err.Error(), "closed") {
		t.Errorf("ServeUnix: %v", err)
	}
}
