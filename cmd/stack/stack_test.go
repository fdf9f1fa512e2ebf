package main

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/acme-payments/platform/internal/httpx"
	"github.com/acme-payments/platform/internal/procompose"
	"github.com/acme-payments/platform/internal/redistest"
	"github.com/acme-payments/platform/internal/rotatedlog"
	"github.com/acme-payments/platform/internal/stackconfig"
	"github.com/acme-payments/platform/internal/stacktest"
)

func TestCheckPortsNamesPortAndVariable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().(*net.TCPAddr).Port
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freePort := free.Addr().(*net.TCPAddr).Port
	free.Close()

	err = checkPorts([]stackconfig.Port{
		{Var: "AUTH_API_PORT", Host: "127.0.0.1", Port: freePort},
		{Var: "PLATFORM_PORT", Host: "127.0.0.1", Port: taken},
	}, "/repo/stack.local.env", nil)
	if err == nil {
		t.Fatal("got nil, want an error for the taken port")
	}
	msg := err.Error()
	for _, want := range []string{"port " + strconv.Itoa(taken) + " on 127.0.0.1 is not free", "set PLATFORM_PORT", "/repo/stack.local.env"} {
		if !strings.Contains(msg, want) {
			t.Errorf("got %q, want it to contain %q", msg, want)
		}
	}
	if strings.Contains(msg, "AUTH_API_PORT") {
		t.Errorf("got %q, want the free port's variable not named", msg)
	}
	// An address this machine does not have is the host variable's fault.
	err = checkPorts([]stackconfig.Port{{Var: "PLATFORM_PORT", HostVar: "PLATFORM_HOST", Host: "192.0.2.1", Port: freePort}}, "x", nil)
	if err == nil || !strings.Contains(err.Error(), "set PLATFORM_HOST to an address of this machine") || strings.Contains(err.Error(), "set PLATFORM_PORT") {
		t.Errorf("an address not on this machine: got %v, want PLATFORM_HOST named, not PLATFORM_PORT", err)
	}
	if err := checkPorts([]stackconfig.Port{{Var: "AUTH_API_PORT", Host: "127.0.0.1", Port: freePort}}, "x", nil); err != nil {
		t.Errorf("free port: got %v, want nil", err)
	}
}

// TestUpSaysWhereToMoveATakenPort: a taken port's error says where to move
// it. The environment overrides stack.local.env, so a port the environment
// sets must be moved there: advice to set it in the file would change
// nothing.
func TestUpSaysWhereToMoveATakenPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	tests := []struct {
		name      string
		inFile    bool // PLATFORM_PORT in stack.local.env, else in the environment
		want, not string
	}{
		{"set in the environment", false, "set PLATFORM_PORT to another port in the environment, which sets it now (and overrides <local>)", "in <local> or in the environment"},
		{"set in stack.local.env", true, "set PLATFORM_PORT to another port in <local> or in the environment", "which sets it now"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := fakeCheckout(t)
			t.Chdir(root)
			local := filepath.Join(root, stackconfig.LocalFileName)
			environ := []string{"STACK_STATE_DIR=" + shortStateDir(t)}
			ports := stacktest.FreePorts(t, 4)
			for i, name := range []string{"HAPROXY_STATS_PORT", "AUTH_API_PORT", "CORE_API_PORT", "PSP_CONNECTOR_PORT"} {
				environ = append(environ, fmt.Sprintf("%s=%d", name, ports[i]))
			}
			if tt.inFile {
				if err := os.WriteFile(local, []byte("PLATFORM_PORT="+taken+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			} else {
				environ = append(environ, "PLATFORM_PORT="+taken)
			}
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), []string{"stack", "up", "--detach"}, environ, nil, &stdout, &stderr)
			if err == nil {
				t.Fatalf("up with PLATFORM_PORT %s taken: got success, want an error", taken)
			}
			msg := err.Error()
			want := strings.ReplaceAll(tt.want, "<local>", local)
			not := strings.ReplaceAll(tt.not, "<local>", local)
			if !strings.Contains(msg, want) || strings.Contains(msg, not) {
				t.Errorf("got %q, want it to contain %q, and not %q", msg, want, not)
			}
		})
	}
}

func TestWriteNotReadyShowsStateAndLogTail(t *testing.T) {
	cfg := stackconfig.Config{StateDir: t.TempDir()}
	if err := os.Mkdir(cfg.LogDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&log, "core-api line %d\n", i)
	}
	if err := os.WriteFile(cfg.LogFile("core-api"), []byte(log.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	nr := &procompose.NotReadyError{Waited: 3 * time.Second, Processes: []procompose.Process{
		{Name: "core-api", Status: procompose.StatusRunning, HasReadyProbe: true, Health: "Not Ready"},
		{Name: "haproxy"},
	}}
	var out bytes.Buffer
	writeNotReady(&out, nr, cfg.LogFile, func(p string) string { return p }, func(string, string) []string { return nil })
	got := out.String()
	for _, want := range []string{
		"core-api is not ready: running, readiness probe not passing",
		"core-api line 40", "core-api line 26",
		"haproxy is not ready: not started", "(no log yet)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("got:\n%s\nwant it to contain %q", got, want)
		}
	}
	if strings.Contains(got, "core-api line 25\n") {
		t.Errorf("got:\n%s\nwant only the last 15 lines", got)
	}
}

// TestTailTakesTheRestFromThePieceBeforeAShortLog: when process-compose has
// just rotated a process's log (rotatedlog), its last lines before it failed
// are in the newest piece, so the report of a process that is not ready reads
// them from there.
func TestTailTakesTheRestFromThePieceBeforeAShortLog(t *testing.T) {
	lines := func(from, to int) string {
		var b strings.Builder
		for i := from; i <= to; i++ {
			fmt.Fprintf(&b, "line %d\n", i)
		}
		return b.String()
	}
	stamp := time.Date(2026, 12, 7, 9, 0, 0, 0, time.Local)
	tests := []struct {
		name   string
		pieces []string // oldest first
		log    string
		want   string
	}{
		{"a log of enough lines", []string{lines(1, 20)}, lines(21, 40), strings.TrimSuffix(lines(26, 40), "\n")},
		{"a short log", []string{"older piece\n", lines(1, 20)}, lines(21, 23), strings.TrimSuffix(lines(9, 23), "\n")},
		{"an empty log just rotated", []string{lines(1, 20)}, "", strings.TrimSuffix(lines(6, 20), "\n")},
		{"a short log never rotated", nil, lines(1, 3), strings.TrimSuffix(lines(1, 3), "\n")},
		{"an empty log never rotated", nil, "", "(empty)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "core-api.log")
			for i, piece := range tt.pieces {
				if err := os.WriteFile(rotatedlog.PieceName(path, stamp.Add(time.Duration(i)*time.Second)), []byte(piece), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(path, []byte(tt.log), 0o600); err != nil {
				t.Fatal(err)
			}
			if got := tail(path, 15); got != tt.want {
				t.Errorf("tail:\ngot  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// fakeCheckout makes a directory the launcher takes for a checkout.
func fakeCheckout(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range map[string]string{
		"go.mod": "module x\n", stackconfig.ComposeFileName: "processes: {}\n", stackconfig.DefaultsFileName: "PLATFORM_PORT=8080\n",
	} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestHelpSaysWhenStackEnvIsAbsent(t *testing.T) {
	root := fakeCheckout(t)
	if err := os.Remove(filepath.Join(root, stackconfig.DefaultsFileName)); err != nil {
		t.Fatal(err)
	}
	t.Chdir(root)
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"stack", "--help"}, nil, nil, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if want := "(defaults; absent: the built-in ones apply)"; !strings.Contains(stdout.String(), want) {
		t.Errorf("help:\n%s\nwant it to contain %q", stdout.String(), want)
	}
}

func TestHelpSaysWhichFilesAndStateDir(t *testing.T) {
	root := fakeCheckout(t)
	t.Chdir(root)
	state := filepath.Join(t.TempDir(), "st")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"stack", "--help"}, []string{"STACK_STATE_DIR=" + state, "PLATFORM_PORT=9090"}, nil, &stdout, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	got := stdout.String()
	for _, want := range []string{
		filepath.Join(root, "process-compose.yaml"), filepath.Join(root, "haproxy.cfg"), filepath.Join(root, "haproxy-errors"),
		filepath.Join(root, "stack.env"), filepath.Join(root, "stack.local.env"),
		"State dir (STACK_STATE_DIR): " + state, "http://127.0.0.1:9090", "from this checkout",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("help:\n%s\nwant it to contain %q", got, want)
		}
	}
}

// TestHelpWithAnIncompleteShareDir: the help names what STACK_SHARE_DIR
// lacks, and says the state dir cannot be known without the stack's files.
func TestHelpWithAnIncompleteShareDir(t *testing.T) {
	t.Chdir(t.TempDir())
	share := t.TempDir()
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"stack", "--help"}, []string{"STACK_SHARE_DIR=" + share}, nil, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"STACK_SHARE_DIR=" + share + " has no process-compose.yaml", "State dir (STACK_STATE_DIR): not known until the stack's files are found"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("help:\n%s\nwant it to contain %q", stdout.String(), want)
		}
	}
	stdout.Reset()
	if err := run(context.Background(), []string{"stack", "--help"}, []string{"STACK_SHARE_DIR=" + share, "STACK_STATE_DIR=/srv/st"}, nil, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if want := "State dir (STACK_STATE_DIR): /srv/st, set in the environment"; !strings.Contains(stdout.String(), want) {
		t.Errorf("help:\n%s\nwant it to contain %q", stdout.String(), want)
	}
}

func TestLauncherWarnsAboutAKeyNothingReads(t *testing.T) {
	root := fakeCheckout(t)
	t.Chdir(root)
	local := filepath.Join(root, stackconfig.LocalFileName)
	if err := os.WriteFile(local, []byte("REDIS_APPENDSYNC=no\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"stack", "--help"}, []string{"STACK_STATE_DIR=" + shortStateDir(t)}, nil, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	want := "stack: warning: " + local + ": REDIS_APPENDSYNC is not a setting of the stack or its services (did you mean REDIS_APPENDFSYNC?)"
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr: got %q, want it to contain %q", stderr.String(), want)
	}
}

// TestCommandLines: -h on any command is the help (exit 0); a bad flag, a
// stray argument or a flag that cannot apply is exit status 2 naming it,
// before anything is started or stopped.
func TestCommandLines(t *testing.T) {
	t.Chdir(fakeCheckout(t))
	environ := []string{"STACK_STATE_DIR=" + shortStateDir(t)}
	tests := []struct {
		args     string
		wantCode int // 0: success
		want     string
	}{
		{"status --help", 0, "Usage:"},
		{"version --help", 0, "Usage:"},
		{"down -h", 0, "Usage:"},
		{"reset --help", 0, "Usage:"},
		{"up --help", 0, "Usage:"},
		{"status --bogus", 2, "status: flag provided but not defined: -bogus"},
		{"version --bogus", 2, "version: flag provided but not defined: -bogus"},
		{"logs --bogus=1", 2, "logs: flag provided but not defined: -bogus"},
		{"down now", 2, `down takes no arguments, got ["now"]`},
		{"status extra", 2, `status takes no arguments, got ["extra"]`},
		{"reset extra", 2, `reset takes no arguments, got ["extra"]`},
		{"version extra", 2, `version takes no arguments, got ["extra"]`},
		{"up extra", 2, `up takes no arguments, got ["extra"]`},
		{"up --wait", 2, "--wait needs --detach"},
		{"up --timeout 5s", 2, "--timeout needs --detach --wait"},
		{"up --detach --wait --timeout 0", 2, "--timeout must be a positive duration"},
		{"up --detach --wait --timeout -5s", 2, "--timeout must be a positive duration"},
		{"down --timeout 0s", 2, "--timeout must be a positive duration"},
		{"up --detach --wait --timeout abc", 2, `up: --timeout must be a duration such as 30s, got "abc"`},
		{"down --timeout 90", 2, `down: --timeout must be a duration such as 30s, got "90"`},
		{"status --json=maybe", 2, `status: --json must be true or false (or the flag alone, for true), got "maybe"`},
		{"reset --yes=2", 2, `reset: --yes must be true or false (or the flag alone, for true), got "2"`},
		{"logs -f=abc", 2, `logs: -f takes no value, got "-f=abc"`},
		{"logs --follow=true", 2, `logs: --follow takes no value, got "--follow=true"`},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append([]string{"stack"}, strings.Fields(tt.args)...), environ, nil, &stdout, &stderr)
			if tt.wantCode == 0 {
				if err != nil || !strings.Contains(stdout.String(), tt.want) {
					t.Errorf("got %v, stdout %q; want success and %q", err, stdout.String(), tt.want)
				}
				return
			}
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != tt.wantCode || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want exit status %d and an error containing %q", err, tt.wantCode, tt.want)
			}
			if stderr.Len() > 0 {
				t.Errorf("stderr %q: want the error once, as the returned error only", stderr.String())
			}
		})
	}
}

