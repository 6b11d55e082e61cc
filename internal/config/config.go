// Package config reads the operator's optional TOML file (--config or
// PVEKEEP_CONFIG): everything but the database DSN, which comes from --dsn
// or PVEKEEP_DSN (DESIGN §8). A missing file means all defaults; an
// unknown key is an error, so a typo never silently falls back to a
// default.
package config

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// Config is the whole file.
type Config struct {
	// LogLevel is debug, info, warn or error.
	LogLevel string `toml:"log_level"`
	Backup   Backup `toml:"backup"`
	Jobs     Jobs   `toml:"jobs"`
	Worker   Worker `toml:"worker"`
	SMTP     SMTP   `toml:"smtp"`
	Serve    Serve  `toml:"serve"`
}

// Serve bounds `pvekeep serve --listen unix:…` (internal/transport's
// UnixConfig). Zero means the transport's default.
type Serve struct {
	// MaxConnections served at once (default 64); more wait, unread, in
	// the kernel's queue until one closes.
	MaxConnections int `toml:"max_connections"`
	// ReadTimeoutSeconds: a connection must deliver each whole request
	// line within this (default 60); idle or trickling ones are closed.
	ReadTimeoutSeconds float64 `toml:"read_timeout_seconds"`
	// WriteTimeoutSeconds: an answer must be taken within this (default 30).
	WriteTimeoutSeconds float64 `toml:"write_timeout_seconds"`
}

// SMTP is where client emails go; it wins over the panel's mail settings
// that cron.tick hands over. Without a host those are used; with neither,
// emails wait in the outbox (the restore still completes; the admin tab
// says why).
type SMTP struct {
	Host           string  `toml:"host"`
	Port           int     `toml:"port"`     // default 587
	Username       string  `toml:"username"` // empty: no authentication
	Password       string  `toml:"password"`
	From           string  `toml:"from"`
	FromName       string  `toml:"from_name"`
	TLS            string  `toml:"tls"` // starttls (default), tls, none
	TimeoutSeconds float64 `toml:"timeout_seconds"`
	// RetryAfterSeconds: an email SMTP could not take is tried again by a
	// later tick once it has rested this long (default 300).
	RetryAfterSeconds float64 `toml:"retry_after_seconds"`
}

// Enabled reports whether emails can be sent.
func (s SMTP) Enabled() bool { return s.Host != "" }

// Backup tunes vzdump and scheduled backups.
type Backup struct {
	Mode     string `toml:"mode"`     // snapshot (default), suspend, stop
	Compress string `toml:"compress"` // zstd (default), lzo, gzip, 0
	// PerNode is how many backups may run on one Proxmox node at once
	// (default 1: vzdump holds a node-global lock, so a second one would
	// only wait in Proxmox's lock queue). The rest wait in the database.
	PerNode int `toml:"per_node"`
	// ScheduleRetryMinutes is the pause before a failed scheduled backup is
	// tried again the same day (default 10).
	ScheduleRetryMinutes float64 `toml:"schedule_retry_minutes"`
}

// Jobs tunes the job runner.
type Jobs struct {
	LeaseSeconds int     `toml:"lease_seconds"` // default 120
	PollSeconds  float64 `toml:"poll_seconds"`  // default 1
}

// Worker lists the servers `pvekeep worker` drives; the panel's cron hands
// them over on each tick instead.
type Worker struct {
	IntervalSeconds float64          `toml:"interval_seconds"` // default 10
	Servers         []pvekeep.Server `toml:"servers"`
}

// Load reads path; "" means defaults.
func Load(path string) (Config, error) {
	var c Config
	if path != "" {
		md, err := toml.DecodeFile(path, &c)
		if err != nil {
			return Config{}, fmt.Errorf("read config %s: %w", path, err)
		}
		if und := md.Undecoded(); len(und) > 0 {
			keys := make([]string, len(und))
			for i, k := range und {
				keys[i] = k.String()
			}
			return Config{}, fmt.Errorf("read config %s: unknown keys %s", path, strings.Join(keys, ", "))
		}
	}
	c = c.withDefaults()
	return c, c.validate()
}

// FromEnv returns the path named by PVEKEEP_CONFIG.
func FromEnv() string { return os.Getenv("PVEKEEP_CONFIG") }

