package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/sourcegraph/jsonrpc2"

	"github.com/pvekeep/pvekeep/internal/jobs"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/service"
)

// APIVersion is the version of the panel contract this plugin speaks. It
// grows when methods or fields are added; nothing is ever renamed.
const APIVersion = 1

// backend is what the table calls: the service layer.
type backend interface {
	Status(ctx context.Context, c service.Call) (service.Status, error)
	ListBackupsIn(ctx context.Context, c service.Call, panelTZ string) (service.BackupList, error)
	CreateBackup(ctx context.Context, c service.Call, note, idempotencyKey string) (pvekeep.Job, error)
	RemoveBackup(ctx context.Context, c service.Call, id pvekeep.BackupID) (pvekeep.Job, error)
	GetJob(ctx context.Context, c service.Call, id pvekeep.JobID) (pvekeep.Job, error)
	RestoreBackup(ctx context.Context, c service.Call, id pvekeep.BackupID, idempotencyKey string) (pvekeep.Job, error)
	RetryRestore(ctx context.Context, c service.Call, id pvekeep.JobID) (pvekeep.Job, error)
	Reinstall(ctx context.Context, c service.Call, failed pvekeep.JobID) (pvekeep.Job, error)
	Overview(ctx context.Context, c service.Call) (service.AdminOverview, error)
	SelectBackup(ctx context.Context, c service.Call, id pvekeep.BackupID) (pvekeep.BackupID, error)
	ListSnapshots(ctx context.Context, c service.Call) (service.SnapshotList, error)
	CreateSnapshot(ctx context.Context, c service.Call, description string, includeRAM bool, idempotencyKey string) (pvekeep.Job, error)
	RollbackSnapshot(ctx context.Context, c service.Call, name, idempotencyKey string) (pvekeep.Job, error)
	RemoveSnapshot(ctx context.Context, c service.Call, name, idempotencyKey string) (pvekeep.Job, error)
	CreateVM(ctx context.Context, c service.Call, r service.CreateRequest) (pvekeep.Job, error)
	SuspendVM(ctx context.Context, c service.Call) (pvekeep.Job, error)
	UnsuspendVM(ctx context.Context, c service.Call) (pvekeep.Job, error)
	ChangePackage(ctx context.Context, c service.Call) (pvekeep.Job, error)
	TerminateVM(ctx context.Context, c service.Call) (pvekeep.Job, error)
	TestServer(ctx context.Context, actor pvekeep.Actor, srv pvekeep.Server, storage string) (service.ServerReport, error)
	ServerOptions(ctx context.Context, actor pvekeep.Actor, srv pvekeep.Server, kind string) ([]service.Option, error)
	GetSchedule(ctx context.Context, c service.Call, panelTZ string) (service.Schedule, error)
	SetSchedule(ctx context.Context, c service.Call, in service.ScheduleInput) (service.Schedule, error)
	ProtectBackup(ctx context.Context, c service.Call, id pvekeep.BackupID, protected bool) (pvekeep.Backup, error)
}

// ticker drives jobs for cron.tick.
type ticker interface {
	TickWithSMTP(ctx context.Context, servers []pvekeep.Server, budget time.Duration, smtp *service.PanelSMTP) (jobs.Stats, error)
}

// Config tunes the table; the zero value works.
type Config struct {
	// Version is the plugin's own version, reported by plugin.hello.
	Version string
	// CallTimeout bounds every method but cron.tick.
	CallTimeout time.Duration
}

// Table is the method table.
type Table struct {
	svc     backend
	tick    ticker
	logger  *slog.Logger
	cfg     Config
	methods map[string]method
}

type method func(ctx context.Context, params json.RawMessage) (any, error)

