package service

import (
	"context"
	"errors"
	"time"

	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/store"
)

// Lock is what service.status says about the VM being busy.
type Lock struct {
	Locked bool
	Reason string // Proxmox's lock name, or the running job's
	JobID  pvekeep.JobID
}

// Status is what service.status returns, and the status backups.list
// carries.
type Status struct {
	VMID  pvekeep.VMID
	Node  string
	Power string // running, stopped, paused…, or PowerMissing / PowerUnknown
	Lock  Lock
	// CheckedAt is when Proxmox last told us Node, Power and its lock; nil
	// when it never did (Power is then PowerUnknown).
	CheckedAt *time.Time
	// ProxmoxError says why Proxmox could not be asked just now (the rest
	// is then the cached facts of CheckedAt).
	ProxmoxError *pvekeep.Error
	Backups      Usage
	Snapshots    Usage
	ActiveJob    *pvekeep.Job
}

// Power values for a VM Proxmox could not report on.
const (
	PowerMissing = "missing" // no VM with the service's vmid on the cluster
	PowerUnknown = "unknown" // Proxmox could not be asked, and never was
)

// defaultStatusTimeout bounds service.status's look at Proxmox.
const defaultStatusTimeout = 3 * time.Second

// Status reports where the VM runs, whether it is busy and the quotas, so
// the panel can grey out its own buttons while the VM is locked (WHMCS's
// PreModule hooks). It asks Proxmox, but for StatusTimeout at most: a
// slow or dead Proxmox gets the cached facts with their CheckedAt and the
// reason in ProxmoxError. The plugin's own job lock and the quotas come
// from the database and hold regardless: mid-reinstall the VM does not
// exist, and the hooks must still see the lock.
func (s *Service) Status(ctx context.Context, c Call) (Status, error) {
	f, err := s.authorize(ctx, c, read)
	if err != nil {
		return Status{}, err
	}
	items, err := s.st.Backups(ctx, f.ServiceID, listed...)
	if err != nil {
		return Status{}, dbError(err)
	}
	out, _, err := s.dbStatus(ctx, f, items, false)
	if err != nil {
		return Status{}, err
	}
	snaps, err := s.snaps.Snapshots(ctx, f.ServiceID, listedSnapshots...)
	if err != nil {
		return Status{}, dbError(err)
	}
	out.Snapshots.Used = len(snaps)

	liveCtx, cancel := context.WithTimeout(ctx, s.cfg.StatusTimeout)
	_, ref, st, err := s.vmState(liveCtx, c.Server, f)
	cancel()
	if err != nil {
		e, ok := pvekeep.AsError(err)
		if !ok || e.Reason == pvekeep.ReasonInvalidInput {
			return Status{}, err // the panel's own settings are wrong
		}
		out.ProxmoxError = e
		if errors.Is(err, pve.ErrNotFound) {
			// vmState cached this: the VM is gone as of now.
			now := s.clock.Now().UTC()
			out.Node, out.Power, out.CheckedAt = "", PowerMissing, &now
			if out.Lock.JobID == 0 {
				out.Lock = Lock{}
			}
		}
		return out, nil
	}
	now := s.clock.Now().UTC()
	out.Node, out.Power, out.CheckedAt = ref.Node, st.Status, &now
	if out.Lock.JobID == 0 {
		out.Lock = Lock{}
		if st.Lock != "" {
			out.Lock = Lock{Locked: true, Reason: st.Lock}
		}
	}
	return out, nil
}

// vmState connects to the call's Proxmox, finds the VM's node and reads
// its status; what it learns (also that the VM is gone) is cached for the
// service's page views.
func (s *Service) vmState(ctx context.Context, srv pvekeep.Server, f pvekeep.ServiceFacts) (pve.Cluster, pve.VMRef, pve.VMStatus, error) {
	pc, err := s.connect(ctx, srv)
	if err != nil {
		return nil, pve.VMRef{}, pve.VMStatus{}, err
	}
	ref, err := s.locate(ctx, pc, f.VMID)
	if err != nil {
		if errors.Is(err, pve.ErrNotFound) {
			s.recordFacts(ctx, store.VMFacts{ServiceID: f.ServiceID, VMID: f.VMID, Power: PowerMissing})
		}
		return nil, ref, pve.VMStatus{}, err
	}
	st, err := pc.VMStatus(ctx, ref.Node, f.VMID)
	if err != nil {
		return nil, ref, st, pveError("read vm status", err)
	}
	s.recordFacts(ctx, store.VMFacts{ServiceID: f.ServiceID, VMID: f.VMID, Node: ref.Node, Power: st.Status, Lock: st.Lock})
	return pc, ref, st, nil
}
