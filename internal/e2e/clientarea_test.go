package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pvekeep/pvekeep/internal/pvesim"
	"github.com/pvekeep/pvekeep/internal/seed"
	"github.com/pvekeep/pvekeep/lang"
)

// TestClientAreaPage renders the client-area page the way WHMCS does (real
// Smarty 4, the real module and plugin, the simulator) and looks at it in
// headless Chromium. They share one browser; each subtest has its own tab,
// customer and VM. The subtests that post forms and drive the cron have a
// world of their own; the others share one, which saves its setup.
func TestClientAreaPage(t *testing.T) {
	t.Parallel()
	browser := newBrowser(t)
	shared := newWorld(t) // VMs 100..105, one per subtest below

	t.Run("idle service with a hostile note", func(t *testing.T) {
		t.Parallel()
		const hostile = `<img src=x onerror="window.__xss=1">`
		w := shared.sub(t)
		c := w.newCustomer(100, 3)
		w.backedUp(c, hostile)
		var l backupList
		w.mustCall(c, "backups.list", nil, &l)
		created, err := time.Parse(time.RFC3339, l.Items[0].CreatedAt)
		must(t, err)

		tb := w.clientTab(t, browser, c, "")
		tb.load(t)

		for _, tt := range []struct{ name, sel, want string }{
			{"quota in words", `[data-pvekeep=quota]`, "1 of 3 backups used"},
			{"note shown literally", `.pvekeep-backup-note`, hostile},
			{"date in WHMCS's format and time zone", `.pvekeep-backup-created`, created.UTC().Format("02/01/2006 15:04")},
			{"status in words", `.pvekeep-backup-status`, "Available"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				if got := tb.text(t, tt.sel); got != tt.want {
					t.Errorf("%s reads %q, want %q", tt.sel, got, tt.want)
				}
			})
		}
		t.Run("size readable", func(t *testing.T) {
			got := tb.text(t, `.pvekeep-backup-size`)
			if !regexp.MustCompile(`^[0-9]+\.[0-9] (KiB|MiB|GiB|TiB)$`).MatchString(got) {
				t.Errorf("size reads %q for %d bytes, want e.g. \"1.5 GiB\"", got, l.Items[0].SizeBytes)
			}
		})
		for _, tt := range []struct {
			name, sel string
			want      int
		}{
			{"restore button", `[data-pvekeep=backup-restore]`, 1},
			{"remove button", `[data-pvekeep=backup-remove]`, 1},
			{"backup-now form", `[data-pvekeep=backup-create]`, 1},
			{"no lock", `[data-pvekeep=lock]`, 0},
			{"no element made of the note", `[data-pvekeep=page] img`, 0},
		} {
			t.Run(tt.name, func(t *testing.T) {
				if got := tb.count(t, tt.sel); got != tt.want {
					t.Errorf("%s: %d on the page, want %d", tt.sel, got, tt.want)
				}
			})
		}
		t.Run("note's script never ran", func(t *testing.T) {
			if got := eval[string](t, tb, `typeof window.__xss`); got != "undefined" {
				t.Errorf("window.__xss is %s: the note ran as HTML", got)
			}
		})
		t.Run("no JavaScript errors", func(t *testing.T) {
			if errs := tb.jsErrors(); len(errs) > 0 {
				t.Errorf("the console has errors:\n%s", strings.Join(errs, "\n"))
			}
		})
	})

	t.Run("backup now posts the form and the page follows the job", func(t *testing.T) {
		t.Parallel()
		const note = "before the upgrade"
		w := newWorld(t)
		c := w.newCustomer(100, 3)
		w.backedUp(c, "first")
		tb := w.clientTab(t, browser, c, "")
		tb.load(t)

		tb.do(t, "type a note", chromedp.SendKeys(chromedp.CSS(`[data-pvekeep=backup-create] input[name=pvekeep_note]`), note))
		tb.submit(t, `[data-pvekeep=backup-create-submit]`)
		if tb.count(t, `#pvekeep-flash[data-kind=success]`) != 1 {
			t.Fatalf("the module did not answer success: %q", tb.text(t, `#pvekeep`))
		}
		j := w.activeJob(c)
		if j == nil || j.Kind != "backup.create" {
			t.Fatalf("active job after the click = %+v, want a backup.create job", j)
		}
		var l backupList
		w.mustCall(c, "backups.list", nil, &l)
		if !slices.ContainsFunc(l.Items, func(b backupItem) bool { return b.Note == note && b.Status == "creating" }) {
			t.Errorf("backups after the click = %+v, want one being created with the typed note", l.Items)
		}

		tb.load(t)
		jobSel := fmt.Sprintf(`[data-pvekeep=active-job][data-job-id="%d"]`, j.ID)
		for _, tt := range []struct {
			name, sel string
			want      int
		}{
			{"the running job", jobSel + `[data-job-kind="backup.create"]`, 1},
			{"its progress bar", jobSel + ` .progress-bar`, 1},
			{"the lock", `[data-pvekeep=lock][data-lock-reason=backup]`, 1},
			{"no backup-now form", `[data-pvekeep=backup-create]`, 0},
			{"no restore button", `[data-pvekeep=backup-restore]`, 0},
			{"no remove button", `[data-pvekeep=backup-remove]`, 0},
		} {
			if got := tb.count(t, tt.sel); got != tt.want {
				t.Errorf("while the backup runs, %s (%s): %d on the page, want %d", tt.name, tt.sel, got, tt.want)
			}
		}
		if got := tb.text(t, jobSel+` .pvekeep-job-kind`); got != "Creating a backup" {
			t.Errorf("the job reads %q, want its kind in words", got)
		}
		if pct, err := strconv.Atoi(tb.attr(t, jobSel+` .progress-bar`, "aria-valuenow")); err != nil || pct < 0 || pct > 100 {
			t.Errorf("progress value %d (%v), want 0..100", pct, err)
		}

		if done, _ := w.follow(c, j.ID); done.State != "succeeded" {
			t.Fatalf("the backup ended %s: %s", done.State, done.Error)
		}
		tb.load(t)
		if got := tb.count(t, `[data-pvekeep=backup]`); got != 2 {
			t.Errorf("after the backup the page lists %d backups, want 2", got)
		}
		if got := tb.text(t, `[data-pvekeep=quota]`); got != "2 of 3 backups used" {
			t.Errorf("quota reads %q, want \"2 of 3 backups used\"", got)
		}
		if got := tb.count(t, `[data-pvekeep=active-job]`) + tb.count(t, `[data-pvekeep=lock]`); got != 0 {
			t.Errorf("after the backup the page still shows a job or lock (%d)", got)
		}
	})

	t.Run("failed restore offers retry and retry restores again", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		c := w.newCustomer(100, 3)
		w.backedUp(c, "nightly")
		var l backupList
		w.mustCall(c, "backups.list", nil, &l)
		must(t, w.sim.InjectTaskFault(pvesim.TaskFault{Type: "qmrestore", VMID: 100, ExitStatus: "unable to restore VM 100 - read error", Count: 1}))
		if got := w.button(c, "backupRestore", map[string]any{"pvekeep_backup_id": l.Items[0].ID}); got != "success" {
			t.Fatalf("backupRestore = %q", got)
		}
		failed := w.activeJob(c)
		if done, _ := w.follow(c, failed.ID); done.State != "failed" {
			t.Fatalf("the restore ended %s, want failed", done.State)
		}

		tb := w.clientTab(t, browser, c, "")
		tb.load(t)
		alert := fmt.Sprintf(`[data-pvekeep=failed-restore][data-job-id="%d"]`, failed.ID)
		for _, sel := range []string{alert, alert + ` [data-pvekeep=restore-retry]`, alert + ` [data-pvekeep=restore-reinstall]`} {
			if got := tb.count(t, sel); got != 1 {
				t.Errorf("%s: %d on the page, want 1", sel, got)
			}
		}
		if got := tb.text(t, alert+` .pvekeep-failed-error`); !strings.Contains(got, "read error") {
			t.Errorf("the alert's details read %q, want Proxmox's message", got)
		}

		tb.submit(t, alert+` [data-pvekeep=restore-retry]`)
		if got, want := tb.confirms(), shipped(t, "en")["restore.warning"]; !slices.Contains(got, want) {
			t.Errorf("confirm dialogs %q, want the restore warning %q", got, want)
		}
		if tb.count(t, `#pvekeep-flash[data-kind=success]`) != 1 {
			t.Fatalf("the module did not answer success: %q", tb.text(t, `#pvekeep`))
		}
		retry := w.activeJob(c)
		if retry == nil || retry.Kind != "backup.restore" || retry.ID == failed.ID {
			t.Fatalf("active job after Retry = %+v, want a new backup.restore job", retry)
		}
		if tb.count(t, fmt.Sprintf(`[data-pvekeep=active-job][data-job-id="%d"]`, retry.ID)) != 1 {
			t.Errorf("the page after Retry does not show the new restore job %d", retry.ID)
		}
	})

	t.Run("client's language", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			language, code string
			vmid           int
		}{{"german", "de", 101}, {"russian", "ru", 102}} {
			t.Run(tt.language, func(t *testing.T) {
				t.Parallel()
				w := shared.sub(t)
				c := w.newCustomerSpeaking(tt.vmid, 3, tt.language)
				tb := w.clientTab(t, browser, c, "")
				tb.load(t)
				want, en := shipped(t, tt.code), shipped(t, "en")
				if got := tb.attr(t, `[data-pvekeep=page]`, "lang"); got != tt.code {
					t.Errorf("the page's lang is %q, want %q", got, tt.code)
				}
				for _, s := range []struct{ sel, key string }{
					{`.pvekeep-title`, "backups.title"},
					{`[data-pvekeep=empty]`, "backups.none"},
					{`[data-pvekeep=backup-create-submit]`, "button.backup_create"},
					{`[data-pvekeep=backup-create] label`, "backups.note_label"},
					{`#pvekeep-schedule .pvekeep-title`, "schedule.title"},
					{`#pvekeep-schedule tr[data-day=mon] label`, "schedule.day.mon"},
					{`[data-pvekeep=schedule-save]`, "schedule.save"},
				} {
					if got := tb.text(t, s.sel); got != want[s.key] || got == en[s.key] {
						t.Errorf("%s reads %q, want %s's %q", s.sel, got, tt.code, want[s.key])
					}
				}
				quota := strings.NewReplacer("{used}", "0", "{max}", "3").Replace(want["backups.quota"])
				if got := tb.text(t, `[data-pvekeep=quota]`); got != quota {
					t.Errorf("quota reads %q, want %q", got, quota)
				}
			})
		}
	})

	t.Run("no backup form", func(t *testing.T) {
		t.Parallel()
		en := shipped(t, "en")
		for _, tt := range []struct {
			name                 string
			vmid, quota, backups int
			notice, text         string
		}{
			{"quota full", 103, 1, 1, "quota-full", strings.NewReplacer("{used}", "1", "{max}", "1").Replace(en["backups.quota_full"])},
			{"backups not in the package", 104, 0, 0, "disabled", en["backups.disabled"]},
		} {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				w := shared.sub(t)
				c := w.newCustomer(tt.vmid, tt.quota)
				for i := range tt.backups {
					w.backedUp(c, fmt.Sprintf("backup %d", i+1))
				}
				tb := w.clientTab(t, browser, c, "")
				tb.load(t)
				if got := tb.count(t, `[data-pvekeep=backup-create]`); got != 0 {
					t.Errorf("the page offers the Backup-now form (%d)", got)
				}
				sel := fmt.Sprintf(`[data-pvekeep=notice][data-notice=%q]`, tt.notice)
				if got := tb.text(t, sel); got != tt.text {
					t.Errorf("%s reads %q, want %q", sel, got, tt.text)
				}
			})
		}
	})

	t.Run("a form posted twice makes one job", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		// Each customer's page sends one of its forms twice, as a double
		// click or a browser resending the POST does: the form's own
		// idempotency key must make the second one the first one's job,
		// answered as a success (without the key it would be "locked").
		for _, tt := range []struct {
			vmid     int
			button   string
			kind     string
			wantJobs int // the first backup's job included
		}{
			{100, `[data-pvekeep=backup-create-submit]`, "backup.create", 2},
			{101, `[data-pvekeep=backup-restore]`, "backup.restore", 2},
		} {
			c := w.newCustomer(tt.vmid, 3)
			w.backedUp(c, "first")
			tb := w.clientTab(t, browser, c, "")
			tb.load(t)
			js := `(async () => {
				const b = document.querySelector(` + jsString(tt.button) + `);
				const post = () => fetch(b.form.action, {method: "POST", body: new FormData(b.form, b)})
					.then(r => r.text())
					.then(html => new DOMParser().parseFromString(html, "text/html")
						.querySelector("#pvekeep-flash")?.getAttribute("data-kind") ?? "none");
				return [await post(), await post()];
			})()`
			ctx, cancel := context.WithTimeout(tb.ctx, browserStep)
			results, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](js, chromedp.EvalAwaitPromise))
			cancel()
			must(t, err)
			if !slices.Equal(results, []string{"success", "success"}) {
				t.Errorf("%s posted twice: module answered %v, want success twice", tt.kind, results)
			}
			if n := w.jobCount(c.serviceID); n != tt.wantJobs {
				t.Errorf("%s posted twice made %d jobs in all, want %d", tt.kind, n, tt.wantJobs)
			}
			if j := w.activeJob(c); j == nil || j.Kind != tt.kind {
				t.Errorf("active job after the double post = %+v, want a %s", j, tt.kind)
			}
		}
	})

	t.Run("access", func(t *testing.T) {
		t.Parallel()
		w := shared.sub(t)
		c := w.newCustomer(105, 3)
		t.Run("only the allowed functions run", func(t *testing.T) {
			sw := w.sub(t)
			s := sw.startStandin()
			hc := s.httpClient(t, c.clientID, 0)
			// PHP function names ignore case; WHMCS's allowed list does not.
			for _, fn := range []string{"backupcreate", "ClientArea", "call"} {
				resp, err := hc.PostForm(s.productURL(c, ""), url.Values{"modop": {"custom"}, "a": {fn}, "pvekeep_note": {"sneaky"}})
				must(t, err)
				resp.Body.Close()
			}
			if n := sw.jobCount(c.serviceID); n != 0 {
				t.Errorf("%d jobs after calls of functions that are not allowed, want 0", n)
			}
		})
		t.Run("another client never reaches the module", func(t *testing.T) {
			sw := w.sub(t)
			intruder, err := sw.seed.Client(context.Background(), seed.Client{FirstName: "Mallory", Email: "mallory@example.test"})
			must(t, err)
			tb := sw.clientTabAs(t, browser, c, intruder, "")
			tb.goTo(t, tb.page)
			if got := tb.location(t); !strings.HasSuffix(got, "/clientarea.php?action=products") {
				t.Errorf("another client's service page went to %s, want WHMCS's services list", got)
			}
			if n := tb.count(t, `[data-pvekeep=page], form`); n != 0 {
				t.Errorf("the intruder's page has %d module pages or forms, want none", n)
			}
		})
	})
}

// backedUp makes one finished backup of c's service with note.
func (w *world) backedUp(c customer, note string) {
	w.t.Helper()
	var created struct{ Job job }
	w.mustCall(c, "backups.create", map[string]any{"note": note}, &created)
	if done, _ := w.follow(c, created.Job.ID); done.State != "succeeded" {
		w.t.Fatalf("backup %q ended %s: %s", note, done.State, done.Error)
	}
}

// shipped is lang/<code>.json as shipped.
func shipped(t testing.TB, code string) map[string]string {
	t.Helper()
	raw, err := lang.Files.ReadFile(code + ".json")
	must(t, err)
	var m map[string]string
	must(t, json.Unmarshal(raw, &m))
	return m
}
