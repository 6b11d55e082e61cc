package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sourcegraph/jsonrpc2"

	"github.com/pvekeep/pvekeep/internal/jobs"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/service"
)

// fakeBackend answers every method with err (or a fixed job), recording
// the call it got.
type fakeBackend struct {
	err    error
	got    service.Call
	create service.CreateRequest
	note   string
	tick   []pvekeep.Server
	smtp   *service.PanelSMTP
	status *service.Status // what Status answers, when set
	// what Overview answers, when set
	overview *service.AdminOverview
	panelTZ  string
	schedIn  service.ScheduleInput
	protect  *bool
}

func (f *fakeBackend) Status(_ context.Context, c service.Call) (service.Status, error) {
	f.got = c
	if f.status != nil {
		return *f.status, f.err
	}
	return service.Status{VMID: 100, Node: "pve1", Power: "running"}, f.err
}

func (f *fakeBackend) ListBackupsIn(_ context.Context, c service.Call, panelTZ string) (service.BackupList, error) {
	f.got, f.panelTZ = c, panelTZ
	return service.BackupList{Quota: service.Usage{Used: 1, Max: 3}, Items: []pvekeep.Backup{{
		ID: 5, Note: "n", SizeBytes: 10, Status: pvekeep.BackupAvailable, Origin: pvekeep.OriginManual, Protected: true,
		CreatedAt: time.Date(2026, 11, 22, 10, 0, 0, 0, time.FixedZone("CET", 3600)),
	}}, Schedule: fakeSchedule()}, f.err
}

func fakeSchedule() service.Schedule {
	next := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	sc := service.Schedule{Timezone: "Europe/Berlin", NextRunAt: &next, SkippedReason: "all_protected",
		LastRun: &service.ScheduleRun{Date: "2026-11-22", State: "skipped", Reason: "all_protected", MaxAttempts: 4,
			DueAt: time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)}}
	for _, d := range []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"} {
		sc.Days = append(sc.Days, service.ScheduleDay{Day: d, Enabled: d == "mon", Time: "03:00"})
	}
	return sc
}

func (f *fakeBackend) GetSchedule(_ context.Context, c service.Call, panelTZ string) (service.Schedule, error) {
	f.got, f.panelTZ = c, panelTZ
	return fakeSchedule(), f.err
}

func (f *fakeBackend) SetSchedule(_ context.Context, c service.Call, in service.ScheduleInput) (service.Schedule, error) {
	f.got, f.schedIn = c, in
	return fakeSchedule(), f.err
}

func (f *fakeBackend) ProtectBackup(_ context.Context, c service.Call, id pvekeep.BackupID, protected bool) (pvekeep.Backup, error) {
	f.got, f.protect = c, &protected
	return pvekeep.Backup{ID: id, Status: pvekeep.BackupAvailable, Protected: protected, Origin: pvekeep.OriginScheduled,
		CreatedAt: time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)}, f.err
}

func (f *fakeBackend) CreateBackup(_ context.Context, c service.Call, note, _ string) (pvekeep.Job, error) {
	f.got, f.note = c, note
	return pvekeep.Job{ID: 9, Kind: pvekeep.KindBackupCreate, State: pvekeep.JobQueued}, f.err
}

func (f *fakeBackend) RemoveBackup(_ context.Context, c service.Call, _ pvekeep.BackupID) (pvekeep.Job, error) {
	f.got = c
	return pvekeep.Job{}, f.err
}

func (f *fakeBackend) GetJob(_ context.Context, c service.Call, _ pvekeep.JobID) (pvekeep.Job, error) {
	f.got = c
	return pvekeep.Job{}, f.err
}

func (f *fakeBackend) RestoreBackup(_ context.Context, c service.Call, _ pvekeep.BackupID, _ string) (pvekeep.Job, error) {
	f.got = c
	return pvekeep.Job{}, f.err
}

func (f *fakeBackend) RetryRestore(_ context.Context, c service.Call, _ pvekeep.JobID) (pvekeep.Job, error) {
	f.got = c
	return pvekeep.Job{}, f.err
}

