package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acme-payments/platform/internal/stackconfig"
	"github.com/acme-payments/platform/internal/stacktest"
)

// stackEnvDefaults returns stack.env's settings as KEY=value entries.
func stackEnvDefaults(t *testing.T) []string {
	t.Helper()
	vals, err := stackconfig.ReadEnvFile(filepath.Join(stacktest.RepoRoot(t), stackconfig.DefaultsFileName), false)
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for k, v := range vals {
		env = append(env, k+"="+v)
	}
	return env
}

// TestHAProxyConfig checks haproxy.cfg with `haproxy -c`: on its own (the
// defaults written in the file), with stack.env's settings, with the
// settings a benchmark uses, and as an HAProxy without the Prometheus
// exporter reads it.
func TestHAProxyConfig(t *testing.T) {
	bin := stacktest.Binary(t, "haproxy", "apt-get install haproxy, or nix develop")
	cfg := filepath.Join(stacktest.RepoRoot(t), stackconfig.HAProxyFileName)
	tests := []struct {
		name string
		env  []string
	}{
		{"file defaults", nil},
		{"stack.env", stackEnvDefaults(t)},
		{"benchmark", []string{"PLATFORM_PORT=18080", "HAPROXY_STATS_PORT=18404", "AUTH_API_PORT=15001", "CORE_API_PORT=15002", "AUTH_RATE_LIMIT=1000000"}},
		{"access log errors only", []string{"HAPROXY_ACCESS_LOG=errors"}},
		{"the stack's unix sockets", []string{"AUTH_API_SERVER=unix@/run/acme/auth-api.sock", "CORE_API_SERVER=unix@/run/acme/core-api.sock"}},
	}
	// The same file as an HAProxy built without the Prometheus exporter sees
	// it: the ".else" branch must load too.
	orig, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(orig), ".if feature(PROMEX)") {
		t.Fatalf("haproxy.cfg: want the exporter behind .if feature(PROMEX)")
	}
	noPromexDir := t.TempDir()
	noPromex := filepath.Join(noPromexDir, stackconfig.HAProxyFileName)
	if err := os.WriteFile(noPromex, []byte(strings.Replace(string(orig), "feature(PROMEX)", "feature(NOT_BUILT_IN)", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	// Its errorfiles are named relative to it.
	if err := os.Symlink(filepath.Join(filepath.Dir(cfg), stackconfig.HAProxyErrorsDir), filepath.Join(noPromexDir, stackconfig.HAProxyErrorsDir)); err != nil {
		t.Fatal(err)
	}
	tests = append(tests, struct {
		name string
		env  []string
	}{"without the Prometheus exporter", nil})

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			file := cfg
			if tt.name == "without the Prometheus exporter" {
				file = noPromex
			}
			cmd := exec.CommandContext(ctx, bin, "-c", "-f", file)
			cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, tt.env...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("haproxy -c: %v\n%s", err, out)
			}
			// A warning is a mistake waiting to happen; the file has none.
			if strings.Contains(string(out), "[WARNING]") || strings.Contains(string(out), "[ALERT]") {
				t.Errorf("haproxy -c: got warnings, want none:\n%s", out)
			}
		})
	}
}

// TestHAProxyConfigRefusesUnknownAccessLog: a mistyped HAPROXY_ACCESS_LOG
// stops HAProxy with a message naming the variable, instead of silently
// logging everything (or nothing).
func TestHAProxyConfigRefusesUnknownAccessLog(t *testing.T) {
	bin := stacktest.Binary(t, "haproxy", "apt-get install haproxy, or nix develop")
	cfg := filepath.Join(stacktest.RepoRoot(t), stackconfig.HAProxyFileName)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-c", "-f", cfg)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HAPROXY_ACCESS_LOG=none"}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "HAPROXY_ACCESS_LOG must be all or errors") {
		t.Errorf("haproxy -c with HAPROXY_ACCESS_LOG=none: got %v, %s; want a failure naming the variable", err, out)
	}
}

