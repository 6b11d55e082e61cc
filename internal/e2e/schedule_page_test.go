package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestSchedulePage is issue 9 on the client's page, in the WHMCS stand-in
// (panel zone Europe/Berlin) in headless Chromium, both themes: the
// weekday grid is saved, the page shows it again after a reload with its
// next run in the zone the client picked; a day without a time is refused
// in words; the Keep toggle keeps a backup from rotation (and its removal
// is not offered); a product's window replaces the time inputs.
func TestSchedulePage(t *testing.T) {
	t.Parallel()
	browser := newBrowser(t)
	en := shipped(t, "en")
	for i, theme := range []string{"twenty-one", "six"} {
		t.Run(theme, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			w.env = append(w.env, "WHMCS_STANDIN_TIMEZONE=Europe/Berlin")
			c := w.newCustomer(100+i, 3)
			w.backedUp(c, "nightly")
			tb := w.clientTab(t, browser, c, theme)
			tb.do(t, "size the window", chromedp.EmulateViewport(1280, 1000))
			tb.load(t)

			// Never saved: every day off, in the panel's zone.
			if got := tb.attr(t, `#pvekeep-schedule`, "data-timezone"); got != "Europe/Berlin" {
				t.Errorf("a new schedule's zone is %q, want the panel's Europe/Berlin", got)
			}
			if got := tb.text(t, `#pvekeep-schedule-next`); got != en["schedule.off"] {
				t.Errorf("a new schedule reads %q, want %q", got, en["schedule.off"])
			}
			if n := tb.count(t, `#pvekeep-schedule-form input[type=checkbox]:checked`); n != 0 {
				t.Errorf("a new schedule has %d days ticked", n)
			}

			// Monday 06:30 and Thursday 22:15 in Tokyo.
			tb.do(t, "fill the grid",
				chromedp.Click(chromedp.CSS(`input[name=pvekeep_day_mon]`)),
				chromedp.SetValue(chromedp.CSS(`input[name=pvekeep_time_mon]`), "06:30"),
				chromedp.Click(chromedp.CSS(`input[name=pvekeep_day_thu]`)),
				chromedp.SetValue(chromedp.CSS(`input[name=pvekeep_time_thu]`), "22:15"),
				chromedp.SetValue(chromedp.CSS(`#pvekeep-timezone`), "Asia/Tokyo"))
			tb.submit(t, `[data-pvekeep=schedule-save]`)
			if got := tb.text(t, `#pvekeep-schedule #pvekeep-flash[data-kind=success]`); got != en["schedule.saved"] {
				t.Fatalf("saving answered %q, want %q", got, en["schedule.saved"])
			}

			tb.load(t) // a reload shows what was saved
			for _, tt := range []struct{ name, js, want string }{
				{"Monday ticked", `String(document.querySelector('input[name=pvekeep_day_mon]').checked)`, "true"},
				{"Monday's time", `document.querySelector('input[name=pvekeep_time_mon]').value`, "06:30"},
				{"Tuesday not ticked", `String(document.querySelector('input[name=pvekeep_day_tue]').checked)`, "false"},
				{"Thursday ticked", `String(document.querySelector('input[name=pvekeep_day_thu]').checked)`, "true"},
				{"Thursday's time", `document.querySelector('input[name=pvekeep_time_thu]').value`, "22:15"},
				{"the zone picked", `document.querySelector('#pvekeep-timezone').value`, "Asia/Tokyo"},
			} {
				if got := eval[string](t, tb, tt.js); got != tt.want {
					t.Errorf("after a reload, %s: %q, want %q", tt.name, got, tt.want)
				}
			}
			var sc struct {
				Schedule struct {
					NextRunAt string `json:"next_run_at"`
				} `json:"schedule"`
			}
			w.mustCall(c, "schedule.get", nil, &sc)
			next, err := time.Parse(time.RFC3339, sc.Schedule.NextRunAt)
			if err != nil {
				t.Fatalf("schedule.get's next_run_at %q: %v", sc.Schedule.NextRunAt, err)
			}
			tokyo, err := time.LoadLocation("Asia/Tokyo")
			must(t, err)
			local := next.In(tokyo)
			if wd, hm := local.Weekday(), local.Format("15:04"); !(wd == time.Monday && hm == "06:30") && !(wd == time.Thursday && hm == "22:15") {
				t.Errorf("the next run is %s in Tokyo, want a Monday 06:30 or a Thursday 22:15", local.Format("Monday 15:04"))
			}
			if got := tb.attr(t, `#pvekeep-schedule`, "data-next-run-at"); got != sc.Schedule.NextRunAt {
				t.Errorf("the page's next run %q, want schedule.get's %q", got, sc.Schedule.NextRunAt)
			}
			want := strings.Replace(en["schedule.next_run"], "{time}",
				local.Format("Monday")+", "+local.Format("02/01/2006 15:04")+" (Asia/Tokyo)", 1)
			if got := tb.text(t, `#pvekeep-schedule-next`); got != want {
				t.Errorf("the next run reads %q, want %q", got, want)
			}
			if got := tb.text(t, `.pvekeep-schedule-rotate`); got != en["schedule.rotate_note"] {
				t.Errorf("the rotation note reads %q", got)
			}
			tb.screenshot(t, theme+"-schedule")

			// A ticked day without a time: refused in words, nothing saved.
			tb.do(t, "tick Friday without a time",
				chromedp.Click(chromedp.CSS(`input[name=pvekeep_day_fri]`)),
				chromedp.SetValue(chromedp.CSS(`input[name=pvekeep_time_fri]`), ""))
			tb.submit(t, `[data-pvekeep=schedule-save]`)
			if got := tb.text(t, `#pvekeep-schedule #pvekeep-flash[data-kind=danger]`); got != en["schedule.invalid_time"] {
				t.Errorf("a ticked day without a time answered %q, want %q", got, en["schedule.invalid_time"])
			}
			if n := tb.count(t, `input[name=pvekeep_day_fri]:checked`); n != 0 {
				t.Errorf("the refused Friday was saved")
			}

			// Keep, then stop keeping.
			row := `tr[data-pvekeep-backup-id]`
			tb.submit(t, row+` [data-pvekeep=backup-keep]`)
			if got := tb.text(t, `#pvekeep-flash[data-kind=success]`); got != en["schedule.keep.flash_on"] {
				t.Fatalf("Keep answered %q", got)
			}
			if !w.backupProtected(c) {
				t.Errorf("after Keep, backups.list says the backup is not protected")
			}
			if tb.count(t, row+` .pvekeep-backup-kept`) != 1 || tb.count(t, row+` [data-pvekeep=backup-remove]`) != 0 {
				t.Errorf("a kept backup: badge %d (want 1), Remove offered %d times (want 0)",
					tb.count(t, row+` .pvekeep-backup-kept`), tb.count(t, row+` [data-pvekeep=backup-remove]`))
			}
			if got := tb.attr(t, row+` [data-pvekeep=backup-keep]`, "aria-pressed"); got != "true" {
				t.Errorf("the Keep toggle of a kept backup is aria-pressed=%q", got)
			}
			tb.screenshot(t, theme+"-kept")
			tb.submit(t, row+` [data-pvekeep=backup-keep]`)
			if got := tb.text(t, `#pvekeep-flash[data-kind=success]`); got != en["schedule.keep.flash_off"] {
				t.Errorf("stop keeping answered %q", got)
			}
			if w.backupProtected(c) || tb.count(t, row+` [data-pvekeep=backup-remove]`) != 1 {
				t.Errorf("after stop keeping the backup is still protected or not removable")
			}

			// The product picks the time inside its window.
			must(t, w.seed.SetProductSetting(context.Background(), c.productID, 24, "schedule_window = 01:00-05:00"))
			tb.load(t)
			if n := tb.count(t, `#pvekeep-schedule-window`); n != 1 {
				t.Fatalf("with a window the page does not say so:\n%s", tb.text(t, `#pvekeep-schedule`))
			}
			if n := tb.count(t, `#pvekeep-schedule input[type=time]`); n != 0 {
				t.Errorf("with a window the page still has %d time inputs", n)
			}
			tb.do(t, "tick Wednesday", chromedp.Click(chromedp.CSS(`input[name=pvekeep_day_wed]`)))
			tb.submit(t, `[data-pvekeep=schedule-save]`)
			if n := tb.count(t, `#pvekeep-schedule #pvekeep-flash[data-kind=success]`); n != 1 {
				t.Fatalf("saving inside a window answered %q", tb.text(t, `#pvekeep`))
			}
			tb.screenshot(t, theme+"-schedule-window")
			w.mustCall(c, "schedule.get", nil, &sc)
			next, err = time.Parse(time.RFC3339, sc.Schedule.NextRunAt)
			must(t, err)
			if hm := next.In(tokyo).Format("15:04"); hm < "01:00" || hm >= "05:00" {
				t.Errorf("inside the window 01:00-05:00 the next run is at %s", hm)
			}
		})
	}
}