func (f *fakeBackend) Reinstall(_ context.Context, c service.Call, _ pvekeep.JobID) (pvekeep.Job, error) {
	f.got = c
	return pvekeep.Job{}, f.err
}

func (f *fakeBackend) CreateVM(_ context.Context, c service.Call, r service.CreateRequest) (pvekeep.Job, error) {
	f.got, f.create = c, r
	return pvekeep.Job{ID: 9, Kind: pvekeep.KindServiceCreate, State: pvekeep.JobRunning, VMID: 105}, f.err
}

func (f *fakeBackend) SuspendVM(_ context.Context, c service.Call) (pvekeep.Job, error) {
	f.got = c
	return pvekeep.Job{Kind: pvekeep.KindServiceSuspend}, f.err
}

func (f *fakeBackend) UnsuspendVM(_ context.Context, c service.Call) (pvekeep.Job, error) {
	f.got = c
	return pvekeep.Job{Kind: pvekeep.KindServiceUnsuspend}, f.err
}

func (f *fakeBackend) ChangePackage(_ context.Context, c service.Call) (pvekeep.Job, error) {
	f.got = c
	return pvekeep.Job{Kind: pvekeep.KindServiceChangePackage}, f.err
}

func (f *fakeBackend) TerminateVM(_ context.Context, c service.Call) (pvekeep.Job, error) {
	f.got = c
	return pvekeep.Job{Kind: pvekeep.KindServiceTerminate}, f.err
}

func (f *fakeBackend) TestServer(_ context.Context, _ pvekeep.Actor, srv pvekeep.Server, _ string) (service.ServerReport, error) {
	f.got = service.Call{Server: srv}
	return service.ServerReport{}, f.err
}

func (f *fakeBackend) ServerOptions(_ context.Context, _ pvekeep.Actor, srv pvekeep.Server, _ string) ([]service.Option, error) {
	f.got = service.Call{Server: srv}
	return nil, f.err
}

func (f *fakeBackend) TickWithSMTP(_ context.Context, servers []pvekeep.Server, _ time.Duration, smtp *service.PanelSMTP) (jobs.Stats, error) {
	f.tick, f.smtp = servers, smtp
	return jobs.Stats{Passes: 1}, f.err
}

func (f *fakeBackend) Overview(_ context.Context, c service.Call) (service.AdminOverview, error) {
	f.got = c
	if f.overview != nil {
		return *f.overview, f.err
	}
	return service.AdminOverview{}, f.err
}

func (f *fakeBackend) SelectBackup(_ context.Context, c service.Call, id pvekeep.BackupID) (pvekeep.BackupID, error) {
	f.got = c
	return id, f.err
}

func (f *fakeBackend) ListSnapshots(_ context.Context, c service.Call) (service.SnapshotList, error) {
	f.got = c
	exp := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	return service.SnapshotList{Quota: service.Usage{Used: 1, Max: 3}, LifetimeDays: 1, Items: []pvekeep.Snapshot{{
		Name: "pk20261122-100000-abcdef", Description: "d", Status: pvekeep.SnapshotAvailable,
		CreatedAt: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), ExpiresAt: &exp,
	}}}, f.err
}

func (f *fakeBackend) CreateSnapshot(_ context.Context, c service.Call, description string, _ bool, _ string) (pvekeep.Job, error) {
	f.got, f.note = c, description
	return pvekeep.Job{ID: 10, Kind: pvekeep.KindSnapshotCreate, State: pvekeep.JobRunning}, f.err
}

func (f *fakeBackend) RollbackSnapshot(_ context.Context, c service.Call, name, _ string) (pvekeep.Job, error) {
	f.got, f.note = c, name
	return pvekeep.Job{}, f.err
}

func (f *fakeBackend) RemoveSnapshot(_ context.Context, c service.Call, name, _ string) (pvekeep.Job, error) {
	f.got, f.note = c, name
	return pvekeep.Job{}, f.err
}

