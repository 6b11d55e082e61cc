package pve_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pve/pvetest"
	"github.com/pvekeep/pvekeep/internal/pvesim"
)

// Guests over 10,000 VMs on 50 nodes: the one Proxmox question of a cron
// tick's facts refresh (issue 9's Measure), the simulator's answer and
// the gateway's reading of it.
func BenchmarkGuests(b *testing.B) {
	sim := pvesim.New(pvesim.Options{Nodes: 50, VMs: 10000, Speed: 1, Logger: slog.New(slog.DiscardHandler)})
	info, err := sim.Start("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sim.Close() })
	cfg, err := pvetest.ConfigFromURL(info.URL)
	if err != nil {
		b.Fatal(err)
	}
	cfg.TokenID, cfg.TokenSecret, cfg.Fingerprint = info.TokenID, info.TokenSecret, info.Fingerprint
	ctx := context.Background()
	c, err := pve.Connect(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.Guests(ctx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		gs, err := c.Guests(ctx)
		if err != nil || len(gs) < 10000 {
			b.Fatalf("Guests() = %d, %v", len(gs), err)
		}
	}
}
