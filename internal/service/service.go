package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/reconcile"
	"github.com/pvekeep/pvekeep/internal/store"
)

// serviceStore is what the rules need from the database.
type serviceStore interface {
	Service(ctx context.Context, id pvekeep.ServiceID) (pvekeep.ServiceFacts, error)
	EnqueueBackupCreate(ctx context.Context, r store.NewBackupCreate) (pvekeep.Job, pvekeep.Backup, bool, error)
	EnqueueBackupRemove(ctx context.Context, r store.NewBackupRemove) (pvekeep.Job, bool, error)
	EnqueueRestore(ctx context.Context, r store.NewRestore) (pvekeep.Job, bool, error)
	ExtendLease(ctx context.Context, l pvekeep.Lease, until time.Time) error
	UPIDRecorded(ctx context.Context, upid pvekeep.UPID) (bool, error)
	Job(ctx context.Context, id pvekeep.JobID) (pvekeep.Job, error)
	ActiveJob(ctx context.Context, id pvekeep.ServiceID) (pvekeep.Job, bool, error)
	ServiceJobs(ctx context.Context, id pvekeep.ServiceID) (store.ServiceJobs, error)
	JobByKey(ctx context.Context, id pvekeep.ServiceID, key string) (pvekeep.Job, bool, error)
	Jobs(ctx context.Context, f store.JobFilter) ([]pvekeep.Job, error)
	Backups(ctx context.Context, id pvekeep.ServiceID, statuses ...pvekeep.BackupStatus) ([]pvekeep.Backup, error)
	Backup(ctx context.Context, id pvekeep.ServiceID, backupID pvekeep.BackupID) (pvekeep.Backup, error)
	UpdateJob(ctx context.Context, l pvekeep.Lease, u store.JobUpdate) error
	ReleaseLease(ctx context.Context, l pvekeep.Lease) error
	FinishJob(ctx context.Context, l pvekeep.Lease, f store.JobFinish) error
}

// Dialer opens a Proxmox connection with the credentials the panel handed
// over for this call. Nothing keeps them afterwards.
type Dialer func(ctx context.Context, s pvekeep.Server) (pve.Cluster, error)

// Config tunes the service; the zero value works.
type Config struct {
	// BackupMode is vzdump's mode: snapshot (no downtime), suspend or stop.
	BackupMode string
	// Compress is vzdump's compression; Proxmox defaults to none, which
	// fills backup storage several times faster.
	Compress string
	// LeaseFor is how long an API call holds the job it just created while
	// it submits the first Proxmox task.
	LeaseFor time.Duration
	// TaskPoll is the pause between looks at a task a step waits on.
	TaskPoll time.Duration
	// CrashAfterStep, for the kill tests only, makes the process SIGKILL
	// itself right after recording that step as done.
	CrashAfterStep string
	// GiveUpQueuedAfter fails a job whose first Proxmox task could not be
	// submitted for this long (Proxmox unreachable): the customer gets a
	// clear failure and the VM is free again, instead of a job that holds
	// it forever.
	GiveUpQueuedAfter time.Duration
	// GiveUpRunningAfter fails a job whose Proxmox task has not been seen
	// to end this long after it started.
	GiveUpRunningAfter time.Duration
	// QuietWindow is how long a job is left alone after a request whose
	// answer was lost: longer than Proxmox takes to accept a request, so
	// that afterwards the task list tells whether it did.
	QuietWindow time.Duration
	// ClockSkew is how far the panel's and Proxmox's clocks may disagree
	// when matching tasks to jobs by start time.
	ClockSkew time.Duration
	// EmailRetryAfter is how long an unsent client email rests before the
	// outbox tries it again.
	EmailRetryAfter time.Duration
	// StatusTimeout bounds service.status's look at Proxmox; past it the
	// cached facts answer.
	StatusTimeout time.Duration
	// FactsTimeout bounds a tick's refresh of one server's VM facts.
	FactsTimeout time.Duration
	// RollbackVerdict bounds how long snapshots.rollback waits for Proxmox
	// to accept an older target (a newest-only storage refuses it first
	// thing in the task, before touching the VM).
	RollbackVerdict time.Duration
	// BackupsPerNode is how many backups may run on one Proxmox node at
	// once (default 1: vzdump's lock is node-global, so more would only
	// queue inside Proxmox, where nothing can be seen or reordered).
	BackupsPerNode int
	// ScheduleRetryAfter is the pause before a failed scheduled backup is
	// tried again the same day.
	ScheduleRetryAfter time.Duration
	// ScheduleBusyRetry is the pause before a scheduled run whose service
	// was busy (another job) is tried again.
	ScheduleBusyRetry time.Duration
}

