package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/pvekeep/pvekeep/internal/lazyre"
	"github.com/pvekeep/pvekeep/internal/plan"
	"github.com/pvekeep/pvekeep/internal/pve"
	"github.com/pvekeep/pvekeep/internal/pvekeep"
	"github.com/pvekeep/pvekeep/internal/reconcile"
	"github.com/pvekeep/pvekeep/internal/sshkey"
	"github.com/pvekeep/pvekeep/internal/store"
)

// service.create (WHMCS's CreateAccount). The call claims a free vmid,
// records the job and submits the full clone of the product's template;
// the ticks follow the clone, write cloud-init, bind the VM to the
// service, put it at the package with the same reconciliation as a
// restore (CPU/RAM, disks, limits, network, start) and send the welcome
// email. Each step is recorded on the job row before the next begins, so
// a process killed anywhere leaves a job another process finishes: one
// VM, one email.

// Steps of a create before the reconciliation (reconcile.Steps) takes
// over; stepClone is shared with the reinstall.
const (
	stepCloudInit = "cloudinit" // write the cloud-init options
	stepBind      = "bind"      // record the binding and the vmid custom field
)

// CreateRequest is what WHMCS knows of a new service that the plugin
// cannot read itself (service.create's own params).
type CreateRequest struct {
	// Hostname is the service's domain; "" falls back to tblhosting.domain.
	Hostname string
	// Username is the service's username: the cloud-init user. "" keeps
	// the template's default user.
	Username string
	// Password is the service's password, decrypted by WHMCS. It is hashed
	// (SHA-512 crypt) within the call and only the hash is recorded: the
	// plain text is never stored, logged or sent to Proxmox.
	Password string
	// DedicatedIP is the service's dedicated IPv4 address; "" means DHCP.
	DedicatedIP string
	// SSHKeys are the client's OpenSSH public keys, one per line.
	SSHKeys string
}

// createParams are the facts a create job records when it is made.
type createParams struct {
	Template     pvekeep.VMID `json:"template"`
	TemplateNode string       `json:"template_node"`
	Storage      string       `json:"storage"`
	Hostname     string       `json:"hostname"`
	Name         string       `json:"name"`
	// Description marks the clone as this job's: a VM found at the vmid
	// later is ours only if it carries it.
	Description  string   `json:"description"`
	User         string   `json:"user,omitempty"`
	PasswordHash string   `json:"password_hash,omitempty"`
	SSHKeys      []string `json:"ssh_keys,omitempty"`
	Address      string   `json:"address,omitempty"` // CIDR; "" = DHCP
	Gateway      string   `json:"gateway,omitempty"`
	Nameservers  []string `json:"nameservers,omitempty"`
	SearchDomain string   `json:"searchdomain,omitempty"`
}

func createParamsOf(j pvekeep.Job) (createParams, error) {
	var p createParams
	if err := json.Unmarshal(j.Params, &p); err != nil {
		return p, fmt.Errorf("read job %d params: %w", j.ID, err)
	}
	return p, nil
}

// addressOnly is the VM's IPv4 address without its prefix, "" for DHCP.
func (p createParams) addressOnly() string {
	a, _, _ := strings.Cut(p.Address, "/")
	return a
}

// cloudInit is what the cloudinit step writes.
func (p createParams) cloudInit() (pve.CloudInit, error) {
	ci := pve.CloudInit{User: p.User, PasswordHash: p.PasswordHash, SSHKeys: p.SSHKeys, SearchDomain: p.SearchDomain}
	if p.Address != "" {
		pfx, err := netip.ParsePrefix(p.Address)
		if err != nil {
			return ci, fmt.Errorf("read address %q: %w", p.Address, err)
		}
		ci.IPConfig0.Address = pfx
		if p.Gateway != "" {
			gw, err := netip.ParseAddr(p.Gateway)
			if err != nil {
				return ci, fmt.Errorf("read gateway %q: %w", p.Gateway, err)
			}
			ci.IPConfig0.Gateway = gw
		}
	}
	for _, ns := range p.Nameservers {
		a, err := netip.ParseAddr(ns)
		if err != nil {
			return ci, fmt.Errorf("read nameserver %q: %w", ns, err)
		}
		ci.Nameservers = append(ci.Nameservers, a)
	}
	return ci, nil
}

// reUnixUser is what cloud-init (useradd) takes as a user name.
var reUnixUser = lazyre.New(`^[a-z_][a-z0-9_-]{0,31}$`)

