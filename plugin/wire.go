package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/pvekeep/pvekeep/internal/api"
	"github.com/pvekeep/pvekeep/internal/config"
	"github.com/pvekeep/pvekeep/internal/jobs"
	"github.com/pvekeep/pvekeep/internal/mail"
	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/service"
	"github.com/pvekeep/pvekeep/internal/store"
	"github.com/pvekeep/pvekeep/lang"
	"github.com/pvekeep/pvekeep/templates"
)

// app is everything one process serves with.
type app struct {
	table  *api.Table
	svc    *service.Service
	st     *store.Store
	close  func()
	logger *slog.Logger
}

// wire builds the whole stack. A database that cannot be reached does not
// stop a server from starting: it answers every call that needs it with a
// retryable `unavailable`, so the panel shows a clear message instead of a
// crash, and recovers by itself when the database is back.
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
	// Connect does not need the server up: calls made while it is down
	// answer a retryable `unavailable`, and the pool recovers on its own.
	st, err := store.Connect(f.dsn, logger)
	if err != nil {
		return nil, cfg, usageError{fmt.Sprintf("bad database DSN: %v", err)}
	}
	clock := pvekeep.SystemClock{}
	runner := jobs.NewRunner(st, clock, logger, jobs.Config{LeaseFor: cfg.Lease(), PollEvery: cfg.Poll()})
	m, err := newMailer(cfg.SMTP, logger)
	if err != nil {
		_ = st.Close()
		return nil, cfg, err
	}
	svc := service.New(service.Deps{
		Store: st, Dial: dialProxmox(logger), Runner: runner, Mailer: m, Clock: clock, Logger: logger,
		NewMailer: panelMailer(time.Duration(cfg.SMTP.TimeoutSeconds*float64(time.Second)), logger),
	}, service.Config{
		BackupMode: cfg.Backup.Mode, Compress: cfg.Backup.Compress, LeaseFor: cfg.Lease(),
		BackupsPerNode:     cfg.Backup.PerNode,
		ScheduleRetryAfter: time.Duration(cfg.Backup.ScheduleRetryMinutes * float64(time.Minute)),
		EmailRetryAfter:    time.Duration(cfg.SMTP.RetryAfterSeconds * float64(time.Second)),
		// Only the kill tests set this; see service.Config.
		CrashAfterStep: os.Getenv("PVEKEEP_TEST_CRASH_AFTER_STEP"),
	})
	return &app{
		table:  api.New(svc, svc, logger, acfg),
		svc:    svc,
		st:     st,
		close:  func() { _ = st.Close() },
		logger: logger,
	}, cfg, nil
}

// newMailer returns nil (no email) when no SMTP host is configured.
func newMailer(c config.SMTP, logger *slog.Logger) (service.Mailer, error) {
	if !c.Enabled() {
		return nil, nil
	}
	mc := mail.Config{
		Host: c.Host, Port: c.Port, Username: c.Username, Password: c.Password, From: c.From, FromName: c.FromName,
		TLS: c.TLS, Timeout: time.Duration(c.TimeoutSeconds * float64(time.Second)),
	}
	if err := mc.Validate(); err != nil {
		return nil, fmt.Errorf("config: smtp: %w", err)
	}
	m, err := mail.New(mc, templates.Files, lang.Files, logger)
	if err != nil {
		return nil, fmt.Errorf("load email templates: %w", err)
	}
	return m, nil
}

// panelMailer builds the mailer for the panel's mail settings that
// cron.tick hands over (used only when the config file sets no [smtp]).
func panelMailer(timeout time.Duration, logger *slog.Logger) service.MailerFactory {
	return func(c mail.Config) (service.Mailer, error) {
		if c.Timeout == 0 {
			c.Timeout = timeout
		}
		return mail.New(c, templates.Files, lang.Files, logger)
	}
}

// dialProxmox connects through one pool per process, so a warm process
// (serve --listen unix:…, worker) reuses its TLS connections to each
// Proxmox server across calls.
func dialProxmox(logger *slog.Logger) service.Dialer {
	pool := pve.NewPool(0)
	return func(ctx context.Context, s pvekeep.Server) (pve.Cluster, error) {
		c := pve.ConfigFromServer(s)
		c.Logger = logger
		return pool.Connect(ctx, c)
	}
}

// migrateOnce brings the plugin's tables up to date before a process
// answers anything (one query when they already are). A database that
// cannot be reached now is not fatal: the calls answer a retryable
// `unavailable`, and a long-running process tries again (keepMigrating).
func (a *app) migrateOnce(ctx context.Context) bool {
	if _, err := a.st.EnsureMigrated(ctx); err != nil {
		a.logger.Warn("could not bring the database tables up to date; calls needing them will fail until it can", "err", err)
		return false
	}
	return true
}

// keepMigrating runs migrateOnce again until it succeeds or ctx ends,
// pausing longer before each try (up to a minute).
func (a *app) keepMigrating(ctx context.Context) {
	for pause := 2 * time.Second; ; pause = min(2*pause, time.Minute) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		if a.migrateOnce(ctx) {
			return
		}
	}
}
