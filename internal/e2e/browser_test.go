package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// The module as a customer's and an admin's browser see it: the WHMCS
// stand-in (hooks/standin) under `php -S`, loading the packaged module and
// rendering its templates with real Smarty 4 inside the theme's page, driven
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

// browser is the one headless Chromium of this test binary: every test
// shares it, each tab in its own browser context (its own cookies). It is
// started on first use and ended by TestMain.
var browser struct {
	once   sync.Once
	ctx    context.Context
	err    error
	cancel func()
}

// newBrowser returns the test binary's Chromium, starting it on first use.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := requireChromium(t)
	requireSmarty(t)
	browser.once.Do(func() {
		opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path))
		if os.Geteuid() == 0 {
			opts = append(opts, chromedp.NoSandbox) // Chromium refuses to sandbox as root
		}
		allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancelBrowser := chromedp.NewContext(allocCtx)
		browser.cancel = func() {
			cancelBrowser()
			cancelAlloc()
		}
		// The first Do starts the browser and binds its life to this context,
		// which has no deadline; each step gets its own.
		if err := chromedp.Do(ctx); err != nil {
			browser.err = fmt.Errorf("start %s: %w", path, err)
			return
		}
		browser.ctx = ctx
	})
	if browser.err != nil {
		t.Fatal(browser.err)
	}
	return browser.ctx
}

// closeBrowser ends the test binary's Chromium, if it was started.
func closeBrowser() {
	if browser.cancel != nil {
		browser.cancel()
	}
}

// standin is the WHMCS stand-in (hooks/standin/router.php) under `php -S`,
// loading the packaged module (dist/modules/servers/pvekeep) against this
// test's database, simulator and plugin binary. It is WHMCS for the browser:
// sessions, CSRF tokens, entity-encoded input, the theme page around the
// module's output, the admin service page.
type standin struct {
	w    *world
	base string // http://127.0.0.1:PORT
	env  []string

	mu  sync.Mutex
	log []string // php -S's own log: requests, PHP errors
}

// standinModuleDir is the packaged module the stand-in loads, as `make
// package` lays it out.
func standinModuleDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("WHMCS_STANDIN_MODULE_DIR")
	if dir == "" {
		dir = filepath.Join(repoDir, "dist", "modules", "servers", "pvekeep")
	}
	if _, err := os.Stat(filepath.Join(dir, "pvekeep.php")); err != nil {
		skipOrFail(t, "the packaged module is missing (run `make package`): %v", err)
	}
	return dir
}

// standinAssets is where .ci/bringup.sh put the theme CSS from npm.
func standinAssets(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("WHMCS_STANDIN_ASSETS")
	if dir == "" {
		dir = filepath.Join(repoDir, ".cache", "npm")
	}
	for _, pkg := range []string{"bootstrap@4.6.2", "bootstrap@3.4.1"} {
		if _, err := os.Stat(filepath.Join(dir, pkg, "dist", "css", "bootstrap.min.css")); err != nil {
			skipOrFail(t, "the stand-in's theme CSS is missing (run .ci/bringup.sh): %v", err)
		}
	}
	return dir
}

// standinEnv is the stand-in's environment: WHMCS's database through its
// configuration (not PVEKEEP_DSN: the module must find it as in WHMCS).
func (w *world) standinEnv(data string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PVEKEEP_DSN=") {
			env = append(env, kv)
		}
	}
	env = append(env, "WHMCS_STANDIN_MODULE_DIR="+standinModuleDir(w.t), "WHMCS_STANDIN_ASSETS="+standinAssets(w.t),
		"WHMCS_STANDIN_DSN="+w.db.DSN, "WHMCS_STANDIN_DATA="+data,
		"PVEKEEP_BIN="+binary, "PVEKEEP_MODULE_LOG="+w.modLog)
	return append(env, w.env...)
}

// startStandin starts the stand-in and waits until it listens.
func (w *world) startStandin() *standin {
	w.t.Helper()
	requireSmarty(w.t)
	data := w.t.TempDir()
	s := &standin{w: w, env: w.standinEnv(data)}
	// Port 0: PHP picks a free one and names it in its "started" line.
	cmd := exec.Command(w.phpBin, "-S", "127.0.0.1:0", filepath.Join(repoDir, "hooks", "standin", "router.php"))
	cmd.Dir = data
	// One process (no PHP_CLI_SERVER_WORKERS): it dies with the test binary
	// even when a timeout kills that before any cleanup runs.
	cmd.Env = s.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		w.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		w.t.Fatalf("start php -S: %v", err)
	}
	started := regexp.MustCompile(`Development Server \((http://[^)]+)\) started`)
	ready := make(chan string, 1)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			s.mu.Lock()
			s.log = append(s.log, sc.Text())
			s.mu.Unlock()
			if m := started.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case ready <- m[1]:
				default:
				}
			}
		}
	}()
	w.t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		cmd.Wait()
	})
	ctx, cancel := context.WithTimeout(context.Background(), browserStep)
	defer cancel()
	select {
	case s.base = <-ready:
	case <-exited:
		w.t.Fatalf("php -S exited before it listened:\n%s", s.serverLog())
	case <-ctx.Done():
		w.t.Fatalf("php -S did not listen:\n%s", s.serverLog())
	}
	return s
}

// productURL is c's product details page, in theme ("" = the default).
func (s *standin) productURL(c customer, theme string) string {
	u := fmt.Sprintf("%s/clientarea.php?action=productdetails&id=%d", s.base, c.serviceID)
	if theme != "" {
		u += "&systpl=" + theme
	}
	return u
}

