package pve_test

import (
	"testing"

	"github.com/pvekeep/pvekeep/internal/pve/pvetest"
)

// TestSuiteLive runs the conformance suite against a real Proxmox VE when
// PVEKEEP_TEST_PVE_URL and a token are set (see pvetest's package doc).
func TestSuiteLive(t *testing.T) {
	env := pvetest.LiveEnv(t)
	s := &pvetest.Suite{NewEnv: func(*testing.T) pvetest.Env { return env }}
	s.RunTests(t)
}