// TestStatusOnABadSetting: status needs only the state dir. A bad setting
// of another kind is named in a warning (on stderr, and in the JSON's
// "warning"), and status reports the stack's state as always: here, not
// running, exit status 3 (e2e's TestStack checks a running one). Before,
// it said "running": false with exit status 1 whatever ran. A bad state
// dir is an error: JSON still, with "error".
func TestStatusOnABadSetting(t *testing.T) {
	t.Chdir(fakeCheckout(t))
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"stack", "status", "--json"}, []string{"PLATFORM_PORT=80a"}, nil, &stdout, &stderr)
	var rep statusReport
	if jerr := json.Unmarshal(stdout.Bytes(), &rep); jerr != nil {
		t.Fatalf("status --json with a bad setting: stdout %q is not JSON: %v", stdout.String(), jerr)
	}
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 3 || rep.Running || rep.Error != "" || !strings.Contains(rep.Warning, "PLATFORM_PORT") ||
		!strings.Contains(stderr.String(), "PLATFORM_PORT") {
		t.Errorf("got %v, report %+v, stderr %q; want exit status 3 (not running) and a warning naming PLATFORM_PORT", err, rep, stderr.String())
	}

	stdout.Reset()
	err = run(context.Background(), []string{"stack", "status", "--json=true"}, []string{"STACK_STATE_DIR=/tmp/it's"}, nil, &stdout, &stderr)
	rep = statusReport{}
	if jerr := json.Unmarshal(stdout.Bytes(), &rep); err == nil || jerr != nil || rep.Error != err.Error() || !strings.Contains(rep.Error, "STACK_STATE_DIR") {
		t.Errorf("status --json=true with a bad state dir: got %v, stdout %q; want JSON with the error naming STACK_STATE_DIR", err, stdout.String())
	}
}

// TestHelpWithABadSetting: -h after any command still prints the help, which
// names the bad setting.
func TestHelpWithABadSetting(t *testing.T) {
	t.Chdir(fakeCheckout(t))
	environ := []string{"PLATFORM_PORT=80a"}
	for _, args := range []string{"down -h", "status --help", "logs -h", "reset --help", "up -h", "version -h"} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), append([]string{"stack"}, strings.Fields(args)...), environ, nil, &stdout, &stderr)
		if err != nil || !strings.Contains(stdout.String(), "Usage:") || !strings.Contains(stdout.String(), `PLATFORM_PORT must be a whole number, got "80a"`) {
			t.Errorf("%s: got %v, stdout %q; want the help, naming the bad setting", args, err, stdout.String())
		}
	}
}

func TestResetPromptEndsItsLineForAnAnswerNotTyped(t *testing.T) {
	t.Chdir(fakeCheckout(t))
	state := preparedStateDir(t)
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"stack", "reset"}, []string{"STACK_STATE_DIR=" + state}, strings.NewReader("no\n"), &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "reset cancelled") {
		t.Fatalf("reset answered no: got %v, want it cancelled", err)
	}
	if !strings.HasSuffix(stderr.String(), "Type \"yes\" to continue: \n") {
		t.Errorf("stderr %q: want the prompt's line ended, so the error starts a line of its own", stderr.String())
	}
	if _, err := os.Stat(state); err != nil {
		t.Errorf("state dir after a cancelled reset: %v", err)
	}
}

func TestRunRejectsUnknownCommand(t *testing.T) {
	t.Chdir(fakeCheckout(t))
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"stack", "launch"}, nil, nil, &stdout, &stderr)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), `unknown command "launch"; the commands are up, down, status`) {
		t.Fatalf("got %v, want exit status 2 and the commands", err)
	}
}

// TestCommandsNameAStateDirThatIsAFile: a STACK_STATE_DIR that names a
// regular file is refused by every command that reads the state dir, naming
// the variable and where it was set. Before, status, logs and down said
// "not using <dir>/process-compose.sock: lstat ...: not a directory".
func TestCommandsNameAStateDirThatIsAFile(t *testing.T) {
	t.Chdir(fakeCheckout(t))
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range []string{"status", "status --json", "logs", "down", "up --detach"} {
		t.Run(args, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append([]string{"stack"}, strings.Fields(args)...), []string{"STACK_STATE_DIR=" + file, "PATH=" + t.TempDir()}, nil, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), "STACK_STATE_DIR is set in the environment") {
				t.Errorf("got %v, want an error naming %s and STACK_STATE_DIR's origin", err, file)
			}
		})
	}
}

func TestStatusWhenNotRunning(t *testing.T) {
	t.Chdir(fakeCheckout(t))
	state, err := os.MkdirTemp("", "st-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(state)
	var stdout, stderr bytes.Buffer
	err = run(context.Background(), []string{"stack", "status", "--json"}, []string{"STACK_STATE_DIR=" + state}, nil, &stdout, &stderr)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 3 {
		t.Fatalf("got %v, want exit status 3", err)
	}
	if !strings.Contains(stdout.String(), `"running": false`) {
		t.Errorf("got %q, want running false", stdout.String())
	}
}

// TestDownWhenNotRunningIgnoresTheTimeout: with no process-compose and no
// API socket there is nothing to wait for, so even a timeout too short to ask
// anything says "not running" (exit 0), not that the timeout ran out.
func TestDownWhenNotRunningIgnoresTheTimeout(t *testing.T) {
	t.Chdir(fakeCheckout(t))
	environ := []string{"STACK_STATE_DIR=" + shortStateDir(t)}
	for _, timeout := range []string{"1ns", "90s"} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), []string{"stack", "down", "--timeout", timeout}, environ, nil, &stdout, &stderr)
		if err != nil || !strings.Contains(stdout.String(), "stack: not running") {
			t.Errorf("down --timeout %s with nothing running: got %v, stdout %q; want success saying it is not running", timeout, err, stdout.String())
		}
	}
}

// TestUpRefusesADirectoryThatIsNotAStateDir: STACK_STATE_DIR pointing at a
// directory with someone's files in it ($HOME, /tmp by mistake) is refused,
// naming a file and where the setting came from, before up restricts the
// directory to 0700 or writes into it; reset refuses it too.
func TestUpRefusesADirectoryThatIsNotAStateDir(t *testing.T) {
	t.Chdir(fakeCheckout(t))
	dir := filepath.Dir(shortStateDir(t))
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The refusal comes before the port check: no free ports needed.
	environ := []string{"STACK_STATE_DIR=" + dir}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"stack", "up", "--detach"}, environ, nil, &stdout, &stderr)
	want := `holds "notes.txt", which the launcher does not create`
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "STACK_STATE_DIR is set in the environment") {
		t.Errorf("up with a foreign state dir: got %v, want an error containing %q and where STACK_STATE_DIR was set", err, want)
	}
	st, serr := os.Stat(dir)
	if serr != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("after the refusal: got %v, %v; want the directory's mode untouched (0755)", st.Mode(), serr)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("after the refusal the directory holds %d entries, want only notes.txt", len(entries))
	}
	err = run(context.Background(), []string{"stack", "reset", "--yes"}, environ, nil, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("reset of a foreign state dir: got %v, want an error containing %q", err, want)
	}

	// A state dir the launcher made is marked: what else appears in it
	// later (a core dump) does not make it someone else's.
	state := preparedStateDir(t)
	if err := os.WriteFile(filepath.Join(state, "core"), []byte("dump"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = run(context.Background(), []string{"stack", "reset", "--yes"}, []string{"STACK_STATE_DIR=" + state}, nil, &stdout, &stderr)
	if _, statErr := os.Stat(state); err != nil || !errors.Is(statErr, os.ErrNotExist) {
		t.Errorf("reset of a marked state dir with a core dump in it: got %v (stat: %v), want it deleted", err, statErr)
	}
}

// TestProcessComposeConfigDir: process-compose gets a config dir of the
// stack's own only when it would find none (and warn twice at every start),
// never in place of the user's or of PROC_COMP_CONFIG.
func TestProcessComposeConfigDir(t *testing.T) {
	state := shortStateDir(t)
	home, noDirs := t.TempDir(), t.TempDir()
	own := filepath.Join(t.TempDir(), "xdg")
	if err := os.MkdirAll(filepath.Join(own, "process-compose"), 0o700); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		values map[string]string
		want   string
	}{
		{"the settings set it", map[string]string{"PROC_COMP_CONFIG": "/mine", "HOME": home, "XDG_CONFIG_DIRS": noDirs}, ""},
		{"the user has one", map[string]string{"XDG_CONFIG_HOME": own, "HOME": home, "XDG_CONFIG_DIRS": noDirs}, ""},
		{"a system-wide one", map[string]string{"HOME": home, "XDG_CONFIG_DIRS": noDirs + ":" + own}, ""},
		{"none", map[string]string{"HOME": home, "XDG_CONFIG_DIRS": noDirs}, filepath.Join(state, "run", "process-compose")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &launcher{cfg: stackconfig.Config{StateDir: state, Values: tt.values}}
			got, err := l.processComposeConfigDir()
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
			if got != "" {
				if st, err := os.Stat(got); err != nil || !st.IsDir() {
					t.Errorf("%s: %v; want a directory", got, err)
				}
			}
		})
	}
}

// preparedStateDir is a shortStateDir made a state dir, as `up` makes it.
func preparedStateDir(t *testing.T) string {
	t.Helper()
	state := shortStateDir(t)
	if err := (stackconfig.Config{StateDir: state}).PrepareStateDir(); err != nil {
		t.Fatal(err)
	}
	return state
}

// shortStateDir returns a path for a state dir that does not exist yet, in
// a directory removed when t ends; short, because t.TempDir() can be too long
// for the unix sockets under a state dir.
func shortStateDir(t *testing.T) string {
	t.Helper()
	tmp := stacktest.ShortTempDir(t, "st-")
	return filepath.Join(tmp, "st")
}

// TestResetDeletesOnlyAStateDir runs `stack reset` on a state dir laid out
// by the launcher's own code (what up leaves behind) and on directories it
// must not delete.
func TestResetDeletesOnlyAStateDir(t *testing.T) {
	// launcherState lays out dir as up does: the directories PrepareStateDir
	// makes, the generated secret, and the files up and process-compose write.
	launcherState := func(t *testing.T, dir string) {
		t.Helper()
		c := stackconfig.Config{StateDir: dir}
		if err := c.PrepareStateDir(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.EnsureJWTSecret(); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{
			filepath.Join(dir, "process-compose.pid"), c.ProcessComposeSocket(),
			filepath.Join(c.LogDir(), "core-api.log"), filepath.Join(dir, "redis", "appendonly.aof"),
		} {
			if err := os.WriteFile(f, []byte("x\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name     string
		layout   func(t *testing.T, dir string) // nil: dir does not exist
		args     []string
		stdin    string
		wantErr  string // "" for success
		wantOut  string
		wantGone bool
	}{
		{name: "state dir after up, --yes", layout: launcherState, args: []string{"--yes"}, wantOut: "stack: deleted", wantGone: true},
		{name: "state dir after up, confirmed", layout: launcherState, stdin: "yes\n", wantOut: "stack: deleted", wantGone: true},
		{name: "state dir after up, not confirmed", layout: launcherState, stdin: "no\n", wantErr: "reset cancelled"},
		{name: "a file the launcher does not make, without the state dir's mark", layout: func(t *testing.T, dir string) {
			launcherState(t, dir)
			if err := os.Remove(stackconfig.Config{StateDir: dir}.StateMarkerFile()); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "notes.txt"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, args: []string{"--yes"}, wantErr: "check STACK_STATE_DIR"},
		{name: "a state dir from before the mark", layout: func(t *testing.T, dir string) {
			launcherState(t, dir)
			if err := os.Remove(stackconfig.Config{StateDir: dir}.StateMarkerFile()); err != nil {
				t.Fatal(err)
			}
		}, args: []string{"--yes"}, wantOut: "stack: deleted", wantGone: true},
		{name: "no state dir", args: []string{"--yes"}, wantOut: "nothing to reset", wantGone: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Chdir(fakeCheckout(t))
			state := shortStateDir(t)
			if tc.layout != nil {
				tc.layout(t, state)
			}
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append([]string{"stack", "reset"}, tc.args...),
				[]string{"STACK_STATE_DIR=" + state}, strings.NewReader(tc.stdin), &stdout, &stderr)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("got %v, want success\n%s", err, stderr.String())
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
			}
			if !strings.Contains(stdout.String(), tc.wantOut) {
				t.Errorf("stdout: got %q, want it to contain %q", stdout.String(), tc.wantOut)
			}
			_, statErr := os.Stat(state)
			if gone := errors.Is(statErr, os.ErrNotExist); gone != tc.wantGone {
				t.Errorf("state dir gone: got %v (%v), want %v", gone, statErr, tc.wantGone)
			}
		})
	}
}

func TestProbeHTTPRetriesUntilHealthy(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			http.Error(w, `{"status":"fail"}`, http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{"status":"pass"}`))
	}))
	defer srv.Close()
	var out bytes.Buffer
	if err := probe(context.Background(), []string{"http", srv.URL + "/health"}, &out); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("requests: got %d, want 3 (two 503s, then 200)", n)
	}

	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"status":"fail"}`, http.StatusServiceUnavailable)
	}))
	defer down.Close()
	// 1 s, not less: on a loaded machine the first answer alone can take
	// over 100 ms, and then the probe has only a deadline to report.
	err := probe(context.Background(), []string{"--within", "1s", "http", down.URL + "/health"}, &out)
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("never healthy: got %v, want an error naming the 503", err)
	}
	// core-api's probe: a 503 (Redis down) still proves the process answers.
	if err := probe(context.Background(), []string{"--within", "1s", "--status", "200,503", "http", down.URL + "/health"}, &out); err != nil {
		t.Errorf("--status 200,503 against a 503: got %v, want a pass", err)
	}
	var ee *exitError
	if err := probe(context.Background(), []string{"--status", "ok", "http", down.URL}, &out); !errors.As(err, &ee) || ee.code != 2 {
		t.Errorf("--status ok: got %v, want a usage error", err)
	}
}

