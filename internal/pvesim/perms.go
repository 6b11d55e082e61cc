package pvesim

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
)

// Privileges as pve-access-control's AccessControl.pm defines them (PVE 9).
var allPrivileges = []string{
	"Datastore.Allocate", "Datastore.AllocateSpace", "Datastore.AllocateTemplate", "Datastore.Audit",
	"Group.Allocate", "Mapping.Audit", "Mapping.Modify", "Mapping.Use", "Permissions.Modify",
	"Pool.Allocate", "Pool.Audit", "Realm.Allocate", "Realm.AllocateUser",
	"SDN.Allocate", "SDN.Audit", "SDN.Use",
	"Sys.AccessNetwork", "Sys.Audit", "Sys.Console", "Sys.Incoming", "Sys.Modify", "Sys.PowerMgmt", "Sys.Syslog",
	"User.Modify",
	"VM.Allocate", "VM.Audit", "VM.Backup", "VM.Clone", "VM.Config.CDROM", "VM.Config.CPU", "VM.Config.Cloudinit",
	"VM.Config.Disk", "VM.Config.HWType", "VM.Config.Memory", "VM.Config.Network", "VM.Config.Options",
	"VM.Console", "VM.GuestAgent.Audit", "VM.GuestAgent.FileRead", "VM.GuestAgent.FileSystemMgmt",
	"VM.GuestAgent.FileWrite", "VM.GuestAgent.Unrestricted", "VM.Migrate", "VM.PowerMgmt", "VM.Replicate",
	"VM.Snapshot", "VM.Snapshot.Rollback",
}

// SetTokenPrivileges replaces what the API token may do with an ACL: path
// ("/", "/vms", "/storage/backup", "/sdn/zones/localnetwork", …) → the
// privileges granted there, propagating to the paths below, the way a
// token with privilege separation gets exactly the roles granted to it.
// As in PVE, the most specific path with an entry wins (a grant on
// "/storage/backup" replaces, not adds to, one on "/"). nil restores the
// default: the token is root@pam's without privilege separation and may
// do everything. Ticket logins (root@pam) are never restricted.
func (s *Sim) SetTokenPrivileges(acl map[string][]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if acl == nil {
		s.tokenACL = nil
		return
	}
	s.tokenACL = map[string][]string{}
	for p, privs := range acl {
		s.tokenACL[normalizeACLPath(p)] = slices.Clone(privs)
	}
}

func normalizeACLPath(p string) string {
	p = "/" + strings.Trim(p, "/")
	return p
}

// privileges is RPCEnvironment::permissions for the acting user: the
// privileges granted on path. Caller holds s.mu.
func (s *Sim) privileges(r *request, path string) map[string]bool {
	out := map[string]bool{}
	if !r.token || s.tokenACL == nil {
		for _, p := range allPrivileges {
			out[p] = true
		}
		return out
	}
	for p := normalizeACLPath(path); ; {
		if privs, ok := s.tokenACL[p]; ok {
			for _, priv := range privs {
				out[priv] = true
			}
			return out
		}
		if p == "/" {
			return out
		}
		p = p[:strings.LastIndex(p, "/")]
		if p == "" {
			p = "/"
		}
	}
}

// can reports whether the caller holds any of privs on path.
func (s *Sim) can(r *request, path string, privs ...string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.canLocked(r, path, privs...)
}

// canLocked is can with s.mu held.
func (s *Sim) canLocked(r *request, path string, privs ...string) bool {
	if !r.token || s.tokenACL == nil {
		// Unrestricted: every privilege there is, without building the
		// set (/cluster/resources asks this of every VM).
		for _, p := range privs {
			if slices.Contains(allPrivileges, p) {
				return true
			}
		}
		return false
	}
	have := s.privileges(r, path)
	for _, p := range privs {
		if have[p] {
			return true
		}
	}
	return false
}

// errPerm is raise_perm_exc: 403 "Permission check failed (path, priv)".
func errPerm(path string, privs ...string) *apiError {
	return &apiError{status: http.StatusForbidden,
		message: fmt.Sprintf("Permission check failed (%s, %s)\n", path, strings.Join(privs, "|"))}
}

// handlePermissions is GET /access/permissions: the caller's own effective
// privileges on path, or on every interesting path (get_effective_permissions)
// without one. Each privilege maps to its propagate flag (1).
func (s *Sim) handlePermissions(r *request) (any, error) {
	if uid := r.str("userid"); uid != "" && uid != r.user {
		owner, _, _ := strings.Cut(uid, "!")
		if owner != r.user && !s.can(r, "/access", "Sys.Audit") {
			return nil, errPerm("/access", "Sys.Audit")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dump := func(path string) map[string]int {
		m := map[string]int{}
		for p := range s.privileges(r, path) {
			m[p] = 1
		}
		return m
	}
	if path := r.str("path"); path != "" {
		return map[string]any{path: dump(path)}, nil
	}
	paths := map[string]bool{"/": true, "/access": true, "/access/groups": true, "/nodes": true,
		"/pool": true, "/sdn": true, "/storage": true, "/vms": true}
	for p := range s.tokenACL {
		paths[p] = true
	}
	out := map[string]any{}
	for _, p := range slices.Sorted(maps.Keys(paths)) {
		if m := dump(p); len(m) > 0 {
			out[p] = m
		}
	}
	return out, nil
}
