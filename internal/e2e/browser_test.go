package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// The client-area page as a customer's browser sees it: the module's own
// hooks/demo/clientarea.php (WHMCS's product details page, stood in) under
// `php -S`, rendering templates/clientarea.tpl with real Smarty 4, driven
// in headless Chromium through chromedp.

const smartyClass = "/usr/share/php/smarty4/Smarty.class.php"

// browserStep bounds one browser step (a load, a click and the page it
// brings). It is a deadline for a wait, never an assertion about time.
const browserStep = 30 * time.Second

// skipOrFail skips a test whose tool is missing, unless CI disallows skipping.
func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("PVEKEEP_TEST_DISALLOW_SKIP") == "1" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// requireChromium returns the browser to drive: PVEKEEP_CHROMIUM, else
// chromium on PATH, else Debian's /usr/bin/chromium.
func requireChromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("PVEKEEP_CHROMIUM"); p != "" {
		return p
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		skipOrFail(t, "chromium is required for the client-area page tests: %v", err)
	}
	return "/usr/bin/chromium"
}

func requireSmarty(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(smartyClass); err != nil {
		skipOrFail(t, "Smarty 4 (Debian smarty4) is required for the client-area page tests: %v", err)
	}
}

// newBrowser starts one headless Chromium for a test and its subtests, which
// each open their own tab in it.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := requireChromium(t)
	requireSmarty(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to sandbox as root
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	// The first Do starts the browser and binds its life to this context,
	// which has no deadline; each step below gets its own.
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	return browser
}

// clientArea is `php -S` serving hooks/demo/clientarea.php for one
// customer's service, with that customer logged in.
type clientArea struct {
	w   *world
	c   customer
	url string // the product details page of c's service

	mu  sync.Mutex
	log []string // php -S's own log: requests, PHP errors
}

// serveClientArea starts the page for c's service, with c logged in, and
// waits until it listens.
func (w *world) serveClientArea(c customer) *clientArea {
	w.t.Helper()
	return w.serveClientAreaAs(c, c.clientID)
}

// serveClientAreaAs is serveClientArea with client uid logged in.
func (w *world) serveClientAreaAs(c customer, uid int64) *clientArea {
	w.t.Helper()
	dir := w.t.TempDir()
	state := filepath.Join(dir, "page.json")
	raw, err := json.Marshal(map[string]any{"session_uid": uid, "services": []any{w.clientAreaParams(c)}})
	if err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(state, raw, 0o600); err != nil {
		w.t.Fatal(err)
	}
	// Port 0: PHP picks a free one and names it in its "started" line.
	cmd := exec.Command(w.phpBin, "-S", "127.0.0.1:0", filepath.Join(repoDir, "hooks", "demo", "clientarea.php"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PVEKEEP_BIN="+binary, "PVEKEEP_DSN="+w.db.DSN, "PVEKEEP_MODULE_LOG="+w.modLog,
		"PVEKEEP_CLIENTAREA="+state, "PVEKEEP_SMARTY_COMPILE_DIR="+filepath.Join(dir, "smarty"))
	cmd.Env = append(cmd.Env, w.env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		w.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		w.t.Fatalf("start php -S: %v", err)
	}
	ca := &clientArea{w: w, c: c}
	started := regexp.MustCompile(`Development Server \((http://[^)]+)\) started`)
	ready := make(chan string, 1)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			ca.mu.Lock()
			ca.log = append(ca.log, sc.Text())
			ca.mu.Unlock()
			if m := started.FindStringSubmatch(sc.Text()); m != nil {
				ready <- m[1]
			}
		}
	}()
	w.t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		cmd.Wait()
	})
	ctx, cancel := context.WithTimeout(context.Background(), browserStep)
	defer cancel()
	select {
	case base := <-ready:
		ca.url = fmt.Sprintf("%s/clientarea.php?action=productdetails&id=%d", base, c.serviceID)
	case <-exited:
		w.t.Fatalf("php -S exited before it listened:\n%s", ca.serverLog())
	case <-ctx.Done():
		w.t.Fatalf("php -S did not listen:\n%s", ca.serverLog())
	}
	return ca
}

// clientAreaParams are the $params WHMCS hands the module on the client
// area page: params plus the service owner's clientsdetails, which carry
// the client's language.
func (w *world) clientAreaParams(c customer) map[string]any {
	w.t.Helper()
	var first, last, email, language string
	err := w.db.Store.DB().QueryRow("SELECT firstname, lastname, email, language FROM tblclients WHERE id = ?", c.clientID).
		Scan(&first, &last, &email, &language)
	if err != nil {
		w.t.Fatalf("read client %d: %v", c.clientID, err)
	}
	p := w.params(c)
	p["clientsdetails"] = map[string]any{"userid": c.clientID, "id": c.clientID, "firstname": first, "lastname": last,
		"email": email, "language": language}
	return p
}

func (ca *clientArea) serverLog() string {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	return "php -S log:\n  " + strings.Join(ca.log, "\n  ")
}

