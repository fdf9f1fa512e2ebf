package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/acme-payments/platform/internal/loadgen"
)

// summary reads the files bench/run.sh wrote into dir and prints the
// BENCHMARKS.md tables: every figure, its target, and the ratios.
func summary(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("summary", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "results directory of one bench/run.sh run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("summary needs --dir")
	}
	s := &sum{dir: *dir}
	s.write(stdout)
	if len(s.missing) > 0 {
		return fmt.Errorf("missing or unreadable results: %s", strings.Join(s.missing, ", "))
	}
	return nil
}

type sum struct {
	dir     string
	missing []string
}

// readJSON decodes the results file name into a new T, or records it as
// missing and returns nil.
func readJSON[T any](s *sum, name string) *T {
	var v T
	b, err := os.ReadFile(filepath.Join(s.dir, name))
	if err == nil {
		err = json.Unmarshal(b, &v)
	}
	if err != nil {
		s.missing = append(s.missing, name)
		return nil
	}
	return &v
}

func (s *sum) report(name string) *loadgen.Report { return readJSON[loadgen.Report](s, name) }

// readOptionalJSON is readJSON for a file older runs may lack: nil, not
// missing, when it is absent.
func readOptionalJSON[T any](s *sum, name string) *T {
	if _, err := os.Stat(filepath.Join(s.dir, name)); err != nil {
		return nil
	}
	return readJSON[T](s, name)
}

// reportOptional is report for a file older runs may lack.
func (s *sum) reportOptional(name string) *loadgen.Report {
	return readOptionalJSON[loadgen.Report](s, name)
}

// overheadPairs reads the two pairs of a router-overhead phase of
// bench/run.sh, name-router-<i>.json and name-direct-<i>.json, with read.
func (s *sum) overheadPairs(name string, read func(string) *loadgen.Report) (viaRouter, direct [2]*loadgen.Report) {
	for i := range 2 {
		viaRouter[i] = read(fmt.Sprintf("%s-router-%d.json", name, i+1))
		direct[i] = read(fmt.Sprintf("%s-direct-%d.json", name, i+1))
	}
	return viaRouter, direct
}

// overheadRow writes figure 2's row for the pairs of one overhead phase: the
// p50 through HAProxy minus the p50 direct, pair by pair, against 0.3 ms.
func overheadRow(w io.Writer, load string, viaRouter, direct [2]*loadgen.Report) {
	var diffs []string
	ok := true
	rate := 0.0
	loop := "open loop" // evenly spaced: every run before 2026-12-06

	for i := range viaRouter {
		if viaRouter[i] == nil || direct[i] == nil {
			ok = false
			continue
		}
		diff := lat(viaRouter[i], "tx").P50 - lat(direct[i], "tx").P50
		diffs = append(diffs, fmt.Sprintf("%.3f", diff))
		ok = ok && diff <= 0.3
		rate = viaRouter[i].Rate
		if viaRouter[i].Arrivals == loadgen.ArrivalsPoisson {
			loop = "open loop with Poisson arrivals"
		}
	}
	fmt.Fprintf(w, "| 2 | router p50 overhead%s, %s, via HAProxy and direct at the same time, %.0f/s each (HAProxy p50 − direct p50, per pair) | %s ms | ≤ 0.3 ms | %s |\n",
		load, loop, rate, strings.Join(diffs, ", "), verdict(ok))
}

// xadd reads redis-benchmark --csv output: the rps column of the first row.
func (s *sum) xadd(name string) float64 {
	f, err := os.Open(filepath.Join(s.dir, name))
	if err != nil {
		s.missing = append(s.missing, name)
		return 0
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) < 2 {
		s.missing = append(s.missing, name)
		return 0
	}
	for i, h := range rows[0] {
		if h == "rps" && i < len(rows[1]) {
			v, err := strconv.ParseFloat(rows[1][i], 64)
			if err == nil {
				return v
			}
		}
	}
	s.missing = append(s.missing, name)
	return 0
}

type rssFile struct {
	Processes []proc `json:"processes"`
	TotalKB   int64  `json:"total_kb"`
}

func (s *sum) rss(name string) *rssFile { return readJSON[rssFile](s, name) }

type coldFile struct {
	Runs   []coldStartRun `json:"runs"`
	Median float64        `json:"median_ready_ms"`
}

