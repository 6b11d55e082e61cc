package pvetest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// Env is one PVE endpoint prepared for the suite.
type Env struct {
	Config    pve.Config   // a working connection
	VMID      pvekeep.VMID // a QEMU guest the suite may back up; its new backups are removed again
	Storage   string       // a storage with content "backup", reachable from the guest's node
	OtherNode string       // a cluster node that does not hold VMID; "" skips the wrong-node test
	Faults    Faults       // nil on a live PVE: tests that need faults skip

	// The guest-lifecycle tests clone Template into ScratchVMID, work on
	// the copy (power, restore, config, disks) and destroy it; with either
	// unset they skip. ScratchVMID must be free: a taken one fails the
	// test and is left alone. ImageStorage (content images) takes the
	// copy's disks and the new disk; "" keeps the template's storage and
	// skips the new-disk test.
	Template     pvekeep.VMID
	ScratchVMID  pvekeep.VMID
	ImageStorage string
	// SharedImageStorage is a storage with content images that every
	// node sees: a full clone onto it may land on OtherNode. "" skips.
	SharedImageStorage string
}

// Faults injects failures into a simulated PVE.
type Faults interface {
	// FailTask makes the next task of type typ ("vzdump", "imgdel",
	// "qmrestore", …) for vmid end with exitstatus (e.g. "job errors" or
	// "WARNINGS: 2").
	FailTask(typ string, vmid pvekeep.VMID, exitstatus string) error
	// FailHTTP answers the next count requests whose method and API path
	// (below /api2/json) match with status.
	FailHTTP(method, pathRegex string, status, count int) error
	// SetLock sets a stuck lock on the guest's config ("" clears it).
	SetLock(vmid pvekeep.VMID, lock string) error
	// Clear removes every injected fault.
	Clear()
}

// Suite runs the conformance tests. NewEnv is called once per test and
// may hand out a fresh simulator each time, or the same live cluster.
type Suite struct {
	NewEnv func(t *testing.T) Env
	// Timeout bounds each test (default 2 minutes).
	Timeout time.Duration
}

// RunTests runs every Test* method of the suite as a subtest, in name
// order, one at a time (a live node serialises vzdump anyway).
func (s *Suite) RunTests(t *testing.T) {
	v := reflect.ValueOf(s)
	typ := v.Type()
	for i := 0; i < typ.NumMethod(); i++ {
		m := typ.Method(i)
		if !strings.HasPrefix(m.Name, "Test") {
			continue
		}
		fn, ok := v.Method(i).Interface().(func(*testing.T))
		if !ok {
			continue
		}
		t.Run(strings.TrimPrefix(m.Name, "Test"), fn)
	}
}

// setup returns the env, a connected client and a ctx bounded by Timeout.
func (s *Suite) setup(t *testing.T) (Env, *pve.Client, context.Context) {
	t.Helper()
	env := s.NewEnv(t)
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	c, err := pve.Connect(ctx, env.Config)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	if env.Faults != nil {
		t.Cleanup(env.Faults.Clear)
	}
	return env, c, ctx
}

func needFaults(t *testing.T, env Env) Faults {
	t.Helper()
	if env.Faults == nil {
		t.Skip("needs fault injection (simulator only)")
	}
	return env.Faults
}

// missingVMID is a vmid no test cluster is expected to hold.
const missingVMID pvekeep.VMID = 999999999

func (s *Suite) TestVersion(t *testing.T) {
	_, c, ctx := s.setup(t)
	v, err := c.Version(ctx)
	if err != nil || v == "" {
		t.Fatalf("Version = %q, %v", v, err)
	}
}

