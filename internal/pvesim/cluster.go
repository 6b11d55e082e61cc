package pvesim

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
)

const (
	nodeCPUs   = 16
	nodeMemory = 64 << 30
	nodeRootfs = 100 << 30
)

func (s *Sim) handleVersion(r *request) (any, error) {
	return map[string]any{"version": pveVersion, "release": pveRelease, "repoid": pveRepoID}, nil
}

// nodeUptime is the node's uptime in seconds. Caller holds s.mu.
func (s *Sim) nodeUptime(node string) int64 {
	return int64(s.now().Sub(s.nodeBoot(node)).Seconds())
}

// nodeMemUsed is a plausible used-memory figure. Caller holds s.mu.
func (s *Sim) nodeMemUsed(node string) int64 {
	used := int64(6 << 30)
	for _, v := range s.vms {
		if v.node == node && v.running {
			used += v.memoryMiB() << 20 * 2 / 5
		}
	}
	return used
}

func (s *Sim) nodeJSON(node string) map[string]any {
	return map[string]any{
		"id":              "node/" + node,
		"type":            "node",
		"node":            node,
		"status":          "online",
		"level":           "",
		"cpu":             0.0231,
		"maxcpu":          nodeCPUs,
		"mem":             s.nodeMemUsed(node),
		"maxmem":          int64(nodeMemory),
		"disk":            int64(nodeRootfs / 5),
		"maxdisk":         int64(nodeRootfs),
		"uptime":          s.nodeUptime(node),
		"ssl_fingerprint": s.info.Fingerprint,
	}
}

func (s *Sim) handleNodes(r *request) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]map[string]any, 0, len(s.nodes))
	for _, n := range s.nodes {
		out = append(out, s.nodeJSON(n))
	}
	return out, nil
}

func (s *Sim) handleNodeStatus(r *request) (any, error) {
	node := r.str("node")
	s.mu.Lock()
	defer s.mu.Unlock()
	used := s.nodeMemUsed(node)
	return map[string]any{
		"uptime":         s.nodeUptime(node),
		"cpu":            0.0231,
		"wait":           0.0004,
		"idle":           0,
		"loadavg":        []string{"0.31", "0.42", "0.40"},
		"kversion":       "Linux 6.14.11-4-pve #1 SMP PREEMPT_DYNAMIC PMX 6.14.11-4",
		"pveversion":     fmt.Sprintf("pve-manager/%s/%s", pveVersion, pveRepoID),
		"cpuinfo":        map[string]any{"cpus": nodeCPUs, "cores": nodeCPUs / 2, "sockets": 1, "model": "Simulated CPU @ 3.00GHz", "mhz": "3000.000", "hvm": "1", "user_hz": 100, "flags": "fpu vme de pse tsc msr pae"},
		"memory":         map[string]any{"total": int64(nodeMemory), "used": used, "free": nodeMemory - used, "available": nodeMemory - used},
		"swap":           map[string]any{"total": int64(8 << 30), "used": 0, "free": int64(8 << 30)},
		"rootfs":         map[string]any{"total": int64(nodeRootfs), "used": int64(nodeRootfs / 5), "free": int64(nodeRootfs * 4 / 5), "avail": int64(nodeRootfs * 3 / 4)},
		"ksm":            map[string]any{"shared": 0},
		"boot-info":      map[string]any{"mode": "efi", "secureboot": 0},
		"current-kernel": map[string]any{"sysname": "Linux", "release": "6.14.11-4-pve", "version": "#1 SMP PREEMPT_DYNAMIC PMX 6.14.11-4", "machine": "x86_64"},
	}, nil
}

func (s *Sim) handleClusterStatus(r *request) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []map[string]any{{
		"type": "cluster", "id": "cluster", "name": clusterName,
		"nodes": len(s.nodes), "quorate": 1, "version": len(s.nodes) + 2,
	}}
	for i, n := range s.nodes {
		local := 0
		if i == 0 {
			local = 1
		}
		out = append(out, map[string]any{
			"type": "node", "id": "node/" + n, "name": n, "nodeid": i + 1,
			"ip": fmt.Sprintf("10.0.0.%d", i+1), "local": local, "online": 1, "level": "",
		})
	}
	return out, nil
}

