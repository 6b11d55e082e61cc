package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// A note whose bytes are not UTF-8 is refused by the real binary with
// invalid_input naming the field, and no job is made: before, the bytes
// became U+FFFD on the way in and the note was silently changed.
func TestStdioRefusesANoteThatIsNotUTF8(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.newCustomer(100, 3)
	raw, err := json.Marshal(map[string]any{
		"jsonrpc": "2.0", "id": 1, "method": "backups.create",
		"params": map[string]any{
			"service_id": c.serviceID, "actor": map[string]any{"type": "client", "id": c.clientID},
			"server": map[string]any{"host": w.server.Hostname, "port": w.server.Port, "token_id": w.info.TokenID,
				"token_secret": w.info.TokenSecret, "fingerprint": w.info.Fingerprint},
			"note": "NOTE",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Replace(string(raw), `"NOTE"`, "\"before \xff upgrade\"", 1)
	cmd := exec.Command(binary, "serve")
	cmd.Env = append(os.Environ(), "PVEKEEP_DSN="+w.db.DSN)
	cmd.Stdin = strings.NewReader(line + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pvekeep serve: %v", err)
	}
	var got rpcLine
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("answer %q: %v", out, err)
	}
	if got.Error == nil || got.Error.Code != 1007 || got.Error.Data["field"] != "note" {
		t.Errorf("answer %s, want invalid_input (1007) with field note", out)
	}
	if n := w.jobCount(c.serviceID); n != 0 {
		t.Errorf("%d jobs made, want none", n)
	}
}
