package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/pvekeep/pvekeep/internal/plan"
	"github.com/pvekeep/pvekeep/internal/pvesim"
	"github.com/pvekeep/pvekeep/internal/seed"
	"github.com/pvekeep/pvekeep/internal/store"
	sqlfiles "github.com/pvekeep/pvekeep/sql"
)

// runDemo shows the module in a WHMCS stand-in (hooks/standin, DESIGN §7):
// the simulator plays Proxmox, a throwaway database holds WHMCS's tables
// with one customer, and `php -S` serves the packaged module's pages with
// this binary as the plugin. It checks the pages render, prints their URLs
// and, on a terminal (or with --serve), keeps serving until interrupted
// while WHMCS's cron (AfterCronJob) runs every few seconds.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	bin := fs.String("bin", "", "the pvekeep binary the module runs (default: this one)")
	adminDSN := fs.String("admin-dsn", envOr("PVEKEEP_TEST_DSN", "root@unix(/run/mysqld/mysqld.sock)/"), "a MariaDB/MySQL account that may create databases")
	repo := fs.String("repo", ".", "the pvekeep checkout holding hooks/standin and dist/ (make package)")
	moduleDir := fs.String("module", "", "the packaged module folder (default: <repo>/dist/modules/servers/pvekeep)")
	listen := fs.String("listen", "127.0.0.1:0", "where the stand-in listens")
	speed := fs.Float64("speed", 8, "simulator speed-up over real Proxmox durations")
	keep := fs.Bool("keep", false, "keep the demo database afterwards")
	serve := fs.String("serve", "auto", "keep serving until interrupted: yes, no, or auto (when stdin is a terminal)")
	script := fs.Bool("script", true, "first play a customer's visit (backup, restore, remove, snapshot, rollback, a new order provisioned) through the pages")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("demo: find own binary: %w", err)
		}
		*bin = exe
	}
	if *moduleDir == "" {
		*moduleDir = filepath.Join(*repo, "dist", "modules", "servers", "pvekeep")
	}
	if abs, err := filepath.Abs(*repo); err == nil {
		*repo = abs // php -S runs in a scratch folder
	}
	router := filepath.Join(*repo, "hooks", "standin", "router.php")
	for _, f := range []string{router, filepath.Join(*moduleDir, "pvekeep.php")} {
		if _, err := os.Stat(f); err != nil {
			return usageError{fmt.Sprintf("demo: %s not found; run `make demo` (it packages the module) from the repository root, or pass --repo/--module", f)}
		}
	}
	php, err := exec.LookPath("php")
	if err != nil {
		return fmt.Errorf("demo: php-cli is needed (make demo installs it): %w", err)
	}
	quiet := slog.New(slog.DiscardHandler)
	// Ctrl-C or a TERM at any point ends the demo through its deferred
	// cleanups: the stand-in stopped, the database dropped.
	ctx, cancel := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer cancel()

	sim := pvesim.New(pvesim.Options{Nodes: 2, VMs: 4, Speed: *speed, Logger: quiet})
	info, err := sim.Start("127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo: start simulator: %w", err)
	}
	defer sim.Close()

	name := fmt.Sprintf("pvekeep_demo_%d", time.Now().Unix())
	if err := store.CreateDatabase(ctx, *adminDSN, name); err != nil {
		return fmt.Errorf("demo: create database: %w", err)
	}
	if !*keep {
		defer func() { _ = store.DropDatabase(context.Background(), *adminDSN, name) }()
	}
	dsn, err := store.DSNWithDatabase(*adminDSN, name)
	if err != nil {
		return err
	}
	if err := store.ExecScript(ctx, dsn, sqlfiles.WHMCSSchema); err != nil {
		return fmt.Errorf("demo: load WHMCS tables: %w", err)
	}
	if err := store.Migrate(ctx, dsn, quiet); err != nil {
		return fmt.Errorf("demo: migrate: %w", err)
	}
	panel, err := seedDemo(ctx, dsn, info)
	if err != nil {
		return err
	}
	order, err := seedOrder(ctx, dsn, panel)
	if err != nil {
		return err
	}

	data, err := os.MkdirTemp("", "pvekeep-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(data)
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	env := []string{"WHMCS_STANDIN_MODULE_DIR=" + abs(*moduleDir), "WHMCS_STANDIN_DSN=" + dsn,
		"WHMCS_STANDIN_DATA=" + data, "PVEKEEP_BIN=" + abs(*bin)}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PVEKEEP_DSN=") { // the module finds WHMCS's database as in WHMCS
			env = append(env, kv)
		}
	}
	if os.Getenv("WHMCS_STANDIN_ASSETS") == "" {
		env = append(env, "WHMCS_STANDIN_ASSETS="+abs(filepath.Join(*repo, ".cache", "npm")))
	}
	base, stop, err := startStandin(php, router, *listen, data, env)
	if err != nil {
		return err
	}
	defer stop()

	login := func(theme string, admin bool, next string) string {
		q := url.Values{"uid": {fmt.Sprint(panel.clientID)}, "next": {next}}
		if theme != "" {
			q.Set("systpl", theme)
		}
		if admin {
			q.Set("adminid", "1")
		}
		return base + "/standin/login?" + q.Encode()
	}
	product := fmt.Sprintf("/clientarea.php?action=productdetails&id=%d", panel.serviceID)
	admin := fmt.Sprintf("/admin/clientsservices.php?userid=%d&id=%d", panel.clientID, panel.serviceID)
	pages := []struct{ what, url string }{
		{"client area, theme twenty-one", login("twenty-one", false, product)},
		{"client area, theme six", login("six", false, product)},
		{"admin service page", login("", true, admin)},
	}
	for _, p := range pages {
		if err := checkPage(p.url); err != nil {
			return fmt.Errorf("demo: %s: %w", p.what, err)
		}
	}

	fmt.Fprintf(stdout, "pvekeep demo: the WHMCS module in a WHMCS stand-in (hooks/standin)\n")
	fmt.Fprintf(stdout, "  Proxmox:  the built-in simulator at %s (2 nodes, 4 VMs)\n", info.URL)
	fmt.Fprintf(stdout, "  Database: %s (WHMCS tables + mod_pvekeep_*)\n", name)
	fmt.Fprintf(stdout, "  Customer: Alice Example, service #%d \"alice-vps.example.test\" on VM 100, 3 backups\n\n", panel.serviceID)
	cron := cronRunner(php, filepath.Join(filepath.Dir(router), "cli.php"), env)
	if *script {
		vm := func() map[string]string { cfg, _ := sim.VMConfig(100); return cfg }
		sess, err := newDemoSession(stdout, base, panel.clientID, panel.serviceID, cron, vm)
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		orderAdmin := login("", true, fmt.Sprintf("/admin/clientsservices.php?userid=%d&id=%d", panel.clientID, order.serviceID))
		vmOf := func(vmid int) map[string]string { cfg, _ := sim.VMConfig(vmid); return cfg }
		sess.last = func(ctx context.Context) error {
			return sess.provision(ctx, orderAdmin, order, createJobOf(dsn, order.serviceID), vmOf)
		}
		if err := sess.run(ctx); err != nil {
			if ctx.Err() != nil {
				fmt.Fprintln(stdout, "\ninterrupted")
				return nil
			}
			return fmt.Errorf("demo: %w", err)
		}
		fmt.Fprintln(stdout)
	}
	fmt.Fprintf(stdout, "Open (each link logs you in first):\n")
	for _, p := range pages {
		fmt.Fprintf(stdout, "  %-30s %s\n", p.what+":", p.url)
	}
	if !wantServe(*serve) {
		fmt.Fprintf(stdout, "\nAll three pages render. Run `make demo` in a terminal to keep them up and click around.\n")
		return nil
	}
	fmt.Fprintf(stdout, "\nWHMCS's cron (AfterCronJob) runs every 5 s. Ctrl-C stops the demo and drops its database.\n")
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(stdout)
			return nil
		case <-tick.C:
			if err := cron(ctx); err != nil && ctx.Err() == nil {
				fmt.Fprintf(stderr, "demo: %v", err)
			}
		}
	}
}

