package transport

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// startUnix serves a fakeHandler on a fresh socket; the returned stop
// cancels serving and returns ServeUnix's result.
func startUnix(t *testing.T, h Handler) (path string, stop func() error) {
	t.Helper()
	return startUnixWith(t, h, UnixConfig{}, testLogger(t))
}

// startUnixWith is startUnix with limits and a logger of the test's own.
func startUnixWith(t *testing.T, h Handler, cfg UnixConfig, logger *slog.Logger) (path string, stop func() error) {
	t.Helper()
	dir, err := os.MkdirTemp("", "pvk") // short: sun_path holds 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path = filepath.Join(dir, "s.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeUnix(ctx, path, h, logger, cfg) }()
	waitForSocket(t, path, done)
	var once sync.Once
	var serr error
	stop = func() error {
		once.Do(func() { cancel(); serr = <-done })
		return serr
	}
	t.Cleanup(func() { _ = stop() })
	return path, stop
}

// waitForSocket dials until the server answers (no fixed sleep decides the
// outcome; the deadline only bounds a broken server).
func waitForSocket(t *testing.T, path string, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-done:
			t.Fatalf("ServeUnix ended early: %v", err)
		default:
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("socket never came up")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type unixClient struct {
	c net.Conn
	r *bufio.Reader
}

func dialUnix(t *testing.T, path string) *unixClient {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &unixClient{c: c, r: bufio.NewReader(c)}
}

func (u *unixClient) call(id any, method string, params any) (map[string]json.RawMessage, error) {
	req, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	if _, err := u.c.Write(append(req, '\n')); err != nil {
		return nil, err
	}
	line, err := u.r.ReadBytes('\n')
	if err != nil {
		return nil, err
	}
	var resp map[string]json.RawMessage
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, fmt.Errorf("answer is not JSON: %q", line)
	}
	return resp, nil
}

func TestServeUnixServesConcurrentClients(t *testing.T) {
	t.Parallel()
	path, _ := startUnix(t, &fakeHandler{})
	const clients, calls = 16, 20
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := dialUnix(t, path)
			for j := range calls {
				id := fmt.Sprintf("c%d-%d", i, j)
				resp, err := u.call(id, "echo", map[string]any{"client": i, "call": j})
				if err != nil {
					errs <- err
					return
				}
				wantResult := fmt.Sprintf(`{"call":%d,"client":%d}`, j, i)
				if string(resp["id"]) != `"`+id+`"` || string(resp["result"]) != wantResult || string(resp["jsonrpc"]) != `"2.0"` {
					errs <- fmt.Errorf("client %d call %d: got %v", i, j, resp)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestServeUnixConnectionSurvivesBadLines(t *testing.T) {
	t.Parallel()
	path, _ := startUnix(t, &fakeHandler{})
	u := dialUnix(t, path)
	if _, err := u.c.Write([]byte("not json\n")); err != nil {
		t.Fatal(err)
	}
	line, err := u.r.ReadString('\n')
	if err != nil || !strings.Contains(line, `"code":-32700`) {
		t.Fatalf("answer to garbage: %q, %v", line, err)
	}
	resp, err := u.call(1, "fail", map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"code":1001,"message":"backup not found","data":{"reason":"not_found","what":"backup"}}`; string(resp["error"]) != want {
		t.Errorf("error = %s, want %s", resp["error"], want)
	}
}

func TestServeUnixSocketModeAndRemovalOnCancel(t *testing.T) {
	t.Parallel()
	path, stop := startUnix(t, &fakeHandler{})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o660 {
		t.Errorf("socket mode %o, want 660", got)
	}
	if err := stop(); err != nil {
		t.Errorf("ServeUnix after cancel: %v", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file left behind: %v", err)
	}
}

func TestServeUnixCancelWaitsForInFlightRequest(t *testing.T) {
	t.Parallel()
	h := &fakeHandler{release: make(chan struct{}), started: make(chan struct{}, 1)}
	path, stop := startUnix(t, h)
	u := dialUnix(t, path)
	got := make(chan map[string]json.RawMessage, 1)
	go func() {
		resp, err := u.call(5, "block", map[string]any{})
		if err != nil {
			t.Error(err)
		}
		got <- resp
	}()
	<-h.started
	if err := stop(); err != nil {
		t.Errorf("ServeUnix: %v", err)
	}
	if resp := <-got; string(resp["id"]) != "5" || !strings.Contains(string(resp["error"]), `"reason":"unavailable"`) {
		t.Errorf("in-flight answer = %v", resp)
	}
}

func TestServeUnixReplacesStaleSocket(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("", "pvk")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "s.sock")
	// A server that died without cleaning up leaves its socket file.
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeUnix(ctx, path, &fakeHandler{}, testLogger(t), UnixConfig{}) }()
	waitForSocket(t, path, done)
	resp, err := dialUnix(t, path).call(1, "echo", []int{1})
	if err != nil || string(resp["result"]) != "[1]" {
		t.Errorf("call after stale socket: %v, %v", resp, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("ServeUnix: %v", err)
	}
}

func TestServeUnixRefusesToSteal(t *testing.T) {
	t.Parallel()
	path, _ := startUnix(t, &fakeHandler{})
	notSocket := filepath.Join(filepath.Dir(path), "plain")
	if err := os.WriteFile(notSocket, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, want string
	}{
		{"live server's socket is kept", path, "already listening"},
		{"regular file is not removed", notSocket, "not a socket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ServeUnix(context.Background(), tt.path, &fakeHandler{}, testLogger(t), UnixConfig{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ServeUnix = %v, want error containing %q", err, tt.want)
			}
			if _, err := os.Lstat(tt.path); err != nil {
				t.Errorf("file at %s gone: %v", tt.path, err)
			}
		})
	}
}