func (s *Suite) TestFindVM(t *testing.T) {
	env, c, ctx := s.setup(t)
	ref, err := c.FindVM(ctx, env.VMID)
	if err != nil {
		t.Fatalf("FindVM(%d): %v", env.VMID, err)
	}
	if ref.Node == "" || ref.Type != "qemu" || ref.VMID != env.VMID {
		t.Errorf("FindVM(%d) = %+v", env.VMID, ref)
	}
	if env.OtherNode != "" && ref.Node == env.OtherNode {
		t.Errorf("FindVM says the guest is on OtherNode %s", ref.Node)
	}
	if _, err := c.FindVM(ctx, missingVMID); !errors.Is(err, pve.ErrNotFound) {
		t.Errorf("FindVM(missing) err = %v, want ErrNotFound", err)
	}
}

func (s *Suite) TestVMStatusAndConfig(t *testing.T) {
	env, c, ctx := s.setup(t)
	node := findNode(ctx, t, c, env.VMID)
	st, err := c.VMStatus(ctx, node, env.VMID)
	if err != nil {
		t.Fatalf("VMStatus: %v", err)
	}
	if st.Status != "running" && st.Status != "stopped" {
		t.Errorf("VMStatus.Status = %q", st.Status)
	}
	cfg, err := c.VMConfig(ctx, node, env.VMID)
	if err != nil {
		t.Fatalf("VMConfig: %v", err)
	}
	if cfg.Digest() == "" {
		t.Errorf("VMConfig has no digest: %v", cfg)
	}
	if st.Lock != cfg.Lock() {
		t.Errorf("status lock %q != config lock %q", st.Lock, cfg.Lock())
	}
}

// A missing guest's status is PVE's 500 "Configuration file … does not
// exist", which must come back as ErrNotFound.
func (s *Suite) TestVMStatusOfMissingGuest(t *testing.T) {
	env, c, ctx := s.setup(t)
	node := findNode(ctx, t, c, env.VMID)
	if _, err := c.VMStatus(ctx, node, missingVMID); !errors.Is(err, pve.ErrNotFound) {
		t.Errorf("VMStatus(missing) err = %v, want ErrNotFound", err)
	}
	if _, err := c.VMConfig(ctx, node, missingVMID); !errors.Is(err, pve.ErrNotFound) {
		t.Errorf("VMConfig(missing) err = %v, want ErrNotFound", err)
	}
}

func (s *Suite) TestWrongSecretIsUnauthorized(t *testing.T) {
	env, _, ctx := s.setup(t)
	cfg := env.Config
	const wrong = "00000000-1111-2222-3333-444444444444"
	if cfg.TokenID != "" {
		cfg.TokenSecret = wrong
	} else {
		cfg.Password = wrong
	}
	c, err := pve.Connect(ctx, cfg)
	if err == nil {
		_, err = c.Version(ctx)
	}
	if !errors.Is(err, pve.ErrUnauthorized) {
		t.Fatalf("err = %v, want ErrUnauthorized", err)
	}
	if strings.Contains(err.Error(), wrong) {
		t.Errorf("error leaks the secret: %v", err)
	}
}

func (s *Suite) TestWrongFingerprintIsRefused(t *testing.T) {
	env, _, ctx := s.setup(t)
	cfg := env.Config
	cfg.VerifyTLS = false
	cfg.Fingerprint = strings.Repeat("00:", 31) + "00"
	c, err := pve.Connect(ctx, cfg)
	if err == nil {
		_, err = c.Version(ctx)
	}
	if err == nil || errors.Is(err, pve.ErrTransient) || !strings.Contains(err.Error(), "fingerprint") {
		t.Fatalf("err = %v, want a non-transient fingerprint refusal", err)
	}
}

