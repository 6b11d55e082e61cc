package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// cronProcess runs the panel's cron entry (cronjob/cron.php → cron.tick)
// in a PHP process of its own, which spawns its own plugin process.
func cronProcess(w *world, budget float64) error {
	raw, _ := json.Marshal(map[string]any{"do": "cron", "servers": w.cronServers(), "budget": budget})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, w.phpBin, filepath.Join(repoDir, "hooks", "tests", "e2e", "driver.php"), string(raw))
	c.Env = append(os.Environ(), "PVEKEEP_BIN="+binary, "PVEKEEP_DSN="+w.db.DSN, "PVEKEEP_MODULE_LOG="+w.modLog)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		return fmt.Errorf("cron: %v: %s", err, stderr.String())
	}
	var out outcome
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return fmt.Errorf("cron printed %q: %v", stdout.String(), err)
	}
	if out.Error != nil || out.TransportError != "" {
		return fmt.Errorf("cron.tick: %+v %s", out.Error, out.TransportError)
	}
	return nil
}

// Two panel crons at once, each its own PHP and plugin process, over six
// due schedules on two nodes: each due backup is taken exactly once, and
// never two at once on a node (the per-node limit holds across processes).
func TestTwoCronProcessesTakeEachScheduledBackupOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	var customers []customer
	for vmid := 100; vmid < 106; vmid++ {
		c := w.newCustomer(vmid, 3)
		customers = append(customers, c)
		// Every day, a minute ago, in the panel's zone as the page sends it.
		hhmm := time.Now().UTC().Add(-time.Minute).Format("15:04")
		var days []map[string]any
		for _, d := range []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"} {
			days = append(days, map[string]any{"day": d, "enabled": true, "time": hhmm})
		}
		var res struct {
			Schedule struct {
				Timezone string `json:"timezone"`
			} `json:"schedule"`
			NextRunAt *string `json:"next_run_at"`
		}
		w.mustCall(c, "schedule.set", map[string]any{"timezone": "", "panel_timezone": "UTC", "days": days}, &res)
		if res.Schedule.Timezone != "UTC" || res.NextRunAt == nil {
			t.Fatalf("schedule.set answered %+v", res)
		}
	}
	// A minute ago has passed today: saving waits for tomorrow's. Bring the
	// stored next run to now, as if the day had gone by (the processes run
	// on the real clock).
	if _, err := w.db.Store.DB().ExecContext(ctx, `UPDATE mod_pvekeep_schedules SET next_run_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND`); err != nil {
		t.Fatal(err)
	}

	done := func() bool {
		var n int
		if err := w.db.Store.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM mod_pvekeep_schedule_runs WHERE state = 'done'`).Scan(&n); err != nil {
			t.Error(err)
			return true
		}
		return n == len(customers)
	}
	stop := make(chan struct{})
	peakCh := make(chan int, 1)
	go func() {
		peak := 0
		for {
			perNode := map[string]int{}
			for _, task := range w.sim.State().Tasks {
				if task.Type == "vzdump" && task.Status == "running" {
					perNode[task.Node]++
					peak = max(peak, perNode[task.Node])
				}
			}
			select {
			case <-stop:
				peakCh <- peak
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	var wg sync.WaitGroup
	deadline := time.Now().Add(3 * time.Minute)
	for range 2 {
		wg.Go(func() {
			for !done() {
				if time.Now().After(deadline) {
					t.Error("scheduled backups not all done within 3 minutes")
					return
				}
				if err := cronProcess(w, 1); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	if p := <-peakCh; p > 1 {
		t.Errorf("%d vzdumps ran at once on one node, want at most 1", p)
	}
	count := map[string]int{}
	for _, task := range w.sim.State().Tasks {
		if task.Type == "vzdump" {
			count[task.ID]++
		}
	}
	for _, c := range customers {
		if n := count[strconv.Itoa(c.vmid)]; n != 1 {
			t.Errorf("VM %d: %d vzdumps, want exactly 1 (all %v)", c.vmid, n, count)
		}
		var l struct {
			Items    []backupItem `json:"items"`
			Schedule struct {
				LastRun *struct {
					State    string `json:"state"`
					Attempts int    `json:"attempts"`
				} `json:"last_run"`
			} `json:"schedule"`
		}
		w.mustCall(c, "backups.list", map[string]any{"panel_timezone": "UTC"}, &l)
		if len(l.Items) != 1 || l.Items[0].Origin != "scheduled" || l.Schedule.LastRun == nil ||
			l.Schedule.LastRun.State != "done" || l.Schedule.LastRun.Attempts != 1 {
			t.Errorf("VM %d: backups.list %+v, want one scheduled backup and its run done in one attempt", c.vmid, l)
		}
	}
}