// TestComposeFileLoads checks process-compose.yaml with process-compose's
// own validation (--dry-run), given the variables the launcher sets.
func TestComposeFileLoads(t *testing.T) {
	bin := stacktest.ProcessCompose(t)
	root := stacktest.RepoRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	cmd := exec.CommandContext(ctx, bin, "up", "--dry-run", "--disable-dotenv", "--tui=false",
		"--config", filepath.Join(root, stackconfig.ComposeFileName), "--log-file", filepath.Join(dir, "pc.log"))
	cmd.Dir = dir
	cmd.Env = append(stackEnvDefaults(t),
		"PATH="+os.Getenv("PATH"), "HOME="+dir,
		"STACK_STATE_DIR="+dir, "STACK_CONFIG_DIR="+root, "STACK_LAUNCHER=/bin/true", "STACK_API_SOCKET="+dir+"/process-compose.sock",
		"STACK_SERVICE_STOP_TIMEOUT=15", "STACK_HAPROXY_STOP_SIGNAL=10", "REDIS_URL=unix://"+dir+"/redis/redis.sock")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Validated 6 configured processes") {
		t.Fatalf("process-compose up --dry-run: %v\n%s", err, out)
	}
}

// composeProbePeriod is process-compose.yaml's readiness period_seconds:
// the fault tests wait that long for process-compose to have probed again.
const composeProbePeriod = 5 * time.Second

// TestComposeProbePeriod keeps composeProbePeriod in step with
// process-compose.yaml: every readiness probe runs every composeProbePeriod,
// with a timeout that leaves the probe its 4 s of retries (`stack probe`).
func TestComposeProbePeriod(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(t), stackconfig.ComposeFileName))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"period_seconds":  strconv.Itoa(int(composeProbePeriod / time.Second)),
		"timeout_seconds": strconv.Itoa(int(composeProbePeriod / time.Second)),
	}
	probes, seen := 0, map[string]int{}
	probeIndent := -1 // the indentation of the readiness_probe: key we are in, -1 outside
	for i, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		if indent <= probeIndent {
			probeIndent = -1
		}
		if trimmed == "readiness_probe:" {
			probes, probeIndent = probes+1, indent
			continue
		}
		key, val, _ := strings.Cut(trimmed, ":")
		if w, ok := want[key]; ok && probeIndent >= 0 {
			seen[key]++
			if val = strings.TrimSpace(val); val != w {
				t.Errorf("%s line %d: readiness probe %s: %s, want %s (composeProbePeriod)", stackconfig.ComposeFileName, i+1, key, val, w)
			}
		}
	}
	if probes != 5 || seen["period_seconds"] != probes || seen["timeout_seconds"] != probes {
		t.Errorf("%s: %d readiness probes with %d period_seconds and %d timeout_seconds; want 5 of each", stackconfig.ComposeFileName, probes, seen["period_seconds"], seen["timeout_seconds"])
	}
}

