package transport

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
)

// phpScript drives hooks/lib's PvekeepClient: it makes a client from the
// JSON options in argv[1], runs each [method, params] of argv[2] and prints
// one JSON line per call: {"result": …} or {"rpc": {code, message, data,
// reason}} or {"transport": message}.
const phpScript = `<?php
require $argv[1];
$client = new PvekeepClient(json_decode($argv[2], true));
foreach (json_decode($argv[3], true) as [$method, $params]) {
    try {
        $out = ['result' => $client->call($method, $params)];
    } catch (PvekeepRpcException $e) {
        $out = ['rpc' => ['code' => $e->getCode(), 'message' => $e->getMessage(), 'data' => $e->getData(), 'reason' => $e->getReason()]];
    } catch (PvekeepTransportException $e) {
        $out = ['transport' => $e->getMessage()];
    }
    echo json_encode($out), "\n";
}
`

// phpCalls runs the calls through the PHP client and returns its lines.
func phpCalls(t *testing.T, options map[string]any, calls [][2]any) []any {
	t.Helper()
	php, err := exec.LookPath("php")
	if err != nil {
		if os.Getenv("PVEKEEP_TEST_DISALLOW_SKIP") == "1" {
			t.Fatal("php not installed")
		}
		t.Skip("php not installed")
	}
	lib, err := filepath.Abs("../../hooks/lib/Client.php")
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "drive.php")
	if err := os.WriteFile(script, []byte(phpScript), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, _ := json.Marshal(options)
	cs, _ := json.Marshal(calls)
	out, err := exec.Command(php, script, lib, string(opts), string(cs)).Output()
	if err != nil {
		t.Fatalf("php: %v", err)
	}
	return jsonLines(t, string(out))
}

var phpCases = []struct {
	name   string
	method string
	params any
	want   string
}{
	{"result", "echo", map[string]any{"service_id": 42, "note": "é\n\"x\""}, `{"result":{"service_id":42,"note":"é\n\"x\""}}`},
	{"empty params travel as an object", "echo", []any{}, `{"result":[]}`},
	{"application error keeps code, data and reason", "fail", map[string]any{},
		`{"rpc":{"code":1001,"message":"backup not found","data":{"reason":"not_found","what":"backup"},"reason":"not_found"}}`},
	{"unknown method", "nope", map[string]any{}, `{"rpc":{"code":-32601,"message":"Method not found: nope","data":[],"reason":""}}`},
}

func TestPHPClientTalksToServeStdio(t *testing.T) {
	t.Parallel()
	calls := make([][2]any, 0, len(phpCases))
	for _, c := range phpCases {
		calls = append(calls, [2]any{c.method, c.params})
	}
	got := phpCalls(t, map[string]any{
		"mode": "spawn", "binary": os.Args[0], "args": []string{"-test.run=^$"},
		"env": map[string]string{helperEnv: "stdio"}, "timeout": 20,
	}, calls)
	checkPHPCases(t, got)
}

func TestPHPClientTalksToServeUnix(t *testing.T) {
	t.Parallel()
	path, _ := startUnix(t, &fakeHandler{})
	calls := make([][2]any, 0, len(phpCases))
	for _, c := range phpCases {
		calls = append(calls, [2]any{c.method, c.params})
	}
	checkPHPCases(t, phpCalls(t, map[string]any{"socket": "unix:" + path, "timeout": 20}, calls))
}

func checkPHPCases(t *testing.T, got []any) {
	t.Helper()
	if len(got) != len(phpCases) {
		t.Fatalf("got %d answers, want %d: %v", len(got), len(phpCases), got)
	}
	for i, c := range phpCases {
		if want := mustJSON(t, c.want); !reflect.DeepEqual(got[i], want) {
			t.Errorf("%s: got %v, want %v", c.name, got[i], want)
		}
	}
}
