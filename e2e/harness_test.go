package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/acme-payments/platform/internal/redistest"
	"github.com/acme-payments/platform/internal/stacktest"
)

// stackUnderTest is one running stack, started through the launcher with
// its own state dir and free ports.
type stackUnderTest struct {
	t      *testing.T
	ctx    context.Context
	bin    string            // dir holding stack and the three services, built from this checkout
	dir    string            // working directory of every launcher command
	env    []string          // environment of every launcher command
	vars   map[string]string // the settings given to the launcher
	base   string            // http://127.0.0.1:<PLATFORM_PORT>
	client *http.Client
}

// requireTools skips (or, under CI=true, fails) without the stack's tools
// and returns the directory holding process-compose.
func requireTools(t *testing.T) string {
	t.Helper()
	redistest.RequireBinary(t, "redis-server")
	stacktest.Binary(t, "haproxy", "apt-get install haproxy, or nix develop")
	return filepath.Dir(stacktest.ProcessCompose(t))
}

// upReadyStack starts a stack of its own for t (newStack, default settings)
// with `stack up --detach --wait` and fails t unless every process is ready
// within 60 s.
func upReadyStack(t *testing.T, ctx context.Context) *stackUnderTest {
	t.Helper()
	s := newStack(t, ctx, requireTools(t), nil)
	if _, stderr, err := s.run("up", "--detach", "--wait", "--timeout", "60s"); err != nil {
		t.Fatalf("stack up: %v\n%s", err, stderr)
	}
	return s
}

// stackShutdownGrace is the test stacks' SHUTDOWN_GRACE, unless a test
// sets its own.
const stackShutdownGrace = 5 * time.Second

// newStack prepares (but does not start) a stack, and stops it when the test
// ends. It runs the launcher with STACK_SHARE_DIR at this checkout and its
// working directory in a temporary directory, so that a developer's
// stack.local.env cannot change the test.
func newStack(t *testing.T, ctx context.Context, pcDir string, extra map[string]string) *stackUnderTest {
	t.Helper()
	bin := stacktest.BuildBinaries(t, ctx)
	// Unix socket paths are limited to ~100 bytes; t.TempDir() can be longer.
	tmp := stacktest.ShortTempDir(t, "stack-e2e-")
	state := filepath.Join(tmp, "state")

	p := stacktest.FreePorts(t, 5)
	vars := map[string]string{
		"STACK_SHARE_DIR":    stacktest.RepoRoot(t),
		"STACK_STATE_DIR":    state,
		"PLATFORM_PORT":      strconv.Itoa(p[0]),
		"HAPROXY_STATS_PORT": strconv.Itoa(p[1]),
		"AUTH_API_PORT":      strconv.Itoa(p[2]),
		"CORE_API_PORT":      strconv.Itoa(p[3]),
		"PSP_CONNECTOR_PORT": strconv.Itoa(p[4]),
		"AUTH_RATE_LIMIT":    "20",
		"SHUTDOWN_GRACE":     stackShutdownGrace.String(),
	}
	for k, v := range extra {
		vars[k] = v
	}
	env := []string{"PATH=" + bin + string(filepath.ListSeparator) + pcDir + string(filepath.ListSeparator) + os.Getenv("PATH")}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		// Keep HOME, GOCACHE and the like; drop anything the stack reads.
		if k == "PATH" || k == "JWT_SECRET" || k == "REDIS_URL" || strings.HasPrefix(k, "PC_") {
			continue
		}
		if _, ours := vars[k]; ours {
			continue
		}
		env = append(env, kv)
	}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	s := &stackUnderTest{
		t: t, ctx: ctx, bin: bin, dir: t.TempDir(), env: env, vars: vars,
		base:   "http://127.0.0.1:" + vars["PLATFORM_PORT"],
		client: &http.Client{Timeout: 10 * time.Second},
	}
	// Whatever happens to the test, stop the stack (a no-op once it is
	// down). The test's own context is usually cancelled by now.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if _, stderr, err := s.runContext(ctx, "down"); err != nil {
			t.Errorf("stack down at cleanup: %v\n%s", err, stderr)
		}
	})
	return s
}

