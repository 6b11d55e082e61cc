package pve

import (
	"github.com/pvekeep/pvekeep/internal/lazyre"

	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// prop is one option of a PVE property string ("a,k=v,…"). key "" is the
// format's default key written bare (a drive's volume, a NIC's model).
type prop struct{ key, val string }

// splitProps splits a property string the way PVE's parse_property_string
// does: parts split on ",", blank parts skipped, "k=v" split at the first
// "=" (so v may hold "="), a part without "=" is the default key. Keys may
// not repeat and values may not be empty.
func splitProps(s string) ([]prop, error) {
	var out []prop
	seen := map[string]bool{}
	bare := false
	for _, part := range strings.Split(s, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			if bare {
				return nil, fmt.Errorf("two values without a key (%q)", part)
			}
			bare = true
			out = append(out, prop{"", part})
			continue
		}
		if k == "" || v == "" {
			return nil, fmt.Errorf("malformed option %q", part)
		}
		if seen[k] {
			return nil, fmt.Errorf("duplicate key %q", k)
		}
		seen[k] = true
		out = append(out, prop{k, v})
	}
	return out, nil
}

func joinProps(props []prop) string {
	parts := make([]string, 0, len(props))
	for _, p := range props {
		if p.key == "" {
			parts = append(parts, p.val)
		} else {
			parts = append(parts, p.key+"="+p.val)
		}
	}
	return strings.Join(parts, ",")
}

// checkOption refuses what cannot be written into a property string.
func checkOption(key, val string) error {
	if key == "" || strings.ContainsAny(key, ",= ") {
		return fmt.Errorf("invalid option name %q", key)
	}
	if val == "" || strings.Contains(val, ",") {
		return fmt.Errorf("invalid value %q for %s (empty or holds a comma)", val, key)
	}
	return nil
}

// Drive is a parsed drive string of a guest config (scsi0, virtio1, …), e.g.
// "local-lvm:vm-100-disk-0,iothread=1,size=10G,mbps_rd=100"
// (qemu-server's PVE/QemuServer/Drive.pm). Every option is kept in its
// original order, unknown ones included, so String writes back exactly what
// was read plus the changes made; new options go at the end. The zero
// Drive is not valid: use ParseDrive or NewDiskDrive.
type Drive struct {
	props []prop
}

// ParseDrive parses a drive string. It needs the volume (written bare, or
// as file= or volume=) and checks the options this package reads: size
// must be a PVE disk size, the throttling options (mbps*, bps*, iops*)
// non-negative numbers. Anything else is kept unchecked.
func ParseDrive(s string) (Drive, error) {
	props, err := splitProps(s)
	if err != nil {
		return Drive{}, fmt.Errorf("parse drive %q: %w", s, err)
	}
	d := Drive{props: props}
	volumes := 0
	for _, p := range props {
		switch {
		case p.key == "" || p.key == "file" || p.key == "volume":
			volumes++
		case p.key == "size":
			if _, err := ParseSize(p.val); err != nil {
				return Drive{}, fmt.Errorf("parse drive %q: %w", s, err)
			}
		case throttleKeyRe.MatchString(p.key):
			if _, err := parseLimit(p.val); err != nil {
				return Drive{}, fmt.Errorf("parse drive %q: %s: %w", s, p.key, err)
			}
		}
	}
	switch {
	case volumes == 0:
		return Drive{}, fmt.Errorf("parse drive %q: no volume", s)
	case volumes > 1:
		return Drive{}, fmt.Errorf("parse drive %q: more than one volume", s)
	}
	return d, nil
}

// NewDiskDrive is the drive string that makes PVE allocate a new disk of
// gib GiB on storage when set in a config update ("local-lvm:4"; DESIGN §6).
// Options (limits, iothread, …) may be added before String.
func NewDiskDrive(storage string, gib int64) Drive {
	return Drive{props: []prop{{"", storage + ":" + strconv.FormatInt(gib, 10)}}}
}

// String writes the drive back as PVE reads it.
func (d Drive) String() string { return joinProps(d.props) }

func (d Drive) index(key string) int {
	for i, p := range d.props {
		if p.key == key {
			return i
		}
	}
	return -1
}

func (d Drive) volumeIndex() int {
	for i, p := range d.props {
		if p.key == "" || p.key == "file" || p.key == "volume" {
			return i
		}
	}
	return -1
}

// Volume is the drive's backing volume: "local-lvm:vm-100-disk-0",
// "none" for an empty CD-ROM, a path, or "storage:GiB" for a disk to be
// allocated.
func (d Drive) Volume() string {
	if i := d.volumeIndex(); i >= 0 {
		return d.props[i].val
	}
	return ""
}

