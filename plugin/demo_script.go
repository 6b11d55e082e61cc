package main

import (
	"github.com/pvekeep/pvekeep/internal/lazyre"

	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os/exec"
	"strings"
	"time"
)

// demoSession plays a customer's visit through the stand-in, as a browser
// would (hooks/demo/session.php did it by calling module functions): open
// the product page, back up with a note while WHMCS's cron drives the job
// and the page's poll shows the progress, restore that backup (the VM is
// put back to the package), remove it. Every step is an HTTP request to
// the packaged module inside the stand-in.
type demoSession struct {
	out     io.Writer
	hc      *http.Client
	base    string
	page    string // the product page, absolute
	cron    func(context.Context) error
	vm      func() map[string]string // VM 100's config as Proxmox has it
	started time.Time
	// last, when set, is the visit's last scene (the new order).
	last func(context.Context) error
}

func (d *demoSession) say(format string, args ...any) { fmt.Fprintf(d.out, format+"\n", args...) }

func newDemoSession(out io.Writer, base string, clientID, serviceID int64, cron func(context.Context) error, vm func() map[string]string) (*demoSession, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	d := &demoSession{out: out, hc: &http.Client{Jar: jar, Timeout: 60 * time.Second}, base: base, cron: cron, vm: vm, started: time.Now(),
		page: fmt.Sprintf("%s/clientarea.php?action=productdetails&id=%d", base, serviceID)}
	if _, err := d.get(fmt.Sprintf("%s/standin/login?uid=%d", base, clientID)); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *demoSession) get(u string) (string, error) {
	resp, err := d.hc.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK || strings.Contains(string(b), `data-standin="error"`) {
		return "", fmt.Errorf("GET %s: %s\n%s", u, resp.Status, b)
	}
	return string(b), nil
}

var (
	demoFormRe   = lazyre.New(`(?s)<form\b[^>]*>.*?</form>`)
	demoInputRe  = lazyre.New(`<input\b[^>]*\btype="hidden"[^>]*>`)
	demoAttrRe   = lazyre.New(`\b(name|value)="([^"]*)"`)
	demoRowRe    = lazyre.New(`(?s)<tr\b[^>]*data-pvekeep-backup-id="(\d+)"[^>]*data-status="([^"]*)".*?class="pvekeep-backup-note">(.*?)</span>.*?</tr>`)
	demoFlashRe  = lazyre.New(`(?s)id="pvekeep-flash"[^>]*>(.*?)</div>`)
	demoQuotaRe  = lazyre.New(`(?s)id="pvekeep-quota"[^>]*>(.*?)</p>`)
	demoStatusRe = lazyre.New(`(?s)id="pvekeep-status"[^>]*>(.*?)</p>`)
	demoJobRe    = lazyre.New(`id="pvekeep-job"[^>]*data-job-id="(\d+)"`)
	demoTagRe    = lazyre.New(`<[^>]+>`)
	demoSnapRe   = lazyre.New(`(?s)<tr\b[^>]*data-pvekeep-snapshot="([^"]+)".*?class="pvekeep-snapshot-description">(.*?)</span>.*?class="pvekeep-snapshot-remaining"[^>]*>(.*?)</span>.*?</tr>`)
	demoSnapQRe  = lazyre.New(`id="pvekeep-snapshots-quota"[^>]*>(.*?)</span>`)
)

func demoText(s string) string {
	return strings.Join(strings.Fields(html.UnescapeString(demoTagRe.ReplaceAllString(s, " "))), " ")
}

// post submits the page's form holding button (a="fn"), with extra fields,
// and returns the page the redirect brings.
func (d *demoSession) post(page, fn string, match string, extra url.Values) (string, error) {
	for _, form := range demoFormRe.FindAllString(page, -1) {
		if !strings.Contains(form, `value="`+fn+`"`) || (match != "" && !strings.Contains(form, match)) {
			continue
		}
		vals := url.Values{"a": {fn}}
		for _, in := range demoInputRe.FindAllString(form, -1) {
			var name, value string
			for _, m := range demoAttrRe.FindAllStringSubmatch(in, -1) {
				if m[1] == "name" {
					name = m[2]
				} else {
					value = html.UnescapeString(m[2])
				}
			}
			if name != "" && name != "a" {
				vals.Set(name, value)
			}
		}
		for k, v := range extra {
			vals[k] = v
		}
		resp, err := d.hc.PostForm(d.page, vals)
		if err != nil {
			return "", err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("POST %s: %s\n%s", fn, resp.Status, b)
		}
		return string(b), nil
	}
	return "", fmt.Errorf("the page offers no form for %s", fn)
}