// CreateVM starts service.create. A create already running for the
// service answers with its job; one that succeeded answers with its job
// too, as long as the VM it made is still bound (WHMCS's "Create" clicked
// twice makes one VM). A service bound to a VM by other means is refused:
// the plugin never makes a second VM for it.
func (s *Service) CreateVM(ctx context.Context, c Call, r CreateRequest) (pvekeep.Job, error) {
	f, err := s.authorizeLifecycle(ctx, c)
	if err != nil {
		return pvekeep.Job{}, err
	}
	if j, ok, err := s.st.ActiveJob(ctx, f.ServiceID); err != nil {
		return pvekeep.Job{}, dbError(err)
	} else if ok {
		if j.Kind == pvekeep.KindServiceCreate {
			return j, nil
		}
		return pvekeep.Job{}, pvekeep.Locked(lockName(j.Kind), j.ID)
	}
	p, err := s.createPlan(f, r)
	if err != nil {
		return pvekeep.Job{}, err
	}
	pc, err := s.connect(ctx, c.Server)
	if err != nil {
		return pvekeep.Job{}, err
	}
	if f.VMID > 0 {
		if done, ok, err := s.boundAlready(ctx, pc, f); err != nil || ok {
			return done, err
		}
	}
	more, _ := plan.MoreFromFacts(f) // createPlan read it already
	tref, err := pc.FindVM(ctx, p.Template)
	if errors.Is(err, pve.ErrNotFound) {
		return pvekeep.Job{}, pvekeep.InvalidState(fmt.Sprintf("the operating system template %d does not exist on the Proxmox cluster", p.Template))
	}
	if err != nil {
		return pvekeep.Job{}, pveError("find template", err)
	}
	if !tref.Template {
		return pvekeep.Job{}, pvekeep.InvalidState(fmt.Sprintf("vmid %d is not a template: set the product's operating system template", p.Template))
	}
	node, tmpl, err := s.placeVM(ctx, pc, more.Node, tref, p.Storage)
	if err != nil {
		return pvekeep.Job{}, err
	}
	p.Template, p.TemplateNode = tmpl.VMID, tmpl.Node
	pl, _ := plan.FromFacts(f) // createPlan read it already
	if err := refuseUnfit(ctx, pc, node, pl.VM, true); err != nil {
		return pvekeep.Job{}, err // before a vmid is claimed: nothing was made
	}
	vmid, err := s.claimVMID(ctx, pc, f.ServiceID)
	if err != nil {
		return pvekeep.Job{}, err
	}
	p.Description = fmt.Sprintf("pvekeep: WHMCS service %d", f.ServiceID)
	raw, err := json.Marshal(p)
	if err != nil {
		return pvekeep.Job{}, fmt.Errorf("record create facts: %w", err)
	}
	return s.startLifecycle(ctx, c, f, pvekeep.KindServiceCreate, vmid, node, stepClone, raw,
		func(pc pve.Cluster, lease pvekeep.Lease, job pvekeep.Job) (pvekeep.Job, error) {
			return s.createClone(ctx, pc, c.Server, lease, job, p, 0)
		}, pc)
}

// boundAlready decides what a Create for a service bound to a VM means.
// The VM the last create made, still bound: that job is the answer (ok).
// A terminated service, or a failed create whose VM is gone: a new VM is
// made (not ok, nil). Anything else is refused: the plugin never makes a
// second VM for a service, nor takes over one it did not make.
func (s *Service) boundAlready(ctx context.Context, pc pve.Cluster, f pvekeep.ServiceFacts) (pvekeep.Job, bool, error) {
	term, err := s.life.ServiceTermination(ctx, f.ServiceID)
	if err != nil {
		return pvekeep.Job{}, false, dbError(err)
	}
	_, ferr := pc.FindVM(ctx, f.VMID)
	gone := errors.Is(ferr, pve.ErrNotFound)
	if ferr != nil && !gone {
		return pvekeep.Job{}, false, pveError("find vm", ferr)
	}
	if term.TerminatedAt != nil && gone {
		return pvekeep.Job{}, false, nil // terminated: its VM was destroyed
	}
	last, ok, err := s.lastOf(ctx, f.ServiceID, pvekeep.KindServiceCreate)
	if err != nil {
		return pvekeep.Job{}, false, err
	}
	switch {
	case ok && last.VMID == f.VMID && last.State == pvekeep.JobSucceeded && !gone:
		return last, true, nil
	case ok && last.VMID == f.VMID && last.State == pvekeep.JobFailed && gone:
		return pvekeep.Job{}, false, nil // its half-made VM was removed by hand
	case ok && last.VMID == f.VMID && last.State == pvekeep.JobFailed:
		return pvekeep.Job{}, false, pvekeep.InvalidState(fmt.Sprintf(
			"the last create left VM %d half-made: remove it in Proxmox, then run Create again", f.VMID))
	}
	return pvekeep.Job{}, false, pvekeep.InvalidState(fmt.Sprintf(
		"the service is already bound to VM %d; remove that binding (or terminate the service) before creating a new VM", f.VMID))
}

