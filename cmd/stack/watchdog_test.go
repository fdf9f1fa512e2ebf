package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/acme-payments/platform/internal/procompose"
)

// watchStep is one tick of the watchdog: what process-compose reports
// (nil: its API fails), whether each watched process answers, and how much
// time passes before the tick.
type watchStep struct {
	wait      time.Duration
	running   map[string]int    // process -> pid, status Running
	status    map[string]string // process -> a status other than Running, with pid 1000
	answers   map[string]bool   // missing: does not answer
	apiFails  bool
	wantSends []string // "SIGQUIT 1000", ... sent during this tick
}

// TestWatchdogRestartsOnlyAHungProcess drives the watchdog's decisions tick
// by tick, with a clock of its own: which signals it sends, to whom and when.
func TestWatchdogRestartsOnlyAHungProcess(t *testing.T) {
	const after = 15 * time.Second
	tests := []struct {
		name  string
		after time.Duration
		steps []watchStep
	}{
		{
			name: "a service that answers is left alone",
			steps: []watchStep{
				{running: map[string]int{"core-api": 1000}, answers: map[string]bool{"core-api": true}},
				{wait: 20 * time.Second, running: map[string]int{"core-api": 1000}, answers: map[string]bool{"core-api": true}},
			},
		},
		{
			name: "a service silent for RESTART_HUNG_AFTER gets SIGQUIT and SIGCONT, then SIGKILL if it stays",
			steps: []watchStep{
				{running: map[string]int{"core-api": 1000}},
				{wait: 14 * time.Second, running: map[string]int{"core-api": 1000}},
				{wait: time.Second, running: map[string]int{"core-api": 1000}, wantSends: []string{"SIGQUIT 1000", "SIGCONT 1000"}},
				{wait: 4 * time.Second, running: map[string]int{"core-api": 1000}},
				{wait: time.Second, running: map[string]int{"core-api": 1000}, wantSends: []string{"SIGKILL 1000"}},
				{wait: time.Second, running: map[string]int{"core-api": 1000}},
				{wait: time.Second, running: map[string]int{"core-api": 1001}, answers: map[string]bool{"core-api": true}},
			},
		},
		{
			name: "Redis and HAProxy get SIGTERM and SIGCONT, then SIGKILL if they stay",
			steps: []watchStep{
				{running: map[string]int{"redis": 1000, "haproxy": 2000}},
				{wait: after, running: map[string]int{"redis": 1000, "haproxy": 2000}, wantSends: []string{"SIGTERM 1000", "SIGCONT 1000", "SIGTERM 2000", "SIGCONT 2000"}},
				{wait: 4 * time.Second, running: map[string]int{"redis": 1000, "haproxy": 2000}},
				{wait: time.Second, running: map[string]int{"redis": 1000, "haproxy": 2000}, wantSends: []string{"SIGKILL 1000", "SIGKILL 2000"}},
				{wait: 10 * time.Second, running: map[string]int{"redis": 1000, "haproxy": 2000}},
			},
		},
		{
			name: "one answer in between starts the count again",
			steps: []watchStep{
				{running: map[string]int{"auth-api": 1000}},
				{wait: 10 * time.Second, running: map[string]int{"auth-api": 1000}, answers: map[string]bool{"auth-api": true}},
				{wait: time.Second, running: map[string]int{"auth-api": 1000}},
				{wait: 14 * time.Second, running: map[string]int{"auth-api": 1000}},
				{wait: time.Second, running: map[string]int{"auth-api": 1000}, wantSends: []string{"SIGQUIT 1000", "SIGCONT 1000"}},
			},
		},
		{
			name: "a new pid starts the count again",
			steps: []watchStep{
				{running: map[string]int{"psp-connector": 1000}},
				{wait: 10 * time.Second, running: map[string]int{"psp-connector": 1001}},
				{wait: 10 * time.Second, running: map[string]int{"psp-connector": 1001}},
				{wait: 5 * time.Second, running: map[string]int{"psp-connector": 1001}, wantSends: []string{"SIGQUIT 1001", "SIGCONT 1001"}},
			},
		},
		{
			name: "a process being stopped or restarted by process-compose is left alone",
			steps: []watchStep{
				{running: map[string]int{"core-api": 1000}},
				{wait: 10 * time.Second, status: map[string]string{"core-api": "Terminating"}},
				{wait: 10 * time.Second, status: map[string]string{"core-api": "Completed"}},
				{wait: 10 * time.Second, status: map[string]string{"core-api": "Restarting"}},
				{wait: 14 * time.Second, running: map[string]int{"core-api": 1000}},
			},
		},
		{
			name: "without process-compose's API nothing is signalled",
			steps: []watchStep{
				{running: map[string]int{"core-api": 1000}},
				{wait: 20 * time.Second, apiFails: true},
				{wait: 20 * time.Second, apiFails: true},
			},
		},
		{
			// A check that failed before process-compose's API went silent
			// and one that fails after it answers again are not 21 s of
			// silence: nobody looked in between.
			name: "silence while process-compose's API does not answer is not counted",
			steps: []watchStep{
				{running: map[string]int{"core-api": 1000}},
				{wait: 10 * time.Second, apiFails: true},
				{wait: 10 * time.Second, apiFails: true},
				{wait: time.Second, running: map[string]int{"core-api": 1000}},
				{wait: 14 * time.Second, running: map[string]int{"core-api": 1000}},
				{wait: time.Second, running: map[string]int{"core-api": 1000}, wantSends: []string{"SIGQUIT 1000", "SIGCONT 1000"}},
			},
		},
		{
			name:  "RESTART_HUNG_AFTER=0 only logs",
			after: -1,
			steps: []watchStep{
				{running: map[string]int{"core-api": 1000, "redis": 2000}},
				{wait: time.Hour, running: map[string]int{"core-api": 1000, "redis": 2000}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var step watchStep
			var targets []watchTarget
			for _, name := range []string{"redis", "psp-connector", "core-api", "auth-api", "haproxy"} {
				targets = append(targets, watchTarget{name: name, target: "test:" + name, check: checkAnswers(func() bool { return step.answers[name] })})
			}
			processes := func() ([]procompose.Process, error) {
				if step.apiFails {
					return nil, procompose.ErrNotRunning
				}
				var procs []procompose.Process
				for name, pid := range step.running {
					procs = append(procs, procompose.Process{Name: name, Status: procompose.StatusRunning, Pid: pid})
				}
				for name, status := range step.status {
					procs = append(procs, procompose.Process{Name: name, Status: status, Pid: 1000})
				}
				return procs, nil
			}
			a := after
			if tt.after < 0 {
				a = 0
			}
			tw := newTestWatch(targets, a, processes)
			for i, s := range tt.steps {
				step = s
				tw.clock = tw.clock.Add(s.wait)
				tw.sent = nil
				tw.tick(context.Background())
				if strings.Join(tw.sent, ", ") != strings.Join(s.wantSends, ", ") {
					t.Errorf("tick %d (at +%s): sent [%s], want [%s]\nlog:\n%s", i, s.wait, strings.Join(tw.sent, ", "), strings.Join(s.wantSends, ", "), tw.logs.String())
				}
			}
		})
	}
}

// testWatch is a watchdog for a test: on a clock of its own, with the
// signals it sends recorded (sent), the questions to process-compose
// counted (asked), and its log kept.
type testWatch struct {
	*watch
	clock time.Time
	asked int
	sent  []string
	logs  bytes.Buffer
}

// newTestWatch returns a testWatch of targets, whose process-compose answers
// what processes returns.
func newTestWatch(targets []watchTarget, after time.Duration, processes func() ([]procompose.Process, error)) *testWatch {
	tw := &testWatch{clock: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
	ask := func(context.Context) ([]procompose.Process, error) {
		tw.asked++
		return processes()
	}
	tw.watch = newWatch(targets, after, ask, slog.New(slog.NewJSONHandler(&tw.logs, nil)))
	tw.now = func() time.Time { return tw.clock }
	tw.signal = func(pid int, sig syscall.Signal) error {
		tw.sent = append(tw.sent, fmt.Sprintf("%s %d", signalName(sig), pid))
		return nil
	}
	return tw
}

// step runs one tick, then lets d pass.
func (tw *testWatch) step(d time.Duration) {
	tw.tick(context.Background())
	tw.clock = tw.clock.Add(d)
}

// checkAnswers is a check that passes while answers says so.
func checkAnswers(answers func() bool) func(context.Context) error {
	return func(context.Context) error {
		if answers() {
			return nil
		}
		return errors.New("context deadline exceeded")
	}
}

// oneWatched is a testWatch over one process: the test sets its status and
// pid (what process-compose reports) and whether its check answers.
type oneWatched struct {
	*testWatch
	status  string
	pid     int
	answers bool
}

func newOneWatched(name, target string, after time.Duration) *oneWatched {
	o := &oneWatched{status: procompose.StatusRunning, pid: 1000}
	o.testWatch = newTestWatch([]watchTarget{{name: name, target: target, check: checkAnswers(func() bool { return o.answers })}}, after,
		func() ([]procompose.Process, error) {
			return []procompose.Process{{Name: name, Status: o.status, Pid: o.pid}}, nil
		})
	return o
}

// TestWatchdogLogsEachEventOnce: a hang is logged once it has lasted 2 s,
// when the process is signalled and when process-compose has restarted it;
// not at every tick in between, and not for one missed check.
func TestWatchdogLogsEachEventOnce(t *testing.T) {
	o := newOneWatched("core-api", "http://127.0.0.1:1/health", 15*time.Second)
	// One miss, as when HAProxy has just started, is not worth a line.
	o.step(time.Second)
	o.answers = true
	o.step(0)
	if o.logs.Len() > 0 {
		t.Errorf("one missed check logged:\n%s", o.logs.String())
	}
	o.answers = false
	for range 20 {
		o.step(time.Second)
	}
	o.pid, o.answers = 1001, true
	o.step(0)
	for msg, want := range map[string]int{
		`"msg":"not answering"`:                1,
		`"msg":"restarting a hung process"`:    1,
		`"msg":"restarted by process-compose"`: 1,
		`"hung_pid":1000,"pid":1001`:           1,
	} {
		if got := strings.Count(o.logs.String(), msg); got != want {
			t.Errorf("%s: logged %d times, want %d\n%s", msg, got, want, o.logs.String())
		}
	}
}

// TestWatchdogLogsASilenceEndedByAnotherPid: a process reported as not
// answering that process-compose replaces (it crashed, or someone restarted
// it) before it answers again ends its silence with a line that says how long
// it was, as "answers again" does; the new pid starts afresh.
func TestWatchdogLogsASilenceEndedByAnotherPid(t *testing.T) {
	o := newOneWatched("redis", "redis:/x.sock", 0)
	o.signal = func(int, syscall.Signal) error { t.Error("signalled with RESTART_HUNG_AFTER=0"); return nil }
	for range 5 {
		o.step(time.Second)
	}
	o.pid = 1001 // replaced, not answering yet
	o.step(time.Second)
	o.answers = true
	o.step(0)
	for msg, want := range map[string]int{
		`"msg":"not answering"`: 1,
		`"msg":"replaced while not answering","process":"redis","pid":1000,"new_pid":1001`: 1,
		`"silent_for":"5s"`:     1,
		`"msg":"answers again"`: 0,
	} {
		if got := strings.Count(o.logs.String(), msg); got != want {
			t.Errorf("%s: logged %d times, want %d\n%s", msg, got, want, o.logs.String())
		}
	}
}

func TestWatchdogArguments(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"core-api=http://127.0.0.1:1/health"}, "--api is required"},
		{[]string{"--api", "/x.sock"}, "no process to watch"},
		{[]string{"--api", "/x.sock", "--after", "2s", "core-api=http://127.0.0.1:1/health"}, "--after must be 0 or at least 3s, got 2s"},
		{[]string{"--api", "/x.sock", "core-api"}, `"core-api": want <process>=http://`},
		{[]string{"--api", "/x.sock", "core-api=tcp://127.0.0.1:1"}, `"core-api=tcp://127.0.0.1:1": want`},
		{[]string{"--api", "/x.sock", "a=redis:/x", "a=redis:/y"}, `process "a" given twice`},
		{[]string{"--api", "/x.sock", "haproxy=http-unix:/run/h.sock"}, `want <process>=http-unix:<socket>:/<path>`},
		{[]string{"--api", "/x.sock", "haproxy=http-unix::/healthz"}, `want <process>=http-unix:<socket>:/<path>`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			err := watchdog(context.Background(), tt.args, nil, &out)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
	t.Run("LOG_LEVEL=loud", func(t *testing.T) {
		var out bytes.Buffer
		err := watchdog(context.Background(), []string{"--api", "/x.sock", "a=redis:/x"}, []string{"LOG_LEVEL=loud"}, &out)
		if err == nil || !strings.Contains(err.Error(), `LOG_LEVEL: unknown log level "loud"`) {
			t.Errorf("got %v, want an error naming LOG_LEVEL", err)
		}
	})
}

// TestWatchTargetsWantA200: an HTTP target's check passes only on a 200 (a
// service's /live fails with 503 when the service finds itself stuck); any
// other status, or none, fails it, over TCP and over a unix socket alike
// (tick then takes a 404 as an answer: TestWatchdogTakesA404ForAnOlderService).
func TestWatchTargetsWantA200(t *testing.T) {
	// GET /<status> answers that status.
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		if err != nil {
			code = http.StatusBadRequest
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"status":%q}`, http.StatusText(code))
	})
	sock := serveHTTPOnUnixSocket(t, handler)
	tcpSrv := httptest.NewServer(handler)
	t.Cleanup(tcpSrv.Close)

	tests := []struct {
		status int
		alive  bool
	}{
		{http.StatusOK, true},
		{http.StatusServiceUnavailable, false},
		{http.StatusNotFound, false},
		{http.StatusInternalServerError, false},
	}
	for _, tt := range tests {
		for _, target := range []string{
			fmt.Sprintf("%s/%d", tcpSrv.URL, tt.status),
			fmt.Sprintf("http-unix:%s:/%d", sock, tt.status),
		} {
			targets, err := parseWatchTargets([]string{"p=" + target})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err = targets[0].check(ctx)
			cancel()
			if alive := err == nil; alive != tt.alive {
				t.Errorf("%s: check returned %v; want alive=%v", target, err, tt.alive)
			}
			if err != nil && !strings.Contains(err.Error(), strconv.Itoa(tt.status)) {
				t.Errorf("%s: error %q does not name the status (the watchdog logs it)", target, err)
			}
		}
	}
}

// TestWatchdogTakesA404ForAnOlderService: a service older than GET /live
// (the launcher takes a service on PATH over a build of the checkout)
// answers it with the JSON 404 of any unknown path. It answers, as every
// process did before /live: the watchdog says so once and restarts
// nothing. Taken for hung, such a stack's three services were restarted
// every RESTART_HUNG_AFTER, for good (by hand: 6 restarts in 40 s).
func TestWatchdogTakesA404ForAnOlderService(t *testing.T) {
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintln(w, `{"error":"Not found"}`)
	}))
	t.Cleanup(old.Close)
	targets, err := parseWatchTargets([]string{"core-api=" + old.URL + "/live"})
	if err != nil {
		t.Fatal(err)
	}
	tw := newTestWatch(targets, 15*time.Second, func() ([]procompose.Process, error) {
		return []procompose.Process{{Name: "core-api", Status: procompose.StatusRunning, Pid: 1000}}, nil
	})
	for range 30 {
		tw.step(time.Second)
	}
	if len(tw.sent) > 0 || tw.asked > 0 {
		t.Errorf("30 s of 404s on /live: sent [%s] and asked process-compose %d times, want nothing\n%s", strings.Join(tw.sent, ", "), tw.asked, tw.logs.String())
	}
	if got := strings.Count(tw.logs.String(), `"msg":"answers 404 on its target`); got != 1 {
		t.Errorf("logged the 404 %d times, want once\n%s", got, tw.logs.String())
	}
}