func (c Config) withDefaults() Config {
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if c.Backup.Mode == "" {
		c.Backup.Mode = "snapshot"
	}
	if c.Backup.Compress == "" {
		c.Backup.Compress = "zstd"
	}
	if c.Backup.PerNode == 0 {
		c.Backup.PerNode = 1
	}
	if c.Backup.ScheduleRetryMinutes == 0 {
		c.Backup.ScheduleRetryMinutes = 10
	}
	if c.Jobs.LeaseSeconds == 0 {
		c.Jobs.LeaseSeconds = 120
	}
	if c.Jobs.PollSeconds == 0 {
		c.Jobs.PollSeconds = 1
	}
	if c.Worker.IntervalSeconds == 0 {
		c.Worker.IntervalSeconds = 10
	}
	if c.SMTP.Enabled() {
		if c.SMTP.Port == 0 {
			c.SMTP.Port = 587
		}
		if c.SMTP.TLS == "" {
			c.SMTP.TLS = "starttls"
		}
		if c.SMTP.TimeoutSeconds == 0 {
			c.SMTP.TimeoutSeconds = 30
		}
		if c.SMTP.RetryAfterSeconds == 0 {
			c.SMTP.RetryAfterSeconds = 300
		}
	}
	return c
}

func (c Config) validate() error {
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("config: log_level %q is not debug, info, warn or error", c.LogLevel)
	}
	switch c.Backup.Mode {
	case "snapshot", "suspend", "stop":
	default:
		return fmt.Errorf("config: backup.mode %q is not snapshot, suspend or stop", c.Backup.Mode)
	}
	switch c.Backup.Compress {
	case "zstd", "lzo", "gzip", "0":
	default:
		return fmt.Errorf("config: backup.compress %q is not zstd, lzo, gzip or 0", c.Backup.Compress)
	}
	if c.Backup.PerNode < 1 || c.Backup.PerNode > 16 {
		return fmt.Errorf("config: backup.per_node must be between 1 and 16")
	}
	if c.Backup.ScheduleRetryMinutes < 1 || c.Backup.ScheduleRetryMinutes > 720 {
		return fmt.Errorf("config: backup.schedule_retry_minutes must be between 1 and 720")
	}
	if c.Jobs.LeaseSeconds < 2 {
		// Leases are extended while a step waits on Proxmox, so a short
		// lease only makes a dead process's jobs resume sooner.
		return fmt.Errorf("config: jobs.lease_seconds must be at least 2")
	}
	if c.Jobs.PollSeconds <= 0 || c.Jobs.PollSeconds > 60 {
		return fmt.Errorf("config: jobs.poll_seconds must be in (0, 60]")
	}
	if c.SMTP.Enabled() {
		switch c.SMTP.TLS {
		case "starttls", "tls", "none":
		default:
			return fmt.Errorf("config: smtp.tls %q is not starttls, tls or none", c.SMTP.TLS)
		}
		if c.SMTP.From == "" {
			return fmt.Errorf("config: smtp.from is required when smtp.host is set")
		}
		if c.SMTP.Port < 1 || c.SMTP.Port > 65535 {
			return fmt.Errorf("config: smtp.port %d is out of range", c.SMTP.Port)
		}
		if c.SMTP.RetryAfterSeconds*4/5 <= c.SMTP.TimeoutSeconds {
			// A send is cut off at 4/5 of retry_after (so that it is never
			// taken for a stalled one); that must leave room for at least
			// one command's timeout.
			return fmt.Errorf("config: smtp.retry_after_seconds must be more than 1.25 × smtp.timeout_seconds")
		}
	}
	if c.Serve.MaxConnections < 0 || c.Serve.ReadTimeoutSeconds < 0 || c.Serve.WriteTimeoutSeconds < 0 {
		return fmt.Errorf("config: serve.max_connections, serve.read_timeout_seconds and serve.write_timeout_seconds must not be negative")
	}
	if c.Serve.MaxConnections > 100000 {
		return fmt.Errorf("config: serve.max_connections %d is more than 100000", c.Serve.MaxConnections)
	}
	if c.Worker.IntervalSeconds < 1 || c.Worker.IntervalSeconds > 600 {
		return fmt.Errorf("config: worker.interval_seconds must be between 1 and 600")
	}
	for i, s := range c.Worker.Servers {
		if s.ID <= 0 || s.Host == "" {
			return fmt.Errorf("config: worker.servers[%d] needs id and host", i)
		}
	}
	return nil
}

// Lease is the job lease length.
func (c Config) Lease() time.Duration { return time.Duration(c.Jobs.LeaseSeconds) * time.Second }

// Poll is the pause between job passes.
func (c Config) Poll() time.Duration { return time.Duration(c.Jobs.PollSeconds * float64(time.Second)) }