// tab is one browser tab on a clientArea. It answers every confirm()
// with OK, remembering its text, and collects every JavaScript error.
type tab struct {
	ca  *clientArea
	ctx context.Context

	mu       sync.Mutex
	problems []string // uncaught exceptions, console.error, browser log errors
	dialogs  []string
}

// open opens a new tab in browser; it closes when t ends, and t fails if
// the tab saw a JavaScript error on any page it showed.
func (ca *clientArea) open(t *testing.T, browser context.Context) *tab {
	t.Helper()
	tb := &tab{ca: ca}
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithListener(tb.observe))
	t.Cleanup(cancel)
	t.Cleanup(func() { // runs before cancel: cleanups run last first
		if errs := tb.jsErrors(); len(errs) > 0 {
			t.Errorf("the tab saw JavaScript errors:\n%s", strings.Join(errs, "\n"))
		}
	})
	tb.ctx = ctx
	if err := chromedp.Do(ctx); err != nil { // opens the tab, bound to ctx
		t.Fatalf("open a tab: %v", err)
	}
	return tb
}

// observe runs in the tab's event loop: it must return at once.
func (tb *tab) observe(ev any) {
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
		tb.problem("uncaught exception: %s (%s:%d)", msg, d.URL, d.LineNumber+1)
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			var args []string
			for _, a := range ev.Args {
				args = append(args, strings.TrimSpace(string(a.Value)+" "+a.Description))
			}
			tb.problem("console.%s: %s", ev.Type, strings.Join(args, " "))
		}
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError {
			tb.problem("browser log (%s): %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
		}
	case *page.EventJavascriptDialogOpening:
		tb.mu.Lock()
		tb.dialogs = append(tb.dialogs, ev.Message)
		tb.mu.Unlock()
		// A command may not run in the event loop; the click that opened
		// the dialog waits until this answers it.
		go chromedp.Call(tb.ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
	}
}

func (tb *tab) problem(format string, args ...any) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.problems = append(tb.problems, fmt.Sprintf(format, args...))
}

// jsErrors returns the JavaScript errors seen so far.
func (tb *tab) jsErrors() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]string(nil), tb.problems...)
}

// confirms returns the texts of the confirm dialogs answered so far.
func (tb *tab) confirms() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]string(nil), tb.dialogs...)
}

// do runs browser steps within one browserStep.
func (tb *tab) do(t testing.TB, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, browserStep)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, tb.ca.serverLog())
	}
}

// load opens the service's page with a GET, as a client opening or
// reloading it (a reload after a POST would post again).
func (tb *tab) load(t testing.TB) {
	t.Helper()
	tb.do(t, "open the client area", chromedp.Navigate(tb.ca.url))
	tb.mustShowPage(t)
}

// submit clicks the one element sel finds, a submit button, and waits for
// the page the POST brings.
func (tb *tab) submit(t testing.TB, sel string) {
	t.Helper()
	if n := tb.count(t, sel); n != 1 {
		t.Fatalf("want one %s to click, the page has %d:\n%s", sel, n, tb.text(t, "body"))
	}
	ctx, cancel := context.WithTimeout(tb.ctx, browserStep)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(sel)))); err != nil {
		t.Fatalf("click %s: %v\n%s", sel, err, tb.ca.serverLog())
	}
	tb.mustShowPage(t)
}

// mustShowPage fails unless the module's page rendered (not PHP's error).
func (tb *tab) mustShowPage(t testing.TB) {
	t.Helper()
	if tb.count(t, `[data-pvekeep=page]`) != 1 {
		t.Fatalf("the client area did not render; the browser shows:\n%s\n%s", tb.text(t, "body"), tb.ca.serverLog())
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t testing.TB, tb *tab, js string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, browserStep)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// count is how many elements sel finds, now (it does not wait).
func (tb *tab) count(t testing.TB, sel string) int {
	t.Helper()
	return eval[int](t, tb, "document.querySelectorAll("+jsString(sel)+").length")
}

// text is the text of the first element sel finds, white space collapsed
// as a reader sees it; a missing element fails the test.
func (tb *tab) text(t testing.TB, sel string) string {
	t.Helper()
	got := eval[*string](t, tb, `(() => { const e = document.querySelector(`+jsString(sel)+`);
		return e === null ? null : e.textContent.replace(/\s+/g, " ").trim(); })()`)
	if got == nil {
		t.Fatalf("the page has no %s", sel)
	}
	return *got
}

// attr is an attribute of the first element sel finds; a missing element
// or attribute fails the test.
func (tb *tab) attr(t testing.TB, sel, name string) string {
	t.Helper()
	got := eval[*string](t, tb, `(() => { const e = document.querySelector(`+jsString(sel)+`);
		return e === null ? null : e.getAttribute(`+jsString(name)+`); })()`)
	if got == nil {
		t.Fatalf("the page has no %s with %s", sel, name)
	}
	return *got
}
