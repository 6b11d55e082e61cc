package pvesim

import (
	"github.com/pvekeep/pvekeep/internal/lazyre"

	"fmt"
	"slices"
	"strings"
	"time"
)

// storageDef is one entry of the simulated storage.cfg.
type storageDef struct {
	id, typ, content, path string
	shared                 bool
	total                  int64
}

var storageDefs = []storageDef{
	{id: backupStorage, typ: "dir", content: "backup", path: backupPath, shared: true, total: 2 << 40},
	{id: imagesStorage, typ: "lvmthin", content: "images,rootdir", shared: false, total: 500 << 30},
	// san is LVM on a shared LUN, as many clusters have it: every node
	// sees it, so a clone may land on another node, but plain LVM has no
	// thin snapshots, so it cannot hold a linked clone.
	{id: sanStorage, typ: "lvm", content: "images", shared: true, total: 2 << 40},
}

// sanStorage is the shared images storage (see storageDefs).
const sanStorage = "san"

// hasFeature is PVE::Storage::volume_has_feature for the simulated
// plugins: lvmthin clones (links) only base volumes and snapshots and
// copies anything; plain lvm copies but never links.
func (d storageDef) hasFeature(feature string, base bool) bool {
	switch d.typ {
	case "lvmthin":
		return feature == "copy" || feature == "clone" && base
	case "lvm":
		return feature == "copy"
	}
	return false
}

func findStorage(id string) (storageDef, bool) {
	for _, d := range storageDefs {
		if d.id == id {
			return d, true
		}
	}
	return storageDef{}, false
}

func (d storageDef) hasContent(ct string) bool {
	return slices.Contains(strings.Split(d.content, ","), ct)
}

// volume is a backup archive on the backup storage.
type volume struct {
	volid     string
	storage   string
	vmid      int
	ctime     time.Time
	format    string // "vma", "vma.zst", …
	size      int64
	notes     string
	protected bool
	config    map[string]string // the guest config inside the archive
}

func (v *volume) volname() string { _, n, _ := strings.Cut(v.volid, ":"); return n }

func (v *volume) path() string {
	return backupPath + "/dump/" + strings.TrimPrefix(v.volname(), "backup/")
}

// used is how many bytes a storage holds on a node. Caller holds s.mu.
func (s *Sim) used(d storageDef, node string) int64 {
	var n int64
	switch d.id {
	case backupStorage:
		n = 37 << 30
		for _, v := range s.volumes {
			n += v.size
		}
	case imagesStorage, sanStorage:
		for _, im := range s.images {
			if (im.node == node || d.shared) && im.storage == d.id {
				n += im.size * 3 / 10
			}
		}
	}
	return n
}

func (s *Sim) storageJSON(d storageDef, node string) map[string]any {
	used := s.used(d, node)
	shared := 0
	if d.shared {
		shared = 1
	}
	return map[string]any{
		"storage":       d.id,
		"type":          d.typ,
		"content":       d.content,
		"active":        1,
		"enabled":       1,
		"shared":        shared,
		"total":         d.total,
		"used":          used,
		"avail":         d.total - used,
		"used_fraction": float64(used) / float64(d.total),
	}
}

