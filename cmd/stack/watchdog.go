package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/acme-payments/platform/internal/logging"
	"github.com/acme-payments/platform/internal/procompose"
	"github.com/acme-payments/platform/internal/stackconfig"
)

// watchdog is the stack's liveness check, a process of process-compose.yaml:
//
//	stack watchdog --api <socket> [--after 15s] [--every 1s] <process>=<target> ...
//
// where a target is http://… or http-unix:<socket>:/<path> (a 200 counts:
// the Go services' GET /live, which answers 503 only when the process itself
// finds it is stuck, as psp-connector does when its consuming loop has
// started nothing for a while; HAProxy's /healthz; a 404 counts too, logged
// once: a service older than /live) or redis:<socket> (any
// reply to PING counts, -LOADING too). A 503 from /health would not do: it
// means a dependency is down (core-api's while Redis is), which a restart
// does not mend. HAProxy is asked on a unix socket in the state dir, in a frontend of
// its own: its stats port, which any local user can reach, takes 16
// connections, and one who held them made a healthy HAProxy look hung. It checks each
// target every --every (a check not answered within the tick goes on, and
// its answer, however late, counts: see tick) and, when one does not answer so, asks
// process-compose's API (on --api) whether it runs, and its pid. A process
// that runs and has answered nothing so for --after is hung (deadlocked,
// stopped with SIGSTOP, stuck in the kernel, its own loop stuck):
// the watchdog sends it SIGQUIT and SIGCONT if it is one of the platform's
// Go services (the Go runtime writes every goroutine's stack to its log and
// exits), or SIGTERM and SIGCONT (Redis, HAProxy); a process still running
// watchdogKillAfter later gets SIGKILL. process-compose then restarts it as
// after any crash (restart: always), keeping its log.
//
// process-compose cannot do this itself: it acts on a failed liveness probe
// only for is_daemon processes, and a readiness probe that reaches its
// failure_threshold stops the process for good (RELIABILITY.md D69).
//
// --after 0 restarts nothing: the watchdog still logs when a process stops
// answering and when it answers again (for a debugger's breakpoints, say).
// It logs JSON lines on stdout (logs/watchdog.log) and exits when its
// parent, process-compose, is gone.
func watchdog(ctx context.Context, args, environ []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("watchdog", flag.ContinueOnError)
	fs.SetOutput(stdout)
	api := fs.String("api", "", "process-compose's API socket")
	after := fs.Duration("after", 15*time.Second, "restart a process that has not answered as alive for this long (0: only log)")
	every := fs.Duration("every", time.Second, "check every process this often")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil // the flag package printed the usage
		}
		return &exitError{code: 2, err: err}
	}
	level, err := logging.ParseLevel(lookupEnv(environ, "LOG_LEVEL"))
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("LOG_LEVEL: %w", err)}
	}
	usage := "usage: stack watchdog --api <socket> [--after 15s] [--every 1s] <process>=<target> ...; each is " + watchTargetForms
	switch {
	case *api == "":
		return &exitError{code: 2, err: errors.New("--api is required; " + usage)}
	case fs.NArg() == 0:
		return &exitError{code: 2, err: errors.New("no process to watch; " + usage)}
	case *after != 0 && *after < stackconfig.MinHangAfter:
		return &exitError{code: 2, err: fmt.Errorf("--after must be 0 or at least %s, got %s", stackconfig.MinHangAfter, *after)}
	case *every <= 0:
		return &exitError{code: 2, err: fmt.Errorf("--every must be a positive duration, got %s", *every)}
	}
	targets, err := parseWatchTargets(fs.Args())
	if err != nil {
		return &exitError{code: 2, err: err}
	}

	// Each tick allocates some tens of kB (five requests; the API's JSON
	// when one fails) and keeps next to nothing: at the default GOGC=100
	// the heap grew to its 4 MB floor before the first collection, 14.7 MB
	// RSS in all after a minute against 9.9 MB at start. A GOGC of the
	// user's wins.
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(watchdogGCPercent)
	}
	client := procompose.NewClient(*api)
	defer client.Close()
	w := newWatch(targets, *after, client.Processes, logging.New(stdout, "watchdog", level))
	names := make([]string, len(targets))
	for i, t := range targets {
		names[i] = t.name
	}
	w.log.Info("watching", "processes", names, "restart_after", after.String(), "every", every.String())

	parent := os.Getppid()
	tick := time.NewTicker(*every)
	defer tick.Stop()
	for {
		w.tick(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if os.Getppid() != parent {
			w.log.Info("process-compose is gone; stopping")
			return nil
		}
	}
}