// TestProbeWaitsForAServicesOwnHealthTimeout: a service whose dependency
// hangs answers its /health after its own check's bound (500 ms); the probe
// must wait for that answer (core-api's probe passes on its 503).
func TestProbeWaitsForAServicesOwnHealthTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(httpx.HealthTimeout + 100*time.Millisecond)
		http.Error(w, `{"status":"fail"}`, http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	var out bytes.Buffer
	if err := probe(context.Background(), []string{"--within", "3s", "--status", "200,503", "http", srv.URL + "/health"}, &out); err != nil {
		t.Errorf("a 503 after %s: got %v, want a pass", httpx.HealthTimeout+100*time.Millisecond, err)
	}
}

// TestProbeReportsTheLastAnswer: a service that answers 503 and then hangs
// until the probe's deadline: the probe's error names the 503, not the
// deadline that cut its last attempt short.
func TestProbeReportsTheLastAnswer(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			http.Error(w, `{"status":"fail"}`, http.StatusServiceUnavailable)
			return
		}
		<-r.Context().Done()
	}))
	defer srv.Close()
	var out bytes.Buffer
	err := probe(context.Background(), []string{"--within", "300ms", "http", srv.URL + "/health"}, &out)
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("got %v, want an error naming the 503", err)
	}
	if n := calls.Load(); n < 2 {
		t.Errorf("requests: got %d, want a second one that the deadline cut short", n)
	}
}

func TestProbeRedis(t *testing.T) {
	srv := redistest.Start(t)
	var out bytes.Buffer
	if err := probe(context.Background(), []string{"redis", srv.Socket}, &out); err != nil {
		t.Fatalf("probe a running Redis: %v", err)
	}
	err := probe(context.Background(), []string{"--within", "50ms", "redis", filepath.Join(t.TempDir(), "none.sock")}, &out)
	if err == nil {
		t.Errorf("probe a missing socket: got nil, want an error")
	}
}

// serveHTTPOnUnixSocket serves h on a unix socket in a directory of its
// own until the test ends, and returns the socket's path (short: unix
// socket paths are limited).
func serveHTTPOnUnixSocket(t *testing.T, h http.Handler) string {
	t.Helper()
	dir := stacktest.ShortTempDir(t, "http-")
	sock := filepath.Join(dir, "h.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return sock
}

// TestProbeHTTPUnix: HAProxy's readiness is asked on a unix socket in the
// state dir (its stats port is open to every local user, who could fill it).
func TestProbeHTTPUnix(t *testing.T) {
	sock := serveHTTPOnUnixSocket(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		fmt.Fprint(w, `{"status":"pass"}`)
	}))
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"http-unix", sock + ":/healthz"}, ""},
		{[]string{"--within", "50ms", "http-unix", sock + ":/other"}, "404"},
		{[]string{"--within", "50ms", "http-unix", sock + ".none:/healthz"}, "no such file"},
		{[]string{"http-unix", sock}, "want <socket>:/<path>"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		err := probe(context.Background(), tt.args, &out)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("probe %v: %v, want it to pass", tt.args, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("probe %v: %v, want an error containing %q", tt.args, err, tt.wantErr)
		}
	}
}

func TestFollowLogRestartsAfterTruncation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	if err := os.WriteFile(path, []byte("one\ntwo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var lines []string
	done := make(chan struct{})
	go func() {
		followLog(ctx, path, func(l string) {
			mu.Lock()
			lines = append(lines, l)
			mu.Unlock()
		})
		close(done)
	}()
	waitFor := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			mu.Lock()
			got := len(lines)
			mu.Unlock()
			if got >= n {
				return
			}
		}
		t.Fatalf("got %v, want %d lines", lines, n)
	}
	waitFor(2)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString("\n\nthree\npart") // process-compose's blank lines at a restart are left out
	if err := errors.Join(err, f.Close()); err != nil {
		t.Fatal(err)
	}
	waitFor(3)
	// A new `stack up` truncates the file.
	if err := os.WriteFile(path, []byte("new\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(4)
	cancel()
	<-done
	want := []string{"one", "two", "three", "new"}
	if strings.Join(lines, ",") != strings.Join(want, ",") {
		t.Errorf("got %v, want %v", lines, want)
	}
}

// followInBackground runs followLog on path until the test ends, and
// returns the lines it prints, in a channel of buffer lines.
func followInBackground(t *testing.T, path string, buffer int) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	lines := make(chan string, buffer)
	go followLog(ctx, path, func(l string) { lines <- l })
	return lines
}

// TestFollowLogMovesToANewFile: `stack up` deletes the last run's logs and
// process-compose writes new ones; a follower must go on with the new file,
// even when it is already longer than what it had read of the old one.
func TestFollowLogMovesToANewFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	if err := os.WriteFile(path, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	lines := followInBackground(t, path, 16)
	next := func() string {
		t.Helper()
		select {
		case l := <-lines:
			return l
		case <-time.After(5 * time.Second):
			t.Fatal("no line within 5 s")
			return ""
		}
	}
	if got := next(); got != "old" {
		t.Fatalf("got %q, want old", got)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("new one\nnew two\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"new one", "new two"} {
		if got := next(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

func TestMissingToolsAreNamedWithHowToGetThem(t *testing.T) {
	share := t.TempDir() // an installed layout: nothing can be built
	state := filepath.Join(t.TempDir(), "st")
	l := &launcher{
		environ: []string{"PATH=" + t.TempDir()},
		layout:  stackconfig.Layout{ConfigDir: share, How: "installed"},
		cfg:     stackconfig.Config{StateDir: state},
		stderr:  &bytes.Buffer{},
	}
	_, err := l.findBinaries(context.Background())
	if err == nil {
		t.Fatal("got nil, want an error naming the missing tools")
	}
	for _, want := range []string{
		"redis-server is not on PATH", "apt-get install redis-server", "brew install redis",
		"haproxy is not on PATH", "apt-get install haproxy",
		"process-compose is not on PATH", "nix develop",
		"auth-api is not on PATH", "core-api is not on PATH", "psp-connector is not on PATH",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %q, want it to contain %q", err, want)
		}
	}
}

// TestRunsInTellsTheStacksProcessesApart starts real processes the way a
// stack's are started (the state dir in the environment, or as the working
// directory) and others, and checks which ones runsIn counts as the stack's:
// `down` sends SIGTERM only to a process-compose that runsIn its state dir,
// never to whatever has taken over a stale pid.
func TestRunsInTellsTheStacksProcessesApart(t *testing.T) {
	if _, err := os.Stat("/proc/self"); err != nil {
		t.Skip("runsIn needs /proc; without it every pid counts as the stack's")
	}
	stateDir := t.TempDir()
	other := t.TempDir()
	link := filepath.Join(t.TempDir(), "link-to-state")
	if err := os.Symlink(stateDir, link); err != nil {
		t.Fatal(err)
	}
	launched := func(dir string) []string { return []string{"STACK_STATE_DIR=" + dir, "STACK_LAUNCHER=/bin/stack"} }
	for _, tc := range []struct {
		name    string
		program string // as /proc/<pid>/comm shows it
		env     []string
		dir     string
		want    bool
	}{
		{"the launcher's environment", "sleep", launched(stateDir), other, true},
		{"working in the state dir", "sleep", nil, stateDir, true},
		{"Redis working in the state dir's redis/", "redis-server", nil, filepath.Join(stateDir, "redis"), true},
		{"something else working in redis/ (another stack's state dir)", "process-compose", nil, filepath.Join(stateDir, "redis"), false},
		{"working in another stack's state dir inside this one", "sleep", nil, filepath.Join(stateDir, "inner"), false},
		{"another stack's state dir inside this one", "sleep", launched(filepath.Join(stateDir, "inner")), other, false},
		{"a shell that exported STACK_STATE_DIR", "sleep", []string{"STACK_STATE_DIR=" + stateDir}, other, false},
		{"another stack's state dir", "sleep", launched(other), other, false},
		{"a state dir that only starts the same", "sleep", launched(stateDir + "-old"), other, false},
		{"nothing of the stack", "sleep", nil, other, false},
		{"started through a symlink: works in the state dir", "sleep", launched(link), stateDir, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.MkdirAll(tc.dir, 0o700); err != nil {
				t.Fatal(err)
			}
			pid := startAs(t, tc.program, tc.env, tc.dir)
			// The state dir by its path and through a symlink to it: the same answer.
			for _, dir := range []string{stateDir, link} {
				if got := runsIn(pid, dir); got != tc.want {
					t.Errorf("runsIn(pid of %s with env %q in %s, %s) = %v, want %v", tc.program, tc.env, tc.dir, dir, got, tc.want)
				}
			}
		})
	}

	// Stack B started through a symlink then pointing at B's own state dir;
	// the symlink now points at this state dir. B's process is not ours: its
	// STACK_STATE_DIR is not resolved today, only ours is.
	t.Run("a symlink repointed since another stack started through it", func(t *testing.T) {
		current := filepath.Join(t.TempDir(), "current")
		if err := os.Symlink(other, current); err != nil {
			t.Fatal(err)
		}
		pid := startAs(t, "process-compose", launched(current), other)
		if err := os.Remove(current); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(stateDir, current); err != nil {
			t.Fatal(err)
		}
		if runsIn(pid, stateDir) {
			t.Errorf("runsIn(stack B's process-compose, %s) = true, want false: `down` would stop stack B", stateDir)
		}
	})
}

// startAs starts `sleep 60` under the program name name (a copy of sleep, so
// /proc/<pid>/comm says name) with env, in dir; the process is killed at the
// end of the test.
func startAs(t *testing.T, name string, env []string, dir string) int {
	t.Helper()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep on PATH")
	}
	exe := filepath.Join(t.TempDir(), name)
	if err := copyFile(sleep, exe); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "60")
	cmd.Env, cmd.Dir = append([]string{}, env...), dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	// Start returns while the kernel may still be setting up the new
	// program: its comm changes first, and its cmdline and environ read
	// empty until its arguments are in place (seen in CI: a process with
	// the stack's environment taken for one without).
	proc := filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid))
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		comm, _ := os.ReadFile(filepath.Join(proc, "comm"))
		cmdline, _ := os.ReadFile(filepath.Join(proc, "cmdline"))
		if strings.TrimSpace(string(comm)) == name && len(cmdline) > 0 {
			break
		}
	}
	return cmd.Process.Pid
}

