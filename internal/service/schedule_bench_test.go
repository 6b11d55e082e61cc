package service_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/calendar"
	"github.com/pvekeep/pvekeep/internal/dbtest"
	"github.com/pvekeep/pvekeep/internal/jobs"
	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/seed"
	"github.com/pvekeep/pvekeep/internal/service"
)

// Issue 9's Measure (make bench): one cron tick over 10,000 services on a
// 50-node cluster, idle (no schedule due) and busy (1/7 of the services
// due: one weekday each). It prints wall time, Proxmox calls, database
// statements and the peak heap the tick added; nothing is asserted (these
// machines are too noisy for timed assertions).
//
// The simulator runs as its own process (`pvekeep sim -v`, PVEKEEP_BIN), so
// its memory is not the tick's; its request log counts the Proxmox calls.
// The tick runs in this process over a database connection whose every
// statement is counted (countingStore).

const (
	benchServices = 10000
	benchNodes    = 50
)

// simProcess is `pvekeep sim` in a process of its own, counting the API
// requests it logs.
type simProcess struct {
	info  struct{ URL, TokenID, TokenSecret, Fingerprint string }
	calls atomic.Int64
	mu    sync.Mutex
	paths map[string]int // request kind → count since the last take
	took  time.Duration  // time the simulator spent answering, since the last take
}

func startSim(b *testing.B) *simProcess {
	bin := os.Getenv("PVEKEEP_BIN")
	if bin == "" {
		b.Skip("PVEKEEP_BIN is not set (make bench sets it)")
	}
	cmd := exec.Command(bin, "sim", "--listen", "127.0.0.1:0", "--nodes", strconv.Itoa(benchNodes),
		"--vms", strconv.Itoa(benchServices), "--speed", "1", "-v")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	p := &simProcess{paths: map[string]int{}}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if !strings.Contains(line, "msg=api") {
				continue
			}
			p.mu.Lock()
			p.paths[requestKind(line)]++
			p.took += tookOf(line)
			p.mu.Unlock()
			p.calls.Add(1)
		}
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("pvekeep sim: %v", err)
	}
	var info struct {
		URL         string `json:"url"`
		TokenID     string `json:"token_id"`
		TokenSecret string `json:"token_secret"`
		Fingerprint string `json:"fingerprint"`
	}
	if err := json.Unmarshal([]byte(line), &info); err != nil {
		b.Fatalf("pvekeep sim printed %q: %v", line, err)
	}
	p.info.URL, p.info.TokenID, p.info.TokenSecret, p.info.Fingerprint = info.URL, info.TokenID, info.TokenSecret, info.Fingerprint
	return p
}

// tookOf reads the took= duration of a log line.
func tookOf(line string) time.Duration {
	i := strings.Index(line, " took=")
	if i < 0 {
		return 0
	}
	v := line[i+6:]
	if j := strings.IndexByte(v, ' '); j >= 0 {
		v = v[:j]
	}
	d, _ := time.ParseDuration(v)
	return d
}

// requestKind is "GET /cluster/resources" or "POST /nodes/*/vzdump".
func requestKind(line string) string {
	field := func(k string) string {
		i := strings.Index(line, " "+k+"=")
		if i < 0 {
			return ""
		}
		v := line[i+len(k)+2:]
		if j := strings.IndexByte(v, ' '); j >= 0 {
			v = v[:j]
		}
		return v
	}
	parts := strings.Split(field("path"), "/")
	for i := range parts {
		if i > 0 && parts[i-1] == "nodes" || i > 0 && (parts[i-1] == "tasks" || parts[i-1] == "qemu") {
			parts[i] = "*"
		}
	}
	return field("method") + " " + strings.Join(parts, "/")
}

// settle waits until the simulator has logged every request answered so
// far (its log line follows the answer) and returns the count.
func (p *simProcess) settle() int64 {
	last := p.calls.Load()
	for {
		time.Sleep(50 * time.Millisecond)
		n := p.calls.Load()
		if n == last {
			return n
		}
		last = n
	}
}

func (p *simProcess) takeKinds() (map[string]int, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out, took := p.paths, p.took
	p.paths, p.took = map[string]int{}, 0
	return out, took
}

