package service_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/dbtest"
	"github.com/pvekeep/pvekeep/internal/jobs"
	"github.com/pvekeep/pvekeep/internal/mail"
	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/pvesim"
	"github.com/pvekeep/pvekeep/internal/seed"
	"github.com/pvekeep/pvekeep/internal/service"
	"github.com/pvekeep/pvekeep/internal/store"
)

// These tests run the service over the real store (MariaDB) and the real
// gateway against the simulator; the clock is a test clock so that lease
// expiry can be stepped over without sleeping.

type testClock struct {
	mu   sync.Mutex
	now  time.Time
	real bool // follow the wall clock (Advance does nothing)
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.real {
		return time.Now()
	}
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type bundle struct {
	svc       *service.Service
	deps      service.Deps // what svc was made with, for a second one
	cfg       service.Config
	db        *dbtest.DB
	sim       *pvesim.Sim
	clock     *testClock
	server    pvekeep.Server
	clientID  int64
	productID int64
	service   pvekeep.ServiceID
	seed      *seed.Seeder
}

func setup(t *testing.T, quota int) *bundle {
	t.Helper()
	return setupWith(t, quota, nil, service.Config{})
}

// setupWith is setup with a mailer and service settings of the test's own
// (zero fields keep setup's).
func setupWith(t *testing.T, quota int, mailer service.Mailer, cfg service.Config) *bundle {
	t.Helper()
	return setupOn(t, 1, quota, mailer, cfg)
}

// setupOn is setupWith on a cluster of nodes nodes (VMs 100 and 101
// round-robin, a template per node).
func setupOn(t *testing.T, nodes, quota int, mailer service.Mailer, cfg service.Config) *bundle {
	t.Helper()
	db := dbtest.New(t)
	sim := pvesim.New(pvesim.Options{Nodes: nodes, VMs: 2, Speed: 100, Logger: slog.New(slog.DiscardHandler)})
	info, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	u, _ := url.Parse(info.URL)
	port, _ := strconv.Atoi(u.Port())
	srv := pvekeep.Server{Host: u.Hostname(), Port: port, TokenID: info.TokenID, TokenSecret: info.TokenSecret, Fingerprint: info.Fingerprint}

	ctx := context.Background()
	clock := &testClock{now: time.Now().UTC()}
	sd := seed.New(db.Store.DB(), clock.now)
	clientID, err := sd.Client(ctx, seed.Client{})
	must(t, err)
	srv.ID, err = sd.Server(ctx, seed.Server{Hostname: srv.Host, Port: port})
	must(t, err)
	productID, err := sd.Product(ctx, seed.Product{BackupStorage: "backup", BackupsQuota: quota})
	must(t, err)
	sid, err := sd.Service(ctx, seed.Service{ClientID: clientID, ProductID: productID, ServerID: srv.ID, VMID: "100"})
	must(t, err)

	logger := slog.New(slog.DiscardHandler)
	runner := jobs.NewRunner(db.Store, clock, logger, jobs.Config{LeaseFor: time.Minute, PollEvery: 20 * time.Millisecond})
	dial := func(ctx context.Context, s pvekeep.Server) (pve.Cluster, error) {
		cfg := pve.ConfigFromServer(s)
		cfg.Timeout = 2 * time.Second // short, so a lost answer can be staged
		return pve.Connect(ctx, cfg)
	}
	if cfg.LeaseFor == 0 {
		cfg.LeaseFor = time.Minute
	}
	if cfg.QuietWindow == 0 {
		cfg.QuietWindow = 5 * time.Second
	}
	deps := service.Deps{Store: db.Store, Dial: dial, Runner: runner, Clock: clock, Logger: logger, Mailer: mailer}
	svc := service.New(deps, cfg)
	return &bundle{svc: svc, deps: deps, cfg: cfg, db: db, sim: sim, clock: clock, server: srv, clientID: clientID, productID: productID, service: pvekeep.ServiceID(sid), seed: sd}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (b *bundle) call() service.Call {
	return service.Call{ServiceID: b.service, Actor: pvekeep.Actor{Type: pvekeep.ActorClient, ID: b.clientID}, Server: b.server}
}

// drain ticks until the service has no active job. Each round moves the
// test clock a second on, so that snoozed or abandoned leases expire.
func (b *bundle) drain(t *testing.T) {
	t.Helper()
	for i := 0; i < 400; i++ {
		_, err := b.svc.Tick(context.Background(), []pvekeep.Server{b.server}, time.Second)
		must(t, err)
		l, err := b.svc.ListBackups(context.Background(), b.call())
		must(t, err)
		if l.ActiveJob == nil {
			return
		}
		if b.clock.real {
			time.Sleep(100 * time.Millisecond) // real leases run out in real time
		}
		b.clock.Advance(time.Second)
	}
	t.Fatal("jobs still active after 400 ticks")
}

func (b *bundle) vzdumpTasks() int {
	n := 0
	for _, task := range b.sim.State().Tasks {
		if task.Type == "vzdump" {
			n++
		}
	}
	return n
}

func TestSameIdempotencyKeyMakesOneBackup(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	first, err := b.svc.CreateBackup(ctx, b.call(), "once", "click-1")
	must(t, err)
	again, err := b.svc.CreateBackup(ctx, b.call(), "once", "click-1")
	must(t, err)
	if again.ID != first.ID {
		t.Fatalf("retry got job %d, want the first job %d", again.ID, first.ID)
	}
	b.drain(t)
	after, err := b.svc.CreateBackup(ctx, b.call(), "once", "click-1")
	must(t, err)
	if after.ID != first.ID {
		t.Errorf("retry after the job finished got job %d, want %d", after.ID, first.ID)
	}
	if n := b.vzdumpTasks(); n != 1 {
		t.Errorf("vzdump ran %d times, want 1", n)
	}
}

func TestServiceStatusDecidesWhatAnActorMayDo(t *testing.T) {
	t.Parallel()
	cases := []struct {
		status     string
		actor      pvekeep.ActorType
		listOK     bool
		createOK   bool
		wantReason pvekeep.Reason
	}{
		{"Active", pvekeep.ActorClient, true, true, ""},
		{"Suspended", pvekeep.ActorClient, true, false, pvekeep.ReasonForbidden},
		{"Suspended", pvekeep.ActorAdmin, true, true, ""},
		{"Terminated", pvekeep.ActorClient, false, false, pvekeep.ReasonForbidden},
		{"Terminated", pvekeep.ActorAdmin, true, false, pvekeep.ReasonForbidden},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s %s", tc.status, tc.actor), func(t *testing.T) {
			t.Parallel()
			b := setup(t, 3)
			ctx := context.Background()
			must(t, b.seed.SetServiceStatus(ctx, int64(b.service), tc.status))
			c := b.call()
			if tc.actor == pvekeep.ActorAdmin {
				c.Actor = pvekeep.Actor{Type: pvekeep.ActorAdmin, ID: 1}
			}
			_, err := b.svc.ListBackups(ctx, c)
			if (err == nil) != tc.listOK {
				t.Errorf("list: err = %v, want ok=%v", err, tc.listOK)
			}
			_, err = b.svc.CreateBackup(ctx, c, "x", "")
			if (err == nil) != tc.createOK {
				t.Fatalf("create: err = %v, want ok=%v", err, tc.createOK)
			}
			if err != nil && pvekeep.ReasonOf(err) != tc.wantReason {
				t.Errorf("create: reason = %s, want %s", pvekeep.ReasonOf(err), tc.wantReason)
			}
		})
	}
}

