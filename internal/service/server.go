package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/pvekeep/pvekeep/internal/lazyre"
	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// Prober reads a server's certificate without sending any credential
// (pve.ProbeTLS): the first half of server.test.
type Prober func(ctx context.Context, s pvekeep.Server) (pve.Probe, error)

func defaultProber(ctx context.Context, s pvekeep.Server) (pve.Probe, error) {
	return pve.ProbeTLS(ctx, pve.ConfigFromServer(s), 0)
}

// The checks of server.test, in the order they run. A check that cannot
// run because an earlier one failed is reported failed with the reason.
const (
	CheckAddress    = "address"
	CheckTLS        = "tls"
	CheckToken      = "token"
	CheckPrivileges = "privileges"
	CheckStorage    = "storage"
)

// ServerCheck is one line of a connection test.
type ServerCheck struct {
	Name   string
	OK     bool
	Detail string // what was found, or what is wrong and what to set
}

// ServerReport is the answer of server.test.
type ServerReport struct {
	OK             bool
	ProxmoxVersion string
	Fingerprint    string // the leaf certificate's SHA-256 ("AB:CD:…"), when TLS was reached
	Checks         []ServerCheck
}

// PrivilegeNeed is what the module's Proxmox calls need on one ACL path.
type PrivilegeNeed struct {
	Path       string
	Privileges []string
}

// vmPrivileges are the privileges the module's calls check on the guests
// it manages (and the templates it clones), read from qemu-server's
// API2/Qemu.pm and pve-manager's API2/VZDump.pm (see
// docs/proxmox-privileges.md).
var vmPrivileges = []string{
	"VM.Audit",          // status/current, config, pending, /cluster/resources
	"VM.PowerMgmt",      // status/start, stop, shutdown
	"VM.Backup",         // vzdump; restore over the existing VM; backup volumes' notes, protection, removal
	"VM.Config.CPU",     // cores, sockets, vcpus
	"VM.Config.Memory",  // memory, balloon
	"VM.Config.Disk",    // drive limits, the additional disk, resize
	"VM.Config.Network", // net0… (bridge, VLAN tag, rate)
	"VM.Allocate",       // reinstall: destroy the broken VM, clone onto its vmid
	"VM.Clone",          // reinstall: clone the template
	"VM.Snapshot",       // snapshots: take, remove and (any of it and VM.Snapshot.Rollback) roll back
}

// storagePrivileges are needed on the backup storage: vzdump writes there
// (AllocateSpace) with prune-backups=keep-all=1 so the storage's own
// retention never deletes a customer's backup (that parameter needs
// Datastore.Allocate).
var storagePrivileges = []string{"Datastore.AllocateSpace", "Datastore.Allocate"}

// RequiredPrivileges lists what server.test checks: on /vms, on the backup
// storage (/storage/<id>, or /storage when none is named) and, on PVE 8
// and later, SDN.Use on the local bridges (qemu-server checks it for every
// NIC a clone or config change carries).
func RequiredPrivileges(storage string, pveMajor int) []PrivilegeNeed {
	sp := "/storage"
	if storage != "" {
		sp += "/" + storage
	}
	out := []PrivilegeNeed{{"/vms", vmPrivileges}, {sp, storagePrivileges}}
	if pveMajor == 0 || pveMajor >= 8 {
		out = append(out, PrivilegeNeed{"/sdn/zones/localnetwork", []string{"SDN.Use"}})
	}
	return out
}

var storageIDRe = lazyre.New(`^[a-z][a-z0-9\-_.]*[a-z0-9]$`)

