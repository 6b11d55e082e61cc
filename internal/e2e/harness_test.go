package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/dbtest"
	"github.com/pvekeep/pvekeep/internal/pvesim"
	"github.com/pvekeep/pvekeep/internal/seed"
)

var (
	binary  string // the pvekeep binary under test
	repoDir string // the checkout: hooks/, cronjob/, lang/
)

func TestMain(m *testing.M) {
	_, file, _, _ := runtime.Caller(0)
	repoDir = filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	binary = os.Getenv("PVEKEEP_BIN")
	cleanup := func() {}
	if binary == "" {
		dir, err := os.MkdirTemp("", "pvekeep-e2e-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		cleanup = func() { os.RemoveAll(dir) }
		binary = filepath.Join(dir, "pvekeep")
		build := exec.Command("go", "build", "-o", binary, "./plugin")
		build.Dir = repoDir
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build pvekeep:", err)
			cleanup()
			os.Exit(1)
		}
	}
	code := m.Run()
	closeBrowser()
	cleanup()
	os.Exit(code)
}

// requirePHP skips without php-cli, unless CI disallows skipping.
func requirePHP(t testing.TB) string {
	t.Helper()
	php, err := exec.LookPath("php")
	if err != nil {
		if os.Getenv("PVEKEEP_TEST_DISALLOW_SKIP") == "1" {
			t.Fatalf("php-cli is required: %v", err)
		}
		t.Skip("php-cli not installed")
	}
	return php
}

// world is one test's panel: a database with WHMCS rows, a simulator and
// the module PHP ready to run.
type world struct {
	t      testing.TB
	phpBin string
	db     *dbtest.DB
	sim    *pvesim.Sim
	info   pvesim.Info
	seed   *seed.Seeder
	server seed.Server
	srvID  int64
	modLog string
	env    []string // extra environment for every PHP run (PVEKEEP_CONFIG…)
}

// sub is w for a subtest: the same database and simulator, failing t.
// Subtests sharing a world keep to their own customers and VMs.
func (w *world) sub(t testing.TB) *world {
	c := *w
	c.t = t
	return &c
}

// customer is one client with one service bound to a VM.
type customer struct {
	clientID, serviceID, productID int64
	vmid                           int
}

func newWorld(t testing.TB) *world {
	t.Helper()
	return newWorldAt(t, 60)
}

// newWorldAt is newWorld with the simulator running speed times faster
// than Proxmox (60: a 10 GiB backup takes about a second).
func newWorldAt(t testing.TB, speed float64) *world {
	t.Helper()
	php := requirePHP(t)
	db := dbtest.New(t)
	sim := pvesim.New(pvesim.Options{Nodes: 2, VMs: 6, Speed: speed, Logger: slog.New(slog.DiscardHandler)})
	info, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatalf("start simulator: %v", err)
	}
	t.Cleanup(func() { sim.Close() })
	w := &world{t: t, phpBin: php, db: db, sim: sim, info: info, seed: seed.New(db.Store.DB(), time.Now().UTC()),
		modLog: filepath.Join(t.TempDir(), "modulelog.jsonl")}
	host, port := hostPort(t, info.URL)
	w.server = seed.Server{Name: "pve-sim", Hostname: host, Port: port, Username: info.TokenID, Password: info.TokenSecret,
		AccessHash: info.Fingerprint}
	w.srvID, err = w.seed.Server(context.Background(), w.server)
	if err != nil {
		t.Fatalf("seed server: %v", err)
	}
	return w
}

// newCustomer seeds a client, a product with the given backups quota and an
// Active service bound to vmid.
func (w *world) newCustomer(vmid, backupsQuota int) customer {
	w.t.Helper()
	return w.newCustomerSpeaking(vmid, backupsQuota, "")
}

// newCustomerSpeaking is newCustomer for a client whose tblclients.language
// is language ("" = the panel's default).
func (w *world) newCustomerSpeaking(vmid, backupsQuota int, language string) customer {
	w.t.Helper()
	ctx := context.Background()
	clientID, err := w.seed.Client(ctx, seed.Client{FirstName: "Client", LastName: fmt.Sprint(vmid), Email: fmt.Sprintf("c%d@example.test", vmid), Language: language})
	if err != nil {
		w.t.Fatalf("seed client: %v", err)
	}
	productID, err := w.seed.Product(ctx, seed.Product{Name: fmt.Sprintf("KVM %d", vmid), BackupStorage: "backup", BackupsQuota: backupsQuota, SnapshotsQuota: 2})
	if err != nil {
		w.t.Fatalf("seed product: %v", err)
	}
	serviceID, err := w.seed.Service(ctx, seed.Service{ClientID: clientID, ProductID: productID, ServerID: w.srvID,
		Domain: fmt.Sprintf("vm%d.example.test", vmid), VMID: fmt.Sprint(vmid)})
	if err != nil {
		w.t.Fatalf("seed service: %v", err)
	}
	return customer{clientID: clientID, serviceID: serviceID, productID: productID, vmid: vmid}
}

// params are the $params WHMCS hands the module for c's service: userid is
// always the service's owner, whoever is logged in.
func (w *world) params(c customer) map[string]any {
	return map[string]any{
		"serviceid": c.serviceID, "userid": c.clientID, "pid": c.productID, "serverid": w.srvID,
		"moduletype": "pvekeep", "serverhostname": w.server.Hostname, "serverport": w.server.Port,
		"serversecure": false, "serverusername": w.info.TokenID, "serverpassword": w.info.TokenSecret,
		"serveraccesshash": w.info.Fingerprint,
	}
}

