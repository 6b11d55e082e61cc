package pve_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

const upid100 = "UPID:pve1:000A1B2C:0098F6E1:66310F2A:vzdump:100:whmcs@pve!pvekeep:"

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	good := pve.Config{Host: "pve.example.net", TokenID: "a@pve!b", TokenSecret: "s3cr3t-value", VerifyTLS: true}
	tests := []struct {
		name   string
		mutate func(*pve.Config)
		field  string // "" when the config is fine
	}{
		{"token is enough", func(*pve.Config) {}, ""},
		{"IPv4 address", func(c *pve.Config) { c.Host = "10.0.0.5" }, ""},
		{"IPv6 literal", func(c *pve.Config) { c.Host = "2001:db8::5" }, ""},
		{"IPv6 literal in brackets", func(c *pve.Config) { c.Host = "[2001:db8::5]" }, ""},
		{"https scheme", func(c *pve.Config) { c.Host = "https://pve.example.net/" }, "server.host"},
		{"http scheme", func(c *pve.Config) { c.Host = "http://pve.example.net" }, "server.host"},
		{"user info before the host", func(c *pve.Config) { c.Host = "x@127.0.0.2" }, "server.host"},
		{"a path", func(c *pve.Config) { c.Host = "a/b" }, "server.host"},
		{"a space", func(c *pve.Config) { c.Host = "pve .example.net" }, "server.host"},
		{"a trailing space", func(c *pve.Config) { c.Host = "pve.example.net " }, "server.host"},
		{"a port in the host", func(c *pve.Config) { c.Host = "pve.example.net:8006" }, "server.host"},
		{"missing host", func(c *pve.Config) { c.Host = "" }, "server.host"},
		{"token id without secret", func(c *pve.Config) { c.TokenSecret = "" }, "server.token_secret"},
		{"token id not user@realm!name", func(c *pve.Config) { c.TokenID = "pvekeep" }, "server.token_id"},
		{"secret with a newline", func(c *pve.Config) { c.TokenSecret = "s3cr3t-value\n" }, "server.token_secret"},
		{"password with a NUL", func(c *pve.Config) { c.TokenID, c.TokenSecret, c.Username, c.Password = "", "", "root@pam", "pw\x00d" }, "server.password"},
		{"no credentials", func(c *pve.Config) { c.TokenID, c.TokenSecret = "", "" }, "server"},
		{"user without password", func(c *pve.Config) { c.TokenID, c.TokenSecret, c.Username = "", "", "root@pam" }, "server.password"},
		{"bad port", func(c *pve.Config) { c.Port = 70000 }, "server.port"},
		{"fingerprint of wrong length", func(c *pve.Config) { c.Fingerprint = "AB:CD" }, "server.fingerprint"},
		{"fingerprint lower case without colons", func(c *pve.Config) { c.Fingerprint = strings.Repeat("ab", 32) }, ""},
		{"pin without verification", func(c *pve.Config) { c.VerifyTLS, c.Fingerprint = false, strings.Repeat("ab", 32) }, ""},
		{"neither verification nor pin", func(c *pve.Config) { c.VerifyTLS = false }, "server.fingerprint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.mutate(&cfg)
			_, err := pve.Connect(context.Background(), cfg)
			if (err == nil) != (tt.field == "") {
				t.Fatalf("Connect err = %v, want field %q", err, tt.field)
			}
			if err == nil {
				return
			}
			var ce *pve.ConfigError
			if !errors.As(err, &ce) || ce.Field != tt.field || !errors.Is(err, pve.ErrInvalidConfig) {
				t.Errorf("Connect err = %#v, want a *ConfigError for %s", err, tt.field)
			}
			if cfg.TokenSecret != "" && strings.Contains(err.Error(), cfg.TokenSecret) {
				t.Errorf("error leaks the secret: %v", err)
			}
		})
	}
}

func TestConfigFromServer(t *testing.T) {
	t.Parallel()
	s := pvekeep.Server{Host: "h", Port: 8007, TokenID: "a@pve!b", TokenSecret: "x", Username: "u", Password: "p",
		VerifyTLS: true, Fingerprint: "AA"}
	got := pve.ConfigFromServer(s)
	if got.Host != "h" || got.Port != 8007 || got.TokenID != "a@pve!b" || got.TokenSecret != "x" ||
		got.Username != "u" || got.Password != "p" || !got.VerifyTLS || got.Fingerprint != "AA" {
		t.Errorf("ConfigFromServer = %+v", got)
	}
	if strings.Contains(fmt.Sprint(got), "x") && strings.Contains(got.String(), "p") {
		t.Errorf("String() leaks secrets: %s", got)
	}
}

