package dbtest_test

import (
	"fmt"
	"net"
	"testing"

	"github.com/pvekeep/pvekeep/internal/dbtest"
)

// recordingTB stops at Skipf/Fatalf like testing does, but records which.
type recordingTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

type stop struct{}

func (r *recordingTB) Skipf(format string, args ...any) {
	r.skipped, r.msg = true, fmt.Sprintf(format, args...)
	panic(stop{})
}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
	panic(stop{})
}

func runNew(t *testing.T) *recordingTB {
	r := &recordingTB{TB: t}
	func() {
		defer func() {
			if v := recover(); v != nil {
				if _, ok := v.(stop); !ok {
					panic(v)
				}
			}
		}()
		dbtest.New(r)
	}()
	return r
}

func TestUnreachableServerSkipsUnlessDisallowed(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	t.Setenv("PVEKEEP_TEST_DSN", "root@tcp("+addr+")/")

	tests := []struct {
		name     string
		disallow string
		wantSkip bool
	}{
		{name: "skips by default", disallow: "", wantSkip: true},
		{name: "fails when skipping is disallowed", disallow: "1", wantSkip: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PVEKEEP_TEST_DISALLOW_SKIP", tc.disallow)
			r := runNew(t)
			if r.skipped != tc.wantSkip || r.failed == tc.wantSkip {
				t.Errorf("skipped=%v failed=%v (%s)", r.skipped, r.failed, r.msg)
			}
		})
	}
}