// The whole life of a backup: vzdump with a note, wait, find the archive in
// the log and the listing, protect, refuse to delete, unprotect, delete.
func (s *Suite) TestBackupLifecycle(t *testing.T) {
	env, c, ctx := s.setup(t)
	node := findNode(ctx, t, c, env.VMID)
	upid, err := c.Vzdump(ctx, node, pve.VzdumpRequest{VMID: env.VMID, Storage: env.Storage,
		Notes: "pvetest {{vmid}} C:\\dir\nsecond line"})
	if err != nil {
		t.Fatalf("Vzdump: %v", err)
	}
	info, err := pve.ParseUPID(string(upid))
	if err != nil || info.Type != "vzdump" || info.Node != node {
		t.Fatalf("ParseUPID(%s) = %+v, %v", upid, info, err)
	}
	volid := waitBackup(ctx, t, c, env, upid)

	lines, err := c.TaskLog(ctx, upid, 0)
	if err != nil {
		t.Fatalf("TaskLog: %v", err)
	}
	progress := 0
	for _, l := range lines {
		if pct, ok := pve.ParseProgress(l); ok {
			if pct < 0 || pct > 100 {
				t.Errorf("progress %d out of range in %q", pct, l)
			}
			progress++
		}
	}
	if progress == 0 {
		t.Errorf("no progress line in the vzdump log:\n%s", strings.Join(lines, "\n"))
	}
	if tail, err := c.TaskLog(ctx, upid, len(lines)-1); err != nil || len(tail) != 1 || tail[0] != lines[len(lines)-1] {
		t.Errorf("TaskLog(start=%d) = %q, %v; want the last line %q", len(lines)-1, tail, err, lines[len(lines)-1])
	}

	vol, err := c.Volume(ctx, node, env.Storage, volid)
	if err != nil {
		t.Fatalf("Volume(%s): %v", volid, err)
	}
	if vol.VMID != env.VMID || vol.Size <= 0 || vol.CTime.IsZero() || vol.Protected || vol.Subtype != "qemu" || vol.Format == "" {
		t.Errorf("Volume = %+v", vol)
	}
	if want := `pvetest { {vmid}} C:\dir`; vol.Notes != want {
		t.Errorf("Notes = %q, want the first line %q", vol.Notes, want)
	}
	list, err := c.ListBackups(ctx, node, env.Storage, env.VMID)
	if err != nil {
		t.Fatalf("ListBackups: %v", err)
	}
	if !containsVolid(list, volid) {
		t.Errorf("ListBackups does not list %s", volid)
	}

	if err := c.SetVolumeNotes(ctx, node, env.Storage, volid, "renamed"); err != nil {
		t.Fatalf("SetVolumeNotes: %v", err)
	}
	if err := c.SetVolumeProtected(ctx, node, env.Storage, volid, true); err != nil {
		t.Fatalf("SetVolumeProtected: %v", err)
	}
	if vol, err = c.Volume(ctx, node, env.Storage, volid); err != nil || !vol.Protected || vol.Notes != "renamed" {
		t.Errorf("after protect+notes Volume = %+v, %v", vol, err)
	}

	// PVE refuses to remove a protected backup, at the API or in the task.
	if err := deleteAndWait(ctx, c, node, env.Storage, volid); err == nil {
		t.Fatalf("deleting a protected backup succeeded")
	}
	if _, err := c.Volume(ctx, node, env.Storage, volid); err != nil {
		t.Fatalf("the protected backup is gone: %v", err)
	}
	if err := c.SetVolumeProtected(ctx, node, env.Storage, volid, false); err != nil {
		t.Fatalf("unprotect: %v", err)
	}
	if err := deleteAndWait(ctx, c, node, env.Storage, volid); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := c.Volume(ctx, node, env.Storage, volid); !errors.Is(err, pve.ErrNotFound) {
		t.Errorf("Volume after delete err = %v, want ErrNotFound", err)
	}
	if _, err := c.DeleteVolume(ctx, node, env.Storage, volid); !errors.Is(err, pve.ErrNoSuchVolume) {
		t.Errorf("second delete err = %v, want ErrNoSuchVolume", err)
	}
}

