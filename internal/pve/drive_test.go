package pve_test

import (
	"strings"
	"testing"

	"github.com/pvekeep/pvekeep/internal/pve"
)

func TestParseSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int64
		bad  bool
	}{
		{"10G", 10 << 30, false},
		{"512", 512, false},
		{"0", 0, false},
		{"4K", 4096, false},
		{"1536M", 1536 << 20, false},
		{"2T", 2 << 40, false},
		{"1.5G", 3 << 29, false},
		{"0.1K", 102, false}, // truncated like PVE's int()
		{"32GiB", 32 << 30, false},
		{"8MiB", 8 << 20, false},
		{"10g", 0, true},      // units are upper case
		{"10 G", 0, true},     // no blanks
		{"-1G", 0, true},      // no sign
		{"+1G", 0, true},      // resize's relative form is not a size
		{"1.G", 0, true},      // a fraction needs digits
		{"10GB", 0, true},     // not a unit PVE knows
		{"", 0, true},         // empty
		{"9999999T", 0, true}, // out of int64
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := pve.ParseSize(tt.in)
			if (err != nil) != tt.bad {
				t.Fatalf("ParseSize(%q) err = %v, want bad=%v", tt.in, err, tt.bad)
			}
			if !tt.bad && got != tt.want {
				t.Errorf("ParseSize(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestFormatSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   int64
		want string
	}{
		{10 << 30, "10G"},
		{1 << 40, "1T"},
		{1536 << 20, "1536M"},
		{3 << 29, "1536M"},
		{4096, "4K"},
		{1000, "1000"},
		{1025, "1025"},
		{0, "0T"}, // as PVE's format_size prints it
	}
	for _, tt := range tests {
		if got := pve.FormatSize(tt.in); got != tt.want {
			t.Errorf("FormatSize(%d) = %q, want %q", tt.in, got, tt.want)
		}
		if back, err := pve.ParseSize(pve.FormatSize(tt.in)); err != nil || back != tt.in {
			t.Errorf("ParseSize(FormatSize(%d)) = %d, %v", tt.in, back, err)
		}
	}
	for gib, want := range map[int64]string{1: "1G", 32: "32G", 1024: "1T", 1536: "1536G"} {
		if got := pve.FormatSizeGiB(gib); got != want {
			t.Errorf("FormatSizeGiB(%d) = %q, want %q", gib, got, want)
		}
	}
}

func TestParseDrive(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		volume  string
		storage string
		size    int64
		limits  pve.DiskLimits
		bad     string // part of the error
	}{
		{in: "local-lvm:vm-100-disk-0,iothread=1,size=10G,mbps_rd=100", volume: "local-lvm:vm-100-disk-0",
			storage: "local-lvm", size: 10 << 30, limits: pve.DiskLimits{MBpsRd: 100}},
		{in: "file=local-lvm:vm-100-disk-0,size=32G", volume: "local-lvm:vm-100-disk-0", storage: "local-lvm", size: 32 << 30},
		{in: "volume=ceph:vm-100-disk-1", volume: "ceph:vm-100-disk-1", storage: "ceph"},
		{in: "size=10G,local:100/vm-100-disk-0.qcow2", volume: "local:100/vm-100-disk-0.qcow2", storage: "local", size: 10 << 30},
		{in: "none,media=cdrom", volume: "none"},
		{in: "/dev/disk/by-id/ata-X,backup=0", volume: "/dev/disk/by-id/ata-X"},
		{in: "local-lvm:4", volume: "local-lvm:4", storage: "local-lvm"},
		{in: "local-lvm:vm-1-disk-0,mbps_rd=12.5,mbps_wr=50,iops_rd=300,iops_wr=200",
			volume: "local-lvm:vm-1-disk-0", storage: "local-lvm", limits: pve.DiskLimits{MBpsRd: 12.5, MBpsWr: 50, IOPSRd: 300, IOPSWr: 200}},
		{in: "local-lvm:vm-1-disk-0,mbps_rd=100.000", volume: "local-lvm:vm-1-disk-0", storage: "local-lvm", limits: pve.DiskLimits{MBpsRd: 100}},
		// legacy bytes per second read as MB/s, as parse_drive does
		{in: "local-lvm:vm-1-disk-0,bps_rd=104857600,bps_wr=1048576", volume: "local-lvm:vm-1-disk-0", storage: "local-lvm",
			limits: pve.DiskLimits{MBpsRd: 100, MBpsWr: 1}},
		{in: "local-lvm:vm-1-disk-0,,size=1G,", volume: "local-lvm:vm-1-disk-0", storage: "local-lvm", size: 1 << 30},
		{in: "local-lvm:vm-1-disk-0,serial=a%3Db", volume: "local-lvm:vm-1-disk-0", storage: "local-lvm"},
		{in: "", bad: "no volume"},
		{in: "size=10G", bad: "no volume"},
		{in: "a:1,b:2", bad: "two values"},
		{in: "file=a:1,volume=a:2", bad: "more than one volume"},
		{in: "a:1,size=10G,size=20G", bad: "duplicate"},
		{in: "a:1,size=", bad: "malformed"},
		{in: "a:1,=x", bad: "malformed"},
		{in: "a:1,size=10X", bad: "invalid disk size"},
		{in: "a:1,mbps_rd=fast", bad: "mbps_rd"},
		{in: "a:1,iops_wr=-5", bad: "iops_wr"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			d, err := pve.ParseDrive(tt.in)
			if tt.bad != "" {
				if err == nil || !strings.Contains(err.Error(), tt.bad) {
					t.Fatalf("ParseDrive(%q) err = %v, want one mentioning %q", tt.in, err, tt.bad)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDrive(%q): %v", tt.in, err)
			}
			if d.Volume() != tt.volume || d.Storage() != tt.storage || d.Size() != tt.size || d.Limits() != tt.limits {
				t.Errorf("ParseDrive(%q) = volume %q storage %q size %d limits %+v; want %q %q %d %+v",
					tt.in, d.Volume(), d.Storage(), d.Size(), d.Limits(), tt.volume, tt.storage, tt.size, tt.limits)
			}
			// Blank parts aside, an untouched drive writes back as read.
			if want := strings.Trim(strings.ReplaceAll(tt.in, ",,", ","), ","); d.String() != want {
				t.Errorf("String() = %q, want %q", d.String(), want)
			}
		})
	}
}