// watchdogGCPercent is the watchdog's GOGC (see watchdog).
const watchdogGCPercent = 20

// reportSilenceAfter is how long a process must have answered nothing
// before the watchdog logs it.
const reportSilenceAfter = 2 * time.Second

// watchdogKillAfter is how long a hung process gets to exit after its first
// signal (a Go service writes its goroutines' stacks in milliseconds; Redis
// writes out its AOF) before SIGKILL.
const watchdogKillAfter = 5 * time.Second

// watchTarget is one process and how to ask whether it answers.
type watchTarget struct {
	name   string
	target string
	check  func(context.Context) error
}

// watchTargetForms are the arguments parseWatchTargets reads, for its
// errors and the usage.
const watchTargetForms = "<process>=http://…, <process>=http-unix:<socket>:/<path> (each wants a 200) or <process>=redis:<socket>"

// aliveStatus is the HTTP status that passes an HTTP target's check (see
// watchdog; tick also takes a 404 as an answer).
var aliveStatus = map[int]bool{http.StatusOK: true}

// parseWatchTargets reads <process>=<http-url | http-unix:socket:/path |
// redis:socket> arguments.
func parseWatchTargets(args []string) ([]watchTarget, error) {
	client := checkClient("")
	var targets []watchTarget
	for _, a := range args {
		name, target, ok := strings.Cut(a, "=")
		if !ok || name == "" || target == "" {
			return nil, fmt.Errorf("%q: want %s", a, watchTargetForms)
		}
		if slices.ContainsFunc(targets, func(t watchTarget) bool { return t.name == name }) {
			return nil, fmt.Errorf("process %q given twice", name)
		}
		t := watchTarget{name: name, target: target}
		switch {
		case strings.HasPrefix(target, "http://"):
			t.check = func(ctx context.Context) error { return checkHTTP(ctx, client, target, aliveStatus) }
		case strings.HasPrefix(target, "http-unix:"):
			unixClient, url, err := unixHTTP(strings.TrimPrefix(target, "http-unix:"))
			if err != nil {
				return nil, fmt.Errorf("%q: want <process>=http-unix:<socket>:/<path>", a)
			}
			t.check = func(ctx context.Context) error { return checkHTTP(ctx, unixClient, url, aliveStatus) }
		case strings.HasPrefix(target, "redis:"):
			socket := strings.TrimPrefix(target, "redis:")
			t.check = func(ctx context.Context) error {
				_, err := pingRedis(ctx, socket)
				return err
			}
		default:
			return nil, fmt.Errorf("%q: want %s", a, watchTargetForms)
		}
		targets = append(targets, t)
	}
	return targets, nil
}

// watch is the watchdog's state: what it knows of each watched process.
type watch struct {
	targets   []watchTarget
	after     time.Duration
	processes func(context.Context) ([]procompose.Process, error)
	log       *slog.Logger
	// Replaced in tests.
	now    func() time.Time
	signal func(pid int, sig syscall.Signal) error
	// answerWithin is how long a tick waits for its checks' answers
	// (probeAttemptTimeout); a check not answered by then goes on.
	answerWithin time.Duration

	checks     map[string]*pendingCheck // each process's check, from the tick that asked until a tick takes its answer
	state      map[string]*watched
	replaced   map[string]int  // the pid of each process signalled as hung, until a new one runs
	noLive     map[string]bool // answered its HTTP target with a 404 (logged once)
	apiFailing bool            // the last call to the API failed (logged once)
}

