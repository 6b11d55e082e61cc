package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/pvekeep/pvekeep/internal/mail"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/store"
)

// Mailer composes and sends client emails.
type Mailer interface {
	Compose(kind, language string, data mail.BackupRestored) (mail.Message, error)
	// MessageID is the same for every send of a job's email, so that a
	// redelivery is recognisably the same message.
	MessageID(jobID int64, kind string) string
	Send(ctx context.Context, m mail.Message) error
}

// MailerFactory builds a Mailer for SMTP settings (the panel's, handed
// over by cron.tick). It validates them.
type MailerFactory func(cfg mail.Config) (Mailer, error)

// emailStore is what the email step and the outbox need from the database.
type emailStore interface {
	ReserveEmail(ctx context.Context, e store.Email) (store.Email, bool, error)
	MarkEmailSentAndLog(ctx context.Context, emailID int64, sentAt time.Time, ce store.ClientEmail) error
	MarkEmailFailed(ctx context.Context, emailID int64, msg string, at time.Time) error
	MarkEmailSkipped(ctx context.Context, emailID int64, reason string, at time.Time) error
	NoteEmailWaiting(ctx context.Context, emailID int64, reason string) error
	DefaultClientLanguage(ctx context.Context) (string, error)
	PendingEmails(ctx context.Context, idleSince time.Time, limit int) ([]store.Email, error)
	ClaimEmail(ctx context.Context, e store.Email, now time.Time) (bool, error)
	ProductEmailsOptOut(ctx context.Context, clientID int64) (bool, error)
}

// Email kinds (mod_pvekeep_emails.kind and the template names).
const (
	emailRestored    = "backup_restored"
	emailReinstalled = "vm_reinstalled"
	emailCreated     = "vm_created" // the welcome email of service.create
)

// Why an email waits or was skipped, as the admin reads it
// (mod_pvekeep_emails.error).
const (
	reasonNoSMTP   = "no SMTP settings: WHMCS's mail settings were not passed and no config file sets [smtp]"
	reasonNoHost   = "no SMTP settings: WHMCS's mail settings name no SMTP server (PHP mail() cannot be used) and no config file sets [smtp]"
	reasonOptedOut = "not sent: the client opted out of product emails in WHMCS"
	reasonNoEmail  = "not sent: the client has no email address"
)

// PanelSMTP is the panel's own mail settings (WHMCS's, the password
// decrypted by the PHP side), handed over by cron.tick. The config
// file's [smtp] wins over them. The password is never logged, stored or
// put in an error.
type PanelSMTP struct {
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Username string `json:"username"`
	Password string `json:"password"`
	// Secure is WHMCS's SMTP SSL Type: "ssl" = TLS from the first byte
	// (port 465), "tls" = STARTTLS, "" = none.
	Secure    string `json:"secure"`
	FromEmail string `json:"from_email"`
	FromName  string `json:"from_name"`
}

// mailConfig translates the panel's settings into the mail package's.
func (p PanelSMTP) mailConfig() (mail.Config, error) {
	c := mail.Config{
		Host: p.Host, Port: p.Port, Username: p.Username, Password: p.Password,
		From: p.FromEmail, FromName: p.FromName,
	}
	switch p.Secure {
	case "ssl":
		c.TLS = mail.TLSImplicit
	case "tls":
		c.TLS = mail.TLSStartTLS
	case "":
		c.TLS = mail.TLSNone
	default:
		return mail.Config{}, fmt.Errorf("smtp.secure %q must be \"ssl\", \"tls\" or \"\"", p.Secure)
	}
	if err := c.Validate(); err != nil {
		return mail.Config{}, err
	}
	return c, nil
}

// LogValue keeps the password out of every log line.
func (p PanelSMTP) LogValue() slog.Value {
	return slog.GroupValue(slog.String("host", p.Host), slog.Int("port", p.Port), slog.String("secure", p.Secure),
		slog.String("username", p.Username), slog.Bool("password_set", p.Password != ""), slog.String("from_email", p.FromEmail))
}

// String never includes the password, so %v and %+v are safe too.
func (p PanelSMTP) String() string {
	return fmt.Sprintf("smtp %s@%s:%d secure=%q from=%s", p.Username, p.Host, p.Port, p.Secure, p.FromEmail)
}

// GoString keeps %#v from printing the password.
func (p PanelSMTP) GoString() string { return "service.PanelSMTP{" + p.String() + "}" }

// tickMail is the mailer one tick sends with, or why it has none.
type tickMail struct {
	m   Mailer
	why string
}

type tickMailKey struct{}