func (s *Suite) TestVzdumpOnOtherNode(t *testing.T) {
	env, c, ctx := s.setup(t)
	if env.OtherNode == "" {
		t.Skip("single node")
	}
	_, err := c.Vzdump(ctx, env.OtherNode, pve.VzdumpRequest{VMID: env.VMID, Storage: env.Storage})
	if !errors.Is(err, pve.ErrWrongNode) {
		t.Fatalf("err = %v, want ErrWrongNode", err)
	}
}

func (s *Suite) TestDeleteMissingVolume(t *testing.T) {
	env, c, ctx := s.setup(t)
	node := findNode(ctx, t, c, env.VMID)
	volid := fmt.Sprintf("%s:backup/vzdump-qemu-%d-2000_01_01-00_00_00.vma.zst", env.Storage, env.VMID)
	if _, err := c.DeleteVolume(ctx, node, env.Storage, volid); !errors.Is(err, pve.ErrNotFound) {
		t.Errorf("err = %v, want ErrNotFound", err)
	}
}

func (s *Suite) TestFailedTask(t *testing.T) {
	env, c, ctx := s.setup(t)
	must(t, needFaults(t, env).FailTask("vzdump", env.VMID, "job errors"))
	node := findNode(ctx, t, c, env.VMID)
	before := backupSet(ctx, t, c, node, env)
	upid, err := c.Vzdump(ctx, node, pve.VzdumpRequest{VMID: env.VMID, Storage: env.Storage})
	if err != nil {
		t.Fatalf("Vzdump: %v", err)
	}
	t.Cleanup(func() { removeNew(t, c, node, env, before) })
	_, err = c.WaitTask(ctx, upid)
	var te *pve.TaskError
	if !errors.As(err, &te) {
		t.Fatalf("WaitTask err = %v, want *TaskError", err)
	}
	if te.ExitStatus != "job errors" || te.UPID != upid || len(te.LogTail) == 0 {
		t.Errorf("TaskError = %+v", te)
	}
}

func (s *Suite) TestTaskWithWarnings(t *testing.T) {
	env, c, ctx := s.setup(t)
	must(t, needFaults(t, env).FailTask("vzdump", env.VMID, "WARNINGS: 2"))
	node := findNode(ctx, t, c, env.VMID)
	before := backupSet(ctx, t, c, node, env)
	upid, err := c.Vzdump(ctx, node, pve.VzdumpRequest{VMID: env.VMID, Storage: env.Storage})
	if err != nil {
		t.Fatalf("Vzdump: %v", err)
	}
	t.Cleanup(func() { removeNew(t, c, node, env, before) })
	res, err := c.WaitTask(ctx, upid)
	if err != nil {
		t.Fatalf("WaitTask: %v (warnings are success)", err)
	}
	if res.Warnings != 2 || res.ExitStatus != "WARNINGS: 2" {
		t.Errorf("TaskResult = %+v", res)
	}
}

func (s *Suite) TestLockIsVisible(t *testing.T) {
	env, c, ctx := s.setup(t)
	f := needFaults(t, env)
	if err := f.SetLock(env.VMID, "backup"); err != nil {
		t.Fatalf("SetLock: %v", err)
	}
	t.Cleanup(func() { _ = f.SetLock(env.VMID, "") })
	node := findNode(ctx, t, c, env.VMID)
	st, err := c.VMStatus(ctx, node, env.VMID)
	if err != nil || st.Lock != "backup" {
		t.Errorf("VMStatus = %+v, %v; want lock backup", st, err)
	}
	cfg, err := c.VMConfig(ctx, node, env.VMID)
	if err != nil || cfg.Lock() != "backup" {
		t.Errorf("VMConfig lock = %q, %v; want backup", cfg.Lock(), err)
	}
}

