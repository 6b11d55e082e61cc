package pvesim

import (
	"github.com/pvekeep/pvekeep/internal/lazyre"

	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	vzdumpLockFile = "/var/run/vzdump.lock"
	// backupReadRate is the simulated read throughput: a 10 GiB disk takes
	// about 80 s at Speed 1.
	backupReadRate = 128 << 20
	// zeroFraction is the share of a disk that is zeroes (sparse).
	zeroFraction = 0.6
)

// vzdumpJob is a validated POST /nodes/{node}/vzdump.
type vzdumpJob struct {
	node          string
	user          string
	vmids         []int // guests this node backs up, sorted
	skipped       []int // guests of other nodes
	cmdline       string
	storage       string
	compress      string
	mode          string
	notesTemplate string
	protected     bool
	remove        bool
	prune         map[string]int
	lockwait      time.Duration
	bwlimit       int
	ionice        int
}

// vzdumpCmdlineSkip are the parameters command_line leaves out.
var vzdumpCmdlineSkip = map[string]bool{
	"id": true, "vmid": true, "starttime": true, "dow": true, "stdout": true, "enabled": true, "job-id": true,
}

func (s *Sim) handleVzdump(r *request) (any, error) {
	node := r.str("node")
	if r.bool("stdout", false) {
		return nil, errParam("stdout", "option is only allowed on the command line interface.")
	}
	if r.user != rootUser {
		for _, k := range []string{"tmpdir", "dumpdir", "script", "job-id"} {
			if r.has(k) {
				return nil, errParam(k, "Only root may use this option.")
			}
		}
	}
	all := r.bool("all", false)
	switch {
	case all && r.has("vmid"):
		return nil, errParam("all", "option conflicts with option 'vmid'")
	case r.has("exclude") && !all:
		return nil, errParam("exclude", "option needs --all")
	case !all && !r.bool("stop", false) && !r.has("pool") && !r.has("vmid"):
		return nil, errParam("vmid", "property is missing")
	}
	if r.has("storage") && r.has("dumpdir") {
		return nil, errDie("cannot use options 'storage' and 'dumpdir' at the same time\n")
	}

	job := &vzdumpJob{
		node:          node,
		user:          r.user,
		storage:       r.str("storage"),
		compress:      r.str("compress"),
		mode:          r.str("mode"),
		notesTemplate: r.str("notes-template"),
		protected:     r.bool("protected", false),
		remove:        r.bool("remove", true),
		lockwait:      time.Duration(r.int("lockwait", 0)) * time.Minute,
		bwlimit:       r.int("bwlimit", 0),
		ionice:        r.int("ionice", 7),
		prune:         map[string]int{},
	}
	if job.storage == "" {
		job.storage = backupStorage // this cluster's vzdump.conf sets "storage: backup"
	}
	if job.mode == "" {
		job.mode = "snapshot"
	}
	if job.lockwait == 0 {
		// getlock: "$self->{opts}->{lockwait} || $self->{lockwait}", so 0 means the default
		job.lockwait = 180 * time.Minute
	}
	prune := r.str("prune-backups")
	if prune == "" {
		prune = "keep-all=1" // the backup storage's retention
	}
	for _, part := range strings.Split(prune, ",") {
		if k, v, ok := strings.Cut(part, "="); ok {
			job.prune[k], _ = strconv.Atoi(v)
		}
	}
	if job.prune["keep-all"] != 0 {
		job.remove = false // "avoid triggering any remove code path if keep-all is set"
	}

	s.mu.Lock()
	exclude := map[int]bool{}
	for _, id := range splitList(r.str("exclude")) {
		n, _ := strconv.Atoi(id)
		exclude[n] = true
	}
	var wanted []int
	if all {
		for id := range s.vms {
			if !exclude[id] {
				wanted = append(wanted, id)
			}
		}
	} else {
		for _, id := range splitList(r.str("vmid")) {
			n, _ := strconv.Atoi(id)
			wanted = append(wanted, n)
		}
	}
	for _, id := range wanted {
		v, ok := s.vms[id]
		switch {
		case !ok || v.node == node:
			job.vmids = append(job.vmids, id) // orphans fail on this node
		default:
			job.skipped = append(job.skipped, id)
		}
	}
	s.mu.Unlock()
	sort.Ints(job.vmids)
	sort.Ints(job.skipped)
	if len(job.vmids) == 0 && !all {
		return "OK", nil
	}

	args := []string{"vzdump"}
	args = append(args, splitList(r.str("vmid"))...)
	for _, k := range slices.Sorted(maps.Keys(r.params)) {
		if vzdumpCmdlineSkip[k] {
			continue
		}
		if v := r.str(k); v != "" {
			args = append(args, "--"+k, shellQuote(v))
		}
	}
	job.cmdline = strings.Join(args, " ")

	id := ""
	vmid := 0
	if len(job.vmids) == 1 {
		vmid = job.vmids[0]
		id = strconv.Itoa(vmid)
	}
	upid := s.startTask(taskSpec{
		node: node, typ: "vzdump", id: id, user: r.user, vmid: vmid, ownsFaults: true,
		run: func(c *taskCtx) error { return s.runVzdump(c, job) },
	})
	return upid, nil
}

