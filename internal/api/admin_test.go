package api

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/service"
	"github.com/pvekeep/pvekeep/internal/store"
)

// backups.list carries the status; a VM never seen has checked_at null.
func TestBackupsListCarriesTheStatusWithCheckedAt(t *testing.T) {
	t.Parallel()
	res, rerr := newTable(&fakeBackend{}).Call(context.Background(), "backups.list", json.RawMessage(`{"service_id":1}`))
	if rerr != nil {
		t.Fatal(rerr)
	}
	raw, _ := json.Marshal(res)
	if !strings.Contains(string(raw), `"status":{"vmid":0,"node":"","power":"","lock":{"locked":false,"reason":"","job_id":0},`) ||
		!strings.Contains(string(raw), `"checked_at":null`) {
		t.Errorf("backups.list = %s, want a status with checked_at null", raw)
	}
}

// admin.overview's shape: the contract's fields, emails by state with the
// reason, and each job's email next to it.
func TestAdminOverviewShape(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	o := service.AdminOverview{
		Status: service.Status{VMID: 100, Node: "pve1", Power: "running", CheckedAt: &at,
			Lock: service.Lock{Locked: true, Reason: "backup"}},
		SelectedBackupID: 5,
		Backups:          []pvekeep.Backup{{ID: 5, Volid: "backup:backup/vzdump-qemu-100.vma.zst", Status: pvekeep.BackupAvailable, CreatedAt: at}},
		Jobs: []pvekeep.Job{{ID: 9, Kind: pvekeep.KindBackupRestore, State: pvekeep.JobSucceeded, CreatedAt: at},
			{ID: 8, Kind: pvekeep.KindBackupCreate, State: pvekeep.JobFailed, Error: "no space", CreatedAt: at}},
		Emails: []store.Email{{ID: 3, JobID: 9, Kind: "backup_restored", Status: store.EmailPending, Error: "no SMTP settings: …", CreatedAt: at}},
	}
	res, rerr := newTable(&fakeBackend{overview: &o}).Call(context.Background(), "admin.overview",
		json.RawMessage(`{"service_id":1,"actor":{"type":"admin","id":1}}`))
	if rerr != nil {
		t.Fatal(rerr)
	}
	raw, _ := json.Marshal(res)
	var got struct {
		VMID             int     `json:"vmid"`
		Node             string  `json:"node"`
		Power            string  `json:"power"`
		CheckedAt        *string `json:"checked_at"`
		SelectedBackupID int64   `json:"selected_backup_id"`
		Lock             lockOut `json:"lock"`
		Backups          []struct {
			ID        int64  `json:"id"`
			Volid     string `json:"volid"`
			Protected *bool  `json:"protected"`
		} `json:"backups"`
		Jobs []struct {
			ID    int64     `json:"id"`
			Error string    `json:"error"`
			Email *emailOut `json:"email"`
		} `json:"jobs"`
		Emails        []emailOut `json:"emails"`
		FailedRestore *jobOut    `json:"failed_restore"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if got.VMID != 100 || got.Node != "pve1" || got.Power != "running" || got.CheckedAt == nil || *got.CheckedAt != "2026-12-02T10:00:00Z" ||
		got.SelectedBackupID != 5 || !got.Lock.Locked || got.FailedRestore != nil {
		t.Errorf("admin.overview = %s", raw)
	}
	if len(got.Backups) != 1 || got.Backups[0].Volid == "" || got.Backups[0].Protected == nil {
		t.Errorf("backups = %s, want volid and protected", raw)
	}
	if len(got.Emails) != 1 || got.Emails[0].State != "queued" || got.Emails[0].LastError == "" {
		t.Errorf("emails = %+v, want one queued with its reason", got.Emails)
	}
	if len(got.Jobs) != 2 || got.Jobs[0].Email == nil || got.Jobs[0].Email.State != "queued" || got.Jobs[1].Email != nil || got.Jobs[1].Error != "no space" {
		t.Errorf("jobs = %s, want the restore with its email and the backup with its error", raw)
	}
}

// cron.tick hands the panel's mail settings to the tick.
func TestCronTickPassesThePanelsSMTP(t *testing.T) {
	t.Parallel()
	f := &fakeBackend{}
	_, rerr := newTable(f).Call(context.Background(), "cron.tick", json.RawMessage(`{"actor":{"type":"system"},"servers":[],"budget_s":0,
"smtp":{"host":"mail.example.test","port":465,"username":"u","password":"p","secure":"ssl","from_email":"billing@example.test","from_name":"Example"}}`))
	if rerr != nil {
		t.Fatal(rerr)
	}
	want := service.PanelSMTP{Host: "mail.example.test", Port: 465, Username: "u", Password: "p", Secure: "ssl", FromEmail: "billing@example.test", FromName: "Example"}
	if f.smtp == nil || *f.smtp != want {
		t.Errorf("smtp = %v, want %v", f.smtp, want)
	}
}

// admin.select_backup answers the recorded id.
func TestAdminSelectBackupAnswersTheSelection(t *testing.T) {
	t.Parallel()
	res, rerr := newTable(&fakeBackend{}).Call(context.Background(), "admin.select_backup",
		json.RawMessage(`{"service_id":1,"actor":{"type":"admin","id":1},"backup_id":7}`))
	if rerr != nil {
		t.Fatal(rerr)
	}
	if raw, _ := json.Marshal(res); string(raw) != `{"selected_backup_id":7}` {
		t.Errorf("admin.select_backup = %s", raw)
	}
}
