package service

import (
	"context"

	"github.com/pvekeep/pvekeep/internal/plan"
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
	VMID      pvekeep.VMID
	Node      string
	Power     string // running, stopped, paused…
	Lock      Lock
	Backups   Usage
	Snapshots Usage
	ActiveJob *pvekeep.Job
}

// Status reports where the VM runs, whether it is busy and the quotas, so
// the panel can grey out its own buttons while the VM is locked.
func (s *Service) Status(ctx context.Context, c Call) (Status, error) {
	f, err := s.authorize(ctx, c, read)
	if err != nil {
		return Status{}, err
	}
	pl, err := plan.FromFacts(f)
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

	pc, err := s.connect(ctx, c.Server)
	if err != nil {
		return Status{}, err
	}
	ref, err := s.locate(ctx, pc, f.VMID)
	if err != nil {
		return Status{}, err
	}
	out.Node = ref.Node
	st, err := pc.VMStatus(ctx, ref.Node, f.VMID)
	if err != nil {
		return Status{}, pveError("read vm status", err)
	}
	out.Power = st.Status
	if !out.Lock.Locked && st.Lock != "" {
		out.Lock = Lock{Locked: true, Reason: st.Lock}
	}
	return out, nil
}