// TestWatchdogAsksProcessComposeOnlyWhenNeeded: process-compose answers
// GET /processes by measuring every process's CPU and memory and reading
// every /proc/<pid>/stat of the machine for their children, six times over;
// asked every second, that took an idle process-compose from 2.3 ms to
// 29.5 ms of CPU a second. So the watchdog asks only when a check failed,
// or while it waits for process-compose to restart a process it stopped.
func TestWatchdogAsksProcessComposeOnlyWhenNeeded(t *testing.T) {
	answers := map[string]bool{}
	pids := map[string]int{}
	var targets []watchTarget
	for i, name := range []string{"redis", "psp-connector", "core-api", "auth-api", "haproxy"} {
		answers[name], pids[name] = true, 1000+i
		targets = append(targets, watchTarget{name: name, target: "test:" + name, check: checkAnswers(func() bool { return answers[name] })})
	}
	tw := newTestWatch(targets, 15*time.Second, func() ([]procompose.Process, error) {
		var procs []procompose.Process
		for name, pid := range pids {
			procs = append(procs, procompose.Process{Name: name, Status: procompose.StatusRunning, Pid: pid})
		}
		return procs, nil
	})
	ticks := func(n int) int {
		before := tw.asked
		for range n {
			tw.step(time.Second)
		}
		return tw.asked - before
	}

	if got := ticks(10); got != 0 {
		t.Errorf("10 ticks, every process answering: asked process-compose %d times, want 0", got)
	}
	answers["core-api"] = false
	if got := ticks(3); got != 3 {
		t.Errorf("3 ticks, core-api silent: asked process-compose %d times, want 3", got)
	}
	answers["core-api"] = true
	if got := ticks(3); got != 0 {
		t.Errorf("3 ticks, core-api answering again: asked process-compose %d times, want 0", got)
	}
	// Hung: signalled after 15 s. Its successor answers at once, and the
	// watchdog still asks until it has seen the new pid, which it logs.
	answers["core-api"] = false
	ticks(16)
	if want := "SIGQUIT 1002, SIGCONT 1002"; strings.Join(tw.sent, ", ") != want {
		t.Fatalf("core-api silent for 16 ticks: sent [%s], want [%s]\n%s", strings.Join(tw.sent, ", "), want, tw.logs.String())
	}
	answers["core-api"], pids["core-api"] = true, 2002
	if got := ticks(1); got != 1 {
		t.Errorf("the tick after the restart: asked process-compose %d times, want 1", got)
	}
	if !strings.Contains(tw.logs.String(), `"msg":"restarted by process-compose","process":"core-api","hung_pid":1002,"pid":2002`) {
		t.Errorf("no restart line for core-api's pid 2002:\n%s", tw.logs.String())
	}
	if got := ticks(5); got != 0 {
		t.Errorf("5 ticks after the restart was seen, every process answering: asked process-compose %d times, want 0", got)
	}
}

