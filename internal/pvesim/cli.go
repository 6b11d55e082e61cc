package pvesim

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
)

// ErrUsage marks a command line Main cannot act on; callers map it to
// their usage exit code.
var ErrUsage = errors.New("usage")

// Main runs "pvekeep sim": it starts a simulator, prints exactly one JSON
// line with its Info on stdout, logs to stderr, and serves until ctx is
// cancelled. args are the flags after the subcommand name.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "address to serve HTTPS on")
	nodes := fs.Int("nodes", 1, "number of cluster nodes (pve1…pveN)")
	vms := fs.Int("vms", 3, "number of VMs (vmids 100…), spread round-robin over the nodes")
	speed := fs.Float64("speed", 1, "time multiplier: 1 = realistic task durations, 20 = twenty times faster")
	tokenID := fs.String("token-id", "", "API token id to accept (default root@pam!pvekeep)")
	tokenSecret := fs.String("token-secret", "", "API token secret to accept (default random)")
	password := fs.String("password", "", "root@pam password for ticket login (default random)")
	verbose := fs.Bool("v", false, "log every API request")
	var newestOnly []string
	fs.Func("newest-only-rollback", "disk storage that rolls back only to a volume's newest snapshot, as ZFS (repeatable; e.g. local-lvm)", func(v string) error {
		if _, ok := findStorage(v); !ok {
			return fmt.Errorf("no storage %q", v)
		}
		newestOnly = append(newestOnly, v)
		return nil
	})
	allowRemote := fs.Bool("allow-remote", false, "listen on a non-loopback address (the /_sim control surface has no authentication)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: sim: %v", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: sim: unexpected arguments: %v", ErrUsage, fs.Args())
	}
	if *nodes < 1 || *vms < 0 || *speed <= 0 {
		return fmt.Errorf("%w: sim: need --nodes ≥ 1, --vms ≥ 0 and --speed > 0", ErrUsage)
	}
	if !*allowRemote && !loopback(*listen) {
		return fmt.Errorf("%w: sim: --listen %s is not a loopback address; anyone reaching it could inject faults through /_sim (pass --allow-remote to mean it)", ErrUsage, *listen)
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})).With("service", "pvesim")
	sim := New(Options{
		Nodes: *nodes, VMs: *vms, Speed: *speed,
		TokenID: *tokenID, TokenSecret: *tokenSecret, Password: *password,
		Logger: logger, NewestOnlyRollback: newestOnly,
	})
	info, err := sim.Start(*listen)
	if err != nil {
		return fmt.Errorf("start simulator: %w", err)
	}
	line, err := json.Marshal(info)
	if err != nil {
		_ = sim.Close()
		return fmt.Errorf("encode info: %w", err)
	}
	if _, err := fmt.Fprintf(stdout, "%s\n", line); err != nil {
		_ = sim.Close()
		return fmt.Errorf("write info: %w", err)
	}
	<-ctx.Done()
	logger.Info("pvesim stopping")
	if err := sim.Close(); err != nil {
		return fmt.Errorf("close simulator: %w", err)
	}
	return nil
}

// loopback reports whether a listen address stays on this host.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