// createPlan checks the package and the request before anything is
// asked of Proxmox, and turns them into the job's facts.
func (s *Service) createPlan(f pvekeep.ServiceFacts, r CreateRequest) (createParams, error) {
	pl, err := plan.FromFacts(f)
	if err != nil {
		return createParams{}, err
	}
	more, err := plan.MoreFromFacts(f)
	if err != nil {
		return createParams{}, err
	}
	if !pl.VM.OSTemplate.Set || pl.VM.OSTemplate.Value <= 0 {
		return createParams{}, pvekeep.InvalidState("the product has no operating system template: set it in the module settings or as the configurable option \"Operating System\"")
	}
	host := strings.TrimSpace(r.Hostname)
	if host == "" {
		host = strings.TrimSpace(f.Domain)
	}
	p := createParams{
		Template: pvekeep.VMID(pl.VM.OSTemplate.Value), Storage: pl.VM.DiskStorage,
		Hostname: host, Name: hostnameLabel(host), SearchDomain: more.SearchDomain,
	}
	if u := strings.TrimSpace(r.Username); u != "" {
		if !reUnixUser.MatchString(u) {
			return createParams{}, pvekeep.InvalidInput("username", "the service's username is not a valid Linux user name (lowercase letters, digits, '_' and '-', starting with a letter, at most 32)")
		}
		p.User = u
	}
	if r.Password != "" {
		if p.PasswordHash, err = pve.HashPassword(r.Password); err != nil {
			return createParams{}, err
		}
	}
	for i, line := range strings.Split(r.SSHKeys, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			if len(line) > 16384 {
				return createParams{}, pvekeep.InvalidInput("ssh_keys", "an SSH key is too long")
			}
			// Proxmox would refuse it only at the cloud-init step, with
			// the clone made: refuse it before anything starts.
			if !sshkey.Valid(line) {
				return createParams{}, pvekeep.InvalidInput("ssh_keys",
					fmt.Sprintf("line %d of the SSH keys is not an OpenSSH public key (type, base64 key, optional comment)", i+1))
			}
			p.SSHKeys = append(p.SSHKeys, line)
		}
	}
	if ip := strings.TrimSpace(r.DedicatedIP); ip != "" {
		a, err := netip.ParseAddr(ip)
		if err != nil || !a.Is4() {
			return createParams{}, pvekeep.InvalidInput("dedicated_ip", fmt.Sprintf("the dedicated IP %q is not an IPv4 address", ip))
		}
		p.Address = netip.PrefixFrom(a, more.IPv4Prefix).String()
		if more.IPv4Gateway.IsValid() {
			p.Gateway = more.IPv4Gateway.String()
		}
	}
	for _, ns := range more.DNSServers {
		p.Nameservers = append(p.Nameservers, ns.String())
	}
	return p, nil
}