func (c Config) withDefaults() Config {
	if c.BackupMode == "" {
		c.BackupMode = "snapshot"
	}
	if c.Compress == "" {
		c.Compress = "zstd"
	}
	if c.LeaseFor <= 0 {
		c.LeaseFor = 2 * time.Minute
	}
	if c.TaskPoll <= 0 {
		c.TaskPoll = 500 * time.Millisecond
	}
	if c.GiveUpQueuedAfter <= 0 {
		c.GiveUpQueuedAfter = time.Hour
	}
	if c.GiveUpRunningAfter <= 0 {
		c.GiveUpRunningAfter = 48 * time.Hour
	}
	if c.QuietWindow <= 0 {
		c.QuietWindow = 2 * time.Minute
	}
	if c.ClockSkew <= 0 {
		c.ClockSkew = 5 * time.Minute
	}
	if c.EmailRetryAfter <= 0 {
		c.EmailRetryAfter = 5 * time.Minute
	}
	if c.StatusTimeout <= 0 {
		c.StatusTimeout = defaultStatusTimeout
	}
	if c.FactsTimeout <= 0 {
		c.FactsTimeout = defaultFactsTimeout
	}
	if c.RollbackVerdict <= 0 {
		c.RollbackVerdict = 10 * time.Second
	}
	if c.BackupsPerNode <= 0 {
		c.BackupsPerNode = 1
	}
	if c.ScheduleRetryAfter <= 0 {
		c.ScheduleRetryAfter = 10 * time.Minute
	}
	if c.ScheduleBusyRetry <= 0 {
		c.ScheduleBusyRetry = time.Minute
	}
	return c
}

// Service implements every method of the panel contract that acts on a
// service, and the job steps that cron ticks run.
type Service struct {
	st         serviceStore
	snaps      snapshotStore
	emails     emailStore
	facts      factsStore
	admin      adminStore
	sched      scheduleStore
	life       lifecycleStore
	dial       Dialer
	probe      Prober
	run        runner
	mailer     Mailer
	newMailer  MailerFactory
	reconciler *reconcile.Reconciler
	clock      pvekeep.Clock
	logger     *slog.Logger
	cfg        Config
}

// Deps are the Service's collaborators.
type Deps struct {
	Store interface {
		serviceStore
		snapshotStore
		emailStore
		factsStore
		adminStore
		scheduleStore
		lifecycleStore
	}
	Dial  Dialer
	Probe Prober // nil: pve.ProbeTLS
	// Runner drives the job steps; nil: none (a process that only
	// answers server.*).
	Runner runner
	// Mailer sends with the config file's [smtp]; it wins over the
	// panel's mail settings. nil: none configured.
	Mailer Mailer
	// NewMailer builds a Mailer from the panel's mail settings that
	// cron.tick hands over; nil: they cannot be used, and emails wait.
	NewMailer MailerFactory
	Clock     pvekeep.Clock
	Logger    *slog.Logger
}