// runVzdump is the vzdump worker: VZDump->new, getlock, exec_backup.
func (s *Sim) runVzdump(c *taskCtx, job *vzdumpJob) error {
	def, ok := findStorage(job.storage)
	switch {
	case !ok:
		return fmt.Errorf("could not get storage information for '%s': storage '%s' does not exist", job.storage, job.storage)
	case !def.hasContent("backup"):
		return fmt.Errorf("could not get storage information for '%s': can't use storage '%s' for backups - wrong content type", job.storage, job.storage)
	}

	release, err := s.vzdumpLock(c, job)
	if err != nil {
		return err
	}
	defer release()

	c.logf("INFO: starting new backup job: %s", job.cmdline)
	if len(job.skipped) > 0 {
		ids := make([]string, len(job.skipped))
		for i, id := range job.skipped {
			ids[i] = strconv.Itoa(id)
		}
		c.logf("INFO: skip external VMs: %s", strings.Join(ids, ", "))
	}
	failed := 0
	for _, vmid := range job.vmids {
		err := s.backupGuest(c, job, vmid)
		if c.ctx.Err() != nil {
			return c.ctx.Err()
		}
		if err != nil {
			failed++
		}
	}
	if failed > 0 {
		// As PVE: the guest's reason is only in its ERROR line; the task
		// ends "job errors" however it failed, an injected fault included.
		c.logf("INFO: Backup job finished with errors")
		return errors.New("job errors")
	}
	c.logf("INFO: Backup job finished successfully")
	return nil
}

// vzdumpLock takes the node-global vzdump lock, waiting up to lockwait
// (getlock). A timeout makes the worker exit without a task status.
func (s *Sim) vzdumpLock(c *taskCtx, job *vzdumpJob) (func(), error) {
	lock := s.nodeLocks[job.node]
	release := func() { <-lock }
	select {
	case lock <- struct{}{}:
		return release, nil
	default:
	}
	c.logf("INFO: trying to get global lock - waiting...")
	timer := time.NewTimer(s.scaled(job.lockwait))
	defer timer.Stop()
	select {
	case lock <- struct{}{}:
		c.logf("INFO: got global lock")
		return release, nil
	case <-timer.C:
		c.logf("ERROR: can't acquire lock '%s' - got timeout", vzdumpLockFile)
		return nil, errNoStatus
	case <-c.ctx.Done():
		return nil, c.ctx.Err()
	}
}

// errFaultInjected marks a guest backup failed by a task fault.
var errFaultInjected = errors.New("task fault")

