package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const usage = `usage:
  benchtool coldstart --up CMD --down CMD --url URL [--url URL ...] [--runs 5] [--json]
      runs CMD down, then times CMD up until every URL answers 200 (polled every
      millisecond), then CMD down again; repeated --runs times; prints each run
      and the median.
  benchtool rss --pid PID [--settle 1s] [--json]
      prints the resident memory (VmRSS) of PID and all its descendants that
      live through --settle (read at its start and end); processes that come
      and go meanwhile, such as process-compose's readiness probes, are listed
      apart and not in the total.
  benchtool echo --addr HOST:PORT
      serves a trivial stand-in of the API (fixed JSON, nothing stored) until
      interrupted: the ceiling of the load generator and HAProxy alone.
  benchtool rate --file REPORT.json --fraction F
      prints F times the accepted tx/s of a loadgen --json report, rounded down.
  benchtool summary --dir DIR
      prints the markdown tables of BENCHMARKS.md from the results bench/run.sh
      wrote into DIR.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return errors.New("no subcommand")
	}
	switch args[1] {
	case "coldstart":
		return coldstart(ctx, args[2:], stdout, stderr)
	case "rss":
		return rss(args[2:], stdout, stderr)
	case "summary":
		return summary(args[2:], stdout, stderr)
	case "rate":
		return rate(args[2:], stdout, stderr)
	case "echo":
		return echo(ctx, args[2:], stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown subcommand %q", args[1])
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// coldStartRun is one timed start.
type coldStartRun struct {
	// ReadyMS is from launching the up command to every URL answering 200.
	ReadyMS float64 `json:"ready_ms"`
	// UpCommandMS is how long the up command itself took to return.
	UpCommandMS float64 `json:"up_command_ms"`
}

func coldstart(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("coldstart", flag.ContinueOnError)
	fs.SetOutput(stderr)
	up := fs.String("up", "", "shell command that starts the stack")
	down := fs.String("down", "", "shell command that stops the stack")
	var urls listFlag
	fs.Var(&urls, "url", "URL that must answer 200 (repeatable)")
	runs := fs.Int("runs", 5, "number of starts")
	timeout := fs.Duration("timeout", 30*time.Second, "give up on one start after this long")
	jsonOut := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *up == "" || *down == "" || len(urls) == 0 || *runs < 1 {
		return errors.New("coldstart needs --up, --down, at least one --url and --runs >= 1")
	}
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var results []coldStartRun
	for i := 0; i < *runs; i++ {
		if err := shell(ctx, *down, stderr); err != nil {
			return fmt.Errorf("down before run %d: %w", i+1, err)
		}
		r, err := oneStart(ctx, client, *up, urls, *timeout, stderr)
		if err != nil {
			_ = shell(context.WithoutCancel(ctx), *down, stderr)
			return fmt.Errorf("run %d: %w", i+1, err)
		}
		results = append(results, r)
		fmt.Fprintf(stderr, "coldstart run %d: ready %.1f ms (up command returned after %.1f ms)\n", i+1, r.ReadyMS, r.UpCommandMS)
	}
	if err := shell(ctx, *down, stderr); err != nil {
		return fmt.Errorf("final down: %w", err)
	}
	ready := make([]float64, len(results))
	for i, r := range results {
		ready[i] = r.ReadyMS
	}
	med := median(ready)
	if *jsonOut {
		return json.NewEncoder(stdout).Encode(map[string]any{"runs": results, "median_ready_ms": med})
	}
	fmt.Fprintf(stdout, "cold start to %s all 200: median %.1f ms over %d runs %v\n", strings.Join(urls, " and "), med, len(results), ready)
	return nil
}

// oneStart launches up (without waiting for it to return) and polls every
// URL until each has answered 200 once.
func oneStart(ctx context.Context, client *http.Client, up string, urls []string, timeout time.Duration, stderr io.Writer) (coldStartRun, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, "sh", "-c", up)
	cmd.Stdout, cmd.Stderr = io.Discard, stderr
	if err := cmd.Start(); err != nil {
		return coldStartRun{}, err
	}
	upDone := make(chan error, 1)
	var upTook time.Duration
	go func() { err := cmd.Wait(); upTook = time.Since(start); upDone <- err }()

	ok := make([]bool, len(urls))
	var ready time.Duration
	for ready == 0 {
		all := true
		for i, u := range urls {
			if ok[i] {
				continue
			}
			ok[i] = get200(ctx, client, u)
			all = all && ok[i]
		}
		if all {
			ready = time.Since(start)
			break
		}
		if ctx.Err() != nil {
			return coldStartRun{}, fmt.Errorf("not every URL answered 200 within %v", timeout)
		}
		time.Sleep(time.Millisecond)
	}
	if err := <-upDone; err != nil {
		return coldStartRun{}, fmt.Errorf("up command: %w", err)
	}
	return coldStartRun{ReadyMS: ms(ready), UpCommandMS: ms(upTook)}, nil
}

func get200(ctx context.Context, client *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func shell(ctx context.Context, command string, stderr io.Writer) error {
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	cmd.Stdout, cmd.Stderr = io.Discard, stderr
	return cmd.Run()
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func median(v []float64) float64 {
	s := slices.Clone(v)
	sort.Float64s(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

// proc is one process's memory.
type proc struct {
	PID   int    `json:"pid"`
	PPID  int    `json:"ppid"`
	Name  string `json:"name"`
	RSSKB int64  `json:"rss_kb"`
	start int64  // start time (ticks since boot), to tell a reused pid
}

func rss(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rss", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pid := fs.Int("pid", 0, "root process")
	settle := fs.Duration("settle", time.Second, "count only the processes alive at both ends of this interval")
	jsonOut := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *pid <= 0 || *settle < 0 {
		return errors.New("rss needs --pid and a --settle that is not negative")
	}
	procs, transient, err := stableTree(*pid, func() { time.Sleep(*settle) })
	if err != nil {
		return err
	}
	var total int64
	for _, p := range procs {
		total += p.RSSKB
	}
	if *jsonOut {
		return json.NewEncoder(stdout).Encode(map[string]any{"processes": procs, "total_kb": total, "transient": transient})
	}
	for _, p := range procs {
		fmt.Fprintf(stdout, "%-16s pid %-7d %8.1f MB\n", p.Name, p.PID, float64(p.RSSKB)/1024)
	}
	fmt.Fprintf(stdout, "%-16s %12s %8.1f MB\n", "total", "", float64(total)/1024)
	for _, p := range transient {
		fmt.Fprintf(stdout, "%-16s pid %-7d %8.1f MB  (transient, not in the total)\n", p.Name, p.PID, float64(p.RSSKB)/1024)
	}
	return nil
}

// stableTree reads root's tree, calls between, and reads it again. The
// processes of the second reading that were in the first one (same pid and
// start time) are the tree's; the others, and those of the first reading
// that were gone by the second, came and went (a readiness probe, which
// process-compose runs as a new process every few seconds) and are
// returned apart: one reading alone would add a probe's few MB to the
// stack's memory whenever it happened to run.
func stableTree(root int, between func()) (stable, transient []proc, err error) {
	first, err := tree(root)
	if err != nil {
		return nil, nil, err
	}
	between()
	second, err := tree(root)
	if err != nil {
		return nil, nil, err
	}
	seen := map[int]int64{}
	for _, p := range first {
		seen[p.PID] = p.start
	}
	kept := map[int]bool{}
	for _, p := range second {
		if start, ok := seen[p.PID]; ok && start == p.start {
			stable = append(stable, p)
			kept[p.PID] = true
		} else {
			transient = append(transient, p)
		}
	}
	for _, p := range first {
		if !kept[p.PID] {
			transient = append(transient, p)
		}
	}
	return stable, transient, nil
}

// tree returns root and its descendants, read from /proc.
func tree(root int) ([]proc, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	all := map[int]proc{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p, err := readProc(pid)
		if err != nil {
			continue // exited meanwhile
		}
		all[pid] = p
	}
	if _, ok := all[root]; !ok {
		return nil, fmt.Errorf("no process %d", root)
	}
	var out []proc
	want := map[int]bool{root: true}
	for changed := true; changed; {
		changed = false
		for pid, p := range all {
			if !want[pid] && want[p.PPID] {
				want[pid], changed = true, true
			}
		}
	}
	for pid := range want {
		out = append(out, all[pid])
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PID < out[j].PID })
	return out, nil
}

func readProc(pid int) (proc, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return proc{}, err
	}
	p := proc{PID: pid}
	// The start time is field 22 of stat, 20 fields after the name's ')'.
	if st, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat")); err == nil {
		if i := bytes.LastIndexByte(st, ')'); i >= 0 {
			if f := strings.Fields(string(st[i+1:])); len(f) > 19 {
				p.start, _ = strconv.ParseInt(f[19], 10, 64)
			}
		}
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Name":
			p.Name = v
		case "PPid":
			p.PPID, _ = strconv.Atoi(v)
		case "VmRSS":
			p.RSSKB, _ = strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
		}
	}
	// The stack's watchdog is the launcher (stack, or .stack-wrapped in
	// the Nix package) running `watchdog`: named by its job, as in
	// process-compose.yaml.
	if cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline")); err == nil {
		if args := strings.Split(string(cmdline), "\x00"); len(args) > 1 && args[1] == "watchdog" {
			p.Name = "watchdog"
		}
	}
	return p, nil
}