func TestTokenAuthHeader(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	var auth string
	f.handle("GET /version", func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		writeData(w, map[string]any{"version": "8.2.4", "release": "8.2"})
	})
	v, err := f.connect(t).Version(context.Background())
	if err != nil || v != "8.2.4" {
		t.Fatalf("Version = %q, %v", v, err)
	}
	if want := "PVEAPIToken=" + testTokenID + "=" + testTokenSecret; auth != want {
		t.Errorf("Authorization = %q, want %q", auth, want)
	}
}

func TestPasswordLoginSendsTicketAndCSRF(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle("POST /access/ticket", func(w http.ResponseWriter, r *http.Request) {
		writeData(w, map[string]any{"ticket": "PVE:root@pam:TICKET", "CSRFPreventionToken": "CSRF1", "username": "root@pam"})
	})
	var cookie, csrf string
	f.handle("PUT /nodes/pve1/storage/backup/content/backup:backup/vzdump-qemu-100-2024_05_01-10_00_00.vma.zst",
		func(w http.ResponseWriter, r *http.Request) {
			cookie, csrf = r.Header.Get("Cookie"), r.Header.Get("CSRFPreventionToken")
			writeData(w, nil)
		})
	cfg := f.config()
	cfg.TokenID, cfg.TokenSecret, cfg.Username, cfg.Password = "", "", "root@pam", "hunter2-password"
	c, err := pve.Connect(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if got := f.lastBody("POST /access/ticket"); got["username"] != "root@pam" || got["password"] != "hunter2-password" {
		t.Errorf("ticket request body = %v", got)
	}
	err = c.SetVolumeNotes(context.Background(), "pve1", "backup", "backup:backup/vzdump-qemu-100-2024_05_01-10_00_00.vma.zst", "n")
	if err != nil {
		t.Fatalf("SetVolumeNotes: %v", err)
	}
	if cookie != "PVEAuthCookie=PVE:root@pam:TICKET" || csrf != "CSRF1" {
		t.Errorf("cookie %q csrf %q", cookie, csrf)
	}
}

func TestPasswordLoginRefused(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle("POST /access/ticket", func(w http.ResponseWriter, r *http.Request) {
		writeRaw(w, 401, "authentication failure", `{"data":null}`)
	})
	logs := &logBuffer{}
	cfg := f.config()
	cfg.TokenID, cfg.TokenSecret, cfg.Username, cfg.Password = "", "", "root@pam", "hunter2-password"
	cfg.Logger = logs.logger()
	_, err := pve.Connect(context.Background(), cfg)
	if !errors.Is(err, pve.ErrUnauthorized) {
		t.Fatalf("Connect err = %v, want ErrUnauthorized", err)
	}
	for _, s := range []string{err.Error(), logs.String()} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("password leaked: %s", s)
		}
	}
}

func TestTLSPolicy(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle("GET /version", func(w http.ResponseWriter, r *http.Request) {
		writeData(w, map[string]any{"version": "8.2.4"})
	})
	other := strings.Repeat("AB:", 31) + "AB"
	tests := []struct {
		name        string
		verify      bool
		fingerprint string
		ok          bool
		wantInErr   string
		wantPinned  string // the pin a mismatch reports
	}{
		{"pinned self-signed without verification", false, f.fingerprint(), true, "", ""},
		{"pin matches case and colon insensitively", false, strings.ToLower(strings.ReplaceAll(f.fingerprint(), ":", "")), true, "", ""},
		{"pin mismatch is refused", false, other, false, "does not match", other},
		{"verification of a self-signed cert fails", true, "", false, "certificate", ""},
		{"verification and pin both must hold", true, f.fingerprint(), false, "certificate", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := f.config()
			cfg.VerifyTLS, cfg.Fingerprint = tt.verify, tt.fingerprint
			c, err := pve.Connect(context.Background(), cfg)
			if err != nil {
				t.Fatalf("Connect: %v", err)
			}
			_, err = c.Version(context.Background())
			if (err == nil) != tt.ok {
				t.Fatalf("Version err = %v, want ok=%v", err, tt.ok)
			}
			if err == nil {
				return
			}
			if !strings.Contains(err.Error(), tt.wantInErr) {
				t.Errorf("err = %v, want it to mention %q", err, tt.wantInErr)
			}
			if errors.Is(err, pve.ErrTransient) {
				t.Errorf("a TLS refusal must not be transient: %v", err)
			}
			var ce *pve.CertError
			if !errors.As(err, &ce) || ce.Fingerprint != f.fingerprint() || ce.Pinned != tt.wantPinned {
				t.Errorf("err = %#v, want a *CertError with the presented fingerprint %s and pin %q", err, f.fingerprint(), tt.wantPinned)
			}
		})
	}
}