// New returns a Service and registers its job steps with the runner that
// Tick drives.
func New(d Deps, cfg Config) *Service {
	s := &Service{
		st: d.Store, snaps: d.Store, emails: d.Store, facts: d.Store, admin: d.Store, sched: d.Store, life: d.Store, dial: d.Dial, probe: d.Probe, run: d.Runner,
		mailer: d.Mailer, newMailer: d.NewMailer,
		reconciler: reconcile.New(d.Logger), clock: d.Clock,
		logger: d.Logger.With("component", "service"), cfg: cfg.withDefaults(),
	}
	if s.probe == nil {
		s.probe = defaultProber
	}
	if d.Runner == nil {
		return s
	}
	d.Runner.Handle(pvekeep.KindBackupCreate, s.stepBackupCreate)
	d.Runner.Handle(pvekeep.KindBackupRemove, s.stepBackupRemove)
	d.Runner.Handle(pvekeep.KindBackupRestore, s.stepRestoreJob)
	d.Runner.Handle(pvekeep.KindVMReinstall, s.stepRestoreJob)
	d.Runner.Handle(pvekeep.KindSnapshotCreate, s.stepSnapshotCreate)
	d.Runner.Handle(pvekeep.KindSnapshotRollback, s.stepSnapshotRollback)
	d.Runner.Handle(pvekeep.KindSnapshotRemove, s.stepSnapshotRemove)
	d.Runner.BeforePass(s.scheduleHook)
	d.Runner.Handle(pvekeep.KindServiceCreate, s.stepCreate)
	d.Runner.Handle(pvekeep.KindServiceSuspend, s.stepPower)
	d.Runner.Handle(pvekeep.KindServiceUnsuspend, s.stepPower)
	d.Runner.Handle(pvekeep.KindServiceChangePackage, s.stepChangePackage)
	d.Runner.Handle(pvekeep.KindServiceTerminate, s.stepTerminate)
	return s
}

// Call is what every service-scoped request carries: which service, who
// acts, and how to reach its Proxmox server.
type Call struct {
	ServiceID pvekeep.ServiceID
	Actor     pvekeep.Actor
	Server    pvekeep.Server
}

// access says what a call intends, for the ownership rule.
type access int

const (
	read   access = iota // allowed on Active and Suspended services
	mutate               // allowed on Active services (admins: also Suspended)
)