func wantServe(v string) bool {
	switch v {
	case "yes", "true", "1":
		return true
	case "no", "false", "0":
		return false
	}
	return isTerminal(os.Stdin)
}

// isTerminal reports whether f is a terminal (TCGETS succeeds: /dev/null,
// also a character device, is not one).
func isTerminal(f *os.File) bool {
	var t syscall.Termios
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), syscall.TCGETS, uintptr(unsafe.Pointer(&t)))
	return errno == 0
}

// startStandin runs `php -S` with the stand-in's router and returns its
// base URL and a stop function that ends it and its workers.
func startStandin(php, router, listen, dir string, env []string) (string, func(), error) {
	cmd := exec.Command(php, "-S", listen, router)
	cmd.Dir = dir
	// One process with workers (a page poll and a click may overlap); the
	// group is ended on the way out, and the server dies with the demo.
	cmd.Env = append(env, "PHP_CLI_SERVER_WORKERS=4")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("demo: start php -S: %w", err)
	}
	stop := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	}
	started := regexp.MustCompile(`Development Server \((http://[^)]+)\) started`)
	ready := make(chan string, 1)
	var mu sync.Mutex
	var lines []string
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := started.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case ready <- m[1]:
				default:
				}
			} else if strings.Contains(sc.Text(), "WHMCS stand-in:") || strings.Contains(sc.Text(), "PHP ") {
				fmt.Fprintln(os.Stderr, sc.Text()) // the stand-in's errors, for whoever watches the demo
			}
			mu.Lock()
			if len(lines) < 20 {
				lines = append(lines, sc.Text())
			}
			mu.Unlock()
		}
	}()
	select {
	case base := <-ready:
		return base, stop, nil
	case <-time.After(15 * time.Second):
		stop()
		mu.Lock()
		defer mu.Unlock()
		return "", nil, fmt.Errorf("demo: php -S did not start: %s", strings.Join(lines, "\n"))
	}
}

