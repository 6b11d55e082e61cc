package pvekeep

import (
	"fmt"
	"log/slog"
	"time"
)

// ServiceID is tblhosting.id, the panel's service.
type ServiceID int64

// VMID is a Proxmox guest id. Proxmox reuses ids after a VM is destroyed, so
// a VMID alone never proves ownership: backups belong to a ServiceID.
type VMID int

// JobID is the plugin's own id of a durable job (mod_pvekeep_jobs.id).
type JobID int64

// BackupID is the plugin's own, opaque id of a backup record. Clients only
// ever see this, never a Proxmox volid.
type BackupID int64

// UPID is a Proxmox task id: UPID:node:pid:pstart:starttime:type:id:user:
type UPID string

// ActorType says who is calling.
type ActorType string

const (
	ActorClient ActorType = "client"
	ActorAdmin  ActorType = "admin"
	ActorSystem ActorType = "system"
)

// Actor is who acts: a client (by tblclients.id), an admin or the system (cron).
type Actor struct {
	Type ActorType `json:"type" toml:"type"`
	ID   int64     `json:"id" toml:"id"`
}

// Validate reports whether the actor is well formed.
func (a Actor) Validate() error {
	switch a.Type {
	case ActorClient, ActorAdmin:
		if a.ID == 0 && a.Type == ActorClient {
			// The panel's client area with nobody logged in.
			return Forbidden("no client is logged in")
		}
		if a.ID <= 0 {
			return InvalidInput("actor.id", "actor id must be positive")
		}
	case ActorSystem:
	default:
		return InvalidInput("actor.type", "actor type must be client, admin or system")
	}
	return nil
}

// Server is one Proxmox endpoint as the panel hands it over on every call.
// The plugin never stores it: secrets live only for the duration of a call.
type Server struct {
	ID          int64  `json:"id" toml:"id"` // tblservers.id; needed by cron.tick
	Host        string `json:"host" toml:"host"`
	Port        int    `json:"port" toml:"port"`
	TokenID     string `json:"token_id" toml:"token_id"`
	TokenSecret string `json:"token_secret" toml:"token_secret"`
	Username    string `json:"username" toml:"username"`
	Password    string `json:"password" toml:"password"`
	VerifyTLS   bool   `json:"verify_tls" toml:"verify_tls"`
	Fingerprint string `json:"fingerprint" toml:"fingerprint"`
}

// LogValue keeps secrets out of every log line that mentions a server.
func (s Server) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int64("id", s.ID),
		slog.String("host", s.Host),
		slog.Int("port", s.Port),
		slog.String("token_id", s.TokenID),
		slog.String("username", s.Username),
	)
}

// String never includes secrets.
func (s Server) String() string {
	return fmt.Sprintf("server %d (%s:%d)", s.ID, s.Host, s.Port)
}

// Clock is the injectable source of time for everything that schedules,
// expires or measures.
type Clock interface {
	Now() time.Time
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns the current time.
func (SystemClock) Now() time.Time { return time.Now() }
