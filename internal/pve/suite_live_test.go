package pve_test

import (
	"testing"

	"github.com/pvekeep/pvekeep/internal/pve/pvetest"
)

// TestSuiteLive runs the conformance suite against a real Proxmox VE when
// PVEKEEP_TEST_PVE_URL and a token are set; when they are not, it skips
// only if that absence was declared or skipping is allowed (pvetest.LiveEnv).
func TestSuiteLive(t *testing.T) {
	env := pvetest.LiveEnv(t)
	s := &pvetest.Suite{NewEnv: func(*testing.T) pvetest.Env { return env }}
	s.RunTests(t)
}