// TestWatchdogSignalsTheProcessGroup: process-compose starts every process
// as the leader of a process group of its own, and stops it by signalling
// the group. The watchdog's signal goes to that group too: a SIGKILL to
// Redis's pid alone left its AOF rewrite child running, which holds Redis's
// stdout, so process-compose, which waits for the end of a process's
// output, restarted Redis only once the child had finished (23 s later,
// tried by hand). And a pid that leads no group is not a process
// process-compose started (the kernel gave the pid of one that exited to
// another program): nothing is sent to it.
func TestWatchdogSignalsTheProcessGroup(t *testing.T) {
	if !haveProc() {
		t.Skip("needs /proc to tell a zombie from a live process")
	}
	w := newWatch(nil, 15*time.Second, nil, slog.New(slog.DiscardHandler))

	// A group leader (as process-compose starts Redis) with a child that
	// shares its stdout (as Redis's AOF rewrite child does).
	leader := exec.Command("sh", "-c", "sleep 600 & echo $!; wait")
	leader.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := leader.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := leader.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-leader.Process.Pid, syscall.SIGKILL); _ = leader.Wait() })
	line := make([]byte, 32)
	n, _ := out.Read(line)
	child, err := strconv.Atoi(strings.TrimSpace(string(line[:n])))
	if err != nil {
		t.Fatalf("the child's pid: got %q: %v", line[:n], err)
	}
	t.Cleanup(func() { _ = syscall.Kill(child, syscall.SIGKILL) })
	if err := w.signal(leader.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL to the group of pid %d: %v", leader.Process.Pid, err)
	}
	_ = leader.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for alive(child) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if alive(child) {
		t.Errorf("SIGKILL to the leader (pid %d): its child (pid %d), in its group, still runs", leader.Process.Pid, child)
	}

	// Not a group leader: in this test's own group.
	other := exec.Command("sleep", "600")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	if err := w.signal(other.Process.Pid, syscall.SIGKILL); err == nil {
		t.Errorf("SIGKILL to pid %d, which leads no process group: got no error", other.Process.Pid)
	}
	// Whichever signal reached it first ended it.
	_ = other.Process.Signal(syscall.SIGTERM)
	_ = other.Wait()
	if ws, ok := other.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGTERM {
		t.Errorf("pid %d, which leads no process group: ended by %v, want the test's own SIGTERM", other.Process.Pid, other.ProcessState)
	}
}

