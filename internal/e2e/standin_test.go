package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/pvekeep/pvekeep/internal/seed"
)

// TestStandin checks the WHMCS stand-in itself (hooks/standin, docs/whmcs.md)
// with the packaged module: what WHMCS does whatever the module does.
func TestStandin(t *testing.T) {
	t.Parallel()
	browser := newBrowser(t)
	w := newWorld(t)
	ctx := context.Background()
	s := w.startStandin()

	// One customer per VM (the simulator has 100..105).
	c100 := w.newCustomer(100, 3)
	t.Run("params as WHMCS builds them", func(t *testing.T) {
		c := c100
		var p map[string]any
		s.cli(t, &p, "params", fmt.Sprint(c.serviceID))
		for k, want := range map[string]any{
			"serviceid": float64(c.serviceID), "userid": float64(c.clientID), "pid": float64(c.productID),
			"serverid": float64(w.srvID), "status": "Active", "moduletype": "pvekeep", "domain": "vm100.example.test",
			"configoption1": "backup", "configoption2": "3", "server": true, "serversecure": false,
			"serverhostname": w.server.Hostname, "serverport": fmt.Sprint(w.server.Port),
			"serverusername": w.info.TokenID, "serverpassword": w.info.TokenSecret, "serveraccesshash": w.info.Fingerprint,
		} {
			if p[k] != want {
				t.Errorf("$params[%q] = %#v, want %#v", k, p[k], want)
			}
		}
		if cf, _ := p["customfields"].(map[string]any); cf["vmid"] != "100" {
			t.Errorf("$params[customfields] = %#v, want vmid 100 by its name before |", p["customfields"])
		}
		if cd, _ := p["clientsdetails"].(map[string]any); cd["email"] != "c100@example.test" {
			t.Errorf("$params[clientsdetails] = %#v", p["clientsdetails"])
		}
		if _, ok := p["model"].(map[string]any); !ok {
			t.Errorf("$params has no model: %#v", p["model"])
		}
	})

	t.Run("billing details whatever the service's state", func(t *testing.T) {
		for _, tt := range []struct {
			name, status string
			unbound      bool
			vmid         int
		}{
			{"pending", "Pending", false, 101},
			{"suspended", "Suspended", false, 102},
			{"unbound", "Active", true, 103},
		} {
			c := w.newCustomer(tt.vmid, 3)
			must(t, w.seed.SetServiceStatus(ctx, c.serviceID, tt.status))
			if tt.unbound {
				_, err := w.db.Store.DB().Exec("UPDATE tblhosting SET server = 0 WHERE id = ?", c.serviceID)
				must(t, err)
				_, err = w.db.Store.DB().Exec("DELETE FROM tblcustomfieldsvalues WHERE relid = ?", c.serviceID)
				must(t, err)
			}
			for _, theme := range []string{"twenty-one", "six"} {
				t.Run(tt.name+"/"+theme, func(t *testing.T) {
					tb := s.open(t, browser)
					tb.login(t, c.clientID, 0, nil)
					tb.goTo(t, s.productURL(c, theme))
					if got := tb.attr(t, "body", "data-standin-theme"); got != theme {
						t.Errorf("theme %q, want %q", got, theme)
					}
					for sel, want := range map[string]string{
						`[data-standin=billing] [data-standin=product]`: fmt.Sprintf("KVM %d", tt.vmid),
						`[data-standin=billing] [data-standin=status]`:  tt.status,
					} {
						if got := tb.text(t, sel); got != want {
							t.Errorf("%s reads %q, want %q", sel, got, want)
						}
					}
					for _, sel := range []string{`[data-standin=regdate]`, `[data-standin=nextduedate]`, `[data-standin=amount]`, `[data-standin=cancel]`} {
						if tb.count(t, sel) != 1 {
							t.Errorf("the billing details lack %s", sel)
						}
					}
					if tt.name != "suspended" {
						tb.do(t, "size the window", chromedp.EmulateViewport(1280, 900))
						tb.screenshot(t, theme+"-"+tt.name)
					}
					forms := tb.count(t, `[data-standin=module-output] form`)
					if tt.status != "Active" && tb.count(t, `[data-standin=module-output]`) != 0 {
						t.Errorf("a %s service shows module output (WHMCS shows it only for Active ones)", tt.status)
					}
					if tt.unbound && forms != 0 {
						t.Errorf("an unbound service's page offers %d action forms", forms)
					}
					// A page view, not a click: "not set up yet", never "action not possible".
					if want := shipped(t, "en")["service.not_set_up"]; tt.unbound && tb.text(t, `#pvekeep-error[data-kind=info]`) != want {
						t.Errorf("an unbound service's page reads %q, want %q", tb.text(t, `#pvekeep-error`), want)
					}
				})
			}
		}
	})

	c104 := w.newCustomer(104, 3)
	t.Run("admin posts need the token", func(t *testing.T) {
		c := c104
		hc := s.httpClient(t, 0, 1)
		for _, token := range []string{"", "not-the-token"} {
			resp, err := hc.PostForm(s.adminURL(c)+"&modop=suspend", url.Values{"token": {token}})
			must(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Invalid CSRF Protection Token") {
				t.Errorf("token %q: %s, want WHMCS's CSRF failure page; got\n%s", token, resp.Status, body)
			}
		}
		var status string
		must(t, w.db.Store.DB().QueryRow("SELECT domainstatus FROM tblhosting WHERE id = ?", c.serviceID).Scan(&status))
		if status != "Active" {
			t.Errorf("after tokenless Suspends the service is %s, want Active", status)
		}
	})

	t.Run("Loader dropdowns are filled from the product's server", func(t *testing.T) {
		c := c100
		var fields []struct {
			Key     string            `json:"key"`
			Options map[string]string `json:"options"`
			Error   string            `json:"error"`
		}
		s.cli(t, &fields, "config-options", fmt.Sprint(c.productID))
		found := false
		for _, f := range fields {
			if f.Error != "" {
				t.Errorf("the Loader of %q failed: %s", f.Key, f.Error)
			}
			if f.Key == "Backup Storage" {
				_, found = f.Options["backup"]
			}
		}
		if !found {
			t.Errorf("the Backup Storage Loader does not offer the simulator's \"backup\": %+v", fields)
		}
	})

	t.Run("the module log is WHMCS's table, secrets masked", func(t *testing.T) {
		var n, leaked int
		must(t, w.db.Store.DB().QueryRow("SELECT COUNT(*) FROM tblmodulelog WHERE module = 'pvekeep'").Scan(&n))
		must(t, w.db.Store.DB().QueryRow("SELECT COUNT(*) FROM tblmodulelog WHERE CONCAT(request, response, arrdata) LIKE ?",
			"%"+w.info.TokenSecret+"%").Scan(&leaked))
		if n == 0 {
			t.Errorf("no module calls in tblmodulelog")
		}
		if leaked != 0 {
			t.Errorf("%d of %d tblmodulelog rows hold the token secret", leaked, n)
		}
	})

	t.Run("another client's service is never handed to the module", func(t *testing.T) {
		c := c104
		other, err := w.seed.Client(ctx, seed.Client{FirstName: "Eve", Email: "eve@example.test"})
		must(t, err)
		hc := s.httpClient(t, other, 0)
		resp, err := hc.Get(s.productURL(c, ""))
		must(t, err)
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != "clientarea.php?action=products" {
			t.Errorf("another client's product page answered %s to %q, want a redirect to the services list", resp.Status, loc)
		}
	})
}

