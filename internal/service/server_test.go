package service_test

import (
	"context"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/pvesim"
	"github.com/pvekeep/pvekeep/internal/service"
)

var system = pvekeep.Actor{Type: pvekeep.ActorSystem}

// serverSetup starts a simulator (no database is needed for server.*)
// and returns a service over it and the server as the panel sends it.
func serverSetup(t *testing.T, opts pvesim.Options) (*service.Service, *pvesim.Sim, pvekeep.Server) {
	t.Helper()
	if opts.Nodes == 0 {
		opts.Nodes = 2
	}
	opts.VMs, opts.Speed, opts.Logger = 2, 100, slog.New(slog.DiscardHandler)
	sim := pvesim.New(opts)
	info, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	u, _ := url.Parse(info.URL)
	port, _ := strconv.Atoi(u.Port())
	srv := pvekeep.Server{Host: u.Hostname(), Port: port, TokenID: info.TokenID, TokenSecret: info.TokenSecret, Fingerprint: info.Fingerprint}
	pool := pve.NewPool(4)
	svc := service.New(service.Deps{
		Dial: func(ctx context.Context, s pvekeep.Server) (pve.Cluster, error) {
			return pool.Connect(ctx, pve.ConfigFromServer(s))
		},
		Logger: slog.New(slog.DiscardHandler),
	}, service.Config{})
	return svc, sim, srv
}

// closedPort is a local port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

func TestServerTestReportsEachProblemAtItsCheck(t *testing.T) {
	t.Parallel()
	allButBackup := map[string][]string{
		"/vms":                    {"VM.Audit", "VM.PowerMgmt", "VM.Config.CPU", "VM.Config.Memory", "VM.Config.Disk", "VM.Config.Network", "VM.Allocate", "VM.Clone", "VM.Snapshot"},
		"/storage":                {"Datastore.AllocateSpace", "Datastore.Allocate"},
		"/sdn/zones/localnetwork": {"SDN.Use"},
	}
	noStorage := map[string][]string{
		"/vms":                    {"VM.Audit", "VM.PowerMgmt", "VM.Backup", "VM.Config.CPU", "VM.Config.Memory", "VM.Config.Disk", "VM.Config.Network", "VM.Allocate", "VM.Clone", "VM.Snapshot"},
		"/sdn/zones/localnetwork": {"SDN.Use"},
	}
	onTheBackupStorage := map[string][]string{
		"/vms":                    noStorage["/vms"],
		"/storage/backup":         {"Datastore.AllocateSpace", "Datastore.Allocate"},
		"/sdn/zones/localnetwork": {"SDN.Use"},
	}
	tests := []struct {
		name    string
		acl     map[string][]string
		mutate  func(t *testing.T, s *pvekeep.Server)
		storage string
		fault   *pvesim.HTTPFault
		failed  string // the first failed check; "" when all pass
		detail  []string
	}{
		{name: "everything in order", storage: "backup"},
		{name: "no storage named: any storage holding backups will do"},
		{name: "no storage named: grants on the backup storage itself are enough", acl: onTheBackupStorage},
		{name: "no storage named, no grant on any backup storage", acl: noStorage,
			failed: service.CheckPrivileges, detail: []string{"grant Datastore.AllocateSpace, Datastore.Allocate on /storage to root@pam!pvekeep"}},
		{name: "unreachable port", mutate: func(t *testing.T, s *pvekeep.Server) { s.Port = closedPort(t) },
			failed: service.CheckAddress, detail: []string{"refused the connection on port", "8006"}},
		{name: "user info in the host", mutate: func(_ *testing.T, s *pvekeep.Server) { s.Host = "x@" + s.Host },
			failed: service.CheckAddress, detail: []string{`contains "@"`, "enter only the host name or IP address"}},
		{name: "wrong fingerprint", mutate: func(_ *testing.T, s *pvekeep.Server) { s.Fingerprint = strings.Repeat("AB:", 31) + "AB" },
			failed: service.CheckTLS, detail: []string{"not the one in the Access Hash", "set the Access Hash to "}},
		{name: "neither pinned nor verified", mutate: func(_ *testing.T, s *pvekeep.Server) { s.Fingerprint = "" },
			failed: service.CheckTLS, detail: []string{"will not send the credentials", "set it in the server's Access Hash to pin it"}},
		{name: "verified but self-signed", mutate: func(_ *testing.T, s *pvekeep.Server) { s.Fingerprint, s.VerifyTLS = "", true },
			failed: service.CheckTLS, detail: []string{"not trusted", "Access Hash"}},
		{name: "wrong token secret", mutate: func(_ *testing.T, s *pvekeep.Server) { s.TokenSecret = "00000000-1111-2222-3333-444444444444" },
			failed: service.CheckToken, detail: []string{"Proxmox refused the API token root@pam!pvekeep", "token id (user@realm!name)"}},
		{name: "secret with a newline", mutate: func(_ *testing.T, s *pvekeep.Server) { s.TokenSecret += "\n" },
			failed: service.CheckToken, detail: []string{"line break", "paste the secret again"}},
		{name: "missing privilege", acl: allButBackup, storage: "backup",
			failed: service.CheckPrivileges, detail: []string{"grant VM.Backup on /vms to root@pam!pvekeep"}},
		{name: "storage the token cannot read", acl: noStorage, storage: "backup",
			failed: service.CheckPrivileges, detail: []string{"grant Datastore.AllocateSpace, Datastore.Allocate on /storage/backup"}},
		{name: "missing storage", storage: "nosuch",
			failed: service.CheckStorage, detail: []string{`there is no storage "nosuch"`, "holding backups: backup"}},
		{name: "storage offline", storage: "backup",
			fault:  &pvesim.HTTPFault{Method: "GET", PathRegex: "/storage/backup/content$", Status: 500, Message: "storage 'backup' is not online"},
			failed: service.CheckStorage, detail: []string{"cannot be listed (storage 'backup' is not online)", "check the storage is online"}},
		{name: "storage without backups", storage: "local-lvm",
			failed: service.CheckStorage, detail: []string{`"local-lvm" does not hold backups`, "VZDump backup file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			svc, sim, srv := serverSetup(t, pvesim.Options{TokenPrivileges: tt.acl})
			fingerprint := srv.Fingerprint
			if tt.fault != nil {
				if err := sim.InjectHTTPFault(*tt.fault); err != nil {
					t.Fatal(err)
				}
			}
			if tt.mutate != nil {
				tt.mutate(t, &srv)
			}
			rep, err := svc.TestServer(context.Background(), system, srv, tt.storage)
			if err != nil {
				t.Fatalf("TestServer: %v", err)
			}
			t.Logf("report: %+v", rep)
			if len(rep.Checks) != 5 {
				t.Fatalf("checks = %+v, want all five", rep.Checks)
			}
			failed := ""
			for _, c := range rep.Checks {
				if !c.OK && failed == "" {
					failed = c.Name
					for _, want := range tt.detail {
						if !strings.Contains(c.Detail, want) {
							t.Errorf("%s detail = %q, want it to contain %q", c.Name, c.Detail, want)
						}
					}
				}
			}
			if failed != tt.failed || rep.OK != (tt.failed == "") {
				t.Fatalf("first failed check = %q (ok %v), want %q; checks %+v", failed, rep.OK, tt.failed, rep.Checks)
			}
			if tt.failed == "" || tt.failed == service.CheckTLS {
				if rep.Fingerprint != fingerprint {
					t.Errorf("fingerprint = %q, want the server's %s", rep.Fingerprint, fingerprint)
				}
			}
			if tt.failed == service.CheckTLS {
				for _, c := range rep.Checks {
					if c.Name == service.CheckTLS && !strings.Contains(c.Detail, fingerprint) {
						t.Errorf("tls detail %q does not name the presented fingerprint %s", c.Detail, fingerprint)
					}
				}
				// The probe's handshake is the only connection: the token
				// never travelled to an unauthenticated server.
				if n := sim.Connections(); n != 1 {
					t.Errorf("the simulator saw %d connections, want only the probe's", n)
				}
			}
			if tt.failed == "" && rep.ProxmoxVersion == "" {
				t.Errorf("proxmox_version is empty")
			}
		})
	}
}