// Storage is the storage id of the volume ("" for a path or "none").
func (d Drive) Storage() string {
	if st, _, ok := strings.Cut(d.Volume(), ":"); ok && !strings.HasPrefix(st, "/") {
		return st
	}
	return ""
}

// IsCDROM reports media=cdrom.
func (d Drive) IsCDROM() bool { v, _ := d.Get("media"); return v == "cdrom" }

// Get returns an option's value as written. The volume is read with
// Volume, not here.
func (d Drive) Get(key string) (string, bool) {
	if key == "" {
		return "", false
	}
	if i := d.index(key); i >= 0 {
		return d.props[i].val, true
	}
	return "", false
}

// Set replaces an option in place, or appends it. "file" and "volume"
// replace the volume wherever it is written.
func (d *Drive) Set(key, val string) error {
	if err := checkOption(key, val); err != nil {
		return fmt.Errorf("set drive option: %w", err)
	}
	i := d.index(key)
	if key == "file" || key == "volume" {
		i = d.volumeIndex()
		if i >= 0 {
			key = d.props[i].key
		}
	}
	if i >= 0 {
		d.props[i].val = val
		return nil
	}
	d.props = append(slicesClone(d.props), prop{key, val})
	return nil
}

// Del removes an option (a missing one is fine). The volume stays.
func (d *Drive) Del(key string) {
	if key == "" || key == "file" || key == "volume" {
		return
	}
	if i := d.index(key); i >= 0 {
		props := make([]prop, 0, len(d.props)-1)
		props = append(props, d.props[:i]...)
		d.props = append(props, d.props[i+1:]...)
	}
}

func slicesClone(p []prop) []prop { return append([]prop(nil), p...) }

// Size is the size option in bytes; 0 when the drive has none. PVE keeps
// it up to date after a resize; it is informational to QEMU.
func (d Drive) Size() int64 {
	v, ok := d.Get("size")
	if !ok {
		return 0
	}
	n, _ := ParseSize(v) // checked by ParseDrive
	return n
}

// SetSize writes size= as PVE prints it (FormatSize).
func (d *Drive) SetSize(bytes int64) {
	_ = d.Set("size", FormatSize(bytes))
}

// DiskLimits are a drive's bandwidth and IOPS limits as a package sells
// them: read and write apart. 0 means unlimited (the option is absent).
// MBps values are PVE's mbps_rd/mbps_wr (megabytes per second, which QEMU
// gets as MiB/s); IOPS values are iops_rd/iops_wr.
type DiskLimits struct {
	MBpsRd, MBpsWr float64
	IOPSRd, IOPSWr int64
}

// throttleKeyRe matches the throttling options of Drive.pm's
// $add_throttle_desc, the legacy *_length aliases included.
var throttleKeyRe = lazyre.New(`^(?:m?bps|iops)(?:_rd|_wr)?(?:_max)?(?:_length)?$`)

func parseLimit(v string) (float64, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return 0, fmt.Errorf("not a non-negative number: %q", v)
	}
	return f, nil
}

// limitKeys describe one of the four limits: the option, its legacy
// bytes-per-second form (converted to MB/s by parse_drive), the burst
// pool that requires it, the pool's burst length (and its legacy alias),
// and the combined read+write family PVE refuses next to it.
type limitKeys struct {
	key, bytes, max, maxLen, legacyLen string
	combined                           []string
}

var (
	mbpsCombined = []string{"mbps", "bps", "mbps_max", "bps_max_length"}
	iopsCombined = []string{"iops", "iops_max", "iops_max_length"}

	limMBpsRd = limitKeys{"mbps_rd", "bps_rd", "mbps_rd_max", "bps_rd_max_length", "bps_rd_length", mbpsCombined}
	limMBpsWr = limitKeys{"mbps_wr", "bps_wr", "mbps_wr_max", "bps_wr_max_length", "bps_wr_length", mbpsCombined}
	limIOPSRd = limitKeys{"iops_rd", "", "iops_rd_max", "iops_rd_max_length", "iops_rd_length", iopsCombined}
	limIOPSWr = limitKeys{"iops_wr", "", "iops_wr_max", "iops_wr_max_length", "iops_wr_length", iopsCombined}
)

func (d Drive) limit(k limitKeys) float64 {
	if v, ok := d.Get(k.key); ok {
		f, _ := parseLimit(v)
		return f
	}
	if k.bytes != "" {
		if v, ok := d.Get(k.bytes); ok {
			// parse_drive: sprintf("%.3f", $bps / (1024 * 1024.0))
			f, _ := parseLimit(v)
			return math.Round(f/(1024*1024)*1000) / 1000
		}
	}
	return 0
}

// Limits reads the four limits (absent → 0). A legacy bps_rd/bps_wr in
// bytes per second is read as MB/s, as PVE does.
func (d Drive) Limits() DiskLimits {
	return DiskLimits{
		MBpsRd: d.limit(limMBpsRd),
		MBpsWr: d.limit(limMBpsWr),
		IOPSRd: int64(d.limit(limIOPSRd)),
		IOPSWr: int64(d.limit(limIOPSWr)),
	}
}