// authorize loads the service and applies the ownership rule of DESIGN §4.
func (s *Service) authorize(ctx context.Context, c Call, a access) (pvekeep.ServiceFacts, error) {
	if err := c.Actor.Validate(); err != nil {
		return pvekeep.ServiceFacts{}, err
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
	if c.Actor.Type == pvekeep.ActorClient && f.ClientID != c.Actor.ID {
		// The same answer as for a service that is not theirs to see:
		// a client learns nothing about other clients' services.
		return f, pvekeep.Forbidden("this service does not belong to you")
	}
	// data.state tells the panel why (service_state's words): a suspended
	// service's page shows the suspended notice rather than an error.
	switch f.Status {
	case "Active":
	case "Suspended":
		if a == mutate && c.Actor.Type != pvekeep.ActorAdmin {
			e := pvekeep.Forbidden("the service is suspended")
			e.Data = map[string]any{"state": string(StateSuspended)}
			return f, e
		}
	default:
		if c.Actor.Type != pvekeep.ActorAdmin || a == mutate {
			e := pvekeep.Forbidden("the service is not active")
			e.Data = map[string]any{"state": string(serviceState(f.Status))}
			return f, e
		}
	}
	if f.VMID <= 0 {
		return f, pvekeep.InvalidState("no virtual machine is bound to this service")
	}
	return f, nil
}

// connect opens Proxmox for a call, checking the panel sent a server.
func (s *Service) connect(ctx context.Context, srv pvekeep.Server) (pve.Cluster, error) {
	if srv.Host == "" {
		return nil, pvekeep.InvalidInput("server.host", "the Proxmox server is missing")
	}
	if srv.TokenID == "" && srv.Username == "" {
		return nil, pvekeep.InvalidInput("server", "the Proxmox server has neither an API token nor a username")
	}
	c, err := s.dial(ctx, srv)
	if err != nil {
		return nil, pveError("connect to proxmox", err)
	}
	return c, nil
}

// locate finds the node that runs the VM now: VMs migrate, so the node is
// never taken from our own records.
func (s *Service) locate(ctx context.Context, c pve.Cluster, vmid pvekeep.VMID) (pve.VMRef, error) {
	ref, err := c.FindVM(ctx, vmid)
	if err != nil {
		if errors.Is(err, pve.ErrNotFound) {
			e := pvekeep.InvalidState(fmt.Sprintf("virtual machine %d does not exist on the Proxmox cluster", vmid))
			e.Err = err
			return ref, e
		}
		return ref, pveError("find vm", err)
	}
	return ref, nil
}

// checkNoJob refuses when the plugin runs a job on the service. It asks
// only the database, so it holds while the VM is gone mid-reinstall or
// Proxmox cannot be reached.
func (s *Service) checkNoJob(ctx context.Context, f pvekeep.ServiceFacts) error {
	if j, ok, err := s.st.ActiveJob(ctx, f.ServiceID); err != nil {
		return dbError(err)
	} else if ok {
		return pvekeep.Locked(lockName(j.Kind), j.ID)
	}
	return nil
}

// checkNoProxmoxLock refuses when Proxmox holds a lock on the VM (a
// backup, migration or snapshot started outside the plugin).
func checkNoProxmoxLock(ctx context.Context, c pve.Cluster, vmid pvekeep.VMID, node string) error {
	st, err := c.VMStatus(ctx, node, vmid)
	if err != nil {
		return pveError("read vm status", err)
	}
	if st.Lock != "" {
		return pvekeep.Locked(st.Lock, 0)
	}
	return nil
}

// reachVM refuses when the service has a job running, then connects to
// the call's Proxmox, finds the node the VM runs on and refuses when
// Proxmox holds a lock on it: what every mutating call does first.
func (s *Service) reachVM(ctx context.Context, c Call, f pvekeep.ServiceFacts) (pve.Cluster, pve.VMRef, error) {
	if err := s.checkNoJob(ctx, f); err != nil {
		return nil, pve.VMRef{}, err
	}
	pc, ref, st, err := s.vmState(ctx, c.Server, f)
	if err != nil {
		return nil, pve.VMRef{}, err
	}
	if st.Lock != "" {
		return nil, pve.VMRef{}, pvekeep.Locked(st.Lock, 0)
	}
	return pc, ref, nil
}

// lockName is what service.status and `locked` errors call a job's hold
// on the VM, in Proxmox's vocabulary where one exists.
func lockName(k pvekeep.JobKind) string {
	switch k {
	case pvekeep.KindBackupCreate:
		return "backup"
	case pvekeep.KindBackupRemove:
		return "backup-remove"
	case pvekeep.KindBackupRestore:
		return "restore"
	case pvekeep.KindVMReinstall:
		return "reinstall"
	case pvekeep.KindSnapshotCreate:
		return "snapshot"
	case pvekeep.KindSnapshotRollback:
		return "rollback"
	case pvekeep.KindSnapshotRemove:
		return "snapshot-delete"
	case pvekeep.KindServiceCreate:
		return "create"
	case pvekeep.KindServiceSuspend:
		return "suspending"
	case pvekeep.KindServiceUnsuspend:
		return "unsuspending"
	case pvekeep.KindServiceChangePackage:
		return "change-package"
	case pvekeep.KindServiceTerminate:
		return "terminating"
	default:
		return string(k)
	}
}

// dbError turns a store failure into an application error.
func dbError(err error) error {
	if _, ok := pvekeep.AsError(err); ok {
		return err
	}
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		return pvekeep.Unavailable("database", err)
	}
	return fmt.Errorf("database: %w", err)
}

// pveError turns a gateway failure into an application error: Proxmox
// unreachable is retryable, anything Proxmox said is upstream with its
// message (the gateway keeps secrets out of it).
func pveError(what string, err error) error {
	if _, ok := pvekeep.AsError(err); ok {
		return err
	}
	if e := configError(err); e != nil {
		return e
	}
	var le *pve.LockedError
	switch {
	case errors.As(err, &le):
		return pvekeep.Locked(le.Lock, 0)
	case errors.Is(err, pve.ErrTransient), errors.Is(err, context.DeadlineExceeded):
		return pvekeep.Unavailable("proxmox", fmt.Errorf("%s: %w", what, err))
	case errors.Is(err, pve.ErrUnauthorized):
		return pvekeep.Upstream("Proxmox refused the module's credentials", fmt.Errorf("%s: %w", what, err))
	default:
		return pvekeep.Upstream(upstreamDetail(err), fmt.Errorf("%s: %w", what, err))
	}
}