// placeVM picks the node the new VM lands on and the template it is
// cloned from: the product's node setting, else the online node with the
// most free memory. A full clone lands on another node than its
// template's only from shared storage (Proxmox's rule); with local
// storage a node qualifies when it has a template of the same name (the
// usual "one template per node" set-up), which is then the one cloned.
func (s *Service) placeVM(ctx context.Context, pc pve.Cluster, want string, tref pve.VMRef, storage string) (string, pve.VMRef, error) {
	sts, err := pc.Storages(ctx, tref.Node)
	if err != nil {
		return "", tref, pveError("list storages", err)
	}
	var st *pve.Storage
	for i := range sts {
		if sts[i].ID == storage {
			st = &sts[i]
		}
	}
	if st == nil || !st.Holds("images") {
		return "", tref, pvekeep.InvalidState(fmt.Sprintf("storage %q does not hold VM disks on node %s: set the product's disk storage", storage, tref.Node))
	}
	nodes, err := pc.Nodes(ctx)
	if err != nil {
		return "", tref, pveError("list nodes", err)
	}
	// The template each node may clone from: the product's own wherever
	// the storage is shared, else a same-named template on the node.
	from := map[string]pve.VMRef{tref.Node: tref}
	if !st.Shared {
		guests, err := pc.Guests(ctx)
		if err != nil {
			return "", tref, pveError("list guests", err)
		}
		for _, g := range guests {
			if g.Template && g.Type == "qemu" && g.Name == tref.Name && g.Node != tref.Node {
				if _, seen := from[g.Node]; !seen || g.VMID < from[g.Node].VMID {
					from[g.Node] = g.VMRef
				}
			}
		}
	}
	allowed := func(node string) (pve.VMRef, bool) {
		if st.Shared {
			return tref, true
		}
		t, ok := from[node]
		return t, ok
	}
	if want != "" && !strings.EqualFold(want, "auto") {
		for _, n := range nodes {
			if n.Name != want {
				continue
			}
			if !n.Online {
				return "", tref, pvekeep.Unavailable("proxmox", fmt.Errorf("node %s is offline", want))
			}
			t, ok := allowed(want)
			if !ok {
				return "", tref, pvekeep.InvalidState(fmt.Sprintf("the template is on node %s, storage %s is not shared and node %s has no template named %q: the VM cannot be made on node %s",
					tref.Node, storage, want, tref.Name, want))
			}
			return want, t, nil
		}
		return "", tref, pvekeep.InvalidState(fmt.Sprintf("the product's node %q is not in the Proxmox cluster", want))
	}
	best, bestFree := "", int64(-1)
	for _, n := range nodes {
		if _, ok := allowed(n.Name); n.Online && ok && n.MaxMem-n.Mem > bestFree {
			best, bestFree = n.Name, n.MaxMem-n.Mem
		}
	}
	if best == "" {
		return tref.Node, tref, nil
	}
	t, _ := allowed(best)
	return best, t, nil
}

// claimVMID finds an id no guest has and the plugin never handed out,
// and claims it in the database. Proxmox's nextid reserves nothing; the
// claim's primary key is what makes two concurrent creates end with two
// ids. It starts above every id claimed before, so it does not walk the
// plugin's whole history.
func (s *Service) claimVMID(ctx context.Context, pc pve.Cluster, id pvekeep.ServiceID) (pvekeep.VMID, error) {
	cand, err := pc.NextID(ctx, 0)
	if err != nil {
		return 0, pveError("get next free vmid", err)
	}
	top, err := s.life.MaxClaimedVMID(ctx)
	if err != nil {
		return 0, dbError(err)
	}
	checked := true // nextid's own answer needs no second look
	if top >= cand {
		cand, checked = top+1, false
	}
	for range 100 {
		if !checked {
			if _, err := pc.NextID(ctx, cand); errors.Is(err, pve.ErrAlreadyExists) {
				cand++
				continue
			} else if err != nil {
				return 0, pveError("check vmid", err)
			}
		}
		ok, err := s.life.ClaimVMID(ctx, cand, id, s.clock.Now().UTC())
		if err != nil {
			return 0, dbError(err)
		}
		if ok {
			return cand, nil
		}
		cand, checked = cand+1, false // another create got it first
	}
	return 0, pvekeep.Unavailable("proxmox", fmt.Errorf("no free vmid found after %d tries", 100))
}

// lastOf is the service's newest job of kind.
func (s *Service) lastOf(ctx context.Context, id pvekeep.ServiceID, kind pvekeep.JobKind) (pvekeep.Job, bool, error) {
	js, err := s.st.Jobs(ctx, store.JobFilter{ServiceID: id, Kinds: []pvekeep.JobKind{kind}, Limit: 1})
	if err != nil {
		return pvekeep.Job{}, false, dbError(err)
	}
	if len(js) == 0 {
		return pvekeep.Job{}, false, nil
	}
	return js[0], true, nil
}

