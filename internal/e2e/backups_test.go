package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/pvekeep/pvekeep/internal/pvesim"
)

func TestBackupCreateListRemoveThroughPHP(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.newCustomer(100, 3)

	if got := w.button(c, "backupCreate", map[string]any{"pvekeep_note": "before upgrade\n(second line)", "pvekeep_token": "form-1"}); got != "success" {
		t.Fatalf("backupCreate = %q, want success", got)
	}
	active := w.activeJob(c)
	if active == nil || active.Kind != "backup.create" {
		t.Fatalf("active job after create = %+v, want a backup.create job", active)
	}
	done, seen := w.follow(c, active.ID)
	if done.State != "succeeded" {
		t.Fatalf("backup job ended %s: %s", done.State, done.Error)
	}
	if !sawPartialProgress(seen) {
		t.Errorf("progress values seen %v, want at least one strictly between 0 and 100", seen)
	}

	page := w.php(map[string]any{"do": "clientarea", "params": w.params(c), "session_uid": c.clientID})
	var ca struct {
		Template string `json:"tabOverviewModuleOutputTemplate"`
		Vars     struct {
			Backups []struct {
				ID        int64  `json:"id"`
				Note      string `json:"note"`
				SizeBytes int64  `json:"size_bytes"`
				CreatedAt string `json:"created_at"`
				Status    string `json:"status"`
			} `json:"pvekeep_backups"`
			Quota struct{ Used, Max int } `json:"pvekeep_quota"`
		} `json:"templateVariables"`
	}
	if err := json.Unmarshal(page.Result, &ca); err != nil {
		t.Fatalf("client area result %s: %v", page.Result, err)
	}
	if ca.Template != "templates/clientarea.tpl" {
		t.Fatalf("client area rendered %q, want the backups page", ca.Template)
	}
	if ca.Vars.Quota.Used != 1 || ca.Vars.Quota.Max != 3 {
		t.Errorf("quota = %d/%d, want 1/3", ca.Vars.Quota.Used, ca.Vars.Quota.Max)
	}
	if len(ca.Vars.Backups) != 1 {
		t.Fatalf("client area lists %d backups, want 1", len(ca.Vars.Backups))
	}
	b := ca.Vars.Backups[0]
	if b.Note != "before upgrade (second line)" {
		t.Errorf("note = %q, want the one-line note", b.Note)
	}
	if b.SizeBytes <= 0 || b.CreatedAt == "" || b.Status != "available" {
		t.Errorf("backup = %+v, want a size, a time and status available", b)
	}
	vols := volumesOf(w.sim, 100)
	if len(vols) != 1 || vols[0].Size != b.SizeBytes {
		t.Errorf("simulator volumes of VM 100 = %+v, want the one backup of %d bytes", vols, b.SizeBytes)
	}

	if got := w.button(c, "backupRemove", map[string]any{"pvekeep_backup_id": b.ID}); got != "success" {
		t.Fatalf("backupRemove = %q, want success", got)
	}
	if active := w.activeJob(c); active != nil {
		if done, _ := w.follow(c, active.ID); done.State != "succeeded" {
			t.Fatalf("remove job ended %s: %s", done.State, done.Error)
		}
	}
	var l backupList
	w.mustCall(c, "backups.list", nil, &l)
	if len(l.Items) != 0 || l.Quota.Used != 0 {
		t.Errorf("after remove: %d items, %d used; want none", len(l.Items), l.Quota.Used)
	}
	if vols := volumesOf(w.sim, 100); len(vols) != 0 {
		t.Errorf("simulator still has %d volumes of VM 100", len(vols))
	}
	assertSecretsMasked(t, w)
}

func TestFullQuotaIsRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.newCustomer(101, 1)
	var created struct{ Job job }
	w.mustCall(c, "backups.create", map[string]any{"note": "first"}, &created)
	if done, _ := w.follow(c, created.Job.ID); done.State != "succeeded" {
		t.Fatalf("first backup ended %s: %s", done.State, done.Error)
	}
	jobsBefore := w.jobCount(c.serviceID)

	out := w.call(c, c.clientID, "backups.create", map[string]any{"note": "second"})
	if out.Error == nil || out.Error.Code != 1004 || out.Error.Data["reason"] != "quota_exceeded" {
		t.Fatalf("second backup at 1/1 answered %+v, want 1004 quota_exceeded", out.Error)
	}
	if out.Error.Data["used"] != float64(1) || out.Error.Data["max"] != float64(1) {
		t.Errorf("quota data = %v, want used 1, max 1", out.Error.Data)
	}
	if n := w.jobCount(c.serviceID); n != jobsBefore {
		t.Errorf("jobs after refusal = %d, want %d (nothing recorded)", n, jobsBefore)
	}
	if msg := w.button(c, "backupCreate", map[string]any{"pvekeep_note": "third"}); !strings.Contains(msg, "all 1 backups") {
		t.Errorf("button message = %q, want the translated quota message", msg)
	}
}

