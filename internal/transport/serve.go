package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/sourcegraph/jsonrpc2"
)

// Handler is the method table served by every transport (internal/api).
// It answers unknown methods with -32601 itself; the returned
// *jsonrpc2.Error is sent to the caller unchanged. params is nil when the
// request had none. result must marshal to JSON.
type Handler interface {
	Call(ctx context.Context, method string, params json.RawMessage) (result any, err *jsonrpc2.Error)
}

// ServeStdio serves newline-delimited JSON-RPC 2.0 requests read from r and
// writes the answers to w until r reaches EOF (a clean end: nil) or ctx is
// cancelled (nil after the request in flight, if any, was answered). r and w
// are not closed. A read or write failure is returned.
func ServeStdio(ctx context.Context, r io.Reader, w io.Writer, h Handler, logger *slog.Logger) error {
	logger = orDiscard(logger).With("transport", "stdio")
	return serveStream(ctx, newLineStream(r, w, nil, MaxLineBytes, logger), h, logger)
}

// serveStream runs one jsonrpc2 connection over s until its input ends or
// ctx is cancelled.
func serveStream(ctx context.Context, s *lineStream, h Handler, logger *slog.Logger) error {
	d := &dispatcher{h: h, ctx: ctx, stream: s, logger: logger}
	// The Conn's own context must outlive ctx: cancelling it would close the
	// stream under a handler that is still answering.
	conn := jsonrpc2.NewConn(context.WithoutCancel(ctx), s, d, jsonrpc2.SetLogger(printfLogger{logger}))
	select {
	case <-conn.DisconnectNotify():
		return s.err()
	case <-ctx.Done():
		s.stop()
		d.mu.Lock() // wait for the request in flight to be answered
		_ = conn.Close()
		d.mu.Unlock()
		return nil
	}
}

// dispatcher adapts Handler to jsonrpc2.Handler. jsonrpc2 calls Handle
// inline from its read loop, so requests on one stream run one at a time.
type dispatcher struct {
	h      Handler
	ctx    context.Context
	stream *lineStream
	logger *slog.Logger

	mu sync.Mutex // held while a request is handled
}

func (d *dispatcher) Handle(_ context.Context, conn *jsonrpc2.Conn, req *jsonrpc2.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stream.stopping.Load() {
		return
	}
	params, ok := d.stream.takeParams(req.Meta)
	if !ok && req.Params != nil {
		params = *req.Params
	}
	result, rpcErr := d.call(req.Method, params)
	if req.Notif {
		if rpcErr != nil {
			d.logger.Debug("notification failed", "method", req.Method, "code", rpcErr.Code, "error", rpcErr.Message)
		}
		return
	}
	resp := &jsonrpc2.Response{ID: req.ID, Error: rpcErr}
	if rpcErr == nil {
		if err := resp.SetResult(result); err != nil {
			d.logger.Error("encode result", "method", req.Method, "error", err)
			resp.Error = &jsonrpc2.Error{Code: jsonrpc2.CodeInternalError, Message: "Internal error"}
		}
	}
	if err := conn.SendResponse(d.ctx, resp); err != nil && !errors.Is(err, jsonrpc2.ErrClosed) {
		d.logger.Warn("send response", "method", req.Method, "error", err)
	}
}

// call runs the handler, turning a panic into -32603 so one bad method
// cannot take a warm server down.
func (d *dispatcher) call(method string, params json.RawMessage) (result any, rpcErr *jsonrpc2.Error) {
	defer func() {
		if p := recover(); p != nil {
			d.logger.Error("handler panicked", "method", method, "panic", fmt.Sprint(p))
			result, rpcErr = nil, &jsonrpc2.Error{Code: jsonrpc2.CodeInternalError, Message: "Internal error"}
		}
	}()
	return d.h.Call(d.ctx, method, params)
}

