package transport

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"sync"
	"testing"

	"github.com/sourcegraph/jsonrpc2"
)

// fakeHandler is the method table the transport tests serve:
//
//	echo    → result is the params (null when absent)
//	fail    → code 1001, data {"reason":"not_found","what":"backup"}
//	panic   → panics
//	badjson → a result that cannot be marshalled
//	block   → waits until release is closed or ctx ends (then 1008 unavailable)
//	notify  → records its params on notified
//	else    → -32601
type fakeHandler struct {
	release  chan struct{} // closed to let "block" return; may be nil
	started  chan struct{} // receives once per "block" call; may be nil
	notified chan string   // params of "notify" calls; may be nil
	mu       sync.Mutex
	seen     []string
}

func (f *fakeHandler) Call(ctx context.Context, method string, params json.RawMessage) (any, *jsonrpc2.Error) {
	f.mu.Lock()
	f.seen = append(f.seen, method)
	f.mu.Unlock()
	switch method {
	case "echo":
		if params == nil {
			return nil, nil
		}
		return params, nil
	case "fail":
		e := &jsonrpc2.Error{Code: 1001, Message: "backup not found"}
		e.SetError(map[string]any{"reason": "not_found", "what": "backup"})
		return nil, e
	case "panic":
		panic("boom")
	case "badjson":
		return func() {}, nil
	case "block":
		if f.started != nil {
			f.started <- struct{}{}
		}
		select {
		case <-f.release:
			return map[string]any{"released": true}, nil
		case <-ctx.Done():
			e := &jsonrpc2.Error{Code: 1008, Message: "cancelled"}
			e.SetError(map[string]any{"reason": "unavailable"})
			return nil, e
		}
	case "notify":
		if f.notified != nil {
			f.notified <- string(params)
		}
		return nil, nil
	}
	return nil, &jsonrpc2.Error{Code: jsonrpc2.CodeMethodNotFound, Message: "Method not found: " + method}
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// helperEnv makes the test binary act as a go-plugin plugin (TestMain).
const helperEnv = "PVEKEEP_TRANSPORT_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "stdio" {
		logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
		if err := ServeStdio(context.Background(), os.Stdin, os.Stdout, &fakeHandler{}, logger); err != nil {
			logger.Error("serve", "error", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv(helperEnv) == "plugin" && IsPluginLaunch() {
		logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
		ServePlugin(&fakeHandler{release: make(chan struct{})}, logger)
		os.Exit(0)
	}
	os.Exit(m.Run())
}