// backupProtected is whether c's first backup is kept (backups.list).
func (w *world) backupProtected(c customer) bool {
	w.t.Helper()
	var l struct {
		Items []struct {
			Protected bool `json:"protected"`
		} `json:"items"`
	}
	out := w.call(c, c.clientID, "backups.list", nil)
	if out.Error != nil {
		w.t.Fatalf("backups.list: %v", out.Error)
	}
	must(w.t, json.Unmarshal(out.Result, &l))
	if len(l.Items) == 0 {
		w.t.Fatal("no backups")
	}
	return l.Items[0].Protected
}

// TestSchedulePageSaysWhyARunWasSkipped: a full quota of kept backups
// leaves rotation nothing to remove, so the cron skips today's run and the
// card says why.
func TestSchedulePageSaysWhyARunWasSkipped(t *testing.T) {
	t.Parallel()
	browser := newBrowser(t)
	w := newWorld(t)
	c := w.newCustomer(102, 1)
	w.backedUp(c, "the only one")
	var l backupList
	w.mustCall(c, "backups.list", nil, &l)
	if got := w.button(c, "backupProtect", map[string]any{"pvekeep_backup_id": l.Items[0].ID, "pvekeep_protected": "1"}); got != "success" {
		t.Fatalf("backupProtect = %q", got)
	}
	// Today (UTC) at 00:00.
	today := strings.ToLower(time.Now().UTC().Weekday().String()[:3])
	var days []map[string]any
	for _, d := range []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"} {
		days = append(days, map[string]any{"day": d, "enabled": d == today, "time": "00:00"})
	}
	var set map[string]any
	w.mustCall(c, "schedule.set", map[string]any{"timezone": "UTC", "days": days}, &set)
	// 00:00 has passed today: saving waits for next week's. Bring the
	// stored next run to now, as if the week had gone by (the plugin runs
	// on the real clock).
	_, err := w.db.Store.DB().Exec(`UPDATE mod_pvekeep_schedules SET next_run_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND WHERE service_id = ?`, c.serviceID)
	must(t, err)
	w.tick(1)

	tb := w.clientTab(t, browser, c, "")
	tb.load(t)
	en := shipped(t, "en")
	if got := tb.attr(t, `#pvekeep-schedule-skipped`, "data-reason"); got != "all_protected" {
		t.Errorf("the skipped run's reason is %q, want all_protected", got)
	}
	if got := tb.text(t, `#pvekeep-schedule-skipped`); got != en["schedule.skipped.all_protected"] {
		t.Errorf("the card reads %q, want %q", got, en["schedule.skipped.all_protected"])
	}
	if n := w.jobCount(c.serviceID); n != 1 {
		t.Errorf("%d jobs, want only the first backup's: the kept backup was not rotated", n)
	}
}

