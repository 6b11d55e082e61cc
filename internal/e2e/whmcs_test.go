package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pvekeep/pvekeep/internal/pvesim"
)

// TestInWHMCS is issue 7's "Done when" in a browser, through the WHMCS
// stand-in: what a customer and an admin can and cannot make the module do.
// The subtests share one panel and run one after the other (faults are
// injected into the one simulator); each has its own customer and VM.
//
// Selectors are the module's (templates/clientarea.tpl header) and the
// stand-in's ([data-standin=…], docs/whmcs.md).
func TestInWHMCS(t *testing.T) {
	t.Parallel()
	browser := newBrowser(t)
	w := newWorld(t)
	s := w.startStandin()

	t.Run("a POST without or with a wrong token changes nothing", func(t *testing.T) {
		c := w.newCustomer(100, 3)
		hc := s.httpClient(t, c.clientID, 0)
		token := pageToken(t, hc, s.productURL(c, ""))
		for _, tt := range []struct{ name, token string }{{"no token", ""}, {"wrong token", token + "x"}, {"another session's", "0123456789abcdef0123456789abcdef01234567"}} {
			form := url.Values{"modop": {"custom"}, "a": {"backupCreate"}, "pvekeep_note": {"forged"}}
			if tt.token != "" {
				form.Set("token", tt.token)
			}
			resp, err := hc.PostForm(s.productURL(c, ""), form)
			must(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(body), "Invalid CSRF Protection Token") {
				t.Errorf("%s: the POST answered %s without WHMCS's CSRF failure page:\n%.600s", tt.name, resp.Status, body)
			}
		}
		// A GET link (what a cross-site <img> or the sidebar would send) changes nothing either.
		resp, err := hc.Get(s.productURL(c, "") + "&modop=custom&a=backupCreate&pvekeep_note=forged")
		must(t, err)
		resp.Body.Close()
		if n := w.jobCount(c.serviceID); n != 0 {
			t.Errorf("%d jobs after forged requests, want 0", n)
		}
		for _, task := range w.sim.State().Tasks {
			if task.Type == "vzdump" && task.ID == fmt.Sprint(c.vmid) {
				t.Errorf("Proxmox ran %s for a forged request", task.UPID)
			}
		}
	})

	t.Run("a note arrives at Proxmox and on the page exactly as typed", func(t *testing.T) {
		const note = `Tom's "db" <b>before</b> & after &amp; <script>x</script>`
		c := w.newCustomer(101, 3)
		tb := s.open(t, browser)
		tb.login(t, c.clientID, 0, nil)
		tb.page = s.productURL(c, "")
		tb.load(t)
		tb.do(t, "type the note", chromedp.SendKeys(chromedp.CSS(`#pvekeep-note`), note))
		tb.submit(t, `[data-pvekeep=backup-create-submit]`)
		tb.mustShowPage(t)
		if got := tb.attr(t, `#pvekeep-flash`, "data-kind"); got != "success" {
			t.Fatalf("after Backup now the flash is %q: %q", got, tb.text(t, `#pvekeep-flash`))
		}
		j := w.activeJob(c)
		if j == nil {
			t.Fatal("no job after Backup now")
		}
		if done, _ := w.follow(c, j.ID); done.State != "succeeded" {
			t.Fatalf("the backup ended %s: %s", done.State, done.Error)
		}
		var notes []string
		for _, v := range w.sim.State().Volumes {
			if v.VMID == c.vmid {
				notes = append(notes, v.Notes)
			}
		}
		if len(notes) != 1 || notes[0] != note {
			t.Errorf("Proxmox has the notes %q, want exactly %q", notes, note)
		}
		tb.load(t)
		if got := tb.text(t, `.pvekeep-backup-note`); got != note {
			t.Errorf("the page shows the note %q, want %q", got, note)
		}
		if n := tb.count(t, `#pvekeep b, #pvekeep script`); n != 0 {
			t.Errorf("the note became %d elements", n)
		}
	})

	t.Run("a Proxmox error containing HTML is shown as text", func(t *testing.T) {
		const hostile = `<b class="pvekeep-injected">refused</b><img src="x" onerror="window.__xss=1">`
		// Without <img>: an injected element is found as such, not through
		// the browser's log of a failed image load.
		const hostileFlash = `<b class="pvekeep-injected">refused</b><script>window.__xss=1</script>`
		c := w.newCustomer(102, 3)
		w.backedUp(c, "nightly")
		tb := s.open(t, browser)
		tb.login(t, c.clientID, 0, nil)
		tb.page = s.productURL(c, "")
		tb.load(t)

		// Proxmox refuses the backup with an HTML error body.
		must(t, w.sim.InjectHTTPFault(pvesim.HTTPFault{Method: "POST", PathRegex: `/vzdump$`, Status: 500,
			Message: "vzdump " + hostileFlash, Count: 1}))
		tb.submit(t, `[data-pvekeep=backup-create-submit]`)
		tb.mustShowPage(t)
		// The flash shows once: check it here, before any reload.
		if got := tb.attr(t, `#pvekeep-flash`, "data-kind"); got != "danger" {
			t.Errorf("after a refused backup the flash is %q: %q", got, tb.text(t, `#pvekeep-flash`))
		}
		if got := tb.text(t, `#pvekeep-flash`); !strings.Contains(got, hostileFlash) {
			t.Errorf("the flash reads %q, want Proxmox's message as text, tags and all", got)
		}
		if n := tb.count(t, `.pvekeep-injected, #pvekeep-flash *`); n != 0 {
			t.Errorf("Proxmox's HTML in the flash became %d elements", n)
		}
		if got := eval[string](t, tb, `typeof window.__xss`); got != "undefined" {
			t.Errorf("Proxmox's HTML in the flash ran a script")
		}
		w.sim.ClearFaults()

		// A restore whose Proxmox task fails with HTML in its exit status.
		must(t, w.sim.InjectTaskFault(pvesim.TaskFault{Type: "qmrestore", VMID: c.vmid,
			ExitStatus: "unable to restore VM " + fmt.Sprint(c.vmid) + " - " + hostile, Count: 1}))
		tb.submit(t, `[data-pvekeep=backup-restore]`)
		j := w.activeJob(c)
		if j == nil || j.Kind != "backup.restore" {
			t.Fatalf("active job after Restore = %+v", j)
		}
		if done, _ := w.follow(c, j.ID); done.State != "failed" {
			t.Fatalf("the restore ended %s, want failed", done.State)
		}
		tb.load(t)
		if got := tb.text(t, `#pvekeep-failed-restore .pvekeep-failed-error`); !strings.Contains(got, hostile) {
			t.Errorf("the failed restore reads %q, want Proxmox's message as text, tags and all", got)
		}
		if n := tb.count(t, `.pvekeep-injected, #pvekeep img`); n != 0 {
			t.Errorf("Proxmox's HTML became %d elements", n)
		}
		if got := eval[string](t, tb, `typeof window.__xss`); got != "undefined" {
			t.Errorf("Proxmox's HTML ran a script")
		}
	})

	// In the browser this holds because WHMCS (and so the stand-in) calls
	// ClientArea only for an Active service: the page has no module output at
	// all. The module must not rely on that alone, so the stand-in's CLI also
	// calls its ClientArea directly for the Suspended service, and PHPUnit's
	// ClientAreaViewTest::testNoFormsForAnotherClientOrAnInactiveService
	// guards the view's can_* flags.
	t.Run("a suspended service shows no action forms", func(t *testing.T) {
		c := w.newCustomer(103, 3)
		w.backedUp(c, "nightly")
		must(t, w.seed.SetServiceStatus(context.Background(), c.serviceID, "Suspended"))
		var direct struct{ Status, HTML string }
		s.cli(t, &direct, "client-area", fmt.Sprint(c.serviceID))
		if direct.Status != "Suspended" || !strings.Contains(direct.HTML, `data-pvekeep="page"`) {
			t.Fatalf("ClientArea called directly for the %s service rendered:\n%.600s", direct.Status, direct.HTML)
		}
		if n := strings.Count(strings.ToLower(direct.HTML), "<form"); n != 0 {
			t.Errorf("ClientArea called directly for a suspended service renders %d forms:\n%s", n, direct.HTML)
		}
		for _, theme := range []string{"twenty-one", "six"} {
			tb := s.open(t, browser)
			tb.login(t, c.clientID, 0, nil)
			tb.goTo(t, s.productURL(c, theme))
			if got := tb.text(t, `[data-standin=billing] [data-standin=status]`); got != "Suspended" {
				t.Errorf("%s: the billing details read %q, want Suspended", theme, got)
			}
			if n := tb.count(t, `#pvekeep form, [data-standin=module-output] form, [data-standin-custom-button]`); n != 0 {
				t.Errorf("%s: a suspended service's page offers %d actions", theme, n)
			}
		}
		// Nor does a post with a valid token do anything.
		hc := s.httpClient(t, c.clientID, 0)
		token := pageToken(t, hc, s.productURL(c, ""))
		before := w.jobCount(c.serviceID)
		resp, err := hc.PostForm(s.productURL(c, ""), url.Values{"token": {token}, "modop": {"custom"}, "a": {"backupCreate"}})
		must(t, err)
		resp.Body.Close()
		if n := w.jobCount(c.serviceID); n != before {
			t.Errorf("a post on a suspended service made %d jobs", n-before)
		}
	})

	t.Run("dates and language follow WHMCS's settings and the session", func(t *testing.T) {
		c := w.newCustomer(105, 3)
		w.backedUp(c, "nightly")
		var l backupList
		w.mustCall(c, "backups.list", nil, &l)
		created, err := time.Parse(time.RFC3339, l.Items[0].CreatedAt)
		must(t, err)
		ctx := context.Background()
		must(t, w.seed.Setting(ctx, "DateFormat", "YYYY-MM-DD"))
		defer w.seed.Setting(ctx, "DateFormat", "DD/MM/YYYY")
		berlin, err := time.LoadLocation("Europe/Berlin")
		must(t, err)
		sw := w.sub(t)
		sw.env = append(append([]string(nil), w.env...), "WHMCS_STANDIN_TIMEZONE=Europe/Berlin")
		bs := sw.startStandin()
		tb := bs.open(t, browser)
		// The client's profile says English; in this session they picked German.
		tb.login(t, c.clientID, 0, url.Values{"language": {"german"}})
		tb.page = bs.productURL(c, "")
		tb.load(t)
		if got, want := tb.text(t, `.pvekeep-backup-created`), created.In(berlin).Format("2006-01-02 15:04"); got != want {
			t.Errorf("the backup's date reads %q, want %q (DateFormat YYYY-MM-DD, Europe/Berlin)", got, want)
		}
		if got := tb.attr(t, `#pvekeep`, "lang"); got != "de" {
			t.Errorf("the page's language is %q, want the session's German", got)
		}
	})

	t.Run("the admin restores the chosen backup", func(t *testing.T) {
		c := w.newCustomer(104, 3)
		w.backedUp(c, "older")
		w.backedUp(c, "newer")
		var l backupList
		w.mustCall(c, "backups.list", nil, &l)
		var chosen int64
		for _, b := range l.Items {
			if b.Note == "older" {
				chosen = b.ID
			}
		}
		if chosen == 0 {
			t.Fatalf("no backup noted \"older\" in %+v", l.Items)
		}
		tb := s.open(t, browser)
		tb.login(t, 0, 1, nil)
		tb.goTo(t, s.adminURL(c))
		tb.do(t, "choose the older backup", chromedp.SetValue(chromedp.CSS(`#pvekeep-admin-selected-backup`), fmt.Sprint(chosen)))
		tb.submit(t, `[data-standin=save]`)
		if tb.count(t, `[data-standin-result=saved]`) != 1 {
			t.Fatalf("Save did not save:\n%s", tb.text(t, "body"))
		}
		if got := eval[string](t, tb, `document.querySelector('#pvekeep-admin-selected-backup').value`); got != fmt.Sprint(chosen) {
			t.Errorf("after Save the chosen backup is %s, want %d", got, chosen)
		}
		tb.submit(t, `[data-standin-command="custom-adminBackupRestore"]`)
		if got := tb.attr(t, `[data-standin-result]`, "data-standin-result"); got != "success" {
			t.Fatalf("Restore answered %q: %s", got, tb.text(t, `[data-standin-result]`))
		}
		tb.do(t, "size the window", chromedp.EmulateViewport(1280, 1000))
		tb.screenshot(t, "admin-service-restoring")
		j := w.activeJob(c)
		if j == nil || j.Kind != "backup.restore" || j.BackupID != chosen {
			t.Fatalf("active job after the admin's Restore = %+v, want a restore of backup %d", j, chosen)
		}
		if done, _ := w.follow(c, j.ID); done.State != "succeeded" {
			t.Errorf("the admin's restore ended %s: %s", done.State, done.Error)
		}
	})
}