// SetLimits writes the four limits so the drive stays one PVE accepts:
//
//   - 0 (or less) removes the option, its legacy bytes form, and the burst
//     pool and burst length that require it (PVE refuses "mbps_rd_max
//     requires mbps_rd").
//   - a positive value replaces the option in place (or appends it), drops
//     the legacy bytes form ("both bps_rd and mbps_rd specified") and a
//     burst pool smaller than the new limit (QEMU refuses max < avg); a
//     larger pool stays.
//   - the combined read+write limits (mbps, iops and their bursts) always
//     go: the four directional values are the whole of the limits, so
//     0/0 means unlimited, not "keep whatever combined limit was there"
//     (and PVE refuses mbps next to mbps_rd anyway).
func (d *Drive) SetLimits(l DiskLimits) {
	d.setLimit(limMBpsRd, l.MBpsRd)
	d.setLimit(limMBpsWr, l.MBpsWr)
	d.setLimit(limIOPSRd, float64(l.IOPSRd))
	d.setLimit(limIOPSWr, float64(l.IOPSWr))
	d.delAll(mbpsCombined)
	d.delAll(iopsCombined)
}

func (d *Drive) delAll(keys []string) {
	for _, k := range keys {
		d.Del(k)
	}
}

func (d *Drive) setLimit(k limitKeys, v float64) {
	if k.bytes != "" {
		d.Del(k.bytes)
	}
	if !(v > 0) || math.IsInf(v, 0) {
		d.delAll([]string{k.key, k.max, k.maxLen, k.legacyLen})
		return
	}
	if mv, ok := d.Get(k.max); ok {
		if m, _ := parseLimit(mv); m < v {
			d.delAll([]string{k.max, k.maxLen, k.legacyLen})
		}
	}
	if cur, ok := d.Get(k.key); ok {
		if f, _ := parseLimit(cur); f == v {
			return // keep it as written ("100.000" stays)
		}
	}
	_ = d.Set(k.key, strconv.FormatFloat(v, 'f', -1, 64))
}

var sizeRe = lazyre.New(`^(\d+)(?:\.(\d+))?([KMGT](?:iB)?)?$`)

// ParseSize reads a PVE disk size into bytes, as PVE::JSONSchema's
// parse_size: digits with an optional fraction and an optional unit K, M,
// G or T (or KiB … TiB), all powers of 1024; no unit means bytes. The
// result is truncated to whole bytes.
func ParseSize(s string) (int64, error) {
	m := sizeRe.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("invalid disk size %q", s)
	}
	var shift uint
	if m[3] != "" {
		shift = map[byte]uint{'K': 10, 'M': 20, 'G': 30, 'T': 40}[m[3][0]]
	}
	r, ok := new(big.Rat).SetString(m[1] + "." + m[2] + "0")
	if !ok {
		return 0, fmt.Errorf("invalid disk size %q", s)
	}
	r.Mul(r, new(big.Rat).SetInt(new(big.Int).Lsh(big.NewInt(1), shift)))
	n := new(big.Int).Quo(r.Num(), r.Denom())
	if !n.IsInt64() {
		return 0, fmt.Errorf("disk size %q out of range", s)
	}
	return n.Int64(), nil
}

// FormatSize writes bytes as PVE::JSONSchema's format_size: the largest
// unit of K, M, G, T that divides it exactly ("10G", "1536M", "512"; 0 is
// "0T", as PVE prints it).
func FormatSize(bytes int64) string {
	units := []string{"K", "M", "G", "T"}
	n, unit := bytes, ""
	for _, u := range units {
		if n%1024 != 0 {
			break
		}
		n, unit = n/1024, u
	}
	return strconv.FormatInt(n, 10) + unit
}

// FormatSizeGiB writes n GiB as PVE does ("32G", "1T"), e.g. for a resize.
func FormatSizeGiB(n int64) string { return FormatSize(n << 30) }

// driveKeyRe matches the drive keys of Drive.pm's valid_drive_names.
var driveKeyRe = lazyre.New(`^(?:ide[0-3]|scsi(?:[12]?\d|30)|virtio(?:\d|1[0-5])|sata[0-5]|efidisk0|tpmstate0)$`)

// IsDriveKey reports whether key names a drive (scsi0, virtio3, efidisk0,
// …), not counting unusedN.
func IsDriveKey(key string) bool { return driveKeyRe.MatchString(key) }

// resizeSizeRe is the size pattern of PUT …/resize.
var resizeSizeRe = lazyre.New(`^\+?\d+(?:\.\d+)?[KMGT]?$`)