// backupGuest is exec_backup_task for one VM; it logs its own failure.
func (s *Sim) backupGuest(c *taskCtx, job *vzdumpJob, vmid int) (err error) {
	began := time.Now()
	var locked bool
	defer func() {
		if locked {
			s.mu.Lock()
			if v, ok := s.vms[vmid]; ok && v.conf["lock"] == "backup" {
				delete(v.conf, "lock")
			}
			s.mu.Unlock()
		}
		if err != nil {
			msg := strings.TrimRight(err.Error(), "\n")
			if errors.Is(err, errFaultInjected) {
				msg = c.fault.ExitStatus
			}
			c.logf("ERROR: Backup of VM %d failed - %s", vmid, msg)
			c.logf("INFO: Failed at %s", strftime(c.now()))
			return
		}
		elapsed := time.Duration(float64(time.Since(began)) * s.opts.Speed)
		c.logf("INFO: Finished Backup of VM %d (%s)", vmid, vzdumpFormatTime(elapsed))
		c.logf("INFO: Backup finished at %s", strftime(c.now()))
	}()

	s.mu.Lock()
	v, ok := s.vms[vmid]
	if !ok || v.node != job.node {
		s.mu.Unlock()
		return fmt.Errorf("unable to find VM '%d'", vmid)
	}
	backupTime := c.now().Truncate(time.Second)
	if last, ok := s.lastBackup[vmid]; ok && !backupTime.After(last) {
		backupTime = last.Add(time.Second) // one archive name per second and guest
	}
	s.lastBackup[vmid] = backupTime
	name := v.conf["name"]
	running := v.running
	s.mu.Unlock()

	basename := fmt.Sprintf("vzdump-qemu-%d-%s", vmid, backupTime.Format("2006_01_02-15_04_05"))
	format := "vma"
	switch job.compress {
	case "1", "lzo":
		format += ".lzo"
	case "gzip":
		format += ".gz"
	case "zstd":
		format += ".zst"
	}
	target := fmt.Sprintf("%s/dump/%s.%s", backupPath, basename, format)

	c.logf("INFO: Starting Backup of VM %d (qemu)", vmid)
	c.logf("INFO: Backup started at %s", strftime(c.now()))
	if running {
		c.logf("INFO: status = running")
	} else {
		c.logf("INFO: status = stopped")
	}

	// lock_vm: set_lock fails on any existing lock
	s.mu.Lock()
	if l := v.conf["lock"]; l != "" {
		s.mu.Unlock()
		return fmt.Errorf("VM is locked (%s)", l)
	}
	v.conf["lock"] = "backup"
	locked = true
	conf := maps.Clone(v.conf)
	delete(conf, "lock")
	disks := v.disks()
	s.mu.Unlock()

	mode := job.mode
	if !running {
		mode = "stop"
	}
	if name != "" {
		c.logf("INFO: VM Name: %s", name)
	}
	var total int64
	for _, d := range disks {
		c.logf("INFO: include disk '%s' '%s' %s", d.key, d.volid, formatSize(d.size))
		total += d.size
	}
	c.logf("INFO: backup mode: %s", mode)
	if job.bwlimit > 0 {
		c.logf("INFO: bandwidth limit: %d KiB/s", job.bwlimit)
	}
	c.logf("INFO: ionice priority: %d", job.ionice)
	if mode == "suspend" {
		c.logf("INFO: suspending guest")
	}
	c.logf("INFO: creating vzdump archive '%s'", target)
	if !running {
		c.logf("INFO: starting kvm to execute backup task")
	}
	if err := c.sleep(2 * time.Second); err != nil {
		return err
	}
	c.logf("INFO: started backup task '%s'", randomUUID())
	if mode == "suspend" {
		c.logf("INFO: resuming VM again after 2 seconds")
	}

	failAt := -1
	if c.fault != nil && (c.fault.VMID == 0 || c.fault.VMID == vmid) {
		if _, ok := isWarnings(c.fault.ExitStatus); !ok && c.fault.ExitStatus != "OK" {
			failAt = 35
		}
	}
	if err := s.backupProgress(c, total, job.bwlimit, failAt); err != nil {
		return err
	}
	if !running {
		c.logf("INFO: stopping kvm after backup task")
	}

	nonZero := int64(float64(total) * (1 - zeroFraction))
	size := nonZero
	switch job.compress {
	case "zstd":
		size = nonZero * 45 / 100
	case "gzip":
		size = nonZero * 50 / 100
	case "1", "lzo":
		size = nonZero * 60 / 100
	}
	size += int64(vmid) * 4099 // archives differ a little
	c.logf("INFO: archive file size: %s", vzdumpFormatSize(size))

	vol := &volume{
		volid:   fmt.Sprintf("%s:backup/%s.%s", job.storage, basename, format),
		storage: job.storage,
		vmid:    vmid,
		ctime:   backupTime,
		format:  format,
		size:    size,
		config:  conf,
	}
	s.mu.Lock()
	s.volumes[vol.volid] = vol
	s.mu.Unlock()

	if job.notesTemplate != "" {
		c.logf("INFO: adding notes to backup")
		notes, err := generateNotes(job.notesTemplate, vmid, name, job.node)
		if err != nil {
			c.warnf("unable to add notes - %s", strings.TrimRight(err.Error(), "\n"))
		} else {
			s.mu.Lock()
			vol.notes = notes
			s.mu.Unlock()
		}
	}
	if job.protected {
		c.logf("INFO: marking backup as protected")
		s.mu.Lock()
		vol.protected = true
		s.mu.Unlock()
	}
	if job.remove {
		s.prune(c, job, vmid)
	}
	return nil
}

