package pve_test

import (
	"strings"
	"testing"

	"github.com/pvekeep/pvekeep/internal/pve"
)

func TestParseNet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     string
		model  string
		mac    string
		bridge string
		tag    int
		rate   float64
		out    string // String() of the untouched device; "" = the input
		bad    string
	}{
		{in: "virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,firewall=1,tag=20,rate=50",
			model: "virtio", mac: "BC:24:11:AA:BB:CC", bridge: "vmbr0", tag: 20, rate: 50},
		{in: "e1000=bc:24:11:aa:bb:cc,bridge=vmbr1", model: "e1000", mac: "bc:24:11:aa:bb:cc", bridge: "vmbr1"},
		{in: "virtio,bridge=vmbr0", model: "virtio", bridge: "vmbr0"},
		{in: "e1000-82540em=02:00:00:00:00:01", model: "e1000-82540em", mac: "02:00:00:00:00:01"},
		{in: "bridge=vmbr0,virtio=BC:24:11:00:00:01,queues=4", model: "virtio", mac: "BC:24:11:00:00:01", bridge: "vmbr0"},
		{in: "model=virtio,macaddr=BC:24:11:00:00:01,bridge=vmbr0", model: "virtio", mac: "BC:24:11:00:00:01", bridge: "vmbr0",
			out: "virtio=BC:24:11:00:00:01,bridge=vmbr0"},
		{in: "bridge=vmbr0,macaddr=BC:24:11:00:00:01,model=e1000", model: "e1000", mac: "BC:24:11:00:00:01", bridge: "vmbr0",
			out: "bridge=vmbr0,e1000=BC:24:11:00:00:01"},
		{in: "virtio=BC:24:11:00:00:01,bridge=vmbr0,rate=12.5,link_down=1,mtu=1,trunks=10;20-30",
			model: "virtio", mac: "BC:24:11:00:00:01", bridge: "vmbr0", rate: 12.5},
		{in: "virtio=BC:24:11:00:00:01,rate=0", model: "virtio", mac: "BC:24:11:00:00:01", out: "virtio=BC:24:11:00:00:01"},
		{in: "vmxnet3=BC:24:11:00:00:01,tag=4094", model: "vmxnet3", mac: "BC:24:11:00:00:01", tag: 4094},
		{in: "", bad: "no model"},
		{in: "bridge=vmbr0", bad: "no model"},
		{in: "virtio=BC:24:11:00:00:01,e1000=BC:24:11:00:00:02", bad: "more than one model"},
		{in: "virtio,e1000", bad: "two values"},
		{in: "virtio=BC:24:11:00:00:01,macaddr=BC:24:11:00:00:02", bad: "more than one MAC"},
		{in: "virtio=not-a-mac", bad: "invalid MAC"},
		{in: "virtio,tag=0", bad: "tag"},
		{in: "virtio,tag=4095", bad: "tag"},
		{in: "virtio,tag=x", bad: "tag"},
		{in: "virtio,rate=-1", bad: "rate"},
		{in: "virtio,bridge=vmbr0,bridge=vmbr1", bad: "duplicate"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			n, err := pve.ParseNet(tt.in)
			if tt.bad != "" {
				if err == nil || !strings.Contains(err.Error(), tt.bad) {
					t.Fatalf("ParseNet(%q) err = %v, want one mentioning %q", tt.in, err, tt.bad)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseNet(%q): %v", tt.in, err)
			}
			if n.Model != tt.model || n.MAC != tt.mac || n.Bridge != tt.bridge || n.Tag != tt.tag || n.Rate != tt.rate {
				t.Errorf("ParseNet(%q) = %+v", tt.in, n)
			}
			want := tt.out
			if want == "" {
				want = tt.in
			}
			if n.String() != want {
				t.Errorf("String() = %q, want %q", n.String(), want)
			}
		})
	}
}

func TestNetChanges(t *testing.T) {
	t.Parallel()
	const in = "virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,firewall=1,tag=20,rate=50"
	tests := []struct {
		name   string
		change func(*pve.Net)
		want   string
	}{
		{"bridge in place", func(n *pve.Net) { n.Bridge = "vmbr1" }, "virtio=BC:24:11:AA:BB:CC,bridge=vmbr1,firewall=1,tag=20,rate=50"},
		{"untag removes tag", func(n *pve.Net) { n.Tag = 0 }, "virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,firewall=1,rate=50"},
		{"unlimited removes rate", func(n *pve.Net) { n.Rate = 0 }, "virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,firewall=1,tag=20"},
		{"fractional rate", func(n *pve.Net) { n.Rate = 12.5 }, "virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,firewall=1,tag=20,rate=12.5"},
		{"model and MAC", func(n *pve.Net) { n.Model, n.MAC = "e1000", "02:00:00:00:00:09" },
			"e1000=02:00:00:00:00:09,bridge=vmbr0,firewall=1,tag=20,rate=50"},
		{"no MAC writes the bare model", func(n *pve.Net) { n.MAC = "" }, "virtio,bridge=vmbr0,firewall=1,tag=20,rate=50"},
		{"other options", func(n *pve.Net) {
			_ = n.Set("firewall", "0")
			_ = n.Set("queues", "4")
		}, "virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,firewall=0,tag=20,rate=50,queues=4"},
		{"del other", func(n *pve.Net) { n.Del("firewall") }, "virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,tag=20,rate=50"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := pve.ParseNet(in)
			if err != nil {
				t.Fatal(err)
			}
			tt.change(&n)
			if got := n.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			if _, err := pve.ParseNet(n.String()); err != nil {
				t.Errorf("the result does not parse: %v", err)
			}
		})
	}

	// Typed fields added to a device that lacked them go at the end.
	n, _ := pve.ParseNet("virtio=BC:24:11:AA:BB:CC,firewall=1")
	n.Bridge, n.Tag, n.Rate = "vmbr0", 30, 100
	if want := "virtio=BC:24:11:AA:BB:CC,firewall=1,bridge=vmbr0,tag=30,rate=100"; n.String() != want {
		t.Errorf("String() = %q, want %q", n.String(), want)
	}
	// A literal Net (a device the VM lacks) writes the model first.
	if got := (pve.Net{Model: "virtio", Bridge: "vmbr0", Tag: 5}).String(); got != "virtio,bridge=vmbr0,tag=5" {
		t.Errorf("literal Net = %q", got)
	}
	for _, k := range []string{"bridge", "tag", "rate", "model", "macaddr", "virtio"} {
		if err := n.Set(k, "1"); err == nil {
			t.Errorf("Set(%q) accepted; typed options go through the fields", k)
		}
	}
	if v, ok := n.Get("firewall"); !ok || v != "1" {
		t.Errorf("Get(firewall) = %q, %v", v, ok)
	}
	if !pve.SameMAC("bc:24:11:aa:bb:cc", "BC:24:11:AA:BB:CC") || pve.SameMAC("BC:24:11:AA:BB:CC", "BC:24:11:AA:BB:CD") {
		t.Error("SameMAC")
	}
}
