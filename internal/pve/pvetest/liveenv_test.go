package pvetest_test

import (
	"fmt"
	"testing"

	"github.com/pvekeep/pvekeep/internal/pve/pvetest"
)

// recordingTB stops at Skipf/Fatalf like testing does, but records which.
type recordingTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

type stop struct{}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Skipf(format string, args ...any) {
	r.skipped, r.msg = true, fmt.Sprintf(format, args...)
	panic(stop{})
}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
	panic(stop{})
}

func (r *recordingTB) Fatal(args ...any) {
	r.failed, r.msg = true, fmt.Sprint(args...)
	panic(stop{})
}

func runLiveEnv(t *testing.T) *recordingTB {
	r := &recordingTB{TB: t}
	func() {
		defer func() {
			if v := recover(); v != nil {
				if _, ok := v.(stop); !ok {
					panic(v)
				}
			}
		}()
		pvetest.LiveEnv(r)
	}()
	return r
}

func TestLiveEnvSkipsOnlyWhenNoProxmoxIsDeclaredOrSkippingIsAllowed(t *testing.T) {
	const (
		run  = "run"
		skip = "skip"
		fail = "fail"
	)
	tests := []struct {
		name                  string
		url, id, secret       string
		require, disallowSkip string
		want                  string
	}{
		{name: "all set runs", url: "https://pve.example:8006", id: "a@pve!t", secret: "s", disallowSkip: "1", want: run},
		{name: "all set runs even when declared absent", url: "https://pve.example:8006", id: "a@pve!t", secret: "s", require: "0", want: run},
		{name: "half configured fails", url: "https://pve.example:8006", id: "a@pve!t", want: fail},
		{name: "half configured fails even when declared absent", secret: "s", require: "0", want: fail},
		{name: "none set but required fails", require: "1", want: fail},
		{name: "none set and declared absent skips under disallow", require: "0", disallowSkip: "1", want: skip},
		{name: "none set undeclared fails under disallow", disallowSkip: "1", want: fail},
		{name: "none set undeclared skips", want: skip},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PVEKEEP_TEST_PVE_URL", tc.url)
			t.Setenv("PVEKEEP_TEST_PVE_TOKEN_ID", tc.id)
			t.Setenv("PVEKEEP_TEST_PVE_TOKEN_SECRET", tc.secret)
			t.Setenv("PVEKEEP_TEST_REQUIRE_LIVE_PVE", tc.require)
			t.Setenv("PVEKEEP_TEST_DISALLOW_SKIP", tc.disallowSkip)
			r := runLiveEnv(t)
			got := run
			switch {
			case r.failed:
				got = fail
			case r.skipped:
				got = skip
			}
			if got != tc.want {
				t.Errorf("LiveEnv did %s (%q), want %s", got, r.msg, tc.want)
			}
		})
	}
}