func TestAnotherClientsServiceIsForbidden(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	owner := w.newCustomer(102, 3)
	intruder := w.newCustomer(103, 3)
	for _, method := range []string{"backups.create", "backups.list", "service.status"} {
		out := w.call(owner, intruder.clientID, method, map[string]any{"note": "mine now"})
		if out.Error == nil || out.Error.Code != 1002 || out.Error.Data["reason"] != "forbidden" {
			t.Errorf("%s on another client's service answered %+v, want 1002 forbidden", method, out.Error)
		}
	}
	if n := w.jobCount(owner.serviceID); n != 0 {
		t.Errorf("the owner's service has %d jobs after the refused calls, want 0", n)
	}
	if vols := volumesOf(w.sim, 102); len(vols) != 0 {
		t.Errorf("VM 102 has %d backups after the refused calls, want 0", len(vols))
	}
}

func TestRunningJobLocksTheVM(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.newCustomer(104, 3)
	var created struct{ Job job }
	w.mustCall(c, "backups.create", map[string]any{"note": "first"}, &created)

	out := w.call(c, c.clientID, "backups.create", map[string]any{"note": "second"})
	if out.Error == nil || out.Error.Code != 1003 || out.Error.Data["reason"] != "locked" {
		t.Fatalf("create during a running backup answered %+v, want 1003 locked", out.Error)
	}
	if out.Error.Data["job_id"] != float64(created.Job.ID) {
		t.Errorf("locked data = %v, want job_id %d", out.Error.Data, created.Job.ID)
	}
	var st struct {
		Lock struct {
			Locked bool   `json:"locked"`
			Reason string `json:"reason"`
			JobID  int64  `json:"job_id"`
		} `json:"lock"`
	}
	w.mustCall(c, "service.status", nil, &st)
	if !st.Lock.Locked || st.Lock.JobID != created.Job.ID {
		t.Errorf("service.status lock = %+v, want locked by job %d", st.Lock, created.Job.ID)
	}
	if n := w.jobCount(c.serviceID); n != 1 {
		t.Errorf("jobs = %d, want 1", n)
	}
}

func TestProxmoxLockLocksTheVM(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.newCustomer(105, 3)
	if err := w.sim.SetLock(105, "snapshot"); err != nil {
		t.Fatal(err)
	}
	out := w.call(c, c.clientID, "backups.create", map[string]any{"note": "x"})
	if out.Error == nil || out.Error.Code != 1003 || out.Error.Data["lock"] != "snapshot" {
		t.Fatalf("create on a VM Proxmox locked answered %+v, want 1003 with lock snapshot", out.Error)
	}
	if n := w.jobCount(c.serviceID); n != 0 {
		t.Errorf("jobs = %d, want 0", n)
	}
}

func TestFailingVzdumpEndsAsFailedJobWithProxmoxMessage(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.newCustomer(100, 3)
	const msg = "no space left on device"
	if err := w.sim.InjectTaskFault(pvesim.TaskFault{Type: "vzdump", VMID: 100, ExitStatus: msg, Count: 1}); err != nil {
		t.Fatal(err)
	}
	var created struct{ Job job }
	w.mustCall(c, "backups.create", map[string]any{"note": "doomed"}, &created)
	done, _ := w.follow(c, created.Job.ID)
	if done.State != "failed" {
		t.Fatalf("job ended %s, want failed", done.State)
	}
	if !strings.Contains(done.Error, msg) {
		t.Errorf("job error = %q, want Proxmox's message %q", done.Error, msg)
	}
	var l backupList
	w.mustCall(c, "backups.list", nil, &l)
	if len(l.Items) != 0 || l.Quota.Used != 0 {
		t.Errorf("after a failed backup: %d items, %d used; want none (no slot lost)", len(l.Items), l.Quota.Used)
	}
	// The client's page says why the click came to nothing.
	page := w.php(map[string]any{"do": "clientarea", "params": w.params(c), "session_uid": c.clientID})
	var ca struct {
		Vars struct {
			FailedBackup *struct {
				ID        int64  `json:"id"`
				ErrorText string `json:"error_text"`
			} `json:"pvekeep_failed_backup"`
		} `json:"templateVariables"`
	}
	if err := json.Unmarshal(page.Result, &ca); err != nil {
		t.Fatalf("client area result %s: %v", page.Result, err)
	}
	if fb := ca.Vars.FailedBackup; fb == nil || fb.ID != created.Job.ID || !strings.Contains(fb.ErrorText, msg) {
		t.Errorf("client area failed backup = %+v, want job %d explained with %q", fb, created.Job.ID, msg)
	}
}

