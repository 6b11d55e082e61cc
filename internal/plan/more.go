package plan

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

// SettingMore is configoption24, "More Settings": WHMCS gives a product
// only 24 module settings, so what the VM's life and the schedules need
// beyond the package shares one textarea of "key = value" lines (blank
// lines and lines starting with # are ignored). An unknown key is an
// error, never ignored: a typo must not silently mean "default".
const SettingMore = 23

// Keys of the More Settings textarea.
const (
	MoreIPv4Gateway        = "ipv4_gateway"
	MoreIPv4Prefix         = "ipv4_prefix"
	MoreDNSServers         = "dns_servers"
	MoreSearchDomain       = "searchdomain"
	MoreNode               = "node"
	MoreTerminateGraceDays = "terminate_grace_days"
	MoreScheduleWindow     = "schedule_window"
	MoreScheduleRetries    = "schedule_retries"
)

// Configurable options that override More Settings keys, by key.
var moreOptionFor = map[string]string{
	MoreIPv4Gateway: "IPv4 Gateway",
	MoreIPv4Prefix:  "IPv4 Prefix",
	MoreDNSServers:  "DNS Servers",
}

// Defaults of the More Settings.
const (
	DefaultIPv4Prefix         = 24
	DefaultTerminateGraceDays = 7
	DefaultScheduleRetries    = 3
	maxGraceDays              = 365
	maxScheduleRetries        = 10
	maxDNSServers             = 3 // cloud-init's nameserver list, as PVE's UI offers
	maxMoreText               = 4096
)

// More is what configoption24 says, with its defaults filled in.
type More struct {
	// IPv4Gateway is the gateway of a service's dedicated IP; invalid
	// (the zero Addr) means none.
	IPv4Gateway netip.Addr
	// IPv4Prefix is the dedicated IP's prefix length (default /24).
	IPv4Prefix int
	// DNSServers for cloud-init; none means the template's.
	DNSServers []netip.Addr
	// SearchDomain for cloud-init; "" means the template's.
	SearchDomain string
	// Node a new VM is created on; "" means the least-loaded node.
	Node string
	// TerminateGraceDays: how long a terminated service's backups are
	// kept before the cron removes them (0 = at once).
	TerminateGraceDays int
	// ScheduleWindow, when set, makes the system pick each service's
	// scheduled backup time inside it instead of the customer.
	ScheduleWindow Window
	// ScheduleRetries bounds the retries of a failed scheduled backup on
	// the same day.
	ScheduleRetries int
}

// Window is a daily time window in the schedule's zone, in minutes after
// local midnight. End before Start crosses midnight (22:00-04:00).
type Window struct {
	Set        bool
	Start, End int
}

// String is the window as the admin writes it, "" when unset.
func (w Window) String() string {
	if !w.Set {
		return ""
	}
	return fmt.Sprintf("%02d:%02d-%02d:%02d", w.Start/60, w.Start%60, w.End/60, w.End%60)
}

// Minutes is the window's length in minutes.
func (w Window) Minutes() int {
	if !w.Set {
		return 0
	}
	n := w.End - w.Start
	if n <= 0 {
		n += 24 * 60
	}
	return n
}

// MoreFromFacts reads configoption24 of the service's product, with the
// configurable options "IPv4 Gateway", "IPv4 Prefix" and "DNS Servers"
// overriding their keys. A value that is not what its key needs is the
// provider's misconfiguration: invalid_state naming the line.
func MoreFromFacts(f pvekeep.ServiceFacts) (More, error) {
	values, err := moreValues(f.ProductSettings[SettingMore])
	if err != nil {
		return More{}, err
	}
	for key, option := range moreOptionFor {
		if v, ok := f.ConfigOptions[option]; ok && strings.TrimSpace(v) != "" {
			values[key] = moreValue{text: strings.TrimSpace(v), where: "configurable option " + option}
		}
	}
	return buildMore(values)
}

// ParseMore reads the textarea alone (no configurable options): what
// server.test and the tests check a product's setting with.
func ParseMore(text string) (More, error) {
	values, err := moreValues(text)
	if err != nil {
		return More{}, err
	}
	return buildMore(values)
}

type moreValue struct {
	text  string
	where string // "configoption24 line 3" or "configurable option …"
}

func moreError(where, what string) error {
	e := pvekeep.InvalidState("the product is misconfigured: " + where)
	e.Err = fmt.Errorf("%s", what)
	return e
}

