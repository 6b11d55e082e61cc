package e2e

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/mail/mailtest"
	"github.com/pvekeep/pvekeep/internal/plan"
	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pvesim"
	"github.com/pvekeep/pvekeep/internal/reconcile"
	"github.com/pvekeep/pvekeep/internal/seed"
)

// smallPackage is what the VM had when it was backed up (the simulator's
// default VM); bigPackage is what the customer pays for at restore time.
var (
	smallPackage = map[int]string{
		plan.SettingCores + 1: "1", plan.SettingRAM + 1: "1", plan.SettingSystemDisk + 1: "10", plan.SettingExtraDisk + 1: "0",
		plan.SettingBridge + 1: "vmbr0", plan.SettingNetModel + 1: "virtio", plan.SettingOSTemplate + 1: "9000",
	}
	bigPackage = map[int]string{
		plan.SettingCores + 1: "2", plan.SettingRAM + 1: "4", plan.SettingSystemDisk + 1: "20", plan.SettingExtraDisk + 1: "10",
		plan.SettingSystemReadMBs + 1: "100", plan.SettingSystemWriteMBs + 1: "100",
		plan.SettingSystemReadIOPS + 1: "1000", plan.SettingSystemWriteIOPS + 1: "1000",
		plan.SettingExtraReadMBs + 1: "100", plan.SettingExtraWriteMBs + 1: "100",
		plan.SettingExtraReadIOPS + 1: "1000", plan.SettingExtraWriteIOPS + 1: "1000",
		plan.SettingVLAN + 1: "20", plan.SettingNetworkMBs + 1: "50",
	}
)

// restoreWorld is a world with an SMTP server and short leases, and a
// German-speaking customer whose VM 100 was backed up at the small package
// before the package grew.
type restoreWorld struct {
	*world
	smtp     *mailtest.Server
	c        customer
	backupID int64
	mac      string // VM 100's MAC before any restore
}

func newRestoreWorld(t *testing.T) *restoreWorld { return newRestoreWorldB(t) }

