package pve

import (
	"github.com/pvekeep/pvekeep/internal/lazyre"

	"fmt"
	"strconv"
	"strings"
)

// nicModels is qemu-server's $nic_model_list (PVE/QemuServer/Network.pm):
// each model is also a key whose value is the MAC ("virtio=BC:24:…").
var nicModels = map[string]bool{
	"e1000": true, "e1000-82540em": true, "e1000-82544gc": true, "e1000-82545em": true,
	"e1000e": true, "i82551": true, "i82557b": true, "i82559er": true, "ne2k_isa": true,
	"ne2k_pci": true, "pcnet": true, "rtl8139": true, "virtio": true, "vmxnet3": true,
}

var macRe = lazyre.New(`^[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}$`)

// Net is a parsed network device of a guest config (net0, …), e.g.
// "virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,firewall=1,tag=20,rate=50"
// ($net_fmt in qemu-server's PVE/QemuServer/Network.pm). The typed fields
// are what a package sets; every other option (firewall, queues, mtu,
// link_down, trunks, …) is kept in its original order and written back by
// String, with the typed ones at the place they were read (new ones at the
// end: bridge, tag, rate).
type Net struct {
	Model  string  // virtio, e1000, …
	MAC    string  // as written (PVE prints upper case); "" lets PVE pick one
	Bridge string  // "" = none (PVE's NATed user network)
	Tag    int     // VLAN tag 1–4094; 0 = untagged
	Rate   float64 // MB/s; 0 = unlimited

	props []prop // original options; typed ones are placeholders
}

// the placeholder keys of the typed fields in Net.props
const (
	netModelKey = "\x00model"
)

// ParseNet parses a network device string. The model may be written
// "virtio=MAC", bare ("virtio", no MAC) or as model=/macaddr=; tag must be
// 1–4094 and rate a non-negative number, as PVE checks.
func ParseNet(s string) (Net, error) {
	props, err := splitProps(s)
	if err != nil {
		return Net{}, fmt.Errorf("parse net %q: %w", s, err)
	}
	var n Net
	seenModel := false
	for _, p := range props {
		switch {
		case p.key == "" || p.key == "model" || nicModels[p.key]:
			if n.Model != "" {
				return Net{}, fmt.Errorf("parse net %q: more than one model", s)
			}
			n.Model = p.val
			if nicModels[p.key] {
				n.Model, n.MAC = p.key, p.val
			}
		case p.key == "macaddr":
			if n.MAC != "" {
				return Net{}, fmt.Errorf("parse net %q: more than one MAC", s)
			}
			n.MAC = p.val
		case p.key == "bridge":
			n.Bridge = p.val
		case p.key == "tag":
			t, err := strconv.Atoi(p.val)
			if err != nil || t < 1 || t > 4094 {
				return Net{}, fmt.Errorf("parse net %q: tag %q is not 1-4094", s, p.val)
			}
			n.Tag = t
		case p.key == "rate":
			r, err := parseLimit(p.val)
			if err != nil {
				return Net{}, fmt.Errorf("parse net %q: rate: %w", s, err)
			}
			n.Rate = r
		default:
			n.props = append(n.props, p)
			continue
		}
		// the model and the MAC are written together at the first of them
		if p.key == "" || p.key == "model" || p.key == "macaddr" || nicModels[p.key] {
			if seenModel {
				continue
			}
			seenModel = true
			n.props = append(n.props, prop{netModelKey, ""})
			continue
		}
		n.props = append(n.props, prop{"\x00" + p.key, ""})
	}
	if n.Model == "" {
		return Net{}, fmt.Errorf("parse net %q: no model", s)
	}
	if n.MAC != "" && !macRe.MatchString(n.MAC) {
		return Net{}, fmt.Errorf("parse net %q: invalid MAC %q", s, n.MAC)
	}
	return n, nil
}

// String writes the device back: "model=MAC" (or the bare model) where the
// model was, the typed options where they were (left out when zero), the
// other options unchanged, new typed options at the end.
func (n Net) String() string {
	var out []prop
	done := map[string]bool{}
	emit := func(key string) {
		done[key] = true
		switch key {
		case netModelKey:
			if n.MAC != "" {
				out = append(out, prop{n.Model, n.MAC})
			} else {
				out = append(out, prop{"", n.Model})
			}
		case "\x00bridge":
			if n.Bridge != "" {
				out = append(out, prop{"bridge", n.Bridge})
			}
		case "\x00tag":
			if n.Tag > 0 {
				out = append(out, prop{"tag", strconv.Itoa(n.Tag)})
			}
		case "\x00rate":
			if n.Rate > 0 {
				out = append(out, prop{"rate", strconv.FormatFloat(n.Rate, 'f', -1, 64)})
			}
		}
	}
	if !n.has(netModelKey) { // a Net built as a literal
		emit(netModelKey)
	}
	for _, p := range n.props {
		if strings.HasPrefix(p.key, "\x00") {
			emit(p.key)
			continue
		}
		out = append(out, p)
	}
	for _, k := range []string{"\x00bridge", "\x00tag", "\x00rate"} {
		if !done[k] {
			emit(k)
		}
	}
	return joinProps(out)
}

func (n Net) has(key string) bool {
	for _, p := range n.props {
		if p.key == key {
			return true
		}
	}
	return false
}

// netTyped are the keys Net keeps in its fields.
func netTyped(key string) bool {
	return key == "model" || key == "macaddr" || key == "bridge" || key == "tag" || key == "rate" || nicModels[key]
}

// Get returns another option's value (firewall, queues, mtu, …). The typed
// options are read from the fields.
func (n Net) Get(key string) (string, bool) {
	for _, p := range n.props {
		if p.key == key && key != "" && !strings.HasPrefix(key, "\x00") {
			return p.val, true
		}
	}
	return "", false
}

// Set replaces another option in place or appends it. The typed options
// (model, macaddr, bridge, tag, rate) are set through the fields.
func (n *Net) Set(key, val string) error {
	if netTyped(key) {
		return fmt.Errorf("set net option %s: set the field instead", key)
	}
	if err := checkOption(key, val); err != nil {
		return fmt.Errorf("set net option: %w", err)
	}
	for i, p := range n.props {
		if p.key == key {
			n.props[i].val = val
			return nil
		}
	}
	n.props = append(slicesClone(n.props), prop{key, val})
	return nil
}

// Del removes another option (a missing one is fine).
func (n *Net) Del(key string) {
	if netTyped(key) || key == "" {
		return
	}
	for i, p := range n.props {
		if p.key == key {
			props := make([]prop, 0, len(n.props)-1)
			props = append(props, n.props[:i]...)
			n.props = append(props, n.props[i+1:]...)
			return
		}
	}
}

// SameMAC compares two MAC addresses as PVE means them (case-insensitive).
func SameMAC(a, b string) bool { return strings.EqualFold(a, b) }
