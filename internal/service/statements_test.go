package service_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/service"
	"github.com/pvekeep/pvekeep/internal/store"
)

// MySQL client protocol commands (the first payload byte of a packet
// whose sequence number is 0).
const (
	comQuery       = 0x03
	comPing        = 0x0e
	comStmtPrepare = 0x16
	comStmtExecute = 0x17
	comStmtClose   = 0x19
)

// wire counts what the store sends the database server, read off the
// connection itself: every command packet, so a statement prepared,
// executed and closed counts three times, as it costs.
type wire struct {
	mu       sync.Mutex
	commands []string // "query: SELECT …", "prepare: …", "execute", …
}

func (w *wire) record(payload []byte) {
	if len(payload) == 0 {
		return
	}
	text := func() string {
		s := strings.Join(strings.Fields(string(payload[1:])), " ")
		if len(s) > 90 {
			s = s[:90] + "…"
		}
		return s
	}
	var c string
	switch payload[0] {
	case comQuery:
		c = "query: " + text()
	case comStmtPrepare:
		c = "prepare: " + text()
	case comStmtExecute:
		c = "execute"
	case comStmtClose:
		c = "close"
	case comPing:
		c = "ping"
	default:
		c = fmt.Sprintf("command 0x%02x", payload[0])
	}
	w.mu.Lock()
	w.commands = append(w.commands, c)
	w.mu.Unlock()
}

// take returns the commands recorded since the last take.
func (w *wire) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.commands
	w.commands = nil
	return out
}

// countingConn splits what the driver writes into packets (3-byte
// length, 1-byte sequence number, payload) and records each command.
type countingConn struct {
	net.Conn
	w   *wire
	buf []byte
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.buf = append(c.buf, p...)
	for len(c.buf) >= 4 {
		n := int(c.buf[0]) | int(c.buf[1])<<8 | int(c.buf[2])<<16
		if len(c.buf) < 4+n {
			break
		}
		if c.buf[3] == 0 {
			c.w.record(c.buf[4 : 4+n])
		}
		c.buf = c.buf[4+n:]
	}
	return c.Conn.Write(p)
}

var wireNets atomic.Int64

// countingStore opens a store on dsn whose every connection is counted.
func countingStore(t testing.TB, dsn string) (*store.Store, *wire) {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	must(t, err)
	if cfg.TLS != nil {
		t.Skip("the statement count reads the wire: needs a connection without TLS")
	}
	w := &wire{}
	network, addr := cfg.Net, cfg.Addr
	name := fmt.Sprintf("pvekeep-count-%d", wireNets.Add(1))
	mysql.RegisterDialContext(name, func(ctx context.Context, _ string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countingConn{Conn: conn, w: w}, nil
	})
	cfg.Net = name
	st, err := store.Connect(cfg.FormatDSN(), slog.New(slog.DiscardHandler))
	must(t, err)
	t.Cleanup(func() { st.Close() })
	return st, w
}

// Statements one page view (backups.list) may send the database:
// the service with its product, custom field and configurable options;
// the jobs that matter to the page; the VM's cached facts; the backups;
// the snapshots (issue 8: the page shows them too, and a second plugin
// call would cost a process start); the backup schedule with its latest
// run (issue 9: the schedule card, and why the last scheduled backup was
// skipped or failed). Each is one text query (interpolateParams): no
// prepare/execute/close round trips. A change that adds one must say why
// here.
const pageViewStatements = 6

// One client page view costs a fixed, small number of statements, each a
// single round trip, however many backups and jobs the service has; a
// spawned process adds one (the migration check). Counts, not times:
// `make bench` prints the times.
func TestBackupsListSendsAFixedNumberOfStatements(t *testing.T) {
	t.Parallel()
	b := setup(t, 5)
	ctx := context.Background()
	for i := range 2 {
		_, err := b.svc.CreateBackup(ctx, b.call(), fmt.Sprintf("b%d", i), "")
		must(t, err)
		b.drain(t)
	}
	_, err := b.svc.Tick(ctx, []pvekeep.Server{b.server}, 0)
	must(t, err)

	st, w := countingStore(t, b.db.DSN)
	deps := b.deps
	deps.Store = st
	svc := service.New(deps, b.cfg)

	// A spawned process: a fresh pool, the migration check, one call.
	if _, err := st.EnsureMigrated(ctx); err != nil {
		t.Fatal(err)
	}
	l, err := svc.ListBackups(ctx, b.call())
	must(t, err)
	if len(l.Items) != 2 || l.Status.CheckedAt == nil || l.Status.Backups.Max != 5 {
		t.Fatalf("backups.list = %d items, checked_at %v, quota %+v; want 2, set, max 5", len(l.Items), l.Status.CheckedAt, l.Status.Backups)
	}
	spawned := w.take()

	// The warm socket process: the pool is open.
	_, err = svc.ListBackups(ctx, b.call())
	must(t, err)
	warm := w.take()

	if len(warm) != pageViewStatements {
		t.Errorf("a warm backups.list sent %d commands, want %d:\n  %s", len(warm), pageViewStatements, strings.Join(warm, "\n  "))
	}
	if len(spawned) != pageViewStatements+1 {
		t.Errorf("a spawned process's migration check and backups.list sent %d commands, want %d:\n  %s",
			len(spawned), pageViewStatements+1, strings.Join(spawned, "\n  "))
	}
	for _, c := range append(spawned, warm...) {
		if !strings.HasPrefix(c, "query: ") {
			t.Errorf("backups.list sent %q: every statement should be one text query (interpolateParams)", c)
		}
	}
}
