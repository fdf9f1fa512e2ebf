package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acme-payments/platform/internal/stacktest"
)

func TestRunUsageErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		environ []string
		want    string // substring of the error; "" for none
	}{
		{"help", []string{"-h"}, nil, ""},
		{"unknown flag", []string{"--nope"}, nil, "flag provided but not defined"},
		{"stray argument", []string{"extra"}, nil, "unexpected arguments"},
		{"bad port", nil, []string{"PLATFORM_PORT=99999"}, "PLATFORM_PORT"},
		{"bad mode", []string{"--mode", "both", "--redis-url", "none"}, nil, "--mode"},
		{"duration and count", []string{"--duration", "1s", "--count", "5", "--redis-url", "none"}, nil, "--duration, --count"},
		{"bad currency", []string{"--currencies", "usd", "--redis-url", "none"}, nil, "--currencies"},
		{"target without a scheme", []string{"--target", "127.0.0.1:8080", "--redis-url", "none"}, nil, "--target"},
		{"rate not a number", []string{"--rate", "NaN", "--count", "5", "--redis-url", "none"}, nil, "--rate"},
		{"more merchants than workers, asked for", []string{"--merchants", "3", "-c", "2", "--count", "5", "--redis-url", "none"}, nil, "--merchants: 3 merchants for 2 workers"},
		// -c 1 takes one merchant by default: past validation, to the (closed) router.
		{"one worker, default merchants", []string{"-c", "1", "--count", "5", "--redis-url", "none", "--target", "http://127.0.0.1:1"}, nil, "log in as"},
		{"negative duration", []string{"--duration", "-5s", "--count", "5", "--redis-url", "none"}, nil, "--duration: -5s is negative"},
		{"a sample size without --verify sample", []string{"--verify-sample", "5", "--count", "5", "--redis-url", "none", "--target", "http://127.0.0.1:1"}, nil, "--verify-sample: only with --verify sample"},
		{"a sample size with --verify sample", []string{"--verify", "sample", "--verify-sample", "5", "--count", "5", "--redis-url", "none", "--target", "http://127.0.0.1:1"}, nil, "log in as"},
		{"a flag's value that does not parse", []string{"--duration", "abc"}, nil, `--duration must be a duration such as 30s, got "abc"`},
		{"a one-letter flag's value that does not parse", []string{"-c", "x"}, nil, `-c must be a whole number, got "x"`},
		{"negative --watch-pid", []string{"--watch-pid", "-5", "--count", "1", "--redis-url", "none", "--target", "http://127.0.0.1:1"}, nil, "--watch-pid: -5 is negative"},
		// REDIS_URL, not the flag, is at fault: no --redis-url was given.
		{"REDIS_URL unparsable", []string{"--count", "1", "--target", "http://127.0.0.1:1"}, []string{"REDIS_URL=garbage"}, `REDIS_URL (set in the environment; the default of --redis-url): redis: invalid URL scheme ""`},
		{"profile in a missing directory", []string{"--cpuprofile", "/nonexistent/cpu.pprof", "--count", "5", "--redis-url", "none"}, nil, "--cpuprofile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runLoadgen(tt.args, tt.environ)
			checkRunError(t, err, tt.want)
		})
	}
}

// runLoadgen runs loadgen's run with args (after the program's name) and
// environ, and returns what it wrote on stderr and its error.
func runLoadgen(args, environ []string) (stderr string, err error) {
	var out, errOut bytes.Buffer
	err = run(context.Background(), append([]string{"loadgen"}, args...), environ, &out, &errOut)
	return errOut.String(), err
}

// checkRunError fails t unless err is nil (want "") or contains want.
func checkRunError(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("got %v, want nil", err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Errorf("got %v, want an error containing %q", err, want)
	}
}