// configError turns a connection setting that cannot work into a
// permanent invalid_input naming the panel's field: settings the gateway
// refused before sending anything (*pve.ConfigError), and a certificate
// the TLS policy refused (*pve.CertError), whose message gives the
// fingerprint the server presented. nil for anything else.
func configError(err error) error {
	var ce *pve.ConfigError
	var cert *pve.CertError
	var e *pvekeep.Error
	switch {
	case errors.As(err, &ce):
		e = pvekeep.InvalidInput(ce.Field, ce.Message)
	case errors.As(err, &cert) && cert.Pinned != "":
		e = pvekeep.InvalidInput("server.fingerprint", fmt.Sprintf(
			"the Proxmox server presented a certificate with fingerprint %s, not the one in the server's Access Hash (%s): "+
				"if the node's certificate was renewed on purpose, set the Access Hash to %s", cert.Fingerprint, cert.Pinned, cert.Fingerprint))
	case errors.As(err, &cert):
		e = pvekeep.InvalidInput("server.fingerprint", fmt.Sprintf(
			"the Proxmox server's certificate is not trusted (%s); its fingerprint is %s: set it in the server's Access Hash to pin it",
			rootCause(cert.Err), cert.Fingerprint))
	default:
		return nil
	}
	e.Err = err
	return e
}

// submitError classifies the failure of a non-idempotent POST (vzdump,
// restore, delete…). When Proxmox answered with an error of its own (a
// 4xx, or its generic 500 with a message) it refused for good: the job
// fails with its words. Only a request that may never have arrived (no
// answer, a proxy's 502/503/504, PVE's 595/596) is worth submitting again,
// and then only after looking for its trace.
func submitError(what string, err error) error {
	if errors.Is(err, pve.ErrBusy) {
		// PVE could not take the VM's config lock in time: busy, not a no.
		return pvekeep.Unavailable("proxmox", fmt.Errorf("%s: %w", what, err))
	}
	var he *pve.HTTPError
	if errors.As(err, &he) && (he.Code >= 400 && he.Code < 500 && he.Code != 401 && he.Code != 403 || he.Code == 500) {
		var le *pve.LockedError
		if errors.As(err, &le) {
			return pvekeep.Locked(le.Lock, 0)
		}
		return pvekeep.Upstream(upstreamDetail(err), fmt.Errorf("%s: %w", what, err))
	}
	return pveError(what, err)
}

// overdue says why a job must be given up on, or "".
func (s *Service) overdue(job pvekeep.Job) string {
	now := s.clock.Now()
	switch {
	case job.UPID == "" && job.StartedAt == nil && job.Step != stepWaitNode && now.Sub(queuedSince(job)) > s.cfg.GiveUpQueuedAfter:
		return fmt.Sprintf("Proxmox could not be reached for %s; nothing was done", s.cfg.GiveUpQueuedAfter)
	case job.StartedAt != nil && now.Sub(*job.StartedAt) > s.cfg.GiveUpRunningAfter:
		return fmt.Sprintf("the Proxmox task did not finish within %s", s.cfg.GiveUpRunningAfter)
	}
	return ""
}

// queuedSince is when a queued job started waiting on Proxmox: when its
// node's gate let it through, not while it waited for its turn there.
func queuedSince(job pvekeep.Job) time.Time {
	if job.AdmittedAt != nil {
		return *job.AdmittedAt
	}
	return job.CreatedAt
}

// upstreamDetail is what the client may read of a Proxmox failure:
// Proxmox's own message, never our request's method, path or URL, nor TLS
// details (those go to the log under the error's ref).
func upstreamDetail(err error) string {
	var he *pve.HTTPError
	if errors.As(err, &he) && he.Message != "" {
		return strings.TrimSpace(he.Message)
	}
	var te *pve.TaskError
	if errors.As(err, &te) {
		return te.ExitStatus
	}
	return "Proxmox could not be reached as configured"
}
