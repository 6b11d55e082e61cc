package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"

	"github.com/pvekeep/pvekeep/internal/pvesim"
)

// runSim runs the Proxmox VE simulator standalone (DESIGN §8).
func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	err := pvesim.Main(ctx, args, stdout, stderr)
	if errors.Is(err, pvesim.ErrUsage) {
		return usageError{err.Error()}
	}
	return err
}

// hostPort splits the simulator's API URL for the panel's server fields.
func hostPort(raw string) (string, int, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", 0, fmt.Errorf("parse %q: %w", raw, err)
	}
	host, p, err := net.SplitHostPort(u.Host)
	if err != nil {
		return "", 0, fmt.Errorf("parse %q: %w", raw, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("parse %q: %w", raw, err)
	}
	return host, port, nil
}