func TestProxmoxUnreachableAtClickLeavesTheJobForTheTick(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	must(t, b.sim.InjectHTTPFault(pvesim.HTTPFault{Method: "POST", PathRegex: "/vzdump$", Status: 503, Count: 1}))
	job, err := b.svc.CreateBackup(ctx, b.call(), "later", "")
	must(t, err)
	if job.State != pvekeep.JobQueued || job.UPID != "" {
		t.Fatalf("job after an unreachable Proxmox = %s %q, want queued without a UPID", job.State, job.UPID)
	}
	b.drain(t)
	got, err := b.svc.GetJob(ctx, b.call(), job.ID)
	must(t, err)
	if got.State != pvekeep.JobSucceeded {
		t.Fatalf("job ended %s (%s), want succeeded", got.State, got.Error)
	}
	if n := b.vzdumpTasks(); n != 1 {
		t.Errorf("vzdump ran %d times, want 1", n)
	}
}

// A process that submitted the vzdump and died before saving the UPID
// leaves a queued job; the next runner must adopt the backup, not make a
// second one.
func TestResumedJobAdoptsTheVzdumpADeadProcessSubmitted(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	now := b.clock.Now()
	until := now.Add(time.Minute)
	job, _, _, err := b.db.Store.EnqueueBackupCreate(ctx, store.NewBackupCreate{
		Job: pvekeep.Job{ServiceID: b.service, VMID: 100, ServerID: b.server.ID, Node: "pve1", Kind: pvekeep.KindBackupCreate,
			Step: "dispatch", ActorType: pvekeep.ActorClient, ActorID: b.clientID, LeaseOwner: "dead-process", LeaseUntil: &until, CreatedAt: now},
		Backup: pvekeep.Backup{VMID: 100, Node: "pve1", Storage: "backup", Note: "orphan", Origin: pvekeep.OriginManual, CreatedAt: now},
		Max:    3,
	})
	must(t, err)
	// What the dead process did: mark the job submitting, then POST.
	dead := pvekeep.Lease{JobID: job.ID, Owner: "dead-process", Attempt: job.Attempt}
	must(t, b.db.Store.UpdateJob(ctx, dead, store.JobUpdate{State: pvekeep.JobQueued, Step: "dispatch", Submitting: true, Now: now}))
	gw, err := pve.Connect(ctx, pve.ConfigFromServer(b.server))
	must(t, err)
	if _, err := gw.Vzdump(ctx, "pve1", pve.VzdumpRequest{VMID: 100, Storage: "backup", Notes: "orphan"}); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(2 * time.Minute) // the dead process's lease expires
	b.drain(t)
	got, err := b.svc.GetJob(ctx, b.call(), job.ID)
	must(t, err)
	if got.State != pvekeep.JobSucceeded {
		t.Fatalf("job ended %s (%s), want succeeded", got.State, got.Error)
	}
	if n := b.vzdumpTasks(); n != 1 {
		t.Errorf("vzdump ran %d times, want 1 (the orphan adopted)", n)
	}
	l, err := b.svc.ListBackups(ctx, b.call())
	must(t, err)
	if len(l.Items) != 1 || l.Items[0].Volid == "" || l.Items[0].SizeBytes == 0 {
		t.Errorf("backups = %+v, want the adopted volume with its size", l.Items)
	}
}

// The clicks race for the VM's one active job: this proves the
// one-operation-per-VM lock (refusals may say locked or quota_exceeded).
// The quota's own race is store's
// TestEnqueueBackupCreateQuotaHoldsWhileJobsFinishAmidClicks.
func TestConcurrentClicksOnOneVMMakeOneBackupJob(t *testing.T) {
	t.Parallel()
	b := setup(t, 1)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, errs[i] = b.svc.CreateBackup(ctx, b.call(), "race", "")
		}(i)
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch r := pvekeep.ReasonOf(err); {
		case err == nil:
			ok++
		case r == pvekeep.ReasonLocked || r == pvekeep.ReasonQuotaExceeded:
		default:
			t.Errorf("unexpected error %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d clicks succeeded, want exactly 1", ok)
	}
}

