package service

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/pvekeep/pvekeep/internal/plan"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/store"
)

// adminStore is what the admin's tab in WHMCS needs from the database.
type adminStore interface {
	SelectedBackup(ctx context.Context, id pvekeep.ServiceID) (pvekeep.BackupID, error)
	SelectBackup(ctx context.Context, id pvekeep.ServiceID, backupID pvekeep.BackupID) error
	ServiceEmails(ctx context.Context, id pvekeep.ServiceID, limit int) ([]store.Email, error)
}

// AdminOverview is what admin.overview returns: everything the admin's
// tab shows about a service, from the database alone.
type AdminOverview struct {

	// Status is the VM as Proxmox last told it (CheckedAt), the plugin's
	// own lock and the quotas.
	Status Status
	// SelectedBackupID is the backup the admin Restore / Remove buttons
	// act on; 0 when none is picked or the picked one is gone.
	SelectedBackupID pvekeep.BackupID
	// Backups are the service's listed backups, newest first.
	Backups []pvekeep.Backup
	// Jobs are the service's last jobs, newest first.
	Jobs []pvekeep.Job
	// Emails are the emails of the service's jobs, newest first, with
	// their delivery state: a restore whose email could not be sent shows
	// here, with the reason.
	Emails []store.Email
	// FailedRestore is the latest restore or reinstall when it failed and
	// still matters (as backups.list shows it to the client): what an
	// admin Reinstall is offered for.
	FailedRestore *pvekeep.Job
	// SettingsError says why the product's settings cannot be read (the
	// quotas' maxima are then 0); "" when they can. The client's page
	// fails on it; the admin must see why.
	SettingsError string
	// Snapshots are the plugin's snapshots of the service that count,
	// newest first; a failed removal (an expiry the cron keeps retrying)
	// shows its LastError and Attempts.
	Snapshots []pvekeep.Snapshot
	// Termination is set once the service was terminated: when, when its
	// backups go (nil once they are gone), and the cron's last failure to
	// remove them with how often it tried.
	Termination *store.Termination
}

// overviewJobs and overviewEmails bound the admin tab's lists.
const (
	overviewJobs   = 10
	overviewEmails = 10
)

// authorizeAdmin lets only the panel's admins and its system calls in,
// on a service in any status and with or without a VM.
func (s *Service) authorizeAdmin(ctx context.Context, c Call) (pvekeep.ServiceFacts, error) {
	return s.authorizeStaff(ctx, c, "only an admin may do this")
}

// authorizeStaff is authorizeAdmin's rule; refused says why to anyone else.
func (s *Service) authorizeStaff(ctx context.Context, c Call, refused string) (pvekeep.ServiceFacts, error) {
	if err := c.Actor.Validate(); err != nil {
		return pvekeep.ServiceFacts{}, err
	}
	if c.Actor.Type != pvekeep.ActorAdmin && c.Actor.Type != pvekeep.ActorSystem {
		return pvekeep.ServiceFacts{}, pvekeep.Forbidden(refused)
	}
	if c.ServiceID <= 0 {
		return pvekeep.ServiceFacts{}, pvekeep.InvalidInput("service_id", "service_id must be a positive integer")
	}
	f, err := s.st.Service(ctx, c.ServiceID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return f, pvekeep.NotFound("service")
		}
		return f, dbError(err)
	}
	return f, nil
}

// Overview is admin.overview: the VM, the lock, the backups (and which
// one the admin picked), the last jobs with their errors and the emails
// with their delivery state. It never asks Proxmox.
func (s *Service) Overview(ctx context.Context, c Call) (AdminOverview, error) {
	f, err := s.authorizeAdmin(ctx, c)
	if err != nil {
		return AdminOverview{}, err
	}
	items, err := s.st.Backups(ctx, f.ServiceID, listed...)
	if err != nil {
		return AdminOverview{}, dbError(err)
	}
	st, js, err := s.dbStatus(ctx, f, items, true)
	if err != nil {
		return AdminOverview{}, err
	}
	out := AdminOverview{Status: st, Backups: items}
	if out.Snapshots, err = s.snaps.Snapshots(ctx, f.ServiceID, listedSnapshots...); err != nil {
		return AdminOverview{}, dbError(err)
	}
	out.Status.Snapshots.Used = len(out.Snapshots)
	if _, err := plan.QuotasFromFacts(f); err != nil {
		out.SettingsError = err.Error()
		if e, ok := pvekeep.AsError(err); ok {
			out.SettingsError = e.Message
			if e.Err != nil {
				out.SettingsError += ": " + e.Err.Error() // the setting's own value: no secret
			}
		}
	}
	sel, err := s.admin.SelectedBackup(ctx, f.ServiceID)
	if err != nil {
		return AdminOverview{}, dbError(err)
	}
	if slices.ContainsFunc(items, func(b pvekeep.Backup) bool { return b.ID == sel }) {
		out.SelectedBackupID = sel
	}
	if term, err := s.life.ServiceTermination(ctx, f.ServiceID); err != nil {
		return AdminOverview{}, dbError(err)
	} else if term.TerminatedAt != nil {
		out.Termination = &term
	}
	if out.Jobs, err = s.st.Jobs(ctx, store.JobFilter{ServiceID: f.ServiceID, Limit: overviewJobs}); err != nil {
		return AdminOverview{}, dbError(err)
	}
	if out.Emails, err = s.admin.ServiceEmails(ctx, f.ServiceID, overviewEmails); err != nil {
		return AdminOverview{}, dbError(err)
	}
	if last := js.LastRestore; last != nil && last.State == pvekeep.JobFailed && failureStillMatters(*last, out.Jobs[:min(1, len(out.Jobs))]) {
		out.FailedRestore = last
	}
	return out, nil
}

// SelectBackup is admin.select_backup: it records which of the service's
// backups the admin Restore / Remove buttons act on (0 clears the pick).
// Another service's backup is not_found, a backup no longer on storage
// invalid_state; either way nothing changes.
func (s *Service) SelectBackup(ctx context.Context, c Call, id pvekeep.BackupID) (pvekeep.BackupID, error) {
	if id < 0 {
		return 0, pvekeep.InvalidInput("backup_id", "backup_id must be a positive integer, or 0 to clear the choice")
	}
	f, err := s.authorizeAdmin(ctx, c)
	if err != nil {
		return 0, err
	}
	if id > 0 {
		b, err := s.st.Backup(ctx, f.ServiceID, id)
		if errors.Is(err, store.ErrNotFound) {
			return 0, pvekeep.NotFound("backup")
		}
		if err != nil {
			return 0, dbError(err)
		}
		if !slices.Contains(listed, b.Status) {
			return 0, pvekeep.InvalidState(fmt.Sprintf("backup %d is %s", b.ID, b.Status))
		}
	}
	if err := s.admin.SelectBackup(ctx, f.ServiceID, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return 0, pvekeep.NotFound("backup")
		}
		return 0, dbError(err)
	}
	return id, nil
}