func newTable(f *fakeBackend) *Table {
	return New(f, f, slog.New(slog.DiscardHandler), Config{Version: "test"})
}

func TestApplicationErrorsGetTheirContractCode(t *testing.T) {
	t.Parallel()
	cases := []struct {
		err    error
		code   int64
		reason string
	}{
		{pvekeep.NotFound("service"), 1001, "not_found"},
		{pvekeep.Forbidden("no"), 1002, "forbidden"},
		{pvekeep.Locked("backup", 4), 1003, "locked"},
		{pvekeep.QuotaExceeded("backups", 3, 3), 1004, "quota_exceeded"},
		{pvekeep.InvalidState("no"), 1005, "invalid_state"},
		{pvekeep.Upstream("VM is locked", nil), 1006, "upstream"},
		{pvekeep.InvalidInput("note", "too long"), 1007, "invalid_input"},
		{pvekeep.Unavailable("database", errors.New("dial")), 1008, "unavailable"},
		{&pvekeep.Error{Reason: pvekeep.ReasonCooldown, Message: "wait"}, 1009, "cooldown"},
		{context.DeadlineExceeded, 1008, "unavailable"},
	}
	for _, tc := range cases {
		t.Run(tc.reason+"/"+tc.err.Error(), func(t *testing.T) {
			t.Parallel()
			tbl := newTable(&fakeBackend{err: tc.err})
			_, rerr := tbl.Call(context.Background(), "backups.create", json.RawMessage(`{"service_id":1}`))
			if rerr == nil || rerr.Code != tc.code {
				t.Fatalf("Call() error = %+v, want code %d", rerr, tc.code)
			}
			var data map[string]any
			if err := json.Unmarshal(*rerr.Data, &data); err != nil {
				t.Fatalf("error data %s: %v", *rerr.Data, err)
			}
			if data["reason"] != tc.reason {
				t.Errorf("data.reason = %v, want %s", data["reason"], tc.reason)
			}
		})
	}
}

func TestStatusCarriesProxmoxsTroubleBesideTheLock(t *testing.T) {
	t.Parallel()
	pe := pvekeep.InvalidState("virtual machine 100 does not exist on the Proxmox cluster")
	tbl := newTable(&fakeBackend{status: &service.Status{
		VMID: 100, Power: service.PowerMissing, ProxmoxError: pe,
		Lock: service.Lock{Locked: true, Reason: "reinstall", JobID: 7},
	}})
	res, rerr := tbl.Call(context.Background(), "service.status", json.RawMessage(`{"service_id":1}`))
	if rerr != nil {
		t.Fatalf("Call() error = %+v", rerr)
	}
	raw, _ := json.Marshal(res)
	want := `"power":"missing","lock":{"locked":true,"reason":"reinstall","job_id":7}`
	wantErr := `"proxmox_error":{"reason":"invalid_state","message":"virtual machine 100 does not exist on the Proxmox cluster"}`
	if !strings.Contains(string(raw), want) || !strings.Contains(string(raw), wantErr) {
		t.Errorf("service.status = %s, want it to contain %s and %s", raw, want, wantErr)
	}
}

func TestUnclassifiedErrorIsInternalWithRefAndNoDetail(t *testing.T) {
	t.Parallel()
	tbl := newTable(&fakeBackend{err: errors.New("password=hunter2 leaked in a driver message")})
	_, rerr := tbl.Call(context.Background(), "service.status", json.RawMessage(`{"service_id":1}`))
	if rerr == nil || rerr.Code != jsonrpc2.CodeInternalError {
		t.Fatalf("Call() error = %+v, want -32603", rerr)
	}
	raw, _ := json.Marshal(rerr)
	if strings.Contains(string(raw), "hunter2") || !strings.Contains(string(raw), `"ref"`) {
		t.Errorf("internal error %s must carry a ref and no detail", raw)
	}
}