func TestVzdumpProxmoxRefusesFailsTheJobAndFreesTheVM(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	must(t, b.sim.InjectHTTPFault(pvesim.HTTPFault{Method: "POST", PathRegex: "/vzdump$", Status: 500, Message: "storage 'backup' is not online", Count: 1}))
	_, err := b.svc.CreateBackup(ctx, b.call(), "refused", "")
	if pvekeep.ReasonOf(err) != pvekeep.ReasonUpstream {
		t.Fatalf("CreateBackup() error = %v, want upstream", err)
	}
	if e, _ := pvekeep.AsError(err); !strings.Contains(fmt.Sprint(e.Data["detail"]), "not online") {
		t.Errorf("detail = %v, want Proxmox's message", e.Data)
	}
	l, err := b.svc.ListBackups(ctx, b.call())
	must(t, err)
	if l.ActiveJob != nil || l.Quota.Used != 0 {
		t.Errorf("after a refusal: active job %+v, %d used; want none", l.ActiveJob, l.Quota.Used)
	}
	if _, err := b.svc.CreateBackup(ctx, b.call(), "again", ""); err != nil {
		t.Errorf("the next backup was refused: %v", err)
	}
	if n := b.vzdumpTasks(); n != 1 {
		t.Errorf("vzdump ran %d times, want 1 (the refused POST is not retried)", n)
	}
}

func TestUnreachableProxmoxFailsTheJobAfterAnHour(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	must(t, b.sim.InjectHTTPFault(pvesim.HTTPFault{Method: "POST", PathRegex: "/vzdump$", Status: 503}))
	job, err := b.svc.CreateBackup(ctx, b.call(), "never", "")
	must(t, err)
	_, err = b.svc.Tick(ctx, []pvekeep.Server{b.server}, 0)
	must(t, err)
	if got, _ := b.svc.GetJob(ctx, b.call(), job.ID); got.State != pvekeep.JobQueued {
		t.Fatalf("job after one unreachable tick = %s, want still queued", got.State)
	}
	b.clock.Advance(61 * time.Minute)
	_, err = b.svc.Tick(ctx, []pvekeep.Server{b.server}, 0)
	must(t, err)
	got, err := b.svc.GetJob(ctx, b.call(), job.ID)
	must(t, err)
	if got.State != pvekeep.JobFailed || !strings.Contains(got.Error, "could not be reached") {
		t.Fatalf("job after an hour = %s %q, want failed, unreachable", got.State, got.Error)
	}
	l, err := b.svc.ListBackups(ctx, b.call())
	must(t, err)
	if l.ActiveJob != nil || l.Quota.Used != 0 {
		t.Errorf("the failed job still holds the VM or a slot: %+v, %d used", l.ActiveJob, l.Quota.Used)
	}
}

func TestBadServerSettingsAreInvalidInput(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	c := b.call()
	c.Server.TokenID = "no-bang-here"
	_, err := b.svc.Status(context.Background(), c)
	if e, ok := pvekeep.AsError(err); !ok || e.Reason != pvekeep.ReasonInvalidInput || strings.Contains(e.Message, b.server.TokenSecret) {
		t.Fatalf("Status() with a malformed token id = %v, want invalid_input without the secret", err)
	}
}

// Proxmox accepts the vzdump but its answer never arrives (the client
// times out), and Proxmox processes it only later: the job cannot know the
// UPID, and the task is not in the list yet when the next tick comes. The
// job must wait out the quiet window, then find the task and follow it,
// not submit a second backup. Runs on the wall clock: the delay is real.
func TestLostAnswerToVzdumpIsAdoptedNotResubmitted(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	b.clock.real = true
	ctx := context.Background()
	must(t, b.sim.InjectHTTPFault(pvesim.HTTPFault{Method: "POST", PathRegex: "/vzdump$", Delay: 3 * time.Second, Detached: true, Count: 1}))
	clicked := time.Now()
	job, err := b.svc.CreateBackup(ctx, b.call(), "lost answer", "")
	must(t, err)
	if job.UPID != "" {
		t.Fatalf("the job knows a UPID %q it cannot have seen", job.UPID)
	}
	b.drain(t)
	// The lost request lands 3 s after the click whatever happened since;
	// only then can a second submission show.
	time.Sleep(time.Until(clicked.Add(4 * time.Second)))
	got, err := b.svc.GetJob(ctx, b.call(), job.ID)
	must(t, err)
	if got.State != pvekeep.JobSucceeded {
		t.Fatalf("job ended %s (%s), want succeeded", got.State, got.Error)
	}
	if n := b.vzdumpTasks(); n != 1 {
		t.Errorf("vzdump ran %d times, want 1 (the accepted one adopted)", n)
	}
}

// A storage that is not there (unmounted, renamed) says nothing about the
// volume on it: the removal fails and the backup stays listed.
func TestRemovalWithTheStorageMissingKeepsTheBackup(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	_, err := b.svc.CreateBackup(ctx, b.call(), "keep me", "")
	must(t, err)
	b.drain(t)
	l, err := b.svc.ListBackups(ctx, b.call())
	must(t, err)
	must(t, b.sim.InjectHTTPFault(pvesim.HTTPFault{Method: "GET", PathRegex: "/storage/backup/content$", Status: 500, Message: "storage 'backup' does not exist"}))
	_, err = b.svc.RemoveBackup(ctx, b.call(), l.Items[0].ID)
	if err == nil {
		b.drain(t)
	}
	b.sim.ClearFaults()
	after, err := b.svc.ListBackups(ctx, b.call())
	must(t, err)
	if len(after.Items) != 1 || after.Items[0].Status != pvekeep.BackupAvailable {
		t.Fatalf("backups after a removal with the storage missing = %+v, want the backup still available", after.Items)
	}
}