// vmResource is a qemu guest's entry of /cluster/resources, built from
// the VM's status (vmStats) as PVE's resource list is from vmstatus. Its
// fields are in the order encoding/json writes a map's keys (sorted), so
// the bytes are those of the map it replaces: a struct encodes without
// sorting or a map per VM, which at 10,000 VMs is most of the answer's
// cost.
type vmResource struct {
	CPU       float64 `json:"cpu"`
	Disk      int     `json:"disk"`
	DiskRead  int64   `json:"diskread"`
	DiskWrite int64   `json:"diskwrite"`
	ID        string  `json:"id"`
	Lock      string  `json:"lock,omitempty"`
	MaxCPU    int     `json:"maxcpu"`
	MaxDisk   int64   `json:"maxdisk"`
	MaxMem    int64   `json:"maxmem"`
	Mem       int64   `json:"mem"`
	Name      string  `json:"name"`
	NetIn     int64   `json:"netin"`
	NetOut    int64   `json:"netout"`
	Node      string  `json:"node"`
	Status    string  `json:"status"`
	Tags      string  `json:"tags,omitempty"`
	Template  int     `json:"template"`
	Type      string  `json:"type"`
	Uptime    int64   `json:"uptime"`
	VMID      int     `json:"vmid"`
}

func (s *Sim) vmResource(v *vm) vmResource {
	st := s.vmStats(v)
	res := vmResource{
		ID: "qemu/" + strconv.Itoa(v.vmid), Type: "qemu", Node: v.node, VMID: v.vmid,
		Name: st.name, Status: st.status, MaxCPU: st.cpus, CPU: st.cpu, MaxMem: st.maxmem, Mem: st.mem,
		MaxDisk: st.maxdisk, Uptime: st.uptime, NetIn: st.netin, NetOut: st.netout,
		DiskRead: st.diskread, DiskWrite: st.diskwrite, Lock: st.lock, Tags: st.tags,
	}
	if st.template {
		res.Template = 1
	}
	return res
}

func (s *Sim) handleClusterResources(r *request) (any, error) {
	typ := r.str("type")
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []any{}
	if typ == "" || typ == "vm" {
		ids := slices.Sorted(maps.Keys(s.vms))
		out = slices.Grow(out, len(ids))
		for _, id := range ids {
			if !s.canLocked(r, "/vms/"+strconv.Itoa(id), "VM.Audit") {
				continue
			}
			out = append(out, s.vmResource(s.vms[id]))
		}
	}
	if typ == "" || typ == "node" {
		for _, n := range s.nodes {
			j := s.nodeJSON(n)
			delete(j, "ssl_fingerprint")
			j["cgroup-mode"] = 2
			out = append(out, j)
		}
	}
	if typ == "" || typ == "storage" {
		for _, n := range s.nodes {
			for _, d := range storageDefs {
				if !s.canLocked(r, "/storage/"+d.id, "Datastore.Audit", "Datastore.AllocateSpace") {
					continue
				}
				shared := 0
				if d.shared {
					shared = 1
				}
				out = append(out, map[string]any{
					"id": fmt.Sprintf("storage/%s/%s", n, d.id), "type": "storage", "node": n, "storage": d.id,
					"status": "available", "plugintype": d.typ, "content": d.content, "shared": shared,
					"disk": s.used(d, n), "maxdisk": d.total,
				})
			}
		}
	}
	return out, nil
}

// nextIDUpper is the top of PVE's default next-id range (datacenter.cfg
// "next-id" unset): lower than the schema's maximum on purpose.
const nextIDUpper = 1000 * 1000

// handleNextID is pve-manager's Cluster nextid: with vmid, that id if no
// guest has it, else a parameter error; without, the lowest free id from
// 100. It only looks: nothing is reserved, so two callers may get the
// same answer (the second clone onto it fails with "config file already
// exists"). The answer is a string, as PVE's JSON writer renders a Perl
// scalar that was used as a hash key.
func (s *Sim) handleNextID(r *request) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.has("vmid") {
		vmid := r.int("vmid", 0)
		if _, taken := s.vms[vmid]; taken {
			return nil, errParam("vmid", fmt.Sprintf("VM %d already exists", vmid))
		}
		return strconv.Itoa(vmid), nil
	}
	for id := 100; id < nextIDUpper; id++ {
		if _, taken := s.vms[id]; !taken {
			return strconv.Itoa(id), nil
		}
	}
	return nil, errDie("unable to get any free VMID in range [100, %d]\n", nextIDUpper)
}