// A backup of a locked guest fails in its task; the error names the lock.
func (s *Suite) TestVzdumpOfLockedGuest(t *testing.T) {
	env, c, ctx := s.setup(t)
	f := needFaults(t, env)
	must(t, f.SetLock(env.VMID, "snapshot"))
	t.Cleanup(func() { _ = f.SetLock(env.VMID, "") })
	node := findNode(ctx, t, c, env.VMID)
	before := backupSet(ctx, t, c, node, env)
	t.Cleanup(func() { removeNew(t, c, node, env, before) })
	upid, err := c.Vzdump(ctx, node, pve.VzdumpRequest{VMID: env.VMID, Storage: env.Storage})
	if err == nil {
		_, err = c.WaitTask(ctx, upid)
	}
	var le *pve.LockedError
	if !errors.Is(err, pve.ErrLocked) || !errors.As(err, &le) || le.Lock != "snapshot" || le.VMID != env.VMID {
		t.Fatalf("err = %v, want a LockedError for lock snapshot", err)
	}
}

// A 5xx on a GET is transient and retried a few times; it surfaces when it
// outlasts the retries.
func (s *Suite) TestTransientGET(t *testing.T) {
	env, c, ctx := s.setup(t)
	f := needFaults(t, env)
	must(t, f.FailHTTP("GET", `^/cluster/resources`, 503, 1))
	if _, err := c.FindVM(ctx, env.VMID); err != nil {
		t.Errorf("FindVM after one 503: %v (a GET is retried)", err)
	}
	must(t, f.FailHTTP("GET", `^/cluster/resources`, 503, 0))
	if _, err := c.FindVM(ctx, env.VMID); !errors.Is(err, pve.ErrTransient) {
		t.Errorf("FindVM under a lasting 503: err = %v, want ErrTransient", err)
	}
}

// A POST is sent once: after a 503 the gateway does not try again, so the
// fault (count 1) is still what the call saw.
func (s *Suite) TestVzdumpIsNotRetried(t *testing.T) {
	env, c, ctx := s.setup(t)
	f := needFaults(t, env)
	node := findNode(ctx, t, c, env.VMID)
	before := backupSet(ctx, t, c, node, env)
	t.Cleanup(func() { removeNew(t, c, node, env, before) })
	must(t, f.FailHTTP("POST", `/vzdump$`, 503, 1))
	if _, err := c.Vzdump(ctx, node, pve.VzdumpRequest{VMID: env.VMID, Storage: env.Storage}); !errors.Is(err, pve.ErrTransient) {
		t.Fatalf("Vzdump under one 503: err = %v, want ErrTransient (it must not be re-sent)", err)
	}
	upid, err := c.Vzdump(ctx, node, pve.VzdumpRequest{VMID: env.VMID, Storage: env.Storage})
	if err != nil {
		t.Fatalf("Vzdump after the fault: %v", err)
	}
	if _, err := c.WaitTask(ctx, upid); err != nil {
		t.Fatalf("WaitTask: %v", err)
	}
}

func (s *Suite) TestWaitTaskHonoursCancel(t *testing.T) {
	env, c, ctx := s.setup(t)
	node := findNode(ctx, t, c, env.VMID)
	before := backupSet(ctx, t, c, node, env)
	upid, err := c.Vzdump(ctx, node, pve.VzdumpRequest{VMID: env.VMID, Storage: env.Storage})
	if err != nil {
		t.Fatalf("Vzdump: %v", err)
	}
	t.Cleanup(func() {
		_, _ = c.WaitTask(context.Background(), upid)
		removeNew(t, c, node, env, before)
	})
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.WaitTask(cctx, upid); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitTask on a cancelled ctx: err = %v, want context.Canceled", err)
	}
}

// --- helpers -------------------------------------------------------------

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("inject fault: %v", err)
	}
}

func findNode(ctx context.Context, t *testing.T, c *pve.Client, vmid pvekeep.VMID) string {
	t.Helper()
	ref, err := c.FindVM(ctx, vmid)
	if err != nil {
		t.Fatalf("FindVM(%d): %v", vmid, err)
	}
	return ref.Node
}

