package pvesim

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
)

// HTTPFault makes matching API requests fail or stall.
type HTTPFault struct {
	// Method matches the HTTP method; empty matches any.
	Method string `json:"method"`
	// PathRegex matches the path below /api2/json (e.g. "^/nodes/pve1/vzdump$");
	// empty matches any.
	PathRegex string `json:"path_regex"`
	// Status is the HTTP status to answer (e.g. 500, 503, 595); 0 lets the
	// request through after Delay.
	Status int `json:"status"`
	// Message is the reason phrase and body message (default: the status text).
	Message string `json:"message,omitempty"`
	// Delay is real time waited before answering (a timeout, when longer than
	// the client's).
	Delay time.Duration `json:"delay"`
	// Detached (with Status 0) carries the request out after Delay even if
	// the client gave up meanwhile: Proxmox did the work, the answer was
	// lost. Without it a client that goes away cancels the request.
	Detached bool `json:"detached,omitempty"`
	// Count is how many requests it hits; 0 means until cleared.
	Count int `json:"count"`
}

// TaskFault makes the next matching task end with ExitStatus.
type TaskFault struct {
	// Type is the task type: vzdump, imgdel, qmstart, qmstop, qmshutdown, qmconfig, …
	Type string `json:"type"`
	// VMID limits the fault to one guest's tasks; 0 matches any.
	VMID int `json:"vmid"`
	// ExitStatus is the task's exit status: an error text, "WARNINGS: N" or "OK".
	// A failing vzdump stops mid-backup, logs the error text as the guest's
	// "ERROR: Backup of VM N failed - …" line, creates no volume and ends
	// "job errors", as PVE's does.
	ExitStatus string `json:"exitstatus"`
	// Count is how many tasks it hits; 0 means until cleared.
	Count int `json:"count"`
}

type httpFault struct {
	HTTPFault
	re *regexp.Regexp
}

type taskFault struct {
	TaskFault
}

// InjectHTTPFault adds an HTTP fault.
func (s *Sim) InjectHTTPFault(f HTTPFault) error {
	re, err := regexp.Compile(f.PathRegex)
	if err != nil {
		return fmt.Errorf("compile path_regex: %w", err)
	}
	if f.Status != 0 && (f.Status < 100 || f.Status > 999) {
		return fmt.Errorf("invalid status %d", f.Status)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.httpFaults = append(s.httpFaults, &httpFault{HTTPFault: f, re: re})
	return nil
}

// InjectTaskFault adds a task fault.
func (s *Sim) InjectTaskFault(f TaskFault) error {
	if f.Type == "" || f.ExitStatus == "" {
		return fmt.Errorf("task fault needs type and exitstatus")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.taskFaults = append(s.taskFaults, &taskFault{TaskFault: f})
	return nil
}

// ClearFaults removes every HTTP and task fault.
func (s *Sim) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.httpFaults, s.taskFaults = nil, nil
}

// takeHTTPFault returns the first fault matching a request and uses it up.
func (s *Sim) takeHTTPFault(method, path string) *HTTPFault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.httpFaults {
		if f.Method != "" && !strings.EqualFold(f.Method, method) {
			continue
		}
		if !f.re.MatchString(path) {
			continue
		}
		out := f.HTTPFault
		if f.Count > 0 {
			f.Count--
			if f.Count == 0 {
				s.httpFaults = append(s.httpFaults[:i:i], s.httpFaults[i+1:]...)
			}
		}
		return &out
	}
	return nil
}

// takeTaskFault returns the first fault matching a new task and uses it
// up. Caller holds s.mu.
func (s *Sim) takeTaskFault(typ string, vmid int) *TaskFault {
	for i, f := range s.taskFaults {
		if f.Type != typ || (f.VMID != 0 && f.VMID != vmid) {
			continue
		}
		out := f.TaskFault
		if f.Count > 0 {
			f.Count--
			if f.Count == 0 {
				s.taskFaults = append(s.taskFaults[:i:i], s.taskFaults[i+1:]...)
			}
		}
		return &out
	}
	return nil
}