func moreValues(text string) (map[string]moreValue, error) {
	out := map[string]moreValue{}
	if len(text) > maxMoreText {
		return nil, moreError("configoption24 (More Settings)", fmt.Sprintf("longer than %d bytes", maxMoreText))
	}
	known := map[string]bool{
		MoreIPv4Gateway: true, MoreIPv4Prefix: true, MoreDNSServers: true, MoreSearchDomain: true,
		MoreNode: true, MoreTerminateGraceDays: true, MoreScheduleWindow: true, MoreScheduleRetries: true,
	}
	for i, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		where := fmt.Sprintf("configoption24 (More Settings) line %d", i+1)
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, moreError(where, fmt.Sprintf("%q is not key = value", line))
		}
		key = strings.ToLower(strings.TrimSpace(key))
		if !known[key] {
			return nil, moreError(where, fmt.Sprintf("unknown key %q", key))
		}
		if _, dup := out[key]; dup {
			return nil, moreError(where, fmt.Sprintf("%q is set twice", key))
		}
		out[key] = moreValue{text: strings.TrimSpace(value), where: where}
	}
	return out, nil
}

func buildMore(values map[string]moreValue) (More, error) {
	m := More{IPv4Prefix: DefaultIPv4Prefix, TerminateGraceDays: DefaultTerminateGraceDays, ScheduleRetries: DefaultScheduleRetries}
	for key, v := range values {
		if v.text == "" {
			continue // "key =" keeps the default
		}
		var err error
		switch key {
		case MoreIPv4Gateway:
			m.IPv4Gateway, err = parseIPv4(v.text)
		case MoreIPv4Prefix:
			m.IPv4Prefix, err = boundedInt(v.text, 1, 32)
		case MoreDNSServers:
			m.DNSServers, err = parseDNS(v.text)
		case MoreSearchDomain:
			m.SearchDomain, err = parseDomain(v.text)
		case MoreNode:
			if !strings.EqualFold(v.text, "auto") {
				m.Node, err = parseNode(v.text)
			}
		case MoreTerminateGraceDays:
			m.TerminateGraceDays, err = boundedInt(v.text, 0, maxGraceDays)
		case MoreScheduleWindow:
			m.ScheduleWindow, err = ParseWindow(v.text)
		case MoreScheduleRetries:
			m.ScheduleRetries, err = boundedInt(v.text, 0, maxScheduleRetries)
		}
		if err != nil {
			return More{}, moreError(v.where, fmt.Sprintf("%s: %v", key, err))
		}
	}
	return m, nil
}

func parseIPv4(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, fmt.Errorf("%q is not an IPv4 address", s)
	}
	return a, nil
}

func parseDNS(s string) ([]netip.Addr, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == ';' || r == '\t' })
	if len(fields) > maxDNSServers {
		return nil, fmt.Errorf("more than %d servers", maxDNSServers)
	}
	out := make([]netip.Addr, 0, len(fields))
	for _, f := range fields {
		a, err := netip.ParseAddr(f)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("%q is not an IP address", f)
		}
		out = append(out, a)
	}
	return out, nil
}

// parseDomain accepts a DNS name (letters, digits, '-', '.'), as
// cloud-init writes it into resolv.conf.
func parseDomain(s string) (string, error) {
	if len(s) > 253 {
		return "", fmt.Errorf("%q is too long for a domain", s)
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", fmt.Errorf("%q is not a domain", s)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return "", fmt.Errorf("%q is not a domain", s)
			}
		}
	}
	return strings.ToLower(s), nil
}

// parseNode accepts a Proxmox node name (a hostname label).
func parseNode(s string) (string, error) {
	if len(s) > 63 || s[0] == '-' {
		return "", fmt.Errorf("%q is not a node name", s)
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return "", fmt.Errorf("%q is not a node name", s)
		}
	}
	return s, nil
}

func boundedInt(s string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%q is not a whole number from %d to %d", s, lo, hi)
	}
	return n, nil
}

// ParseWindow reads "HH:MM-HH:MM" (24-hour clock). A window of zero
// length is refused: it would leave no time to pick.
func ParseWindow(s string) (Window, error) {
	a, b, ok := strings.Cut(strings.ReplaceAll(s, " ", ""), "-")
	if !ok {
		return Window{}, fmt.Errorf("%q is not HH:MM-HH:MM", s)
	}
	start, err1 := ParseClock(a)
	end, err2 := ParseClock(b)
	if err1 != nil || err2 != nil {
		return Window{}, fmt.Errorf("%q is not HH:MM-HH:MM", s)
	}
	if start == end {
		return Window{}, fmt.Errorf("%q is an empty window", s)
	}
	return Window{Set: true, Start: start, End: end}, nil
}

// ParseClock reads "HH:MM" (00:00–23:59) as minutes after midnight.
func ParseClock(s string) (int, error) {
	if len(s) != 5 || s[2] != ':' {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	h, err1 := strconv.Atoi(s[:2])
	m, err2 := strconv.Atoi(s[3:])
	if err1 != nil || err2 != nil || h < 0 || h > 23 || m < 0 || m > 59 || s[0] == '+' || s[3] == '+' {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	return h*60 + m, nil
}
