package pvesim

import (
	"bytes"
	"net/http"
	"net/url"
	"testing"
)

func TestPermissionsOfTheDefaultTokenAreEverything(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	r := b.raw(t, "GET", "/access/permissions", url.Values{"path": {"/storage/backup"}}, nil)
	if r.code != 200 {
		t.Fatalf("GET /access/permissions = %s", r.status)
	}
	privs, _ := r.body["data"].(map[string]any)["/storage/backup"].(map[string]any)
	if len(privs) != len(allPrivileges) || privs["Datastore.Allocate"] != float64(1) {
		t.Errorf("privileges on /storage/backup = %v, want all %d with propagate 1", privs, len(allPrivileges))
	}
}

func TestPermissionsFollowTheTokensACLMostSpecificPathFirst(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{TokenPrivileges: map[string][]string{
		"/":               {"VM.Audit"},
		"/storage/backup": {"Datastore.AllocateSpace"},
	}})
	tests := []struct {
		path string
		want []string
		not  []string
	}{
		{"/vms/100", []string{"VM.Audit"}, []string{"VM.Backup"}},
		{"/storage/backup", []string{"Datastore.AllocateSpace"}, []string{"VM.Audit"}},
		{"/storage/local-lvm", []string{"VM.Audit"}, []string{"Datastore.AllocateSpace"}},
	}
	for _, tt := range tests {
		r := b.raw(t, "GET", "/access/permissions", url.Values{"path": {tt.path}}, nil)
		privs, _ := r.body["data"].(map[string]any)[tt.path].(map[string]any)
		for _, p := range tt.want {
			if privs[p] == nil {
				t.Errorf("%s: %s missing from %v", tt.path, p, privs)
			}
		}
		for _, p := range tt.not {
			if privs[p] != nil {
				t.Errorf("%s: %s granted in %v", tt.path, p, privs)
			}
		}
	}
}

func TestStoragesTheTokenCannotAuditAreHidden(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{TokenPrivileges: map[string][]string{"/storage/local-lvm": {"Datastore.Audit"}}})
	r := b.raw(t, "GET", "/nodes/pve1/storage", nil, nil)
	list, _ := r.body["data"].([]any)
	if r.code != 200 || len(list) != 1 || list[0].(map[string]any)["storage"] != "local-lvm" {
		t.Errorf("storage list = %s %v, want only local-lvm", r.status, r.body)
	}
	r = b.raw(t, "GET", "/nodes/pve1/storage/backup/content", nil, nil)
	if r.status != "403 Permission check failed (/storage/backup, Datastore.Audit|Datastore.AllocateSpace)" {
		t.Errorf("content of an unauditable storage = %q", r.status)
	}
	r = b.raw(t, "GET", "/cluster/resources", url.Values{"type": {"vm"}}, nil)
	if list, _ := r.body["data"].([]any); len(list) != 0 {
		t.Errorf("cluster resources without VM.Audit = %v, want none", list)
	}
}

func TestControlSetsTheTokensPrivilegesAndResetsThem(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	put := func(body string) {
		req, _ := http.NewRequest(http.MethodPut, b.info.ControlURL+"/token/privileges", bytes.NewBufferString(body))
		res, err := b.http.Do(req)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("PUT /_sim/token/privileges %s: %v %v", body, res, err)
		}
		res.Body.Close()
	}
	count := func() int {
		r := b.raw(t, "GET", "/nodes/pve1/storage", nil, nil)
		l, _ := r.body["data"].([]any)
		return len(l)
	}
	put(`{"acl":{"/vms":["VM.Audit"]}}`)
	if n := count(); n != 0 {
		t.Errorf("storages visible without Datastore privileges = %d, want 0", n)
	}
	put(`{"acl":null}`)
	if n := count(); n != len(storageDefs) {
		t.Errorf("storages visible after reset = %d, want %d", n, len(storageDefs))
	}
}

func TestConnectionsCountsNewConnectionsNotRequests(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	for range 3 {
		if r := b.raw(t, "GET", "/version", nil, nil); r.code != 200 {
			t.Fatalf("GET /version = %s", r.status)
		}
	}
	if n := b.sim.Connections(); n != 1 {
		t.Errorf("Connections() = %d after three requests on a kept-alive connection, want 1", n)
	}
}

func TestARegeneratedTokenSecretRefusesTheOldOne(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	req, _ := http.NewRequest(http.MethodPut, b.info.ControlURL+"/token/secret", bytes.NewBufferString(`{"secret":""}`))
	res, err := b.http.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("PUT /_sim/token/secret: %v %v", res, err)
	}
	res.Body.Close()
	if r := b.raw(t, "GET", "/version", nil, nil); r.status != "401 Authentication failed!" {
		t.Errorf("GET /version with a revoked token = %q, want 401 Authentication failed!", r.status)
	}
	b.sim.SetTokenSecret("new-secret-0001")
	b.info.TokenSecret = "new-secret-0001"
	if r := b.raw(t, "GET", "/version", nil, nil); r.code != 200 {
		t.Errorf("GET /version with the new secret = %q", r.status)
	}
}