// Two restores one after the other are two qmrestore tasks: a job adopts
// only a task it asked for itself, never the previous job's.
func TestBackToBackRestoresEachRestore(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	for _, note := range []string{"first", "second"} {
		_, err := b.svc.CreateBackup(ctx, b.call(), note, "")
		must(t, err)
		b.drain(t)
	}
	l, err := b.svc.ListBackups(ctx, b.call())
	must(t, err)
	for _, bk := range l.Items {
		job, err := b.svc.RestoreBackup(ctx, b.call(), bk.ID, "")
		must(t, err)
		b.drain(t)
		got, err := b.svc.GetJob(ctx, b.call(), job.ID)
		must(t, err)
		if got.State != pvekeep.JobSucceeded {
			t.Fatalf("restore of %q ended %s (%s)", bk.Note, got.State, got.Error)
		}
	}
	n := 0
	for _, task := range b.sim.State().Tasks {
		if task.Type == "qmrestore" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d qmrestore tasks for two restores, want 2", n)
	}
}

// A reinstall whose template is missing is refused before anything is
// destroyed.
func TestReinstallWithAMissingTemplateTouchesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	must(t, b.seed.SetProductSetting(ctx, b.productID, 22, "9999"))
	admin := b.call()
	admin.Actor = pvekeep.Actor{Type: pvekeep.ActorAdmin, ID: 1}
	_, err := b.svc.Reinstall(ctx, admin, 0)
	if pvekeep.ReasonOf(err) != pvekeep.ReasonInvalidState {
		t.Fatalf("Reinstall() error = %v, want invalid_state", err)
	}
	if _, ok := b.sim.VMConfig(100); !ok {
		t.Fatal("VM 100 was destroyed by a reinstall that could not clone")
	}
}

// The second restore's answer is lost: the job must follow its own
// qmrestore, never the first restore's, which started minutes before and
// matches everything else (VM, type, user).
func TestLostRestoreAnswerFollowsItsOwnTask(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	b.clock.real = true
	ctx := context.Background()
	_, err := b.svc.CreateBackup(ctx, b.call(), "base", "")
	must(t, err)
	b.drain(t)
	l, err := b.svc.ListBackups(ctx, b.call())
	must(t, err)
	first, err := b.svc.RestoreBackup(ctx, b.call(), l.Items[0].ID, "")
	must(t, err)
	b.drain(t)
	must(t, b.sim.InjectHTTPFault(pvesim.HTTPFault{Method: "POST", PathRegex: "^/nodes/pve1/qemu$", Delay: 3 * time.Second, Detached: true, Count: 1}))
	second, err := b.svc.RestoreBackup(ctx, b.call(), l.Items[0].ID, "")
	must(t, err)
	b.drain(t)
	got, err := b.svc.GetJob(ctx, b.call(), second.ID)
	must(t, err)
	if got.State != pvekeep.JobSucceeded {
		t.Fatalf("second restore ended %s (%s)", got.State, got.Error)
	}
	tasks := map[pvekeep.JobID]string{}
	rows, err := b.db.Store.DB().Query("SELECT job_id, upid FROM mod_pvekeep_job_tasks WHERE upid LIKE '%:qmrestore:%'")
	must(t, err)
	for rows.Next() {
		var id pvekeep.JobID
		var upid string
		must(t, rows.Scan(&id, &upid))
		tasks[id] = upid
	}
	must(t, rows.Err())
	if tasks[first.ID] == "" || tasks[second.ID] == "" || tasks[first.ID] == tasks[second.ID] {
		t.Errorf("qmrestore tasks followed: %v; want one of its own for each job", tasks)
	}
}

// Proxmox refusing a reconciliation step for good (here: the package's
// disk storage does not exist) fails the job with its words instead of
// retrying for two days, and the restored VM is started anyway.
func TestRefusedReconcileStepFailsTheJobAndStartsTheVM(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	must(t, b.seed.SetProductSetting(ctx, b.productID, 8, "10"))    // an additional disk…
	must(t, b.seed.SetProductSetting(ctx, b.productID, 21, "nope")) // …on a storage that does not exist
	job, err := b.svc.RestoreBackup(ctx, b.call(), b.backupOnStorage(t).ID, "")
	must(t, err)
	b.drain(t)
	got, err := b.svc.GetJob(ctx, b.call(), job.ID)
	must(t, err)
	if got.State != pvekeep.JobFailed || !strings.Contains(got.Error, "nope") {
		t.Fatalf("restore = %s %q, want failed with Proxmox's words about the storage", got.State, got.Error)
	}
	if strings.Contains(got.Error, "/nodes/") {
		t.Errorf("the client-visible error %q shows our request path", got.Error)
	}
	if !b.vmRunning(100) {
		t.Error("the VM was left stopped after the failed reconciliation")
	}
}