// watched is one process as the watchdog last saw it.
type watched struct {
	pid         int
	seenAt      time.Time      // when this pid was first seen running: a check asked before is about another pid
	silentSince time.Time      // when the first unanswered check of this pid began; zero while it answers
	reported    bool           // "not answering" logged for this silence
	quitAt      time.Time      // when the first signal was sent; zero before
	firstSignal syscall.Signal // SIGQUIT or SIGTERM
	killed      bool           // SIGKILL sent
}

func newWatch(targets []watchTarget, after time.Duration, processes func(context.Context) ([]procompose.Process, error), log *slog.Logger) *watch {
	return &watch{
		targets: targets, after: after, processes: processes, log: log,
		now:          time.Now,
		signal:       signalGroup,
		answerWithin: probeAttemptTimeout,
		checks:       map[string]*pendingCheck{},
		state:        map[string]*watched{},
		replaced:     map[string]int{},
		noLive:       map[string]bool{},
	}
}

// pendingCheck is one check of a process, asked at started.
type pendingCheck struct {
	started time.Time
	done    chan struct{} // closed when err is set
	err     error
	cancel  context.CancelFunc
}

// checkAnswerLimit bounds one check: a connection that a hung process's
// listen backlog took is never answered, and after this long a new one is
// tried (the silence goes on from the first).
const checkAnswerLimit = time.Minute

// startCheck asks t, at started, whether it is alive.
func (w *watch) startCheck(ctx context.Context, t watchTarget, started time.Time) *pendingCheck {
	checkCtx, cancel := context.WithTimeout(ctx, checkAnswerLimit)
	c := &pendingCheck{started: started, done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(c.done)
		defer cancel()
		c.err = t.check(checkCtx)
	}()
	return c
}

// dropCheck gives up name's check, if one is asked.
func (w *watch) dropCheck(name string) {
	if c := w.checks[name]; c != nil {
		c.cancel()
		delete(w.checks, name)
	}
}

