package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/pvekeep/pvekeep/internal/api"
	"github.com/pvekeep/pvekeep/internal/config"
	"github.com/pvekeep/pvekeep/internal/jobs"
	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/service"
	"github.com/pvekeep/pvekeep/internal/store"
)

// app is everything one process serves with.
type app struct {
	table  *api.Table
	svc    *service.Service
	close  func()
	logger *slog.Logger
}

// wire builds the whole stack. A database that cannot be reached does not
// stop a server from starting: it answers every call with a retryable
// `unavailable`, so the panel shows a clear message instead of a crash.
func wire(ctx context.Context, f commonFlags, stderrLogger func(level string) *slog.Logger) (*app, config.Config, error) {
	cfg, err := config.Load(f.config)
	if err != nil {
		return nil, cfg, err
	}
	level := cfg.LogLevel
	if f.logLevel != "" {
		level = f.logLevel
	}
	logger := stderrLogger(level)
	acfg := api.Config{Version: version}
	if f.dsn == "" {
		return nil, cfg, usageError{"no database: set --dsn or PVEKEEP_DSN"}
	}
	st, err := store.Open(ctx, f.dsn, logger)
	if err != nil {
		if errors.Is(err, store.ErrUnavailable) {
			logger.Error("database unavailable", "err", err)
			return &app{table: api.NewUnavailable(err, logger, acfg), close: func() {}, logger: logger}, cfg, nil
		}
		return nil, cfg, fmt.Errorf("open database: %w", err)
	}
	clock := pvekeep.SystemClock{}
	runner := jobs.NewRunner(st, clock, logger, jobs.Config{LeaseFor: cfg.Lease(), PollEvery: cfg.Poll()})
	svc := service.New(st, dialProxmox(logger), runner, clock, logger, service.Config{
		BackupMode: cfg.Backup.Mode, Compress: cfg.Backup.Compress, LeaseFor: cfg.Lease(),
	})
	return &app{
		table:  api.New(svc, svc, logger, acfg),
		svc:    svc,
		close:  func() { _ = st.Close() },
		logger: logger,
	}, cfg, nil
}

func dialProxmox(logger *slog.Logger) service.Dialer {
	return func(ctx context.Context, s pvekeep.Server) (pve.Cluster, error) {
		c := pve.ConfigFromServer(s)
		c.Logger = logger
		return pve.Connect(ctx, c)
	}
}