// stepCreate drives a create through every step Proxmox lets it finish now.
func (s *Service) stepCreate(ctx context.Context, lease pvekeep.Lease, job pvekeep.Job, srv pvekeep.Server) (pvekeep.JobState, error) {
	p, err := createParamsOf(job)
	if err != nil {
		return job.State, err
	}
	pc, err := s.connect(ctx, srv)
	if msg := s.overdue(job); msg != "" {
		if err != nil {
			pc = nil
		}
		out, err := s.failCreate(ctx, pc, lease, job, msg)
		return out.State, err
	}
	if err != nil {
		return job.State, err
	}
	for range 32 { // a bound, not a budget: each step moves job.Step forward
		var next pvekeep.Job
		switch job.Step {
		case stepClone:
			next, err = s.createClone(ctx, pc, srv, lease, job, p, 60*time.Second)
		case stepCloudInit:
			next, err = s.createCloudInit(ctx, pc, lease, job, p)
		case stepBind:
			next, err = s.createBind(ctx, pc, lease, job)
		default:
			next, err = s.createReconcile(ctx, pc, lease, job)
		}
		if err != nil {
			return s.stateAfter(ctx, job, err)
		}
		if next.State.Terminal() || next.Step == job.Step {
			return next.State, nil
		}
		job = next
	}
	return job.State, nil
}

// createClone submits the full clone of the template into the job's vmid
// (once: an earlier attempt's task is adopted from the template node's
// task list) and follows it for at most wait.
func (s *Service) createClone(ctx context.Context, pc pve.Cluster, srv pvekeep.Server, lease pvekeep.Lease, job pvekeep.Job, p createParams, wait time.Duration) (pvekeep.Job, error) {
	if job.UPID == "" && job.SubmittingAt != nil {
		// The clone task carries the template's id, not the new one.
		upid, ok, err := s.findSubmitted(ctx, pc, job, p.TemplateNode, "qmclone", p.Template, srv)
		if err != nil {
			return job, err
		}
		if ok {
			s.logger.Info("adopted a task an earlier attempt submitted", "job_id", job.ID, "upid", upid)
			if job, err = s.submitted(ctx, lease, job, upid, job.Node); err != nil {
				return job, err
			}
		}
	}
	if job.UPID == "" {
		var err error
		if job, err = s.submitting(ctx, lease, job); err != nil {
			return job, err
		}
		req := pve.CloneRequest{Template: p.Template, NewID: job.VMID, Name: p.Name, Description: p.Description,
			Full: true, Storage: p.Storage}
		if job.Node != p.TemplateNode {
			req.Target = job.Node
		}
		upid, err := pc.CloneVM(ctx, p.TemplateNode, req)
		if errors.Is(err, pve.ErrAlreadyExists) {
			return s.createCloned(ctx, pc, lease, job, p) // ours only if it carries our mark
		}
		if err != nil {
			e := submitError("clone template", err)
			if pvekeep.ReasonOf(e) == pvekeep.ReasonUnavailable {
				return job, s.ambiguous(e)
			}
			return s.failJob(ctx, lease, job, "Proxmox refused to clone the operating system template: "+upstreamMessage(e)+"; no VM was made")
		}
		if job, err = s.submitted(ctx, lease, job, upid, job.Node); err != nil || wait <= 0 {
			return job, err
		}
	}
	done, failure, err := s.await(ctx, pc, lease, job.UPID, wait)
	if err != nil || !done {
		return job, err
	}
	if failure != "" {
		// qmclone removes what it made when it fails.
		return s.failJob(ctx, lease, job, "cloning the operating system template failed: "+failure+"; no VM was left behind")
	}
	return s.createCloned(ctx, pc, lease, job, p)
}

// createCloned decides what the VM at the vmid after the clone means:
// this job's when it carries the job's mark and is no longer being made.
func (s *Service) createCloned(ctx context.Context, pc pve.Cluster, lease pvekeep.Lease, job pvekeep.Job, p createParams) (pvekeep.Job, error) {
	ref, cfg, found, err := clonedVM(ctx, pc, job.VMID)
	if err != nil {
		return job, err
	}
	if !found {
		return s.failJob(ctx, lease, job, fmt.Sprintf("the clone did not produce VM %d", job.VMID))
	}
	switch {
	case cfg.Lock() == "clone" || cfg.Lock() == "create":
		return job, pvekeep.Locked(cfg.Lock(), 0) // still being made: look again next tick
	case strings.TrimSpace(cfg["description"]) != p.Description || ref.Template:
		// Someone else's guest took the id between our check and the clone.
		return s.failJob(ctx, lease, job, fmt.Sprintf("vmid %d was taken by a VM this create did not make; run Create again", job.VMID))
	}
	if ref.Node != job.Node {
		job.Node = ref.Node
	}
	s.recordFacts(ctx, store.VMFacts{ServiceID: job.ServiceID, VMID: job.VMID, Node: ref.Node, Power: ref.Status})
	now := s.clock.Now().UTC()
	if err := s.st.UpdateJob(ctx, lease, store.JobUpdate{State: pvekeep.JobRunning, Step: stepCloudInit, ProgressPct: 60,
		ClearUPID: true, Node: ref.Node, Now: now}); err != nil {
		return job, dbError(err)
	}
	s.crashPoint(stepClone)
	job.State, job.Step, job.UPID, job.ProgressPct = pvekeep.JobRunning, stepCloudInit, "", 60
	return job, nil
}

