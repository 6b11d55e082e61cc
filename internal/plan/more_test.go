package plan

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/pvekeep/pvekeep/internal/pvekeep"
)

func TestParseMoreReadsEveryKey(t *testing.T) {
	t.Parallel()
	got, err := ParseMore("# network of dedicated IPs\r\n" +
		"ipv4_gateway = 192.0.2.1\n" +
		"IPv4_Prefix=26\n" +
		"dns_servers = 1.1.1.1, 2606:4700:4700::1111\n" +
		"searchdomain = Example.NET\n" +
		"\n" +
		"node = pve2\n" +
		"terminate_grace_days = 0\n" +
		"schedule_window = 22:30 - 04:00\n" +
		"schedule_retries = 5\n")
	if err != nil {
		t.Fatal(err)
	}
	want := More{
		IPv4Gateway:        netip.MustParseAddr("192.0.2.1"),
		IPv4Prefix:         26,
		DNSServers:         []netip.Addr{netip.MustParseAddr("1.1.1.1"), netip.MustParseAddr("2606:4700:4700::1111")},
		SearchDomain:       "example.net",
		Node:               "pve2",
		TerminateGraceDays: 0,
		ScheduleWindow:     Window{Set: true, Start: 22*60 + 30, End: 4 * 60},
		ScheduleRetries:    5,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseMore =\n %+v\nwant\n %+v", got, want)
	}
}

func TestParseMoreDefaults(t *testing.T) {
	t.Parallel()
	for _, text := range []string{"", "node = auto\nterminate_grace_days =\n", "# nothing\n\n"} {
		got, err := ParseMore(text)
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		want := More{IPv4Prefix: 24, TerminateGraceDays: 7, ScheduleRetries: 3}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: got %+v, want the defaults %+v", text, got, want)
		}
	}
}

func TestParseMoreRefusesWhatIsNotItsKeysValue(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, text, inError string
	}{
		{"unknown key", "gateway = 192.0.2.1", `line 1`},
		{"no equals sign", "\nipv4_gateway 192.0.2.1", `line 2`},
		{"key set twice", "node = a\nnode = b", `line 2`},
		{"gateway not IPv4", "ipv4_gateway = 2001:db8::1", "line 1"},
		{"prefix out of range", "ipv4_prefix = 33", "line 1"},
		{"prefix not a number", "ipv4_prefix = /24", "line 1"},
		{"four DNS servers", "dns_servers = 1.1.1.1 1.0.0.1 8.8.8.8 8.8.4.4", "line 1"},
		{"DNS not an IP", "dns_servers = one.one.one.one", "line 1"},
		{"search domain with a space", "searchdomain = exa mple.net", "line 1"},
		{"node with a slash", "node = pve1/../x", "line 1"},
		{"negative grace", "terminate_grace_days = -1", "line 1"},
		{"grace over a year", "terminate_grace_days = 366", "line 1"},
		{"window without end", "schedule_window = 01:00", "line 1"},
		{"window of no length", "schedule_window = 01:00-01:00", "line 1"},
		{"window hour 24", "schedule_window = 01:00-24:00", "line 1"},
		{"retries above 10", "schedule_retries = 11", "line 1"},
		{"text too long", strings.Repeat("#", 5000), "longer than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseMore(tc.text)
			var pe *pvekeep.Error
			if !errors.As(err, &pe) || pe.Reason != pvekeep.ReasonInvalidState {
				t.Fatalf("ParseMore(%q) = %v, want invalid_state", tc.text, err)
			}
			if !strings.Contains(err.Error(), tc.inError) || !strings.Contains(err.Error(), "configoption24") {
				t.Fatalf("error %q does not name configoption24 and %q", err, tc.inError)
			}
		})
	}
}

func TestMoreFromFactsOptionsOverrideTheirKeys(t *testing.T) {
	t.Parallel()
	f := pvekeep.ServiceFacts{
		ProductSettings: settings(map[int]string{SettingMore: "ipv4_gateway = 192.0.2.1\nipv4_prefix = 24\ndns_servers = 1.1.1.1\nnode = pve1"}),
		ConfigOptions:   map[string]string{"IPv4 Gateway": "198.51.100.1", "IPv4 Prefix": "28", "DNS Servers": "9.9.9.9", "Node": "pve9"},
	}
	got, err := MoreFromFacts(f)
	if err != nil {
		t.Fatal(err)
	}
	if got.IPv4Gateway != netip.MustParseAddr("198.51.100.1") || got.IPv4Prefix != 28 ||
		!reflect.DeepEqual(got.DNSServers, []netip.Addr{netip.MustParseAddr("9.9.9.9")}) {
		t.Fatalf("options did not override: %+v", got)
	}
	if got.Node != "pve1" {
		t.Fatalf("node = %q: only the three network keys have configurable options", got.Node)
	}
}

func TestMoreFromFactsNamesTheBadOption(t *testing.T) {
	t.Parallel()
	f := pvekeep.ServiceFacts{ConfigOptions: map[string]string{"IPv4 Prefix": "99"}}
	_, err := MoreFromFacts(f)
	if err == nil || !strings.Contains(err.Error(), "configurable option IPv4 Prefix") {
		t.Fatalf("err = %v, want one naming the configurable option", err)
	}
}

func TestWindowLength(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		mins int
	}{
		{"01:00-05:00", 240},
		{"22:00-02:00", 240},
		{"23:59-00:00", 1},
	}
	for _, tc := range cases {
		w, err := ParseWindow(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if w.Minutes() != tc.mins || w.String() != tc.in {
			t.Fatalf("%s: %d minutes, %q", tc.in, w.Minutes(), w.String())
		}
	}
}