// withPanelSMTP makes the panel's mail settings the ones this tick's job
// steps and outbox send with, unless the config file's [smtp] is set
// (which wins). Settings that cannot be used leave the emails waiting,
// with the reason.
func (s *Service) withPanelSMTP(ctx context.Context, p *PanelSMTP) context.Context {
	if s.mailer != nil {
		return ctx
	}
	tm := tickMail{why: reasonNoSMTP}
	if p != nil && strings.TrimSpace(p.Host) == "" {
		tm.why = reasonNoHost
	}
	if p != nil && strings.TrimSpace(p.Host) != "" {
		tm.why = ""
		cfg, err := p.mailConfig()
		if err == nil && s.newMailer == nil {
			err = errors.New("this process cannot send email")
		}
		if err == nil {
			tm.m, err = s.newMailer(cfg)
		}
		if err != nil {
			tm.m, tm.why = nil, "WHMCS's mail settings cannot be used: "+err.Error()
			s.logger.Warn("client emails wait: the panel's mail settings cannot be used", "smtp", p, "err", err)
		}
	}
	return context.WithValue(ctx, tickMailKey{}, tm)
}

// mailerFor is the mailer to send with now: the config file's, else the
// one the tick was handed; with neither, why not.
func (s *Service) mailerFor(ctx context.Context) (Mailer, string) {
	if s.mailer != nil {
		return s.mailer, ""
	}
	if tm, ok := ctx.Value(tickMailKey{}).(tickMail); ok {
		return tm.m, tm.why
	}
	return nil, reasonNoSMTP
}

// skipReason says why the client must not get this email, or "".
func (s *Service) skipReason(ctx context.Context, f pvekeep.ServiceFacts) (string, error) {
	if f.ClientEmail == "" {
		return reasonNoEmail, nil
	}
	out, err := s.emails.ProductEmailsOptOut(ctx, f.ClientID)
	if err != nil {
		return "", dbError(err)
	}
	if out {
		return reasonOptedOut, nil
	}
	return "", nil
}

// notifier sends the job's client email once: the row in
// mod_pvekeep_emails is reserved before anything else, whatever happens
// next, so the admin sees every email a job owes and what became of it;
// it is marked sent, together with the copy in WHMCS's tblemails, in one
// transaction after sending. A client who opted out of product emails (or
// has no address) gets none: the row ends skipped. Without SMTP settings
// the row waits, with the reason, for a tick that has them. A pending row
// is retried by the outbox until it is sent or refused, so an email is
// never lost. A crash between the SMTP server accepting it and that mark
// is the one window in which it goes out twice, with the same Message-ID
// (docs/adr/008-client-email-delivery.md).
type notifier struct {
	s     *Service
	job   pvekeep.Job
	facts pvekeep.ServiceFacts
}

func (n *notifier) Notify(ctx context.Context) error {
	s, f := n.s, n.facts
	skip, err := s.skipReason(ctx, f)
	if err != nil {
		return err
	}
	m, why := s.mailerFor(ctx)
	kind := emailKind(n.job)
	var msg mail.Message
	if skip == "" && m != nil {
		if kind, msg, err = s.composeFor(ctx, m, n.job, f); err != nil {
			return err
		}
	}
	now := s.clock.Now().UTC()
	row, _, err := s.emails.ReserveEmail(ctx, store.Email{JobID: n.job.ID, Kind: kind, Recipient: f.ClientEmail, Subject: msg.Subject, CreatedAt: now})
	if err != nil {
		return dbError(err)
	}
	if row.Status != store.EmailPending {
		return nil // an earlier attempt finished with it
	}
	switch {
	case skip != "":
		s.logger.Info("client email skipped", "job_id", n.job.ID, "service_id", f.ServiceID, "reason", skip)
		if err := s.emails.MarkEmailSkipped(ctx, row.ID, skip, now); err != nil {
			return dbError(err)
		}
		return nil
	case m == nil:
		s.logger.Warn("client email waits for SMTP settings", "job_id", n.job.ID, "email_id", row.ID, "reason", why)
		if row.Error != why {
			if err := s.emails.NoteEmailWaiting(ctx, row.ID, why); err != nil {
				return dbError(err)
			}
		}
		return nil
	}
	// Take the row (also one an earlier attempt reserved) only while it is
	// still pending and the outbox has not.
	ok, err := s.emails.ClaimEmail(ctx, row, now)
	if err != nil {
		return dbError(err)
	}
	if !ok {
		return nil
	}
	s.crashPoint(crashEmailReserved)
	s.deliver(ctx, m, row, msg, f)
	return nil
}

