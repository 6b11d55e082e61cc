package pvesim

import (
	"github.com/pvekeep/pvekeep/internal/lazyre"

	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Pending config, as qemu-server keeps it: an update writes every change
// into the [PENDING] section first (update_vm_api), then applies what it
// can: everything on a stopped VM (vmconfig_apply_pending), only what can
// be hotplugged on a running one (vmconfig_hotplug_pending, with the
// default "hotplug: network,disk,usb"). The rest waits for the next stop or
// start (vm_stop_cleanup, vm_start).

var (
	reUnusedKey = lazyre.New(`^unused\d+$`)
	reNetKey    = lazyre.New(`^net\d+$`)
	reNewDisk   = lazyre.New(`^(?:([^/:\s]+):)?(\d+(?:\.\d+)?)$`)
)

// fastPlug are the options a running VM takes at once ($fast_plug_option
// plus the cloud-init options).
var fastPlug = map[string]bool{
	"description": true, "hookscript": true, "lock": true, "migrate_downtime": true, "migrate_speed": true,
	"name": true, "onboot": true, "protection": true, "shares": true, "startup": true, "tags": true,
	"vmstatestorage": true, "cicustom": true, "cipassword": true, "citype": true, "ciupgrade": true,
	"ciuser": true, "nameserver": true, "searchdomain": true, "sshkeys": true,
}

func isFastPlug(k string) bool { return fastPlug[k] || strings.HasPrefix(k, "ipconfig") }

// rawConfig is the config file with its [PENDING] and snapshot sections,
// which PVE's digest covers.
func (v *vm) rawConfig() string {
	text := configText(v.conf)
	if len(v.pending) > 0 || len(v.pdel) > 0 {
		p := maps.Clone(v.pending)
		if p == nil {
			p = map[string]string{}
		}
		if len(v.pdel) > 0 {
			p["delete"] = v.pendingDeleteString()
		}
		text += "\n[PENDING]\n" + configText(p)
	}
	for _, name := range slices.Sorted(maps.Keys(v.snaps)) {
		text += "\n[" + name + "]\n" + configText(v.snaps[name].conf)
	}
	return text
}

func (v *vm) digest() string { return configDigest(v.rawConfig()) }

// pendingDeleteString is print_pending_delete: "!" marks a forced delete.
func (v *vm) pendingDeleteString() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(v.pdel)) {
		if v.pdel[k] {
			parts = append(parts, "!"+k)
		} else {
			parts = append(parts, k)
		}
	}
	return strings.Join(parts, ",")
}

// mergedConfig is load_current_config without "current": pending values
// in, pending deletes out.
func (v *vm) mergedConfig() map[string]string {
	out := maps.Clone(v.conf)
	for k, val := range v.pending {
		out[k] = val
	}
	for k := range v.pdel {
		delete(out, k)
	}
	return out
}

