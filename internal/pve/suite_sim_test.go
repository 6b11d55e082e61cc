package pve_test

import (
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pve/pvetest"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/pvesim"
)

// TestSuiteSim runs the conformance suite against a fresh simulator per
// test: two nodes (so the wrong-node case runs), the guest 100 on pve1.
func TestSuiteSim(t *testing.T) {
	t.Parallel()
	s := &pvetest.Suite{NewEnv: func(t *testing.T) pvetest.Env {
		sim := pvesim.New(pvesim.Options{Nodes: 2, VMs: 2, Speed: 200})
		info, err := sim.Start("127.0.0.1:0")
		if err != nil {
			t.Fatalf("start simulator: %v", err)
		}
		t.Cleanup(func() { _ = sim.Close() })
		cfg, err := pvetest.ConfigFromURL(info.URL)
		if err != nil {
			t.Fatal(err)
		}
		cfg.TokenID, cfg.TokenSecret, cfg.Fingerprint = info.TokenID, info.TokenSecret, info.Fingerprint
		cfg.PollInterval = 10 * time.Millisecond
		return pvetest.Env{Config: cfg, VMID: 100, Storage: "backup", OtherNode: "pve2", Faults: simFaults{sim},
			Template: pvesim.TemplateVMID, ScratchVMID: 990, ImageStorage: "local-lvm", SharedImageStorage: "san"}
	}}
	s.RunTests(t)
}

// TestSuiteSimPassword runs the suite once more with ticket login.
func TestSuiteSimPassword(t *testing.T) {
	t.Parallel()
	s := &pvetest.Suite{NewEnv: func(t *testing.T) pvetest.Env {
		sim := pvesim.New(pvesim.Options{Nodes: 1, VMs: 1, Speed: 200})
		info, err := sim.Start("127.0.0.1:0")
		if err != nil {
			t.Fatalf("start simulator: %v", err)
		}
		t.Cleanup(func() { _ = sim.Close() })
		cfg, err := pvetest.ConfigFromURL(info.URL)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Username, cfg.Password, cfg.Fingerprint = info.Username, info.Password, info.Fingerprint
		cfg.PollInterval = 10 * time.Millisecond
		return pvetest.Env{Config: cfg, VMID: 100, Storage: "backup", Faults: simFaults{sim},
			Template: pvesim.TemplateVMID, ScratchVMID: 990, ImageStorage: "local-lvm"}
	}}
	s.RunTests(t)
}

// simFaults adapts the simulator's Go fault methods to pvetest.Faults.
type simFaults struct{ s *pvesim.Sim }

func (f simFaults) FailTask(typ string, vmid pvekeep.VMID, exitstatus string) error {
	return f.s.InjectTaskFault(pvesim.TaskFault{Type: typ, VMID: int(vmid), ExitStatus: exitstatus, Count: 1})
}

func (f simFaults) FailHTTP(method, pathRegex string, status, count int) error {
	return f.s.InjectHTTPFault(pvesim.HTTPFault{Method: method, PathRegex: pathRegex, Status: status, Count: count})
}

func (f simFaults) SetLock(vmid pvekeep.VMID, lock string) error { return f.s.SetLock(int(vmid), lock) }

func (f simFaults) Clear() { f.s.ClearFaults() }

// SetNewestOnlyRollback makes the simulator's storage ZFS-like for the
// newest-only rollback test (pvetest.NewestOnlyRollback).
func (f simFaults) SetNewestOnlyRollback(storage string, on bool) error {
	return f.s.SetNewestOnlyRollback(storage, on)
}

var _ pvetest.NewestOnlyRollback = simFaults{}

var _ pve.Cluster = (*pve.Client)(nil)