// waitBackup waits for a vzdump and returns the volid named in its log,
// registering its removal.
func waitBackup(ctx context.Context, t *testing.T, c *pve.Client, env Env, upid pvekeep.UPID) string {
	t.Helper()
	info, _ := pve.ParseUPID(string(upid))
	if _, err := c.WaitTask(ctx, upid); err != nil {
		t.Fatalf("WaitTask(%s): %v", upid, err)
	}
	lines, err := c.TaskLog(ctx, upid, 0)
	if err != nil {
		t.Fatalf("TaskLog: %v", err)
	}
	for _, l := range lines {
		if target, ok := pve.ParseArchive(l); ok {
			volid := pve.VolidFromArchive(env.Storage, target)
			t.Cleanup(func() { cleanupVolume(t, c, info.Node, env.Storage, volid) })
			return volid
		}
	}
	t.Fatalf("no archive line in the vzdump log:\n%s", strings.Join(lines, "\n"))
	return ""
}

func deleteAndWait(ctx context.Context, c *pve.Client, node, storage, volid string) error {
	upid, err := c.DeleteVolume(ctx, node, storage, volid)
	if err != nil || upid == "" {
		return err
	}
	_, err = c.WaitTask(ctx, upid)
	return err
}

func cleanupVolume(t *testing.T, c *pve.Client, node, storage, volid string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = c.SetVolumeProtected(ctx, node, storage, volid, false)
	if err := deleteAndWait(ctx, c, node, storage, volid); err != nil && !errors.Is(err, pve.ErrNotFound) {
		t.Logf("cleanup %s: %v", volid, err)
	}
}

func backupSet(ctx context.Context, t *testing.T, c *pve.Client, node string, env Env) map[string]bool {
	t.Helper()
	list, err := c.ListBackups(ctx, node, env.Storage, env.VMID)
	if err != nil {
		t.Fatalf("ListBackups: %v", err)
	}
	m := map[string]bool{}
	for _, v := range list {
		m[v.Volid] = true
	}
	return m
}

// removeNew deletes the guest's backups that were not there before.
func removeNew(t *testing.T, c *pve.Client, node string, env Env, before map[string]bool) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := c.ListBackups(ctx, node, env.Storage, env.VMID)
	if err != nil {
		t.Logf("cleanup: list backups: %v", err)
		return
	}
	for _, v := range list {
		if !before[v.Volid] {
			cleanupVolume(t, c, node, env.Storage, v.Volid)
		}
	}
}

func containsVolid(list []pve.Volume, volid string) bool {
	for _, v := range list {
		if v.Volid == volid {
			return true
		}
	}
	return false
}

// ConfigFromURL builds a Config from "https://host:port[/api2/json]".
func ConfigFromURL(raw string) (pve.Config, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" {
		return pve.Config{}, fmt.Errorf("pve url %q: want https://host[:port][/api2/json]", raw)
	}
	cfg := pve.Config{Host: u.Hostname()}
	if p := u.Port(); p != "" {
		if cfg.Port, err = strconv.Atoi(p); err != nil {
			return pve.Config{}, fmt.Errorf("pve url %q: bad port", raw)
		}
	}
	return cfg, nil
}

