package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/transport"
)

// rpcLine is one JSON-RPC response line.
type rpcLine struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   *rpcError       `json:"error"`
}

func listRequest(w *world, c customer, id int) string {
	raw, _ := json.Marshal(map[string]any{
		"jsonrpc": "2.0", "id": id, "method": "backups.list",
		"params": map[string]any{
			"service_id": c.serviceID, "actor": map[string]any{"type": "client", "id": c.clientID},
			"server": map[string]any{"host": w.server.Hostname, "port": w.server.Port, "token_id": w.info.TokenID,
				"token_secret": w.info.TokenSecret, "fingerprint": w.info.Fingerprint},
		},
	})
	return string(raw)
}

func checkList(t *testing.T, transportName string, result json.RawMessage) {
	t.Helper()
	var l backupList
	if err := json.Unmarshal(result, &l); err != nil {
		t.Fatalf("%s: backups.list result %s: %v", transportName, result, err)
	}
	if l.Quota.Max != 3 || l.Items == nil {
		t.Errorf("%s: backups.list = %s, want quota max 3 and an items array", transportName, result)
	}
}

func TestStdioAnswersProtocolErrorsAndKeepsServing(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.newCustomer(100, 3)
	lines := []string{
		`this is not json`,
		`{"jsonrpc":"2.0","id":7}`,
		`{"jsonrpc":"2.0","id":8,"method":"no.such.method","params":{}}`,
		`{"jsonrpc":"2.0","id":9,"method":"backups.list","params":[1,2]}`,
		listRequest(w, c, 10),
	}
	cmd := exec.Command(binary, "serve")
	cmd.Env = append(os.Environ(), "PVEKEEP_DSN="+w.db.DSN)
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pvekeep serve: %v", err)
	}
	var got []rpcLine
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		var l rpcLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("answer line %q is not JSON: %v", sc.Text(), err)
		}
		got = append(got, l)
	}
	if len(got) != len(lines) {
		t.Fatalf("got %d answers, want %d: %s", len(got), len(lines), out)
	}
	want := []struct {
		id   string
		code int64
	}{{"null", -32700}, {"7", -32600}, {"8", -32601}, {"9", -32602}}
	for i, wnt := range want {
		if got[i].Error == nil || got[i].Error.Code != wnt.code || string(got[i].ID) != wnt.id {
			t.Errorf("answer %d = id %s error %+v, want id %s code %d", i, got[i].ID, got[i].Error, wnt.id, wnt.code)
		}
		if got[i].JSONRPC != "2.0" {
			t.Errorf("answer %d has jsonrpc %q", i, got[i].JSONRPC)
		}
	}
	if got[4].Error != nil {
		t.Fatalf("the good call after the bad ones failed: %+v", got[4].Error)
	}
	checkList(t, "stdio", got[4].Result)
}

func TestUnixSocketServesACall(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.newCustomer(100, 3)
	sock := filepath.Join(t.TempDir(), "pvekeep.sock")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "serve", "--listen", "unix:"+sock)
	cmd.Env = append(os.Environ(), "PVEKEEP_DSN="+w.db.DSN)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()

	var conn net.Conn
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if conn, err = net.Dial("unix", sock); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("connect to %s: %v", sock, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := conn.Write([]byte(listRequest(w, c, 1) + "\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	var l rpcLine
	if err := json.Unmarshal(line, &l); err != nil || l.Error != nil {
		t.Fatalf("answer %s (err %v)", line, err)
	}
	checkList(t, "socket", l.Result)
}

func TestGoPluginServesACall(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.newCustomer(100, 3)
	cmd := exec.Command(binary)
	cmd.Env = append(os.Environ(), "PVEKEEP_DSN="+w.db.DSN)
	pc, err := transport.NewPluginClient(cmd, nil)
	if err != nil {
		t.Fatalf("launch plugin: %v", err)
	}
	defer pc.Close()
	var req map[string]any
	_ = json.Unmarshal([]byte(listRequest(w, c, 1)), &req)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := pc.Call(ctx, "backups.list", req["params"])
	if err != nil {
		t.Fatalf("backups.list over go-plugin: %v", err)
	}
	checkList(t, "go-plugin", res)

	_, err = pc.Call(ctx, "backups.list", map[string]any{"service_id": c.serviceID, "actor": map[string]any{"type": "client", "id": c.clientID + 1000}})
	rerr, ok := transport.AsRPCError(err)
	if !ok || rerr.Code != 1002 {
		t.Errorf("another client's call over go-plugin = %v, want a typed 1002", err)
	}
}

func TestDeadDatabaseAnswersUnavailableAndHelloStillWorks(t *testing.T) {
	t.Parallel()
	requirePHP(t) // keeps this with the other end-to-end tests; PHP itself is not used
	lines := []string{
		`{"jsonrpc":"2.0","id":1,"method":"plugin.hello","params":{"api_version":1}}`,
		`{"jsonrpc":"2.0","id":2,"method":"backups.list","params":{"service_id":1,"actor":{"type":"client","id":1}}}`,
	}
	cmd := exec.Command(binary, "serve")
	// A closed port: nothing listens on TCP port 1.
	cmd.Env = append(os.Environ(), "PVEKEEP_DSN=root@tcp(127.0.0.1:1)/whmcs?timeout=2s")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pvekeep serve with a dead database exited: %v", err)
	}
	var got []rpcLine
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var r rpcLine
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("answer %q: %v", l, err)
		}
		got = append(got, r)
	}
	if len(got) != 2 || got[0].Error != nil {
		t.Fatalf("answers = %s, want hello to succeed", out)
	}
	if got[1].Error == nil || got[1].Error.Code != 1008 || got[1].Error.Data["retryable"] != true {
		t.Errorf("backups.list with a dead database = %+v, want a retryable 1008", got[1].Error)
	}
}