func (d *demoSession) showBackups(page string) []string {
	if m := demoStatusRe.FindStringSubmatch(page); m != nil {
		d.say("   %s", demoText(m[1]))
	}
	if m := demoQuotaRe.FindStringSubmatch(page); m != nil {
		d.say("   %s", demoText(m[1]))
	}
	var ids []string
	for _, m := range demoRowRe.FindAllStringSubmatch(page, -1) {
		d.say("   #%-3s %-42s %s", m[1], `"`+demoText(m[3])+`"`, m[2])
		ids = append(ids, m[1])
	}
	if len(ids) == 0 {
		d.say("   (no backups yet)")
	}
	return ids
}

func (d *demoSession) flash(page string) string {
	if m := demoFlashRe.FindStringSubmatch(page); m != nil {
		return demoText(m[1])
	}
	return "(no message)"
}

// follow runs WHMCS's cron and reads the page's poll until the job ends.
func (d *demoSession) follow(ctx context.Context, page string) (string, error) {
	m := demoJobRe.FindStringSubmatch(page)
	if m == nil {
		return "", fmt.Errorf("the page shows no running job")
	}
	last := ""
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); {
		if err := d.cron(ctx); err != nil {
			return "", err
		}
		body, err := d.get(d.page + "&pvekeep_poll=" + m[1])
		if err != nil {
			return "", err
		}
		var raw map[string]map[string]any
		if err := json.Unmarshal([]byte(body), &raw); err != nil || raw["job"] == nil {
			return "", fmt.Errorf("the page's poll answered %q", body)
		}
		j := raw["job"]
		pct, _ := j["progress"].(float64)
		state, _ := j["state"].(string)
		line := fmt.Sprintf("   [%-25s] %3d%%  %s", strings.Repeat("#", int(pct)/4), int(pct), state)
		if line != last {
			d.say("%s", line)
			last = line
		}
		if done, _ := j["done"].(bool); done {
			if state != "succeeded" {
				return state, fmt.Errorf("the job ended %s: %v", state, j["error"])
			}
			return state, nil
		}
		time.Sleep(300 * time.Millisecond)
	}
	return "", fmt.Errorf("the job did not end within 3 minutes")
}