// LiveEnv builds the Env of a live PVE from the PVEKEEP_TEST_PVE_*
// variables (see the package doc). Whether a live run is expected is said
// by PVEKEEP_TEST_REQUIRE_LIVE_PVE, never guessed:
//
//   - URL, token id and secret all set: the suite runs.
//   - some set, some not: a broken configuration, so the test fails (a
//     typo must not pass as "no Proxmox here").
//   - none set and PVEKEEP_TEST_REQUIRE_LIVE_PVE=1: the test fails.
//   - none set and PVEKEEP_TEST_REQUIRE_LIVE_PVE=0: deliberately absent
//     (CI has no Proxmox; `make test` says so); the test skips, saying why.
//   - none set and PVEKEEP_TEST_REQUIRE_LIVE_PVE unset: a skip, unless
//     PVEKEEP_TEST_DISALLOW_SKIP=1, where it fails and asks for one of
//     the two declarations.
func LiveEnv(t testing.TB) Env {
	t.Helper()
	vars := []string{"PVEKEEP_TEST_PVE_URL", "PVEKEEP_TEST_PVE_TOKEN_ID", "PVEKEEP_TEST_PVE_TOKEN_SECRET"}
	var set, unset []string
	for _, v := range vars {
		if os.Getenv(v) != "" {
			set = append(set, v)
		} else {
			unset = append(unset, v)
		}
	}
	raw, id, secret := os.Getenv(vars[0]), os.Getenv(vars[1]), os.Getenv(vars[2])
	switch require := os.Getenv("PVEKEEP_TEST_REQUIRE_LIVE_PVE"); {
	case len(set) > 0 && len(unset) > 0:
		t.Fatalf("live Proxmox VE half configured: %s set but %s not; set all three or none",
			strings.Join(set, ", "), strings.Join(unset, ", "))
	case len(set) > 0:
	case require == "1":
		t.Fatalf("a live Proxmox VE is required (PVEKEEP_TEST_REQUIRE_LIVE_PVE=1) but %s are not set",
			strings.Join(vars, ", "))
	case require == "0":
		t.Skipf("no live Proxmox VE, as declared by PVEKEEP_TEST_REQUIRE_LIVE_PVE=0 (set %s to run this suite)",
			strings.Join(vars, ", "))
	case os.Getenv("PVEKEEP_TEST_DISALLOW_SKIP") == "1":
		t.Fatalf("skip disallowed (PVEKEEP_TEST_DISALLOW_SKIP=1): %s are not set; set them, "+
			"or declare that there is no live Proxmox VE with PVEKEEP_TEST_REQUIRE_LIVE_PVE=0", strings.Join(vars, ", "))
	default:
		t.Skipf("no live Proxmox VE: %s are not set", strings.Join(vars, ", "))
	}
	cfg, err := ConfigFromURL(raw)
	if err != nil {
		t.Fatal(err)
	}
	cfg.TokenID, cfg.TokenSecret = id, secret
	cfg.Fingerprint = os.Getenv("PVEKEEP_TEST_PVE_FINGERPRINT")
	cfg.VerifyTLS = os.Getenv("PVEKEEP_TEST_PVE_VERIFY_TLS") == "1"
	env := Env{Config: cfg, VMID: 100, Storage: "local", OtherNode: os.Getenv("PVEKEEP_TEST_PVE_OTHER_NODE")}
	if v := os.Getenv("PVEKEEP_TEST_PVE_VMID"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("PVEKEEP_TEST_PVE_VMID: %v", err)
		}
		env.VMID = pvekeep.VMID(n)
	}
	if s := os.Getenv("PVEKEEP_TEST_PVE_STORAGE"); s != "" {
		env.Storage = s
	}
	for name, dst := range map[string]*pvekeep.VMID{
		"PVEKEEP_TEST_PVE_TEMPLATE": &env.Template, "PVEKEEP_TEST_PVE_SCRATCH_VMID": &env.ScratchVMID,
	} {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			*dst = pvekeep.VMID(n)
		}
	}
	env.ImageStorage = os.Getenv("PVEKEEP_TEST_PVE_IMAGE_STORAGE")
	return env
}

// SkipOrFail skips, or fails when PVEKEEP_TEST_DISALLOW_SKIP=1 (restic's
// SkipDisallowed).
func SkipOrFail(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("PVEKEEP_TEST_DISALLOW_SKIP") == "1" {
		t.Fatalf("skip disallowed (PVEKEEP_TEST_DISALLOW_SKIP=1): %s", reason)
	}
	t.Skip(reason)
}