func emailKind(j pvekeep.Job) string {
	switch j.Kind {
	case pvekeep.KindVMReinstall:
		return emailReinstalled
	case pvekeep.KindServiceCreate:
		return emailCreated
	}
	return emailRestored
}

// composeFor renders a job's client email in the client's language.
func (s *Service) composeFor(ctx context.Context, m Mailer, job pvekeep.Job, f pvekeep.ServiceFacts) (string, mail.Message, error) {
	kind := emailKind(job)
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
	if job.Kind == pvekeep.KindServiceCreate {
		if p, err := createParamsOf(job); err == nil {
			data.Hostname, data.Username, data.Address = p.Hostname, p.User, p.addressOnly()
		}
	}
	language := f.ClientLanguage
	if language == "" {
		// The client follows the panel's default language.
		if def, err := s.emails.DefaultClientLanguage(ctx); err == nil {
			language = def
		}
	}
	msg, err := m.Compose(kind, language, data)
	if err != nil {
		return "", mail.Message{}, fmt.Errorf("compose %s email: %w", kind, err)
	}
	msg.To, msg.ToName = f.ClientEmail, data.ClientName
	msg.MessageID = m.MessageID(int64(job.ID), kind)
	return kind, msg, nil
}

// deliver sends a claimed email and records the outcome. SMTP being down
// does not hold anything up: the row stays pending, with the reason, and
// the outbox (each tick) tries again; a refusal is recorded as failed,
// with the reason, for the admin. Either way the job goes on.
func (s *Service) deliver(ctx context.Context, m Mailer, row store.Email, msg mail.Message, f pvekeep.ServiceFacts) {
	now := s.clock.Now().UTC()
	// The row was claimed just now; the outbox takes it again once it has
	// been idle for EmailRetryAfter. A send must be over (or abandoned)
	// well before, or two processes would be sending it at once.
	sendCtx, cancel := context.WithTimeout(ctx, s.cfg.EmailRetryAfter*4/5)
	err := m.Send(sendCtx, msg)
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
		if err := s.emails.NoteEmailWaiting(ctx, row.ID, err.Error()); err != nil {
			s.logger.Error("record deferred email", "email_id", row.ID, "err", err)
		}
	default:
		s.logger.Error("client email refused", "email_id", row.ID, "job_id", row.JobID, "err", err)
		if err := s.emails.MarkEmailFailed(ctx, row.ID, err.Error(), now); err != nil {
			s.logger.Error("record failed email", "email_id", row.ID, "err", err)
		}
	}
}

// outboxStats counts what one run of the outbox did.
type outboxStats struct{ sent, waiting, skipped int }

// sendPendingEmails is the outbox: emails whose job went on while SMTP
// was down or not configured, or whose sender died, are sent once they
// have been idle for EmailRetryAfter (longer than a send can take, so a
// sender still at work is never doubled), or at once when they only
// waited for SMTP settings. Without a mailer they stay pending, with the
// reason, for a tick that has one.
func (s *Service) sendPendingEmails(ctx context.Context) outboxStats {
	var st outboxStats
	m, why := s.mailerFor(ctx)
	now := s.clock.Now().UTC()
	rows, err := s.emails.PendingEmails(ctx, now.Add(-s.cfg.EmailRetryAfter), 20)
	if err != nil {
		s.logger.Warn("list pending emails", "err", err)
		return st
	}
	for _, row := range rows {
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
		skip, err := s.skipReason(ctx, f)
		if err != nil {
			s.logger.Warn("read email preferences", "email_id", row.ID, "err", err)
			continue
		}
		if skip != "" {
			if err := s.emails.MarkEmailSkipped(ctx, row.ID, skip, now); err != nil {
				s.logger.Warn("skip pending email", "email_id", row.ID, "err", err)
				continue
			}
			st.skipped++
			continue
		}
		if m == nil {
			st.waiting++
			if row.Error != why {
				if err := s.emails.NoteEmailWaiting(ctx, row.ID, why); err != nil {
					s.logger.Warn("note waiting email", "email_id", row.ID, "err", err)
				}
			}
			continue
		}
		if ok, err := s.emails.ClaimEmail(ctx, row, now); err != nil || !ok {
			continue
		}
		_, msg, err := s.composeFor(ctx, m, job, f)
		if err != nil {
			s.logger.Warn("compose pending email", "email_id", row.ID, "err", err)
			continue
		}
		s.deliver(ctx, m, row, msg, f)
		st.sent++
	}
	if st.waiting > 0 {
		s.logger.Warn("client emails wait in the outbox", "count", st.waiting, "reason", why)
	}
	return st
}
