package e2e

import (
	"testing"
	"time"
)

// BenchmarkRestoreReconcileInOneTick measures, for a restore driven by a
// single long cron tick (cron mode): the time from the moment the job
// leaves the restore step (the qmrestore task ended and was seen) to the
// VM running with the package applied and the email sent, and that time
// as a share of the whole job. It watches the job row every few
// milliseconds while the tick runs. Figures only (make bench).
func BenchmarkRestoreReconcileInOneTick(b *testing.B) {
	var reconcile, whole time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		rw := newRestoreWorldB(b)
		j := rw.startRestore()
		b.StartTimer()
		start := time.Now()
		done := make(chan struct{})
		go func() {
			defer close(done)
			rw.php(map[string]any{"do": "cron", "servers": rw.cronServers(), "budget": 120})
		}()
		var leftRestore time.Time
		for {
			var step, state string
			if err := rw.db.Store.DB().QueryRow("SELECT step, state FROM mod_pvekeep_jobs WHERE id = ?", j.ID).Scan(&step, &state); err != nil {
				b.Fatal(err)
			}
			if leftRestore.IsZero() && step != "stop" && step != "restore" {
				leftRestore = time.Now()
			}
			if state == "succeeded" || state == "failed" {
				if state != "succeeded" {
					b.Fatalf("restore ended %s", state)
				}
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		end := time.Now()
		<-done
		reconcile += end.Sub(leftRestore)
		whole += end.Sub(start)
	}
	b.ReportMetric(float64(reconcile.Milliseconds())/float64(b.N), "reconcile-ms")
	b.ReportMetric(float64(whole.Milliseconds())/float64(b.N), "whole-ms")
	b.ReportMetric(100*float64(reconcile)/float64(whole), "reconcile-%")
}
