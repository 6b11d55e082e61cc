package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/pvekeep/pvekeep/internal/store"
	"github.com/pvekeep/pvekeep/internal/transport"
)

func isPluginLaunch() bool { return transport.IsPluginLaunch() }

func runServe(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var cf commonFlags
	cf.register(fs)
	listen := fs.String("listen", "", "serve on unix:/path/to.sock instead of stdin/stdout")
	if err := parse(fs, args); err != nil {
		return err
	}
	a, cfg, err := wire(ctx, cf, func(level string) *slog.Logger { return newLogger(stderr, level) })
	if err != nil {
		return err
	}
	defer a.close()

	// Tables first, so that no call meets a schema older than the binary.
	// A spawned process (stdio) tries once: it lives for one request.
	if !a.migrateOnce(ctx) && (*listen != "" || transport.IsPluginLaunch()) {
		go a.keepMigrating(ctx)
	}
	switch {
	case transport.IsPluginLaunch():
		transport.ServePlugin(a.table, a.logger)
		return nil
	case *listen == "":
		return transport.ServeStdio(ctx, stdin, stdout, a.table, a.logger)
	case strings.HasPrefix(*listen, "unix:"):
		path := strings.TrimPrefix(*listen, "unix:")
		a.logger.Info("serving", "socket", path)
		return transport.ServeUnix(ctx, path, a.table, a.logger, transport.UnixConfig{
			MaxConns:     cfg.Serve.MaxConnections,
			ReadTimeout:  seconds(cfg.Serve.ReadTimeoutSeconds),
			WriteTimeout: seconds(cfg.Serve.WriteTimeoutSeconds),
		})
	default:
		return usageError{fmt.Sprintf("serve: --listen %q: only unix:/path is supported", *listen)}
	}
}

func runWorker(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	var cf commonFlags
	cf.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	a, cfg, err := wire(ctx, cf, func(level string) *slog.Logger { return newLogger(stderr, level) })
	if err != nil {
		return err
	}
	defer a.close()
	if len(cfg.Worker.Servers) == 0 {
		return usageError{"worker: the config file lists no [[worker.servers]]"}
	}
	if !a.migrateOnce(ctx) {
		go a.keepMigrating(ctx)
	}
	interval := time.Duration(cfg.Worker.IntervalSeconds * float64(time.Second))
	a.logger.Info("worker started", "servers", len(cfg.Worker.Servers), "interval", interval)
	for {
		st, err := a.svc.Tick(ctx, cfg.Worker.Servers, interval)
		if err != nil {
			a.logger.Warn("tick", "err", err)
		} else if st.Advanced > 0 {
			a.logger.Info("tick", "advanced", st.Advanced, "succeeded", st.Succeeded, "failed", st.Failed)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval / 4):
		}
	}
}

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	var cf commonFlags
	cf.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if cf.dsn == "" {
		return usageError{"migrate: no database: set --dsn or PVEKEEP_DSN"}
	}
	logger := newLogger(stderr, cf.logLevel)
	if err := store.Migrate(ctx, cf.dsn, logger); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "migrations applied")
	return nil
}

func seconds(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
