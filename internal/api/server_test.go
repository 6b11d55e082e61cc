package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/pvesim"
	"github.com/pvekeep/pvekeep/internal/service"
)

// realServers answers server.test and server.options with the real
// service over a simulator (they need no database), everything else with
// the fake.
type realServers struct {
	*fakeBackend
	svc *service.Service
}

func (r realServers) TestServer(ctx context.Context, a pvekeep.Actor, s pvekeep.Server, storage string) (service.ServerReport, error) {
	return r.svc.TestServer(ctx, a, s, storage)
}

func (r realServers) ServerOptions(ctx context.Context, a pvekeep.Actor, s pvekeep.Server, kind string) ([]service.Option, error) {
	return r.svc.ServerOptions(ctx, a, s, kind)
}

func simTable(t *testing.T) (*Table, map[string]any) {
	t.Helper()
	sim := pvesim.New(pvesim.Options{Nodes: 1, VMs: 1, Speed: 100})
	info, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	u, _ := url.Parse(info.URL)
	port, _ := strconv.Atoi(u.Port())
	svc := service.New(service.Deps{
		Dial: func(ctx context.Context, s pvekeep.Server) (pve.Cluster, error) {
			return pve.Connect(ctx, pve.ConfigFromServer(s))
		},
		Logger: slog.New(slog.DiscardHandler),
	}, service.Config{})
	f := &fakeBackend{}
	tbl := New(realServers{f, svc}, f, slog.New(slog.DiscardHandler), Config{Version: "test"})
	server := map[string]any{"host": u.Hostname(), "port": port, "token_id": info.TokenID,
		"token_secret": info.TokenSecret, "fingerprint": info.Fingerprint}
	return tbl, server
}

func call(t *testing.T, tbl *Table, method string, params map[string]any) (any, map[string]any, int64, string) {
	t.Helper()
	raw, _ := json.Marshal(params)
	res, rerr := tbl.Call(context.Background(), method, raw)
	if rerr == nil {
		return res, nil, 0, ""
	}
	var data map[string]any
	if rerr.Data != nil {
		_ = json.Unmarshal(*rerr.Data, &data)
	}
	return nil, data, rerr.Code, rerr.Message
}

// Settings that can never work are permanent invalid_input errors naming
// the panel's field, not upstream or retryable ones (issue 7 item 8).
func TestServerSettingsThatCannotWorkAreInvalidInputForTheirField(t *testing.T) {
	t.Parallel()
	tbl, good := simTable(t)
	fp := good["fingerprint"].(string)
	tests := []struct {
		name   string
		mutate func(s map[string]any)
		field  string
		msg    []string
	}{
		{"host with user info", func(s map[string]any) { s["host"] = "x@127.0.0.2" }, "server.host", []string{`contains "@"`}},
		{"host with a scheme", func(s map[string]any) { s["host"] = "http://127.0.0.1" }, "server.host", []string{"scheme"}},
		{"host with a path", func(s map[string]any) { s["host"] = "a/b" }, "server.host", []string{"path"}},
		{"host with a space", func(s map[string]any) { s["host"] = "pve 1" }, "server.host", []string{"spaces"}},
		{"neither verified nor pinned", func(s map[string]any) { s["fingerprint"] = "" }, "server.fingerprint",
			[]string{"neither verified nor pinned", "Access Hash", "Test Connection shows it"}},
		{"pin mismatch", func(s map[string]any) { s["fingerprint"] = strings.Repeat("AB:", 31) + "AB" }, "server.fingerprint",
			[]string{"presented a certificate with fingerprint " + fp, "set the Access Hash to " + fp}},
		{"self-signed certificate with verification", func(s map[string]any) { s["fingerprint"], s["verify_tls"] = "", true }, "server.fingerprint",
			[]string{"not trusted", fp}},
		{"secret with a newline", func(s map[string]any) { s["token_secret"] = s["token_secret"].(string) + "\n" }, "server.token_secret",
			[]string{"line break"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := map[string]any{}
			for k, v := range good {
				srv[k] = v
			}
			tt.mutate(srv)
			_, data, code, msg := call(t, tbl, "server.options", map[string]any{
				"actor": map[string]any{"type": "system"}, "server": srv, "kind": "bridges"})
			if code != 1007 || data["reason"] != "invalid_input" || data["field"] != tt.field {
				t.Fatalf("server.options = code %d data %v %q, want 1007 invalid_input for %s", code, data, msg, tt.field)
			}
			for _, want := range tt.msg {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q does not contain %q", msg, want)
				}
			}
			if strings.Contains(msg, good["token_secret"].(string)) {
				t.Errorf("message leaks the secret: %q", msg)
			}
		})
	}
}

func TestServerTestAnswersChecksNotErrors(t *testing.T) {
	t.Parallel()
	tbl, srv := simTable(t)
	srv["fingerprint"] = ""
	res, data, code, _ := call(t, tbl, "server.test", map[string]any{
		"actor": map[string]any{"type": "system"}, "server": srv, "storage": "backup"})
	if code != 0 {
		t.Fatalf("server.test = code %d %v, want a result", code, data)
	}
	raw, _ := json.Marshal(res)
	var out struct {
		OK          bool   `json:"ok"`
		Fingerprint string `json:"fingerprint"`
		Checks      []struct {
			Name   string `json:"name"`
			OK     bool   `json:"ok"`
			Detail string `json:"detail"`
		} `json:"checks"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	if out.OK || out.Fingerprint == "" || len(out.Checks) != 5 || out.Checks[1].Name != "tls" || out.Checks[1].OK ||
		!strings.Contains(out.Checks[1].Detail, out.Fingerprint) {
		t.Errorf("server.test unpinned = %s, want ok false, the fingerprint, and a failed tls check naming it", raw)
	}
}

func TestServerOptionsAnswersItems(t *testing.T) {
	t.Parallel()
	tbl, srv := simTable(t)
	res, data, code, _ := call(t, tbl, "server.options", map[string]any{
		"actor": map[string]any{"type": "system"}, "server": srv, "kind": "templates"})
	if code != 0 {
		t.Fatalf("server.options = code %d %v", code, data)
	}
	raw, _ := json.Marshal(res)
	if string(raw) != `{"items":[{"value":"9000","label":"9000 debian-12-template (pve1)"}]}` {
		t.Errorf("server.options templates = %s", raw)
	}
}