// TestServer runs the connection checks of server.test against the
// panel's server: the address answers, TLS is pinned or CA-verified, the
// credentials are accepted, they hold the privileges the module needs, and
// the backup storage (or, storage empty, at least one storage) holds
// backups. Failures are checks with ok=false and an actionable detail, not
// errors. Credentials are sent only after the certificate passed the
// configured policy.
func (s *Service) TestServer(ctx context.Context, actor pvekeep.Actor, srv pvekeep.Server, storage string) (ServerReport, error) {
	if err := systemOnly(actor, "server.test"); err != nil {
		return ServerReport{}, err
	}
	r := &report{}

	cfg := pve.ConfigFromServer(srv)
	if err := pve.CheckHost(srv.Host); err != nil {
		r.fail(CheckAddress, err.Error())
		return r.out(), nil
	}
	port := srv.Port
	if port == 0 {
		port = 8006
	}
	probe, err := s.probe(ctx, srv)
	var pe *pve.ProbeError
	switch {
	case errors.As(err, &pe) && pe.Stage == pve.StageHandshake:
		r.pass(CheckAddress, fmt.Sprintf("%s accepts connections on port %d", hostAddrs(probe), port))
		r.fail(CheckTLS, fmt.Sprintf("%s:%d accepted the connection but no TLS handshake (%v): is %d the Proxmox API port (normally 8006)?",
			srv.Host, port, rootCause(pe.Err), port))
		return r.out(), nil
	case err != nil:
		r.fail(CheckAddress, addressDetail(srv.Host, port, err))
		return r.out(), nil
	}
	r.pass(CheckAddress, fmt.Sprintf("%s accepts connections on port %d", hostAddrs(probe), port))
	r.rep.Fingerprint = probe.Fingerprint
	if !r.tls(cfg, probe) {
		return r.out(), nil
	}

	subject := srv.TokenID
	what := "API token " + srv.TokenID
	if subject == "" {
		subject, what = srv.Username, "user "+srv.Username
	}
	pc, err := s.dial(ctx, srv)
	if err != nil {
		r.fail(CheckToken, credentialDetail(what, err))
		return r.out(), nil
	}
	version, err := pc.Version(ctx)
	if err != nil {
		r.fail(CheckToken, credentialDetail(what, err))
		return r.out(), nil
	}
	r.rep.ProxmoxVersion = version
	r.pass(CheckToken, fmt.Sprintf("Proxmox VE %s accepted the %s", version, what))

	all, err := clusterStorages(ctx, pc)
	if err != nil {
		r.fail(CheckPrivileges, "could not list the storages: "+upstreamDetail(err))
		return r.out(), nil
	}
	// The storage privileges are checked on the named storage, or, with
	// none named (Test Connection knows no product), on the storages that
	// hold backups: one of them is enough.
	candidates := backupStorages(all)
	if storage != "" {
		candidates = []string{storage}
	}
	if storage != "" && !storageIDRe.MatchString(storage) {
		candidates = nil
	}
	r.privileges(ctx, pc, subject, candidates, version)
	if storage != "" && !storageIDRe.MatchString(storage) {
		r.fail(CheckStorage, fmt.Sprintf("%q is not a Proxmox storage id (lower-case letters, digits, '-', '_', '.'): set the product's backup storage to one of the ids under Datacenter → Storage", storage))
		return r.out(), nil
	}
	r.storage(ctx, pc, subject, storage, all)
	return r.out(), nil
}

// backupStorages are the enabled storages holding backups, sorted.
func backupStorages(all map[string]pve.Storage) []string {
	var ids []string
	for _, id := range sortedKeys(all) {
		if st := all[id]; st.Holds("backup") && st.Enabled {
			ids = append(ids, id)
		}
	}
	return ids
}

// report collects the checks of one server.test.
type report struct {
	rep ServerReport
}

func (r *report) pass(name, detail string) {
	r.rep.Checks = append(r.rep.Checks, ServerCheck{Name: name, OK: true, Detail: detail})
}

func (r *report) fail(name, detail string) {
	r.rep.Checks = append(r.rep.Checks, ServerCheck{Name: name, Detail: detail})
}

// out is the report, with the checks that did not run marked failed so
// the panel always shows all five.
func (r *report) out() ServerReport {
	all := []string{CheckAddress, CheckTLS, CheckToken, CheckPrivileges, CheckStorage}
	failed := ""
	for _, c := range r.rep.Checks {
		if !c.OK && failed == "" {
			failed = c.Name
		}
	}
	for _, name := range all[len(r.rep.Checks):] {
		r.rep.Checks = append(r.rep.Checks, ServerCheck{Name: name,
			Detail: fmt.Sprintf("not checked: the %s check failed", failed)})
	}
	r.rep.OK = true
	for _, c := range r.rep.Checks {
		r.rep.OK = r.rep.OK && c.OK
	}
	return r.rep
}

