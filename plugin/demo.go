package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/pvekeep/pvekeep/internal/plan"
	"github.com/pvekeep/pvekeep/internal/pvesim"
	"github.com/pvekeep/pvekeep/internal/seed"
	"github.com/pvekeep/pvekeep/internal/store"
	sqlfiles "github.com/pvekeep/pvekeep/sql"
)

// runDemo plays a client session the way WHMCS would: the simulator stands
// in for Proxmox, a throwaway database for WHMCS's, and php-cli runs the
// real module files against this binary.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	bin := fs.String("bin", "", "the pvekeep binary PHP spawns (default: this one)")
	adminDSN := fs.String("admin-dsn", envOr("PVEKEEP_TEST_DSN", "root@unix(/run/mysqld/mysqld.sock)/"), "a MariaDB/MySQL account that may create databases")
	repo := fs.String("repo", ".", "the pvekeep checkout holding hooks/ and lang/")
	speed := fs.Float64("speed", 8, "simulator speed-up over real Proxmox durations")
	keep := fs.Bool("keep", false, "keep the demo database afterwards")
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
	script := filepath.Join(*repo, "hooks", "demo", "session.php")
	if _, err := os.Stat(script); err != nil {
		return usageError{fmt.Sprintf("demo: %s not found; run from the repository root or pass --repo", script)}
	}
	php, err := exec.LookPath("php")
	if err != nil {
		return fmt.Errorf("demo: php-cli is needed (make demo installs it): %w", err)
	}
	quiet := slog.New(slog.DiscardHandler)

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
	params, err := seedDemo(ctx, dsn, info)
	if err != nil {
		return err
	}
	params["demo_database"] = name
	params["demo_sim"] = info.URL
	params["demo_control"] = info.ControlURL
	raw, _ := json.Marshal(params)

	cmd := exec.CommandContext(ctx, php, script)
	cmd.Env = append(os.Environ(), "PVEKEEP_BIN="+*bin, "PVEKEEP_DSN="+dsn, "PVEKEEP_DEMO_PARAMS="+string(raw))
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("demo: client session: %w", err)
	}
	return nil
}

// seedDemo makes the panel side: one client, one Proxmox server (the
// simulator), a product with 3 backups, and a service bound to VM 100. It
// returns the $params WHMCS would hand the module for that service.
func seedDemo(ctx context.Context, dsn string, info pvesim.Info) (map[string]any, error) {
	st, err := store.Open(ctx, dsn, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	sd := seed.New(st.DB(), time.Now().UTC())
	host, port, err := hostPort(info.URL)
	if err != nil {
		return nil, err
	}
	clientID, err := sd.Client(ctx, seed.Client{FirstName: "Alice", LastName: "Example", Email: "alice@example.test", Language: "english"})
	if err != nil {
		return nil, err
	}
	serverID, err := sd.Server(ctx, seed.Server{Name: "pve-sim", Hostname: host, Port: port, Username: info.TokenID, AccessHash: info.Fingerprint})
	if err != nil {
		return nil, err
	}
	// The package sold is bigger than the VM the simulator starts with (1
	// core, 1 GiB, 10 GiB): the restore puts the VM back to the package.
	productID, err := sd.Product(ctx, seed.Product{Name: "KVM Starter", BackupStorage: "backup", BackupsQuota: 3,
		SnapshotsQuota: 2, SnapshotLifetimeDays: 3, Settings: demoPackage})
	if err != nil {
		return nil, err
	}
	serviceID, err := sd.Service(ctx, seed.Service{ClientID: clientID, ProductID: productID, ServerID: serverID, Domain: "alice-vps.example.test", VMID: "100"})
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"serviceid": serviceID, "userid": clientID, "pid": productID, "serverid": serverID,
		"domain": "alice-vps.example.test", "moduletype": "pvekeep",
		"serverhostname": host, "serverport": port, "serversecure": false,
		"serverusername": info.TokenID, "serverpassword": info.TokenSecret, "serveraccesshash": info.Fingerprint,
		"clientsdetails": map[string]any{"firstname": "Alice", "lastname": "Example"},
		"configoption1":  "backup", "configoption2": "3",
	}, nil
}

// demoPackage is configoption5..22 of the demo product (internal/plan).
var demoPackage = map[int]string{
	plan.SettingCores + 1: "2", plan.SettingRAM + 1: "4", plan.SettingSystemDisk + 1: "20", plan.SettingExtraDisk + 1: "10",
	plan.SettingSystemReadMBs + 1: "200", plan.SettingSystemWriteMBs + 1: "100",
	plan.SettingSystemReadIOPS + 1: "2000", plan.SettingSystemWriteIOPS + 1: "1000",
	plan.SettingNetworkMBs + 1: "50", plan.SettingBridge + 1: "vmbr0", plan.SettingVLAN + 1: "20",
	plan.SettingNetModel + 1: "virtio", plan.SettingOSTemplate + 1: "9000",
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
