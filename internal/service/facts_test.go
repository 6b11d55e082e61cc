package service_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/pvesim"
	"github.com/pvekeep/pvekeep/internal/seed"
	"github.com/pvekeep/pvekeep/internal/service"
)

// countingCluster counts what is asked of Proxmox: the cluster-wide guest
// list, and every question about one VM.
type countingCluster struct {
	pve.Cluster
	guests, perVM *atomic.Int32
}

func (c countingCluster) Guests(ctx context.Context) ([]pve.Guest, error) {
	c.guests.Add(1)
	return c.Cluster.Guests(ctx)
}

func (c countingCluster) FindVM(ctx context.Context, vmid pvekeep.VMID) (pve.VMRef, error) {
	c.perVM.Add(1)
	return c.Cluster.FindVM(ctx, vmid)
}

func (c countingCluster) VMStatus(ctx context.Context, node string, vmid pvekeep.VMID) (pve.VMStatus, error) {
	c.perVM.Add(1)
	return c.Cluster.VMStatus(ctx, node, vmid)
}

// proxmoxCalls is a service over b's database whose every Proxmox
// connection is counted: dials, guest lists and per-VM questions.
type proxmoxCalls struct {
	svc                  *service.Service
	dials, guests, perVM atomic.Int32
}

func (b *bundle) countingService(cfg service.Config) *proxmoxCalls {
	pc := &proxmoxCalls{}
	deps := b.deps
	dial := deps.Dial
	deps.Dial = func(ctx context.Context, s pvekeep.Server) (pve.Cluster, error) {
		pc.dials.Add(1)
		c, err := dial(ctx, s)
		if err != nil {
			return nil, err
		}
		return countingCluster{Cluster: c, guests: &pc.guests, perVM: &pc.perVM}, nil
	}
	if cfg.LeaseFor == 0 {
		cfg.LeaseFor = b.cfg.LeaseFor
	}
	pc.svc = service.New(deps, cfg)
	return pc
}

// The page's one call answers from the database even while Proxmox hangs
// on every request: the VM's facts as the last tick saw them, with the
// time it saw them, and never a connection to Proxmox.
func TestBackupsListAnswersFromTheDatabaseWhileProxmoxHangs(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	must(t, b.sim.SetLock(100, "backup"))
	_, err := b.svc.Tick(ctx, []pvekeep.Server{b.server}, 0)
	must(t, err)
	seenAt := b.clock.Now().UTC()
	b.clock.Advance(time.Hour)
	must(t, b.sim.InjectHTTPFault(pvesim.HTTPFault{Delay: time.Hour}))

	pc := b.countingService(service.Config{})
	l, err := pc.svc.ListBackups(ctx, b.call())
	must(t, err)
	if n := pc.dials.Load(); n != 0 {
		t.Errorf("backups.list connected to Proxmox %d times, want never", n)
	}
	st := l.Status
	if st.VMID != 100 || st.Node != "pve1" || st.Power != "running" {
		t.Errorf("status = vmid %d node %q power %q, want the cached 100 on pve1, running", st.VMID, st.Node, st.Power)
	}
	if st.CheckedAt == nil || !st.CheckedAt.Equal(seenAt.Truncate(time.Microsecond)) {
		t.Errorf("checked_at = %v, want the tick's %v", st.CheckedAt, seenAt)
	}
	if !st.Lock.Locked || st.Lock.Reason != "backup" || st.Lock.JobID != 0 {
		t.Errorf("lock = %+v, want Proxmox's cached backup lock", st.Lock)
	}
	if st.Backups.Max != 3 {
		t.Errorf("backup quota = %+v, want max 3", st.Backups)
	}
}

// A VM Proxmox was never asked about is "unknown", with no checked_at.
func TestBackupsListOfAVMNeverSeenSaysUnknown(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	l, err := b.svc.ListBackups(context.Background(), b.call())
	must(t, err)
	if l.Status.Power != service.PowerUnknown || l.Status.CheckedAt != nil || l.Status.Node != "" {
		t.Errorf("status = %+v, want power unknown, no node, no checked_at", l.Status)
	}
}