// TestStandinIsAsHarshAsWHMCS runs a module that trusts its input and its
// output (testdata/standin-fixture) in the stand-in: request input arrives
// entity-encoded, a custom function's answer is printed raw in the theme's
// alert, and a PHP warning fails the page.
func TestStandinIsAsHarshAsWHMCS(t *testing.T) {
	t.Parallel()
	browser := newBrowser(t)
	w := newWorld(t)
	w.env = append(w.env, "WHMCS_STANDIN_MODULE_DIR="+filepath.Join(repoDir, "internal", "e2e", "testdata", "standin-fixture"))
	s := w.startStandin()
	c := w.newCustomer(100, 3)
	tb := s.open(t, browser)
	tb.login(t, c.clientID, 0, nil)
	const said = `<i>hi</i> & 'you'`
	tb.do(t, "call the fixture's shout", chromedp.Navigate(s.productURL(c, "")+"&modop=custom&a=shout&say="+url.QueryEscape(said)))
	if n := tb.count(t, `#alertModuleCustomButtonFailed #fixture-raw`); n != 1 {
		t.Errorf("the function's HTML answer is not printed raw in the alert (%d #fixture-raw):\n%s", n, tb.text(t, "body"))
	}
	for _, sel := range []string{`#fixture-raw`, `#fixture-output`} {
		if got := tb.text(t, sel); got != said {
			t.Errorf("%s reads %q, want the input as text %q (WHMCS encodes it)", sel, got, said)
		}
	}
	if n := tb.count(t, `#fixture-raw i, #fixture-output i`); n != 0 {
		t.Errorf("the encoded input became %d elements", n)
	}
	// (Not in the tab: it would count the 500 as a page error.)
	resp, err := s.httpClient(t, c.clientID, 0).Get(s.productURL(c, "") + "&modop=custom&a=sloppy")
	must(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// PHP 8 says "Undefined array key", PHP 7.4 "Undefined index" (make compat).
	undefined := strings.Contains(string(body), "Undefined array key") || strings.Contains(string(body), "Undefined index")
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), `data-standin="error"`) || !undefined {
		t.Errorf("a warning did not fail the page: %s\n%.400s", resp.Status, body)
	}

	// Module commands (cli.php command, and the admin's buttons): the
	// service's status changes only when the function answers "success";
	// a PreModule hook's abortcmd stops the command before the module runs.
	for _, tt := range []struct {
		domain, from, command, wantStatus, wantResult string
		wantOK                                        bool
	}{
		{"vm100.example.test", "Pending", "Create", "Active", "success", true},
		{"vm100.example.test", "Active", "Suspend", "Suspended", "success", true},
		{"vm100.example.test", "Suspended", "Unsuspend", "Active", "success", true},
		{"vm100.example.test", "Active", "ChangePackage", "Active", "success", true},
		{"vm100.example.test", "Active", "Terminate", "Terminated", "success", true},
		{"refuse.example.test", "Pending", "Create", "Pending", "refused <i>by</i> the fixture", false},
		{"refuse.example.test", "Active", "Suspend", "Active", "refused <i>by</i> the fixture", false},
		{"refuse.example.test", "Suspended", "Unsuspend", "Suspended", "refused <i>by</i> the fixture", false},
		{"refuse.example.test", "Active", "Terminate", "Active", "refused <i>by</i> the fixture", false},
		{"abort.example.test", "Active", "Suspend", "Active", "Function Aborted by Action Hook Code", false},
		{"abort.example.test", "Pending", "Create", "Pending", "Function Aborted by Action Hook Code", false},
	} {
		t.Run(tt.command+" of "+tt.domain, func(t *testing.T) {
			db := w.db.Store.DB()
			_, err := db.Exec("UPDATE tblhosting SET domain = ?, domainstatus = ? WHERE id = ?", tt.domain, tt.from, c.serviceID)
			must(t, err)
			var got struct {
				Success bool   `json:"success"`
				Result  string `json:"result"`
			}
			s.cli(t, &got, "command", tt.command, fmt.Sprint(c.serviceID))
			if got.Success != tt.wantOK || got.Result != tt.wantResult {
				t.Errorf("%s answered %+v, want success=%v %q", tt.command, got, tt.wantOK, tt.wantResult)
			}
			var status string
			must(t, db.QueryRow("SELECT domainstatus FROM tblhosting WHERE id = ?", c.serviceID).Scan(&status))
			if status != tt.wantStatus {
				t.Errorf("after %s of a %s service it is %s, want %s", tt.command, tt.from, status, tt.wantStatus)
			}
		})
	}
}