// backupProgress simulates query_backup_status_loop: one poll per
// simulated second, a status line when the percentage changed and more
// than two seconds passed.
func (s *Sim) backupProgress(c *taskCtx, total int64, bwlimit, failAt int) error {
	rate := float64(backupReadRate)
	if bwlimit > 0 && float64(bwlimit)*1024 < rate {
		rate = float64(bwlimit) * 1024
	}
	var transferred, lastTransferred int64
	lastPercent, lastTime := 0, 0
	for sec := 1; ; sec++ {
		if err := c.sleep(time.Second); err != nil {
			return err
		}
		transferred = min(total, int64(float64(sec)*rate))
		percent := 100
		if total > 0 {
			percent = int(transferred * 100 / total)
		}
		if failAt >= 0 && percent >= failAt {
			c.logf("ERROR: %s", c.fault.ExitStatus)
			return errFaultInjected
		}
		done := transferred >= total
		timediff := max(sec-lastTime, 1)
		if done || (percent != lastPercent && timediff > 2) {
			rbytes := transferred - lastTransferred
			wbytes := int64(float64(rbytes) * (1 - zeroFraction))
			c.logf("INFO: %3d%% (%s of %s) in %s, read: %s, write: %s", percent,
				renderBytes(float64(transferred), 1), renderBytes(float64(total), 1),
				renderDuration(int64(sec)), mbps(rbytes, timediff), mbps(wbytes, timediff))
			lastPercent, lastTime, lastTransferred = percent, sec, transferred
		}
		if done {
			zero := int64(float64(total) * zeroFraction)
			c.logf("INFO: backup is sparse: %s (%d%%) total zero data", renderBytes(float64(zero), 2), int(zeroFraction*100))
			c.logf("INFO: transferred %s in %d seconds (%s)", renderBytes(float64(total), 2), sec, mbps(total, sec))
			return nil
		}
	}
}

func mbps(bytes int64, secs int) string {
	if bytes <= 0 {
		return "0 B/s"
	}
	return renderBytes(float64(bytes/int64(secs)), 1) + "/s"
}