// tls judges the certificate the probe saw against the configured policy
// and says whether credentials may be sent.
func (r *report) tls(cfg pve.Config, p pve.Probe) bool {
	fp := p.Fingerprint
	pinIt := fmt.Sprintf("the certificate's fingerprint is %s; if that is what the Proxmox node shows (System → Certificates), set it in the server's Access Hash to pin it", fp)
	switch {
	case cfg.Fingerprint != "" && !validFingerprint(cfg.Fingerprint):
		r.fail(CheckTLS, "the Access Hash is not a SHA-256 certificate fingerprint; "+pinIt)
		return false
	case cfg.Fingerprint != "" && !p.PinMatches:
		r.fail(CheckTLS, fmt.Sprintf("the server presented a certificate with fingerprint %s, not the one in the Access Hash: "+
			"if the node's certificate was renewed on purpose, set the Access Hash to %s; otherwise something else answers at this address", fp, fp))
		return false
	case cfg.VerifyTLS && !p.Trusted:
		r.fail(CheckTLS, fmt.Sprintf("the certificate is not trusted (%v); %s", rootCause(p.TrustErr), pinIt))
		return false
	case cfg.Fingerprint != "" && cfg.VerifyTLS:
		r.pass(CheckTLS, fmt.Sprintf("the certificate is signed by a trusted CA and matches the pinned fingerprint %s", fp))
	case cfg.Fingerprint != "":
		r.pass(CheckTLS, fmt.Sprintf("the certificate matches the pinned fingerprint %s", fp))
	case cfg.VerifyTLS:
		r.pass(CheckTLS, fmt.Sprintf("the certificate is signed by a trusted CA for %s (fingerprint %s)", p.Host, fp))
	default:
		r.fail(CheckTLS, "the certificate is neither verified nor pinned, so the module will not send the credentials; "+pinIt)
		return false
	}
	return true
}

// privileges reads the credentials' effective privileges on each path the
// module needs and names what is missing. The backup storage's privileges
// must hold on one of storages (none: on /storage).
func (r *report) privileges(ctx context.Context, pc pve.Cluster, subject string, storages []string, version string) {
	major, _ := strconv.Atoi(strings.SplitN(version, ".", 2)[0])
	var missing []string
	granted := 0
	lacking := func(path string, privs []string) ([]string, error) {
		have, err := pc.Permissions(ctx, path)
		if err != nil {
			return nil, err
		}
		var lack []string
		for _, p := range privs {
			if !have[p] {
				lack = append(lack, p)
			}
		}
		return lack, nil
	}
	for _, need := range RequiredPrivileges("", major) {
		if need.Path == "/storage" {
			continue
		}
		lack, err := lacking(need.Path, need.Privileges)
		if err != nil {
			r.fail(CheckPrivileges, fmt.Sprintf("could not read the privileges of %s on %s: %s", subject, need.Path, upstreamDetail(err)))
			return
		}
		granted += len(need.Privileges) - len(lack)
		if len(lack) > 0 {
			missing = append(missing, fmt.Sprintf("grant %s on %s to %s", strings.Join(lack, ", "), need.Path, subject))
		}
	}
	paths := []string{"/storage"}
	if len(storages) > 0 {
		paths = nil
		for _, id := range storages {
			paths = append(paths, "/storage/"+id)
		}
	}
	var storageLack []string
	for _, path := range paths {
		lack, err := lacking(path, storagePrivileges)
		if err != nil {
			r.fail(CheckPrivileges, fmt.Sprintf("could not read the privileges of %s on %s: %s", subject, path, upstreamDetail(err)))
			return
		}
		if len(lack) == 0 {
			storageLack = nil
			granted += len(storagePrivileges)
			break
		}
		if storageLack == nil {
			storageLack = lack
		}
	}
	if storageLack != nil {
		on := paths[0]
		if len(paths) > 1 {
			on = "the backup storage (" + strings.Join(paths, " or ") + ")"
		}
		missing = append(missing, fmt.Sprintf("grant %s on %s to %s", strings.Join(storageLack, ", "), on, subject))
	}
	if len(missing) > 0 {
		r.fail(CheckPrivileges, "the module lacks privileges: "+strings.Join(missing, "; ")+
			" (a token with privilege separation has only what both it and its user are granted; see docs/proxmox-privileges.md)")
		return
	}
	r.pass(CheckPrivileges, fmt.Sprintf("%s holds all %d privileges the module needs", subject, granted))
}

