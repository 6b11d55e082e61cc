package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/pvekeep/pvekeep/internal/mail"
	"github.com/pvekeep/pvekeep/internal/plan"
	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/reconcile"
	"github.com/pvekeep/pvekeep/internal/store"
)

// Mailer composes and sends client emails. A nil Mailer (no SMTP
// configured) skips the email step with a warning rather than blocking
// the restore.
type Mailer interface {
	Compose(kind, language string, data mail.BackupRestored) (mail.Message, error)
	// MessageID is the same for every send of a job's email, so that a
	// redelivery is recognisably the same message.
	MessageID(jobID int64, kind string) string
	Send(ctx context.Context, m mail.Message) error
}

// emailStore is what the email step needs from the database.
type emailStore interface {
	ReserveEmail(ctx context.Context, e store.Email) (store.Email, bool, error)
	MarkEmailSentAndLog(ctx context.Context, emailID int64, sentAt time.Time, ce store.ClientEmail) error
	MarkEmailFailed(ctx context.Context, emailID int64, msg string, at time.Time) error
	DefaultClientLanguage(ctx context.Context) (string, error)
	PendingEmails(ctx context.Context, idleSince time.Time, limit int) ([]store.Email, error)
	ClaimEmail(ctx context.Context, e store.Email, now time.Time) (bool, error)
}

// Email kinds (mod_pvekeep_emails.kind and the template names).
const (
	emailRestored    = "backup_restored"
	emailReinstalled = "vm_reinstalled"
)

// reconcileJob hands a restored or reinstalled VM to the reconciliation
// and finishes the job when it is done.
func (s *Service) reconcileJob(ctx context.Context, pc pve.Cluster, lease pvekeep.Lease, job pvekeep.Job, p restoreParams) (pvekeep.Job, error) {
	if !reconcile.IsStep(job.Step) {
		return s.failRestore(ctx, lease, job, fmt.Sprintf("the job is at an unknown step %q", job.Step))
	}
	f, err := s.st.Service(ctx, job.ServiceID)
	if err != nil {
		return job, dbError(err)
	}
	pl, err := plan.FromFacts(f)
	if err != nil {
		return s.failRestore(ctx, lease, job, upstreamMessage(err))
	}
	target := reconcile.Target{Node: job.Node, VMID: job.VMID, VM: pl.VM, MACs: p.MACs}
	j := &journal{s: s, pc: pc, lease: lease, job: job}
	n := &notifier{s: s, job: job, facts: f}
	out, err := s.reconciler.Run(ctx, pc, j, n, target, reconcile.Step(job.Step), job.UPID)
	job = j.job
	if err != nil {
		return job, err
	}
	if out.Failed != "" {
		// The restored VM is whole, only the package could not be put back:
		// better running at the old package than stopped until someone acts.
		s.startAnyway(ctx, pc, lease, job)
		return s.failRestore(ctx, lease, job, "putting the package back failed at "+out.Failed)
	}
	if out.Step != reconcile.StepDone {
		return job, nil // waiting on Proxmox
	}
	now := s.clock.Now().UTC()
	if err := s.finish(ctx, lease, job, store.JobFinish{State: pvekeep.JobSucceeded, Now: now}); err != nil {
		return job, err
	}
	job.State, job.FinishedAt, job.ProgressPct = pvekeep.JobSucceeded, &now, 100
	return job, nil
}

// startAnyway starts a VM whose restore failed without harming it, or
// whose reconciliation failed, and waits for it, best effort: the failure
// is what the job reports either way.
func (s *Service) startAnyway(ctx context.Context, pc pve.Cluster, lease pvekeep.Lease, job pvekeep.Job) {
	st, err := pc.VMStatus(ctx, job.Node, job.VMID)
	if err != nil || st.Status == "running" {
		return
	}
	upid, err := pc.StartVM(ctx, job.Node, job.VMID)
	if err == nil && upid != "" {
		var failure string
		_, failure, err = s.await(ctx, pc, lease, upid, 30*time.Second)
		if err == nil && failure != "" {
			err = errors.New(failure)
		}
	}
	if err != nil {
		s.logger.Warn("start vm after a failed restore", "job_id", job.ID, "vmid", job.VMID, "err", err)
	}
}