// Mid-reinstall the VM does not exist on Proxmox: the service's own job
// must still lock it, and service.status must still say so (the panel's
// hooks rely on it to hold back terminate or a package change).
func TestReinstallWithTheVMGoneStillLocksTheService(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	must(t, b.seed.SetProductSetting(ctx, b.productID, 22, strconv.Itoa(pvesim.TemplateVMID)))
	bk := b.backupOnStorage(t)
	// Proxmox cannot take the clone: the purged VM stays gone.
	must(t, b.sim.InjectHTTPFault(pvesim.HTTPFault{Method: "POST", PathRegex: `^/nodes/pve1/qemu/\d+/clone$`, Status: 503}))
	admin := b.call()
	admin.Actor = pvekeep.Actor{Type: pvekeep.ActorAdmin, ID: 1}
	job, err := b.svc.Reinstall(ctx, admin, 0)
	must(t, err)
	for i := 0; i < 50; i++ {
		if _, ok := b.sim.VMConfig(100); !ok {
			break
		}
		_, err := b.svc.Tick(ctx, []pvekeep.Server{b.server}, time.Second)
		must(t, err)
		b.clock.Advance(time.Second)
	}
	if _, ok := b.sim.VMConfig(100); ok {
		t.Fatal("the reinstall never purged VM 100")
	}

	st, err := b.svc.Status(ctx, b.call())
	if err != nil {
		t.Fatalf("Status() error = %v, want the lock reported", err)
	}
	if !st.Lock.Locked || st.Lock.Reason != "reinstall" || st.Lock.JobID != job.ID || st.Power != service.PowerMissing {
		t.Errorf("Status() = lock %+v power %q, want locked by reinstall job %d, power %q", st.Lock, st.Power, job.ID, service.PowerMissing)
	}
	calls := []struct {
		name string
		do   func() error
	}{
		{"backups.create", func() error { _, err := b.svc.CreateBackup(ctx, b.call(), "x", ""); return err }},
		{"backups.remove", func() error { _, err := b.svc.RemoveBackup(ctx, b.call(), bk.ID); return err }},
		{"backups.restore", func() error { _, err := b.svc.RestoreBackup(ctx, b.call(), bk.ID, ""); return err }},
		{"restore.reinstall", func() error { _, err := b.svc.Reinstall(ctx, admin, 0); return err }},
	}
	for _, c := range calls {
		if err := c.do(); pvekeep.ReasonOf(err) != pvekeep.ReasonLocked {
			t.Errorf("%s during the reinstall: error = %v, want locked", c.name, err)
		}
	}
}

// vmRunning reads the simulator's power state of a VM.
func (b *bundle) vmRunning(vmid int) bool {
	for _, v := range b.sim.State().VMs {
		if v.VMID == vmid {
			return v.Running
		}
	}
	return false
}

// backupOnStorage makes one backup and returns it.
func (b *bundle) backupOnStorage(t *testing.T) pvekeep.Backup {
	t.Helper()
	ctx := context.Background()
	_, err := b.svc.CreateBackup(ctx, b.call(), "base", "")
	must(t, err)
	b.drain(t)
	l, err := b.svc.ListBackups(ctx, b.call())
	must(t, err)
	if len(l.Items) != 1 {
		t.Fatalf("backups = %+v, want one", l.Items)
	}
	return l.Items[0]
}

// refuseNextRestore makes Proxmox refuse the next restore request itself
// (no task, the VM untouched), with a message containing "not online".
func (b *bundle) refuseNextRestore(t *testing.T) {
	t.Helper()
	must(t, b.sim.InjectHTTPFault(pvesim.HTTPFault{Method: "POST", PathRegex: "^/nodes/pve1/qemu$", Status: 500, Message: "storage 'backup' is not online", Count: 1}))
}

// breakNextRestore makes the next restore task of VM 100 fail midway,
// leaving the VM unusable.
func (b *bundle) breakNextRestore(t *testing.T) {
	t.Helper()
	must(t, b.sim.InjectTaskFault(pvesim.TaskFault{Type: "qmrestore", VMID: 100, ExitStatus: "unable to restore VM 100 - broken archive", Count: 1}))
}

// A backup whose file was deleted on storage behind the plugin's back
// cannot be restored: refused at the click, before the VM is stopped.
func TestRestoreOfABackupGoneFromStorageIsRefusedBeforeStoppingTheVM(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	bk := b.backupOnStorage(t)
	pc, err := pve.Connect(ctx, pve.ConfigFromServer(b.server))
	must(t, err)
	upid, err := pc.DeleteVolume(ctx, "pve1", bk.Storage, bk.Volid)
	must(t, err)
	_, err = pc.WaitTask(ctx, upid)
	must(t, err)

	_, err = b.svc.RestoreBackup(ctx, b.call(), bk.ID, "")
	if pvekeep.ReasonOf(err) != pvekeep.ReasonInvalidState {
		t.Fatalf("RestoreBackup() error = %v, want invalid_state", err)
	}
	if !b.vmRunning(100) {
		t.Error("the VM was stopped for a restore that could not run")
	}
	if js, err := b.db.Store.Jobs(ctx, store.JobFilter{ServiceID: b.service, Kinds: []pvekeep.JobKind{pvekeep.KindBackupRestore}}); err != nil || len(js) != 0 {
		t.Errorf("restore jobs = %+v (%v), want none", js, err)
	}
}

// Proxmox refusing the restore request itself (no task, nothing written)
// leaves a working VM: it is started again, and the failed job offers a
// retry only; a client cannot turn it into a reinstall that wipes the VM.
func TestRestoreRefusedBeforeTouchingTheVMStartsItAgainAndOffersOnlyRetry(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	must(t, b.seed.SetProductSetting(ctx, b.productID, 22, strconv.Itoa(pvesim.TemplateVMID)))
	bk := b.backupOnStorage(t)
	b.refuseNextRestore(t)
	job, err := b.svc.RestoreBackup(ctx, b.call(), bk.ID, "")
	must(t, err)
	b.drain(t)

	got, err := b.svc.GetJob(ctx, b.call(), job.ID)
	must(t, err)
	if got.State != pvekeep.JobFailed || !strings.Contains(got.Error, "not online") {
		t.Fatalf("restore = %s %q, want failed with Proxmox's words", got.State, got.Error)
	}
	if acts := service.NextActions(got); len(acts) != 1 || acts[0] != "retry" {
		t.Errorf("next actions = %v, want [retry]", acts)
	}
	if !b.vmRunning(100) {
		t.Error("the VM was left stopped although the restore never touched it")
	}
	if _, err := b.svc.Reinstall(ctx, b.call(), job.ID); pvekeep.ReasonOf(err) != pvekeep.ReasonInvalidState {
		t.Errorf("client Reinstall() of an intact VM: error = %v, want invalid_state", err)
	}

	retry, err := b.svc.RetryRestore(ctx, b.call(), job.ID)
	must(t, err)
	b.drain(t)
	if got, err := b.svc.GetJob(ctx, b.call(), retry.ID); err != nil || got.State != pvekeep.JobSucceeded {
		t.Fatalf("retry = %+v (%v), want succeeded", got, err)
	}
}