// storage checks the backup storage exists, is enabled and holds backups
// (storage ""): that at least one storage does.
func (r *report) storage(ctx context.Context, pc pve.Cluster, subject, storage string, all map[string]pve.Storage) {
	backupIDs := backupStorages(all)
	if storage == "" {
		if len(backupIDs) == 0 {
			r.fail(CheckStorage, fmt.Sprintf("no storage %s can see holds backups: add the content 'VZDump backup file' to a storage (Datacenter → Storage), and grant %s Datastore.AllocateSpace on it", subject, subject))
			return
		}
		r.pass(CheckStorage, "storages holding backups: "+strings.Join(backupIDs, ", "))
		return
	}
	st, ok := all[storage]
	switch {
	case !ok:
		have, err := pc.Permissions(ctx, "/storage/"+storage)
		if err == nil && !have["Datastore.Audit"] && !have["Datastore.AllocateSpace"] {
			r.fail(CheckStorage, fmt.Sprintf("the token cannot read /storage/%s: grant Datastore.Audit (or Datastore.AllocateSpace) on /storage/%s to %s", storage, storage, subject))
			return
		}
		r.fail(CheckStorage, fmt.Sprintf("there is no storage %q on this cluster: set the product's backup storage to one that holds backups%s", storage, holdingBackups(backupIDs)))
	case !st.Enabled:
		r.fail(CheckStorage, fmt.Sprintf("the storage %q is disabled: enable it under Datacenter → Storage, or choose another%s", storage, holdingBackups(backupIDs)))
	case !st.Holds("backup"):
		r.fail(CheckStorage, fmt.Sprintf("the storage %q does not hold backups (its content is %s): add 'VZDump backup file' to its content under Datacenter → Storage, or choose another%s",
			storage, strings.Join(st.Content, ", "), holdingBackups(backupIDs)))
	default:
		kind := st.Type
		if st.Shared {
			kind += ", shared"
		}
		node, n, err := countBackups(ctx, pc, storage)
		if err != nil {
			r.fail(CheckStorage, fmt.Sprintf("the storage %q (%s) takes backups, but its backups cannot be listed (%s): grant Datastore.AllocateSpace on /storage/%s to %s and check the storage is online",
				storage, kind, upstreamDetail(err), storage, subject))
			return
		}
		r.pass(CheckStorage, fmt.Sprintf("the storage %q (%s) takes backups and can be read (%d backups on %s now)", storage, kind, n, node))
	}
}

// countBackups lists the backups on storage from the first online node
// that can: the proof the module will find the archives it makes.
func countBackups(ctx context.Context, pc pve.Cluster, storage string) (string, int, error) {
	nodes, err := pc.Nodes(ctx)
	if err != nil {
		return "", 0, err
	}
	err = fmt.Errorf("no node of the cluster is online: %w", pve.ErrTransient)
	for _, n := range nodes {
		if !n.Online {
			continue
		}
		vols, lerr := pc.ListBackups(ctx, n.Name, storage, 0)
		if lerr == nil {
			return n.Name, len(vols), nil
		}
		err = lerr
	}
	return "", 0, err
}

func holdingBackups(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	return " (holding backups: " + strings.Join(ids, ", ") + ")"
}

// clusterStorages merges every node's storage list by id: a storage is
// enabled when it is on any node, and a node-local storage of the same id
// counts once.
func clusterStorages(ctx context.Context, pc pve.Cluster) (map[string]pve.Storage, error) {
	nodes, err := pc.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]pve.Storage{}
	for _, n := range nodes {
		if !n.Online {
			continue
		}
		sts, err := pc.Storages(ctx, n.Name)
		if err != nil {
			return nil, err
		}
		for _, st := range sts {
			if prev, ok := out[st.ID]; ok {
				st.Enabled = st.Enabled || prev.Enabled
			}
			out[st.ID] = st
		}
	}
	return out, nil
}

func validFingerprint(s string) bool {
	return pve.CheckFingerprint(s) == nil
}

func hostAddrs(p pve.Probe) string {
	if len(p.Addrs) == 0 || (len(p.Addrs) == 1 && p.Addrs[0] == p.Host) {
		return p.Host
	}
	return fmt.Sprintf("%s (%s)", p.Host, strings.Join(p.Addrs, ", "))
}

// addressDetail says why the server could not be reached, and what to check.
func addressDetail(host string, port int, err error) string {
	var pe *pve.ProbeError
	if !errors.As(err, &pe) {
		return err.Error()
	}
	var dnsErr *net.DNSError
	switch {
	case pe.Stage == pve.StageResolve && errors.As(pe.Err, &dnsErr) && dnsErr.IsNotFound:
		return fmt.Sprintf("the host name %s does not resolve: check the server's hostname, or enter its IP address", host)
	case pe.Stage == pve.StageResolve:
		return fmt.Sprintf("the host name %s could not be resolved (%v): check the server's hostname and this machine's DNS", host, rootCause(pe.Err))
	case errors.Is(pe.Err, syscall.ECONNREFUSED):
		return fmt.Sprintf("%s refused the connection on port %d: check the port (Proxmox's API listens on 8006) and that pveproxy runs", host, port)
	case errors.Is(pe.Err, os.ErrDeadlineExceeded) || errors.Is(pe.Err, context.DeadlineExceeded):
		return fmt.Sprintf("no answer from %s on port %d within a few seconds: check the host and port, and that a firewall lets this WHMCS server reach it", host, port)
	default:
		return fmt.Sprintf("cannot connect to %s on port %d (%v): check the host and port, and that a firewall lets this WHMCS server reach it", host, port, rootCause(pe.Err))
	}
}