func (s *sum) cold(name string) *coldFile { return readJSON[coldFile](s, name) }

// coldOptional is cold for a file older runs may lack.
func (s *sum) coldOptional(name string) *coldFile { return readOptionalJSON[coldFile](s, name) }

func (c *coldFile) runs() string {
	var runs []string
	for _, r := range c.Runs {
		runs = append(runs, fmt.Sprintf("%.0f", r.ReadyMS))
	}
	return strings.Join(runs, ", ")
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func lat(r *loadgen.Report, k string) loadgen.Percentiles {
	if r == nil {
		return loadgen.Percentiles{}
	}
	return r.Latency[k]
}

func drain(r *loadgen.Report) (float64, bool) {
	if r == nil || r.Verification == nil || !r.Verification.Drained {
		return 0, false
	}
	return r.Verification.DrainSeconds, true
}

func verified(r *loadgen.Report) string {
	if r == nil {
		return "no result"
	}
	if err := r.Err(); err != nil {
		return "FAILED: " + strings.ReplaceAll(err.Error(), "\n", "; ")
	}
	if v := r.Verification; v != nil && v.Checked == 0 && v.DrainMethod == "none" {
		return "not verified (nothing queued behind it)"
	} else if v != nil {
		return fmt.Sprintf("%d accepted, %d checked, %d processed, 0 lost", v.Accepted, v.Checked, v.Processed)
	}
	return "n/a"
}

func (s *sum) write(w io.Writer) {
	calR, calD := s.report("cal-router.json"), s.report("cal-direct.json")
	router, direct := s.report("tx-router.json"), s.report("tx-direct.json")
	tokR, tokD := s.report("tokens-router.json"), s.report("tokens-direct.json")
	half := s.report("e2e-half.json")
	ovR, ovD := s.overheadPairs("overhead", s.report)
	// Phase 2c, since 2026-12-05: older runs lack it.
	lightR, lightD := s.overheadPairs("overhead-light", s.reportOptional)
	xadd, xaddP := s.xadd("xadd.csv"), s.xadd("xadd-p16.csv")
	idle, after := s.rss("rss-idle.json"), s.rss("rss-after.json")
	cold := s.cold("coldstart.json")

	acc := func(r *loadgen.Report) float64 {
		if r == nil {
			return 0
		}
		return r.AcceptedPerSec
	}
	processed := func(r *loadgen.Report) float64 {
		if r == nil || r.Verification == nil {
			return 0
		}
		return r.Verification.ProcessedPerSec
	}
	toks := func(r *loadgen.Report) float64 {
		if r == nil {
			return 0
		}
		return r.TokensPerSec
	}
	ratio := func(a, b float64) string {
		if b == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.2f", a/b)
	}

	fmt.Fprintln(w, "| # | figure | measured | target | verdict |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	fmt.Fprintf(w, "| 0 | calibration: HAProxy in front of a trivial handler, c=64 (same generator) | %.0f/s (trivial handler direct %.0f/s) | about 45,000/s on a quiet machine | — |\n",
		acc(calR), acc(calD))
	d, drained := drain(router)
	fmt.Fprintf(w, "| 1 | accepted tx/s through HAProxy, c=64 keep-alive | %.0f/s (processed %.0f/s; %s of the calibration) | ≥ 15,000/s | %s |\n",
		acc(router), processed(router), pct(acc(router), acc(calR)), verdict(acc(router) >= 15000))
	fmt.Fprintf(w, "| 1 | backlog drained after the load stops | %s | ≤ 1 s | %s |\n", drainText(d, drained), verdict(drained && d <= 1))

	overheadRow(w, "", ovR, ovD)
	if lightR[0] != nil || lightR[1] != nil {
		overheadRow(w, " at a light load", lightR, lightD)
	}
	fmt.Fprintf(w, "| 2 | closed loop c=64: p50 HAProxy / direct | %.3f / %.3f ms (throughput ratio %s) | — | — |\n",
		lat(router, "tx").P50, lat(direct, "tx").P50, ratio(acc(router), acc(direct)))
	fmt.Fprintf(w, "| 3 | core-api enqueue rate (direct, c=64) / redis-benchmark XADD (c=64) | %.0f / %.0f = %s (XADD -P 16: %.0f) | ratio | — |\n",
		acc(direct), xadd, ratio(acc(direct), xadd), xaddP)
	fmt.Fprintf(w, "| 4 | tokens/s through HAProxy, c=64 | %.0f/s (direct to auth-api %.0f/s, ratio %s) | ≥ 20,000/s | %s |\n",
		toks(tokR), toks(tokD), ratio(toks(tokR), toks(tokD)), verdict(toks(tokR) >= 20000))
	hp := lat(half, "enqueue_to_processed")
	hrate := 0.0
	if half != nil {
		hrate = half.Rate
	}
	fmt.Fprintf(w, "| 5 | enqueue→processed p99, open loop at half the max (%.0f/s) | %.3f ms (p50 %.3f, p99.9 %.3f, max %.3f) | ≤ 5 ms | %s |\n",
		hrate, hp.P99, hp.P50, hp.P999, hp.Max, verdict(half != nil && hp.Count > 0 && hp.P99 <= 5))
	if cold != nil {
		fmt.Fprintf(w, "| 6 | cold start (empty state) to both routes 200, median of %d | %.0f ms (runs: %s) | ≤ 300 ms | %s |\n",
			len(cold.Runs), cold.Median, cold.runs(), verdict(cold.Median <= 300))
	}
	if withData := s.coldOptional("coldstart-data.json"); withData != nil {
		n, _ := os.ReadFile(filepath.Join(s.dir, "coldstart-data-xlen.txt"))
		fmt.Fprintf(w, "| 6 | cold start with the run's %s transactions in Redis, median of %d | %.0f ms (runs: %s) | — | — |\n",
			strings.TrimSpace(string(n)), len(withData.Runs), withData.Median, withData.runs())
	}
	if idle != nil {
		fmt.Fprintf(w, "| 7 | RSS of the whole stack, idle | %.1f MB | ≤ 100 MB | %s |\n", mb(idle.TotalKB), verdict(mb(idle.TotalKB) <= 100))
	}
	if after != nil {
		fmt.Fprintf(w, "| 7 | RSS of the whole stack, after the load | %.1f MB | — | — |\n", mb(after.TotalKB))
	}

	fmt.Fprintln(w)
	fmt.Fprintln(w, "Latency (ms) and verification of every load run:")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| run | loop | rate/s | what | p50 | p90 | p99 | p99.9 | max | count | verification |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
	runs := []struct {
		name string
		r    *loadgen.Report
	}{
		{"0 calibration via HAProxy", calR}, {"0 calibration direct", calD},
		{"1 tx via HAProxy", router}, {"2 tx direct", direct},
		{"2b tx via HAProxy #1", ovR[0]}, {"2b tx direct #1", ovD[0]},
		{"2b tx via HAProxy #2", ovR[1]}, {"2b tx direct #2", ovD[1]},
		{"2c tx via HAProxy #1", lightR[0]}, {"2c tx direct #1", lightD[0]},
		{"2c tx via HAProxy #2", lightR[1]}, {"2c tx direct #2", lightD[1]},
		{"4 tokens via HAProxy", tokR}, {"4 tokens direct", tokD},
		{"5 tx at half max", half},
	}
	for _, run := range runs {
		r := run.r
		if r == nil {
			continue
		}
		loop := "closed"
		if r.Rate > 0 {
			loop = fmt.Sprintf("open %.0f/s", r.Rate)
			if r.Arrivals == loadgen.ArrivalsPoisson {
				loop += " Poisson"
			}
		}
		achieved := r.AcceptedPerSec
		if r.Mode == loadgen.ModeTokens {
			achieved = r.TokensPerSec
		}
		for _, k := range loadgen.LatencyKinds() {
			p := r.Latency[k]
			if p.Count == 0 || (k == "token" && r.Mode != loadgen.ModeTokens) {
				continue
			}
			fmt.Fprintf(w, "| %s | %s | %.0f | %s | %.3f | %.3f | %.3f | %.3f | %.3f | %d | %s |\n",
				run.name, loop, achieved, k, p.P50, p.P90, p.P99, p.P999, p.Max, p.Count, verified(r))
		}
		if len(r.Errors) > 0 {
			var errs []string
			for _, k := range slices.Sorted(maps.Keys(r.Errors)) {
				errs = append(errs, fmt.Sprintf("%s: %d", k, r.Errors[k]))
			}
			fmt.Fprintf(w, "| %s | | | errors | %s | | | | | | |\n", run.name, strings.Join(errs, ", "))
		}
	}

	fmt.Fprintln(w)
	fmt.Fprintln(w, "CPU time per request during each load phase, µs (from /proc; \"other\" is everything else on the machine, e.g. other users):")
	fmt.Fprintln(w)
	cols := []string{"haproxy", "auth-api", "core-api", "psp-connector", "redis-server", "process-compose"}
	fmt.Fprintf(w, "| run | requests/s | %s | loadgen | stack total | other | machine busy |\n", strings.Join(cols, " | "))
	fmt.Fprintf(w, "|---|---|%s---|---|---|---|\n", strings.Repeat("---|", len(cols)))
	for _, run := range runs {
		r := run.r
		if r == nil || r.CPU == nil {
			continue
		}
		n, rate := r.Accepted, r.AcceptedPerSec
		if r.Mode == loadgen.ModeTokens {
			n, rate = r.Tokens, r.TokensPerSec
		}
		if n == 0 {
			continue
		}
		us := func(sec float64) float64 { return sec / float64(n) * 1e6 }
		var cells []string
		var stack float64
		for _, c := range cols {
			cells = append(cells, fmt.Sprintf("%.1f", us(r.CPU.Processes[c])))
		}
		for _, v := range r.CPU.Processes {
			stack += v
		}
		other := max(r.CPU.MachineBusy-stack-r.CPU.Generator, 0)
		busy := 0.0
		if r.CPU.MachineAvailable > 0 {
			busy = r.CPU.MachineBusy / r.CPU.MachineAvailable * 100
		}
		fmt.Fprintf(w, "| %s | %.0f | %s | %.1f | %.1f | %.1f | %.0f%% |\n",
			run.name, rate, strings.Join(cells, " | "), us(r.CPU.Generator), us(stack), us(other), busy)
	}

	if idle != nil || after != nil {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Resident memory (VmRSS) per process, MB:")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| process | idle | after the load |")
		fmt.Fprintln(w, "|---|---|---|")
		names := map[string][2]int64{}
		var order []string
		add := func(f *rssFile, col int) {
			if f == nil {
				return
			}
			for _, p := range f.Processes {
				k := p.Name
				if _, ok := names[k]; !ok {
					order = append(order, k)
				}
				v := names[k]
				v[col] += p.RSSKB
				names[k] = v
			}
		}
		add(idle, 0)
		add(after, 1)
		for _, k := range order {
			fmt.Fprintf(w, "| %s | %.1f | %.1f |\n", k, mb(names[k][0]), mb(names[k][1]))
		}
		var ti, ta int64
		if idle != nil {
			ti = idle.TotalKB
		}
		if after != nil {
			ta = after.TotalKB
		}
		fmt.Fprintf(w, "| **total** | **%.1f** | **%.1f** |\n", mb(ti), mb(ta))
	}
}

func pct(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f%%", a/b*100)
}

func drainText(d float64, ok bool) string {
	if !ok {
		return "not drained"
	}
	return fmt.Sprintf("%.3f s", d)
}

func mb(kb int64) float64 { return float64(kb) / 1024 }

// rate prints a fraction of a report's accepted rate (bench/run.sh's "half
// of the max rate").
func rate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("file", "", "loadgen --json report")
	fraction := fs.Float64("fraction", 0.5, "fraction of the accepted rate")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s := &sum{dir: filepath.Dir(*file)}
	r := s.report(filepath.Base(*file))
	if r == nil || r.AcceptedPerSec <= 0 {
		return fmt.Errorf("%s: no accepted rate", *file)
	}
	v := int64(r.AcceptedPerSec * *fraction)
	if v < 1 {
		// loadgen's --rate 0 is a closed loop: an open-loop phase would
		// silently measure something else.
		return fmt.Errorf("%s: %g of %.3f accepted/s is below 1/s; the stack accepted almost nothing (see that report's errors)",
			*file, *fraction, r.AcceptedPerSec)
	}
	_, err := fmt.Fprintf(stdout, "%d\n", v)
	return err
}