// journal records reconciliation progress on the job row, under the lease.
type journal struct {
	s     *Service
	pc    pve.Cluster
	lease pvekeep.Lease
	job   pvekeep.Job
}

func (j *journal) Submitted(ctx context.Context, upid pvekeep.UPID) error {
	job, err := j.s.submitted(ctx, j.lease, j.job, upid, j.job.Node)
	j.job = job
	return err
}

func (j *journal) Done(ctx context.Context, step, next reconcile.Step, pct int) error {
	job, err := j.s.advance(ctx, j.lease, j.job, string(next), pct)
	j.job = job
	return err
}

func (j *journal) Await(ctx context.Context, upid pvekeep.UPID) (bool, string, error) {
	return j.s.await(ctx, j.pc, j.lease, upid, 60*time.Second)
}

// notifier sends the job's client email once: the row in
// mod_pvekeep_emails is reserved before sending and marked sent, together
// with the copy in WHMCS's tblemails, in one transaction afterwards. A
// pending row is retried by the outbox until it is sent or refused, so an
// email is never lost. A crash between the SMTP server accepting it and
// that mark is the one window in which it goes out twice, with the same
// Message-ID (docs/adr/008-client-email-delivery.md).
type notifier struct {
	s     *Service
	job   pvekeep.Job
	facts pvekeep.ServiceFacts
}

func (n *notifier) BackupRestored(ctx context.Context) error {
	s := n.s
	if s.mailer == nil {
		s.logger.Warn("no SMTP configured: the client email is not sent", "job_id", n.job.ID, "service_id", n.job.ServiceID)
		return nil
	}
	if n.facts.ClientEmail == "" {
		s.logger.Warn("the client has no email address: the client email is not sent", "job_id", n.job.ID)
		return nil
	}
	kind, msg, err := s.composeFor(ctx, n.job, n.facts)
	if err != nil {
		return err
	}
	now := s.clock.Now().UTC()
	row, created, err := s.emails.ReserveEmail(ctx, store.Email{JobID: n.job.ID, Kind: kind, Recipient: msg.To, Subject: msg.Subject, CreatedAt: now})
	if err != nil {
		return dbError(err)
	}
	if !created {
		// An earlier attempt reserved it: take it only while it is still
		// pending (not sent, not given up) and the outbox has not.
		ok, err := s.emails.ClaimEmail(ctx, row, now)
		if err != nil {
			return dbError(err)
		}
		if !ok {
			return nil
		}
	}
	s.crashPoint(crashEmailReserved)
	s.deliver(ctx, row, msg, n.facts)
	return nil
}

// composeFor renders a job's client email in the client's language.
func (s *Service) composeFor(ctx context.Context, job pvekeep.Job, f pvekeep.ServiceFacts) (string, mail.Message, error) {
	kind := emailRestored
	if job.Kind == pvekeep.KindVMReinstall {
		kind = emailReinstalled
	}
	data := mail.BackupRestored{
		ClientName: joinName(f.ClientFirstName, f.ClientLastName), Hostname: f.Domain, VMID: int(job.VMID),
		RestoredAt: s.clock.Now().UTC(),
	}
	if job.FinishedAt != nil {
		data.RestoredAt = *job.FinishedAt
	}
	if job.BackupID != 0 {
		if b, err := s.st.Backup(ctx, job.ServiceID, job.BackupID); err == nil {
			data.BackupCreatedAt, data.BackupNote = b.CreatedAt, b.Note
		}
	}
	language := f.ClientLanguage
	if language == "" {
		// The client follows the panel's default language.
		if def, err := s.emails.DefaultClientLanguage(ctx); err == nil {
			language = def
		}
	}
	msg, err := s.mailer.Compose(kind, language, data)
	if err != nil {
		return "", mail.Message{}, fmt.Errorf("compose %s email: %w", kind, err)
	}
	msg.To, msg.ToName = f.ClientEmail, data.ClientName
	msg.MessageID = s.mailer.MessageID(int64(job.ID), kind)
	return kind, msg, nil
}

