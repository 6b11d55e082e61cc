package service

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pvekeep/pvekeep/internal/plan"
	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/store"
)

// factsStore is where what Proxmox last said about each VM is kept, so
// that a page view answers from the database alone (issue 7, item 7).
type factsStore interface {
	VMFacts(ctx context.Context, id pvekeep.ServiceID) (store.VMFacts, bool, error)
	SaveVMFacts(ctx context.Context, facts ...store.VMFacts) error
	FactsOnServers(ctx context.Context, serverIDs []int64) (map[int64]*store.ServerFacts, error)
	SaveFactsSweep(ctx context.Context, sw store.FactsSweep) error
}

// recordFacts caches what a click just learnt from Proxmox. Best effort:
// the click's answer does not depend on it.
func (s *Service) recordFacts(ctx context.Context, f store.VMFacts) {
	if f.ServiceID <= 0 {
		return
	}
	if f.CheckedAt.IsZero() {
		f.CheckedAt = s.clock.Now().UTC()
	}
	if err := s.facts.SaveVMFacts(ctx, f); err != nil {
		s.logger.Warn("cache vm facts", "service_id", f.ServiceID, "vmid", f.VMID, "err", err)
	}
}

// dbStatus is the service's status as the database knows it: the
// plugin's own job lock (always current), the quotas, and the VM's node,
// power state and Proxmox lock as Proxmox last told them (CheckedAt; nil
// and power "unknown" for a VM never seen). items are the service's listed
// backups. A product whose quota settings cannot be read is an error,
// unless lenient (the admin's view, which must show the rest regardless:
// the quotas' maxima are then 0). It also returns the service's jobs it
// read the lock from (one statement), which the page shows too.
func (s *Service) dbStatus(ctx context.Context, f pvekeep.ServiceFacts, items []pvekeep.Backup, lenient bool) (Status, store.ServiceJobs, error) {
	out := Status{VMID: f.VMID, Power: PowerUnknown}
	pl, err := plan.QuotasFromFacts(f)
	if err != nil && !lenient {
		return Status{}, store.ServiceJobs{}, err
	}
	out.Backups, out.Snapshots = Usage{Max: pl.BackupsMax}, Usage{Max: pl.SnapshotsMax}
	out.Backups.Used = usedSlots(items)
	js, err := s.st.ServiceJobs(ctx, f.ServiceID)
	if err != nil {
		return Status{}, store.ServiceJobs{}, dbError(err)
	}
	if j := js.Active; j != nil {
		out.ActiveJob = j
		out.Lock = Lock{Locked: true, Reason: lockName(j.Kind), JobID: j.ID}
	}
	cached, ok, err := s.facts.VMFacts(ctx, f.ServiceID)
	if err != nil {
		return Status{}, store.ServiceJobs{}, dbError(err)
	}
	if ok && cached.VMID == f.VMID && f.VMID > 0 {
		applyFacts(&out, cached)
	}
	return out, js, nil
}

// applyFacts puts cached facts into a status whose job lock is already set.
func applyFacts(out *Status, f store.VMFacts) {
	at := f.CheckedAt.UTC()
	out.Node, out.Power, out.CheckedAt = f.Node, f.Power, &at
	if !out.Lock.Locked && f.Lock != "" {
		out.Lock = Lock{Locked: true, Reason: f.Lock}
	}
}