// adminURL is the admin's service page of c.
func (s *standin) adminURL(c customer) string {
	return fmt.Sprintf("%s/admin/clientsservices.php?userid=%d&id=%d", s.base, c.clientID, c.serviceID)
}

func (s *standin) serverLog() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "php -S log:\n  " + strings.Join(s.log, "\n  ")
}

// cli runs hooks/standin/cli.php with the stand-in's environment and
// decodes its JSON answer into v.
func (s *standin) cli(t testing.TB, v any, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.w.phpBin, append([]string{filepath.Join(repoDir, "hooks", "standin", "cli.php")}, args...)...)
	cmd.Env = s.env
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("cli.php %v: %v\n%s", args, err, stderr.String())
	}
	if err := json.Unmarshal([]byte(stdout.String()), v); err != nil {
		t.Fatalf("cli.php %v printed %q: %v", args, stdout.String(), err)
	}
}

// httpClient is a cookie-keeping client logged in as client uid (0: no one)
// and admin adminID (0: no admin), for requests a browser would not make.
func (s *standin) httpClient(t testing.TB, uid, adminID int64) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	must(t, err)
	c := &http.Client{Jar: jar, Timeout: browserStep,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(fmt.Sprintf("%s/standin/login?uid=%d&adminid=%d", s.base, uid, adminID))
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stand-in login: %s\n%s", resp.Status, s.serverLog())
	}
	return c
}

// tab is one browser tab on a clientArea. It answers every confirm()
// with OK, remembering its text, and collects every JavaScript error.
type tab struct {
	s    *standin
	ctx  context.Context
	page string // the page load() opens

	mu       sync.Mutex
	problems []string // uncaught exceptions, console.error, browser log errors
	dialogs  []string
}

// open opens a new tab in browser; it closes when t ends, and t fails if
// the tab saw a JavaScript error on any page it showed.
func (s *standin) open(t *testing.T, browser context.Context) *tab {
	t.Helper()
	tb := &tab{s: s}
	// Its own browser context: cookies (the WHMCS session) are per tab.
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext(), chromedp.WithListener(tb.observe))
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
		t.Fatalf("%s: %v\n%s", what, err, tb.s.serverLog())
	}
}

// clientTab starts a stand-in for w, opens a tab logged in as c's owner
// and shows c's product page in theme ("" = the default).
func (w *world) clientTab(t *testing.T, browser context.Context, c customer, theme string) *tab {
	t.Helper()
	return w.clientTabAs(t, browser, c, c.clientID, theme)
}

// clientTabAs is clientTab with client uid logged in.
func (w *world) clientTabAs(t *testing.T, browser context.Context, c customer, uid int64, theme string) *tab {
	t.Helper()
	s := w.sub(t).startStandin()
	tb := s.open(t, browser)
	tb.login(t, uid, 0, nil)
	tb.page = s.productURL(c, theme)
	return tb
}

// load opens the tab's page with a GET, as a client opening or reloading
// it, and fails unless the module's page rendered.
func (tb *tab) load(t testing.TB) {
	t.Helper()
	tb.goTo(t, tb.page)
	tb.mustShowPage(t)
}

// mustShowPage fails unless the module's page rendered (not PHP's error).
func (tb *tab) mustShowPage(t testing.TB) {
	t.Helper()
	if tb.count(t, `[data-pvekeep=page]`) != 1 {
		t.Fatalf("the module's page did not render; the browser shows:\n%s\n%s", tb.text(t, "body"), tb.s.serverLog())
	}
}

// login logs the tab's session in through the stand-in's switch: client
// uid (0: none), admin adminID (0: none), and extra (language, systpl).
func (tb *tab) login(t testing.TB, uid, adminID int64, extra url.Values) {
	t.Helper()
	q := url.Values{"uid": {fmt.Sprint(uid)}, "adminid": {fmt.Sprint(adminID)}}
	for k, v := range extra {
		q[k] = v
	}
	tb.do(t, "log in", chromedp.Navigate(tb.s.base+"/standin/login?"+q.Encode()))
	if got := tb.text(t, "body"); !strings.HasPrefix(got, "logged in") {
		t.Fatalf("stand-in login answered %q\n%s", got, tb.s.serverLog())
	}
}

// goTo opens u with a GET (a click on a link, a reload after a redirect)
// and fails on the stand-in's error page.
func (tb *tab) goTo(t testing.TB, u string) {
	t.Helper()
	tb.do(t, "open "+u, chromedp.Navigate(u))
	tb.mustNotFail(t)
}

// mustNotFail fails on the stand-in's error page (a PHP warning or
// exception anywhere: the stand-in is strict).
func (tb *tab) mustNotFail(t testing.TB) {
	t.Helper()
	if tb.count(t, `[data-standin=error]`) != 0 {
		t.Fatalf("the stand-in failed:\n%s\n%s", tb.text(t, `[data-standin=error]`), tb.s.serverLog())
	}
}

// submit clicks the one element sel finds, a submit button, and waits for
// the page the POST (and its redirect) brings.
func (tb *tab) submit(t testing.TB, sel string) {
	t.Helper()
	if n := tb.count(t, sel); n != 1 {
		t.Fatalf("want one %s to click, the page has %d:\n%s", sel, n, tb.text(t, "body"))
	}
	ctx, cancel := context.WithTimeout(tb.ctx, browserStep)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(sel)))); err != nil {
		t.Fatalf("click %s: %v\n%s", sel, err, tb.s.serverLog())
	}
	tb.mustNotFail(t)
}

// location is the tab's current URL.
func (tb *tab) location(t testing.TB) string {
	t.Helper()
	return eval[string](t, tb, "location.href")
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