func TestParamsOfTheWrongShapeAreInvalidParams(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, params string
	}{
		{"params array", `[1,2]`},
		{"params string", `"x"`},
		{"service_id as string", `{"service_id":"42"}`},
		{"actor as number", `{"service_id":42,"actor":7}`},
		{"note as number", `{"service_id":42,"note":5}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeBackend{}
			_, rerr := newTable(f).Call(context.Background(), "backups.create", json.RawMessage(tc.params))
			if rerr == nil || rerr.Code != jsonrpc2.CodeInvalidParams {
				t.Fatalf("Call(%s) error = %+v, want -32602", tc.params, rerr)
			}
			if f.got.ServiceID != 0 {
				t.Errorf("the backend was called despite bad params")
			}
		})
	}
}

func TestUnknownMethodIsMethodNotFound(t *testing.T) {
	t.Parallel()
	_, rerr := newTable(&fakeBackend{}).Call(context.Background(), "backups.nuke", nil)
	if rerr == nil || rerr.Code != jsonrpc2.CodeMethodNotFound {
		t.Fatalf("Call() error = %+v, want -32601", rerr)
	}
}

func TestCommonFieldsReachTheService(t *testing.T) {
	t.Parallel()
	f := &fakeBackend{}
	_, rerr := newTable(f).Call(context.Background(), "backups.create", json.RawMessage(
		`{"service_id":42,"actor":{"type":"client","id":7},"server":{"host":"pve","port":8006,"token_id":"a@pve!b"},"note":"hi","extra_field":true}`))
	if rerr != nil {
		t.Fatalf("Call() error = %+v", rerr)
	}
	want := service.Call{ServiceID: 42, Actor: pvekeep.Actor{Type: pvekeep.ActorClient, ID: 7},
		Server: pvekeep.Server{Host: "pve", Port: 8006, TokenID: "a@pve!b"}}
	if f.got != want || f.note != "hi" {
		t.Errorf("service got %+v note %q, want %+v note hi", f.got, f.note, want)
	}
}

func TestBackupsListShapesTimesAsUTC(t *testing.T) {
	t.Parallel()
	res, rerr := newTable(&fakeBackend{}).Call(context.Background(), "backups.list", json.RawMessage(`{"service_id":1}`))
	if rerr != nil {
		t.Fatal(rerr)
	}
	raw, _ := json.Marshal(res)
	if !strings.Contains(string(raw), `"created_at":"2026-11-22T09:00:00Z"`) || !strings.Contains(string(raw), `"quota":{"used":1,"max":3}`) {
		t.Errorf("backups.list = %s, want UTC RFC 3339 times and the quota", raw)
	}
}

func TestCronTickIsForTheSystemOrAdmins(t *testing.T) {
	t.Parallel()
	f := &fakeBackend{}
	_, rerr := newTable(f).Call(context.Background(), "cron.tick", json.RawMessage(`{"actor":{"type":"client","id":3},"servers":[{"id":1,"host":"h"}]}`))
	if rerr == nil || rerr.Code != 1002 {
		t.Fatalf("cron.tick as a client = %+v, want 1002", rerr)
	}
	if f.tick != nil {
		t.Error("the tick ran for a client")
	}
	if _, rerr := newTable(f).Call(context.Background(), "cron.tick", json.RawMessage(`{"actor":{"type":"system"},"servers":[{"id":1,"host":"h"}],"budget_s":0}`)); rerr != nil {
		t.Fatalf("cron.tick as the system = %+v", rerr)
	}
	if len(f.tick) != 1 {
		t.Errorf("the tick got %d servers, want 1", len(f.tick))
	}
}

// contractMethods are the method names the panel relies on (DESIGN §3):
// they may gain fields, never disappear or be renamed.
var contractMethods = []string{
	"backups.create", "backups.list", "backups.remove", "backups.restore", "cron.tick",
	"jobs.get", "plugin.hello", "restore.reinstall", "restore.retry", "service.status",
	"admin.overview", "admin.select_backup", "server.test", "server.options",
	"snapshots.list", "snapshots.create", "snapshots.rollback", "snapshots.remove",
	"schedule.get", "schedule.set", "backups.protect",
	"service.create", "service.suspend", "service.unsuspend", "service.change_package", "service.terminate",
}

// backups.list carries the schedule (contract-9-10's shape) and each
// backup's protected flag; the panel's zone reaches the service.
func TestBackupsListCarriesScheduleAndProtected(t *testing.T) {
	t.Parallel()
	f := &fakeBackend{}
	res, rerr := newTable(f).Call(context.Background(), "backups.list", json.RawMessage(`{"service_id":1,"panel_timezone":"Europe/Berlin"}`))
	if rerr != nil {
		t.Fatal(rerr)
	}
	raw, _ := json.Marshal(res)
	for _, want := range []string{`"protected":true`, `"timezone":"Europe/Berlin"`, `{"day":"mon","enabled":true,"time":"03:00"}`,
		`"next_run_at":"2026-11-23T02:00:00Z"`, `"window":""`, `"skipped_reason":"all_protected"`,
		`"last_run":{"date":"2026-11-22","state":"skipped","attempts":0,"max_attempts":4,"reason":"all_protected","error":"","due_at":"2026-11-22T02:00:00Z"}`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("backups.list = %s, want %s", raw, want)
		}
	}
	if f.panelTZ != "Europe/Berlin" {
		t.Errorf("panel zone %q did not reach the service", f.panelTZ)
	}
}

func TestScheduleSetPassesTheWeekAndAnswersScheduleAndNextRun(t *testing.T) {
	t.Parallel()
	f := &fakeBackend{}
	res, rerr := newTable(f).Call(context.Background(), "schedule.set", json.RawMessage(
		`{"service_id":1,"timezone":"","panel_timezone":"America/New_York","days":[{"day":"mon","enabled":true,"time":"03:00"},{"day":"sun","enabled":false,"time":""}]}`))
	if rerr != nil {
		t.Fatal(rerr)
	}
	want := service.ScheduleInput{PanelTimezone: "America/New_York", Days: []service.ScheduleDayInput{{Day: "mon", Enabled: true, Time: "03:00"}, {Day: "sun"}}}
	if f.schedIn.PanelTimezone != want.PanelTimezone || f.schedIn.Timezone != "" || !slices.Equal(f.schedIn.Days, want.Days) {
		t.Errorf("service got %+v, want %+v", f.schedIn, want)
	}
	raw, _ := json.Marshal(res)
	if !strings.Contains(string(raw), `"next_run_at":"2026-11-23T02:00:00Z"`) || !strings.Contains(string(raw), `"schedule":{"timezone"`) {
		t.Errorf("schedule.set = %s", raw)
	}
	if _, rerr := newTable(f).Call(context.Background(), "schedule.set", json.RawMessage(`{"service_id":1,"days":{"mon":true}}`)); rerr == nil || rerr.Code != jsonrpc2.CodeInvalidParams {
		t.Errorf("days as an object = %+v, want -32602", rerr)
	}
}

func TestBackupsProtectNeedsTheFlag(t *testing.T) {
	t.Parallel()
	f := &fakeBackend{}
	_, rerr := newTable(f).Call(context.Background(), "backups.protect", json.RawMessage(`{"service_id":1,"backup_id":5}`))
	if rerr == nil || rerr.Code != 1007 || f.protect != nil {
		t.Fatalf("without protected = %+v (service called: %v), want 1007 and no call", rerr, f.protect != nil)
	}
	res, rerr := newTable(f).Call(context.Background(), "backups.protect", json.RawMessage(`{"service_id":1,"backup_id":5,"protected":true}`))
	if rerr != nil || f.protect == nil || !*f.protect {
		t.Fatalf("protect = %+v, service got %v", rerr, f.protect)
	}
	raw, _ := json.Marshal(res)
	if !strings.Contains(string(raw), `"backup":{"id":5,`) || !strings.Contains(string(raw), `"protected":true`) {
		t.Errorf("backups.protect = %s", raw)
	}
}

// snapshots.list answers DESIGN §3's shape: quota, lifetime_s and items
// with name, description, created_at, expires_at and vmstate.
func TestSnapshotsListAnswersTheContractShape(t *testing.T) {
	t.Parallel()
	res, rerr := newTable(&fakeBackend{}).Call(context.Background(), "snapshots.list", json.RawMessage(`{"service_id":1}`))
	if rerr != nil {
		t.Fatal(rerr)
	}
	raw, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Quota     struct{ Used, Max int } `json:"quota"`
		LifetimeS int64                   `json:"lifetime_s"`
		Items     []map[string]any        `json:"items"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if got.Quota.Used != 1 || got.Quota.Max != 3 || got.LifetimeS != 86400 || len(got.Items) != 1 {
		t.Fatalf("snapshots.list = %s", raw)
	}
	for _, k := range []string{"name", "description", "created_at", "expires_at", "vmstate"} {
		if _, ok := got.Items[0][k]; !ok {
			t.Errorf("item lacks %q: %s", k, raw)
		}
	}
	if got.Items[0]["expires_at"] != "2026-11-23T10:00:00Z" {
		t.Errorf("expires_at = %v", got.Items[0]["expires_at"])
	}
}

func TestHelloListsExactlyTheMethodsTheTableServes(t *testing.T) {
	t.Parallel()
	tbl := newTable(&fakeBackend{})
	res, rerr := tbl.Call(context.Background(), "plugin.hello", json.RawMessage(`{"api_version":1}`))
	if rerr != nil {
		t.Fatal(rerr)
	}
	m := res.(map[string]any)
	if m["api_version"] != APIVersion {
		t.Errorf("api_version = %v, want %d", m["api_version"], APIVersion)
	}
	listed := m["methods"].([]string)
	served := make([]string, 0, len(tbl.methods))
	for name := range tbl.methods {
		served = append(served, name)
	}
	sort.Strings(served)
	if !slices.Equal(listed, served) {
		t.Errorf("plugin.hello lists %q,\nthe table serves %q", listed, served)
	}
	for _, name := range contractMethods {
		if !slices.Contains(listed, name) {
			t.Errorf("contract method %q is missing", name)
		}
	}
	for _, name := range listed {
		if _, rerr := tbl.Call(context.Background(), name, json.RawMessage(`{}`)); rerr != nil && rerr.Code == jsonrpc2.CodeMethodNotFound {
			t.Errorf("listed method %q is not served: %v", name, rerr)
		}
	}
}

// service.create hands WHMCS's facts to the service as sent, and every
// module command answers {job}.
func TestLifecycleMethodsPassTheirParamsAndAnswerAJob(t *testing.T) {
	t.Parallel()
	for _, m := range []string{"service.create", "service.suspend", "service.unsuspend", "service.change_package", "service.terminate"} {
		t.Run(m, func(t *testing.T) {
			t.Parallel()
			f := &fakeBackend{}
			res, rerr := newTable(f).Call(context.Background(), m, json.RawMessage(`{"service_id":42,"actor":{"type":"system"},
"hostname":"vm42.example.net","username":"jane","password":"Pa$$\"w<rd>","dedicated_ip":"203.0.113.10",
"ssh_keys":"ssh-ed25519 AAAA one\nssh-rsa BBBB two","config_options":{"RAM":"4"}}`))
			if rerr != nil {
				t.Fatalf("%s: %+v", m, rerr)
			}
			if _, ok := res.(map[string]any)["job"]; !ok || f.got.ServiceID != 42 {
				t.Errorf("%s = %v, service %d; want a job for service 42", m, res, f.got.ServiceID)
			}
			want := service.CreateRequest{Hostname: "vm42.example.net", Username: "jane", Password: `Pa$$"w<rd>`,
				DedicatedIP: "203.0.113.10", SSHKeys: "ssh-ed25519 AAAA one\nssh-rsa BBBB two"}
			if m == "service.create" && f.create != want {
				t.Errorf("create request = %+v, want %+v", f.create, want)
			}
			if v, ok := res.(map[string]any)["vmid"]; m == "service.create" && (!ok || v != int64(105)) {
				t.Errorf("service.create vmid = %v, want the job's 105", v)
			}
		})
	}
}