// TestWatchdogWaitsForTheRestartedPid: process-compose v1.64.1 sets a
// restarted process's status to Running before it records the new pid
// (setStateAndRun, then the pid, in app/process.go), so a question in
// between is answered "Running" with the pid of the process it replaces:
// once in 20 restarts of auth-api with the API asked without pause. That is
// not the restart yet: the one line for it names the new pid.
func TestWatchdogWaitsForTheRestartedPid(t *testing.T) {
	o := newOneWatched("auth-api", "test:auth-api", 15*time.Second)
	for range 17 { // hung: SIGQUIT after 15 s
		o.step(time.Second)
	}
	o.status = "Restarting" // it exited; process-compose waits its backoff
	o.step(0)
	o.status = procompose.StatusRunning // started, its new pid not recorded yet
	o.step(0)
	o.pid, o.answers = 1001, true
	o.step(0)
	o.step(0)

	lines := strings.Count(o.logs.String(), `"msg":"restarted by process-compose"`)
	if lines != 1 || !strings.Contains(o.logs.String(), `"hung_pid":1000,"pid":1001`) {
		t.Errorf("got %d restart lines, want one naming the new pid 1001:\n%s", lines, o.logs.String())
	}
}

// lateChecks is a check whose every answer the test gives by hand, after
// the tick that asked: as a process answers that is slow but not hung (Redis
// whose every reply waits for an fsync of a busy disk under appendfsync
// always, a service on a saturated machine).
type lateChecks struct {
	mu      sync.Mutex
	waiting []chan error
}