// tick checks every watched process (all at once) except one it has
// signalled, and waits up to answerWithin (probeAttemptTimeout) for the
// answers. A check not answered by then is not given up: it counts as
// silence from when it was asked until it is answered, at a later tick,
// and no other is asked meanwhile; an answer that comes late is an answer.
// A process that answers every check, each a little later than a tick
// waits (Redis whose every reply waits for an fsync of a busy disk, under
// appendfsync always; a service on a saturated machine), is slow, not hung,
// and a restart would not mend it. Only when one of them did not answer
// (yet), or one it signalled is yet to be restarted, does it ask
// process-compose which processes run, and acts on what it finds. While all
// answer it asks nothing: process-compose answers GET /processes by
// measuring each process's CPU and memory and reading every /proc/<pid>/stat
// of the machine for their children, which, once a second, took an idle
// process-compose from 2.3 ms to 29.5 ms of CPU a second.
func (w *watch) tick(ctx context.Context) {
	started := w.now()
	errs := make([]error, len(w.targets))
	asked := make([]time.Time, len(w.targets)) // when the check that errs[i] is about was asked
	checked := make([]bool, len(w.targets))
	needAPI := len(w.replaced) > 0
	for _, t := range w.targets {
		if st := w.state[t.name]; st != nil && !st.quitAt.IsZero() {
			needAPI = true // being stopped: process-compose says when it is gone
			continue
		}
		if w.checks[t.name] == nil {
			w.checks[t.name] = w.startCheck(ctx, t, started)
		}
	}
	answerBy := time.NewTimer(w.answerWithin)
	defer answerBy.Stop()
wait:
	for _, t := range w.targets {
		if c := w.checks[t.name]; c != nil {
			select {
			case <-c.done:
			case <-answerBy.C:
				break wait
			case <-ctx.Done():
				return
			}
		}
	}
	if ctx.Err() != nil {
		return
	}
	for i, t := range w.targets {
		c := w.checks[t.name]
		if c == nil {
			continue
		}
		checked[i], asked[i] = true, c.started
		select {
		case <-c.done:
			errs[i] = c.err
			delete(w.checks, t.name)
		default:
			errs[i] = fmt.Errorf("no answer yet, asked %s ago", w.now().Sub(c.started).Round(time.Millisecond))
		}
	}
	for i, t := range w.targets {
		var se *statusError
		if errors.As(errs[i], &se) && se.code == http.StatusNotFound {
			// A service older than GET /live (one taken from PATH, which
			// the launcher prefers to a build of the checkout) answers
			// it 404: it answers, as every process did before /live, so
			// only its silence counts. Taken for hung, every such
			// service was restarted every RESTART_HUNG_AFTER, for good.
			if !w.noLive[t.name] {
				w.noLive[t.name] = true
				w.log.Warn("answers 404 on its target: taken as alive (a service older than GET /live, or a wrong path), so only silence or another status than 200 restarts it",
					"process", t.name, "target", t.target)
			}
			errs[i] = nil
		}
		needAPI = needAPI || errs[i] != nil
	}
	if !needAPI {
		for i, t := range w.targets {
			if st := w.state[t.name]; st != nil && checked[i] {
				w.judge(t, st, asked[i], started, nil)
			}
		}
		return
	}

	apiCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	procs, err := w.processes(apiCtx)
	cancel()
	if err != nil {
		// Without the API the watchdog cannot tell a hung process from one
		// being stopped, or find its pid: it does nothing.
		if !w.apiFailing && ctx.Err() == nil {
			w.log.Warn("cannot ask process-compose which processes run; restarting nothing until it answers", "error", err.Error())
		}
		w.apiFailing = true
		// Nor does it count this tick as silence: a check that failed
		// before the API went quiet and one that fails after it answers
		// again are not a silence of all the time between, in which
		// nothing was checked. The count starts again.
		for _, st := range w.state {
			if st.quitAt.IsZero() {
				st.silentSince, st.reported = time.Time{}, false
			}
		}
		return
	}
	if w.apiFailing {
		w.log.Info("process-compose answers again")
		w.apiFailing = false
	}
	pids := map[string]int{}
	for _, p := range procs {
		if p.Status == procompose.StatusRunning && p.Pid > 0 {
			pids[p.Name] = p.Pid
		}
	}
	for i, t := range w.targets {
		st := w.observe(t.name, pids[t.name])
		switch {
		case st == nil: // not running
		case !st.quitAt.IsZero():
			w.finish(t.name, st)
		case checked[i]:
			w.judge(t, st, asked[i], started, errs[i])
		}
	}
}

// observe records the pid process-compose reports for name (0: not
// running) and returns its state, or nil when it does not run. A new pid
// starts afresh; the first after a hung one is logged as its restart.
func (w *watch) observe(name string, pid int) *watched {
	st := w.state[name]
	if st != nil && st.pid == pid {
		return st
	}
	if st != nil && !st.quitAt.IsZero() {
		w.replaced[name] = st.pid
	}
	if st != nil && st.quitAt.IsZero() && st.reported {
		// Its silence ends here, without an answer: say how long it was, as
		// "answers again" does.
		w.log.Info("replaced while not answering", "process", name, "pid", st.pid, "new_pid", pid,
			"silent_for", w.now().Sub(st.silentSince).Round(time.Millisecond).String())
	}
	if st != nil {
		// A check still asked of it is about it, not about a successor:
		// the next tick asks that one.
		w.dropCheck(name)
	}
	delete(w.state, name)
	if pid == 0 {
		return nil
	}
	if hung, ok := w.replaced[name]; ok {
		if pid == hung {
			// process-compose (v1.64.1) says Running before it records the
			// new pid: not restarted yet.
			return nil
		}
		w.log.Info("restarted by process-compose", "process", name, "hung_pid", hung, "pid", pid)
		delete(w.replaced, name)
	}
	st = &watched{pid: pid, seenAt: w.now()}
	w.state[name] = st
	return st
}