// UnixConfig bounds what connections to ServeUnix may hold; the zero value
// takes the defaults.
type UnixConfig struct {
	// MaxConns caps the connections served at once (default
	// DefaultMaxConns). Further connections wait in the kernel's listen
	// queue, unread, until a served one closes: waiting costs the process
	// no memory. With MaxLineBytes per line and a 64 KiB read buffer, the
	// request lines of all connections hold at most about
	// MaxConns × 1.06 MiB (68 MiB at the default).
	MaxConns int
	// ReadTimeout bounds how long a connection may take to deliver one
	// whole request line, counted from when the server starts waiting for
	// it: a connection idle that long, or trickling a line byte by byte
	// (slow loris), is closed (default DefaultReadTimeout). A request read
	// in time is answered however long its handler takes.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing one answer, so a client that stops
	// reading cannot keep its connection (default DefaultWriteTimeout).
	WriteTimeout time.Duration
}

// Defaults of UnixConfig.
const (
	DefaultMaxConns     = 64
	DefaultReadTimeout  = 60 * time.Second
	DefaultWriteTimeout = 30 * time.Second
)

func (c UnixConfig) withDefaults() UnixConfig {
	if c.MaxConns <= 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	return c
}

// ServeUnix listens on the unix socket at path and serves every connection
// with the same framing as ServeStdio, each connection's requests in order,
// connections concurrently, at most cfg.MaxConns at once (see UnixConfig
// for the limits). A stale socket file left by a dead server is removed; a
// live one (something answers on it) or a non-socket file at path is an
// error. The socket is made mode 0660. When ctx is cancelled the listener
// closes, requests in flight are answered, connections close, the socket
// file is removed and ServeUnix returns nil.
func ServeUnix(ctx context.Context, path string, h Handler, logger *slog.Logger, cfg UnixConfig) error {
	cfg = cfg.withDefaults()
	logger = orDiscard(logger).With("transport", "unix", "path", path)
	if err := removeStaleSocket(path); err != nil {
		return err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", path, err)
	}
	defer ln.Close()
	// Under the usual umask 022 the socket is born 0755, which lets no one
	// but the owner connect, so the moment before Chmod opens nothing.
	if err := os.Chmod(path, 0o660); err != nil {
		return fmt.Errorf("chmod socket %s: %w", path, err)
	}
	logger.Info("serving", "max_conns", cfg.MaxConns, "read_timeout", cfg.ReadTimeout)

	parent := ctx
	stop := context.AfterFunc(parent, func() { _ = ln.Close() })
	defer stop()

	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx) // on an accept failure, end the connections too
	defer cancel()
	slots := make(chan struct{}, cfg.MaxConns)
	var lastFull time.Time
	var connID uint64
	backoff := time.Duration(0)
	for {
		// Take a slot before accepting: past the cap, connections stay in
		// the listen queue, where they cost this process nothing.
		select {
		case slots <- struct{}{}:
		default:
			// At most once a minute: under a sustained burst every accept
			// would hit the limit again.
			if lastFull.IsZero() || time.Since(lastFull) >= time.Minute {
				lastFull = time.Now()
				logger.Info("connection limit reached; new connections wait", "max_conns", cfg.MaxConns)
			}
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return nil
			}
		}
		c, err := ln.Accept()
		if err != nil {
			<-slots
			if parent.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("accept on %s: %w", path, err)
			}
			// Out of file descriptors and the like pass; keep the warm
			// server up and retry with a growing pause (as net/http does).
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			logger.Warn("accept failed; retrying", "error", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		connID++
		clog := logger.With("conn", connID)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			clog.Debug("connection opened")
			s := newLineStream(c, c, c, MaxLineBytes, clog)
			s.deadlines = c
			s.readTimeout, s.writeTimeout = cfg.ReadTimeout, cfg.WriteTimeout
			if err := serveStream(ctx, s, h, clog); err != nil {
				clog.Warn("connection ended", "error", err)
			}
			_ = c.Close()
			clog.Debug("connection closed")
		}()
	}
}

// removeStaleSocket deletes a socket file nobody listens on any more.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stat socket %s: %w", path, err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("listen on %s: a file that is not a socket is in the way", path)
	}
	if c, err := net.Dial("unix", path); err == nil {
		_ = c.Close()
		return fmt.Errorf("listen on %s: another server is already listening", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	return nil
}

func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// printfLogger routes jsonrpc2's own log lines to slog.
type printfLogger struct{ l *slog.Logger }

func (p printfLogger) Printf(format string, v ...any) {
	p.l.Warn(fmt.Sprintf(format, v...), "component", "jsonrpc2")
}