// TestDownStatusResetOnStrayProcesses: a stale pid file that points at a
// process that is not process-compose (even one started with the stack's
// whole environment) is not signalled by `down`; `status` names a
// process-compose of the stack whose API does not answer; and `reset`
// refuses while a process of the stack is left without process-compose.
func TestDownStatusResetOnStrayProcesses(t *testing.T) {
	if _, err := os.Stat("/proc/self"); err != nil {
		t.Skip("needs /proc")
	}
	t.Chdir(fakeCheckout(t))
	state := preparedStateDir(t)
	stackEnv := []string{"STACK_STATE_DIR=" + state, "STACK_LAUNCHER=/bin/stack"}
	environ := []string{"STACK_STATE_DIR=" + state}

	other := startAs(t, "sleep", stackEnv, state)
	if err := writePid(filepath.Join(state, "process-compose.pid"), other); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"stack", "down"}, environ, nil, &stdout, &stderr); err != nil {
		t.Fatalf("down: %v\n%s", err, stderr.String())
	}
	if !alive(other) {
		t.Fatalf("down signalled pid %d from a stale pid file, which is sleep, not process-compose", other)
	}

	// A process-compose of this stack whose API does not answer: status
	// says so (exit 1), not "not running" (exit 3).
	pc := startAs(t, "process-compose", stackEnv, state)
	stdout.Reset()
	stderr.Reset()
	err := run(context.Background(), []string{"stack", "status"}, environ, nil, &stdout, &stderr)
	var ee *exitError
	if err == nil || errors.As(err, &ee) || !strings.Contains(err.Error(), fmt.Sprintf("process-compose (pid %d) runs but does not answer", pc)) {
		t.Errorf("status with a silent process-compose: got %v (stdout %q), want an error naming pid %d", err, stdout.String(), pc)
	}
	// --json says the same to a script: JSON on stdout, exit 1.
	rep := statusJSON(t, environ, fmt.Sprintf("process-compose (pid %d) runs but does not answer", pc))
	if rep.Running || rep.ProcessComposePid != pc {
		t.Errorf("status --json with a silent process-compose: got %+v, want running false and its pid", rep)
	}
	if p, err := os.FindProcess(pc); err == nil {
		_ = p.Kill() // a zombie until the test ends: not alive, so not a stray below
	}
	// SIGKILL is only queued by Kill: the process is a zombie once it has
	// run again to die, which a loaded machine can delay past the status
	// below (it then still names this process-compose).
	for deadline := time.Now().Add(5 * time.Second); alive(pc); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("process-compose stand-in pid %d still alive 5 s after SIGKILL", pc)
		}
	}

	stray := startAs(t, "redis-server", stackEnv, filepath.Dir(state))
	// status names the leftover process, in words and in JSON, and does not
	// also say "not running".
	stdout.Reset()
	stderr.Reset()
	err = run(context.Background(), []string{"stack", "status"}, environ, nil, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("redis-server (pid %d)", stray)) || strings.Contains(stdout.String(), "not running") {
		t.Errorf("status with a redis-server of the stack left: got %v (stdout %q), want only an error naming it", err, stdout.String())
	}
	rep = statusJSON(t, environ, fmt.Sprintf("redis-server (pid %d)", stray))
	if len(rep.Leftover) != 1 || rep.Leftover[0].Pid != stray || rep.Leftover[0].Name != "redis" {
		t.Errorf("status --json leftover: got %+v, want redis (its process name), pid %d", rep.Leftover, stray)
	}
	stdout.Reset()
	stderr.Reset()
	err = run(context.Background(), []string{"stack", "reset", "--yes"}, environ, nil, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("redis-server (pid %d)", stray)) {
		t.Errorf("reset with a redis-server of the stack left: got %v, want a refusal naming it", err)
	}
	if _, err := os.Stat(state); err != nil {
		t.Errorf("state dir after a refused reset: %v", err)
	}
}

// statusJSON runs `stack status --json`, which must fail (exit 1) with an
// error containing wantErr, and print a report whose error is the same.
func statusJSON(t *testing.T, environ []string, wantErr string) statusReport {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"stack", "status", "--json"}, environ, nil, &stdout, &stderr)
	var rep statusReport
	if jerr := json.Unmarshal(stdout.Bytes(), &rep); jerr != nil {
		t.Fatalf("status --json: stdout %q is not JSON: %v", stdout.String(), jerr)
	}
	var ee *exitError
	if err == nil || errors.As(err, &ee) || !strings.Contains(err.Error(), wantErr) || rep.Error != err.Error() {
		t.Errorf("status --json: got %v and report error %q, want exit 1 with an error containing %q in both", err, rep.Error, wantErr)
	}
	return rep
}

// stateDirWithAPISocket makes the cwd a fake checkout and returns a prepared
// state dir with a listener bound on its process-compose API socket.
func stateDirWithAPISocket(t *testing.T) (string, stackconfig.Config, net.Listener) {
	t.Helper()
	t.Chdir(fakeCheckout(t))
	state := shortStateDir(t)
	c := stackconfig.Config{StateDir: state}
	if err := c.PrepareStateDir(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", c.ProcessComposeSocket())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return state, c, ln
}

// stateDirWithSilentAPISocket returns a state dir whose process-compose API
// socket is bound but never accepts: what a stopped (SIGSTOP) or stuck
// process-compose looks like from outside.
func stateDirWithSilentAPISocket(t *testing.T) (string, stackconfig.Config) {
	t.Helper()
	state, c, _ := stateDirWithAPISocket(t)
	return state, c
}

// TestUpResetRefuseASilentAPISocket: a process-compose that is stopped or
// stuck keeps its API socket bound, so connections are accepted and never
// answered. `up` and `reset` must refuse (not hang, and not take the stack
// for stopped: reset would delete a live stack's state dir). The select's
// bound only turns a hang into a failure; it asserts no timing.
func TestUpResetRefuseASilentAPISocket(t *testing.T) {
	state, c := stateDirWithSilentAPISocket(t)

	for _, args := range [][]string{{"up", "--detach"}, {"reset", "--yes"}} {
		t.Run(args[0], func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				done <- run(context.Background(), append([]string{"stack"}, args...),
					[]string{"STACK_STATE_DIR=" + state}, nil, io.Discard, io.Discard)
			}()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), "does not answer") {
					t.Errorf("stack %s with a silent API socket: got %v, want a refusal saying it does not answer", args[0], err)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("stack %s hung on an API socket that accepts but never answers", args[0])
			}
			if _, err := os.Stat(c.ProcessComposeSocket()); err != nil {
				t.Errorf("after stack %s: %v (the state dir must stay)", args[0], err)
			}
		})
	}
}