func TestServerTestIsForAdministrators(t *testing.T) {
	t.Parallel()
	svc, _, srv := serverSetup(t, pvesim.Options{Nodes: 1})
	_, err := svc.TestServer(context.Background(), pvekeep.Actor{Type: pvekeep.ActorClient, ID: 3}, srv, "")
	if pvekeep.ReasonOf(err) != pvekeep.ReasonForbidden {
		t.Fatalf("TestServer as a client = %v, want forbidden", err)
	}
}

func TestServerOptionsListWhatTheClusterOffers(t *testing.T) {
	t.Parallel()
	svc, _, srv := serverSetup(t, pvesim.Options{})
	tests := []struct {
		kind string
		want []service.Option
	}{
		{service.OptionsBackupStorages, []service.Option{{Value: "backup", Label: "backup (dir, shared)"}}},
		{service.OptionsStorages, []service.Option{{Value: "backup", Label: "backup (dir, shared)"}}},
		{service.OptionsDiskStorages, []service.Option{{Value: "local-lvm", Label: "local-lvm (lvmthin)"}, {Value: "san", Label: "san (lvm, shared)"}}},
		{service.OptionsBridges, []service.Option{{Value: "vmbr0", Label: "vmbr0"}, {Value: "vmbr1", Label: "vmbr1"}}},
		{service.OptionsTemplates, []service.Option{
			{Value: "9000", Label: "9000 debian-12-template (pve1)"},
			{Value: "9001", Label: "9001 debian-12-template (pve2)"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			t.Parallel()
			got, err := svc.ServerOptions(context.Background(), system, srv, tt.kind)
			if err != nil {
				t.Fatalf("ServerOptions(%s): %v", tt.kind, err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("ServerOptions(%s) = %+v, want %+v", tt.kind, got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("ServerOptions(%s)[%d] = %+v, want %+v", tt.kind, i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestServerOptionsRefusesAnUnknownKind(t *testing.T) {
	t.Parallel()
	svc, _, srv := serverSetup(t, pvesim.Options{Nodes: 1})
	_, err := svc.ServerOptions(context.Background(), system, srv, "isos")
	if e, ok := pvekeep.AsError(err); !ok || e.Reason != pvekeep.ReasonInvalidInput || e.Data["field"] != "kind" {
		t.Fatalf("ServerOptions(isos) = %v, want invalid_input for kind", err)
	}
}