// prune applies keep-last of prune-backups to the guest's archives on the
// job's storage (other keep-* options keep everything; a known gap).
func (s *Sim) prune(c *taskCtx, job *vzdumpJob, vmid int) {
	keys := slices.Sorted(maps.Keys(job.prune))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, job.prune[k])
	}
	c.logf("INFO: prune older backups with retention: %s", strings.Join(parts, ", "))
	keepLast, ok := job.prune["keep-last"]
	pruned := 0
	if ok && len(job.prune) == 1 {
		s.mu.Lock()
		var mine []*volume
		for _, v := range s.volumes {
			if v.storage == job.storage && v.vmid == vmid && !v.protected {
				mine = append(mine, v)
			}
		}
		sort.Slice(mine, func(i, j int) bool { return mine[i].ctime.After(mine[j].ctime) })
		for i, v := range mine {
			if i >= keepLast {
				delete(s.volumes, v.volid)
				c.t.lines = append(c.t.lines, fmt.Sprintf("INFO: removing backup '%s'", v.volid))
				pruned++
			}
		}
		s.mu.Unlock()
	}
	extra := ""
	if pruned > 0 {
		extra = " not covered by keep-retention policy"
	}
	c.logf("INFO: pruned %d backup(s)%s", pruned, extra)
}

var (
	reNotesEscape = lazyre.New(`\\(.)`)
	reNotesVar    = lazyre.New(`\{\{([^\s{}]+)\}\}`)
)

// generateNotes is vzdump's notes-template expansion.
func generateNotes(tmpl string, vmid int, guestname, node string) (string, error) {
	if strings.Contains(tmpl, "\n") {
		return "", errors.New("contains a line feed")
	}
	var problems []string
	for _, m := range reNotesEscape.FindAllStringSubmatchIndex(tmpl, -1) {
		if ch := tmpl[m[2]:m[3]]; ch != "n" && ch != `\` {
			problems = append(problems, fmt.Sprintf("escape sequence '\\%s' at char %d", ch, m[0]))
		}
	}
	for _, m := range reNotesVar.FindAllStringSubmatchIndex(tmpl, -1) {
		switch name := tmpl[m[2]:m[3]]; name {
		case "cluster", "guestname", "node", "vmid":
		default:
			problems = append(problems, fmt.Sprintf("variable '%s' at char %d", name, m[2]))
		}
	}
	if len(problems) > 0 {
		return "", fmt.Errorf("found unknown: %s", strings.Join(problems, ", "))
	}
	if guestname == "" {
		guestname = fmt.Sprintf("VM %d", vmid)
	}
	out := reNotesEscape.ReplaceAllStringFunc(tmpl, func(m string) string {
		if m[1] == 'n' {
			return "\n"
		}
		return `\`
	})
	vars := map[string]string{"cluster": clusterName, "guestname": guestname, "node": node, "vmid": strconv.Itoa(vmid)}
	return reNotesVar.ReplaceAllStringFunc(out, func(m string) string {
		if v, ok := vars[m[2:len(m)-2]]; ok {
			return v
		}
		return m
	}), nil
}

// handleExtractConfig returns the guest config inside a backup archive,
// as the vma's qemu-server.conf holds it (with the drive map lines).
func (s *Sim) handleExtractConfig(r *request) (any, error) {
	volid, _, aerr := realVolumeID("", r.str("volume"))
	if aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.volumes[volid]
	if !ok {
		return nil, errDie("volume '%s' does not exist\n", volid)
	}
	conf := v.config
	if conf == nil {
		conf = map[string]string{}
	}
	text := configText(conf)
	for _, d := range (&vm{conf: conf}).disks() {
		storage, _, _ := strings.Cut(d.volid, ":")
		text += fmt.Sprintf("#qmdump#map:%s:drive-%s:%s:raw:\n", d.key, d.key, storage)
	}
	return text, nil
}