// TestUpResetRefuseARunningStack: with the stack's process-compose
// answering on its API socket, a second `up` must refuse to start another
// stack on the same state dir, and `reset` must refuse to delete a running
// stack's state.
func TestUpResetRefuseARunningStack(t *testing.T) {
	state, c, ln := stateDirWithAPISocket(t)
	api := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"status":"alive"}`)
	})}
	go func() { _ = api.Serve(ln) }() // ends with http.ErrServerClosed at the cleanup
	t.Cleanup(func() { api.Close() })

	environ := []string{"STACK_STATE_DIR=" + state}
	ports := stacktest.FreePorts(t, 5)
	for i, name := range []string{"PLATFORM_PORT", "HAPROXY_STATS_PORT", "AUTH_API_PORT", "CORE_API_PORT", "PSP_CONNECTOR_PORT"} {
		environ = append(environ, fmt.Sprintf("%s=%d", name, ports[i]))
	}
	// A foreground `stack up` holds the launcher's lock for the stack's
	// whole life: the refusal still says that the stack runs, with the
	// advice for it, not that another launcher is busy.
	foreground := &launcher{cfg: stackconfig.Config{StateDir: state}}
	if err := syscall.Flock(int(mustOpen(t, foreground.lockFile()).Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"up", "--detach"}, {"reset", "--yes"}} {
		t.Run(args[0], func(t *testing.T) {
			err := run(context.Background(), append([]string{"stack"}, args...), environ, nil, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), "the stack is running from "+state) {
				t.Errorf("stack %s while the stack runs: got %v, want a refusal saying it is running", args[0], err)
			}
			if _, err := os.Stat(c.ProcessComposeSocket()); err != nil {
				t.Errorf("after stack %s: %v (the state dir must stay)", args[0], err)
			}
		})
	}
}

// mustOpen opens path for writing, creating it, until the test ends.
func mustOpen(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestCommandsTakeAnAPIClosedUnansweredForAGoneProcessCompose: a
// process-compose killed with SIGKILL shows as gone (its main thread a
// zombie) a moment before its other threads have exited and closed its API
// socket: a command asking then was let in, and the connection dropped
// unanswered ("connection reset by peer", seen in CI's
// TestDownAfterProcessComposeKilled). With no process-compose left, status
// says it is not running (exit 3), down that there is nothing to stop, and
// reset goes on, as once the socket is closed, instead of failing on the
// drop (D76).
func TestCommandsTakeAnAPIClosedUnansweredForAGoneProcessCompose(t *testing.T) {
	drops := []struct {
		name  string
		close func(net.Conn)
	}{
		{"dropped at once", func(c net.Conn) { c.Close() }},
		{"dropped after the request", func(c net.Conn) {
			_, _ = c.Read(make([]byte, 4096))
			c.Close()
		}},
	}
	commands := []struct {
		args  []string
		check func(t *testing.T, err error, stdout, state string)
	}{
		{[]string{"status", "--json"}, func(t *testing.T, err error, stdout, _ string) {
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != 3 || strings.Contains(stdout, `"error"`) {
				t.Errorf("got %v %s, want exit status 3 (not running) and no error", err, stdout)
			}
		}},
		{[]string{"down"}, func(t *testing.T, err error, stdout, _ string) {
			if err != nil || !strings.Contains(stdout, "stack: not running") {
				t.Errorf("got %v %q, want \"not running\" and no error", err, stdout)
			}
		}},
		{[]string{"reset", "--yes"}, func(t *testing.T, err error, _, state string) {
			if _, serr := os.Stat(state); err != nil || !errors.Is(serr, os.ErrNotExist) {
				t.Errorf("got %v (state dir: %v), want the state dir reset", err, serr)
			}
		}},
	}
	for _, drop := range drops {
		for _, cmd := range commands {
			t.Run(drop.name+"/"+cmd.args[0], func(t *testing.T) {
				state, _, ln := stateDirWithAPISocket(t)
				go func() {
					for {
						c, err := ln.Accept()
						if err != nil {
							return
						}
						drop.close(c)
					}
				}()
				var stdout bytes.Buffer
				err := run(context.Background(), append([]string{"stack"}, cmd.args...), []string{"STACK_STATE_DIR=" + state}, nil, &stdout, io.Discard)
				cmd.check(t, err, stdout.String(), state)
			})
		}
	}
}

// TestStatusNamesAStuckProcessCompose: a process-compose of the stack whose
// API socket is bound but silent (stopped, or stuck): status names its pid
// instead of printing the API's timeout alone.
func TestStatusNamesAStuckProcessCompose(t *testing.T) {
	if _, err := os.Stat("/proc/self"); err != nil {
		t.Skip("needs /proc")
	}
	state, _ := stateDirWithSilentAPISocket(t)
	pc := startAs(t, "process-compose", []string{"STACK_STATE_DIR=" + state, "STACK_LAUNCHER=/bin/stack"}, state)
	err := run(context.Background(), []string{"stack", "status"}, []string{"STACK_STATE_DIR=" + state}, nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("process-compose (pid %d) runs but does not answer", pc)) {
		t.Errorf("status with a stuck process-compose: got %v, want an error naming pid %d", err, pc)
	}
}

func TestStaticBuildEnvAddsCgoOffUnlessSet(t *testing.T) {
	for _, tc := range []struct {
		name    string
		environ []string
		want    []string
	}{
		{"empty", nil, []string{"CGO_ENABLED=0"}},
		{"added", []string{"PATH=/bin", "HOME=/root"}, []string{"PATH=/bin", "HOME=/root", "CGO_ENABLED=0"}},
		{"the user's choice stays", []string{"CGO_ENABLED=1", "PATH=/bin"}, []string{"CGO_ENABLED=1", "PATH=/bin"}},
		// Empty is Go's default, not a choice; the later value wins in exec.
		{"empty value", []string{"CGO_ENABLED="}, []string{"CGO_ENABLED=", "CGO_ENABLED=0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Spare capacity must not let the result write into the caller's array.
			environ := append(make([]string, 0, len(tc.environ)+4), tc.environ...)
			got := staticBuildEnv(environ)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if !slices.Equal(environ, tc.environ) {
				t.Errorf("the caller's environ changed to %q", environ)
			}
		})
	}
}

// TestLauncherBuildsStaticBinaries builds auth-api the way the launcher
// builds the services from a checkout, with the developer's environment, and
// checks that the result is statically linked: no ELF interpreter (the
// dynamic loader) among its program headers.
func TestLauncherBuildsStaticBinaries(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("checks an ELF binary; static linking is Linux's")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH")
	}
	environ := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "CGO_ENABLED=") })
	var stderr bytes.Buffer
	l := &launcher{environ: environ, stderr: &stderr}
	out := filepath.Join(t.TempDir(), "auth-api")
	if err := l.goBuild(context.Background(), goBin, filepath.Join("..", ".."), out, "./services/auth-api"); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has an ELF interpreter: it is dynamically linked, want static (CGO_ENABLED=0)", out)
		}
	}
}

func TestLogsPrefixesEachLineWithItsProcess(t *testing.T) {
	t.Chdir(fakeCheckout(t))
	state := shortStateDir(t)
	environ := []string{"STACK_STATE_DIR=" + state}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"stack", "logs"}, environ, nil, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "has the stack been started?") {
		t.Fatalf("logs before any up: got %v, want an error asking whether the stack was started", err)
	}

	logDir := filepath.Join(state, "logs")
	writeLog := func(name, content string) {
		if err := os.MkdirAll(logDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(logDir, name+".log"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeLog("redis", "Ready to accept connections\n")
	writeLog("psp-connector", "==> Making transaction with PSP: User ID: 1, Amount: 100, Currency: USD\n\n\nno newline at the end")
	stdout.Reset()
	if err := run(context.Background(), []string{"stack", "logs"}, environ, nil, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	want := "redis         | Ready to accept connections\n" +
		"psp-connector | ==> Making transaction with PSP: User ID: 1, Amount: 100, Currency: USD\n" +
		"psp-connector | no newline at the end\n"
	if stdout.String() != want {
		t.Errorf("stack logs:\ngot  %q\nwant %q", stdout.String(), want)
	}

	stdout.Reset()
	if err := run(context.Background(), []string{"stack", "logs", "redis"}, environ, nil, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if want := "Ready to accept connections\n"; stdout.String() != want {
		t.Errorf("stack logs redis: got %q, want %q (one process: its lines as they are)", stdout.String(), want)
	}

	// process-compose's blank lines around a restart are left out.
	stdout.Reset()
	if err := run(context.Background(), []string{"stack", "logs", "psp-connector"}, environ, nil, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if want := "==> Making transaction with PSP: User ID: 1, Amount: 100, Currency: USD\nno newline at the end\n"; stdout.String() != want {
		t.Errorf("stack logs psp-connector: got %q, want %q (without the blank lines)", stdout.String(), want)
	}
}

// TestVerifyGoneLeavesReusedPidsAlone: a pid the launcher saw earlier may
// belong to another program by the time the stack stops (the process
// restarted and its pid was reused). verifyGone kills a surviving group only
// when it still runs in the state dir.
func TestVerifyGoneLeavesReusedPidsAlone(t *testing.T) {
	if _, err := os.Stat("/proc/self"); err != nil {
		t.Skip("runsIn needs /proc; without it every pid counts as the stack's")
	}
	stateDir, other := t.TempDir(), t.TempDir()
	start := func(dir string) *exec.Cmd {
		t.Helper()
		cmd := exec.Command("sleep", "60")
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a group leader, as process-compose starts each process
		if err := cmd.Start(); err != nil {
			t.Skipf("cannot start sleep: %v", err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	foreign := start(other)
	err := verifyGone([]procompose.Process{{Name: "core-api", Pid: foreign.Process.Pid}}, stateDir)
	if err != nil {
		t.Errorf("a reused pid: got %v, want nil", err)
	}
	if !alive(foreign.Process.Pid) {
		t.Errorf("a reused pid: the foreign process (pid %d) was killed", foreign.Process.Pid)
	}

	ours := start(stateDir) // killed, it is a zombie until the cleanup reaps it: gone for verifyGone
	err = verifyGone([]procompose.Process{{Name: "core-api", Pid: ours.Process.Pid}}, stateDir)
	if err == nil || !strings.Contains(err.Error(), "core-api (pid") {
		t.Errorf("a survivor in the state dir: got %v, want it killed and named", err)
	}
}

// TestSecondLauncherIsKeptOut: while one launcher holds the state dir's lock
// (it is building, starting, or running a foreground stack), another `up` or
// `reset` on that state dir refuses, instead of starting a second stack on it
// or deleting it under the first.
func TestSecondLauncherIsKeptOut(t *testing.T) {
	t.Chdir(fakeCheckout(t))
	state := preparedStateDir(t)
	first := &launcher{cfg: stackconfig.Config{StateDir: state}}
	client := procompose.NewClient(first.cfg.ProcessComposeSocket())
	defer client.Close()
	release, err := first.lockStateDir(context.Background(), client)
	if err != nil {
		t.Fatal(err)
	}
	environ := []string{"STACK_STATE_DIR=" + state}
	ports := stacktest.FreePorts(t, 5) // five distinct ports (fakeTools)
	for i, name := range []string{"PLATFORM_PORT", "HAPROXY_STATS_PORT", "AUTH_API_PORT", "CORE_API_PORT", "PSP_CONNECTOR_PORT"} {
		environ = append(environ, fmt.Sprintf("%s=%d", name, ports[i]))
	}
	tryWhileLocked := func(when string) {
		t.Helper()
		for _, args := range [][]string{{"stack", "up", "--detach"}, {"stack", "reset", "--yes"}} {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), args, environ, nil, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), "another launcher (stack up or stack reset) is using "+state) {
				t.Errorf("%s while another launcher holds the lock, %s: got %v, want it refused as such", strings.Join(args[1:], " "), when, err)
			}
		}
	}
	tryWhileLocked("before it starts anything")
	// The first launcher has started process-compose, which has not written
	// its pid file yet, and process-compose its first process: neither is an
	// earlier run's leftover, and the advice to stop them with `stack down`
	// would stop the stack being started.
	if _, err := os.Stat("/proc/self"); err == nil {
		for _, name := range []string{"process-compose", "redis-server"} {
			pid := startAs(t, name, []string{"STACK_STATE_DIR=" + state, "STACK_LAUNCHER=/bin/stack"}, state)
			tryWhileLocked("with its " + name + " started")
			_ = syscall.Kill(pid, syscall.SIGKILL) // a zombie until the test ends: not alive
			for deadline := time.Now().Add(5 * time.Second); alive(pid); time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("%s stand-in pid %d still alive 5 s after SIGKILL", name, pid)
				}
			}
		}
	}
	if _, err := os.Stat(state); err != nil {
		t.Errorf("state dir after a refused reset: %v", err)
	}
	release()
	second := &launcher{cfg: stackconfig.Config{StateDir: state}}
	if release, err := second.lockStateDir(context.Background(), client); err != nil {
		t.Errorf("the lock once released: got %v, want it taken", err)
	} else {
		release()
	}
}

// TestServiceStaleSeesEmbeddedFiles: a service binary is rebuilt when any of
// its sources is newer, embedded files included (auth-api embeds
// internal/users/users.json), but not for a test, testdata or a README.
func TestServiceStaleSeesEmbeddedFiles(t *testing.T) {
	root := t.TempDir()
	files := []string{
		"go.mod", "services/auth-api/main.go", "services/auth-api/README.md",
		"internal/users/users.go", "internal/users/users.json", "internal/users/users_test.go",
		"internal/users/testdata/fuzz/FuzzParse/seed",
	}
	old := time.Now().Add(-time.Hour)
	for _, f := range files {
		path := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, old, old); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(root, "bin", "auth-api")
	if err := os.MkdirAll(filepath.Dir(bin), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, []byte("binary"), 0o700); err != nil {
		t.Fatal(err)
	}
	l := &launcher{layout: stackconfig.Layout{Checkout: root}}
	if stale, err := l.serviceStale("auth-api", bin); err != nil || stale {
		t.Fatalf("every source older than the binary: got stale %v, %v; want fresh", stale, err)
	}
	builtAt := time.Now().Add(-time.Minute)
	if err := os.Chtimes(bin, builtAt, builtAt); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		file      string
		wantStale bool
	}{
		{"services/auth-api/main.go", true},
		{"internal/users/users.json", true},
		{"internal/users/users_test.go", false},
		{"internal/users/testdata/fuzz/FuzzParse/seed", false},
		{"services/auth-api/README.md", false},
	} {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join(root, tt.file)
			now := time.Now()
			if err := os.Chtimes(path, now, now); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { // as old again for the next row
				if err := os.Chtimes(path, old, old); err != nil {
					t.Error(err)
				}
			})
			if stale, err := l.serviceStale("auth-api", bin); err != nil || stale != tt.wantStale {
				t.Errorf("%s edited after the build: got stale %v, %v; want %v", tt.file, stale, err, tt.wantStale)
			}
		})
	}
}

// TestNewerThan: bin/process-compose is rebuilt when tools/go.mod or go.sum
// moved the pin after it was built (or a script that builds it changed).
func TestNewerThan(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, at time.Time) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, at, at); err != nil {
			t.Fatal(err)
		}
		return path
	}
	now := time.Now()
	bin := write("process-compose", now.Add(-time.Minute))
	oldMod := write("old.mod", now.Add(-time.Hour))
	newMod := write("new.mod", now)
	missing := filepath.Join(dir, "missing")
	for _, tt := range []struct {
		name  string
		bin   string
		files []string
		want  bool
	}{
		{"the pin older than the binary", bin, []string{oldMod, missing}, false},
		{"the pin moved since the build", bin, []string{oldMod, newMod}, true},
		{"no binary yet", missing, []string{oldMod}, true},
		{"no pin files", bin, []string{missing}, false},
	} {
		if got := newerThan(tt.bin, tt.files...); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestGraceWithin: `stack down --timeout` bounds the grace a leftover process
// gets before SIGKILL.
func TestGraceWithin(t *testing.T) {
	if got := graceWithin(context.Background(), 15*time.Second); got != 15*time.Second {
		t.Errorf("no deadline: got %v, want the whole grace, 15s", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if got := graceWithin(ctx, 15*time.Second); got > time.Second || got <= 0 {
		t.Errorf("a deadline 1s away: got %v, want at most 1s", got)
	}
	if got := graceWithin(ctx, 10*time.Millisecond); got != 10*time.Millisecond {
		t.Errorf("a grace shorter than the time left: got %v, want 10ms", got)
	}
	expired, cancel2 := context.WithTimeout(context.Background(), -time.Second)
	defer cancel2()
	if got := graceWithin(expired, 15*time.Second); got != 0 {
		t.Errorf("a deadline passed: got %v, want 0", got)
	}
}

// TestResetThroughASymlink: with STACK_STATE_DIR a symlink to the state dir,
// reset deletes the state dir itself (the generated secret with it), then
// the link; before, it deleted the link alone and said "deleted".
func TestResetThroughASymlink(t *testing.T) {
	t.Chdir(fakeCheckout(t))
	real := preparedStateDir(t)
	secret := filepath.Join(real, "secrets-test")
	if err := os.WriteFile(secret, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "st")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"stack", "reset", "--yes"}, []string{"STACK_STATE_DIR=" + link}, nil, &stdout, &stderr); err != nil {
		t.Fatalf("reset --yes through a symlink: %v (%s)", err, stderr.String())
	}
	for _, p := range []string{real, link} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after reset: got %v, want it gone", p, err)
		}
	}
	if !strings.Contains(stdout.String(), "and the symlink "+link) {
		t.Errorf("stdout %q: want it to name what was deleted", stdout.String())
	}
}

// swapOnRead is reset's stdin: when the question is answered, it first
// points the symlink link at to (as another user who owns the link could,
// while reset waits for "yes").
type swapOnRead struct {
	t        *testing.T
	link, to string
	done     bool
}

func (r *swapOnRead) Read(p []byte) (int, error) {
	if r.done {
		return 0, io.EOF
	}
	r.done = true
	tmp := r.link + ".new"
	if err := os.Symlink(r.to, tmp); err != nil {
		r.t.Error(err)
	}
	if err := os.Rename(tmp, r.link); err != nil {
		r.t.Error(err)
	}
	return copy(p, "yes\n"), nil
}

// TestResetResolvesTheSymlinkOnce: reset through a symlinked
// STACK_STATE_DIR checks, and deletes, what the link pointed to when it
// checked. It resolved the link again after the question, so a link
// repointed meanwhile (at a directory the check never saw) had that
// directory deleted, whatever it held.
func TestResetResolvesTheSymlinkOnce(t *testing.T) {
	t.Chdir(fakeCheckout(t))
	state := preparedStateDir(t)
	precious := t.TempDir()
	keep := filepath.Join(precious, "data")
	if err := os.WriteFile(keep, []byte("not the stack's"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := shortStateDir(t) // t.TempDir() can be too long for the sockets under it
	if err := os.Symlink(state, link); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	stdin := &swapOnRead{t: t, link: link, to: precious}
	if err := run(context.Background(), []string{"stack", "reset"}, []string{"STACK_STATE_DIR=" + link}, stdin, &stdout, &stderr); err != nil {
		t.Fatalf("reset through a symlink: %v (%s)", err, stderr.String())
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("%s, which the link pointed to only after reset had checked it: %v; want it left alone", keep, err)
	}
	if _, err := os.Lstat(state); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the state dir the link pointed to when reset checked it, %s: got %v, want it gone", state, err)
	}
}

// TestResetRefusesAnotherUsersLinkOrDir: reset, as up does (D54), refuses
// a STACK_STATE_DIR symlink or a state dir that another user owns: the
// owner of the link can point it anywhere; another user's directory is
// theirs to delete. Root only (to give the link or the directory away).
func TestResetRefusesAnotherUsersLinkOrDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a file another user's")
	}
	t.Chdir(fakeCheckout(t))
	for _, tc := range []struct {
		name string
		give func(state, link string) error
	}{
		{"the link", func(_, link string) error { return os.Lchown(link, 12345, 12345) }},
		{"the state dir", func(state, _ string) error { return os.Chown(state, 12345, 12345) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := preparedStateDir(t)
			link := shortStateDir(t) // t.TempDir() can be too long for the sockets under it
			if err := os.Symlink(state, link); err != nil {
				t.Fatal(err)
			}
			if err := tc.give(state, link); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), []string{"stack", "reset", "--yes"}, []string{"STACK_STATE_DIR=" + link}, nil, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), "owned by uid 12345") {
				t.Errorf("reset --yes with %s another user's: got %v, want a refusal naming uid 12345", tc.name, err)
			}
			for _, p := range []string{state, link} {
				if _, err := os.Lstat(p); err != nil {
					t.Errorf("%s after the refusal: %v; want it left", p, err)
				}
			}
		})
	}
}

// TestStopStraysInDependencyOrder: the stack's processes left without
// process-compose (it was killed) are stopped as process-compose stops them:
// HAProxy first, with its soft-stop signal, then the APIs, then
// psp-connector, and Redis only once the services that use it have exited
// (a connector still recording its charges needs Redis). Each stand-in
// writes to a shared file when it gets a signal and when it exits; the
// services take a while to drain, as the real ones do.
func TestStopStraysInDependencyOrder(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash on PATH")
	}
	dir := t.TempDir()
	record := filepath.Join(dir, "record")
	start := func(name, script string) procompose.Process {
		t.Helper()
		exe := filepath.Join(dir, name)
		if err := copyFile(bash, exe); err != nil {
			t.Fatal(err)
		}
		ready := filepath.Join(dir, name+".ready")
		cmd := exec.Command(exe, "-c", script+"; touch "+ready+"; sleep 60 & wait")
		cmd.Env = []string{"RECORD=" + record, "PATH=" + os.Getenv("PATH")}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Reaped at exit, so that alive() sees it gone; one Wait only (two
		// race on the Cmd).
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); <-exited })
		for deadline := time.Now().Add(10 * time.Second); !isFile(ready); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s stand-in did not start", name)
			}
		}
		return procompose.Process{Name: name, Pid: cmd.Process.Pid}
	}
	service := func(name string) string {
		return `trap 'echo "` + name + ` TERM" >> $RECORD; sleep 0.3; echo "` + name + ` exited" >> $RECORD; exit 0' TERM`
	}
	// In /proc's order, the order process-compose started them in: Redis first.
	procs := []procompose.Process{
		start("redis-server", `trap 'echo "redis-server TERM" >> $RECORD; exit 0' TERM`),
		start("psp-connector", service("psp-connector")),
		start("core-api", service("core-api")),
		start("auth-api", service("auth-api")),
		start("haproxy", `trap 'echo "haproxy USR1" >> $RECORD; exit 0' USR1; trap 'echo "haproxy TERM" >> $RECORD; exit 0' TERM`),
	}
	stopStrays(procs, 30*time.Second)
	b, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for _, before := range [][2]string{
		{"haproxy USR1", "auth-api TERM"},
		{"haproxy USR1", "core-api TERM"},
		{"core-api exited", "psp-connector TERM"},
		{"psp-connector exited", "redis-server TERM"},
		{"auth-api exited", "redis-server TERM"},
	} {
		first, then := slices.Index(lines, before[0]), slices.Index(lines, before[1])
		if first < 0 || then < 0 || first > then {
			t.Errorf("want %q before %q; the stand-ins recorded %q", before[0], before[1], lines)
		}
	}
}

// TestCheckPortsNamesAPortThatNeedsPrivileges: a port below the first
// unprivileged one (1024 on Linux) is refused to a user with EACCES. That is
// the port variable's fault, not the host's: the message must name the port
// variable, and not send the user to PLATFORM_HOST. As root (who may bind
// any port) the test runs itself again as nobody.
func TestCheckPortsNamesAPortThatNeedsPrivileges(t *testing.T) {
	const port = 80
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start"); err != nil {
		t.Skip("needs Linux's ip_unprivileged_port_start")
	} else if first, _ := strconv.Atoi(strings.TrimSpace(string(b))); first <= port {
		t.Skipf("port %d needs no privileges here (ip_unprivileged_port_start %d)", port, first)
	}
	check := func() error {
		return checkPorts([]stackconfig.Port{{Var: "PLATFORM_PORT", HostVar: "PLATFORM_HOST", Host: "127.0.0.1", Port: port}}, "/repo/stack.local.env", nil)
	}
	if stacktest.AsNobody() {
		fmt.Printf("checkPorts: %v\n", check())
		return
	}
	var msg string
	if os.Geteuid() != 0 {
		if err := check(); err != nil {
			msg = err.Error()
		}
	} else {
		out := stacktest.RerunAsNobody(t, "", nil)
		line, ok := "", false
		for _, l := range strings.Split(out, "\n") {
			if rest, found := strings.CutPrefix(l, "checkPorts: "); found {
				line, ok = rest, true
			}
		}
		if !ok {
			t.Fatalf("no checkPorts line from the run as nobody:\n%s", out)
		}
		msg = line
	}
	if msg == "" || msg == "<nil>" {
		t.Skipf("port %d could be bound without privileges", port)
	}
	if !strings.Contains(msg, "set PLATFORM_PORT") || strings.Contains(msg, "PLATFORM_HOST") {
		t.Errorf("port %d without privileges: got %q, want PLATFORM_PORT named and not PLATFORM_HOST", port, msg)
	}
}

// TestCommandsOnAnotherUsersStateDir: a state dir this user may not enter
// (another user's stack, started with sudo, say) hides whether a stack runs
// there. status and down must say they cannot tell, naming the state dir,
// not report "not running" (down: with exit status 0, while that stack keeps
// its ports). Run as nobody against a state dir of root's, whose
// process-compose API socket is bound.
func TestCommandsOnAnotherUsersStateDir(t *testing.T) {
	if stacktest.AsNobody() {
		environ := []string{"STACK_STATE_DIR=" + os.Getenv("STATE")}
		for _, cmd := range []string{"status", "down"} {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), []string{"stack", cmd}, environ, nil, &stdout, &stderr)
			code := 0
			var ee *exitError
			switch {
			case errors.As(err, &ee):
				code = ee.code
			case err != nil:
				code = 1
			}
			fmt.Printf("%s: exit %d, error %v, stdout %q\n", cmd, code, err, stdout.String())
		}
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root, to make a state dir nobody cannot enter")
	}
	dir := stacktest.OpenTempDir(t, "stack-other-user-")
	for name, content := range map[string]string{
		"go.mod": "module x\n", stackconfig.ComposeFileName: "processes: {}\n", stackconfig.DefaultsFileName: "PLATFORM_PORT=8080\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := stackconfig.Config{StateDir: filepath.Join(dir, "state")}
	if err := c.PrepareStateDir(); err != nil { // root's, mode 0700
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", c.ProcessComposeSocket())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	out := stacktest.RerunAsNobody(t, dir, []string{"STATE=" + c.StateDir})
	for _, cmd := range []string{"status", "down"} {
		var line string
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, cmd+": exit ") {
				line = l
			}
		}
		switch {
		case line == "":
			t.Errorf("%s: no result line from the run as nobody:\n%s", cmd, out)
		case strings.Contains(line, "not running") || !strings.Contains(line, "exit 1") || !strings.Contains(line, c.StateDir+" is owned by uid 0") || !strings.Contains(line, "run the command as that user"):
			t.Errorf("%s on another user's state dir: got %s; want exit 1 naming the state dir and its owner, saying to run it as that user, and not \"not running\"", cmd, line)
		}
	}
}

// TestCommandsRefuseAStateDirNotTheirs: every command that uses what the
// state dir holds refuses one that is not this user's to trust, naming what
// is at fault: a directory above it that another user may write (they can
// move the state dir away and put theirs in its place), a state dir or a
// symlink to it that another user owns, or, for the commands that use them,
// process-compose's API socket, its pid file or the log dir, when another
// user owns them. Run as root, down took another user's socket for
// process-compose's API and SIGKILLed the process group its answer named,
// and stopped, as a leftover of the stack, a haproxy working in the
// directory another user's symlink led to (two rows check that they
// survive).
// Giving a file away needs root; the first row does not.
func TestCommandsRefuseAStateDirNotTheirs(t *testing.T) {
	const other = 65534
	all := []string{"status", "logs", "down", "up", "reset"}
	tests := []struct {
		name string
		root bool
		cmds []string
		// give makes state, a prepared state dir, not this user's to trust,
		// and returns the STACK_STATE_DIR to use, what each refusal must
		// contain, and a check to run after the commands (or nil).
		give func(t *testing.T, state string) (stateDir, want string, after func(*testing.T))
	}{
		{"a directory above it writable by all", false, all, func(t *testing.T, state string) (string, string, func(*testing.T)) {
			parent := filepath.Dir(state)
			if err := os.Chmod(parent, 0o777); err != nil {
				t.Fatal(err)
			}
			return state, "above it " + parent + " is writable by every user", nil
		}},
		{"the state dir another user's", true, all, func(t *testing.T, state string) (string, string, func(*testing.T)) {
			mustLchown(t, state, other)
			return state, state + " is owned by uid 65534", nil
		}},
		{"another user's symlink to it", true, all, func(t *testing.T, state string) (string, string, func(*testing.T)) {
			link := shortStateDir(t)
			if err := os.Symlink(state, link); err != nil {
				t.Fatal(err)
			}
			mustLchown(t, link, other)
			return link, link + " is owned by uid 65534", nil
		}},
		{"another user's symlink to where a haproxy runs", true, []string{"status", "down"}, func(t *testing.T, state string) (string, string, func(*testing.T)) {
			// The system's own haproxy works in /, for one.
			dir := t.TempDir()
			victim := startAs(t, "haproxy", nil, dir)
			link := shortStateDir(t)
			if err := os.Symlink(dir, link); err != nil {
				t.Fatal(err)
			}
			mustLchown(t, link, other)
			return link, link + " is owned by uid 65534", func(t *testing.T) {
				if !alive(victim) {
					t.Errorf("haproxy (pid %d), working where another user's symlink led, was stopped", victim)
				}
			}
		}},
		{"the API socket another user's", true, []string{"status", "down"}, func(t *testing.T, state string) (string, string, func(*testing.T)) {
			socket := stackconfig.Config{StateDir: state}.ProcessComposeSocket()
			victim := orphanedGroup(t)
			asked := serveFakeAPI(t, socket, victim)
			mustLchown(t, socket, other)
			return state, "not using " + socket + ": " + socket + " is owned by uid 65534", func(t *testing.T) {
				// down kills only the groups the API named, so an API never
				// asked is one whose answer was not used (no waiting for a
				// SIGKILL to take effect).
				if n := asked.Load(); n > 0 {
					t.Errorf("another user's API socket got %d requests, want none", n)
				}
				if !groupAlive(victim) {
					t.Errorf("process group %d, named by another user's API socket, was killed", victim)
				}
			}
		}},
		{"the pid file another user's", true, []string{"status", "down"}, func(t *testing.T, state string) (string, string, func(*testing.T)) {
			pidFile := filepath.Join(state, "process-compose.pid")
			if err := writePid(pidFile, os.Getpid()); err != nil {
				t.Fatal(err)
			}
			mustLchown(t, pidFile, other)
			return state, "not using " + pidFile + ": " + pidFile + " is owned by uid 65534", nil
		}},
		{"the log dir another user's", true, []string{"logs"}, func(t *testing.T, state string) (string, string, func(*testing.T)) {
			logDir := stackconfig.Config{StateDir: state}.LogDir()
			mustLchown(t, logDir, other)
			return state, "not using " + logDir + ": " + logDir + " is owned by uid 65534", nil
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root && os.Geteuid() != 0 {
				t.Skip("needs root, to give a file to another user")
			}
			t.Chdir(fakeCheckout(t))
			stateDir, want, after := tc.give(t, preparedStateDir(t))
			// Free ports and stand-in tools, for an up that is not refused.
			environ := fakeTools(t, stateDir, "#!/bin/sh\nexit 3\n")
			for _, cmd := range tc.cmds {
				args := map[string][]string{"up": {"--detach"}, "down": {"--timeout", "10s"}, "reset": {"--yes"}}[cmd]
				var stdout, stderr bytes.Buffer
				err := run(context.Background(), append([]string{"stack", cmd}, args...), environ, nil, &stdout, &stderr)
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("stack %s: got %v (stdout %q); want a refusal containing %q", cmd, err, stdout.String(), want)
				}
				if _, err := os.Lstat(stateDir); err != nil {
					t.Errorf("after stack %s: %v; want the state dir left", cmd, err)
				}
			}
			if after != nil {
				after(t)
			}
		})
	}
}

func mustLchown(t *testing.T, path string, uid int) {
	t.Helper()
	if err := os.Lchown(path, uid, uid); err != nil {
		t.Fatal(err)
	}
}

// orphanedGroup starts a process group whose leader has exited while a
// member (sleep) runs on, and returns its id; the group is killed when t
// ends.
func orphanedGroup(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("sh", "-c", "sleep 60 & exit 0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	t.Cleanup(func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) })
	if !groupAlive(pgid) {
		t.Fatalf("process group %d is empty", pgid)
	}
	return pgid
}

// serveFakeAPI answers as process-compose's API on socket, naming one
// running process, haproxy, with pid; POST /project/stop closes it and
// every connection, as process-compose exits. It returns the count of
// requests it has been sent, each counted before it is answered.
func serveFakeAPI(t *testing.T, socket string, pid int) *atomic.Int64 {
	t.Helper()
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	var asked atomic.Int64
	api := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		mux.ServeHTTP(w, r)
	})}
	mux.HandleFunc("GET /live", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"status":"alive"}`) })
	mux.HandleFunc("GET /processes", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"data":[{"name":"haproxy","status":"Running","pid":%d,"is_running":true}]}`, pid)
	})
	mux.HandleFunc("POST /project/stop", func(w http.ResponseWriter, r *http.Request) { go api.Close() })
	go func() { _ = api.Serve(ln) }()
	t.Cleanup(func() { api.Close() })
	return &asked
}

// TestUpGivesProcessComposeNoPCVariablesOfTheUsers: process-compose reads
// PC_* variables that a user may export for other projects, and some would
// break this stack. v1.94 and later require an X-PC-Token-Key header on
// every API request when PC_API_TOKEN (or a file named by PC_API_TOKEN_PATH)
// is set, and exit at start when the token is shorter than 20 characters
// (src/api/routes.go, src/config/config.go upstream): the launcher's
// requests carry no token, and the API is on a unix socket in the 0700 state
// dir, so both are given empty. PC_DISABLED_PROCESSES (v1.75 and later)
// disables the processes it names: empty. PC_NAMESPACES and PC_READ_ONLY
// count when set at all, even empty: unset.
func TestUpGivesProcessComposeNoPCVariablesOfTheUsers(t *testing.T) {
	t.Chdir(fakeCheckout(t))
	state := shortStateDir(t)
	environ := fakeTools(t, state, "#!/bin/sh\nenv > \"$STACK_STATE_DIR/pc.env\"\nexit 3\n")
	environ = append(environ, "PC_API_TOKEN=a-token-of-this-users-own-projects", "PC_API_TOKEN_PATH=/nonexistent/token",
		// Set for other projects, these would run none of the stack's
		// processes (PC_NAMESPACES, even set empty), disable some
		// (PC_DISABLED_PROCESSES, v1.75 and later) or refuse the API's
		// stop and start (PC_READ_ONLY, set at all).
		"PC_NAMESPACES=another-project", "PC_DISABLED_PROCESSES=redis,haproxy", "PC_READ_ONLY=1")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"stack", "up", "--detach"}, environ, nil, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "process-compose exited") {
		t.Fatalf("up with a process-compose that exits at once: got %v, want it to say so\n%s", err, stderr.String())
	}
	b, err := os.ReadFile(filepath.Join(state, "pc.env"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "PC_API_TOKEN", "PC_API_TOKEN_PATH", "PC_DISABLED_PROCESSES":
			if v != "" {
				t.Errorf("process-compose's environment has %s, want it empty", line)
			}
		case "PC_NAMESPACES", "PC_READ_ONLY":
			t.Errorf("process-compose's environment has %s, want it unset (process-compose tests only whether it is set)", line)
		}
	}
}

// fakeTools puts stand-ins for redis-server, haproxy and the services (each
// exits at once) and processCompose (a script, or a path to link) in a
// directory, and returns an environment for `run` with that directory first
// on PATH, stateDir as the state dir, and five free ports.
func fakeTools(t *testing.T, stateDir, processCompose string) []string {
	t.Helper()
	bin := t.TempDir()
	for _, name := range append([]string{"redis-server", "haproxy"}, serviceNames...) {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pc := filepath.Join(bin, "process-compose")
	var err error
	if strings.HasPrefix(processCompose, "#!") {
		err = os.WriteFile(pc, []byte(processCompose), 0o755)
	} else {
		err = os.Symlink(processCompose, pc)
	}
	if err != nil {
		t.Fatal(err)
	}
	environ := []string{"PATH=" + bin + ":/usr/bin:/bin", "HOME=" + t.TempDir(), "STACK_STATE_DIR=" + stateDir}
	// Held open together while they are chosen (stacktest.FreePorts): one
	// listener closed before the next was opened could give two variables
	// the same port, which the launcher refuses (CI saw it once).
	ports := stacktest.FreePorts(t, 5)
	for i, v := range []string{"PLATFORM_PORT", "HAPROXY_STATS_PORT", "AUTH_API_PORT", "CORE_API_PORT", "PSP_CONNECTOR_PORT"} {
		environ = append(environ, fmt.Sprintf("%s=%d", v, ports[i]))
	}
	return environ
}

// TestUpKeepsTheAPIWithPCNoServer: PC_NO_SERVER in the environment, set at
// all (even empty), turns process-compose's API server off (v1.64.1
// src/config/config.go getNoServerDefault, and every later release): a user
// who exports it for other projects would get a stack the launcher cannot
// see (`up --detach` gives up after 10 s, `status` says not running). The
// launcher passes --no-server=false, which both versions take.
func TestUpKeepsTheAPIWithPCNoServer(t *testing.T) {
	pc := stacktest.ProcessCompose(t)
	root := fakeCheckout(t)
	compose := "version: \"0.5\"\nprocesses:\n  sleeper:\n    command: sleep 60\n"
	state := shortStateDir(t)
	environ := append(fakeTools(t, state, pc), "PC_NO_SERVER=1")
	upDetachedWith(t, root, compose, environ)
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"stack", "status", "--json"}, environ, nil, &stdout, &stderr); err != nil {
		t.Fatalf("status: %v\n%s", err, stdout.String())
	}
	if !strings.Contains(stdout.String(), `"name": "sleeper"`) {
		t.Errorf("status --json: %s\nwant the process sleeper", stdout.String())
	}
}

// TestSearchPathFindsExactlyTheChosenBinaries: process-compose.yaml names
// programs without a path, so the PATH the launcher gives it must find each
// one it chose. Putting the chosen binaries' directories first ran a stale
// core-api from the state dir's bin/, where auth-api was built, instead of
// the core-api the launcher took from PATH (a review).
func TestSearchPathFindsExactlyTheChosenBinaries(t *testing.T) {
	built, onPath := t.TempDir(), t.TempDir()
	exe := func(dir, name string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bins := binaries{
		"auth-api":      exe(built, "auth-api"),
		"psp-connector": exe(built, "psp-connector"),
		"core-api":      exe(onPath, "core-api"),
	}
	exe(built, "core-api") // an earlier build, not chosen
	linkDir := filepath.Join(t.TempDir(), "bin")
	for round := range 2 { // the second up replaces the first's links
		path, err := bins.searchPath(linkDir, built+string(filepath.ListSeparator)+onPath)
		if err != nil {
			t.Fatal(err)
		}
		for name, want := range bins {
			found, err := lookPath([]string{"PATH=" + path}, name)
			if err != nil {
				t.Fatalf("round %d: %s not found on %s: %v", round, name, path, err)
			}
			if got, _ := filepath.EvalSymlinks(found); got != want {
				t.Errorf("round %d: %s on the stack's PATH runs %s, want %s", round, name, got, want)
			}
		}
	}
}

// TestUpWarnsWhenNixWouldCopyTheSecret: in a copy of the repository that is
// not a git checkout, Nix takes the flake `.` whole, so a state dir inside
// it (the JWT secret) would land in the world-readable store (a review), and
// so would a JWT_SECRET set in its stack.local.env. (The default state dir
// is outside such a copy: stackconfig's TestLoadStateDir.)
func TestUpWarnsWhenNixWouldCopyTheSecret(t *testing.T) {
	inside := func(co string) string { return filepath.Join(co, ".stack") }
	tests := []struct {
		name        string
		git         bool
		stateDir    func(checkout string) string
		localSecret bool // JWT_SECRET set in the checkout's stack.local.env
		warn        string
	}{
		{"not a git checkout, state dir inside", false, inside, false, "the state dir"},
		{"a git checkout", true, inside, true, ""},
		{"in a subdirectory of a git repository", false, inside, true, ""},
		{"not a git checkout, state dir elsewhere", false, func(string) string { return t.TempDir() }, false, ""},
		{"not a git checkout, JWT_SECRET in stack.local.env", false, func(string) string { return t.TempDir() }, true, "stack.local.env (its JWT_SECRET)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			co := fakeCheckout(t)
			if tt.git {
				if err := os.Mkdir(filepath.Join(co, ".git"), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			if strings.Contains(tt.name, "subdirectory") {
				// The checkout moves into repo/platform, repo holding .git.
				repo := t.TempDir()
				if err := os.Mkdir(filepath.Join(repo, ".git"), 0o700); err != nil {
					t.Fatal(err)
				}
				sub := filepath.Join(repo, "platform")
				if err := os.Rename(co, sub); err != nil {
					t.Fatal(err)
				}
				co = sub
			}
			var stderr bytes.Buffer
			layout := stackconfig.Layout{Checkout: co, ConfigDir: co}
			cfg := stackconfig.Config{StateDir: tt.stateDir(co), Sources: map[string]string{"JWT_SECRET": "environment"}}
			if tt.localSecret {
				cfg.Sources["JWT_SECRET"] = layout.LocalFile(co)
			}
			l := &launcher{layout: layout, cfg: cfg, stderr: &stderr}
			l.warnIfCopiedWhole()
			warned := strings.Contains(stderr.String(), "is not a git checkout")
			if warned != (tt.warn != "") || !strings.Contains(stderr.String(), tt.warn) {
				t.Errorf("got %q, want a warning naming %q (none for \"\")", stderr.String(), tt.warn)
			}
		})
	}
}

// TestDownDespiteABadSetting: down needs only the state dir, so a setting
// of another kind that does not parse (an edit since up) must not keep the
// stack from being stopped; it is named in a warning. A bad state dir still
// stops it: down cannot tell which stack to stop.
func TestDownDespiteABadSetting(t *testing.T) {
	if _, err := os.Stat("/proc/self"); err != nil {
		t.Skip("needs /proc")
	}
	t.Chdir(fakeCheckout(t))
	state := preparedStateDir(t)
	stray := startAs(t, "redis-server", []string{"STACK_STATE_DIR=" + state, "STACK_LAUNCHER=/bin/stack"}, filepath.Join(state, "redis"))
	var stdout, stderr bytes.Buffer
	// LOG_LEVEL is refused only once the others parse; PLATFORM_PORT at its
	// default, 8080, then collides with AUTH_API_PORT.
	bad := []string{"PLATFORM_PORT=80a", "SHUTDOWN_GRACE=soon", "LOG_LEVEL=verbose", "AUTH_API_PORT=8080"}
	err := run(context.Background(), []string{"stack", "down"}, append([]string{"STACK_STATE_DIR=" + state}, bad...), nil, &stdout, &stderr)
	if err != nil {
		t.Fatalf("down with %v: %v\n%s", bad, err, stderr.String())
	}
	for _, setting := range bad {
		if name, _, _ := strings.Cut(setting, "="); !strings.Contains(stderr.String(), name) {
			t.Errorf("down's warning does not name %s:\n%s", name, stderr.String())
		}
	}
	if alive(stray) {
		t.Errorf("the stack's redis-server (pid %d) still runs after down:\n%s%s", stray, stdout.String(), stderr.String())
	}
	err = run(context.Background(), []string{"stack", "down"}, []string{"STACK_STATE_DIR=" + state + "'"}, nil, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "STACK_STATE_DIR") {
		t.Errorf("down with a bad STACK_STATE_DIR: got %v, want the error naming it", err)
	}
}

// TestMissingToolsInACheckout: inside a checkout the launcher builds what
// is missing, but not process-compose (a minute) when Redis or HAProxy is
// missing too, and without go on PATH it says that go is what is missing
// (it said there was no checkout).
func TestMissingToolsInACheckout(t *testing.T) {
	co := fakeCheckout(t)
	for _, f := range stackconfig.ProcessComposeBuild(co) {
		if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte("exit 1\n"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	withGo := t.TempDir()
	if err := os.WriteFile(filepath.Join(withGo, "go"), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
		want       []string
	}{
		{"go on PATH, no Redis", withGo, []string{"redis-server is not on PATH", "builds it from the checkout (tools/build-process-compose, about a minute) once the tools above are there"}},
		{"no go", t.TempDir(), []string{"auth-api is not on PATH and go is not on PATH to build it from the checkout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			l := &launcher{
				environ: []string{"PATH=" + tt.path},
				layout:  stackconfig.Layout{ConfigDir: co, Checkout: co, How: "checkout"},
				cfg:     stackconfig.Config{StateDir: filepath.Join(t.TempDir(), "st")},
				stderr:  &stderr,
			}
			_, err := l.findBinaries(context.Background())
			if err == nil {
				t.Fatal("got nil, want an error naming the missing tools")
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("got %q, want it to contain %q", err, want)
				}
			}
			if strings.Contains(stderr.String(), "building") {
				t.Errorf("built something for a start that cannot succeed:\n%s", stderr.String())
			}
		})
	}
}

// TestInterruptedCommandsSaySo: a command stopped by SIGINT or SIGTERM
// (its context canceled) exits 130 and says it was interrupted, not just
// "context canceled" (a review): before it starts, and while it builds the
// services (a go that takes its time), where nothing was started yet. The
// second is interrupted once that go has started (it leaves a file), not
// after a fixed delay: 300 ms did not always reach the build under load.
func TestInterruptedCommandsSaySo(t *testing.T) {
	t.Chdir(fakeCheckout(t))
	state := preparedStateDir(t)
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep on PATH")
	}
	// PATH is these alone: the services on the test's own PATH (the Nix
	// check's) would leave nothing to build.
	tools := t.TempDir()
	building := filepath.Join(tools, "building") // the fake go's mark that it runs
	for name, script := range map[string]string{"redis-server": "exit 1", "haproxy": "exit 1", "process-compose": "exit 1",
		"go": ": >" + building + "\nexec " + sleep + " 30"} {
		if err := os.WriteFile(filepath.Join(tools, name), []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	environ := []string{"STACK_STATE_DIR=" + state, "PATH=" + tools}
	ports := stacktest.FreePorts(t, 5)
	for i, name := range []string{"PLATFORM_PORT", "HAPROXY_STATS_PORT", "AUTH_API_PORT", "CORE_API_PORT", "PSP_CONNECTOR_PORT"} {
		environ = append(environ, fmt.Sprintf("%s=%d", name, ports[i]))
	}
	tests := []struct {
		name, want    string
		whileBuilding bool // interrupted once go runs; otherwise before the start
	}{
		{"before it starts", "interrupted", false},
		{"while it builds", "interrupted while building; nothing was started", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if !tt.whileBuilding {
				cancel()
			} else {
				go func() {
					defer cancel()
					for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
						if _, err := os.Stat(building); err == nil {
							return
						}
					}
				}()
			}
			var stdout, stderr bytes.Buffer
			err := run(ctx, []string{"stack", "up", "--detach", "--wait"}, environ, nil, &stdout, &stderr)
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != 130 || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("up interrupted %s: got %v (stderr %q), want exit 130 and %q", tt.name, err, stderr.String(), tt.want)
			}
		})
	}
}

// TestLookPathSkipsRelativeEntries: an empty or relative PATH entry (a
// trailing ":", ".") is not searched, so a program of the stack's name in the
// current directory is never taken for it. It was, as the current directory.
func TestLookPathSkipsRelativeEntries(t *testing.T) {
	here := t.TempDir()
	t.Chdir(here)
	if err := os.WriteFile(filepath.Join(here, "redis-server"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	elsewhere := t.TempDir()
	for _, path := range []string{":", ".", elsewhere + ":", "." + string(filepath.ListSeparator) + elsewhere, "./"} {
		if found, err := lookPath([]string{"PATH=" + path}, "redis-server"); err == nil {
			t.Errorf("PATH=%q: found %s, want not found (the current directory is not searched)", path, found)
		}
	}
	if err := os.WriteFile(filepath.Join(elsewhere, "redis-server"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if found, err := lookPath([]string{"PATH=.:" + elsewhere}, "redis-server"); err != nil || found != filepath.Join(elsewhere, "redis-server") {
		t.Errorf("PATH=.:%s: got %q, %v; want the one in %s", elsewhere, found, err, elsewhere)
	}
}

// TestUpWarnsAboutAWeakSecret: `up` says, before anything starts, what
// auth-api and core-api will log: the JWT secret in use holds less than
// HS256's 256 bits of key, and where it was set; never the secret itself.
func TestUpWarnsAboutAWeakSecret(t *testing.T) {
	const (
		hex16 = "0123456789abcdef0123456789abcdef" // 16 random bytes as hex: 128 bits
		hex32 = hex16 + hex16                      // 32 bytes as hex: 256 bits
	)
	tests := []struct {
		name     string
		explicit string // JWT_SECRET, set in the environment; "" for none
		file     string // secrets/jwt_secret before up; "" for none
		want     string // in the warning; "" for no warning
	}{
		{"32 hex digits in the environment", hex16, "", "JWT_SECRET is set in the environment) is weak: 32 hex digits at 4 bits each hold at most 128 bits"},
		{"64 hex digits in the environment", hex32, "", ""},
		{"32 hex digits in the secret file", "", hex16, "secrets/jwt_secret) is weak: 32 hex digits"},
		{"the generated secret", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := stackconfig.Config{StateDir: preparedStateDir(t), JWTSecret: tt.explicit,
				Values: map[string]string{"JWT_SECRET": tt.explicit}, Sources: map[string]string{"JWT_SECRET": stackconfig.FromEnvironment}}
			if tt.file != "" {
				if err := os.MkdirAll(filepath.Dir(c.SecretFile()), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(c.SecretFile(), []byte(tt.file+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			secret, source, err := c.EnsureJWTSecret()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			l := &launcher{cfg: c, stderr: &stderr}
			l.warnIfWeakSecret(secret, source)
			got := stderr.String()
			switch {
			case tt.want == "" && got != "":
				t.Errorf("warned %q, want no warning", got)
			case tt.want != "" && !strings.Contains(got, tt.want):
				t.Errorf("warned %q, want it to contain %q", got, tt.want)
			}
			if strings.Contains(got, secret) {
				t.Errorf("the warning shows the secret: %q", got)
			}
		})
	}
}

// TestUpOnAFullDisk: up refuses a state dir whose file system is full,
// naming the state dir and what is free, and starts nothing; before, `up
// --wait` reported every process ready, and Redis exited at the first
// transaction (RELIABILITY.md, "A full disk"). Under warnFreeBytes it
// warns. The disk is a real tmpfs (stacktest.SmallDisk).
func TestUpOnAFullDisk(t *testing.T) {
	t.Chdir(fakeCheckout(t))
	state := filepath.Join(stacktest.SmallDisk(t, 8<<20), "st")
	if err := (stackconfig.Config{StateDir: state}).PrepareStateDir(); err != nil {
		t.Fatal(err)
	}
	environ := []string{"STACK_STATE_DIR=" + state}
	ports := stacktest.FreePorts(t, 5)
	for i, name := range []string{"PLATFORM_PORT", "HAPROXY_STATS_PORT", "AUTH_API_PORT", "CORE_API_PORT", "PSP_CONNECTOR_PORT"} {
		environ = append(environ, fmt.Sprintf("%s=%d", name, ports[i]))
	}

	l, err := newLauncher(environ, nil, &bytes.Buffer{}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	var warned bytes.Buffer
	l.stderr = &warned
	if err := l.checkFreeSpace(true); err != nil {
		t.Fatalf("8 MB free: got %v, want a warning only", err)
	}
	if !strings.Contains(warned.String(), "stack: warning: the state dir's file system has only 8.0 MB free ("+state+")") {
		t.Errorf("8 MB free: got %q, want a warning naming the state dir and what is free", warned.String())
	}

	stacktest.FillDisk(t, filepath.Dir(state))
	var stdout, stderr bytes.Buffer
	err = run(context.Background(), []string{"stack", "up", "--detach"}, environ, nil, &stdout, &stderr)
	want := "the state dir " + state + " (STACK_STATE_DIR is set in the environment) has 0.0 MB free on its file system, less than the 4.0 MB the stack needs to start"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("up on a full disk: got %v, want an error containing %q", err, want)
	}
	if _, err := os.Stat(filepath.Join(state, "process-compose.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("up on a full disk started process-compose (its pid file: %v)", err)
	}
}

// TestUpLeavesRoomAfterItsBuild: up checks the room on the state dir's file
// system before it builds, and the build then writes the services into its
// bin/ (34 MB for the three, and 7 MB more for the launcher's copy under `go
// run`): a state dir with a little more than that free passed the check,
// with a warning, and the stack started on what the build left, under the
// 4 MB up refuses (leastFreeBytes), where Redis exits at its first write.
// Up now looks again once the build is done, before it starts anything.
// A stand-in for go writes 3 binaries of 4.5 MB on a 16 MB tmpfs.
func TestUpLeavesRoomAfterItsBuild(t *testing.T) {
	t.Chdir(fakeCheckout(t))
	state := filepath.Join(stacktest.SmallDisk(t, 16<<20), "st")
	head, err := exec.LookPath("head")
	if err != nil {
		t.Skip("no head on PATH")
	}
	tools := t.TempDir()
	started := filepath.Join(tools, "started") // process-compose's mark that up started it
	for name, script := range map[string]string{"redis-server": "exit 1", "haproxy": "exit 1",
		"process-compose": ": >" + started + "\nexit 3",
		// go build -o <bin>/ ./services/<name>...
		"go": "out=$3\nshift 3\nfor p in \"$@\"; do " + head + " -c 4718592 /dev/zero > \"$out${p##*/}\" || exit 1; done"} {
		if err := os.WriteFile(filepath.Join(tools, name), []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	environ := []string{"STACK_STATE_DIR=" + state, "PATH=" + tools, "HOME=" + t.TempDir()}
	ports := stacktest.FreePorts(t, 5)
	for i, name := range []string{"PLATFORM_PORT", "HAPROXY_STATS_PORT", "AUTH_API_PORT", "CORE_API_PORT", "PSP_CONNECTOR_PORT"} {
		environ = append(environ, fmt.Sprintf("%s=%d", name, ports[i]))
	}
	var stdout, stderr bytes.Buffer
	l, err := newLauncher(environ, nil, &stdout, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	l.exe = filepath.Join(tools, "process-compose") // no copy of the test binary for the probes
	err = l.up(context.Background(), []string{"--detach"})
	want := "the state dir " + state + " (STACK_STATE_DIR is set in the environment) has "
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "less than the 4.0 MB the stack needs to start") {
		t.Errorf("up with the disk left nearly full by its build: got %v, want an error containing %q and what it needs\n%s", err, want, stderr.String())
	}
	if _, err := os.Stat(started); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("up started process-compose on the disk its build left nearly full (%v)", err)
	}
	if n := strings.Count(stderr.String(), "stack: warning: the state dir's file system has only"); n > 1 {
		t.Errorf("up warned %d times of the room left, want at most once:\n%s", n, stderr.String())
	}
}

// upDetachedWith writes compose as root's process-compose.yaml and runs
// `stack up --detach` from root with environ, failing the test if it fails,
// and `stack down` when the test ends.
func upDetachedWith(t *testing.T, root, compose string, environ []string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(root, stackconfig.ComposeFileName), []byte(compose), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(root)
	t.Cleanup(func() {
		var out bytes.Buffer
		if err := run(context.Background(), []string{"stack", "down"}, environ, nil, &out, &out); err != nil {
			t.Errorf("down: %v\n%s", err, out.String())
		}
	})
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"stack", "up", "--detach"}, environ, nil, &stdout, &stderr); err != nil {
		t.Fatalf("up --detach: %v\n%s", err, stderr.String())
	}
}