func TestErrorClassification(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		code     int
		reason   string
		body     string
		is       []error
		isNot    []error
		lock     string
		errorsKV map[string]string
	}{
		{"401", 401, "authentication failure", `{"data":null}`, []error{pve.ErrUnauthorized}, []error{pve.ErrTransient}, "", nil},
		{"403 permission", 403, "Permission check failed (/vms/100, VM.Audit)", `{"data":null}`, []error{pve.ErrUnauthorized}, nil, "", nil},
		{"404", 404, "Not Found", `{"data":null}`, []error{pve.ErrNotFound}, []error{pve.ErrTransient}, "", nil},
		{"500 config does not exist", 500, "Configuration file 'nodes/pve1/qemu-server/100.conf' does not exist", `{"data":null}`,
			[]error{pve.ErrNotFound}, []error{pve.ErrTransient}, "", nil},
		{"500 no such in body message", 500, "Internal Server Error", `{"data":null,"message":"no such VM ('100')\n"}`,
			[]error{pve.ErrNotFound}, nil, "", nil},
		{"500 already exists", 500, "VM 100 already exists on node 'pve2'", `{"data":null}`, []error{pve.ErrAlreadyExists}, []error{pve.ErrNotFound, pve.ErrTransient}, "", nil},
		{"500 locked", 500, "VM is locked (backup)", `{"data":null}`, []error{pve.ErrLocked}, []error{pve.ErrTransient}, "backup", nil},
		{"500 config lock busy", 500, "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout", `{"data":null}`, []error{pve.ErrBusy, pve.ErrTransient}, []error{pve.ErrLocked}, "", nil},
		{"500 other", 500, "got timeout", `{"data":null}`, []error{pve.ErrTransient}, []error{pve.ErrNotFound}, "", nil},
		{"502", 502, "Bad Gateway", ``, []error{pve.ErrTransient}, nil, "", nil},
		{"596 proxy to node failed", 596, "Connection timed out", ``, []error{pve.ErrTransient}, nil, "", nil},
		{"400 parameter errors", 400, "Parameter verification failed.", `{"data":null,"errors":{"vmid":"invalid format - value does not look like a valid VM ID\n"}}`,
			nil, []error{pve.ErrTransient, pve.ErrNotFound}, "", map[string]string{"vmid": "invalid format - value does not look like a valid VM ID"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			f.handle("GET /nodes/pve1/qemu/100/status/current", func(w http.ResponseWriter, r *http.Request) {
				writeRaw(w, tt.code, tt.reason, tt.body)
			})
			_, err := f.connect(t).VMStatus(context.Background(), "pve1", 100)
			if err == nil {
				t.Fatal("VMStatus succeeded")
			}
			for _, s := range tt.is {
				if !errors.Is(err, s) {
					t.Errorf("errors.Is(%v, %v) = false", err, s)
				}
			}
			for _, s := range tt.isNot {
				if errors.Is(err, s) {
					t.Errorf("errors.Is(%v, %v) = true", err, s)
				}
			}
			var he *pve.HTTPError
			if !errors.As(err, &he) || he.Code != tt.code {
				t.Fatalf("no *HTTPError with code %d in %v", tt.code, err)
			}
			for k, v := range tt.errorsKV {
				if he.Errors[k] != v {
					t.Errorf("Errors[%q] = %q, want %q", k, he.Errors[k], v)
				}
			}
			var le *pve.LockedError
			if tt.lock != "" {
				if !errors.As(err, &le) || le.Lock != tt.lock || le.VMID != 100 {
					t.Errorf("LockedError = %+v, want lock %q vmid 100", le, tt.lock)
				}
			}
		})
	}
}

func TestNetworkFailureIsTransient(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle("GET /version", func(w http.ResponseWriter, r *http.Request) { resetConn(w) })
	_, err := f.connect(t).Version(context.Background())
	if !errors.Is(err, pve.ErrTransient) {
		t.Fatalf("err = %v, want ErrTransient", err)
	}
	if n := f.count("GET /version"); n != 3 {
		t.Errorf("GET attempts = %d, want 3 (GETs are retried)", n)
	}
}

func TestSecretsNeverInErrorsOrLogs(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	// A hostile or buggy server echoing the secret back.
	f.handle("GET /nodes/pve1/qemu/100/status/current", func(w http.ResponseWriter, r *http.Request) {
		writeRaw(w, 500, "bad token "+testTokenSecret, `{"data":null,"errors":{"x":"`+testTokenSecret+`"}}`)
	})
	logs := &logBuffer{}
	cfg := f.config()
	cfg.Logger = logs.logger()
	c, err := pve.Connect(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.VMStatus(context.Background(), "pve1", 100)
	var he *pve.HTTPError
	if !errors.As(err, &he) {
		t.Fatalf("err = %v", err)
	}
	for _, s := range []string{err.Error(), he.Message, fmt.Sprint(he.Errors), logs.String(), fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg.LogValue())} {
		if strings.Contains(s, testTokenSecret) {
			t.Errorf("secret leaked in %q", s)
		}
	}
}