func newRestoreWorldB(t testing.TB) *restoreWorld {
	t.Helper()
	w := newWorld(t)
	smtp := mailtest.Start(t)
	host, port := smtp.Addr()
	cfg := filepath.Join(t.TempDir(), "pvekeep.toml")
	body := fmt.Sprintf("[jobs]\nlease_seconds = 2\npoll_seconds = 0.1\n\n[smtp]\nhost = %q\nport = %d\ntls = \"none\"\nfrom = \"support@example.test\"\nfrom_name = \"Example Hosting\"\ntimeout_seconds = 5\nretry_after_seconds = 7\n", host, port)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	w.env = append(w.env, "PVEKEEP_CONFIG="+cfg)

	ctx := context.Background()
	clientID, err := w.seed.Client(ctx, seed.Client{FirstName: "Jana", LastName: "Becker", Email: "jana@example.test", Language: "german"})
	must(t, err)
	productID, err := w.seed.Product(ctx, seed.Product{Name: "KVM M", BackupStorage: "backup", BackupsQuota: 3, SnapshotsQuota: 2, Settings: smallPackage})
	must(t, err)
	serviceID, err := w.seed.Service(ctx, seed.Service{ClientID: clientID, ProductID: productID, ServerID: w.srvID, Domain: "jana-vps.example.test", VMID: "100"})
	must(t, err)
	rw := &restoreWorld{world: w, smtp: smtp, c: customer{clientID: clientID, serviceID: serviceID, productID: productID, vmid: 100}}

	cfg0, _ := w.sim.VMConfig(100)
	n, err := pve.ParseNet(cfg0["net0"])
	must(t, err)
	rw.mac = n.MAC

	var created struct{ Job job }
	w.mustCall(rw.c, "backups.create", map[string]any{"note": "small package"}, &created)
	if done, _ := w.follow(rw.c, created.Job.ID); done.State != "succeeded" {
		t.Fatalf("backup ended %s: %s", done.State, done.Error)
	}
	var l backupList
	w.mustCall(rw.c, "backups.list", nil, &l)
	rw.backupID = l.Items[0].ID
	rw.setPackage(bigPackage)
	return rw
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (rw *restoreWorld) setPackage(settings map[int]string) {
	rw.t.Helper()
	for n, v := range settings {
		must(rw.t, rw.seed.SetProductSetting(context.Background(), rw.c.productID, n, v))
	}
}

// startRestore clicks "Restore" in the client area and returns the job.
func (rw *restoreWorld) startRestore() job {
	rw.t.Helper()
	if got := rw.button(rw.c, "backupRestore", map[string]any{"pvekeep_backup_id": rw.backupID}); got != "success" {
		rw.t.Fatalf("backupRestore = %q, want success", got)
	}
	j := rw.activeJob(rw.c)
	if j == nil || j.Kind != "backup.restore" {
		rw.t.Fatalf("active job after restore = %+v", j)
	}
	return *j
}

// crashTick runs one long cron tick whose plugin process kills itself
// right after recording step as done.
func (rw *restoreWorld) crashTick(step string) {
	rw.t.Helper()
	out := rw.php(map[string]any{"do": "cron", "servers": rw.cronServers(), "budget": 120,
		"env": map[string]string{"PVEKEEP_TEST_CRASH_AFTER_STEP": step}, "transport_error_expected": true})
	if out.TransportError == "" {
		rw.t.Fatalf("the tick meant to crash after %s finished normally: %s", step, out.Result)
	}
}

// vmState is the VM as the package defines it, read from the simulator.
type vmState struct {
	Cores, Memory           string
	SysGiB, ExtraGiB        int64
	SysLimits, ExtraLimits  pve.DiskLimits
	Bridge, MAC             string
	Tag                     int
	Rate                    float64
	Running                 bool
	ExtraDiskOnLocalStorage bool
}

func readVM(t *testing.T, sim *pvesim.Sim, vmid int) vmState {
	t.Helper()
	cfg, ok := sim.VMConfig(vmid)
	if !ok {
		t.Fatalf("VM %d does not exist", vmid)
	}
	st := vmState{Cores: cfg["cores"], Memory: cfg["memory"]}
	if d, err := pve.ParseDrive(cfg["scsi0"]); err == nil {
		st.SysGiB, st.SysLimits = d.Size()>>30, d.Limits()
	}
	if raw := cfg["scsi1"]; raw != "" {
		d, err := pve.ParseDrive(raw)
		must(t, err)
		st.ExtraGiB, st.ExtraLimits = d.Size()>>30, d.Limits()
		st.ExtraDiskOnLocalStorage = d.Storage() == "local-lvm"
	}
	n, err := pve.ParseNet(cfg["net0"])
	must(t, err)
	st.Bridge, st.MAC, st.Tag, st.Rate = n.Bridge, strings.ToUpper(n.MAC), n.Tag, n.Rate
	for _, v := range sim.State().VMs {
		if v.VMID == vmid {
			st.Running = v.Running
		}
	}
	return st
}

func (rw *restoreWorld) wantBigPackage(t *testing.T) vmState {
	full := pve.DiskLimits{MBpsRd: 100, MBpsWr: 100, IOPSRd: 1000, IOPSWr: 1000}
	return vmState{Cores: "2", Memory: "4096", SysGiB: 20, ExtraGiB: 10, SysLimits: full, ExtraLimits: full,
		Bridge: "vmbr0", MAC: strings.ToUpper(rw.mac), Tag: 20, Rate: 50, Running: true, ExtraDiskOnLocalStorage: true}
}

func (rw *restoreWorld) emailsLogged(t *testing.T) int {
	var n int
	must(t, rw.db.Store.DB().QueryRow("SELECT COUNT(*) FROM tblemails WHERE userid = ?", rw.c.clientID).Scan(&n))
	return n
}

func TestRestorePutsTheVMBackToThePurchasedPackage(t *testing.T) {
	t.Parallel()
	rw := newRestoreWorld(t)
	j := rw.startRestore()

	// While it runs, every other mutating call is refused and the status says why.
	out := rw.call(rw.c, rw.c.clientID, "backups.create", map[string]any{"note": "during restore"})
	if out.Error == nil || out.Error.Code != 1003 || out.Error.Data["lock"] != "restore" {
		t.Errorf("backups.create during a restore = %+v, want 1003 locked (restore)", out.Error)
	}
	for _, m := range []string{"backups.remove", "backups.restore", "restore.retry", "restore.reinstall"} {
		out = rw.call(rw.c, rw.c.clientID, m, map[string]any{"backup_id": rw.backupID, "job_id": j.ID})
		if out.Error == nil || out.Error.Code != 1003 {
			t.Errorf("%s during a restore = %+v, want 1003 locked", m, out.Error)
		}
	}
	var st struct {
		Lock struct {
			Locked bool   `json:"locked"`
			Reason string `json:"reason"`
			JobID  int64  `json:"job_id"`
		} `json:"lock"`
	}
	rw.mustCall(rw.c, "service.status", nil, &st)
	if !st.Lock.Locked || st.Lock.Reason != "restore" || st.Lock.JobID != j.ID {
		t.Errorf("service.status lock = %+v, want restore by job %d", st.Lock, j.ID)
	}

	done, _ := rw.follow(rw.c, j.ID)
	if done.State != "succeeded" {
		t.Fatalf("restore ended %s: %s", done.State, done.Error)
	}
	if got, want := readVM(t, rw.sim, 100), rw.wantBigPackage(t); got != want {
		t.Errorf("VM after restore =\n %+v\nwant\n %+v", got, want)
	}
	msgs := rw.smtp.WaitFor(1, 10*time.Second)
	if n := len(rw.smtp.Messages()); n != 1 {
		t.Fatalf("%d emails arrived, want exactly 1", n)
	}
	m := msgs[0]
	if !strings.Contains(m.Subject, "wiederhergestellt") {
		t.Errorf("subject %q is not the German one", m.Subject)
	}
	if !strings.Contains(m.TextBody, "100") || !strings.Contains(m.TextBody, "jana-vps.example.test") {
		t.Errorf("email text lacks the VM id or hostname:\n%s", m.TextBody)
	}
	if len(m.To) != 1 || m.To[0] != "jana@example.test" {
		t.Errorf("email went to %v", m.To)
	}
	if n := rw.emailsLogged(t); n != 1 {
		t.Errorf("tblemails has %d rows for the client, want 1", n)
	}
}

func TestRestoreConvergesWhenThePluginIsKilledAfterAnyStep(t *testing.T) {
	t.Parallel()
	for _, step := range reconcile.Steps {
		t.Run(string(step), func(t *testing.T) {
			t.Parallel()
			rw := newRestoreWorld(t)
			j := rw.startRestore()
			rw.crashTick(string(step))
			done, _ := rw.follow(rw.c, j.ID)
			if done.State != "succeeded" {
				t.Fatalf("restore killed after %s ended %s: %s", step, done.State, done.Error)
			}
			if got, want := readVM(t, rw.sim, 100), rw.wantBigPackage(t); got != want {
				t.Errorf("VM after a kill at %s =\n %+v\nwant\n %+v", step, got, want)
			}
			rw.smtp.WaitFor(1, 10*time.Second)
			if n := len(rw.smtp.Messages()); n != 1 {
				t.Errorf("%d emails after a kill at %s, want 1", n, step)
			}
			if n := rw.emailsLogged(t); n != 1 {
				t.Errorf("tblemails has %d rows after a kill at %s, want 1", n, step)
			}
			// Nothing ran twice: one restore, one start, a resize per disk at most.
			counts := map[string]int{}
			for _, task := range rw.sim.State().Tasks {
				counts[task.Type]++
			}
			if counts["qmrestore"] != 1 || counts["qmstart"] != 1 || counts["resize"] > 2 {
				t.Errorf("tasks after a kill at %s = %v, want 1 qmrestore, 1 qmstart, at most 2 resize", step, counts)
			}
		})
	}
}

func TestFailedRestoreOffersRetryAndRetrySucceeds(t *testing.T) {
	t.Parallel()
	rw := newRestoreWorld(t)
	must(t, rw.sim.InjectTaskFault(pvesim.TaskFault{Type: "qmrestore", VMID: 100, ExitStatus: "unable to restore VM 100 - read error", Count: 1}))
	j := rw.startRestore()
	failed, _ := rw.follow(rw.c, j.ID)
	if failed.State != "failed" || !strings.Contains(failed.Error, "read error") {
		t.Fatalf("restore = %s %q, want failed with Proxmox's message", failed.State, failed.Error)
	}
	var got struct {
		Job struct {
			NextActions []string `json:"next_actions"`
		} `json:"job"`
	}
	rw.mustCall(rw.c, "jobs.get", map[string]any{"job_id": j.ID}, &got)
	if strings.Join(got.Job.NextActions, ",") != "retry,reinstall" {
		t.Errorf("next_actions = %v, want retry, reinstall", got.Job.NextActions)
	}
	if n := len(rw.smtp.Messages()); n != 0 {
		t.Errorf("%d emails after a failed restore, want none", n)
	}

	intruder := rw.newCustomer(104, 3)
	for _, m := range []string{"restore.retry", "restore.reinstall"} {
		out := rw.call(rw.c, intruder.clientID, m, map[string]any{"job_id": j.ID})
		if out.Error == nil || out.Error.Code != 1002 {
			t.Errorf("%s by another client = %+v, want 1002 forbidden", m, out.Error)
		}
	}
	if res := rw.button(rw.c, "restoreRetry", map[string]any{"pvekeep_job_id": j.ID}); res != "success" {
		t.Fatalf("restoreRetry = %q", res)
	}
	retry := rw.activeJob(rw.c)
	if retry == nil || retry.ID == j.ID {
		t.Fatalf("retry job = %+v, want a new job", retry)
	}
	if done, _ := rw.follow(rw.c, retry.ID); done.State != "succeeded" {
		t.Fatalf("retry ended %s: %s", done.State, done.Error)
	}
	if got, want := readVM(t, rw.sim, 100), rw.wantBigPackage(t); got != want {
		t.Errorf("VM after the retry =\n %+v\nwant\n %+v", got, want)
	}
}

func TestReinstallClonesTheTemplateAndReconciles(t *testing.T) {
	t.Parallel()
	rw := newRestoreWorld(t)
	must(t, rw.sim.InjectTaskFault(pvesim.TaskFault{Type: "qmrestore", VMID: 100, ExitStatus: "unable to restore VM 100 - broken archive", Count: 1}))
	j := rw.startRestore()
	if failed, _ := rw.follow(rw.c, j.ID); failed.State != "failed" {
		t.Fatalf("restore = %s, want failed", failed.State)
	}
	if res := rw.button(rw.c, "restoreReinstall", map[string]any{"pvekeep_job_id": j.ID}); res != "success" {
		t.Fatalf("restoreReinstall = %q", res)
	}
	re := rw.activeJob(rw.c)
	if re == nil || re.Kind != "vm.reinstall" {
		t.Fatalf("active job = %+v, want a vm.reinstall", re)
	}
	if done, _ := rw.follow(rw.c, re.ID); done.State != "succeeded" {
		t.Fatalf("reinstall ended %s: %s", done.State, done.Error)
	}
	if got, want := readVM(t, rw.sim, 100), rw.wantBigPackage(t); got != want {
		t.Errorf("VM after the reinstall =\n %+v\nwant\n %+v", got, want)
	}
	cfg, _ := rw.sim.VMConfig(100)
	if cfg["template"] == "1" {
		t.Error("the reinstalled VM is a template")
	}
	msgs := rw.smtp.WaitFor(1, 10*time.Second)
	if len(rw.smtp.Messages()) != 1 || !strings.Contains(msgs[0].Subject, "neu installiert") {
		t.Errorf("emails after the reinstall = %d, subject %q; want one German reinstall email", len(rw.smtp.Messages()), msgs[0].Subject)
	}
}

func TestRestoringAnotherServicesBackupIsRefused(t *testing.T) {
	t.Parallel()
	rw := newRestoreWorld(t)
	other := rw.newCustomer(101, 3)
	before := map[int]map[string]string{}
	for _, vmid := range []int{100, 101} {
		before[vmid], _ = rw.sim.VMConfig(vmid)
	}
	out := rw.call(other, other.clientID, "backups.restore", map[string]any{"backup_id": rw.backupID})
	if out.Error == nil || out.Error.Code != 1001 {
		t.Fatalf("restoring another service's backup = %+v, want 1001 not_found", out.Error)
	}
	out = rw.call(rw.c, other.clientID, "backups.restore", map[string]any{"backup_id": rw.backupID})
	if out.Error == nil || out.Error.Code != 1002 {
		t.Fatalf("restoring on another client's service = %+v, want 1002 forbidden", out.Error)
	}
	for vmid, cfg := range before {
		if after, _ := rw.sim.VMConfig(vmid); len(cfg) == 0 || !maps.Equal(cfg, after) {
			t.Errorf("VM %d config after the refused restores = %v, want unchanged %v", vmid, after, cfg)
		}
	}
	for _, task := range rw.sim.State().Tasks {
		if task.Type == "qmrestore" || task.Type == "qmstop" {
			t.Errorf("a %s task ran for a refused restore", task.Type)
		}
	}
	if n := rw.jobCount(other.serviceID); n != 0 {
		t.Errorf("%d jobs on the other service, want 0", n)
	}
}

// A second restore from the same backup (which has no extra disk) finds
// the customer's extra disk detached as unusedN and puts it back: the
// data is kept and no volume is leaked.
func TestSecondRestoreReattachesTheExtraDisk(t *testing.T) {
	t.Parallel()
	rw := newRestoreWorld(t)
	if done, _ := rw.follow(rw.c, rw.startRestore().ID); done.State != "succeeded" {
		t.Fatalf("first restore ended %s: %s", done.State, done.Error)
	}
	first, _ := rw.sim.VMConfig(100)
	if done, _ := rw.follow(rw.c, rw.startRestore().ID); done.State != "succeeded" {
		t.Fatalf("second restore ended %s: %s", done.State, done.Error)
	}
	second, _ := rw.sim.VMConfig(100)
	vol := func(s string) string { v, _, _ := strings.Cut(s, ","); return v }
	if vol(second["scsi1"]) != vol(first["scsi1"]) {
		t.Errorf("scsi1 after the second restore = %q, want the same volume as before (%q)", second["scsi1"], first["scsi1"])
	}
	for k, v := range second {
		if strings.HasPrefix(k, "unused") {
			t.Errorf("%s = %q left behind", k, v)
		}
	}
	if got, want := readVM(t, rw.sim, 100), rw.wantBigPackage(t); got != want {
		t.Errorf("VM after the second restore =\n %+v\nwant\n %+v", got, want)
	}
}

// SMTP being down at the end of a restore does not hold the VM: the job
// finishes, and a later tick's outbox sends the email once SMTP is back.
func TestRestoreEmailWaitsInTheOutboxWhileSMTPIsDown(t *testing.T) {
	t.Parallel()
	rw := newRestoreWorld(t)
	rw.smtp.FailNext(451, "try again later")
	if done, _ := rw.follow(rw.c, rw.startRestore().ID); done.State != "succeeded" {
		t.Fatalf("restore ended %s: %s", done.State, done.Error)
	}
	if n := len(rw.smtp.Messages()); n != 0 {
		t.Fatalf("%d emails while SMTP refused, want 0", n)
	}
	if l := rw.activeJob(rw.c); l != nil {
		t.Fatalf("the VM is still held by job %+v", l)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(rw.smtp.Messages()) == 0 && time.Now().Before(deadline) {
		rw.tick(0.5) // the outbox runs after every tick
		time.Sleep(500 * time.Millisecond)
	}
	rw.tick(0) // one more: nothing left to send twice
	if n := len(rw.smtp.Messages()); n != 1 {
		t.Fatalf("%d emails after SMTP came back, want 1", n)
	}
	if n := rw.emailsLogged(t); n != 1 {
		t.Errorf("tblemails has %d rows, want 1", n)
	}
}

// The plugin killed around the email's send: before SMTP is asked, or
// after the email is recorded as sent, it goes out exactly once; after
// SMTP accepted it and before the record, it goes out again — never lost — as the same message (same
// Message-ID, which mail systems collapse), logged once in tblemails.
// docs/adr/008-client-email-delivery.md explains why that window stays.
func TestRestoreEmailSurvivesAKillAroundTheSend(t *testing.T) {
	t.Parallel()
	cases := []struct {
		crashAt    string
		deliveries int
	}{
		{"email_reserved", 1},
		{"email_accepted", 2},
		{"email_recorded", 1},
	}
	for _, tc := range cases {
		t.Run(tc.crashAt, func(t *testing.T) {
			t.Parallel()
			rw := newRestoreWorld(t)
			j := rw.startRestore()
			rw.crashTick(tc.crashAt)
			if done, _ := rw.follow(rw.c, j.ID); done.State != "succeeded" {
				t.Fatalf("restore killed at %s ended %s: %s", tc.crashAt, done.State, done.Error)
			}
			// The email of a killed sender goes out once its row has been
			// idle for retry_after_seconds: tick until the record says sent.
			deadline := time.Now().Add(30 * time.Second)
			for rw.emailsLogged(t) == 0 && time.Now().Before(deadline) {
				rw.tick(0.5)
				time.Sleep(500 * time.Millisecond)
			}
			rw.tick(0) // one more: nothing left to send again
			msgs := rw.smtp.Messages()
			if len(msgs) != tc.deliveries {
				t.Fatalf("%d deliveries after a kill at %s, want %d", len(msgs), tc.crashAt, tc.deliveries)
			}
			for _, m := range msgs[1:] {
				if m.MessageID != msgs[0].MessageID {
					t.Errorf("redelivery has Message-ID %s, want the first's %s", m.MessageID, msgs[0].MessageID)
				}
			}
			if n := rw.emailsLogged(t); n != 1 {
				t.Errorf("tblemails has %d rows after a kill at %s, want 1", n, tc.crashAt)
			}
		})
	}
}