func TestVolumeNotRecordedForTheServiceIsInvisible(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.newCustomer(101, 3)
	// A backup of the same vmid made by someone else: a previous owner of a
	// reused vmid, or an admin by hand.
	if _, err := w.sim.AddVolume(pvesim.Volume{VMID: 101, Notes: "previous owner"}); err != nil {
		t.Fatal(err)
	}
	var l backupList
	w.mustCall(c, "backups.list", nil, &l)
	if len(l.Items) != 0 || l.Quota.Used != 0 {
		t.Errorf("list shows %d items (%d used), want the foreign volume invisible", len(l.Items), l.Quota.Used)
	}
	// A real backup of another service: its id must mean nothing here.
	other := w.newCustomer(102, 3)
	var created struct{ Job job }
	w.mustCall(other, "backups.create", map[string]any{"note": "someone else's"}, &created)
	if done, _ := w.follow(other, created.Job.ID); done.State != "succeeded" {
		t.Fatalf("the other service's backup ended %s", done.State)
	}
	for _, method := range []string{"backups.remove", "backups.restore"} {
		out := w.call(c, c.clientID, method, map[string]any{"backup_id": created.Job.BackupID})
		if out.Error == nil || out.Error.Code != 1001 {
			t.Errorf("%s of another service's backup answered %+v, want 1001 not_found", method, out.Error)
		}
	}
	if vols := volumesOf(w.sim, 101); len(vols) != 1 {
		t.Errorf("the foreign volume is gone: %d volumes left", len(vols))
	}
	if vols := volumesOf(w.sim, 102); len(vols) != 1 {
		t.Errorf("the other service's backup is gone: %d volumes left", len(vols))
	}
}

func sawPartialProgress(seen []int) bool {
	for _, p := range seen {
		if p > 0 && p < 100 {
			return true
		}
	}
	return false
}

func volumesOf(sim *pvesim.Sim, vmid int) []pvesim.VolumeState {
	var out []pvesim.VolumeState
	for _, v := range sim.State().Volumes {
		if v.VMID == vmid && strings.Contains(v.Volid, "backup/") {
			out = append(out, v)
		}
	}
	return out
}

// assertSecretsMasked checks the module log never carries the token secret.
func assertSecretsMasked(t *testing.T, w *world) {
	t.Helper()
	raw, err := os.ReadFile(w.modLog)
	if err != nil {
		t.Fatalf("read module log: %v", err)
	}
	if len(raw) == 0 {
		t.Fatal("module log is empty; logModuleCall was not called")
	}
	if strings.Contains(string(raw), w.info.TokenSecret) {
		t.Error("the module log contains the API token secret")
	}
}

func TestPreModuleHooksAbortWhileTheVMIsLocked(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.newCustomer(103, 3)
	hookAt := func(point string) []map[string]any {
		t.Helper()
		params := w.params(c)
		params["moduletype"] = "pvekeep"
		out := w.php(map[string]any{"do": "hook", "point": point, "params": params})
		var res []map[string]any
		if err := json.Unmarshal(out.Result, &res); err != nil {
			t.Fatalf("hook result %s: %v", out.Result, err)
		}
		return res
	}
	// ChangePassword is not pvekeep's: the hook guards it. pvekeep's own
	// commands refuse a locked VM themselves, with the reason.
	hook := func() []map[string]any { t.Helper(); return hookAt("PreModuleChangePassword") }
	if res := hook(); len(res) != 1 || res[0] != nil {
		t.Fatalf("hook on an idle VM = %v, want one hook that lets the command through", res)
	}
	var created struct{ Job job }
	w.mustCall(c, "backups.create", map[string]any{"note": "busy"}, &created)
	res := hook()
	if len(res) != 1 || res[0]["abortcmd"] != true || !strings.Contains(fmt.Sprint(res[0]["abortmsg"]), "backup") {
		t.Fatalf("hook during a backup = %v, want abortcmd with the reason", res)
	}
	for _, point := range []string{"PreModuleCreate", "PreModuleSuspend", "PreModuleUnsuspend", "PreModuleTerminate", "PreModuleChangePackage"} {
		if res := hookAt(point); len(res) != 0 {
			t.Errorf("%s during a backup runs hooks %v, want none: the module's own command answers", point, res)
		}
	}
	if done, _ := w.follow(c, created.Job.ID); done.State != "succeeded" {
		t.Fatalf("backup ended %s", done.State)
	}
	if res := hook(); res[0] != nil {
		t.Errorf("hook after the backup = %v, want the command let through", res)
	}
}
