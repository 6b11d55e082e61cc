package pvesim

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The control surface under /_sim/ mirrors the Go control methods for
// tests that drive the simulator out of process (pvekeep sim). It is
// unauthenticated: the simulator is a test tool bound to loopback.
//
//	GET    /_sim/state                      VMs, locks, volumes, tasks, faults
//	POST   /_sim/faults/http                HTTPFault (delay: "1.5s" or nanoseconds)
//	POST   /_sim/faults/task                TaskFault
//	DELETE /_sim/faults                     ClearFaults
//	PUT    /_sim/vms/{vmid}/lock            {"lock":"snapshot"} ("" clears)
//	GET    /_sim/vms/{vmid}/config          VMConfig (current values)
//	GET    /_sim/vms/{vmid}/pending         VMPending → {"values":{…},"deletes":[…]}
//	GET    /_sim/vms/{vmid}/snapshots       Snapshots → ["name",…]
//	PUT    /_sim/storages/{id}/rollback     {"newest_only":true}, see SetNewestOnlyRollback
//	POST   /_sim/volumes                    Volume → {"volid":…}
//	GET    /_sim/volumes/config?volid=…     BackupConfig (also: GET /api2/json/nodes/{node}/vzdump/extractconfig)
//	PUT    /_sim/token/privileges           {"acl":{"/vms":["VM.Audit",…],…}} (null: all), see SetTokenPrivileges
//	PUT    /_sim/token/secret               {"secret":"…"} ("" revokes the token), see SetTokenSecret
func (s *Sim) serveControl(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/_sim"), "/")
	segs := splitPath(path)
	switch {
	case r.Method == http.MethodGet && path == "/state":
		controlJSON(w, http.StatusOK, s.State())
	case r.Method == http.MethodPost && path == "/faults/http":
		var in struct {
			HTTPFault
			Delay durationJSON `json:"delay"`
		}
		if !decodeControl(w, r, &in) {
			return
		}
		in.HTTPFault.Delay = time.Duration(in.Delay)
		controlResult(w, s.InjectHTTPFault(in.HTTPFault))
	case r.Method == http.MethodPost && path == "/faults/task":
		var in TaskFault
		if !decodeControl(w, r, &in) {
			return
		}
		controlResult(w, s.InjectTaskFault(in))
	case (r.Method == http.MethodPut || r.Method == http.MethodPost) && path == "/token/privileges":
		var in struct {
			ACL map[string][]string `json:"acl"`
		}
		if !decodeControl(w, r, &in) {
			return
		}
		s.SetTokenPrivileges(in.ACL)
		controlResult(w, nil)
	case (r.Method == http.MethodPut || r.Method == http.MethodPost) && path == "/token/secret":
		var in struct {
			Secret string `json:"secret"`
		}
		if !decodeControl(w, r, &in) {
			return
		}
		s.SetTokenSecret(in.Secret)
		controlResult(w, nil)
	case len(segs) == 3 && segs[0] == "storages" && segs[2] == "rollback" && (r.Method == http.MethodPut || r.Method == http.MethodPost):
		var in struct {
			NewestOnly bool `json:"newest_only"`
		}
		if !decodeControl(w, r, &in) {
			return
		}
		if err := s.SetNewestOnlyRollback(segs[1], in.NewestOnly); err != nil {
			controlJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
			return
		}
		controlResult(w, nil)
	case r.Method == http.MethodDelete && path == "/faults":
		s.ClearFaults()
		controlResult(w, nil)
	case len(segs) == 3 && segs[0] == "vms" && (segs[2] == "lock" || segs[2] == "config" || segs[2] == "pending" || segs[2] == "snapshots"):
		vmid, err := strconv.Atoi(segs[1])
		if err != nil {
			controlJSON(w, http.StatusBadRequest, map[string]string{"error": "bad vmid"})
			return
		}
		switch {
		case segs[2] == "lock" && (r.Method == http.MethodPut || r.Method == http.MethodPost):
			var in struct {
				Lock string `json:"lock"`
			}
			if !decodeControl(w, r, &in) {
				return
			}
			if err := s.SetLock(vmid, in.Lock); err != nil {
				controlJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
				return
			}
			controlResult(w, nil)
		case segs[2] == "pending" && r.Method == http.MethodGet:
			values, deletes, ok := s.VMPending(vmid)
			if !ok {
				controlJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("vm %d does not exist", vmid)})
				return
			}
			controlJSON(w, http.StatusOK, map[string]any{"values": values, "deletes": deletes})
		case segs[2] == "snapshots" && r.Method == http.MethodGet:
			names, ok := s.Snapshots(vmid)
			if !ok {
				controlJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("vm %d does not exist", vmid)})
				return
			}
			controlJSON(w, http.StatusOK, names)
		case segs[2] == "config" && r.Method == http.MethodGet:
			conf, ok := s.VMConfig(vmid)
			if !ok {
				controlJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("vm %d does not exist", vmid)})
				return
			}
			controlJSON(w, http.StatusOK, conf)
		default:
			controlJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method not allowed"})
		}
	case r.Method == http.MethodPost && path == "/volumes":
		var in Volume
		if !decodeControl(w, r, &in) {
			return
		}
		volid, err := s.AddVolume(in)
		if err != nil {
			controlJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		controlJSON(w, http.StatusOK, map[string]string{"volid": volid})
	case r.Method == http.MethodGet && path == "/volumes/config":
		conf, ok := s.BackupConfig(r.URL.Query().Get("volid"))
		if !ok {
			controlJSON(w, http.StatusNotFound, map[string]string{"error": "no such volume"})
			return
		}
		controlJSON(w, http.StatusOK, conf)
	default:
		controlJSON(w, http.StatusNotFound, map[string]string{"error": "no such control route"})
	}
}

