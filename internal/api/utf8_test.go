package api

import (
	"context"
	"encoding/json"
	"testing"
)

func TestTextThatIsNotUTF8IsRefusedWithItsField(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		method string
		params string // raw bytes, as they arrive on the wire
		field  string
	}{
		{"a byte that is never UTF-8 in the note", "backups.create", "{\"service_id\":1,\"note\":\"ok \xff\"}", "note"},
		{"a cut multi-byte sequence in the note", "backups.create", "{\"service_id\":1,\"note\":\"caf\xc3\"}", "note"},
		{"an overlong encoding of '/'", "backups.create", "{\"service_id\":1,\"note\":\"\xc0\xaf\"}", "note"},
		{"an encoded surrogate", "backups.create", "{\"service_id\":1,\"note\":\"\xed\xa0\x80\"}", "note"},
		{"a lone high surrogate escape", "backups.create", `{"service_id":1,"note":"x\ud800y"}`, "note"},
		{"a lone low surrogate escape", "backups.create", `{"service_id":1,"note":"\udc00"}`, "note"},
		{"a nested field", "backups.create", "{\"service_id\":1,\"server\":{\"host\":\"pve\xfe\"}}", "server.host"},
		{"an element of an array", "cron.tick", "{\"actor\":{\"type\":\"system\"},\"servers\":[{\"host\":\"a\"},{\"host\":\"b\xff\"}]}", "servers[1].host"},
		{"a member name", "backups.create", "{\"service_id\":1,\"n\xffte\":\"x\"}", "n\ufffdte"},
		{"the idempotency key", "backups.create", "{\"service_id\":1,\"idempotency_key\":\"k\x80\"}", "idempotency_key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeBackend{}
			_, rerr := newTable(f).Call(context.Background(), tc.method, json.RawMessage(tc.params))
			if rerr == nil || rerr.Code != 1007 {
				t.Fatalf("Call() error = %+v, want invalid_input (1007)", rerr)
			}
			var data map[string]any
			if err := json.Unmarshal(*rerr.Data, &data); err != nil {
				t.Fatal(err)
			}
			if data["reason"] != "invalid_input" || data["field"] != tc.field {
				t.Errorf("data = %v, want reason invalid_input, field %q", data, tc.field)
			}
			if f.note != "" || f.tick != nil || f.got.ServiceID != 0 {
				t.Errorf("the service was called (note %q, tick %v, call %+v)", f.note, f.tick, f.got)
			}
		})
	}
}

func TestValidUnicodeTextReachesTheServiceAsSent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		params string
		note   string
	}{
		{"raw multi-byte text", "{\"service_id\":1,\"note\":\"café 😀 Tom's <b>&\"}", "café 😀 Tom's <b>&"},
		{"a surrogate pair escape", `{"service_id":1,"note":"\ud83d\ude00"}`, "😀"},
		{"an escaped replacement character", `{"service_id":1,"note":"\ufffd"}`, "\ufffd"},
		{"escaped quotes and backslashes", `{"service_id":1,"note":"a\"b\\c\u00e9"}`, `a"b\cé`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeBackend{}
			if _, rerr := newTable(f).Call(context.Background(), "backups.create", json.RawMessage(tc.params)); rerr != nil {
				t.Fatalf("Call() error = %+v", rerr)
			}
			if f.note != tc.note {
				t.Errorf("note = %q, want %q", f.note, tc.note)
			}
		})
	}
}