// A retry of a restore that had damaged the VM stays a damaged VM's job:
// failing before it touches anything still offers the reinstall.
func TestRetryOfADamagingRestoreKeepsOfferingReinstall(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	bk := b.backupOnStorage(t)
	b.breakNextRestore(t)
	first, err := b.svc.RestoreBackup(ctx, b.call(), bk.ID, "")
	must(t, err)
	b.drain(t)
	got, err := b.svc.GetJob(ctx, b.call(), first.ID)
	must(t, err)
	if acts := service.NextActions(got); got.State != pvekeep.JobFailed || len(acts) != 2 {
		t.Fatalf("first restore = %s, next actions %v; want failed with retry and reinstall", got.State, acts)
	}

	b.refuseNextRestore(t)
	retry, err := b.svc.RetryRestore(ctx, b.call(), first.ID)
	must(t, err)
	b.drain(t)
	got, err = b.svc.GetJob(ctx, b.call(), retry.ID)
	must(t, err)
	if acts := service.NextActions(got); got.State != pvekeep.JobFailed || len(acts) != 2 || acts[1] != "reinstall" {
		t.Errorf("retry = %s, next actions %v; want failed with retry and reinstall", got.State, acts)
	}
}

// A retried request gets the job its first attempt made even when that
// job has finished and the VM is busy with another; a key already used
// for another request (another kind, or a restore of another backup) is
// refused, not answered with that job.
func TestIdempotencyKeyReplaysItsOwnJobOnly(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	first, err := b.svc.CreateBackup(ctx, b.call(), "once", "click-1")
	must(t, err)
	b.drain(t)
	busy, err := b.svc.CreateBackup(ctx, b.call(), "another", "click-2")
	must(t, err)

	again, err := b.svc.CreateBackup(ctx, b.call(), "once", "click-1")
	if err != nil || again.ID != first.ID {
		t.Errorf("late retry while job %d runs = job %d, %v; want job %d", busy.ID, again.ID, err, first.ID)
	}
	_, err = b.svc.RestoreBackup(ctx, b.call(), first.BackupID, "click-1")
	if e, ok := pvekeep.AsError(err); !ok || e.Reason != pvekeep.ReasonInvalidInput || e.Data["field"] != "idempotency_key" {
		t.Errorf("restore with a backup's key: error = %v, want invalid_input on idempotency_key", err)
	}
	b.drain(t)

	restored, err := b.svc.RestoreBackup(ctx, b.call(), first.BackupID, "restore-1")
	must(t, err)
	b.drain(t)
	if again, err := b.svc.RestoreBackup(ctx, b.call(), first.BackupID, "restore-1"); err != nil || again.ID != restored.ID {
		t.Errorf("retried restore = job %d, %v; want job %d", again.ID, err, restored.ID)
	}
	_, err = b.svc.RestoreBackup(ctx, b.call(), busy.BackupID, "restore-1")
	if pvekeep.ReasonOf(err) != pvekeep.ReasonInvalidInput {
		t.Errorf("restore of another backup with a used key: error = %v, want invalid_input", err)
	}
}

// While a job holds the VM every other request is "locked", even one
// that would be refused for another reason too (here: restoring the
// backup still being made).
func TestBusyVMIsLockedBeforeAnythingElseIsChecked(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	busy, err := b.svc.CreateBackup(ctx, b.call(), "in flight", "")
	must(t, err)
	if _, err := b.svc.RestoreBackup(ctx, b.call(), busy.BackupID, ""); pvekeep.ReasonOf(err) != pvekeep.ReasonLocked {
		t.Errorf("restore of the backup being made: error = %v, want locked", err)
	}
	if _, err := b.svc.RetryRestore(ctx, b.call(), busy.ID); pvekeep.ReasonOf(err) != pvekeep.ReasonLocked {
		t.Errorf("retry while a backup runs: error = %v, want locked", err)
	}
}

// A typo in a VM package field is the provider's to fix before a restore
// can apply the package; it must not take listing and backups down too.
func TestMisconfiguredVMFieldFailsOnlyWhatAppliesThePackage(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	bk := b.backupOnStorage(t)
	must(t, b.seed.SetProductSetting(ctx, b.productID, 19, "twenty")) // the VLAN tag
	if _, err := b.svc.ListBackups(ctx, b.call()); err != nil {
		t.Errorf("ListBackups() error = %v", err)
	}
	if _, err := b.svc.Status(ctx, b.call()); err != nil {
		t.Errorf("Status() error = %v", err)
	}
	if _, err := b.svc.CreateBackup(ctx, b.call(), "still works", ""); err != nil {
		t.Errorf("CreateBackup() error = %v", err)
	}
	b.drain(t)
	if _, err := b.svc.RestoreBackup(ctx, b.call(), bk.ID, ""); pvekeep.ReasonOf(err) != pvekeep.ReasonInvalidState {
		t.Errorf("RestoreBackup() error = %v, want invalid_state naming the setting", err)
	}
}