// durationJSON accepts "1.5s" or a number of nanoseconds.
type durationJSON time.Duration

func (d *durationJSON) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err == nil {
		v, err := time.ParseDuration(str)
		if err != nil {
			return fmt.Errorf("parse delay: %w", err)
		}
		*d = durationJSON(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("delay must be a duration string or nanoseconds: %w", err)
	}
	*d = durationJSON(n)
	return nil
}

func decodeControl(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		controlJSON(w, http.StatusBadRequest, map[string]string{"error": "decode body: " + err.Error()})
		return false
	}
	return true
}

func controlResult(w http.ResponseWriter, err error) {
	if err != nil {
		controlJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	controlJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

func controlJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// State is a snapshot of the simulator for debugging and assertions.
type State struct {
	Nodes      []NodeState   `json:"nodes"`
	VMs        []VMState     `json:"vms"`
	Volumes    []VolumeState `json:"volumes"`
	Tasks      []TaskState   `json:"tasks"`
	HTTPFaults []HTTPFault   `json:"http_faults"`
	TaskFaults []TaskFault   `json:"task_faults"`
}

// NodeState is one node; VzdumpLocked tells whether its global vzdump lock is held.
type NodeState struct {
	Name         string `json:"name"`
	VzdumpLocked bool   `json:"vzdump_locked"`
}

// VMState is one VM with its config (lock included).
type VMState struct {
	VMID    int               `json:"vmid"`
	Node    string            `json:"node"`
	Running bool              `json:"running"`
	Lock    string            `json:"lock,omitempty"`
	Config  map[string]string `json:"config"`
}

// VolumeState is one backup archive.
type VolumeState struct {
	Volid     string            `json:"volid"`
	VMID      int               `json:"vmid"`
	Format    string            `json:"format"`
	Size      int64             `json:"size"`
	Ctime     int64             `json:"ctime"`
	Notes     string            `json:"notes,omitempty"`
	Protected bool              `json:"protected"`
	Config    map[string]string `json:"config,omitempty"`
}

// TaskState is one task with its log.
type TaskState struct {
	UPID       string   `json:"upid"`
	Node       string   `json:"node"`
	Type       string   `json:"type"`
	ID         string   `json:"id"`
	User       string   `json:"user"`
	Status     string   `json:"status"`
	ExitStatus string   `json:"exitstatus,omitempty"`
	StartTime  int64    `json:"starttime"`
	Log        []string `json:"log"`
	// Elapsed is the real time the task has run (until it ended): what a
	// benchmark counts as Proxmox's share.
	Elapsed time.Duration `json:"elapsed_ns"`
}

// State returns a snapshot of VMs, locks, volumes, tasks and faults.
func (s *Sim) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	var st State
	for _, n := range s.nodes {
		st.Nodes = append(st.Nodes, NodeState{Name: n, VzdumpLocked: len(s.nodeLocks[n]) > 0})
	}
	for _, id := range slices.Sorted(maps.Keys(s.vms)) {
		v := s.vms[id]
		st.VMs = append(st.VMs, VMState{VMID: v.vmid, Node: v.node, Running: v.running, Lock: v.conf["lock"], Config: maps.Clone(v.conf)})
	}
	for _, volid := range slices.Sorted(maps.Keys(s.volumes)) {
		v := s.volumes[volid]
		st.Volumes = append(st.Volumes, VolumeState{Volid: v.volid, VMID: v.vmid, Format: v.format, Size: v.size,
			Ctime: v.ctime.Unix(), Notes: v.notes, Protected: v.protected, Config: maps.Clone(v.config)})
	}
	for _, t := range s.taskOrder {
		ts := TaskState{UPID: t.upid, Node: t.node, Type: t.typ, ID: t.id, User: t.user,
			Status: "running", StartTime: t.start.Unix(), Log: slices.Clone(t.lines)}
		ts.Elapsed = time.Since(t.born)
		if !t.running {
			ts.Status, ts.ExitStatus = "stopped", t.exit
			ts.Elapsed = t.ended.Sub(t.born)
		}
		st.Tasks = append(st.Tasks, ts)
	}
	sort.SliceStable(st.Tasks, func(i, j int) bool { return st.Tasks[i].StartTime < st.Tasks[j].StartTime })
	for _, f := range s.httpFaults {
		st.HTTPFaults = append(st.HTTPFaults, f.HTTPFault)
	}
	for _, f := range s.taskFaults {
		st.TaskFaults = append(st.TaskFaults, f.TaskFault)
	}
	return st
}