func (l *lateChecks) check(ctx context.Context) error {
	ch := make(chan error, 1)
	l.mu.Lock()
	l.waiting = append(l.waiting, ch)
	l.mu.Unlock()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// answer answers every check asked so far with err.
func (l *lateChecks) answer(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ch := range l.waiting {
		ch <- err
	}
	l.waiting = nil
}

// TestWatchdogTakesALateAnswerAsAnAnswer: a process that answers every
// check, but each later than the tick waits for it (probeAttemptTimeout,
// 1 s; 100 ms here), answers: it is slow, not hung, and a restart mends
// no slowness (Redis's restart drops every client mid-request and reloads
// its AOF from the same slow disk). Each check was given up at the tick's
// end and counted as silence, so such a process was restarted after
// RESTART_HUNG_AFTER. Only a check nobody answers, or an answer that is not
// 200, counts as silence, from the moment the check was asked.
func TestWatchdogTakesALateAnswerAsAnAnswer(t *testing.T) {
	unavailable := &statusError{url: "http://127.0.0.1:1/live", status: "503 Service Unavailable", code: http.StatusServiceUnavailable}
	tests := []struct {
		name string
		// answer is what the check asked at tick i is answered with, after
		// that tick: ok false leaves it unanswered.
		answer func(i int) (err error, ok bool)
		// wantFirstSignal is the tick at which SIGQUIT is sent; -1: never
		// within 40 ticks.
		wantFirstSignal int
		wantLog         []string
	}{
		{
			name:            "every check answered 200, each after the tick",
			answer:          func(int) (error, bool) { return nil, true },
			wantFirstSignal: -1,
		},
		{
			// As a process stopped for 5 s and continued: its silence
			// lasted until the tick that took the answer.
			name:            "the check asked at tick 0 answered after tick 5, each later one after its tick",
			answer:          func(i int) (error, bool) { return nil, i >= 5 },
			wantFirstSignal: -1,
			wantLog:         []string{`"msg":"not answering"`, `"error":"no answer yet, asked 2s ago"`, `"msg":"answers again","process":"core-api","pid":1000,"silent_for":"6s"`},
		},
		{
			// Answered late up to tick 9; the check asked at tick 10 is
			// never answered: hung 15 s after that check was asked.
			name:            "answered late, then not at all",
			answer:          func(i int) (error, bool) { return nil, i < 10 },
			wantFirstSignal: 25,
		},
		{
			name:            "every check answered 503, each after the tick",
			answer:          func(int) (error, bool) { return unavailable, true },
			wantFirstSignal: 15,
		},
		{
			name:            "no check ever answered",
			answer:          func(int) (error, bool) { return nil, false },
			wantFirstSignal: 15,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var late lateChecks
			tw := newTestWatch([]watchTarget{{name: "core-api", target: "test:core-api", check: late.check}}, 15*time.Second,
				func() ([]procompose.Process, error) {
					return []procompose.Process{{Name: "core-api", Status: procompose.StatusRunning, Pid: 1000}}, nil
				})
			tw.answerWithin = 100 * time.Millisecond
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			first := -1
			for i := range 40 {
				tw.tick(ctx)
				if first < 0 && len(tw.sent) > 0 {
					first = i
				}
				if err, ok := tt.answer(i); ok {
					late.answer(err)
				}
				tw.clock = tw.clock.Add(time.Second)
			}
			if first != tt.wantFirstSignal {
				t.Errorf("first signal at tick %d, want %d; sent [%s]\n%s", first, tt.wantFirstSignal, strings.Join(tw.sent, ", "), tw.logs.String())
			}
			for _, want := range tt.wantLog {
				if !strings.Contains(tw.logs.String(), want) {
					t.Errorf("no log line with %s:\n%s", want, tw.logs.String())
				}
			}
		})
	}
}