// refreshFacts asks each server once for all its guests
// (/cluster/resources) and refreshes the cached facts of every Active or
// Suspended service's VM on it, in one transaction per server that writes
// only the rows whose facts changed and records when the server was asked:
// the rows it left alone are as of then (store.SaveFactsSweep), so an idle
// tick writes one row per server, not one per service. Proxmox is asked
// while the database is read, so the two waits overlap; a server found to
// have no such service has its question cancelled and its answer, or
// failure, ignored. A server that does not answer within FactsTimeout
// keeps its services' older facts (their checked_at says how old). It
// returns how many services were refreshed.
func (s *Service) refreshFacts(ctx context.Context, servers map[int64]pvekeep.Server) int {
	if len(servers) == 0 {
		return 0
	}
	ids := make([]int64, 0, len(servers))
	asks := make(map[int64]*guestsAsk, len(servers))
	for id, srv := range servers {
		ids = append(ids, id)
		asks[id] = s.askGuests(ctx, srv)
	}
	defer func() {
		for _, a := range asks {
			a.cancel()
		}
	}()
	byServer, err := s.facts.FactsOnServers(ctx, ids)
	if err != nil {
		s.logger.Warn("list services to refresh", "err", err)
		return 0
	}
	var (
		wg sync.WaitGroup
		mu sync.Mutex
		n  int
	)
	for id, sf := range byServer {
		if len(sf.Services) == 0 {
			// Nothing to ask Proxmox about; only rows to take the
			// server's credit from, which needs no answer.
			if len(sf.Stale) > 0 {
				s.saveSweep(ctx, servers[id], sf, time.Time{}, nil)
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			got := s.refreshServer(servers[id], sf, asks[id])
			mu.Lock()
			n += got
			mu.Unlock()
		}()
	}
	wg.Wait()
	return n
}

// guestsAsk is one server's /cluster/resources in flight, bounded by
// FactsTimeout; its ctx bounds the saving of what it answered too.
type guestsAsk struct {
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	guests []pve.Guest
	at     time.Time // when the answer came
	err    error     // with the step that failed
}

func (s *Service) askGuests(ctx context.Context, srv pvekeep.Server) *guestsAsk {
	a := &guestsAsk{done: make(chan struct{})}
	a.ctx, a.cancel = context.WithTimeout(ctx, s.cfg.FactsTimeout)
	go func() {
		defer close(a.done)
		pc, err := s.connect(a.ctx, srv)
		if err != nil {
			a.err = fmt.Errorf("connect: %w", err)
			return
		}
		if a.guests, err = pc.Guests(a.ctx); err != nil {
			a.err = fmt.Errorf("list guests: %w", err)
			return
		}
		a.at = s.clock.Now().UTC()
	}()
	return a
}

func (s *Service) refreshServer(srv pvekeep.Server, sf *store.ServerFacts, ask *guestsAsk) int {
	<-ask.done
	if ask.err != nil {
		s.logger.Warn("refresh vm facts", "server_id", srv.ID, "err", ask.err)
		return 0
	}
	byVMID := make(map[pvekeep.VMID]pve.Guest, len(ask.guests))
	for _, g := range ask.guests {
		byVMID[g.VMID] = g
	}
	var changed []store.VMFacts
	for _, sv := range sf.Services {
		f := store.VMFacts{ServiceID: sv.ServiceID, VMID: sv.VMID, Power: PowerMissing, CheckedAt: ask.at}
		if g, ok := byVMID[sv.VMID]; ok {
			f.Node, f.Power, f.Lock = g.Node, g.Status, g.Lock
		}
		if sv.SweptBy != srv.ID || !f.Same(sv.Stored) {
			changed = append(changed, f)
		}
	}
	if !s.saveSweep(ask.ctx, srv, sf, ask.at, changed) {
		return 0
	}
	return len(sf.Services)
}

// saveSweep commits a server's refresh; false when it wrote nothing.
func (s *Service) saveSweep(ctx context.Context, srv pvekeep.Server, sf *store.ServerFacts, at time.Time, changed []store.VMFacts) bool {
	err := s.facts.SaveFactsSweep(ctx, store.FactsSweep{ServerID: srv.ID, Generation: sf.Generation, CheckedAt: at,
		Changed: changed, Stale: sf.Stale})
	switch {
	case errors.Is(err, store.ErrSweepLost):
		// Another tick refreshed the server meanwhile: its facts stand.
		s.logger.Debug("refresh vm facts: another tick saved first", "server_id", srv.ID)
		return false
	case err != nil:
		s.logger.Warn("refresh vm facts: save", "server_id", srv.ID, "err", err)
		return false
	}
	return true
}

// defaultFactsTimeout bounds one server's /cluster/resources in a tick.
const defaultFactsTimeout = 10 * time.Second