func (s *Sim) handleStorageList(r *request) (any, error) {
	node := r.str("node")
	var want []string
	if r.has("content") {
		want = splitList(r.str("content"))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []map[string]any{}
	for _, d := range storageDefs {
		if r.has("storage") && r.str("storage") != d.id {
			continue
		}
		if !s.canLocked(r, "/storage/"+d.id, "Datastore.Audit", "Datastore.AllocateSpace") {
			continue // "Only list entries where you have 'Datastore.Audit' or 'Datastore.AllocateSpace'"
		}
		if len(want) > 0 && !slices.ContainsFunc(want, d.hasContent) {
			continue
		}
		if r.has("enabled") && !r.bool("enabled", false) {
			continue
		}
		out = append(out, s.storageJSON(d, node))
	}
	return out, nil
}

func (s *Sim) handleStorageStatus(r *request) (any, error) {
	d, ok := findStorage(r.str("storage"))
	if !ok {
		return nil, errDie("storage '%s' does not exist\n", r.str("storage"))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.storageJSON(d, r.str("node"))
	delete(j, "storage")
	delete(j, "used_fraction")
	return j, nil
}

// backupJSON is one backup as volume_list returns it.
func backupJSON(v *volume) map[string]any {
	j := map[string]any{
		"volid":   v.volid,
		"format":  v.format,
		"size":    v.size,
		"ctime":   v.ctime.Unix(),
		"content": "backup",
		"subtype": "qemu",
		"vmid":    v.vmid,
	}
	if v.notes != "" {
		first, _, _ := strings.Cut(v.notes, "\n")
		j["notes"] = first
	}
	if v.protected {
		j["protected"] = 1
	}
	return j
}

func (s *Sim) handleContentList(r *request) (any, error) {
	node, storage := r.str("node"), r.str("storage")
	d, ok := findStorage(storage)
	if !ok {
		return nil, errDie("storage '%s' does not exist\n", storage)
	}
	if !s.can(r, "/storage/"+storage, "Datastore.Audit", "Datastore.AllocateSpace") {
		return nil, errPerm("/storage/"+storage, "Datastore.Audit", "Datastore.AllocateSpace")
	}
	content := r.str("content")
	if content != "" && !d.hasContent(content) {
		return []map[string]any{}, nil
	}
	vmid := r.int("vmid", 0)
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []map[string]any{}
	if d.hasContent("backup") {
		for _, v := range s.volumes {
			if v.storage == storage && (vmid == 0 || v.vmid == vmid) {
				out = append(out, backupJSON(v))
			}
		}
	}
	if d.hasContent("images") && (content == "" || content == "images") {
		for _, im := range s.images {
			if im.node != node || im.storage != storage || (vmid != 0 && im.vmid != vmid) {
				continue
			}
			out = append(out, map[string]any{
				"volid": im.volid(), "format": "raw", "size": im.size,
				"vmid": im.vmid, "content": "images", "ctime": s.bootTime.Unix(),
			})
		}
	}
	slices.SortFunc(out, func(a, b map[string]any) int {
		return strings.Compare(strings.ToLower(a["volid"].(string)), strings.ToLower(b["volid"].(string)))
	})
	return out, nil
}

// realVolumeID is the storage API's $real_volume_id.
func realVolumeID(storage, volume string) (volid, storeid string, err *apiError) {
	if strings.Contains(volume, ":") {
		sid, _, _ := strings.Cut(volume, ":")
		if storage != "" && sid != storage {
			return "", "", errParam("volume", fmt.Sprintf("storage ID mismatch (%s != %s)\n", sid, storage))
		}
		return volume, sid, nil
	}
	if storage == "" {
		return "", "", errParam("volume", "no storage specified - incomplete volume ID")
	}
	return storage + ":" + volume, storage, nil
}

var (
	reBackupVolname = lazyre.New(`^backup/([^/]+)$`)
	reLVMVolname    = lazyre.New(`^(vm|base)-(\d+)-\S+$`)
	reArchiveName   = lazyre.New(`^vzdump-(qemu|lxc|openvz)-(\d+)-(\d{4}_\d{2}_\d{2}-\d{2}_\d{2}_\d{2})\.(vma|tar)(?:\.(zst|gz|lzo))?$`)
)

// volumeRef is a parsed volume id.
type volumeRef struct {
	volid, storeid, volname string
	def                     storageDef
}

func parseVolume(r *request) (volumeRef, *apiError) {
	volid, storeid, aerr := realVolumeID(r.str("storage"), r.str("volume"))
	if aerr != nil {
		return volumeRef{}, aerr
	}
	d, ok := findStorage(storeid)
	if !ok {
		return volumeRef{}, errDie("storage '%s' does not exist\n", storeid)
	}
	_, volname, _ := strings.Cut(volid, ":")
	switch d.typ {
	case "dir":
		if !reBackupVolname.MatchString(volname) {
			return volumeRef{}, errDie("unable to parse directory volume name '%s'\n", volname)
		}
	case "lvmthin":
		if !reLVMVolname.MatchString(volname) {
			return volumeRef{}, errDie("unable to parse lvm volume name '%s'\n", volname)
		}
	}
	return volumeRef{volid: volid, storeid: storeid, volname: volname, def: d}, nil
}

// imageVolume finds a VM disk volume by volid. Caller holds s.mu.
func (s *Sim) imageVolume(node, volid string) (*image, bool) {
	im, ok := s.images[imageKey(volid)]
	if !ok || im.node != node {
		return nil, false
	}
	return im, true
}

// imageInUse tells whether a VM config (current, pending or a snapshot)
// references a volume. Caller holds s.mu.
func (s *Sim) imageInUse(volid string) bool {
	k := imageKey(volid)
	for _, v := range s.vms {
		confs := []map[string]string{v.conf, v.pending}
		for _, sn := range v.snaps {
			confs = append(confs, sn.conf)
		}
		for _, c := range confs {
			for key, val := range c {
				if (reDiskKey.MatchString(key) || reUnusedKey.MatchString(key)) && imageKey(parseDrive(val).file) == k {
					return true
				}
			}
		}
	}
	return false
}

func (s *Sim) handleVolumeGet(r *request) (any, error) {
	ref, aerr := parseVolume(r)
	if aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ref.def.typ == "lvmthin" {
		im, ok := s.imageVolume(r.str("node"), ref.volid)
		if !ok {
			return nil, errDie("no such logical volume pve/%s\n", ref.volname)
		}
		return map[string]any{"path": "/dev/pve/" + im.name, "size": im.size, "used": im.size * 3 / 10, "format": "raw"}, nil
	}
	v, ok := s.volumes[ref.volid]
	if !ok {
		return nil, errDie("volume_size_info on '%s' failed - no format\n", ref.volid)
	}
	j := map[string]any{"path": v.path(), "size": v.size, "used": v.size, "format": v.format, "protected": 0}
	if v.protected {
		j["protected"] = 1
	}
	if v.notes != "" {
		j["notes"] = v.notes
	}
	return j, nil
}

func (s *Sim) handleVolumePut(r *request) (any, error) {
	ref, aerr := parseVolume(r)
	if aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ref.def.typ != "dir" {
		for _, attr := range []string{"notes", "protected"} {
			if r.has(attr) {
				return nil, errDie("attribute '%s' is not supported for storage type '%s'\n", attr, ref.def.typ)
			}
		}
		return nil, nil
	}
	v, ok := s.volumes[ref.volid]
	if !ok {
		return nil, errDie("volume '%s' does not exist\n", ref.volid)
	}
	if r.has("notes") {
		v.notes = r.str("notes")
	}
	if r.has("protected") {
		v.protected = r.bool("protected", false)
	}
	return nil, nil
}

func (s *Sim) handleVolumeDelete(r *request) (any, error) {
	ref, aerr := parseVolume(r)
	if aerr != nil {
		return nil, aerr
	}
	node := r.str("node")
	owner := 0
	if m := reArchiveName.FindStringSubmatch(strings.TrimPrefix(ref.volname, "backup/")); m != nil {
		fmt.Sscanf(m[2], "%d", &owner)
	} else if m := reLVMVolname.FindStringSubmatch(ref.volname); m != nil {
		fmt.Sscanf(m[2], "%d", &owner)
	}
	id := ref.storeid
	if owner != 0 {
		id = fmt.Sprintf("%d@%s", owner, ref.storeid)
	}
	upid := s.startTask(taskSpec{
		node: node, typ: "imgdel", id: id, user: r.user, vmid: owner,
		run: func(c *taskCtx) error {
			if err := c.sleep(time.Second); err != nil {
				return err
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if ref.def.typ == "lvmthin" {
				im, ok := s.imageVolume(node, ref.volid)
				if !ok {
					return fmt.Errorf("lvremove 'pve/%s' error:   Failed to find logical volume \"pve/%s\"", ref.volname, ref.volname)
				}
				if s.imageInUse(ref.volid) {
					return fmt.Errorf("lvremove 'pve/%s' error:   Logical volume pve/%s in use.", ref.volname, ref.volname)
				}
				s.freeImage(im.volid())
				c.t.lines = append(c.t.lines, fmt.Sprintf("  Logical volume \"%s\" successfully removed.", im.name))
				return nil
			}
			v, ok := s.volumes[ref.volid]
			if ok && v.protected {
				return fmt.Errorf("cannot remove protected volume '%s' on '%s'", ref.volname, ref.storeid)
			}
			if !ok {
				// free_image only warns (not counted) when the file is gone
				c.t.lines = append(c.t.lines, fmt.Sprintf("disk image '%s/dump/%s' does not exist",
					backupPath, strings.TrimPrefix(ref.volname, "backup/")))
			}
			delete(s.volumes, ref.volid)
			c.t.lines = append(c.t.lines, fmt.Sprintf("Removed volume '%s'", ref.volid))
			return nil
		},
	})
	if delay := r.int("delay", 0); delay > 0 {
		if done, exit := s.awaitTask(r.ctx, upid, time.Duration(delay)*time.Second); done {
			if t := statusType(exit); t == "ok" || t == "warning" {
				return nil, nil
			}
			return nil, errDie("%s\n", exit)
		}
	}
	return upid, nil
}