// New returns the table over a service.
func New(svc backend, tick ticker, logger *slog.Logger, cfg Config) *Table {
	if cfg.CallTimeout <= 0 {
		// Below the PHP client's 30 s, so the answer arrives before the
		// client gives up on the process.
		cfg.CallTimeout = 25 * time.Second
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	t := &Table{svc: svc, tick: tick, logger: logger.With("component", "api"), cfg: cfg}
	t.methods = map[string]method{
		"plugin.hello":           t.hello,
		"service.status":         t.status,
		"backups.list":           t.backupsList,
		"backups.create":         t.backupsCreate,
		"backups.remove":         t.backupsRemove,
		"jobs.get":               t.jobsGet,
		"backups.restore":        t.backupsRestore,
		"restore.retry":          t.restoreRetry,
		"restore.reinstall":      t.restoreReinstall,
		"cron.tick":              t.cronTick,
		"admin.overview":         t.adminOverview,
		"admin.select_backup":    t.adminSelectBackup,
		"server.test":            t.serverTest,
		"server.options":         t.serverOptions,
		"snapshots.list":         t.snapshotsList,
		"snapshots.create":       t.snapshotsCreate,
		"snapshots.rollback":     t.snapshotsRollback,
		"snapshots.remove":       t.snapshotsRemove,
		"schedule.get":           t.scheduleGet,
		"schedule.set":           t.scheduleSet,
		"backups.protect":        t.backupsProtect,
		"service.create":         t.serviceCreate,
		"service.suspend":        t.lifecycle(backend.SuspendVM),
		"service.unsuspend":      t.lifecycle(backend.UnsuspendVM),
		"service.change_package": t.lifecycle(backend.ChangePackage),
		"service.terminate":      t.lifecycle(backend.TerminateVM),
	}
	return t
}

// Methods lists the method names, sorted.
func (t *Table) Methods() []string {
	out := make([]string, 0, len(t.methods))
	for m := range t.methods {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// Call runs one method. It never returns a bare error: every failure is a
// *jsonrpc2.Error with the contract's code.
func (t *Table) Call(ctx context.Context, name string, params json.RawMessage) (result any, rerr *jsonrpc2.Error) {
	m, ok := t.methods[name]
	if !ok {
		return nil, &jsonrpc2.Error{Code: jsonrpc2.CodeMethodNotFound, Message: "method not found: " + clip(name, 64)}
	}
	params = bytes.TrimSpace(params)
	if len(params) == 0 || bytes.Equal(params, []byte("null")) {
		params = json.RawMessage("{}")
	}
	if params[0] != '{' {
		return nil, invalidParams("params must be an object", "")
	}
	if field, bad := invalidText(params); bad {
		return nil, toRPCError(t.logger, name, pvekeep.InvalidInput(field, field+" is not valid UTF-8 text"))
	}
	if name != "cron.tick" {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.cfg.CallTimeout)
		defer cancel()
	}
	defer func() {
		if p := recover(); p != nil {
			result, rerr = nil, toRPCError(t.logger, name, fmt.Errorf("panic: %v", p))
		}
	}()
	start := time.Now()
	res, err := m(ctx, params)
	if err != nil {
		var pe *paramsError
		if errors.As(err, &pe) {
			return nil, invalidParams(pe.msg, pe.field)
		}
		t.logger.Debug("call", "method", name, "took", time.Since(start), "err", err)
		return nil, toRPCError(t.logger, name, err)
	}
	t.logger.Debug("call", "method", name, "took", time.Since(start))
	return res, nil
}

// paramsError is params of the wrong JSON shape: -32602.
type paramsError struct{ msg, field string }

func (e *paramsError) Error() string { return e.msg }

// decode reads params into v, reporting type mismatches as -32602 with the
// offending field.
func decode(params json.RawMessage, v any) error {
	if err := json.Unmarshal(params, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return &paramsError{msg: fmt.Sprintf("%s must be %s", te.Field, jsonType(te.Type.Kind().String())), field: te.Field}
		}
		return &paramsError{msg: "params are not valid"}
	}
	return nil
}

func jsonType(kind string) string {
	switch kind {
	case "int", "int64", "int32", "uint", "uint64", "float64":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice":
		return "an array"
	default:
		return "an object"
	}
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// common are the fields every service-scoped method carries.
type common struct {
	ServiceID int64          `json:"service_id"`
	Actor     pvekeep.Actor  `json:"actor"`
	Server    pvekeep.Server `json:"server"`
}

func (c common) call() service.Call {
	return service.Call{ServiceID: pvekeep.ServiceID(c.ServiceID), Actor: c.Actor, Server: c.Server}
}

func (t *Table) hello(_ context.Context, params json.RawMessage) (any, error) {
	var p struct {
		APIVersion int `json:"api_version"`
	}
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	return map[string]any{
		"plugin_version": t.cfg.Version,
		"api_version":    APIVersion,
		"methods":        t.Methods(),
	}, nil
}

func (t *Table) status(ctx context.Context, params json.RawMessage) (any, error) {
	var p common
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	st, err := t.svc.Status(ctx, p.call())
	if err != nil {
		return nil, err
	}
	return statusFrom(st), nil
}

func (t *Table) backupsList(ctx context.Context, params json.RawMessage) (any, error) {
	var p struct {
		common
		// PanelTimezone is the panel's zone, shown for a service that has
		// no schedule yet.
		PanelTimezone string `json:"panel_timezone"`
	}
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	l, err := t.svc.ListBackupsIn(ctx, p.call(), p.PanelTimezone)
	if err != nil {
		return nil, err
	}
	out := backupListOut{
		Status:        statusFrom(l.Status),
		Quota:         usageOut{Used: l.Quota.Used, Max: l.Quota.Max},
		Items:         make([]backupOut, 0, len(l.Items)),
		ActiveJob:     jobPtr(l.ActiveJob),
		FailedRestore: jobPtr(l.FailedRestore),
		FailedBackup:  jobPtr(l.FailedBackup),
		Snapshots:     snapshotListFrom(l.Snapshots),
		Schedule:      scheduleFrom(l.Schedule),
		ServiceState:  string(l.ServiceState),
	}
	for _, b := range l.Items {
		out.Items = append(out.Items, backupFrom(b))
	}
	return out, nil
}

func (t *Table) backupsCreate(ctx context.Context, params json.RawMessage) (any, error) {
	var p struct {
		common
		Note           string `json:"note"`
		IdempotencyKey string `json:"idempotency_key"`
	}
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	j, err := t.svc.CreateBackup(ctx, p.call(), p.Note, p.IdempotencyKey)
	if err != nil {
		return nil, err
	}
	return map[string]any{"job": jobFrom(j)}, nil
}

func (t *Table) backupsRemove(ctx context.Context, params json.RawMessage) (any, error) {
	var p struct {
		common
		BackupID int64 `json:"backup_id"`
	}
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	j, err := t.svc.RemoveBackup(ctx, p.call(), pvekeep.BackupID(p.BackupID))
	if err != nil {
		return nil, err
	}
	return map[string]any{"job": jobFrom(j)}, nil
}

func (t *Table) jobsGet(ctx context.Context, params json.RawMessage) (any, error) {
	var p struct {
		common
		JobID int64 `json:"job_id"`
	}
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	j, err := t.svc.GetJob(ctx, p.call(), pvekeep.JobID(p.JobID))
	if err != nil {
		return nil, err
	}
	return map[string]any{"job": jobFrom(j)}, nil
}

func (t *Table) backupsRestore(ctx context.Context, params json.RawMessage) (any, error) {
	var p struct {
		common
		BackupID       int64  `json:"backup_id"`
		IdempotencyKey string `json:"idempotency_key"`
	}
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	j, err := t.svc.RestoreBackup(ctx, p.call(), pvekeep.BackupID(p.BackupID), p.IdempotencyKey)
	if err != nil {
		return nil, err
	}
	return map[string]any{"job": jobFrom(j)}, nil
}

func (t *Table) restoreRetry(ctx context.Context, params json.RawMessage) (any, error) {
	var p struct {
		common
		JobID int64 `json:"job_id"`
	}
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	j, err := t.svc.RetryRestore(ctx, p.call(), pvekeep.JobID(p.JobID))
	if err != nil {
		return nil, err
	}
	return map[string]any{"job": jobFrom(j)}, nil
}

// restoreReinstall takes the failed restore's job_id when there is one
// (its recorded MACs are kept); without it the VM is reinstalled as is.
func (t *Table) restoreReinstall(ctx context.Context, params json.RawMessage) (any, error) {
	var p struct {
		common
		JobID int64 `json:"job_id"`
	}
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	j, err := t.svc.Reinstall(ctx, p.call(), pvekeep.JobID(p.JobID))
	if err != nil {
		return nil, err
	}
	return map[string]any{"job": jobFrom(j)}, nil
}

func (t *Table) cronTick(ctx context.Context, params json.RawMessage) (any, error) {
	var p struct {
		Actor   pvekeep.Actor    `json:"actor"`
		Servers []pvekeep.Server `json:"servers"`
		BudgetS float64          `json:"budget_s"`
		// SMTP is the panel's mail settings; the config file's [smtp] wins.
		SMTP *service.PanelSMTP `json:"smtp"`
	}
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	if p.Actor.Type != pvekeep.ActorSystem && p.Actor.Type != pvekeep.ActorAdmin {
		return nil, pvekeep.Forbidden("cron.tick is for the panel's cron")
	}
	budget := time.Duration(p.BudgetS * float64(time.Second))
	// A pass can run long (many jobs, slow Proxmox calls): a hard deadline
	// a little past the budget keeps the tick inside the time the caller
	// waits (cron.php waits budget + 30 s), so it is never killed mid-step.
	ctx, cancel := context.WithTimeout(ctx, budget+20*time.Second)
	defer cancel()
	st, err := t.tick.TickWithSMTP(ctx, p.Servers, budget, p.SMTP)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// adminOverview is the admin's tab in WHMCS (AdminServicesTabFields):
// database only.
func (t *Table) adminOverview(ctx context.Context, params json.RawMessage) (any, error) {
	var p common
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	o, err := t.svc.Overview(ctx, p.call())
	if err != nil {
		return nil, err
	}
	return overviewFrom(o), nil
}

// adminSelectBackup records which backup the admin Restore / Remove
// buttons act on; backup_id 0 clears it.
func (t *Table) adminSelectBackup(ctx context.Context, params json.RawMessage) (any, error) {
	var p struct {
		common
		BackupID int64 `json:"backup_id"`
	}
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	id, err := t.svc.SelectBackup(ctx, p.call(), pvekeep.BackupID(p.BackupID))
	if err != nil {
		return nil, err
	}
	return map[string]any{"selected_backup_id": int64(id)}, nil
}

// serverTest is the panel's TestConnection: every check is in the result,
// a failed one with ok=false and an actionable detail.
func (t *Table) serverTest(ctx context.Context, params json.RawMessage) (any, error) {
	var p struct {
		Actor   pvekeep.Actor  `json:"actor"`
		Server  pvekeep.Server `json:"server"`
		Storage string         `json:"storage"`
	}
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	rep, err := t.svc.TestServer(ctx, p.Actor, p.Server, p.Storage)
	if err != nil {
		return nil, err
	}
	out := serverTestOut{OK: rep.OK, ProxmoxVersion: rep.ProxmoxVersion, Fingerprint: rep.Fingerprint,
		Checks: make([]serverCheckOut, 0, len(rep.Checks))}
	for _, c := range rep.Checks {
		out.Checks = append(out.Checks, serverCheckOut{Name: c.Name, OK: c.OK, Detail: c.Detail})
	}
	return out, nil
}

// serverOptions fills the module settings' Loader dropdowns.
func (t *Table) serverOptions(ctx context.Context, params json.RawMessage) (any, error) {
	var p struct {
		Actor  pvekeep.Actor  `json:"actor"`
		Server pvekeep.Server `json:"server"`
		Kind   string         `json:"kind"`
	}
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	opts, err := t.svc.ServerOptions(ctx, p.Actor, p.Server, p.Kind)
	if err != nil {
		return nil, err
	}
	out := serverOptionsOut{Items: make([]optionOut, 0, len(opts))}
	for _, o := range opts {
		out.Items = append(out.Items, optionOut{Value: o.Value, Label: o.Label})
	}
	return out, nil
}

// snapshotsList is the snapshots section of the client page: database
// only for a client; an admin's call also lists, bounded, the snapshots
// made outside the plugin (flagged, never counted).
func (t *Table) snapshotsList(ctx context.Context, params json.RawMessage) (any, error) {
	var p common
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	l, err := t.svc.ListSnapshots(ctx, p.call())
	if err != nil {
		return nil, err
	}
	out := snapshotListFrom(l)
	st := statusFrom(l.Status)
	out.Status = &st
	return out, nil
}

func (t *Table) snapshotsCreate(ctx context.Context, params json.RawMessage) (any, error) {
	var p struct {
		common
		Description    string `json:"description"`
		IncludeRAM     bool   `json:"include_ram"`
		IdempotencyKey string `json:"idempotency_key"`
	}
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	j, err := t.svc.CreateSnapshot(ctx, p.call(), p.Description, p.IncludeRAM, p.IdempotencyKey)
	if err != nil {
		return nil, err
	}
	return map[string]any{"job": jobFrom(j)}, nil
}

// snapshotParams are what snapshots.rollback and snapshots.remove carry.
type snapshotParams struct {
	common
	Name           string `json:"name"`
	IdempotencyKey string `json:"idempotency_key"`
}

func (t *Table) snapshotsRollback(ctx context.Context, params json.RawMessage) (any, error) {
	var p snapshotParams
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	j, err := t.svc.RollbackSnapshot(ctx, p.call(), p.Name, p.IdempotencyKey)
	if err != nil {
		return nil, err
	}
	return map[string]any{"job": jobFrom(j)}, nil
}

func (t *Table) snapshotsRemove(ctx context.Context, params json.RawMessage) (any, error) {
	var p snapshotParams
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	j, err := t.svc.RemoveSnapshot(ctx, p.call(), p.Name, p.IdempotencyKey)
	if err != nil {
		return nil, err
	}
	return map[string]any{"job": jobFrom(j)}, nil
}

// scheduleGet is the schedule card: the week, its zone, the next run and
// what became of the latest scheduled run.
func (t *Table) scheduleGet(ctx context.Context, params json.RawMessage) (any, error) {
	var p struct {
		common
		PanelTimezone string `json:"panel_timezone"`
	}
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	sc, err := t.svc.GetSchedule(ctx, p.call(), p.PanelTimezone)
	if err != nil {
		return nil, err
	}
	out := scheduleFrom(sc)
	return map[string]any{"schedule": out, "next_run_at": out.NextRunAt}, nil
}

// scheduleSet replaces the week: `timezone` (IANA; "" = `panel_timezone`,
// the panel's own) and `days` [{day, enabled, time}].
func (t *Table) scheduleSet(ctx context.Context, params json.RawMessage) (any, error) {
	var p struct {
		common
		Timezone      string `json:"timezone"`
		PanelTimezone string `json:"panel_timezone"`
		Days          []struct {
			Day     string `json:"day"`
			Enabled bool   `json:"enabled"`
			Time    string `json:"time"`
		} `json:"days"`
	}
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	in := service.ScheduleInput{Timezone: p.Timezone, PanelTimezone: p.PanelTimezone}
	for _, d := range p.Days {
		in.Days = append(in.Days, service.ScheduleDayInput{Day: d.Day, Enabled: d.Enabled, Time: d.Time})
	}
	sc, err := t.svc.SetSchedule(ctx, p.call(), in)
	if err != nil {
		return nil, err
	}
	out := scheduleFrom(sc)
	return map[string]any{"schedule": out, "next_run_at": out.NextRunAt}, nil
}

// backupsProtect is the Keep toggle: Proxmox's protected flag on the volume.
func (t *Table) backupsProtect(ctx context.Context, params json.RawMessage) (any, error) {
	var p struct {
		common
		BackupID  int64 `json:"backup_id"`
		Protected *bool `json:"protected"`
	}
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	if p.Protected == nil {
		return nil, pvekeep.InvalidInput("protected", "protected (true or false) is required")
	}
	b, err := t.svc.ProtectBackup(ctx, p.call(), pvekeep.BackupID(p.BackupID), *p.Protected)
	if err != nil {
		return nil, err
	}
	return map[string]any{"backup": backupFrom(b)}, nil
}

// serviceCreate is service.create: WHMCS's facts that the plugin cannot
// read (the decrypted password among them) travel in the call and are
// never logged; config_options are accepted and not used: the plugin
// reads the service's options from the database, where WHMCS saved them
// before CreateAccount.
func (t *Table) serviceCreate(ctx context.Context, params json.RawMessage) (any, error) {
	var p struct {
		common
		Hostname      string          `json:"hostname"`
		Username      string          `json:"username"`
		Password      string          `json:"password"`
		DedicatedIP   string          `json:"dedicated_ip"`
		SSHKeys       string          `json:"ssh_keys"`
		ConfigOptions json.RawMessage `json:"config_options"`
	}
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	j, err := t.svc.CreateVM(ctx, p.call(), service.CreateRequest{
		Hostname: p.Hostname, Username: p.Username, Password: p.Password, DedicatedIP: p.DedicatedIP, SSHKeys: p.SSHKeys,
	})
	if err != nil {
		return nil, err
	}
	// vmid: the id claimed for the new VM, for the module log and the admin.
	return map[string]any{"job": jobFrom(j), "vmid": int64(j.VMID)}, nil
}

// lifecycle is a module command with nothing but the common params.
func (t *Table) lifecycle(fn func(backend, context.Context, service.Call) (pvekeep.Job, error)) method {
	return func(ctx context.Context, params json.RawMessage) (any, error) {
		var p common
		if err := decode(params, &p); err != nil {
			return nil, err
		}
		j, err := fn(t.svc, ctx, p.call())
		if err != nil {
			return nil, err
		}
		return map[string]any{"job": jobFrom(j)}, nil
	}
}
