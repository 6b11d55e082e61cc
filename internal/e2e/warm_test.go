package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// The warm socket process keeps its Proxmox connections between calls:
// three panel requests, each on its own socket connection as PHP makes
// them, each asking Proxmox several things, reach the simulator over one
// TLS connection.
func TestUnixSocketReusesItsProxmoxConnection(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	sock := filepath.Join(t.TempDir(), "pvekeep.sock")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "serve", "--listen", "unix:"+sock)
	cmd.Env = append(os.Environ(), "PVEKEEP_DSN="+w.db.DSN)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()

	request, _ := json.Marshal(map[string]any{
		"jsonrpc": "2.0", "id": 1, "method": "server.options",
		"params": map[string]any{
			"actor": map[string]any{"type": "system"}, "kind": "bridges",
			"server": map[string]any{"host": w.server.Hostname, "port": w.server.Port, "token_id": w.info.TokenID,
				"token_secret": w.info.TokenSecret, "fingerprint": w.info.Fingerprint},
		},
	})
	for i := range 3 {
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
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := conn.Write(append(request, '\n')); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(conn).ReadBytes('\n')
		conn.Close()
		if err != nil {
			t.Fatalf("call %d: read answer: %v", i, err)
		}
		var l rpcLine
		if err := json.Unmarshal(line, &l); err != nil || l.Error != nil {
			t.Fatalf("call %d: answer %s (err %v)", i, line, err)
		}
	}
	if n := w.sim.Connections(); n != 1 {
		t.Errorf("three server.options calls to the warm process opened %d connections to Proxmox, want 1", n)
	}
}
