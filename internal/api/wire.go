package api

import (
	"time"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/service"
)

// The result shapes of DESIGN §3. Times are RFC 3339 UTC; sizes bytes.

type usageOut struct {
	Used int `json:"used"`
	Max  int `json:"max"`
}

type lockOut struct {
	Locked bool   `json:"locked"`
	Reason string `json:"reason"`
	JobID  int64  `json:"job_id"`
}

type quotasOut struct {
	Backups   usageOut `json:"backups"`
	Snapshots usageOut `json:"snapshots"`
}

type statusOut struct {
	VMID      int       `json:"vmid"`
	Node      string    `json:"node"`
	Power     string    `json:"power"`
	Lock      lockOut   `json:"lock"`
	Quotas    quotasOut `json:"quotas"`
	ActiveJob *jobOut   `json:"active_job"`
	// ProxmoxError says why power is "missing" or "unknown": the rest
	// of the status comes from the database and holds regardless.
	ProxmoxError *problemOut `json:"proxmox_error,omitempty"`
}

// problemOut is an application error reported inside a result.
type problemOut struct {
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

type backupOut struct {
	ID        int64  `json:"id"`
	CreatedAt string `json:"created_at"`
	Note      string `json:"note"`
	SizeBytes int64  `json:"size_bytes"`
	Status    string `json:"status"`
	Origin    string `json:"origin"`
}

type backupListOut struct {
	Quota         usageOut    `json:"quota"`
	Items         []backupOut `json:"items"`
	Schedule      any         `json:"schedule"`
	ActiveJob     *jobOut     `json:"active_job"`
	FailedRestore *jobOut     `json:"failed_restore"`
	FailedBackup  *jobOut     `json:"failed_backup"`
}

type jobOut struct {
	ID          int64    `json:"id"`
	Kind        string   `json:"kind"`
	State       string   `json:"state"`
	Step        string   `json:"step"`
	ProgressPct int      `json:"progress_pct"`
	Error       string   `json:"error"`
	BackupID    int64    `json:"backup_id,omitempty"`
	CreatedAt   string   `json:"created_at"`
	FinishedAt  *string  `json:"finished_at"`
	NextActions []string `json:"next_actions"`
}

func jobFrom(j pvekeep.Job) jobOut {
	out := jobOut{
		ID: int64(j.ID), Kind: string(j.Kind), State: string(j.State), Step: j.Step,
		ProgressPct: j.ProgressPct, Error: j.Error, BackupID: int64(j.BackupID),
		CreatedAt: rfc3339(j.CreatedAt), NextActions: service.NextActions(j),
	}
	if j.FinishedAt != nil {
		s := rfc3339(*j.FinishedAt)
		out.FinishedAt = &s
	}
	return out
}

func jobPtr(j *pvekeep.Job) *jobOut {
	if j == nil {
		return nil
	}
	o := jobFrom(*j)
	return &o
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
