package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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
	// Leftover lists the stack's processes still running after
	// process-compose is gone (`stack down` stops them).
	Leftover []leftoverProcess `json:"leftover,omitempty"`
	// Error says what is wrong when the exit status is 1.
	Error string `json:"error,omitempty"`
	// Warning names the bad settings status went past, at their defaults:
	// it needs only the state dir.
	Warning string `json:"warning,omitempty"`
}

// leftoverProcess is a process of the stack that process-compose left.
type leftoverProcess struct {
	Name string `json:"name"`
	Pid  int    `json:"pid"`
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

// status prints every process's state. Exit status 3 when not running; 1,
// with the report's error, when process-compose runs but does not answer or
// is gone and left processes behind.
func (l *launcher) status(ctx context.Context, args []string) error {
	fs := newFlagSet("status")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := l.parseFlags(fs, args); err != nil {
		return err
	}
	c := l.cfg
	client := procompose.NewClient(c.ProcessComposeSocket())
	defer client.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()

	urls := l.urls()
	rep := statusReport{
		StateDir:    c.StateDir,
		PlatformURL: urls.PlatformURL,
		StatsURL:    urls.StatsURL,
		Processes:   []processReport{},
	}
	// Nothing of a state dir that is not this user's to trust is used.
	var procs []procompose.Process
	problem := l.checkStateDir(c.ProcessComposeSocket(), l.pidFile())
	if problem == nil {
		var err error
		procs, err = client.Processes(ctx)
		// Without an API process-compose itself may still run (starting, or stuck).
		rep.ProcessComposePid = l.processComposePid()
		switch {
		case err == nil:
			rep.Running = true
			if urls, ok := l.readLaunched(); ok {
				rep.PlatformURL, rep.StatsURL = urls.PlatformURL, urls.StatsURL
			}
			for _, p := range procs {
				rep.Processes = append(rep.Processes, processReport{
					Name: p.Name, Status: p.Status, Ready: p.Ready(), Pid: p.Pid,
					Restarts: p.Restarts, ExitCode: p.ExitCode, UptimeMS: p.Age.Milliseconds(),
				})
			}
		case rep.ProcessComposePid > 0:
			problem = errNotAnswering(rep.ProcessComposePid, c.ProcessComposeSocket(), err)
		case notThisUsers(c.StateDir, err) != nil:
			problem = notThisUsers(c.StateDir, err)
		case !apiGone(err, rep.ProcessComposePid):
			problem = err
		default:
			left := strays(c.StateDir)
			for _, p := range left {
				rep.Leftover = append(rep.Leftover, leftoverProcess{Name: processName(p.Name), Pid: p.Pid})
			}
			if len(left) > 0 {
				problem = fmt.Errorf("process-compose is gone but processes of this stack still run (%s); stop them with `stack down`", describeProcs(left))
			}
		}
	}
	if problem != nil {
		rep.Error = problem.Error()
	}
	if l.skipped != nil {
		rep.Warning = l.skipped.Error()
	}

	switch {
	case *asJSON:
		if err := l.writeStatusJSON(rep); err != nil {
			return err
		}
	case rep.Running:
		fmt.Fprintf(l.stdout, "stack: running (process-compose pid %d, state dir %s)\n", rep.ProcessComposePid, l.rel(c.StateDir))
		tw := tabwriter.NewWriter(l.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "PROCESS\tSTATUS\tREADY\tPID\tRESTARTS\tUPTIME")
		for _, p := range procs {
			ready := "no"
			if p.Ready() {
				ready = "yes"
			}
			pid, uptime := "-", "-"
			if hasProcess(p.Status) {
				pid, uptime = strconv.Itoa(p.Pid), p.Age.Round(time.Second).String()
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", p.Name, p.Status, ready, pid, p.Restarts, uptime)
		}
		tw.Flush()
		fmt.Fprintf(l.stdout, "platform %s, HAProxy stats %s\n", rep.PlatformURL, rep.StatsURL)
	case problem == nil:
		fmt.Fprintf(l.stdout, "stack: not running (state dir %s)\n", l.rel(c.StateDir))
	}
	switch {
	case rep.Running:
		return nil
	case problem != nil:
		return problem
	}
	return &exitError{code: 3}
}

// writeStatusJSON prints rep as `stack status --json` does.
func (l *launcher) writeStatusJSON(rep statusReport) error {
	enc := json.NewEncoder(l.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// launchedURLs are the running stack's URLs, which `up` records: `status`
// run with other settings (another PLATFORM_PORT in this shell) still shows
// where the stack listens.
type launchedURLs struct {
	PlatformURL string `json:"platform_url"`
	StatsURL    string `json:"stats_url"`
}

// launchedFile is where up records launchedURLs, next to the sockets.
func (l *launcher) launchedFile() string {
	return filepath.Join(l.cfg.RunDir(), "launched.json")
}

// urls are this configuration's URLs.
func (l *launcher) urls() launchedURLs {
	c := l.cfg
	return launchedURLs{
		PlatformURL: fmt.Sprintf("http://%s:%d", c.PlatformHost, c.PlatformPort),
		StatsURL:    fmt.Sprintf("http://127.0.0.1:%d/stats", c.StatsPort),
	}
}

func (l *launcher) writeLaunched() error {
	b, err := json.Marshal(l.urls())
	if err != nil {
		return err
	}
	return os.WriteFile(l.launchedFile(), b, 0o600)
}

func (l *launcher) readLaunched() (launchedURLs, bool) {
	var u launchedURLs
	b, err := os.ReadFile(l.launchedFile())
	if err != nil || json.Unmarshal(b, &u) != nil || u.PlatformURL == "" {
		return u, false
	}
	return u, true
}

// hasProcess reports whether a process in status has a process of its own,
// whose pid and uptime mean something: Running, or Terminating (being
// stopped). process-compose keeps a stopped process's last pid, and an age
// that stood still when it was last asked while the process ran (2 s shown
// for one that had run 11 s, after a stop through its API), so the table
// shows "-" for both then; --json keeps its figures, with the status.
func hasProcess(status string) bool {
	return status == procompose.StatusRunning || status == procompose.StatusTerminating
}
