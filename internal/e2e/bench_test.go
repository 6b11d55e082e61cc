package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// The round-trip benchmarks print figures (make bench); nothing asserts on
// them: these machines are too noisy for timed assertions.

func listParams(w *world, c customer) map[string]any {
	var req map[string]any
	_ = json.Unmarshal([]byte(listRequest(w, c, 1)), &req)
	return req["params"].(map[string]any)
}

// phpBench runs hooks/tests/e2e/bench.php and reports its percentiles.
func phpBench(b *testing.B, w *world, mode, socket string, params map[string]any) {
	raw, _ := json.Marshal(map[string]any{"mode": mode, "n": b.N, "socket": socket, "params": params})
	cmd := exec.Command(w.phpBin, filepath.Join(repoDir, "hooks", "tests", "e2e", "bench.php"), string(raw))
	cmd.Env = append(os.Environ(), "PVEKEEP_BIN="+binary, "PVEKEEP_DSN="+w.db.DSN)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	b.ResetTimer()
	if err := cmd.Run(); err != nil {
		b.Fatalf("bench.php: %v: %s", err, errb.String())
	}
	b.StopTimer()
	var r struct {
		P50 float64 `json:"p50_ms"`
		P99 float64 `json:"p99_ms"`
	}
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		b.Fatalf("bench.php printed %q: %v", out.String(), err)
	}
	b.ReportMetric(r.P50, "p50-ms")
	b.ReportMetric(r.P99, "p99-ms")
}

// BenchmarkBackupsListPHPSpawn: PHP spawning `pvekeep serve` per call.
func BenchmarkBackupsListPHPSpawn(b *testing.B) {
	w := newWorld(b)
	c := w.newCustomer(100, 3)
	phpBench(b, w, "spawn", "", listParams(w, c))
}

// BenchmarkBackupsListPHPSocket: PHP over one warm unix socket connection.
func BenchmarkBackupsListPHPSocket(b *testing.B) {
	w := newWorld(b)
	c := w.newCustomer(100, 3)
	sock := filepath.Join(b.TempDir(), "pvekeep.sock")
	ctx, cancel := context.WithCancel(context.Background())
	srv := exec.CommandContext(ctx, binary, "serve", "--listen", "unix:"+sock)
	srv.Env = append(os.Environ(), "PVEKEEP_DSN="+w.db.DSN)
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { cancel(); _ = srv.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			break
		}
	}
	phpBench(b, w, "socket", sock, listParams(w, c))
}

// BenchmarkFloorProxmoxGetPlusQuery: the least a call touching both
// Proxmox and the database can cost: one GET through the gateway
// (go-proxmox) to the simulator and one indexed query.
func BenchmarkFloorProxmoxGetPlusQuery(b *testing.B) {
	w := newWorld(b)
	c := w.newCustomer(100, 3)
	ctx := context.Background()
	host, port := hostPort(b, w.info.URL)
	cl, err := pve.Connect(ctx, pve.Config{Host: host, Port: port, TokenID: w.info.TokenID,
		TokenSecret: w.info.TokenSecret, Fingerprint: w.info.Fingerprint})
	if err != nil {
		b.Fatal(err)
	}
	times := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := cl.VMStatus(ctx, "pve1", 100); err != nil {
			b.Fatal(err)
		}
		if _, err := w.db.Store.Backups(ctx, pvekeep.ServiceID(c.serviceID)); err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(t0))
	}
	b.StopTimer()
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	ms := func(q float64) float64 {
		return float64(times[min(len(times)-1, int(q*float64(len(times))))].Microseconds()) / 1000
	}
	b.ReportMetric(ms(0.50), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
}