// The plugin's own job lock is read live from the database, whatever the
// cached facts say.
func TestBackupsListShowsTheRunningJobsLock(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	job, err := b.svc.CreateBackup(ctx, b.call(), "now", "")
	must(t, err)
	l, err := b.svc.ListBackups(ctx, b.call())
	must(t, err)
	if !l.Status.Lock.Locked || l.Status.Lock.JobID != job.ID || l.Status.Lock.Reason != "backup" {
		t.Errorf("lock = %+v, want the backup job %d's", l.Status.Lock, job.ID)
	}
	if l.Status.ActiveJob == nil || l.Status.ActiveJob.ID != job.ID {
		t.Errorf("active job = %+v, want %d", l.Status.ActiveJob, job.ID)
	}
}

// A tick refreshes the facts of every service on a server with one
// /cluster/resources call, never one per VM; a VM the cluster does not
// list is "missing".
func TestTickRefreshesFactsWithOneClusterCallPerServer(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	second, err := b.seed.Service(ctx, seed.Service{ClientID: b.clientID, ProductID: b.productID, ServerID: b.server.ID, VMID: "101"})
	must(t, err)
	gone, err := b.seed.Service(ctx, seed.Service{ClientID: b.clientID, ProductID: b.productID, ServerID: b.server.ID, VMID: "999"})
	must(t, err)
	must(t, b.sim.SetLock(101, "snapshot"))

	pc := b.countingService(service.Config{})
	st, err := pc.svc.Tick(ctx, []pvekeep.Server{b.server}, 0)
	must(t, err)
	if g, v := pc.guests.Load(), pc.perVM.Load(); g != 1 || v != 0 {
		t.Errorf("the tick listed guests %d times and asked per VM %d times, want 1 and 0", g, v)
	}
	if st.FactsRefreshed != 3 {
		t.Errorf("facts refreshed = %d, want 3", st.FactsRefreshed)
	}
	want := map[int64]struct {
		power, lock string
	}{int64(b.service): {"running", ""}, second: {"running", "snapshot"}, gone: {service.PowerMissing, ""}}
	for id, w := range want {
		c := b.call()
		c.ServiceID = pvekeep.ServiceID(id)
		l, err := b.svc.ListBackups(ctx, c)
		must(t, err)
		if l.Status.Power != w.power || l.Status.Lock.Reason != w.lock || l.Status.CheckedAt == nil {
			t.Errorf("service %d: power %q lock %q checked_at %v, want %q %q and a time", id, l.Status.Power, l.Status.Lock.Reason, l.Status.CheckedAt, w.power, w.lock)
		}
	}
}

// service.status asks Proxmox, but no longer than StatusTimeout: while
// Proxmox hangs it answers the facts cached by the last look, with their
// time and the reason.
func TestServiceStatusFallsBackToCachedFactsWhenProxmoxHangs(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	pc := b.countingService(service.Config{StatusTimeout: 300 * time.Millisecond})
	live, err := pc.svc.Status(ctx, b.call())
	must(t, err)
	if live.ProxmoxError != nil || live.Power != "running" || live.CheckedAt == nil {
		t.Fatalf("live status = %+v, want running, checked now", live)
	}
	seenAt := *live.CheckedAt
	b.clock.Advance(time.Hour)
	must(t, b.sim.InjectHTTPFault(pvesim.HTTPFault{Delay: time.Hour}))

	st, err := pc.svc.Status(ctx, b.call())
	must(t, err)
	if st.ProxmoxError == nil || st.ProxmoxError.Reason != pvekeep.ReasonUnavailable {
		t.Errorf("proxmox error = %+v, want unavailable", st.ProxmoxError)
	}
	if st.Power != "running" || st.Node != "pve1" || st.CheckedAt == nil || !st.CheckedAt.Equal(seenAt.Truncate(time.Microsecond)) {
		t.Errorf("status = power %q node %q checked_at %v, want the cached running on pve1 of %v", st.Power, st.Node, st.CheckedAt, seenAt)
	}
}

