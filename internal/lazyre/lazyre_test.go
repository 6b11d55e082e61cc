package lazyre

import (
	"sync"
	"testing"
)

func TestCompilesOnceOnFirstUse(t *testing.T) {
	r := New(`^(\d+)-(\d+)$`)
	if r.re != nil {
		t.Fatal("compiled before first use")
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if m := r.FindStringSubmatch("12-34"); len(m) != 3 || m[2] != "34" {
				t.Errorf("FindStringSubmatch = %q", m)
			}
		})
	}
	wg.Wait()
	if first := r.Regexp(); first != r.Regexp() {
		t.Error("compiled twice")
	}
	if !r.MatchString("1-2") || r.MatchString("1-x") {
		t.Error("MatchString disagrees with the pattern")
	}
}