// TestWatchdogGivesANewPidItsOwnSilence: a check asked of a process that
// process-compose then replaced (it crashed, and was restarted) is about
// the old pid. Its late error must not date the new pid's silence from
// before that pid ran: here the old core-api went silent at tick 0, was
// replaced at tick 10, and the new one answered from tick 20, after 10 s
// of starting up; it was signalled at tick 15 as "silent for 15 s".
func TestWatchdogGivesANewPidItsOwnSilence(t *testing.T) {
	var late lateChecks
	tick := 0
	tw := newTestWatch([]watchTarget{{name: "core-api", target: "test:core-api", check: late.check}}, 15*time.Second,
		func() ([]procompose.Process, error) {
			pid := 1000
			if tick >= 10 {
				pid = 2000
			}
			return []procompose.Process{{Name: "core-api", Status: procompose.StatusRunning, Pid: pid}}, nil
		})
	tw.answerWithin = 100 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reset := errors.New("read: connection reset by peer")
	refused := errors.New("connect: connection refused")
	for tick = range 30 {
		tw.tick(ctx)
		switch {
		case tick == 9: // the old process dies; its check's connection is reset
			late.answer(reset)
		case tick >= 10 && tick < 19: // the new one is starting
			late.answer(refused)
		case tick >= 19:
			late.answer(nil)
		}
		tw.clock = tw.clock.Add(time.Second)
	}
	if len(tw.sent) > 0 {
		t.Errorf("sent [%s] to a process that ran 9 s without answering, then answered\n%s", strings.Join(tw.sent, ", "), tw.logs.String())
	}
}