// volumeOwner is the vmid a volume name belongs to (parse_volname).
func volumeOwner(volid string) int {
	k := imageKey(volid)
	_, name, _ := strings.Cut(k, ":")
	if m := reDiskName.FindStringSubmatch(name); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	if m := reCloudInitName.FindStringSubmatch(name); m != nil && m[1] != "" {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

// addUnused is vmconfig_register_unused_drive + add_unused_volume.
func (v *vm) addUnused(d driveSpec) {
	if d.isCDROM() || !strings.Contains(d.file, ":") || volumeOwner(d.file) != v.vmid {
		return
	}
	for i := 0; i < 256; i++ {
		if v.conf[fmt.Sprintf("unused%d", i)] == d.file {
			return
		}
	}
	for i := 0; i < 256; i++ {
		k := fmt.Sprintf("unused%d", i)
		if _, ok := v.conf[k]; !ok {
			v.conf[k] = d.file
			return
		}
	}
}

// cleanupUnused drops unusedN entries whose volume a drive uses again, as
// write_vm_config does.
func (v *vm) cleanupUnused() {
	used := map[string]bool{}
	for _, m := range []map[string]string{v.conf, v.pending} {
		for k, val := range m {
			if reDiskKey.MatchString(k) {
				used[parseDrive(val).file] = true
			}
		}
	}
	for k, val := range v.conf {
		if reUnusedKey.MatchString(k) && used[val] {
			delete(v.conf, k)
		}
	}
}

// cleanupPending is cleanup_pending: drop pending values equal to the
// current ones and deletes of options that are not set.
func (v *vm) cleanupPending() {
	for k, val := range v.pending {
		if cur, ok := v.conf[k]; ok && cur == val {
			delete(v.pending, k)
		}
	}
	for k := range v.pdel {
		if _, ok := v.conf[k]; !ok {
			delete(v.pdel, k)
		}
	}
}

// detachDrive is vmconfig_delete_or_detach_drive. Caller holds s.mu.
func (s *Sim) detachDrive(v *vm, key string, force bool) {
	d := parseDrive(v.conf[key])
	if force && !d.isCDROM() {
		if volumeOwner(d.file) == v.vmid {
			s.freeImage(d.file)
		}
		return
	}
	v.addUnused(d)
}

// applyPending is vmconfig_apply_pending (a stopped VM). Caller holds s.mu.
func (s *Sim) applyPending(v *vm) {
	for _, k := range slices.Sorted(maps.Keys(v.pdel)) {
		if _, ok := v.conf[k]; ok && reDiskKey.MatchString(k) {
			s.detachDrive(v, k, v.pdel[k])
		}
		delete(v.conf, k)
	}
	v.pdel = map[string]bool{}
	v.cleanupPending()
	for _, k := range slices.Sorted(maps.Keys(v.pending)) {
		if old, ok := v.conf[k]; ok && reDiskKey.MatchString(k) {
			v.addUnused(parseDrive(old))
		}
		v.conf[k] = v.pending[k]
	}
	v.pending = map[string]string{}
	v.cleanupUnused()
}

// hotplugPending is vmconfig_hotplug_pending with "hotplug: network,disk,usb"
// (the default). It returns the "hotplug problem" errors. Caller holds s.mu.
func (s *Sim) hotplugPending(v *vm) map[string]string {
	errs := map[string]string{}
	for k, val := range v.pending {
		if isFastPlug(k) {
			v.conf[k] = val
			delete(v.pending, k)
		}
	}
	coldBus := regexp.MustCompile(`^(efidisk|ide|sata|tpmstate)\d+$`)
	for _, k := range slices.Sorted(maps.Keys(v.pdel)) {
		ok := false
		switch {
		case isFastPlug(k), k == "balloon", k == "cpuunits", k == "cpulimit", reNetKey.MatchString(k):
			ok = true
		case reDiskKey.MatchString(k) && !coldBus.MatchString(k):
			if _, has := v.conf[k]; has {
				s.detachDrive(v, k, v.pdel[k])
			}
			ok = true
		}
		if ok {
			delete(v.conf, k)
			delete(v.pdel, k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(v.pending)) {
		val := v.pending[k]
		ok := false
		switch {
		case reNetKey.MatchString(k):
			if b := parseNet(val).opts["bridge"]; b != "" && !hasBridge(b) {
				errs[k] = fmt.Sprintf("hotplug problem - bridge '%s' does not exist\n", b)
				continue
			}
			ok = true
		case reDiskKey.MatchString(k):
			if strings.HasPrefix(k, "efidisk") || strings.HasPrefix(k, "tpmstate") {
				break
			}
			old, had := v.conf[k]
			if !had {
				ok = !coldBus.MatchString(k)
				break
			}
			od, nd := parseDrive(old), parseDrive(val)
			if od.opts["media"] != nd.opts["media"] {
				errs[k] = "hotplug problem - unable to change media type\n"
				continue
			}
			switch {
			case od.isCDROM():
				ok = true
			case od.file != nd.file:
				v.addUnused(od)
				ok = true
			default:
				ok = true
				for _, o := range driveColdOpts {
					if od.opts[o] != nd.opts[o] {
						ok = false // not hotpluggable: stays pending
					}
				}
				// bandwidth and IOPS limits go live (set_io_throttle)
			}
		case k == "cpuunits", k == "cpulimit":
			ok = true
		case k == "balloon":
			oldOn := v.conf["balloon"] != "0"
			ok = oldOn == (val != "0")
		}
		if ok {
			v.conf[k] = val
			delete(v.pending, k)
		}
	}
	v.cleanupUnused()
	return errs
}

// configUpdate is a parsed config PUT/POST.
type configUpdate struct {
	set     map[string]string
	deletes []string
	reverts []string
	digest  string
	skip    bool
	force   bool
	args    string // "-cores 2 -delete foo", for the task log
}

// configControlParams are the update parameters that are not VM options.
var configControlParams = map[string]bool{
	"node": true, "vmid": true, "digest": true, "delete": true, "revert": true,
	"skiplock": true, "force": true, "background_delay": true, "import-working-storage": true,
	"skip_cloud_init": true,
}

func (s *Sim) parseConfigUpdate(r *request) (*configUpdate, *apiError) {
	if err := rootOnly(r, "skiplock"); err != nil {
		return nil, err
	}
	u := &configUpdate{set: map[string]string{}, digest: r.str("digest"), skip: r.bool("skiplock", false), force: r.bool("force", false)}
	var args []string
	for _, k := range slices.Sorted(maps.Keys(r.params)) {
		switch {
		case k == "node" || k == "vmid" || k == "digest" || k == "background_delay":
			continue
		case k == "cipassword":
			args = append(args, "-"+k, "<hidden>")
		default:
			args = append(args, "-"+k, r.str(k))
		}
		if !configControlParams[k] {
			u.set[k] = r.str(k)
		}
	}
	schema := s.schema.paths["/nodes/{node}/qemu/{vmid}/config"]["PUT"].Parameters
	for _, opt := range splitList(r.str("revert")) {
		if schema.lookup(opt) == nil || configControlParams[opt] {
			return nil, errParam("revert", fmt.Sprintf("unknown option '%s'", opt))
		}
		if _, ok := u.set[opt]; ok {
			return nil, errParam("delete", fmt.Sprintf("you can't use '-%s' and -revert %s' at the same time", opt, opt))
		}
		u.reverts = append(u.reverts, opt)
	}
	for _, opt := range splitList(r.str("delete")) {
		if opt == "cdrom" {
			opt = "ide2"
		}
		if _, ok := u.set[opt]; ok {
			return nil, errParam("delete", fmt.Sprintf("you can't use '-%s' and -delete %s' at the same time", opt, opt))
		}
		if slices.Contains(u.reverts, opt) {
			return nil, errParam("revert", fmt.Sprintf("you can't use '-delete %s' and -revert %s' at the same time", opt, opt))
		}
		if schema.lookup(opt) == nil || configControlParams[opt] {
			return nil, errParam("delete", fmt.Sprintf("unknown option '%s'", opt))
		}
		u.deletes = append(u.deletes, opt)
	}
	if keys, ok := u.set["sshkeys"]; ok {
		if aerr := checkSSHKeys(keys); aerr != nil {
			return nil, aerr
		}
	}
	if len(u.set) == 0 && len(u.deletes) == 0 && len(u.reverts) == 0 {
		return nil, errDie("no options specified\n")
	}
	for k, val := range u.set {
		switch {
		case reNetKey.MatchString(k):
			n := parseNet(val) // add a MAC where none is given
			if n.mac == "" {
				n.mac = randomMAC()
			}
			u.set[k] = n.String()
		case reDiskKey.MatchString(k):
			d := parseDrive(val)
			if sid, name, _ := strings.Cut(d.file, ":"); name == "cloudinit" {
				if _, ok := findStorage(sid); !ok {
					return nil, errDie("storage '%s' does not exist\n", sid)
				}
			}
			if m := reNewDisk.FindStringSubmatch(d.file); m != nil && !d.isCDROM() {
				sid := m[1]
				def, ok := findStorage(sid)
				if !ok {
					return nil, errDie("storage '%s' does not exist\n", sid)
				}
				if !def.hasContent("images") {
					return nil, errParam("storage", fmt.Sprintf("storage '%s' does not support vm images", sid))
				}
			}
		case k == "vmgenid" && val == "1":
			u.set[k] = randomUUID()
		}
	}
	u.args = strings.Join(args, " ")
	return u, nil
}

// check is the early check of update_vm_api. Caller holds s.mu.
func (u *configUpdate) check(v *vm) *apiError {
	if u.digest != "" && u.digest != v.digest() {
		return errDie("checksum mismatch (file change by other user?)\n")
	}
	if l := v.conf["lock"]; l != "" && !u.skip {
		return errDie("VM is locked (%s)\n", l)
	}
	return nil
}

// update is update_vm_api's updatefn: write the changes into [PENDING],
// then hotplug or apply them. Caller holds s.mu and ran check.
func (s *Sim) update(v *vm, u *configUpdate) *apiError {
	if v.pending == nil {
		v.pending = map[string]string{}
	}
	if v.pdel == nil {
		v.pdel = map[string]bool{}
	}
	for _, k := range u.reverts {
		delete(v.pending, k)
		delete(v.pdel, k)
	}
	for _, k := range u.deletes {
		val, inConf := v.conf[k]
		pval, inPending := v.pending[k]
		if !inConf && !inPending {
			continue // "cannot delete '$opt' - not set in current configuration!"
		}
		if !inConf {
			val = pval
		}
		delete(v.pending, k)
		switch {
		case reUnusedKey.MatchString(k):
			if v.conf["protection"] == "1" {
				return errDie("can't remove unused disk '%s' - protection mode enabled\n", parseDrive(val).file)
			}
			if volumeOwner(val) == v.vmid {
				s.freeImage(val)
			}
			delete(v.conf, k)
			continue
		case reDiskKey.MatchString(k):
			if v.conf["protection"] == "1" {
				return errDie("can't remove drive '%s' - protection mode enabled\n", k)
			}
			if inPending {
				v.addUnused(parseDrive(pval))
			}
		case k == "tags":
			delete(v.conf, k)
			continue
		}
		if inConf {
			v.pdel[k] = u.force
		}
	}
	for _, k := range slices.Sorted(maps.Keys(u.set)) {
		val := u.set[k]
		if cur, ok := v.pending[k]; ok && cur == val {
			continue
		}
		if reDiskKey.MatchString(k) {
			if old, ok := v.pending[k]; ok {
				v.addUnused(parseDrive(old))
			}
			val = s.createDisk(v, val)
		}
		if k == "cipassword" {
			ostype := v.conf["ostype"]
			if o, ok := u.set["ostype"]; ok {
				ostype = o
			}
			v.conf[k] = hashCIPassword(val, ostype)
			continue
		}
		v.pending[k] = val
		delete(v.pdel, k)
	}
	v.cleanupPending()
	if len(v.pending) == 0 && len(v.pdel) == 0 {
		v.cleanupUnused()
		return nil
	}
	if v.running {
		if errs := s.hotplugPending(v); len(errs) > 0 {
			return errParams(errs)
		}
		return nil
	}
	s.applyPending(v)
	return nil
}

// createDisk is create_disks for one drive: "local-lvm:4" allocates a
// 4 GiB volume; an existing volume (an unusedN put back) gets its size
// from the storage (volume_size_info); anything else is kept as given.
// Caller holds s.mu.
func (s *Sim) createDisk(v *vm, val string) string {
	d := parseDrive(val)
	if sid, name, _ := strings.Cut(d.file, ":"); name == "cloudinit" {
		im := s.allocCloudInit(v.node, sid, v.vmid)
		d.file = im.volid()
		d.opts["media"] = "cdrom"
		return d.String()
	}
	m := reNewDisk.FindStringSubmatch(d.file)
	if d.isCDROM() {
		return val
	}
	if m == nil {
		if _, sized := d.opts["size"]; !sized {
			if im, ok := s.images[imageKey(d.file)]; ok {
				d.opts["size"] = formatSize(im.size)
				return d.String()
			}
		}
		return val
	}
	storage := m[1]
	gib, _ := strconv.ParseFloat(m[2], 64)
	size := int64(gib * (1 << 30))
	im := s.allocImage(v.node, storage, v.vmid, size)
	d.file = im.volid()
	delete(d.opts, "format")
	d.opts["size"] = formatSize(size)
	return d.String()
}

func (s *Sim) handleVMConfigGet(r *request) (any, error) {
	if r.has("snapshot") && r.bool("current", false) {
		return nil, errParams(map[string]string{
			"snapshot": "cannot use 'snapshot' parameter with 'current'",
			"current":  "cannot use 'snapshot' parameter with 'current'",
		})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.vmOn(r.str("node"), r.int("vmid", 0))
	if err != nil {
		return nil, err
	}
	conf := v.mergedConfig()
	if r.bool("current", false) {
		conf = maps.Clone(v.conf)
	}
	if snap := r.str("snapshot"); snap != "" {
		sn, ok := v.snaps[snap]
		if !ok {
			return nil, errDie("snapshot '%s' does not exist\n", snap)
		}
		conf = maps.Clone(sn.conf)
	}
	returns := s.schema.paths["/nodes/{node}/qemu/{vmid}/config"]["GET"].Returns
	out := map[string]any{"digest": v.digest()}
	for k, val := range conf {
		out[k] = returns.typedValue(k, val)
	}
	if _, ok := out["cipassword"]; ok {
		out["cipassword"] = "**********"
	}
	return out, nil
}

// handleVMPending is config_with_pending_array.
func (s *Sim) handleVMPending(r *request) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.vmOn(r.str("node"), r.int("vmid", 0))
	if err != nil {
		return nil, err
	}
	out := []map[string]any{{"key": "digest", "value": v.digest()}}
	keys := map[string]bool{}
	for _, m := range []map[string]string{v.conf, v.pending} {
		for k := range m {
			keys[k] = true
		}
	}
	for k := range v.pdel {
		keys[k] = true
	}
	// values come typed, as parse_vm_config's check_type leaves them
	// (integers and booleans are JSON numbers), whatever the schema says
	returns := s.schema.paths["/nodes/{node}/qemu/{vmid}/config"]["GET"].Returns
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		item := map[string]any{"key": k}
		if val, ok := v.conf[k]; ok {
			item["value"] = returns.typedValue(k, val)
		}
		if val, ok := v.pending[k]; ok {
			item["pending"] = returns.typedValue(k, val)
		}
		if force, ok := v.pdel[k]; ok {
			item["delete"] = 1
			if force {
				item["delete"] = 2
			}
		}
		if k == "cipassword" {
			if _, ok := item["value"]; ok {
				item["value"] = "**********"
			}
		}
		out = append(out, item)
	}
	return out, nil
}

// flockBusy reports a VM whose config file lock a long task holds (a
// restore, clone or destroy): lock_config waits 10 s, then fails.
func (v *vm) flockBusy() *apiError {
	if v.flock != "" {
		return errDie("can't lock file '/var/lock/qemu-server/lock-%d.conf' - got timeout\n", v.vmid)
	}
	return nil
}

func (s *Sim) handleVMConfigSync(r *request) (any, error) {
	u, aerr := s.parseConfigUpdate(r)
	if aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, aerr := s.vmOn(r.str("node"), r.int("vmid", 0))
	if aerr != nil {
		return nil, aerr
	}
	if aerr := v.flockBusy(); aerr != nil {
		return nil, aerr
	}
	if aerr := u.check(v); aerr != nil {
		return nil, aerr
	}
	if aerr := s.update(v, u); aerr != nil {
		return nil, aerr
	}
	return nil, nil
}

func (s *Sim) handleVMConfigAsync(r *request) (any, error) {
	u, aerr := s.parseConfigUpdate(r)
	if aerr != nil {
		return nil, aerr
	}
	node, vmid := r.str("node"), r.int("vmid", 0)
	s.mu.Lock()
	v, aerr := s.vmOn(node, vmid)
	if aerr == nil {
		aerr = u.check(v)
	}
	s.mu.Unlock()
	if aerr != nil {
		return nil, aerr
	}
	upid := s.startTask(taskSpec{
		node: node, typ: "qmconfig", id: strconv.Itoa(vmid), user: r.user, vmid: vmid,
		run: func(c *taskCtx) error {
			if err := c.sleep(500 * time.Millisecond); err != nil {
				return err
			}
			c.logf("update VM %d: %s", vmid, u.args)
			s.mu.Lock()
			defer s.mu.Unlock()
			v, aerr := s.vmOn(node, vmid)
			if aerr != nil {
				return aerr
			}
			if aerr := v.flockBusy(); aerr != nil {
				return aerr
			}
			if aerr := u.check(v); aerr != nil {
				return aerr
			}
			if aerr := s.update(v, u); aerr != nil {
				// raise_param_exc in a worker: the message, then the errors
				msg := strings.TrimRight(aerr.message, "\n")
				for _, k := range slices.Sorted(maps.Keys(aerr.errors)) {
					msg += fmt.Sprintf("\n%s: %s", k, strings.TrimRight(aerr.errors[k], "\n"))
				}
				c.t.lines = append(c.t.lines, strings.Split(msg, "\n")...)
				return fmt.Errorf("%s", strings.TrimRight(aerr.message, "\n"))
			}
			return nil
		},
	})
	if delay := r.int("background_delay", 0); delay > 0 {
		if done, exit := s.awaitTask(r.ctx, upid, time.Duration(delay)*time.Second); done {
			if t := statusType(exit); t == "ok" || t == "warning" {
				return nil, nil
			}
			return nil, errDie("failed to update VM %d: %s\n", vmid, exit)
		}
	}
	return upid, nil
}