var tokenRe = regexp.MustCompile(`var csrfToken = "([0-9a-f]+)"`)

// pageToken GETs a page as hc's session and returns its CSRF token (the
// theme's csrfToken script variable).
func pageToken(t testing.TB, hc *http.Client, u string) string {
	t.Helper()
	resp, err := hc.Get(u)
	must(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := tokenRe.FindSubmatch(body)
	if m == nil {
		t.Fatalf("%s (%s) has no csrfToken:\n%.500s", u, resp.Status, body)
	}
	return string(m[1])
}

// TestTestConnection: WHMCS's Test Connection button, through the stand-in,
// fails with a message that says what is wrong.
func TestTestConnection(t *testing.T) {
	t.Parallel()
	browser := newBrowser(t)
	w := newWorld(t)
	s := w.startStandin()
	ctx := context.Background()
	server := func(edit func(*serverRow)) int64 {
		row := serverRow{password: w.info.TokenSecret, accessHash: w.info.Fingerprint}
		edit(&row)
		srv := w.server
		srv.Password, srv.AccessHash = row.password, row.accessHash
		id, err := w.seed.Server(ctx, srv)
		must(t, err)
		return id
	}
	type answer struct {
		Success bool   `json:"success"`
		Error   string `json:"error"`
	}
	for _, tt := range []struct {
		name  string
		edit  func(*serverRow)
		setup func(t *testing.T)
		want  []string // in the error, case-insensitive
	}{
		{"works", func(*serverRow) {}, nil, nil},
		{"wrong token", func(r *serverRow) { r.password = "not-the-secret" }, nil, []string{"API token:", "refused the API token", "Password"}},
		{"wrong fingerprint", func(r *serverRow) {
			r.accessHash = strings.Repeat("AB:", 31) + "AB"
		}, nil, []string{"TLS:", "fingerprint " + w.info.Fingerprint, "Access Hash"}},
		// The token sees no storage that holds backups (only the VMs' disk
		// storage): for Proxmox that storage is not there.
		{"missing storage", func(*serverRow) {}, func(t *testing.T) {
			vm := []string{"VM.Audit", "VM.PowerMgmt", "VM.Backup", "VM.Config.CPU", "VM.Config.Memory", "VM.Config.Disk",
				"VM.Config.Network", "VM.Allocate", "VM.Clone", "VM.Snapshot"}
			w.sim.SetTokenPrivileges(map[string][]string{"/vms": vm, "/sdn/zones/localnetwork": {"SDN.Use"},
				"/storage/local-lvm": {"Datastore.Audit", "Datastore.AllocateSpace", "Datastore.Allocate"}})
			t.Cleanup(func() { w.sim.SetTokenPrivileges(nil) })
		}, []string{"Backup storage:", "holds backups"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup(t)
			}
			id := server(tt.edit)
			var got answer
			s.cli(t, &got, "test-connection", strconv.FormatInt(id, 10))
			if tt.want == nil {
				if !got.Success {
					t.Errorf("Test Connection failed: %s", got.Error)
				}
				return
			}
			if got.Success {
				t.Fatalf("Test Connection succeeded, want a failure naming %q", tt.want)
			}
			t.Logf("Test Connection Failed: %s", got.Error)
			// The same through the admin's Server page and its button: the
			// answer is printed as the module returns it (escaped by it).
			tb := s.open(t, browser)
			tb.login(t, 0, 1, nil)
			tb.goTo(t, fmt.Sprintf("%s/admin/configservers.php?action=manage&id=%d", s.base, id))
			tb.submit(t, `[data-standin=test-connection]`)
			if page := tb.text(t, `[data-standin-result=error]`); !strings.Contains(page, tt.want[0]) {
				t.Errorf("the Server page shows %q, want it to name %q", page, tt.want[0])
			}
			for _, want := range tt.want {
				if !strings.Contains(strings.ToLower(got.Error), strings.ToLower(want)) {
					t.Errorf("Test Connection says %q, want it to name %q", got.Error, want)
				}
			}
		})
	}
}