// TestUpTimeoutNamesProcesses starts a stack that cannot become ready (the
// services get a Redis URL that leads nowhere) and checks that
// `up --detach --wait` gives up after --timeout, naming each process that is
// not ready with the end of its log, and that `down` still cleans up.
func TestUpTimeoutNamesProcesses(t *testing.T) {
	pcDir := requireTools(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := newStack(t, ctx, pcDir, map[string]string{"REDIS_URL": "unix:///nonexistent/redis.sock"})

	stderr := upMustFail(t, s, "3s", 20*time.Second,
		"psp-connector is not ready: running, readiness probe not passing",
		"last lines of", "/nonexistent/redis.sock", "1 of 6 processes not ready after",
		"stack down")
	// Redis and auth-api, which needs nothing else, are fine; core-api is
	// ready while it answers (its /health says 503 about Redis), and so
	// HAProxy starts.
	for _, name := range []string{"redis", "auth-api", "core-api", "haproxy"} {
		if strings.Contains(stderr, name+" is not ready") {
			t.Errorf("up's report:\n%s\nwant %s (which is fine) not named", stderr, name)
		}
	}
	if _, stderr, err := s.run("down"); err != nil {
		t.Fatalf("down after a failed up: %v\n%s", err, stderr)
	}
}

// TestUpGivesUpOnAServiceThatFailsAtStart: a bad service setting in
// stack.local.env makes psp-connector exit at every start. `up --wait` ends
// after a few restarts, not at its --timeout, and says which setting, why,
// and which file set it.
func TestUpGivesUpOnAServiceThatFailsAtStart(t *testing.T) {
	pcDir := requireTools(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := newStack(t, ctx, pcDir, nil)
	local := filepath.Join(s.dir, stackconfig.LocalFileName)
	if err := os.WriteFile(local, []byte("VISIBILITY_TIMEOUT=half a minute\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// Within 30 s of a 60 s timeout: it gave up after a few restarts.
	upMustFail(t, s, "60s", 30*time.Second,
		"psp-connector exited and was restarted 3 times without becoming ready",
		"psp-connector is not ready",
		`VISIBILITY_TIMEOUT must be a duration such as 10s, got "half a minute"`,
		"VISIBILITY_TIMEOUT is set in "+local,
		"stack down")
	if _, stderr, err := s.run("down"); err != nil {
		t.Fatalf("down after a failed up: %v\n%s", err, stderr)
	}
}

// upMustFail runs `up --detach --wait --timeout timeout`, which must fail
// within the given time with a report that contains each of wants; it
// returns the report (up's stderr).
func upMustFail(t *testing.T, s *stackUnderTest, timeout string, within time.Duration, wants ...string) string {
	t.Helper()
	start := time.Now()
	_, stderr, err := s.run("up", "--detach", "--wait", "--timeout", timeout)
	if err == nil {
		t.Fatalf("up: got success, want a failure\n%s", stderr)
	}
	if d := time.Since(start); d > within {
		t.Errorf("up --timeout %s: returned after %s, want within %s", timeout, d, within)
	}
	for _, want := range wants {
		if !strings.Contains(stderr, want) {
			t.Errorf("up's report:\n%s\nwant it to contain %q", stderr, want)
		}
	}
	return stderr
}

// TestHAProxyErrorfiles checks every answer in haproxy-errors/: a complete
// HTTP response whose status is its file name, JSON with a non-empty "error",
// an Allow header on a 405, and a Content-Length that matches the body (HAProxy sends the file as it
// is, so a hand edit that changes the text must change the length too), and
// that haproxy.cfg names each file.
func TestHAProxyErrorfiles(t *testing.T) {
	root := stacktest.RepoRoot(t)
	cfg, err := os.ReadFile(filepath.Join(root, stackconfig.HAProxyFileName))
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, stackconfig.HAProxyErrorsDir, "*.http"))
	// A backend's own answers, in a directory named after it.
	perBackend, err2 := filepath.Glob(filepath.Join(root, stackconfig.HAProxyErrorsDir, "*", "*.http"))
	files = append(files, perBackend...)
	if err = errors.Join(err, err2); err != nil || len(files) == 0 {
		t.Fatalf("no errorfiles in %s: %v", stackconfig.HAProxyErrorsDir, err)
	}
	// HAProxy's HTTP/1 layer answers a request it refuses while parsing it
	// with one of these statuses (h1_send_error and the h1c->errcode
	// assignments in src/mux_h1.c: 400, 408, 413 for an HTTP/1.0 GET, HEAD
	// or DELETE with a body, 422 for a transfer-coding other than chunked,
	// 500, 501; 414 and 431 from 3.1), and from 3.3 sends the errorfile
	// for that status, when there is one, else its built-in HTML.
	t.Run("every status of the HTTP/1 layer", func(t *testing.T) {
		for _, code := range []string{"400", "405", "408", "413", "414", "422", "431", "500", "501"} {
			if !regexp.MustCompile(`(?m)^\s*errorfile ` + code + ` `).Match(cfg) {
				t.Errorf("haproxy.cfg has no errorfile %s: HAProxy 3.3 and later answer their %s with built-in HTML", code, code)
			}
		}
	})
	for _, f := range files {
		name, _ := filepath.Rel(filepath.Join(root, stackconfig.HAProxyErrorsDir), f)
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			res, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
			if err != nil {
				t.Fatalf("not an HTTP response: %v", err)
			}
			body, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatalf("body: %v", err)
			}
			if want := strings.TrimSuffix(filepath.Base(name), ".http"); strconv.Itoa(res.StatusCode) != want {
				t.Errorf("status %d, want %s (the file name)", res.StatusCode, want)
			}
			if ct := res.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			// RFC 9110, section 15.5.6: a 405 must say which methods are
			// allowed, as the services' 405s do.
			if res.StatusCode == http.StatusMethodNotAllowed && res.Header.Get("Allow") == "" {
				t.Errorf("a 405 without Allow, want the methods the router serves")
			}
			if after := len(raw) - (bytes.Index(raw, []byte("\r\n\r\n")) + 4); res.ContentLength != int64(after) {
				t.Errorf("Content-Length %d, but %d bytes follow the header", res.ContentLength, after)
			}
			var msg struct{ Error string }
			if err := json.Unmarshal(body, &msg); err != nil || msg.Error == "" {
				t.Errorf("body %q: want JSON with a non-empty error (%v)", body, err)
			}
			if !strings.Contains(string(cfg), "errorfile "+strings.TrimSuffix(filepath.Base(name), ".http")+" "+stackconfig.HAProxyErrorsDir+"/"+filepath.ToSlash(name)) {
				t.Errorf("haproxy.cfg does not load %s", name)
			}
		})
	}
}