// checkPage loads a page (following the login redirect) and fails unless
// the stand-in rendered it.
func checkPage(u string) error {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || strings.Contains(string(body), `data-standin="error"`) {
		return fmt.Errorf("%s answered %s:\n%s", u, resp.Status, body)
	}
	return nil
}

type demoPanel struct {
	clientID, serviceID int64
}

// seedDemo makes the panel side: one client, one Proxmox server (the
// simulator: token id in Username, secret in Password, fingerprint in
// Access Hash), a product with 3 backups, and an Active service bound to
// VM 100.
func seedDemo(ctx context.Context, dsn string, info pvesim.Info) (demoPanel, error) {
	st, err := store.Open(ctx, dsn, slog.New(slog.DiscardHandler))
	if err != nil {
		return demoPanel{}, err
	}
	defer st.Close()
	sd := seed.New(st.DB(), time.Now().UTC())
	host, port, err := hostPort(info.URL)
	if err != nil {
		return demoPanel{}, err
	}
	clientID, err := sd.Client(ctx, seed.Client{FirstName: "Alice", LastName: "Example", Email: "alice@example.test", Language: "english"})
	if err != nil {
		return demoPanel{}, err
	}
	serverID, err := sd.Server(ctx, seed.Server{Name: "pve-sim", Hostname: host, Port: port, Username: info.TokenID,
		Password: info.TokenSecret, AccessHash: info.Fingerprint})
	if err != nil {
		return demoPanel{}, err
	}
	// The package sold is bigger than the VM the simulator starts with (1
	// core, 1 GiB, 10 GiB): a restore puts the VM back to the package.
	productID, err := sd.Product(ctx, seed.Product{Name: "KVM Starter", BackupStorage: "backup", BackupsQuota: 3,
		SnapshotsQuota: 2, SnapshotLifetimeDays: 3, Settings: demoPackage})
	if err != nil {
		return demoPanel{}, err
	}
	serviceID, err := sd.Service(ctx, seed.Service{ClientID: clientID, ProductID: productID, ServerID: serverID, Domain: "alice-vps.example.test", VMID: "100"})
	if err != nil {
		return demoPanel{}, err
	}
	return demoPanel{clientID: clientID, serviceID: serviceID}, nil
}

// demoPackage is configoption5..22 of the demo product (internal/plan).
var demoPackage = map[int]string{
	plan.SettingCores + 1: "2", plan.SettingRAM + 1: "4", plan.SettingSystemDisk + 1: "20", plan.SettingExtraDisk + 1: "10",
	plan.SettingSystemReadMBs + 1: "200", plan.SettingSystemWriteMBs + 1: "100",
	plan.SettingSystemReadIOPS + 1: "2000", plan.SettingSystemWriteIOPS + 1: "1000",
	plan.SettingNetworkMBs + 1: "50", plan.SettingBridge + 1: "vmbr0", plan.SettingVLAN + 1: "20",
	plan.SettingNetModel + 1: "virtio", plan.SettingOSTemplate + 1: "9000",
	plan.SettingMore + 1: "ipv4_gateway = 192.0.2.1\nipv4_prefix = 24\ndns_servers = 192.0.2.53",
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
