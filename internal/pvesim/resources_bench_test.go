package pvesim

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"
)

// GET /cluster/resources?type=vm over 10,000 VMs on 50 nodes: what a
// cron tick's facts refresh asks once per server (issue 9's Measure).
func BenchmarkClusterResources(b *testing.B) {
	s := New(Options{Nodes: 50, VMs: 10000, Speed: 1, Logger: slog.New(slog.DiscardHandler)})
	info, err := s.Start("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	get := func() int {
		req, err := http.NewRequest(http.MethodGet, info.URL+"/cluster/resources?type=vm", nil)
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Authorization", fmt.Sprintf("PVEAPIToken=%s=%s", info.TokenID, info.TokenSecret))
		res, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer res.Body.Close()
		n, err := io.Copy(io.Discard, res.Body)
		if err != nil || res.StatusCode != http.StatusOK {
			b.Fatalf("status %d, %v", res.StatusCode, err)
		}
		return int(n)
	}
	get() // the connection
	b.ResetTimer()
	var size int
	for range b.N {
		size = get()
	}
	b.ReportMetric(float64(size)/(1<<20), "body-MiB")
}