// TestABackupWaitingForItsHostSaysSo: a backup clicked while another runs
// on the same Proxmox node waits in the database for its turn (the
// per-node limit, default 1), and the page says it waits for the host,
// not just "waiting to start".
func TestABackupWaitingForItsHostSaysSo(t *testing.T) {
	t.Parallel()
	browser := newBrowser(t)
	w := newWorldAt(t, 4) // slow enough that the first backup still runs
	first := w.newCustomer(100, 3)
	second := w.newCustomer(102, 3) // the same node as 100 (round-robin over two)
	var created struct{ Job job }
	w.mustCall(first, "backups.create", map[string]any{"note": "first"}, &created)

	tb := w.clientTab(t, browser, second, "")
	tb.do(t, "size the window", chromedp.EmulateViewport(1280, 1000))
	tb.load(t)
	tb.submit(t, `[data-pvekeep=backup-create-submit]`)
	j := w.activeJob(second)
	if j == nil {
		t.Fatal("the second backup made no job")
	}
	db := w.db.Store.DB()
	var step, state string
	for i := 0; i < 20; i++ {
		must(t, db.QueryRow("SELECT step, state FROM mod_pvekeep_jobs WHERE id = ?", j.ID).Scan(&step, &state))
		if step == "wait_node" {
			break
		}
		w.tick(0.2)
	}
	if step != "wait_node" || state != "queued" {
		t.Fatalf("the second backup is %s at step %q, want queued at wait_node behind the first", state, step)
	}
	tb.load(t)
	if got, want := tb.text(t, `#pvekeep-job .pvekeep-job-state`), shipped(t, "en")["schedule.wait_node"]; got != want {
		t.Errorf("the waiting backup reads %q, want %q", got, want)
	}
	tb.screenshot(t, "twenty-one-waiting-for-host")
	if done, _ := w.follow(first, created.Job.ID); done.State != "succeeded" {
		t.Fatalf("the first backup ended %s", done.State)
	}
	if done, _ := w.follow(second, j.ID); done.State != "succeeded" {
		t.Errorf("the second backup ended %s after waiting: %s", done.State, done.Error)
	}
}