type serverRow struct{ password, accessHash string }

// screenshotDir is where the product page's screenshots go: a stable
// folder outside git ($PVEKEEP_ARTIFACTS/screenshots, else
// internal/e2e/testdata/screenshots).
func screenshotDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(repoDir, "internal", "e2e", "testdata", "screenshots")
	if a := os.Getenv("PVEKEEP_ARTIFACTS"); a != "" {
		dir = filepath.Join(a, "screenshots")
	}
	must(t, os.MkdirAll(dir, 0o755))
	return dir
}

// screenshot writes the whole page as name.png.
func (tb *tab) screenshot(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, browserStep)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(screenshotDir(t), name+".png")
	must(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot: %s", path)
}

// progress is the running job's bar value, -1 when there is none.
func (tb *tab) progress(t testing.TB) int {
	t.Helper()
	return eval[int](t, tb, `(() => { const b = document.querySelector('#pvekeep-job-progress .progress-bar');
		return b === null ? -1 : parseInt(b.getAttribute('aria-valuenow'), 10); })()`)
}

// TestProductPageScreenshots takes the product page in both themes: idle,
// a backup running (twice, the bar moving without a reload) and a failed
// restore, into screenshotDir, checking what the screenshots showed wrong
// once: the title's size, the bar's label, the notices and the forms.
func TestProductPageScreenshots(t *testing.T) {
	t.Parallel()
	browser := newBrowser(t)
	// Slow enough that a 10 GiB backup runs ~10 s: the page polls every 2 s.
	w := newWorldAt(t, 8)
	s := w.startStandin()
	// VMs 100 and 101 live on two nodes: their backups do not queue.
	for i, theme := range []string{"twenty-one", "six"} {
		t.Run(theme, func(t *testing.T) {
			t.Parallel()
			w := w.sub(t)
			// A quota of 2: the running backup fills it.
			c := w.newCustomer(100+i, 2)
			w.backedUp(c, `before the "big" upgrade`)
			tb := s.open(t, browser)
			tb.do(t, "size the window", chromedp.EmulateViewport(1280, 1000))
			tb.login(t, c.clientID, 0, nil)
			tb.page = s.productURL(c, theme)
			tb.load(t)
			tb.screenshot(t, theme+"-idle")
			// The card's title as the theme's own headers (six's .panel-title
			// is 16px), not Bootstrap 4's 28px h3.
			if px := eval[float64](t, tb, `parseFloat(getComputedStyle(document.querySelector('.pvekeep-title')).fontSize)`); px > 18 {
				t.Errorf("the Backups title is %.0fpx, want a header's size (≤ 18px)", px)
			}

			// Backup now, and the panel's cron drives it while the page polls.
			tb.do(t, "type a note", chromedp.SendKeys(chromedp.CSS(`#pvekeep-note`), "before the PHP 8.3 upgrade"))
			tb.submit(t, `[data-pvekeep=backup-create-submit]`)
			stop := s.cronInBackground(t)
			eval[bool](t, tb, `window.__pvekeepSamePage = true`)
			first := tb.waitProgress(t, func(p int) bool { return p > 0 && p < 100 })
			tb.waitBarDrawn(t)
			tb.screenshot(t, theme+"-running-1")
			tb.progressReadable(t)
			// The running backup counts in the quota: busy, and nothing more.
			if n := tb.count(t, `#pvekeep-lock`); n != 1 {
				t.Errorf("while the backup runs the page shows %d busy notices, want 1", n)
			}
			if n := tb.count(t, `#pvekeep-notice`); n != 0 {
				t.Errorf("while the backup runs the page also shows %q", tb.text(t, `#pvekeep-notice`))
			}
			second := tb.waitProgress(t, func(p int) bool { return p > first && p < 100 })
			tb.waitBarDrawn(t)
			tb.screenshot(t, theme+"-running-2")
			tb.progressReadable(t)
			if !eval[bool](t, tb, `window.__pvekeepSamePage === true`) {
				t.Errorf("the page reloaded while the bar moved")
			}
			t.Logf("progress moved %d%% → %d%% without a reload", first, second)
			stop()
			j := w.activeJob(c)
			if j != nil {
				w.follow(c, j.ID)
			}

			// A restore that fails on Proxmox.
			must(t, w.sim.InjectTaskFault(pvesim.TaskFault{Type: "qmrestore", VMID: c.vmid,
				ExitStatus: fmt.Sprintf("unable to restore VM %d - command 'zstd -q -d -c' failed: exit code 1", c.vmid), Count: 1}))
			tb.load(t)
			tb.submit(t, `tr[data-pvekeep-backup-id]:last-child [data-pvekeep=backup-restore]`)
			if j := w.activeJob(c); j != nil {
				w.follow(c, j.ID)
			}
			tb.load(t)
			if tb.count(t, `#pvekeep-failed-restore`) != 1 {
				t.Errorf("no failed restore on the page")
			}
			tb.screenshot(t, theme+"-failed-restore")
			// The VM is unusable: no Backup now (with the reason), but
			// Retry, Reinstall and restoring another backup.
			if n := tb.count(t, `[data-pvekeep=backup-create]`); n != 0 {
				t.Errorf("after a failed restore the page offers Backup now")
			}
			if got, want := tb.text(t, `#pvekeep-notice[data-notice=vm-unusable]`), shipped(t, "en")["backups.paused_unusable"]; got != want {
				t.Errorf("the notice reads %q, want %q", got, want)
			}
			for _, sel := range []string{`[data-pvekeep=restore-retry]`, `[data-pvekeep=restore-reinstall]`, `[data-pvekeep=backup-restore]`} {
				if tb.count(t, sel) == 0 {
					t.Errorf("after a failed restore the page lacks %s", sel)
				}
			}
		})
	}
}

