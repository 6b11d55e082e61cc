package main

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pvekeep/pvekeep/internal/lazyre"
	"github.com/pvekeep/pvekeep/internal/seed"
	"github.com/pvekeep/pvekeep/internal/store"
)

// The demo's new order: a second service of Alice's, Pending, without a
// VM, which the admin provisions with WHMCS's Create button (the
// stand-in's admin page runs pvekeep_CreateAccount, which calls
// service.create); WHMCS's cron then drives the job to a running VM at
// the package.

// demoOrder is the Pending service the demo provisions.
type demoOrder struct {
	serviceID int64
	domain    string
}

// seedOrder adds the order: the same product, a username, a password
// (stored encrypted, as WHMCS does), a dedicated IP.
func seedOrder(ctx context.Context, dsn string, panel demoPanel) (demoOrder, error) {
	st, err := store.Open(ctx, dsn, nil)
	if err != nil {
		return demoOrder{}, err
	}
	defer st.Close()
	var productID, serverID int64
	if err := st.DB().QueryRowContext(ctx, "SELECT packageid, server FROM tblhosting WHERE id = ?", panel.serviceID).Scan(&productID, &serverID); err != nil {
		return demoOrder{}, fmt.Errorf("demo: read the first service: %w", err)
	}
	sd := seed.New(st.DB(), time.Now().UTC())
	if _, err := sd.VMIDField(ctx, productID); err != nil {
		return demoOrder{}, err
	}
	o := demoOrder{domain: "alice-web.example.test"}
	if o.serviceID, err = sd.Service(ctx, seed.Service{ClientID: panel.clientID, ProductID: productID, ServerID: serverID,
		Status: "Pending", Domain: o.domain}); err != nil {
		return demoOrder{}, err
	}
	hash := envOr("WHMCS_STANDIN_CC_HASH", seed.StandinCCHash)
	pw, err := seed.Encrypt(hash, "Alice-s3cret-pw")
	if err != nil {
		return demoOrder{}, err
	}
	if _, err := st.DB().ExecContext(ctx, "UPDATE tblhosting SET username = 'alice', password = ?, dedicatedip = '192.0.2.50' WHERE id = ?",
		pw, o.serviceID); err != nil {
		return demoOrder{}, fmt.Errorf("demo: set the order's credentials: %w", err)
	}
	return o, nil
}

// createJobOf reads the order's newest service.create job.
func createJobOf(dsn string, serviceID int64) func(ctx context.Context) (vmid int, state, step, errMsg string, err error) {
	return func(ctx context.Context) (int, string, string, string, error) {
		st, err := store.Open(ctx, dsn, nil)
		if err != nil {
			return 0, "", "", "", err
		}
		defer st.Close()
		var vmid int
		var state, step, msg string
		err = st.DB().QueryRowContext(ctx, `SELECT vmid, state, step, error FROM mod_pvekeep_jobs
WHERE service_id = ? AND kind = 'service.create' ORDER BY id DESC LIMIT 1`, serviceID).Scan(&vmid, &state, &step, &msg)
		return vmid, state, step, msg, err
	}
}

var (
	demoCreateFormRe = lazyre.New(`<form id="standin-cmd-create" method="post" action="([^"]*)"><input type="hidden" name="token" value="([^"]*)">`)
	demoResultRe     = lazyre.New(`(?s)data-standin-result="(\w+)"[^>]*>(.*?)</div>`)
)

// provision plays the order: the admin clicks Create; the cron runs until
// the VM is made.
func (d *demoSession) provision(ctx context.Context, adminLogin string, o demoOrder,
	jobOf func(context.Context) (int, string, string, string, error), vmOf func(int) map[string]string) error {
	d.say("9. Alice orders a second VM, %s: WHMCS has it Pending, with no VM yet.", o.domain)
	d.say("   The admin clicks \"Create\" on its service page (WHMCS runs the module's CreateAccount).")
	started := time.Now()
	page, err := d.get(adminLogin)
	if err != nil {
		return err
	}
	m := demoCreateFormRe.FindStringSubmatch(page)
	if m == nil {
		return fmt.Errorf("the admin page offers no Create button")
	}
	action, err := url.Parse(html.UnescapeString(m[1]))
	if err != nil {
		return err
	}
	target := (&url.URL{Scheme: "http", Host: strings.TrimPrefix(d.base, "http://"), Path: "/admin/"}).ResolveReference(action)
	resp, err := d.hc.PostForm(target.String(), url.Values{"token": {html.UnescapeString(m[2])}})
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST Create: %s", resp.Status)
	}
	r := demoResultRe.FindStringSubmatch(string(b))
	if r == nil || r[1] != "success" {
		return fmt.Errorf("Create did not succeed: %s", demoText(string(b)))
	}
	d.say("   WHMCS says: %s (after %.1f s: the job is recorded and Proxmox accepted the clone)", demoText(r[2]), time.Since(started).Seconds())
	last := ""
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); {
		if err := d.cron(ctx); err != nil {
			return err
		}
		vmid, state, step, msg, err := jobOf(ctx)
		if err != nil {
			return err
		}
		line := fmt.Sprintf("   VM %d: %-9s step %s", vmid, state, step)
		if line != last {
			d.say("%s", line)
			last = line
		}
		switch state {
		case "succeeded":
			cfg := vmOf(vmid)
			d.say("   made in %.1f s: %s", time.Since(started).Seconds(), cfg["name"])
			d.say("   %-7s cores %-2s memory %-5s MiB  scsi0 %s", "", cfg["cores"], cfg["memory"], cfg["scsi0"])
			d.say("   %-7s scsi1 %s", "", or(cfg["scsi1"], "(none)"))
			d.say("   %-7s cloud-init: user %s, %s, DNS %s", "", or(cfg["ciuser"], "(template's)"), cfg["ipconfig0"], or(cfg["nameserver"], "(template's)"))
			d.say("   (its welcome email waits in the outbox: the demo has no SMTP server)")
			return nil
		case "failed", "cancelled":
			return fmt.Errorf("the create ended %s: %s", state, msg)
		}
		time.Sleep(300 * time.Millisecond)
	}
	return fmt.Errorf("the create did not end within 3 minutes")
}