// Every way a restore or reinstall can fail before Proxmox changed the VM
// ends the same: failed at step intact, only a retry offered, the VM
// running as it was.
func TestFailuresBeforeTheVMIsTouchedLeaveItWorking(t *testing.T) {
	t.Parallel()
	admin := pvekeep.Actor{Type: pvekeep.ActorAdmin, ID: 1}
	cases := []struct {
		name  string
		fault func(b *bundle) error
		start func(b *bundle, bk pvekeep.Backup) error
		later func(b *bundle) // what passes before the ticks that end the job
	}{
		{
			name: "the stop task fails",
			fault: func(b *bundle) error {
				return b.sim.InjectTaskFault(pvesim.TaskFault{Type: "qmstop", VMID: 100, ExitStatus: "timeout waiting on systemd", Count: 1})
			},
			start: func(b *bundle, bk pvekeep.Backup) error {
				_, err := b.svc.RestoreBackup(context.Background(), b.call(), bk.ID, "")
				return err
			},
		},
		{
			name: "Proxmox refuses the stop",
			fault: func(b *bundle) error {
				return b.sim.InjectHTTPFault(pvesim.HTTPFault{Method: "POST", PathRegex: `^/nodes/pve1/qemu/100/status/stop$`, Status: 500, Message: "VM 100 qmp command 'quit' failed", Count: 1})
			},
			start: func(b *bundle, bk pvekeep.Backup) error {
				_, err := b.svc.RestoreBackup(context.Background(), b.call(), bk.ID, "")
				if pvekeep.ReasonOf(err) != pvekeep.ReasonUpstream {
					return fmt.Errorf("click error = %v, want Proxmox's refusal", err)
				}
				return nil
			},
		},
		{
			name: "Proxmox refuses to destroy the VM for a reinstall",
			fault: func(b *bundle) error {
				return b.sim.InjectHTTPFault(pvesim.HTTPFault{Method: "DELETE", PathRegex: `^/nodes/pve1/qemu/100$`, Status: 500, Message: "can't remove VM 100 - protection mode enabled", Count: 1})
			},
			start: func(b *bundle, _ pvekeep.Backup) error {
				c := b.call()
				c.Actor = admin
				_, err := b.svc.Reinstall(context.Background(), c, 0)
				return err
			},
		},
		{
			name: "Proxmox unreachable until the job gives up",
			fault: func(b *bundle) error {
				return b.sim.InjectHTTPFault(pvesim.HTTPFault{Method: "POST", PathRegex: `^/nodes/pve1/qemu/100/status/stop$`, Status: 503})
			},
			start: func(b *bundle, bk pvekeep.Backup) error {
				_, err := b.svc.RestoreBackup(context.Background(), b.call(), bk.ID, "")
				return err
			},
			later: func(b *bundle) { b.clock.Advance(2 * time.Hour) },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, 3)
			ctx := context.Background()
			must(t, b.seed.SetProductSetting(ctx, b.productID, 22, strconv.Itoa(pvesim.TemplateVMID)))
			bk := b.backupOnStorage(t)
			must(t, tc.fault(b))
			must(t, tc.start(b, bk))
			if tc.later != nil {
				tc.later(b)
			}
			b.drain(t)
			b.sim.ClearFaults()

			js, err := b.db.Store.Jobs(ctx, store.JobFilter{ServiceID: b.service, Kinds: []pvekeep.JobKind{pvekeep.KindBackupRestore, pvekeep.KindVMReinstall}, Limit: 1})
			must(t, err)
			if len(js) != 1 {
				t.Fatalf("restore/reinstall jobs = %d, want 1", len(js))
			}
			got := js[0]
			if acts := service.NextActions(got); got.State != pvekeep.JobFailed || len(acts) != 1 || acts[0] != "retry" {
				t.Errorf("job = %s at %q (%s), next actions %v; want failed with [retry]", got.State, got.Step, got.Error, acts)
			}
			if !b.vmRunning(100) {
				t.Error("the untouched VM is not running")
			}
			if _, ok := b.sim.VMConfig(100); !ok {
				t.Error("the untouched VM is gone")
			}
		})
	}
}

// A restore that failed without touching the VM is news only until the
// service moves on: once another job ran, the page no longer shows it.
// (One that left the VM unusable stays until a retry or reinstall:
// TestFailedRestoreOffersRetryAndRetrySucceeds in internal/e2e.)
func TestIntactFailedRestoreIsShownUntilTheServiceMovesOn(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	bk := b.backupOnStorage(t)
	b.refuseNextRestore(t)
	job, err := b.svc.RestoreBackup(ctx, b.call(), bk.ID, "")
	must(t, err)
	b.drain(t)
	l, err := b.svc.ListBackups(ctx, b.call())
	must(t, err)
	if l.FailedRestore == nil || l.FailedRestore.ID != job.ID {
		t.Fatalf("failed restore right after = %+v, want job %d", l.FailedRestore, job.ID)
	}
	if l.FailedBackup != nil {
		t.Errorf("a failed restore is listed as a failed backup too: %+v", l.FailedBackup)
	}

	_, err = b.svc.CreateBackup(ctx, b.call(), "later", "")
	must(t, err)
	b.drain(t)
	l, err = b.svc.ListBackups(ctx, b.call())
	must(t, err)
	if l.FailedRestore != nil {
		t.Errorf("failed restore still shown after a later backup: %+v", l.FailedRestore)
	}
}

// deadlineMailer composes a real message and records how long each send
// was allowed to take.
type deadlineMailer struct {
	mu   sync.Mutex
	left []time.Duration // time to the send's deadline, when it began; -1 = none
}

func (m *deadlineMailer) Compose(kind, language string, data mail.BackupRestored) (mail.Message, error) {
	return mail.Message{Subject: "restored", Text: "restored", HTML: "<p>restored</p>"}, nil
}

func (m *deadlineMailer) MessageID(jobID int64, kind string) string {
	return fmt.Sprintf("<job-%d.%s@test>", jobID, kind)
}

func (m *deadlineMailer) Send(ctx context.Context, _ mail.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if d, ok := ctx.Deadline(); ok {
		m.left = append(m.left, time.Until(d))
	} else {
		m.left = append(m.left, -1)
	}
	return nil
}