// An idle tick writes no facts row: it compares Proxmox's answer with the
// stored rows and records only when it asked (one statement), and the
// page reads the facts as of that tick all the same. A VM powered off is
// written by the next tick, and only its row.
func TestIdleTickWritesNoFactsRows(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	other, err := b.seed.Service(ctx, seed.Service{ClientID: b.clientID, ProductID: b.productID, ServerID: b.server.ID, VMID: "101"})
	must(t, err)
	servers := []pvekeep.Server{b.server}
	_, err = b.svc.Tick(ctx, servers, 0) // the first tick writes every row
	must(t, err)
	firstAt := b.clock.Now().UTC()

	st, w := countingStore(t, b.db.DSN)
	deps := b.deps
	deps.Store = st
	svc := service.New(deps, b.cfg)
	factsWrites := func(cmds []string) (rows, sweeps []string) {
		for _, c := range cmds {
			switch {
			case strings.HasPrefix(c, "query: INSERT INTO mod_pvekeep_vm_facts"), strings.HasPrefix(c, "query: UPDATE mod_pvekeep_vm_facts"):
				rows = append(rows, c)
			case strings.Contains(c, "mod_pvekeep_facts_sweeps") && !strings.HasPrefix(c, "query: SELECT"):
				sweeps = append(sweeps, c)
			}
		}
		return rows, sweeps
	}
	page := func(id pvekeep.ServiceID) service.Status {
		t.Helper()
		call := b.call()
		call.ServiceID = id
		l, err := b.svc.ListBackups(ctx, call)
		must(t, err)
		if l.Status.CheckedAt == nil {
			t.Fatalf("service %d: no checked_at", id)
		}
		return l.Status
	}
	storedAt := func(id pvekeep.ServiceID) time.Time {
		t.Helper()
		var at time.Time
		must(t, b.db.Store.DB().QueryRowContext(ctx, "SELECT checked_at FROM mod_pvekeep_vm_facts WHERE service_id = ?", id).Scan(&at))
		return at
	}

	b.clock.Advance(time.Minute)
	w.take()
	stats, err := svc.Tick(ctx, servers, 0)
	must(t, err)
	rows, sweeps := factsWrites(w.take())
	if len(rows) != 0 || len(sweeps) != 1 || stats.FactsRefreshed != 2 {
		t.Errorf("an idle tick wrote facts rows %q and refresh times %q, refreshed %d; want none, one, 2", rows, sweeps, stats.FactsRefreshed)
	}
	idleAt := b.clock.Now().UTC()
	if s := page(b.service); s.Power != "running" || !s.CheckedAt.Equal(idleAt.Truncate(time.Microsecond)) {
		t.Errorf("after the idle tick the page says %s, checked at %v; want running as of %v", s.Power, s.CheckedAt, idleAt)
	}
	if got := storedAt(b.service); !got.Equal(firstAt.Truncate(time.Microsecond)) {
		t.Errorf("the row was rewritten at %v; want it as the first tick wrote it (%v)", got, firstAt)
	}

	b.stopVM(t, 100)
	b.clock.Advance(time.Minute)
	w.take()
	_, err = svc.Tick(ctx, servers, 0)
	must(t, err)
	rows, sweeps = factsWrites(w.take())
	if len(rows) != 1 || len(sweeps) != 1 {
		t.Errorf("the tick after a power-off wrote facts rows %q and refresh times %q; want one of each", rows, sweeps)
	}
	changedAt := b.clock.Now().UTC()
	if s := page(b.service); s.Power != "stopped" || !s.CheckedAt.Equal(changedAt.Truncate(time.Microsecond)) {
		t.Errorf("after the power-off the page says %s, checked at %v; want stopped as of %v", s.Power, s.CheckedAt, changedAt)
	}
	if s := page(pvekeep.ServiceID(other)); s.Power != "running" || !s.CheckedAt.Equal(changedAt.Truncate(time.Microsecond)) {
		t.Errorf("the other service's page says %s, checked at %v; want running as of %v", s.Power, s.CheckedAt, changedAt)
	}
	if got := storedAt(pvekeep.ServiceID(other)); !got.Equal(firstAt.Truncate(time.Microsecond)) {
		t.Errorf("the unchanged row was rewritten at %v; want it as the first tick wrote it (%v)", got, firstAt)
	}
}
