package transport

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"
)

// startPlugin launches this test binary as a plugin (see TestMain).
func startPlugin(t *testing.T) *PluginClient {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=plugin")
	pc, err := NewPluginClient(cmd, testLogger(t))
	if err != nil {
		t.Fatalf("NewPluginClient: %v", err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

func TestPluginCall(t *testing.T) {
	t.Parallel()
	pc := startPlugin(t)
	tests := []struct {
		name       string
		method     string
		params     any
		wantResult string
		wantErr    *RPCError
		wantReason string
	}{
		{name: "result comes back as JSON", method: "echo", params: map[string]any{"a": 1}, wantResult: `{"a":1}`},
		{name: "raw params are sent as is", method: "echo", params: json.RawMessage(`[1,2]`), wantResult: `[1,2]`},
		{name: "nil params reach the handler as nil", method: "echo", params: nil, wantResult: `null`},
		{name: "application error keeps code, message and data", method: "fail", params: map[string]any{},
			wantErr:    &RPCError{Code: 1001, Message: "backup not found", Data: json.RawMessage(`{"reason":"not_found","what":"backup"}`)},
			wantReason: "not_found"},
		{name: "unknown method is -32601", method: "nope", params: map[string]any{},
			wantErr: &RPCError{Code: -32601, Message: "Method not found: nope"}},
		{name: "handler panic is -32603", method: "panic", params: map[string]any{},
			wantErr: &RPCError{Code: -32603, Message: "Internal error"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := pc.Call(context.Background(), tt.method, tt.params)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Call: %v", err)
				}
				if string(res) != tt.wantResult {
					t.Errorf("result %s, want %s", res, tt.wantResult)
				}
				return
			}
			re, ok := AsRPCError(err)
			if !ok {
				t.Fatalf("error %v (%T), want *RPCError", err, err)
			}
			if re.Code != tt.wantErr.Code || re.Message != tt.wantErr.Message || string(re.Data) != string(tt.wantErr.Data) {
				t.Errorf("error %+v, want %+v", re, tt.wantErr)
			}
			if re.Reason() != tt.wantReason {
				t.Errorf("reason %q, want %q", re.Reason(), tt.wantReason)
			}
		})
	}
}

func TestPluginCallCancelledByContext(t *testing.T) {
	t.Parallel()
	pc := startPlugin(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := pc.Call(ctx, "block", map[string]any{})
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Call = %v, want context.Canceled", err)
	}
	// The plugin is still usable afterwards.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	if res, err := pc.Call(ctx2, "echo", []int{7}); err != nil || string(res) != "[7]" {
		t.Errorf("Call after cancel = %s, %v", res, err)
	}
}