// A send must be over before the outbox may take its email for a stalled
// one (EmailRetryAfter after the claim), or two processes would send it.
func TestEmailSendIsCutOffBeforeTheOutboxCouldTakeItAgain(t *testing.T) {
	t.Parallel()
	m := &deadlineMailer{}
	retryAfter := 10 * time.Minute
	b := setupWith(t, 3, m, service.Config{EmailRetryAfter: retryAfter})
	ctx := context.Background()
	_, err := b.svc.RestoreBackup(ctx, b.call(), b.backupOnStorage(t).ID, "")
	must(t, err)
	b.drain(t)
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.left) != 1 {
		t.Fatalf("%d sends, want 1", len(m.left))
	}
	if left := m.left[0]; left <= 0 || left >= retryAfter {
		t.Errorf("the send had %v to its deadline, want a deadline within the retry window of %v", left, retryAfter)
	}
}

// A backup that failed is what the client's page must explain until the
// next job: backups.list carries it, with Proxmox's reason.
func TestFailedBackupIsListedUntilTheNextJob(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	must(t, b.sim.InjectTaskFault(pvesim.TaskFault{Type: "vzdump", VMID: 100, ExitStatus: "vma_queue_write: write error - No space left on device", Count: 1}))
	job, err := b.svc.CreateBackup(ctx, b.call(), "doomed", "")
	must(t, err)
	b.drain(t)
	l, err := b.svc.ListBackups(ctx, b.call())
	must(t, err)
	if l.FailedBackup == nil || l.FailedBackup.ID != job.ID || !strings.Contains(l.FailedBackup.Error, "No space left") {
		t.Fatalf("failed backup = %+v, want job %d with Proxmox's reason", l.FailedBackup, job.ID)
	}
	b.backupOnStorage(t)
	l, err = b.svc.ListBackups(ctx, b.call())
	must(t, err)
	if l.FailedBackup != nil {
		t.Errorf("failed backup still listed after a good one: %+v", l.FailedBackup)
	}
}

// An admin's reinstall of a working VM that Proxmox refused before
// touching it is not the client's to run again: a retry would wipe the
// VM. Nor does the client's page show it.
func TestClientCannotRetryAnAdminsReinstallOfAWorkingVM(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	must(t, b.seed.SetProductSetting(ctx, b.productID, 22, strconv.Itoa(pvesim.TemplateVMID)))
	must(t, b.sim.InjectHTTPFault(pvesim.HTTPFault{Method: "DELETE", PathRegex: `^/nodes/pve1/qemu/100$`, Status: 500, Message: "can't remove VM 100 - protection mode enabled", Count: 1}))
	admin := b.call()
	admin.Actor = pvekeep.Actor{Type: pvekeep.ActorAdmin, ID: 1}
	job, err := b.svc.Reinstall(ctx, admin, 0)
	must(t, err)
	b.drain(t)

	if _, err := b.svc.RetryRestore(ctx, b.call(), job.ID); pvekeep.ReasonOf(err) != pvekeep.ReasonInvalidState {
		t.Errorf("client retry of the admin's reinstall: error = %v, want invalid_state", err)
	}
	if l, err := b.svc.ListBackups(ctx, b.call()); err != nil || l.FailedRestore != nil {
		t.Errorf("client page failed restore = %+v (%v), want none", l.FailedRestore, err)
	}
	if _, ok := b.sim.VMConfig(100); !ok || !b.vmRunning(100) {
		t.Error("the working VM is gone or stopped")
	}
}

// A retry while another job holds the VM is "locked", even when the
// backup it would restore is the one that job is removing.
func TestRetryWhileTheBackupIsBeingRemovedIsLocked(t *testing.T) {
	t.Parallel()
	b := setup(t, 3)
	ctx := context.Background()
	bk := b.backupOnStorage(t)
	b.breakNextRestore(t)
	failed, err := b.svc.RestoreBackup(ctx, b.call(), bk.ID, "")
	must(t, err)
	b.drain(t)
	_, err = b.svc.RemoveBackup(ctx, b.call(), bk.ID)
	must(t, err)
	if _, err := b.svc.RetryRestore(ctx, b.call(), failed.ID); pvekeep.ReasonOf(err) != pvekeep.ReasonLocked {
		t.Errorf("retry while the backup is being removed: error = %v, want locked", err)
	}
}

// keyBlindStore misses a job by idempotency key once: the second click of
// a double click, whose replay ran just before the first click's job was
// written.
type keyBlindStore struct {
	*store.Store
	missed atomic.Bool
}

func (s *keyBlindStore) JobByKey(ctx context.Context, id pvekeep.ServiceID, key string) (pvekeep.Job, bool, error) {
	if !s.missed.Swap(true) {
		return pvekeep.Job{}, false, nil
	}
	return s.Store.JobByKey(ctx, id, key)
}

// The second of two simultaneous clicks with one key finds the VM locked
// by the first one's job: it must get that job, not "locked".
func TestDoubleClickRacingItsTwinGetsTheTwinsJob(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		click func(svc *service.Service, b *bundle, bk pvekeep.Backup) (pvekeep.Job, error)
	}{
		{"backup now", func(svc *service.Service, b *bundle, _ pvekeep.Backup) (pvekeep.Job, error) {
			return svc.CreateBackup(context.Background(), b.call(), "twice", "click-1")
		}},
		{"restore", func(svc *service.Service, b *bundle, bk pvekeep.Backup) (pvekeep.Job, error) {
			return svc.RestoreBackup(context.Background(), b.call(), bk.ID, "click-1")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, 3)
			bk := b.backupOnStorage(t)
			first, err := tc.click(b.svc, b, bk)
			must(t, err)
			deps := b.deps
			deps.Store = &keyBlindStore{Store: b.db.Store}
			deps.Runner = jobs.NewRunner(b.db.Store, b.clock, slog.New(slog.DiscardHandler), jobs.Config{LeaseFor: time.Minute})
			twin := service.New(deps, b.cfg)
			second, err := tc.click(twin, b, bk)
			if err != nil || second.ID != first.ID {
				t.Errorf("the racing twin got job %d, %v; want the first click's job %d", second.ID, err, first.ID)
			}
		})
	}
}