func TestFindVM(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle("GET /cluster/resources", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("type") != "vm" {
			t.Errorf("type = %q", r.URL.Query().Get("type"))
		}
		writeData(w, []map[string]any{
			{"id": "qemu/100", "type": "qemu", "vmid": 100, "node": "pve1", "status": "running", "name": "a"},
			{"id": "qemu/101", "type": "qemu", "vmid": "101", "node": "pve2", "status": "stopped", "name": "b", "template": 1},
		})
	})
	c := f.connect(t)
	ref, err := c.FindVM(context.Background(), 101)
	if err != nil {
		t.Fatal(err)
	}
	if want := (pve.VMRef{VMID: 101, Node: "pve2", Type: "qemu", Status: "stopped", Name: "b", Template: true}); ref != want {
		t.Errorf("FindVM = %+v, want %+v", ref, want)
	}
	if _, err := c.FindVM(context.Background(), 999); !errors.Is(err, pve.ErrNotFound) {
		t.Errorf("FindVM(999) err = %v, want ErrNotFound", err)
	}
}

func TestVMStatusAndConfigExposeLock(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle("GET /nodes/pve1/qemu/100/status/current", func(w http.ResponseWriter, r *http.Request) {
		writeData(w, map[string]any{"status": "running", "qmpstatus": "running", "lock": "backup", "name": "vm", "uptime": 42, "vmid": 100})
	})
	f.handle("GET /nodes/pve1/qemu/100/config", func(w http.ResponseWriter, r *http.Request) {
		writeData(w, map[string]any{"cores": 1, "memory": "1024", "lock": "snapshot", "digest": "abc123", "onboot": true,
			"net0": "virtio=BC:24:11:00:00:01,bridge=vmbr0"})
	})
	c := f.connect(t)
	st, err := c.VMStatus(context.Background(), "pve1", 100)
	if err != nil {
		t.Fatal(err)
	}
	if st.Lock != "backup" || !st.Locked() || st.Status != "running" || st.Uptime != 42*time.Second {
		t.Errorf("VMStatus = %+v", st)
	}
	cfg, err := c.VMConfig(context.Background(), "pve1", 100)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Lock() != "snapshot" || cfg.Digest() != "abc123" || cfg["cores"] != "1" || cfg["memory"] != "1024" || cfg["onboot"] != "1" {
		t.Errorf("VMConfig = %v", cfg)
	}
}

// Guests reads /cluster/resources as it streams: "data" wherever it is
// among the members, string or number vmids; an answer that is not an
// object with data is a decode error, not an empty cluster; an error
// status is classified as for any other call.
func TestGuestsStreamedAnswer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		code    int
		body    string
		want    []pve.Guest
		wantErr string
		is      error
	}{
		{"data after another member", 200,
			`{"total":2,"data":[{"id":"qemu/100","type":"qemu","vmid":100,"node":"pve1","status":"running","name":"a","lock":"backup"},` +
				`{"id":"qemu/101","type":"qemu","vmid":"101","node":"pve2","status":"stopped","name":"b","template":1},` +
				`{"id":"storage/pve1/local","type":"storage","node":"pve1"}],"extra":{"x":[1,2]}}`,
			[]pve.Guest{
				{VMRef: pve.VMRef{VMID: 100, Node: "pve1", Type: "qemu", Status: "running", Name: "a"}, Lock: "backup"},
				{VMRef: pve.VMRef{VMID: 101, Node: "pve2", Type: "qemu", Status: "stopped", Name: "b", Template: true}},
			}, "", nil},
		{"empty cluster", 200, `{"data":[]}`, []pve.Guest{}, "", nil},
		{"no data", 200, `{"total":0}`, nil, "decode answer: answer has no data", nil},
		{"not an object", 200, `[1,2]`, nil, "decode answer", nil},
		{"cut short", 200, `{"data":[{"vmid":100`, nil, "decode answer", nil},
		{"error status", 500, `{"data":null}`, nil, "", pve.ErrTransient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			f.handle("GET /cluster/resources", func(w http.ResponseWriter, r *http.Request) {
				if tt.code != 200 {
					writeRaw(w, tt.code, "got timeout", tt.body)
					return
				}
				w.Header().Set("Content-Type", "application/json;charset=UTF-8")
				_, _ = io.WriteString(w, tt.body)
			})
			got, err := f.connect(t).Guests(context.Background())
			switch {
			case tt.is != nil:
				if !errors.Is(err, tt.is) {
					t.Fatalf("Guests() err = %v, want %v", err, tt.is)
				}
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Guests() = %+v, %v; want an error with %q", got, err, tt.wantErr)
				}
			default:
				if err != nil || !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("Guests() = %+v, %v; want %+v", got, err, tt.want)
				}
			}
		})
	}
}