func (d *demoSession) showVM(label string) {
	cfg := d.vm()
	d.say("   %-7s cores %-2s memory %-5s MiB  scsi0 %s", label, cfg["cores"], cfg["memory"], cfg["scsi0"])
	d.say("   %-7s scsi1 %s", "", or(cfg["scsi1"], "(none)"))
	d.say("   %-7s net0  %s", "", cfg["net0"])
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (d *demoSession) run(ctx context.Context) error {
	d.say("1. Alice opens her service page in the client area.")
	page, err := d.get(d.page)
	if err != nil {
		return err
	}
	d.showBackups(page)
	d.say("")

	note := `before the PHP 8.3 upgrade & "tidy-up"`
	d.say("2. She types the note \"%s\" and clicks \"Backup now\".", note)
	if page, err = d.post(page, "backupCreate", "", url.Values{"pvekeep_note": {note}}); err != nil {
		return err
	}
	d.say("   the page says: %s", d.flash(page))
	d.say("   WHMCS's cron (AfterCronJob) drives the job; her page polls its progress:")
	if _, err := d.follow(ctx, page); err != nil {
		return err
	}
	d.say("")

	d.say("3. Her backup list now:")
	if page, err = d.get(d.page); err != nil {
		return err
	}
	ids := d.showBackups(page)
	if len(ids) == 0 {
		return fmt.Errorf("no backup after Backup now")
	}
	d.say("")

	d.say("4. Her package is 2 cores, 4 GB RAM, a 20 GB disk, an extra 10 GB disk, disk limits, VLAN 20 and")
	d.say("   50 MB/s network, but the VM itself is still as it was set up. She restores the backup; the")
	d.say("   plugin stops the VM, restores it, then puts it back to what she pays for and starts it.")
	d.showVM("before")
	if page, err = d.post(page, "backupRestore", `value="`+ids[0]+`"`, nil); err != nil {
		return err
	}
	d.say("   the page says: %s", d.flash(page))
	if _, err := d.follow(ctx, page); err != nil {
		return err
	}
	d.showVM("after")
	d.say("   (the demo has no SMTP server, so the \"Backup restored\" email waits in the outbox; the tests check it)")
	d.say("")

	d.say("5. She clicks \"Remove\" on backup #%s.", ids[0])
	if page, err = d.get(d.page); err != nil {
		return err
	}
	if page, err = d.post(page, "backupRemove", `value="`+ids[0]+`"`, nil); err != nil {
		return err
	}
	d.say("   the page says: %s", d.flash(page))
	if demoJobRe.MatchString(page) {
		if _, err := d.follow(ctx, page); err != nil {
			return err
		}
	}
	d.say("")

	d.say("6. And the list is empty again:")
	if page, err = d.get(d.page); err != nil {
		return err
	}
	d.showBackups(page)
	d.say("")

	if err := d.snapshots(ctx, page); err != nil {
		return err
	}
	if d.last != nil {
		if err := d.last(ctx); err != nil {
			return err
		}
		d.say("")
	}
	d.say("Done in %.1f s. Every step went browser -> WHMCS stand-in -> module (PHP) -> pvekeep (JSON-RPC) -> Proxmox + MariaDB.",
		time.Since(d.started).Seconds())
	return nil
}

func (d *demoSession) showSnapshots(page string) []string {
	if m := demoSnapQRe.FindStringSubmatch(page); m != nil {
		d.say("   snapshots used: %s", demoText(m[1]))
	}
	var names []string
	for _, m := range demoSnapRe.FindAllStringSubmatch(page, -1) {
		d.say("   %-24s %-30s %s left", m[1], `"`+demoText(m[2])+`"`, demoText(m[3]))
		names = append(names, m[1])
	}
	if len(names) == 0 {
		d.say("   (no snapshots)")
	}
	return names
}

// snapshots plays the Snapshots card: take one before risky work, see its
// remaining lifetime, roll back to it.
func (d *demoSession) snapshots(ctx context.Context, page string) error {
	const description = "before the kernel update"
	d.say("7. Before risky work she takes a snapshot, \"%s\" (her package: 2 snapshots, kept 3 days).", description)
	page, err := d.post(page, "snapshotCreate", "", url.Values{"pvekeep_snapshot_description": {description}})
	if err != nil {
		return err
	}
	d.say("   the page says: %s", d.flash(page))
	if _, err := d.follow(ctx, page); err != nil {
		return err
	}
	if page, err = d.get(d.page); err != nil {
		return err
	}
	names := d.showSnapshots(page)
	if len(names) == 0 {
		return fmt.Errorf("no snapshot after Take Snapshot")
	}
	d.say("   (the page counts the remaining time down every second; the cron removes it when it runs out)")
	d.say("")

	d.say("8. The update went wrong: she clicks \"Rollback\" (the page warns that later changes are lost).")
	if page, err = d.post(page, "snapshotRollback", `value="`+names[0]+`"`, nil); err != nil {
		return err
	}
	d.say("   the page says: %s", d.flash(page))
	if _, err := d.follow(ctx, page); err != nil {
		return err
	}
	d.say("   Proxmox has the VM back at snapshot %s", or(d.vm()["parent"], "(none)"))
	if page, err = d.get(d.page); err != nil {
		return err
	}
	if m := demoStatusRe.FindStringSubmatch(page); m != nil {
		d.say("   her page: %s", demoText(m[1]))
	}
	d.say("")
	return nil
}

// cronRunner runs the stand-in's `cli.php cron` (WHMCS's cron run: AfterCronJob).
func cronRunner(php, cli string, env []string) func(context.Context) error {
	return func(ctx context.Context) error {
		cmd := exec.CommandContext(ctx, php, cli, "cron")
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("cron run: %v\n%s", err, out)
		}
		return nil
	}
}
