package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		body    string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{name: "empty file gives defaults", body: "", check: func(t *testing.T, c Config) {
			if c.Backup.Mode != "snapshot" || c.Backup.Compress != "zstd" || c.Jobs.LeaseSeconds != 120 {
				t.Errorf("defaults not applied: %+v", c)
			}
		}},
		{name: "values override defaults", body: "[backup]\nmode = \"stop\"\n[jobs]\nlease_seconds = 30\n", check: func(t *testing.T, c Config) {
			if c.Backup.Mode != "stop" || c.Jobs.LeaseSeconds != 30 {
				t.Errorf("values not read: %+v", c)
			}
		}},
		{name: "unknown key is refused", body: "[backup]\nmdoe = \"stop\"\n", wantErr: "unknown keys backup.mdoe"},
		{name: "bad mode is refused", body: "[backup]\nmode = \"fast\"\n", wantErr: "backup.mode"},
		{name: "smtp gets defaults", body: "[smtp]\nhost = \"mail\"\nfrom = \"a@b\"\n", check: func(t *testing.T, c Config) {
			if c.SMTP.Port != 587 || c.SMTP.TLS != "starttls" {
				t.Errorf("smtp defaults not applied: %+v", c.SMTP)
			}
		}},
		{name: "smtp without from is refused", body: "[smtp]\nhost = \"mail\"\n", wantErr: "smtp.from"},
		{name: "smtp with an unknown tls mode is refused", body: "[smtp]\nhost = \"mail\"\nfrom = \"a@b\"\ntls = \"maybe\"\n", wantErr: "smtp.tls"},
		{name: "smtp retry too close to one command's timeout is refused", body: "[smtp]\nhost = \"mail\"\nfrom = \"a@b\"\ntimeout_seconds = 30\nretry_after_seconds = 31\n", wantErr: "smtp.retry_after_seconds"},
		{name: "smtp retry leaving room for a command is taken", body: "[smtp]\nhost = \"mail\"\nfrom = \"a@b\"\ntimeout_seconds = 30\nretry_after_seconds = 40\n", check: func(t *testing.T, c Config) {
			if c.SMTP.RetryAfterSeconds != 40 {
				t.Errorf("retry_after_seconds = %v, want 40", c.SMTP.RetryAfterSeconds)
			}
		}},
		{name: "serve limits are read", body: "[serve]\nmax_connections = 8\nread_timeout_seconds = 2.5\n", check: func(t *testing.T, c Config) {
			if c.Serve.MaxConnections != 8 || c.Serve.ReadTimeoutSeconds != 2.5 || c.Serve.WriteTimeoutSeconds != 0 {
				t.Errorf("serve = %+v", c.Serve)
			}
		}},
		{name: "a negative serve limit is refused", body: "[serve]\nmax_connections = -1\n", wantErr: "serve.max_connections"},
		{name: "backups run one per node by default", body: "", check: func(t *testing.T, c Config) {
			if c.Backup.PerNode != 1 || c.Backup.ScheduleRetryMinutes != 10 {
				t.Errorf("backup = %+v", c.Backup)
			}
		}},
		{name: "per-node limit is read", body: "[backup]\nper_node = 2\n", check: func(t *testing.T, c Config) {
			if c.Backup.PerNode != 2 {
				t.Errorf("per_node = %d, want 2", c.Backup.PerNode)
			}
		}},
		{name: "a per-node limit of 17 is refused", body: "[backup]\nper_node = 17\n", wantErr: "backup.per_node"},
		{name: "a negative per-node limit is refused", body: "[backup]\nper_node = -1\n", wantErr: "backup.per_node"},
		{name: "worker server without id is refused", body: "[[worker.servers]]\nhost = \"pve\"\n", wantErr: "worker.servers[0]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(t.TempDir(), "pvekeep.toml")
			if err := os.WriteFile(p, []byte(tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := Load(p)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Load() error = %v, want it to mention %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load() error = %v", err)
			}
			tc.check(t, c)
		})
	}
}

func TestLoadWithoutPathGivesDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load("")
	if err != nil {
		t.Fatalf("Load(\"\") error = %v", err)
	}
	if c.LogLevel != "info" {
		t.Errorf("LogLevel = %q, want info", c.LogLevel)
	}
}

// The example every operator copies must load as it is.
func TestExampleConfigLoads(t *testing.T) {
	t.Parallel()
	c, err := Load(filepath.Join("..", "..", "docs", "config.example.toml"))
	if err != nil {
		t.Fatalf("docs/config.example.toml: %v", err)
	}
	if c.Backup.PerNode != 1 || c.Backup.ScheduleRetryMinutes != 10 {
		t.Errorf("backup = %+v", c.Backup)
	}
}