// createCloudInit writes hostname-independent cloud-init: user, password
// hash, SSH keys, ipconfig0, DNS. Writing the same values again is
// harmless, so a crash before the step is recorded just repeats it.
func (s *Service) createCloudInit(ctx context.Context, pc pve.Cluster, lease pvekeep.Lease, job pvekeep.Job, p createParams) (pvekeep.Job, error) {
	ci, err := p.cloudInit()
	if err != nil {
		return s.failCreate(ctx, pc, lease, job, "the recorded cloud-init settings are unreadable: "+err.Error())
	}
	opts, err := ci.Options()
	if err != nil {
		return s.failCreate(ctx, pc, lease, job, "the cloud-init settings cannot be used: "+err.Error())
	}
	cfg, err := pc.VMConfig(ctx, job.Node, job.VMID)
	if err != nil {
		return job, pveError("read vm config", err)
	}
	ch := pve.ConfigChange{Set: opts}
	if slot := cloudInitSlot(cfg); slot != "" {
		// A template without a cloud-init drive would boot with its own
		// user and network: give the VM one, on its disk storage. The
		// digest keeps a retry from adding a second.
		ch.Set[slot] = p.Storage + ":cloudinit"
		ch.Digest = cfg.Digest()
	}
	if err := pc.UpdateConfig(ctx, job.Node, job.VMID, ch); err != nil {
		if errors.Is(err, pve.ErrDigestMismatch) {
			// Changed since read (an earlier attempt's drive, say): read again next time.
			return job, pvekeep.Unavailable("proxmox", err)
		}
		// A 500 with Proxmox's reason (a storage without images, a bad
		// value) fails the same way every time: end the create and
		// remove the clone rather than retrying for the job's lifetime.
		if msg, ok := reconcile.Refused(err); ok {
			return s.failCreate(ctx, pc, lease, job, "Proxmox refused the cloud-init settings: "+msg)
		}
		e := pveError("write cloud-init", err)
		switch pvekeep.ReasonOf(e) {
		case pvekeep.ReasonUnavailable, pvekeep.ReasonLocked:
			return job, e
		}
		return s.failCreate(ctx, pc, lease, job, "Proxmox refused the cloud-init settings: "+upstreamMessage(e))
	}
	// Proxmox holds the password hash now: the job row keeps none
	// (DESIGN §4: no secrets in job rows).
	p.PasswordHash = ""
	params, err := json.Marshal(p)
	if err != nil {
		return job, fmt.Errorf("encode job %d params: %w", job.ID, err)
	}
	return s.advanceWith(ctx, lease, job, stepBind, 65, params)
}

// cloudInitSlot is the drive a cloud-init drive goes on when the VM has
// none ("" when it has one, or no slot is free): ide2, where Proxmox's
// cloud-init guide puts it, else the first free IDE or SATA slot.
func cloudInitSlot(cfg pve.VMConfig) string {
	for k, v := range cfg {
		if d, err := pve.ParseDrive(v); pve.IsDriveKey(k) && err == nil && strings.Contains(d.Volume(), "cloudinit") {
			return ""
		}
	}
	slots := []string{"ide2", "ide0", "ide1", "ide3"}
	for i := range 6 {
		slots = append(slots, fmt.Sprintf("sata%d", i))
	}
	for _, k := range slots {
		if cfg[k] == "" {
			return k
		}
	}
	return ""
}