// TestServiceBinariesExitOneOnBadConfig runs the built binaries, as a user
// or an orchestrator does: a configuration error is one line on stderr,
// naming the service and the variable, and exit status 1 (the contract's
// "JWT_SECRET required"; run's errors alone are checked in each service).
func TestServiceBinariesExitOneOnBadConfig(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := stacktest.BuildBinaries(t, ctx)
	tests := []struct {
		name    string
		service string
		environ []string
		stderr  string // the start of stderr
	}{
		{"auth-api without JWT_SECRET", "auth-api", nil, "auth-api: JWT_SECRET is required"},
		{"core-api without JWT_SECRET", "core-api", nil, "core-api: JWT_SECRET is required"},
		{"core-api with HTTP_PORT not a number", "core-api", []string{"JWT_SECRET=" + strings.Repeat("k", 32), "HTTP_PORT=five"}, `core-api: HTTP_PORT must be a whole number, got "five"`},
		{"psp-connector with an http REDIS_URL", "psp-connector", []string{"REDIS_URL=http://127.0.0.1:6379"}, "psp-connector: REDIS_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(ctx, 20*time.Second) // a service that starts anyway is killed
			defer cancel()
			var stderr bytes.Buffer
			cmd := exec.CommandContext(ctx, filepath.Join(bin, tt.service))
			// Nothing else, not even PATH or HOME, nor a JWT_SECRET exported
			// in the test's shell (a nil Env would inherit them all).
			cmd.Env = append([]string{}, tt.environ...)
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Errorf("got %v, want exit status 1", err)
			}
			if lines := strings.Split(strings.TrimSpace(stderr.String()), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], tt.stderr) {
				t.Errorf("stderr: got %q, want one line starting %q", stderr.String(), tt.stderr)
			}
		})
	}
}

// TestComposeLogLocations keeps process-compose.yaml's log_location of each
// process where the launcher reads it (stackconfig.Config.LogFile): `stack
// logs`, up's not-ready report and up's fresh log files all go by it.
func TestComposeLogLocations(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(t), stackconfig.ComposeFileName))
	if err != nil {
		t.Fatal(err)
	}
	cfg := stackconfig.Config{StateDir: "${STACK_STATE_DIR}"}
	got := map[string]string{} // process → its log_location
	inProcesses, process := false, ""
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "processes:"):
			inProcesses = true
		case line != "" && line[0] != ' ' && line[0] != '#':
			inProcesses = false
		case inProcesses && strings.HasPrefix(line, "  ") && !strings.HasPrefix(line, "   ") && strings.HasSuffix(line, ":"):
			process = strings.TrimSuffix(strings.TrimSpace(line), ":")
		case inProcesses && strings.HasPrefix(strings.TrimSpace(line), "log_location:"):
			_, v, _ := strings.Cut(line, ":")
			got[process] = strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	for _, name := range []string{"redis", "psp-connector", "core-api", "auth-api", "haproxy", "watchdog"} {
		if want := cfg.LogFile(name); got[name] != want {
			t.Errorf("%s: %s's log_location: got %q, want %q (stackconfig.Config.LogFile)", stackconfig.ComposeFileName, name, got[name], want)
		}
	}
	if len(got) != 6 {
		t.Errorf("%s: got log_location for %d processes (%v), want 6", stackconfig.ComposeFileName, len(got), got)
	}
}
