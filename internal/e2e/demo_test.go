package e2e

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDemoPlaysACustomersVisit runs `pvekeep demo` as `make demo` does,
// without a terminal (it plays the visit and exits), and checks each
// step happened: what a newcomer sees first must work.
func TestDemoPlaysACustomersVisit(t *testing.T) {
	t.Parallel()
	requirePHP(t)
	requireSmarty(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "demo", "--bin", binary, "--repo", repoDir, "--serve", "no", "--speed", "60")
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pvekeep demo: %v\n%s", err, out)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`the page says: Your backup has been started\.`),
		regexp.MustCompile(`after +cores 2 +memory 4096`),
		regexp.MustCompile(`snapshots used: 1/2`),
		regexp.MustCompile(`pk[0-9a-z-]+ +"before the kernel update" +(2 days 23:5[0-9]:[0-9]{2}|3 days 00:00:00) left`),
		regexp.MustCompile(`the page says: The rollback has been started\.`),
		regexp.MustCompile(`Proxmox has the VM back at snapshot pk[0-9a-z-]+\n +her page: Server running`),
		regexp.MustCompile(`WHMCS says: Module Command Success`),
		regexp.MustCompile(`made in [0-9.]+ s: alice-web\.example\.test\n +cores 2 +memory 4096`),
		regexp.MustCompile(`cloud-init: user alice, ip=192\.0\.2\.50/24,gw=192\.0\.2\.1`),
		regexp.MustCompile(`All three pages render\.`),
	} {
		if !want.Match(out) {
			t.Errorf("the demo's output lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "the job ended") {
		t.Errorf("a demo job failed:\n%s", out)
	}
}