// createBind records the binding in the plugin's service table and the
// product's vmid custom field: from here on the service's other calls
// find the VM (they are refused as locked until the job ends).
func (s *Service) createBind(ctx context.Context, pc pve.Cluster, lease pvekeep.Lease, job pvekeep.Job) (pvekeep.Job, error) {
	f, err := s.st.Service(ctx, job.ServiceID)
	if err != nil {
		return job, dbError(err)
	}
	if err := s.life.BindVM(ctx, job.ServiceID, f.ProductID, job.VMID, s.clock.Now().UTC()); err != nil {
		return job, dbError(err)
	}
	return s.advance(ctx, lease, job, string(reconcile.Steps[0]), 70)
}

// createReconcile puts the new VM at the package and starts it with the
// restore's reconciliation; its email step sends the welcome email.
func (s *Service) createReconcile(ctx context.Context, pc pve.Cluster, lease pvekeep.Lease, job pvekeep.Job) (pvekeep.Job, error) {
	f, err := s.st.Service(ctx, job.ServiceID)
	if err != nil {
		return job, dbError(err)
	}
	pl, err := plan.FromFacts(f)
	if err != nil {
		return s.failCreate(ctx, pc, lease, job, upstreamMessage(err))
	}
	job, out, err := s.runReconcile(ctx, pc, lease, job, f, pl, nil, &notifier{s: s, job: job, facts: f}, false)
	if err != nil {
		return job, err
	}
	if out.Failed != "" {
		return s.failCreate(ctx, pc, lease, job, "putting the new VM at its package failed at "+out.Failed)
	}
	if out.Step != reconcile.StepDone {
		return job, nil // waiting on Proxmox
	}
	return s.succeed(ctx, lease, job)
}

// failCreate ends a create whose VM exists but cannot be finished: it
// removes the half-made VM (stop, destroy with purge) and its binding, so
// that Create can simply run again; when Proxmox does not let it, the
// error names the VM for the admin to remove.
func (s *Service) failCreate(ctx context.Context, pc pve.Cluster, lease pvekeep.Lease, job pvekeep.Job, msg string) (pvekeep.Job, error) {
	if job.Step == stepClone && job.UPID == "" && job.SubmittingAt == nil {
		return s.failJob(ctx, lease, job, msg+"; no VM was made")
	}
	if pc == nil {
		return s.failJob(ctx, lease, job, fmt.Sprintf("%s; VM %d on node %s may be left half-made: remove it in Proxmox before running Create again", msg, job.VMID, job.Node))
	}
	if err := s.removeVM(ctx, pc, lease, job); err != nil {
		s.logger.Warn("remove half-made vm", "job_id", job.ID, "vmid", job.VMID, "err", err)
		return s.failJob(ctx, lease, job, fmt.Sprintf("%s; VM %d on node %s was left half-made (%s): remove it in Proxmox before running Create again",
			msg, job.VMID, job.Node, upstreamMessage(err)))
	}
	if f, err := s.st.Service(ctx, job.ServiceID); err == nil && f.VMID == job.VMID {
		if err := s.life.BindVM(ctx, job.ServiceID, f.ProductID, 0, s.clock.Now().UTC()); err != nil {
			s.logger.Warn("unbind removed vm", "job_id", job.ID, "err", err)
		}
	}
	return s.failJob(ctx, lease, job, fmt.Sprintf("%s; the half-made VM %d was removed", msg, job.VMID))
}

// removeVM stops and destroys the job's VM with its disks, waiting for
// each task a bounded time. A VM that is not there is removed already.
func (s *Service) removeVM(ctx context.Context, pc pve.Cluster, lease pvekeep.Lease, job pvekeep.Job) error {
	ref, err := pc.FindVM(ctx, job.VMID)
	if errors.Is(err, pve.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	wait := func(upid pvekeep.UPID, what string) error {
		if upid == "" {
			return nil
		}
		done, failure, err := s.await(ctx, pc, lease, upid, 60*time.Second)
		switch {
		case err != nil:
			return err
		case !done:
			return fmt.Errorf("%s did not finish in time", what)
		case failure != "":
			return fmt.Errorf("%s failed: %s", what, failure)
		}
		return nil
	}
	upid, err := pc.StopVM(ctx, ref.Node, job.VMID)
	if err == nil {
		err = wait(upid, "stop")
	}
	if err != nil {
		return err
	}
	upid, err = pc.DeleteVM(ctx, ref.Node, job.VMID, true)
	if errors.Is(err, pve.ErrNotFound) {
		return nil
	}
	if err == nil {
		err = wait(upid, "destroy")
	}
	return err
}