// deliver sends a reserved email and records the outcome. SMTP being
// down does not hold anything up: the row stays pending and the outbox
// (each tick) tries again; a refusal is recorded as failed, with the
// reason, for the admin. Either way the job goes on.
func (s *Service) deliver(ctx context.Context, row store.Email, msg mail.Message, f pvekeep.ServiceFacts) {
	now := s.clock.Now().UTC()
	// The row was claimed just now; the outbox takes it again once it has
	// been idle for EmailRetryAfter. A send must be over (or abandoned)
	// well before, or two processes would be sending it at once.
	sendCtx, cancel := context.WithTimeout(ctx, s.cfg.EmailRetryAfter*4/5)
	err := s.mailer.Send(sendCtx, msg)
	cancel()
	switch {
	case err == nil:
		s.crashPoint(crashEmailAccepted)
		if err := s.emails.MarkEmailSentAndLog(ctx, row.ID, now, store.ClientEmail{
			ClientID: f.ClientID, To: msg.To, Subject: msg.Subject, Message: msg.HTML, Date: now,
		}); err != nil {
			s.logger.Error("record sent email", "email_id", row.ID, "job_id", row.JobID, "err", err)
			return
		}
		s.crashPoint(crashEmailRecorded)
	case errors.Is(err, mail.ErrTransient):
		s.logger.Warn("client email deferred; the outbox retries it", "email_id", row.ID, "job_id", row.JobID, "err", err)
	default:
		s.logger.Error("client email refused", "email_id", row.ID, "job_id", row.JobID, "err", err)
		if err := s.emails.MarkEmailFailed(ctx, row.ID, err.Error(), now); err != nil {
			s.logger.Error("record failed email", "email_id", row.ID, "err", err)
		}
	}
}

// sendPendingEmails is the outbox: emails whose job went on while SMTP
// was down, or whose sender died, are sent once they have been idle for
// EmailRetryAfter (longer than a send can take, so a sender still at work
// is never doubled).
func (s *Service) sendPendingEmails(ctx context.Context) (sent int) {
	if s.mailer == nil {
		return 0
	}
	now := s.clock.Now().UTC()
	rows, err := s.emails.PendingEmails(ctx, now.Add(-s.cfg.EmailRetryAfter), 20)
	if err != nil {
		s.logger.Warn("list pending emails", "err", err)
		return 0
	}
	for _, row := range rows {
		if ok, err := s.emails.ClaimEmail(ctx, row, now); err != nil || !ok {
			continue
		}
		job, err := s.st.Job(ctx, row.JobID)
		if err != nil {
			s.logger.Warn("pending email without its job", "email_id", row.ID, "err", err)
			continue
		}
		f, err := s.st.Service(ctx, job.ServiceID)
		if err != nil {
			s.logger.Warn("pending email without its service", "email_id", row.ID, "err", err)
			continue
		}
		_, msg, err := s.composeFor(ctx, job, f)
		if err != nil {
			s.logger.Warn("compose pending email", "email_id", row.ID, "err", err)
			continue
		}
		s.deliver(ctx, row, msg, f)
		sent++
	}
	return sent
}

func joinName(first, last string) string {
	switch {
	case first == "":
		return last
	case last == "":
		return first
	default:
		return first + " " + last
	}
}

// Crash points around the client email, besides the job steps: after its
// row is reserved and before SMTP is asked; after SMTP accepted it and
// before it is recorded as sent; after that record and before the job
// moves past its email step.
const (
	crashEmailReserved = "email_reserved"
	crashEmailAccepted = "email_accepted"
	crashEmailRecorded = "email_recorded"
)

// crashPoint kills the process right after step was recorded as done when
// Config.CrashAfterStep names it: the kill tests use it to prove that any
// process can finish what a killed one began. Never set in production.
func (s *Service) crashPoint(step string) {
	if s.cfg.CrashAfterStep != "" && s.cfg.CrashAfterStep == step {
		s.logger.Warn("crashing on purpose", "after_step", step)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL is not instantaneous; nothing may run after it
	}
}