// judge updates a running process's state with its check's result (err,
// from a check asked at asked, taken by the tick begun at seen; an
// unanswered one's error says so), and sends the first signal once it has
// answered nothing for w.after.
func (w *watch) judge(t watchTarget, st *watched, asked, seen time.Time, err error) {
	if err == nil {
		if st.reported {
			w.log.Info("answers again", "process", t.name, "pid", st.pid, "silent_for", seen.Sub(st.silentSince).Round(time.Millisecond).String())
		}
		st.silentSince, st.reported = time.Time{}, false
		return
	}
	if st.silentSince.IsZero() {
		// From when the check was asked, but not before this pid was
		// seen: a check asked of the process it replaced does not date
		// its silence.
		st.silentSince = asked
		if asked.Before(st.seenAt) {
			st.silentSince = st.seenAt
		}
	}
	silent := w.now().Sub(st.silentSince)
	if !st.reported && silent >= reportSilenceAfter {
		// Not at the first miss: HAProxy, started a moment before the
		// watchdog, may not listen yet.
		st.reported = true
		w.log.Warn("not answering", "process", t.name, "pid", st.pid, "target", t.target, "since", st.silentSince.Format(time.RFC3339Nano), "error", err.Error())
	}
	if w.after == 0 || silent < w.after {
		return
	}
	// The Go services dump every goroutine's stack on SIGQUIT; Redis and
	// HAProxy stop on SIGTERM (Redis writing out its AOF first, which
	// under appendfsync everysec keeps its last second of writes).
	sig := syscall.SIGTERM
	if slices.Contains(serviceNames, t.name) {
		sig = syscall.SIGQUIT
	}
	w.log.Error("restarting a hung process", "process", t.name, "pid", st.pid, "silent_for", silent.Round(time.Millisecond).String(),
		"last_error", err.Error(), "signal", signalName(sig))
	st.quitAt, st.firstSignal = w.now(), sig
	w.dropCheck(t.name) // its successor gets checks of its own
	if err := w.signal(st.pid, sig); err != nil {
		w.log.Warn("signal failed", "process", t.name, "pid", st.pid, "signal", signalName(sig), "error", err.Error())
	}
	// A stopped process acts on a signal only once it runs again.
	_ = w.signal(st.pid, syscall.SIGCONT)
}

// finish sends SIGKILL to a process that still runs watchdogKillAfter after
// its first signal (process-compose still reports it, with the same pid).
func (w *watch) finish(name string, st *watched) {
	if st.killed || w.now().Sub(st.quitAt) < watchdogKillAfter {
		return
	}
	w.log.Error("still running after "+signalName(st.firstSignal)+"; killing it", "process", name, "pid", st.pid, "waited", watchdogKillAfter.String())
	st.killed = true
	if err := w.signal(st.pid, syscall.SIGKILL); err != nil {
		w.log.Warn("signal failed", "process", name, "pid", st.pid, "signal", "SIGKILL", "error", err.Error())
	}
}

// signalGroup sends sig to the process group that pid leads, as
// process-compose's own stop does: it starts every process as the leader of
// a group of its own, so the group also holds what the process forked. A
// SIGKILL to Redis's pid alone left its AOF rewrite child running, which
// holds Redis's stdout, and process-compose, which waits for the end of a
// process's output, restarted Redis only when the child was done. A pid that
// leads no group is not one process-compose started (it exited, and the
// kernel gave its pid to another program): nothing is sent.
func signalGroup(pid int, sig syscall.Signal) error {
	pgid, err := syscall.Getpgid(pid)
	if err != nil {
		return err
	}
	if pgid != pid {
		return fmt.Errorf("pid %d leads no process group (it is in %d's): not the process process-compose started", pid, pgid)
	}
	return syscall.Kill(-pid, sig)
}

func signalName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGQUIT:
		return "SIGQUIT"
	case syscall.SIGKILL:
		return "SIGKILL"
	case syscall.SIGCONT:
		return "SIGCONT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return sig.String()
}