// run runs the launcher with args and returns its stdout and stderr.
func (s *stackUnderTest) run(args ...string) (string, string, error) {
	s.t.Helper()
	return s.runContext(s.ctx, args...)
}

func (s *stackUnderTest) runContext(ctx context.Context, args ...string) (string, string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, "stack"), args...)
	cmd.Dir, cmd.Env = s.dir, s.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// processState is one entry of `stack status --json`.
type processState struct {
	Name     string `json:"name"`
	Status   string `json:"status"`
	Ready    bool   `json:"ready"`
	Pid      int    `json:"pid"`
	Restarts int    `json:"restarts"`
}

type statusReport struct {
	Running           bool           `json:"running"`
	ProcessComposePid int            `json:"process_compose_pid"`
	Processes         []processState `json:"processes"`
}

func (s *stackUnderTest) status() statusReport {
	s.t.Helper()
	out, stderr, err := s.run("status", "--json")
	var rep statusReport
	if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil {
		s.t.Fatalf("stack status --json: %v (%v)\n%s\n%s", jerr, err, out, stderr)
	}
	return rep
}

func (s *stackUnderTest) logFile(name string) string {
	b, err := os.ReadFile(filepath.Join(s.vars["STACK_STATE_DIR"], "logs", name+".log"))
	if err != nil {
		s.t.Fatalf("read %s log: %v", name, err)
	}
	return string(b)
}

// logCount returns how many times substr is in process name's log, once
// there are at least want, or after 5 s. process-compose writes a line to
// the file some time after the process printed it (it reads the process's
// pipe on its own time), so a line the process printed before something the
// test saw (a status record, a readiness probe) may not be in the file yet.
func (s *stackUnderTest) logCount(name, substr string, want int) int {
	n := 0
	pollUntil(5*time.Second, func() bool {
		n = strings.Count(s.logFile(name), substr)
		return n >= want
	})
	return n
}

// response is one HTTP answer, its body decoded as a JSON object.
type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.status, r.raw) }

// do sends a request through HAProxy; body, if not nil, is sent as JSON.
func (s *stackUnderTest) do(client *http.Client, method, path string, body any, header map[string]string) response {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(s.ctx, method, s.base+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if client == nil {
		client = s.client
	}
	resp, err := client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	r := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

// token gets a token for username through the router.
func (s *stackUnderTest) token(username string) string {
	s.t.Helper()
	r := s.do(nil, http.MethodPost, "/auth/token", map[string]string{"username": username, "password": "password"}, nil)
	tok, _ := r.body["token"].(string)
	if r.status != http.StatusOK || tok == "" {
		s.t.Fatalf("POST /auth/token as %s: got %s, want 200 with a token", username, r)
	}
	return tok
}

// checkAllGone fails t for each process of rep, process-compose included,
// that is still running; when says at which point ("after down").
func checkAllGone(t *testing.T, rep statusReport, when string) {
	t.Helper()
	for _, p := range append(rep.Processes, processState{Name: "process-compose", Pid: rep.ProcessComposePid}) {
		if !pidGone(p.Pid) {
			t.Errorf("%s: %s (pid %d) is still running", when, p.Name, p.Pid)
		}
	}
}

// stopProcess sends pid SIGSTOP and waits (up to 10 s) until every one of
// its threads is stopped. kill returns once the signal is queued: the
// thread that takes it stops the others only when it next runs, and on a
// loaded machine the rest (process-compose's API among them) can go on
// answering for a while (an e2e test's `stack status` got its answer).
func stopProcess(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("kill -STOP %d: %v", pid, err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
	if !pollUntil(10*time.Second, func() bool { return allThreadsStopped(pid) }) {
		t.Fatalf("pid %d: not every thread stopped 10 s after SIGSTOP", pid)
	}
}

// allThreadsStopped reports whether every thread of pid is in state T
// (stopped by a signal) in /proc.
func allThreadsStopped(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if err != nil {
			return false
		}
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i < 0 || i+2 >= len(s) || s[i+2] != 'T' {
			return false
		}
	}
	return true
}

// pidGone reports whether pid has exited (a zombie counts as gone).
func pidGone(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] == 'Z'
	}
	return false
}