// progressReadable checks that the running job's progress reads in full
// ("18% done"): never clipped by a narrow bar.
func (tb *tab) progressReadable(t testing.TB) {
	t.Helper()
	got := eval[string](t, tb, `(() => {
		const bar = document.querySelector('#pvekeep-job-progress .progress-bar');
		const label = document.querySelector('#pvekeep-job .pvekeep-job-progress-text');
		if (label === null) { return 'no .pvekeep-job-progress-text'; }
		if (bar.contains(label) || bar.textContent.trim() !== '') { return 'text inside the bar: ' + bar.textContent; }
		const r = label.getBoundingClientRect();
		if (r.width < label.scrollWidth - 1 || r.width === 0) { return 'clipped: ' + label.textContent; }
		if (!label.textContent.includes(bar.getAttribute('aria-valuenow'))) { return 'reads ' + label.textContent; }
		return '';
	})()`)
	if got != "" {
		t.Errorf("the progress label is not readable: %s", got)
	}
}

// waitBarDrawn waits until the bar is drawn at its value: the themes
// animate its width (0.6 s), and a screenshot taken meanwhile shows a
// shorter bar than the label says.
func (tb *tab) waitBarDrawn(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if eval[bool](t, tb, `(() => { const b = document.querySelector('#pvekeep-job-progress .progress-bar');
			const drawn = 100 * b.getBoundingClientRect().width / b.parentNode.clientWidth;
			return Math.abs(drawn - parseInt(b.getAttribute('aria-valuenow'), 10)) < 1; })()`) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("the bar is not drawn at its value")
}

// waitProgress waits (without reloading) until the bar's value satisfies ok.
func (tb *tab) waitProgress(t testing.TB, ok func(int) bool) int {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	last := -1
	for time.Now().Before(deadline) {
		if last = tb.progress(t); ok(last) {
			return last
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("the progress bar stayed at %d", last)
	return 0
}

// cronInBackground runs WHMCS's cron (the stand-in's cli.php cron:
// AfterCronJob, which ticks the plugin) every 300 ms until stopped; a failed
// run fails t when stopped (not from this goroutine).
func (s *standin) cronInBackground(t testing.TB) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	var failed error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(300 * time.Millisecond):
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				cmd := exec.CommandContext(ctx, s.w.phpBin, filepath.Join(repoDir, "hooks", "standin", "cli.php"), "cron")
				cmd.Env = s.env
				if out, err := cmd.CombinedOutput(); err != nil && failed == nil {
					failed = fmt.Errorf("cli.php cron: %v\n%s", err, out)
				}
				cancel()
			}
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			close(done)
			wg.Wait()
			if failed != nil {
				t.Errorf("WHMCS's cron failed: %v", failed)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
