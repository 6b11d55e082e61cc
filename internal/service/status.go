package service

import (
	"context"
	"errors"

	"github.com/pvekeep/pvekeep/internal/plan"
	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// Lock is what service.status says about the VM being busy.
type Lock struct {
	Locked bool
	Reason string // Proxmox's lock name, or the running job's
	JobID  pvekeep.JobID
}

// Status is what service.status returns.
type Status struct {
	VMID  pvekeep.VMID
	Node  string
	Power string // running, stopped, paused…, or PowerMissing / PowerUnknown
	Lock  Lock
	// ProxmoxError says why Power is PowerMissing or PowerUnknown.
	ProxmoxError *pvekeep.Error
	Backups      Usage
	Snapshots    Usage
	ActiveJob    *pvekeep.Job
}

// Power values for a VM Proxmox could not report on.
const (
	PowerMissing = "missing" // no VM with the service's vmid on the cluster
	PowerUnknown = "unknown" // Proxmox could not be asked
)

// Status reports where the VM runs, whether it is busy and the quotas, so
// the panel can grey out its own buttons while the VM is locked.
func (s *Service) Status(ctx context.Context, c Call) (Status, error) {
	f, err := s.authorize(ctx, c, read)
	if err != nil {
		return Status{}, err
	}
	pl, err := plan.QuotasFromFacts(f)
	if err != nil {
		return Status{}, err
	}
	out := Status{VMID: f.VMID, Backups: Usage{Max: pl.BackupsMax}, Snapshots: Usage{Max: pl.SnapshotsMax}}

	items, err := s.st.Backups(ctx, f.ServiceID, listed...)
	if err != nil {
		return Status{}, dbError(err)
	}
	out.Backups.Used = usedSlots(items)
	if j, ok, err := s.st.ActiveJob(ctx, f.ServiceID); err != nil {
		return Status{}, dbError(err)
	} else if ok {
		out.ActiveJob = &j
		out.Lock = Lock{Locked: true, Reason: lockName(j.Kind), JobID: j.ID}
	}

	// The database's view (a running job's lock, the quotas) holds even
	// when Proxmox cannot say anything: mid-reinstall the VM does not
	// exist, and the panel's hooks must still see the lock.
	_, ref, st, err := s.vmState(ctx, c.Server, f.VMID)
	if err != nil {
		e, ok := pvekeep.AsError(err)
		if !ok || e.Reason == pvekeep.ReasonInvalidInput {
			return Status{}, err // the panel's own settings are wrong
		}
		out.Power, out.ProxmoxError = PowerUnknown, e
		if errors.Is(err, pve.ErrNotFound) {
			out.Power = PowerMissing
		}
		return out, nil
	}
	out.Node, out.Power = ref.Node, st.Status
	if !out.Lock.Locked && st.Lock != "" {
		out.Lock = Lock{Locked: true, Reason: st.Lock}
	}
	return out, nil
}

// vmState connects to the call's Proxmox, finds the VM's node and reads
// its status.
func (s *Service) vmState(ctx context.Context, srv pvekeep.Server, vmid pvekeep.VMID) (pve.Cluster, pve.VMRef, pve.VMStatus, error) {
	pc, err := s.connect(ctx, srv)
	if err != nil {
		return nil, pve.VMRef{}, pve.VMStatus{}, err
	}
	ref, err := s.locate(ctx, pc, vmid)
	if err != nil {
		return nil, ref, pve.VMStatus{}, err
	}
	st, err := pc.VMStatus(ctx, ref.Node, vmid)
	if err != nil {
		return nil, ref, st, pveError("read vm status", err)
	}
	return pc, ref, st, nil
}
