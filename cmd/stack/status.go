package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/acme-payments/platform/internal/procompose"
)

// statusReport is `stack status --json`.
type statusReport struct {
	Running           bool            `json:"running"`
	StateDir          string          `json:"state_dir"`
	ProcessComposePid int             `json:"process_compose_pid,omitempty"`
	PlatformURL       string          `json:"platform_url"`
	StatsURL          string          `json:"stats_url"`
	Processes         []processReport `json:"processes"`
}

type processReport struct {
	Name     string `json:"name"`
	Status   string `json:"status"`
	Ready    bool   `json:"ready"`
	Pid      int    `json:"pid"`
	Restarts int    `json:"restarts"`
	ExitCode int    `json:"exit_code"`
	UptimeMS int64  `json:"uptime_ms"`
}

// status prints every process's state; exit status 3 when not running.
func (l *launcher) status(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(l.stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, err: err}
	}
	c := l.cfg
	client := procompose.NewClient(c.ProcessComposeSocket())
	defer client.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()

	rep := statusReport{
		StateDir:    c.StateDir,
		PlatformURL: fmt.Sprintf("http://%s:%d", c.PlatformHost, c.PlatformPort),
		StatsURL:    fmt.Sprintf("http://127.0.0.1:%d/stats", c.StatsPort),
		Processes:   []processReport{},
	}
	procs, err := client.Processes(ctx)
	// Without an API process-compose itself may still run (starting, or stuck).
	rep.ProcessComposePid = l.processComposePid()
	if err != nil && !errors.Is(err, procompose.ErrNotRunning) {
		if rep.ProcessComposePid > 0 {
			return errNotAnswering(rep.ProcessComposePid, c.ProcessComposeSocket(), err)
		}
		return err
	}
	if err == nil {
		rep.Running = true
		for _, p := range procs {
			rep.Processes = append(rep.Processes, processReport{
				Name: p.Name, Status: p.Status, Ready: p.Ready(), Pid: p.Pid,
				Restarts: p.Restarts, ExitCode: p.ExitCode, UptimeMS: p.Age.Milliseconds(),
			})
		}
	}

	if *asJSON {
		enc := json.NewEncoder(l.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else if !rep.Running && rep.ProcessComposePid == 0 {
		fmt.Fprintf(l.stdout, "stack: not running (state dir %s)\n", l.rel(c.StateDir))
	} else if rep.Running {
		fmt.Fprintf(l.stdout, "stack: running (process-compose pid %d, state dir %s)\n", rep.ProcessComposePid, l.rel(c.StateDir))
		tw := tabwriter.NewWriter(l.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "PROCESS\tSTATUS\tREADY\tPID\tRESTARTS\tUPTIME")
		for _, p := range procs {
			ready := "no"
			if p.Ready() {
				ready = "yes"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", p.Name, p.Status, ready, p.Pid, p.Restarts, p.Age.Round(time.Second))
		}
		tw.Flush()
		fmt.Fprintf(l.stdout, "platform %s, HAProxy stats %s\n", rep.PlatformURL, rep.StatsURL)
	}
	switch {
	case rep.Running:
		return nil
	case rep.ProcessComposePid > 0:
		return errNotAnswering(rep.ProcessComposePid, c.ProcessComposeSocket(), nil)
	}
	if left := strays(c.StateDir); len(left) > 0 {
		return fmt.Errorf("process-compose is gone but processes of this stack still run (%s); stop them with `stack down`", describeProcs(left))
	}
	return &exitError{code: 3}
}