func (w *world) cronServers() []map[string]any {
	return []map[string]any{{
		"id": w.srvID, "hostname": w.server.Hostname, "port": w.server.Port, "username": w.info.TokenID,
		"password": w.info.TokenSecret, "accesshash": w.info.Fingerprint, "secure": "",
	}}
}

// outcome is what the PHP driver printed.
type outcome struct {
	Result         json.RawMessage `json:"result"`
	Error          *rpcError       `json:"error"`
	TransportError string          `json:"transport_error"`
	Stderr         string          `json:"stderr"`
}

type rpcError struct {
	Code    int64          `json:"code"`
	Message string         `json:"message"`
	Data    map[string]any `json:"data"`
}

// php runs one module entry point through hooks/tests/e2e/driver.php.
func (w *world) php(cmd map[string]any) outcome {
	w.t.Helper()
	raw, _ := json.Marshal(cmd)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, w.phpBin, filepath.Join(repoDir, "hooks", "tests", "e2e", "driver.php"), string(raw))
	c.Env = append(os.Environ(), "PVEKEEP_BIN="+binary, "PVEKEEP_DSN="+w.db.DSN, "PVEKEEP_MODULE_LOG="+w.modLog)
	c.Env = append(c.Env, w.env...)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		w.t.Fatalf("php driver %s: %v\nstdout: %s\nstderr: %s", raw, err, stdout.String(), stderr.String())
	}
	var out outcome
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		w.t.Fatalf("php driver printed %q: %v (stderr: %s)", stdout.String(), err, stderr.String())
	}
	if out.TransportError != "" && cmd["transport_error_expected"] != true {
		w.t.Fatalf("php driver: transport error %s; plugin stderr: %s", out.TransportError, out.Stderr)
	}
	return out
}

// call runs one JSON-RPC method through the module's pvekeep_call, with
// asClient logged in.
func (w *world) call(c customer, asClient int64, method string, fields map[string]any) outcome {
	w.t.Helper()
	if fields == nil {
		fields = map[string]any{}
	}
	return w.php(map[string]any{"do": "call", "method": method, "params": w.params(c), "fields": fields, "session_uid": asClient})
}

// mustCall is call that fails the test on an error answer, decoding the result.
func (w *world) mustCall(c customer, method string, fields map[string]any, v any) {
	w.t.Helper()
	out := w.call(c, c.clientID, method, fields)
	if out.Error != nil {
		w.t.Fatalf("%s: error %d %s %v", method, out.Error.Code, out.Error.Message, out.Error.Data)
	}
	if err := json.Unmarshal(out.Result, v); err != nil {
		w.t.Fatalf("%s: decode %s: %v", method, out.Result, err)
	}
}

// button presses a client-area button (a module custom function).
func (w *world) button(c customer, function string, post map[string]any) string {
	w.t.Helper()
	out := w.php(map[string]any{"do": "button", "function": function, "params": w.params(c), "post": post, "session_uid": c.clientID})
	var s string
	if err := json.Unmarshal(out.Result, &s); err != nil {
		w.t.Fatalf("button %s returned %s", function, out.Result)
	}
	return s
}

func (w *world) tick(budget float64) {
	w.t.Helper()
	out := w.php(map[string]any{"do": "cron", "servers": w.cronServers(), "budget": budget})
	if out.Error != nil {
		w.t.Fatalf("cron.tick: %d %s", out.Error.Code, out.Error.Message)
	}
}

type job struct {
	ID          int64  `json:"id"`
	Kind        string `json:"kind"`
	State       string `json:"state"`
	ProgressPct int    `json:"progress_pct"`
	Error       string `json:"error"`
	BackupID    int64  `json:"backup_id"`
}

type backupList struct {
	Quota struct {
		Used int `json:"used"`
		Max  int `json:"max"`
	} `json:"quota"`
	Items     []backupItem `json:"items"`
	ActiveJob *job         `json:"active_job"`
}

type backupItem struct {
	ID        int64  `json:"id"`
	CreatedAt string `json:"created_at"`
	Note      string `json:"note"`
	SizeBytes int64  `json:"size_bytes"`
	Status    string `json:"status"`
	Origin    string `json:"origin"`
}

// follow ticks the panel cron until the job ends, returning the job and
// every progress value seen on the way.
func (w *world) follow(c customer, jobID int64) (job, []int) {
	w.t.Helper()
	var seen []int
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		w.tick(0.2)
		var got struct {
			Job job `json:"job"`
		}
		w.mustCall(c, "jobs.get", map[string]any{"job_id": jobID}, &got)
		seen = append(seen, got.Job.ProgressPct)
		if got.Job.State != "queued" && got.Job.State != "running" {
			return got.Job, seen
		}
	}
	w.t.Fatalf("job %d did not finish within 2 minutes", jobID)
	return job{}, nil
}

func (w *world) activeJob(c customer) *job {
	w.t.Helper()
	var l backupList
	w.mustCall(c, "backups.list", nil, &l)
	return l.ActiveJob
}

func (w *world) jobCount(serviceID int64) int {
	w.t.Helper()
	var n int
	if err := w.db.Store.DB().QueryRow("SELECT COUNT(*) FROM mod_pvekeep_jobs WHERE service_id = ?", serviceID).Scan(&n); err != nil {
		w.t.Fatalf("count jobs: %v", err)
	}
	return n
}

func hostPort(t testing.TB, url string) (string, int) {
	t.Helper()
	rest := strings.TrimPrefix(url, "https://")
	hp := rest[:strings.Index(rest, "/")]
	i := strings.LastIndex(hp, ":")
	var port int
	fmt.Sscan(hp[i+1:], &port)
	return hp[:i], port
}