func TestDriveSetLimits(t *testing.T) {
	t.Parallel()
	const base = "local-lvm:vm-100-disk-0,iothread=1,size=10G"
	tests := []struct {
		name string
		in   string
		set  pve.DiskLimits
		want string
	}{
		{"adds at the end in a fixed order", base, pve.DiskLimits{MBpsRd: 100, MBpsWr: 50, IOPSRd: 1000, IOPSWr: 500},
			base + ",mbps_rd=100,mbps_wr=50,iops_rd=1000,iops_wr=500"},
		{"unlimited removes", base + ",mbps_rd=100,iops_wr=5", pve.DiskLimits{}, base},
		{"zero everywhere on a plain drive changes nothing", base, pve.DiskLimits{}, base},
		{"replaces in place and keeps the order", "local-lvm:vm-100-disk-0,mbps_rd=10,iothread=1,size=10G", pve.DiskLimits{MBpsRd: 20},
			"local-lvm:vm-100-disk-0,mbps_rd=20,iothread=1,size=10G"},
		{"an equal value keeps its spelling", base + ",mbps_rd=100.000", pve.DiskLimits{MBpsRd: 100}, base + ",mbps_rd=100.000"},
		{"fractions", base, pve.DiskLimits{MBpsWr: 12.5}, base + ",mbps_wr=12.5"},
		{"negative is unlimited", base + ",iops_rd=5", pve.DiskLimits{IOPSRd: -1}, base},
		{"clearing drops the burst pool and its length", base + ",mbps_rd=100,mbps_rd_max=200,bps_rd_max_length=10", pve.DiskLimits{}, base},
		{"clearing drops the legacy burst length", base + ",iops_wr=100,iops_wr_max=200,iops_wr_length=5", pve.DiskLimits{}, base},
		{"a larger burst pool stays", base + ",mbps_rd=100,mbps_rd_max=200", pve.DiskLimits{MBpsRd: 150}, base + ",mbps_rd=150,mbps_rd_max=200"},
		{"a smaller burst pool goes", base + ",mbps_rd=100,mbps_rd_max=200,bps_rd_max_length=3", pve.DiskLimits{MBpsRd: 300}, base + ",mbps_rd=300"},
		{"legacy bytes replaced", base + ",bps_rd=104857600", pve.DiskLimits{MBpsRd: 50}, base + ",mbps_rd=50"},
		{"legacy bytes cleared", base + ",bps_wr=104857600", pve.DiskLimits{}, base},
		{"a read limit drops the combined r/w limit", base + ",mbps=100,mbps_max=200", pve.DiskLimits{MBpsRd: 50}, base + ",mbps_rd=50"},
		{"an iops limit drops the combined iops", base + ",iops=100", pve.DiskLimits{IOPSWr: 10}, base + ",iops_wr=10"},
		{"unlimited removes a combined limit too", base + ",mbps=100,iops=500", pve.DiskLimits{}, base},
		{"combined limits give way to directional ones", base + ",iops=100", pve.DiskLimits{MBpsRd: 1}, base + ",mbps_rd=1"},
		{"new disk syntax", "local-lvm:4", pve.DiskLimits{MBpsRd: 100, IOPSWr: 50}, "local-lvm:4,mbps_rd=100,iops_wr=50"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := pve.ParseDrive(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			d.SetLimits(tt.set)
			if got := d.String(); got != tt.want {
				t.Errorf("SetLimits(%+v) on %q = %q, want %q", tt.set, tt.in, got, tt.want)
			}
			back, err := pve.ParseDrive(d.String())
			if err != nil {
				t.Fatalf("the result does not parse: %v", err)
			}
			want := tt.set
			for _, p := range []*float64{&want.MBpsRd, &want.MBpsWr} {
				*p = max(*p, 0)
			}
			want.IOPSRd, want.IOPSWr = max(want.IOPSRd, 0), max(want.IOPSWr, 0)
			if got := back.Limits(); got != want {
				t.Errorf("Limits() after SetLimits = %+v, want %+v", got, want)
			}
		})
	}
}