// SetLock sets (or with "" clears) a VM's config lock, like a stuck
// backup or snapshot would leave it.
func (s *Sim) SetLock(vmid int, lock string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vms[vmid]
	if !ok {
		return fmt.Errorf("vm %d does not exist", vmid)
	}
	if lock == "" {
		delete(v.conf, "lock")
	} else {
		v.conf["lock"] = lock
	}
	return nil
}

// VMConfig returns a copy of a VM's current config (without pending
// changes, see VMPending), for assertions.
func (s *Sim) VMConfig(vmid int) (map[string]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vms[vmid]
	if !ok {
		return nil, false
	}
	return maps.Clone(v.conf), true
}

// VMPending returns a VM's pending changes: values waiting to be applied
// and the options waiting to be deleted (the [PENDING] section).
func (s *Sim) VMPending(vmid int) (values map[string]string, deletes []string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vms[vmid]
	if !ok {
		return nil, nil, false
	}
	return maps.Clone(v.pending), slices.Sorted(maps.Keys(v.pdel)), true
}

// Volume describes a backup archive to plant with AddVolume.
type Volume struct {
	// Storage defaults to "backup".
	Storage string `json:"storage"`
	VMID    int    `json:"vmid"`
	// Time is the backup time (archive name and ctime); default now.
	Time time.Time `json:"time"`
	// Compress is "" (vma), "zstd", "gzip" or "lzo"; default "zstd".
	Compress string `json:"compress"`
	// Size in bytes; default 1.7 GiB.
	Size      int64  `json:"size"`
	Notes     string `json:"notes"`
	Protected bool   `json:"protected"`
	// Config is the guest config inside the archive; default the VM's
	// current config when the VM exists.
	Config map[string]string `json:"config"`
}

// AddVolume plants a backup archive on a storage, as if made outside the
// plugin (e.g. by an earlier owner of the same vmid).
func (s *Sim) AddVolume(in Volume) (string, error) {
	if in.Storage == "" {
		in.Storage = backupStorage
	}
	d, ok := findStorage(in.Storage)
	if !ok || !d.hasContent("backup") {
		return "", fmt.Errorf("storage %q does not hold backups", in.Storage)
	}
	if in.VMID < 100 || in.VMID > 999999999 {
		return "", fmt.Errorf("invalid vmid %d", in.VMID)
	}
	if in.Time.IsZero() {
		in.Time = s.now()
	}
	var format string
	switch in.Compress {
	case "", "zstd":
		format = "vma.zst"
	case "none", "0":
		format = "vma"
	case "gzip":
		format = "vma.gz"
	case "lzo", "1":
		format = "vma.lzo"
	default:
		return "", fmt.Errorf("unknown compress %q", in.Compress)
	}
	if in.Size <= 0 {
		in.Size = 1825361100
	}
	t := in.Time.UTC().Truncate(time.Second)
	volid := fmt.Sprintf("%s:backup/vzdump-qemu-%d-%s.%s", in.Storage, in.VMID, t.Format("2006_01_02-15_04_05"), format)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.volumes[volid]; dup {
		return "", fmt.Errorf("volume %s already exists", volid)
	}
	conf := maps.Clone(in.Config)
	if conf == nil {
		if v, ok := s.vms[in.VMID]; ok {
			conf = maps.Clone(v.conf)
			delete(conf, "lock")
		}
	}
	s.volumes[volid] = &volume{
		volid: volid, storage: in.Storage, vmid: in.VMID, ctime: t, format: format,
		size: in.Size, notes: in.Notes, protected: in.Protected, config: conf,
	}
	return volid, nil
}

// BackupConfig returns the guest config stored in a backup archive.
func (s *Sim) BackupConfig(volid string) (map[string]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.volumes[volid]
	if !ok {
		return nil, false
	}
	return maps.Clone(v.config), true
}