// TestRunWithBadStackSettings: the stack's settings (here the environment
// of a checkout) are needed only for the defaults they give. A bad one is
// the error when the router's URL comes from them, and is named on stderr
// when the command line gives the URLs instead; -h works whatever they say.
func TestRunWithBadStackSettings(t *testing.T) {
	closedRouter := "http://127.0.0.1:1" // refused at once: the run fails at its first login
	tests := []struct {
		name       string
		args       []string
		environ    []string
		wantErr    string // substring of the error; "" for none
		wantStderr string // substring of stderr; "" for nothing on it
	}{
		{"a bad PLATFORM_HOST without --target",
			[]string{"--count", "1"}, []string{"PLATFORM_HOST=localhost"},
			`PLATFORM_HOST must be an IPv4 address`, ""},
		{"a bad PLATFORM_PORT without --target",
			[]string{"--count", "1", "--redis-url", "none"}, []string{"PLATFORM_PORT=99999"},
			"PLATFORM_PORT", ""},
		{"-h with a bad PLATFORM_HOST",
			[]string{"-h"}, []string{"PLATFORM_HOST=localhost"},
			"", "usage: loadgen"},
		{"a bad PLATFORM_HOST with --target and --redis-url",
			[]string{"--target", closedRouter, "--redis-url", "none", "--count", "1", "--quiet"}, []string{"PLATFORM_HOST=localhost"},
			"log in as", ""},
		{"a bad PLATFORM_PORT with --target and no --redis-url: named on stderr",
			[]string{"--target", closedRouter, "--count", "1", "--quiet"}, []string{"PLATFORM_PORT=99999"},
			"log in as", "the stack's settings are not used"},
		{"a bad PLATFORM_HOST with the three URLs instead of --target",
			[]string{"--token-url", closedRouter + "/auth/token", "--tx-url", closedRouter + "/transaction/transaction",
				"--status-url", closedRouter + "/transaction/transactions/", "--redis-url", "none", "--count", "1", "--quiet"},
			[]string{"PLATFORM_HOST=localhost"},
			"log in as", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stderr, err := runLoadgen(tt.args, tt.environ)
			checkRunError(t, err, tt.wantErr)
			switch {
			case tt.wantStderr == "" && stderr != "":
				t.Errorf("stderr: %q, want nothing", stderr)
			case tt.wantStderr != "" && !strings.Contains(stderr, tt.wantStderr):
				t.Errorf("stderr: %q, want it to contain %q", stderr, tt.wantStderr)
			}
		})
	}
}

// runningStackDir returns a short state dir with a listening Redis socket
// in it, as a running stack has.
func runningStackDir(t *testing.T) (dir, sock string) {
	t.Helper()
	dir = stacktest.ShortTempDir(t, "lg-") // short: a socket path has at most 103 bytes
	return dir, listenUnix(t, filepath.Join(dir, "redis", "redis.sock"))
}

// listenUnix listens on a unix socket at path (its directories created)
// until the test ends, as a running stack's Redis does, and returns path.
func listenUnix(t *testing.T, path string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return path
}