// heapPeak samples the live heap every millisecond until stop is called,
// which returns the highest value seen above the value at start.
func heapPeak() (stop func() uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	runtime.GC()
	base := read()
	var peak atomic.Uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			if v := read(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		if v := read(); v > peak.Load() {
			peak.Store(v)
		}
		if peak.Load() < base {
			return 0
		}
		return peak.Load() - base
	}
}

func BenchmarkScheduleTick(b *testing.B) {
	sim := startSim(b)
	db := dbtest.New(b)
	ctx := context.Background()
	now := time.Now().UTC()
	sd := seed.New(db.Store.DB(), now)
	u, _ := url.Parse(sim.info.URL)
	port, _ := strconv.Atoi(u.Port())
	srv := pvekeep.Server{Host: u.Hostname(), Port: port, TokenID: sim.info.TokenID, TokenSecret: sim.info.TokenSecret, Fingerprint: sim.info.Fingerprint}
	clientID, err := sd.Client(ctx, seed.Client{})
	mustB(b, err)
	srv.ID, err = sd.Server(ctx, seed.Server{Hostname: srv.Host, Port: port})
	mustB(b, err)
	productID, err := sd.Product(ctx, seed.Product{BackupStorage: "backup", BackupsQuota: 3})
	mustB(b, err)
	seedFleet(b, db, clientID, productID, srv.ID, now)

	st, wire := countingStore(b, db.DSN)
	logger := slog.New(slog.DiscardHandler)
	clock := pvekeep.SystemClock{}
	runner := jobs.NewRunner(st, clock, logger, jobs.Config{})
	pool := pve.NewPool(16)
	b.Cleanup(pool.Close)
	dial := func(ctx context.Context, s pvekeep.Server) (pve.Cluster, error) {
		return pool.Connect(ctx, pve.ConfigFromServer(s))
	}
	svc := service.New(service.Deps{Store: st, Dial: dial, Runner: runner, Clock: clock, Logger: logger}, service.Config{})

	// A first tick fills the VM facts (nodes) and warms the pools, as the
	// cron's earlier runs would have.
	_, err = svc.Tick(ctx, []pvekeep.Server{srv}, 0)
	mustB(b, err)
	sim.settle()
	_, _ = sim.takeKinds()
	wire.take()

	measure := func(b *testing.B, name string) {
		calls0 := sim.calls.Load()
		wire.take()
		stop := heapPeak()
		t0 := time.Now()
		stats, err := svc.Tick(ctx, []pvekeep.Server{srv}, 0)
		wall := time.Since(t0)
		peak := stop()
		mustB(b, err)
		statements := len(wire.take())
		calls := sim.settle() - calls0
		kinds, answering := sim.takeKinds()
		b.ReportMetric(float64(wall.Milliseconds()), "wall-ms")
		b.ReportMetric(float64(calls), "proxmox-calls")
		b.ReportMetric(float64(statements), "db-statements")
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		var ks []string
		for k, n := range kinds {
			ks = append(ks, fmt.Sprintf("%s ×%d", k, n))
		}
		sort.Strings(ks)
		b.ReportMetric(float64(planningTime(stats).Milliseconds()), "scheduling-ms")
		fmt.Printf("schedule tick %s over %d services on %d nodes: %v wall (the simulator answering: %v; planning and dispatching scheduled backups: %v), "+
			"%d Proxmox calls (%s), %d database statements, +%.1f MiB peak heap; runs due %d, dispatched %d\n",
			name, benchServices, benchNodes, wall.Round(time.Millisecond), answering.Round(time.Millisecond), planningTime(stats),
			calls, strings.Join(ks, ", "), statements, float64(peak)/(1<<20), stats.ScheduledDue, stats.ScheduledDispatched)
	}

	b.Run("idle", func(b *testing.B) {
		for range b.N {
			measure(b, "idle")
		}
	})
	// One weekday in seven: today's services become due.
	_, err = db.Store.DB().ExecContext(ctx, `UPDATE mod_pvekeep_schedules SET next_run_at = ? WHERE service_id % 7 = 0`, now.Add(-time.Minute))
	mustB(b, err)
	b.Run("busy", func(b *testing.B) {
		for range b.N {
			measure(b, "busy")
		}
	})
}