// credentialDetail says why Proxmox refused the credentials.
func credentialDetail(what string, err error) string {
	if e, ok := pvekeep.AsError(configError(err)); ok {
		return e.Message // settings that cannot work, or the certificate changed since the probe
	}
	if errors.Is(err, pve.ErrUnauthorized) {
		if strings.HasPrefix(what, "API token") {
			return fmt.Sprintf("Proxmox refused the %s: check that the server's Username holds the token id (user@realm!name), its Password the token's secret, and that the token exists and has not expired (Datacenter → Permissions → API Tokens)", what)
		}
		return fmt.Sprintf("Proxmox refused the %s: check the username (user@realm, e.g. root@pam) and password", what)
	}
	return "Proxmox did not answer as expected: " + upstreamDetail(err)
}

// rootCause is the innermost error's text (no URLs, no wrapping noise).
func rootCause(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

func systemOnly(actor pvekeep.Actor, method string) error {
	if actor.Type != pvekeep.ActorSystem && actor.Type != pvekeep.ActorAdmin {
		return pvekeep.Forbidden(method + " is for the panel's administrators")
	}
	return nil
}

// Option is one entry of a module setting's dropdown.
type Option struct {
	Value string
	Label string
}

// The kinds server.options answers.
const (
	OptionsBackupStorages = "backup_storages"
	OptionsStorages       = "storages" // alias of backup_storages
	OptionsDiskStorages   = "disk_storages"
	OptionsBridges        = "bridges"
	OptionsTemplates      = "templates"
)

// ServerOptions lists what a module setting may be set to, read from the
// server: storages holding backups, storages holding disk images, the
// nodes' bridges (deduplicated across nodes) or the VM templates.
func (s *Service) ServerOptions(ctx context.Context, actor pvekeep.Actor, srv pvekeep.Server, kind string) ([]Option, error) {
	if err := systemOnly(actor, "server.options"); err != nil {
		return nil, err
	}
	switch kind {
	case OptionsBackupStorages, OptionsStorages, OptionsDiskStorages, OptionsBridges, OptionsTemplates:
	default:
		return nil, pvekeep.InvalidInput("kind", "kind must be backup_storages, disk_storages, bridges or templates")
	}
	pc, err := s.connect(ctx, srv)
	if err != nil {
		return nil, err
	}
	switch kind {
	case OptionsBridges:
		return bridgeOptions(ctx, pc)
	case OptionsTemplates:
		return templateOptions(ctx, pc)
	}
	content := "backup"
	if kind == OptionsDiskStorages {
		content = "images"
	}
	all, err := clusterStorages(ctx, pc)
	if err != nil {
		return nil, pveError("list storages", err)
	}
	out := []Option{}
	for _, id := range sortedKeys(all) {
		st := all[id]
		if !st.Enabled || !st.Holds(content) {
			continue
		}
		label := st.ID + " (" + st.Type
		if st.Shared {
			label += ", shared"
		}
		out = append(out, Option{Value: st.ID, Label: label + ")"})
	}
	return out, nil
}

func bridgeOptions(ctx context.Context, pc pve.Cluster) ([]Option, error) {
	nodes, err := pc.Nodes(ctx)
	if err != nil {
		return nil, pveError("list nodes", err)
	}
	on := map[string][]string{} // bridge → nodes that have it
	online := 0
	for _, n := range nodes {
		if !n.Online {
			continue
		}
		online++
		bridges, err := pc.Bridges(ctx, n.Name)
		if err != nil {
			return nil, pveError("list bridges", err)
		}
		for _, b := range bridges {
			on[b] = append(on[b], n.Name)
		}
	}
	out := []Option{}
	for _, b := range sortedKeys(on) {
		label := b
		if len(on[b]) < online {
			label += " (only on " + strings.Join(on[b], ", ") + ")"
		}
		out = append(out, Option{Value: b, Label: label})
	}
	return out, nil
}

func templateOptions(ctx context.Context, pc pve.Cluster) ([]Option, error) {
	guests, err := pc.Guests(ctx)
	if err != nil {
		return nil, pveError("list templates", err)
	}
	sort.Slice(guests, func(i, j int) bool { return guests[i].VMID < guests[j].VMID })
	out := []Option{}
	for _, g := range guests {
		if !g.Template || g.Type != "qemu" {
			continue
		}
		label := strconv.Itoa(int(g.VMID))
		if g.Name != "" {
			label += " " + g.Name
		}
		out = append(out, Option{Value: strconv.Itoa(int(g.VMID)), Label: label + " (" + g.Node + ")"})
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return slices.Clip(keys)
}