// checkoutWith returns a directory the launcher takes for a checkout (go.mod
// and process-compose.yaml), with localEnv as its stack.local.env.
func checkoutWith(t *testing.T, localEnv string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{"go.mod": "module x\n", "process-compose.yaml": "version: \"0.5\"\n", "stack.local.env": localEnv} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// worldWritable makes dir writable by every user (a /tmp of a checkout's,
// as another user would find it) and returns it.
func worldWritable(t *testing.T, dir string) string {
	t.Helper()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestFindStack: loadgen's defaults come from the stack's own configuration
// where the launcher would find it (from a subdirectory too, with
// stack.local.env), else from the environment alone.
func TestFindStack(t *testing.T) {
	state, sock := runningStackDir(t)
	idle := t.TempDir() // a state dir with no Redis running
	// The launcher's state dir outside a checkout, one per user.
	home := t.TempDir()
	userSock := listenUnix(t, filepath.Join(home, ".local", "state", "acme-platform", "redis", "redis.sock"))
	tests := []struct {
		name      string
		cwd       string
		environ   []string
		want      stackDefaults
		wantError string
	}{
		{"checkout: stack.local.env's port, the running stack's socket, from a subdirectory",
			filepath.Join(checkoutWith(t, "PLATFORM_PORT=18080\nSTACK_STATE_DIR="+state+"\n"), "sub"), nil,
			stackDefaults{target: "http://127.0.0.1:18080", redisURL: "unix://" + sock}, ""},
		{"checkout: no stack running",
			checkoutWith(t, "STACK_STATE_DIR="+idle+"\n"), nil,
			stackDefaults{target: "http://127.0.0.1:8080"}, ""},
		{"checkout: the environment wins",
			checkoutWith(t, "PLATFORM_PORT=18080\n"), []string{"PLATFORM_PORT=18081", "PLATFORM_HOST=0.0.0.0", "REDIS_URL=redis://e:2/0"},
			stackDefaults{target: "http://127.0.0.1:18081", redisURL: "redis://e:2/0"}, ""},
		{"checkout: a bad setting is named",
			checkoutWith(t, "PLATFORM_PORT=eighty\n"), nil,
			stackDefaults{}, `PLATFORM_PORT must be a whole number, got "eighty"`},
		{"a checkout every user may add a file to is refused, not passed over",
			filepath.Join(worldWritable(t, checkoutWith(t, "PLATFORM_PORT=18080\n")), "sub"), nil,
			stackDefaults{}, "looks like a checkout of the platform"},
		{"no stack files: PLATFORM_PORT and STACK_STATE_DIR",
			t.TempDir(), []string{"PLATFORM_PORT=9999", "STACK_STATE_DIR=" + state},
			stackDefaults{target: "http://127.0.0.1:9999", redisURL: "unix://" + sock}, ""},
		{"no stack files: PLATFORM_HOST, as the launcher bound HAProxy",
			t.TempDir(), []string{"PLATFORM_HOST=127.0.0.2", "PLATFORM_PORT=9999"},
			stackDefaults{target: "http://127.0.0.2:9999"}, ""},
		{"no stack files: a router on every address is reached on 127.0.0.1",
			t.TempDir(), []string{"PLATFORM_HOST=0.0.0.0"},
			stackDefaults{target: "http://127.0.0.1:8080"}, ""},
		{"no stack files: a bad PLATFORM_HOST is named",
			t.TempDir(), []string{"PLATFORM_HOST=localhost"},
			stackDefaults{}, `PLATFORM_HOST must be an IPv4 address such as 127.0.0.1 (0.0.0.0 exposes the platform), got "localhost"`},
		{"no stack files: defaults",
			t.TempDir(), nil,
			stackDefaults{target: "http://127.0.0.1:8080"}, ""},
		{"no stack files: the launcher's per-user state dir",
			t.TempDir(), []string{"HOME=" + home},
			stackDefaults{target: "http://127.0.0.1:8080", redisURL: "unix://" + userSock}, ""},
		{"no stack files: XDG_STATE_HOME before HOME",
			t.TempDir(), []string{"HOME=" + idle, "XDG_STATE_HOME=" + filepath.Join(home, ".local", "state")},
			stackDefaults{target: "http://127.0.0.1:8080", redisURL: "unix://" + userSock}, ""},
		{"no stack files: a bad PLATFORM_PORT is named",
			t.TempDir(), []string{"PLATFORM_PORT=abc"},
			stackDefaults{}, `PLATFORM_PORT must be a whole number, got "abc"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(tt.cwd) // the default ./.stack is relative to it
			got, err := findStack(tt.cwd, "", tt.environ)
			if tt.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantError) {
					t.Errorf("got %+v, %v; want an error containing %q", got, err, tt.wantError)
				}
				return
			}
			got.redisFrom = "" // for errors only: TestRunUsageErrors checks it
			if err != nil || got != tt.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestStackRedisURL(t *testing.T) {
	stack := stackDefaults{redisURL: "unix:///s/redis.sock"}
	for _, tt := range []struct{ flag, want string }{
		{"redis://h:1/0", "redis://h:1/0"},
		{"none", ""},
		{"", "unix:///s/redis.sock"},
	} {
		if got := stackRedisURL(tt.flag, stack); got != tt.want {
			t.Errorf("--redis-url %q: got %q, want %q", tt.flag, got, tt.want)
		}
	}
}

// TestRedisURLErrorHidesThePassword: a URL that does not parse is named by
// its flag, and its password is not repeated.
func TestRedisURLErrorHidesThePassword(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"loadgen", "--redis-url", "redis://user:s3cretpw@127.0.0.1:6379/%zz", "--count", "1"}, nil, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "--redis-url") || strings.Contains(err.Error()+errOut.String(), "s3cretpw") {
		t.Errorf("got %v (stderr %q), want an error naming --redis-url without the password", err, errOut.String())
	}
}