// planningTime is the tick's own account of planning and dispatching
// scheduled runs (the rest of a busy tick's wall time is one pass over the
// jobs it dispatched: their vzdumps submitted).
func planningTime(st jobs.Stats) time.Duration {
	return time.Duration(st.SchedulingMillis) * time.Millisecond
}

func mustB(b testing.TB, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}

// seedFleet writes benchServices Active services of one product, bound to
// VMs 100…, each with a schedule of one weekday (service id mod 7) at
// now-1 minute UTC, next run a week on: none due until the busy case
// moves a seventh of them to now. Multi-row statements, a thousand rows
// at a time: seeding one by one would take minutes.
func seedFleet(b *testing.B, db *dbtest.DB, clientID, productID, serverID int64, now time.Time) {
	ctx := context.Background()
	hhmm := now.Add(-time.Minute).Format("15:04")
	date := now.Format("2006-01-02")
	ts := now.Format("2006-01-02 15:04:05")
	next := now.Add(7 * 24 * time.Hour)
	var first int64
	for start := 0; start < benchServices; start += 1000 {
		var sb strings.Builder
		sb.WriteString(`INSERT INTO tblhosting
(userid, orderid, packageid, server, regdate, domain, paymentmethod, firstpaymentamount, amount, billingcycle,
 nextduedate, nextinvoicedate, domainstatus, username, password, notes, subscriptionid, promoid, suspendreason,
 overideautosuspend, overidesuspenduntil, dedicatedip, assignedips, ns1, ns2, created_at, updated_at) VALUES `)
		var args []any
		for i := start; i < min(start+1000, benchServices); i++ {
			if i > start {
				sb.WriteString(", ")
			}
			sb.WriteString("(?, 0, ?, ?, ?, ?, 'banktransfer', 0, 0, 'Monthly', ?, ?, 'Active', 'root', '', '', '', 0, '', 0, '0000-00-00', '', '', '', '', ?, ?)")
			args = append(args, clientID, productID, serverID, date, fmt.Sprintf("vm%d.example.test", 100+i), date, date, ts, ts)
		}
		res, err := db.Store.DB().ExecContext(ctx, sb.String(), args...)
		mustB(b, err)
		if start == 0 {
			first, err = res.LastInsertId()
			mustB(b, err)
		}
	}
	loc, _ := calendar.LoadZone("UTC")
	for start := 0; start < benchServices; start += 1000 {
		var svcSQL, schedSQL strings.Builder
		svcSQL.WriteString("INSERT INTO mod_pvekeep_services (service_id, vmid, created_at, updated_at) VALUES ")
		schedSQL.WriteString(`INSERT INTO mod_pvekeep_schedules (service_id, timezone, sun_enabled, sun_time, mon_enabled, mon_time,
tue_enabled, tue_time, wed_enabled, wed_time, thu_enabled, thu_time, fri_enabled, fri_time, sat_enabled, sat_time,
next_run_at, created_at, updated_at) VALUES `)
		var svcArgs, schedArgs []any
		for i := start; i < min(start+1000, benchServices); i++ {
			id := first + int64(i)
			if i > start {
				svcSQL.WriteString(", ")
				schedSQL.WriteString(", ")
			}
			svcSQL.WriteString("(?, ?, ?, ?)")
			svcArgs = append(svcArgs, id, 100+i, ts, ts)
			// Service ids ≡ 0 mod 7 have today; the others another weekday.
			day := (int(now.In(loc).Weekday()) + int(id%7)) % 7
			schedSQL.WriteString("(?, 'UTC', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
			schedArgs = append(schedArgs, id)
			for d := range 7 {
				schedArgs = append(schedArgs, d == day, hhmm)
			}
			schedArgs = append(schedArgs, next, ts, ts)
		}
		_, err := db.Store.DB().ExecContext(ctx, svcSQL.String(), svcArgs...)
		mustB(b, err)
		_, err = db.Store.DB().ExecContext(ctx, schedSQL.String(), schedArgs...)
		mustB(b, err)
	}
}
