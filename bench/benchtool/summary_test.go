package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acme-payments/platform/internal/loadgen"
)

func writeFile(t *testing.T, dir, name string, v any) {
	t.Helper()
	var b []byte
	switch v := v.(type) {
	case string:
		b = []byte(v)
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func txReport(rate, acceptedPerSec, p50, e2eP99 float64) *loadgen.Report {
	return &loadgen.Report{
		Mode: loadgen.ModeTransactions, Rate: rate, AcceptedPerSec: acceptedPerSec,
		Latency: map[string]loadgen.Percentiles{
			"tx":                   {Count: 10, P50: p50},
			"enqueue_to_processed": {Count: 10, P99: e2eP99},
		},
		Accepted:     1000,
		CPU:          &loadgen.CPUUsage{Processes: map[string]float64{"core-api": 0.05}, Generator: 0.01, MachineBusy: 0.1, MachineAvailable: 0.2},
		Verification: &loadgen.Verification{Accepted: 10, Checked: 10, Processed: 10, DrainMethod: "queue", Drained: true, DrainSeconds: 0.01, ProcessedPerSec: acceptedPerSec},
	}
}

func TestSummary(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "cal-router.json", txReport(0, 32000, 1, 0))
	writeFile(t, dir, "cal-direct.json", txReport(0, 40000, 1, 0))
	txRouter := txReport(0, 16000, 3, 9)
	txRouter.Errors = map[string]int64{"tx 503": 2, "token 429": 1, "tx EOF": 3, "tx 502": 4}
	txRouter.Latency["tx_not_accepted"] = loadgen.Percentiles{Count: 9, P50: 0.4}
	writeFile(t, dir, "tx-router.json", txRouter)
	writeFile(t, dir, "tx-direct.json", txReport(0, 20000, 2.5, 8))
	for _, i := range []string{"1", "2"} {
		writeFile(t, dir, "overhead-router-"+i+".json", txReport(2000, 2000, 0.5, 1))
		writeFile(t, dir, "overhead-direct-"+i+".json", txReport(2000, 2000, 0.3, 1))
	}
	writeFile(t, dir, "e2e-half.json", txReport(8000, 8000, 0.4, 6))
	tok := &loadgen.Report{Mode: loadgen.ModeTokens, TokensPerSec: 25000, Latency: map[string]loadgen.Percentiles{"token": {Count: 5, P50: 1}}}
	writeFile(t, dir, "tokens-router.json", tok)
	writeFile(t, dir, "tokens-direct.json", tok)
	csv := "\"test\",\"rps\",\"avg_latency_ms\"\n\"XADD k * a 1\",\"80000.00\",\"0.5\"\n"
	writeFile(t, dir, "xadd.csv", csv)
	writeFile(t, dir, "xadd-p16.csv", csv)
	writeFile(t, dir, "rss-idle.json", rssFile{Processes: []proc{{PID: 1, Name: "redis-server", RSSKB: 10240}}, TotalKB: 10240})
	writeFile(t, dir, "rss-after.json", rssFile{Processes: []proc{{PID: 1, Name: "redis-server", RSSKB: 20480}}, TotalKB: 20480})
	writeFile(t, dir, "coldstart.json", coldFile{Runs: []coldStartRun{{ReadyMS: 200}, {ReadyMS: 250}, {ReadyMS: 400}}, Median: 250})

	var out, errOut bytes.Buffer
	// Runs before 2026-12-05 have no phase 2c: no row for it, and no error.
	if err := run(t.Context(), []string{"benchtool", "summary", "--dir", dir}, &out, &errOut); err != nil {
		t.Fatalf("summary without phase 2c: %v", err)
	}
	if strings.Contains(out.String(), "light load") || strings.Contains(out.String(), "2c tx") {
		t.Errorf("summary without phase 2c's files has a row for it:\n%s", out.String())
	}
	// Since 2026-12-06 phase 2c (and 2b) run with Poisson arrivals.
	for name, p50 := range map[string]float64{"router-1": 0.65, "direct-1": 0.3, "router-2": 0.5, "direct-2": 0.3} {
		rep := txReport(200, 100, p50, 1)
		rep.Arrivals = loadgen.ArrivalsPoisson
		writeFile(t, dir, "overhead-light-"+name+".json", rep)
	}

	out.Reset()
	if err := run(t.Context(), []string{"benchtool", "summary", "--dir", dir}, &out, &errOut); err != nil {
		t.Fatalf("summary: %v", err)
	}
	for _, want := range []string{
		"| 0 | calibration: HAProxy in front of a trivial handler, c=64 (same generator) | 32000/s (trivial handler direct 40000/s)",
		"| 1 | accepted tx/s through HAProxy, c=64 keep-alive | 16000/s (processed 16000/s; 50% of the calibration) | ≥ 15,000/s | met |",
		"| 2 | router p50 overhead, open loop, via HAProxy and direct at the same time, 2000/s each (HAProxy p50 − direct p50, per pair) | 0.200, 0.200 ms | ≤ 0.3 ms | met |",
		// One pair of two over 0.3 ms misses the target.
		"| 2 | router p50 overhead at a light load, open loop with Poisson arrivals, via HAProxy and direct at the same time, 200/s each (HAProxy p50 − direct p50, per pair) | 0.350, 0.200 ms | ≤ 0.3 ms | **missed** |",
		"| 2c tx via HAProxy #1 | open 200/s Poisson | 100 | tx | 0.650 |",
		"20000 / 80000 = 0.25",
		"| 4 | tokens/s through HAProxy, c=64 | 25000/s",
		"| 5 | enqueue→processed p99, open loop at half the max (8000/s) | 6.000 ms",
		"≤ 5 ms | **missed** |",
		"| 6 | cold start (empty state) to both routes 200, median of 3 | 250 ms (runs: 200, 250, 400) | ≤ 300 ms | met |",
		"| 7 | RSS of the whole stack, idle | 10.0 MB | ≤ 100 MB | met |",
		"| redis-server | 10.0 | 20.0 |",
		"| 1 tx via HAProxy | 16000 | 0.0 | 0.0 | 50.0 | 0.0 | 0.0 | 0.0 | 10.0 | 50.0 | 40.0 | 50% |",
		// The tries not accepted have a row of their own (until
		// 2026-12-07 the summary left them out).
		"| 1 tx via HAProxy | closed | 16000 | tx_not_accepted | 0.400 |",
		// Errors by kind in a stable order, not the map's.
		"| 1 tx via HAProxy | | | errors | token 429: 1, tx 502: 4, tx 503: 2, tx EOF: 3 |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}

	out.Reset()
	if err := run(t.Context(), []string{"benchtool", "rate", "--file", filepath.Join(dir, "tx-router.json"), "--fraction", "0.5"}, &out, &errOut); err != nil || out.String() != "8000\n" {
		t.Errorf("rate: got %q, %v, want 8000", out.String(), err)
	}

	// Half of 1.5/s is below 1/s: printed as 0 it would make bench/run.sh's
	// open loop (--rate 0) a closed one.
	slow := t.TempDir()
	writeFile(t, slow, "tx-router.json", txReport(0, 1.5, 3, 9))
	out.Reset()
	if err := run(t.Context(), []string{"benchtool", "rate", "--file", filepath.Join(slow, "tx-router.json"), "--fraction", "0.5"}, &out, &errOut); err == nil || !strings.Contains(err.Error(), "below 1/s") {
		t.Errorf("rate of half of 1.5/s: got %q, %v, want an error saying it is below 1/s", out.String(), err)
	}

	empty := t.TempDir()
	if err := run(t.Context(), []string{"benchtool", "summary", "--dir", empty}, &out, &errOut); err == nil {
		t.Errorf("summary of an empty directory: got nil error, want one naming the missing files")
	}
}