func TestDriveOptions(t *testing.T) {
	t.Parallel()
	d, err := pve.ParseDrive("local-lvm:vm-100-disk-0,iothread=1,size=10G")
	if err != nil {
		t.Fatal(err)
	}
	d.SetSize(12 << 30)
	if err := d.Set("discard", "on"); err != nil {
		t.Fatal(err)
	}
	if err := d.Set("iothread", "0"); err != nil {
		t.Fatal(err)
	}
	if err := d.Set("file", "ceph:vm-100-disk-0"); err != nil {
		t.Fatal(err)
	}
	if want := "ceph:vm-100-disk-0,iothread=0,size=12G,discard=on"; d.String() != want {
		t.Errorf("String() = %q, want %q", d.String(), want)
	}
	d.Del("iothread")
	d.Del("nothing")
	d.Del("file") // the volume stays
	if want := "ceph:vm-100-disk-0,size=12G,discard=on"; d.String() != want {
		t.Errorf("after Del String() = %q, want %q", d.String(), want)
	}
	if v, ok := d.Get("discard"); !ok || v != "on" {
		t.Errorf("Get(discard) = %q, %v", v, ok)
	}
	for _, kv := range [][2]string{{"a,b", "1"}, {"x", "1,2"}, {"x", ""}, {"", "1"}, {"k=v", "1"}} {
		if err := d.Set(kv[0], kv[1]); err == nil {
			t.Errorf("Set(%q, %q) accepted", kv[0], kv[1])
		}
	}
	// A copy is independent of the original.
	e := d
	_ = e.Set("ssd", "1")
	if _, ok := d.Get("ssd"); ok {
		t.Errorf("Set on a copy changed the original: %s", d)
	}
	if cd, _ := pve.ParseDrive("none,media=cdrom"); !cd.IsCDROM() || cd.Storage() != "" {
		t.Errorf("cdrom: IsCDROM %v Storage %q", cd.IsCDROM(), cd.Storage())
	}
	if nd := pve.NewDiskDrive("local-lvm", 4); nd.String() != "local-lvm:4" || nd.Storage() != "local-lvm" {
		t.Errorf("NewDiskDrive = %q", nd)
	}
}

func TestIsDriveKey(t *testing.T) {
	t.Parallel()
	for _, k := range []string{"ide0", "ide3", "scsi0", "scsi9", "scsi10", "scsi30", "virtio0", "virtio15", "sata0", "sata5", "efidisk0", "tpmstate0"} {
		if !pve.IsDriveKey(k) {
			t.Errorf("IsDriveKey(%q) = false", k)
		}
	}
	for _, k := range []string{"ide4", "scsi31", "virtio16", "sata6", "unused0", "net0", "scsi", "scsi01", "efidisk1", "cores"} {
		if pve.IsDriveKey(k) {
			t.Errorf("IsDriveKey(%q) = true", k)
		}
	}
}
