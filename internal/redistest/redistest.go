// Package redistest starts a real redis-server for a test, on a unix socket in
// the test's temporary directory, and stops it when the test ends.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a running redis-server owned by one test.
type Server struct {
	// URL is a REDIS_URL for the server: unix://<socket>.
	URL string
	// Socket is the path of the server's unix socket.
	Socket string
	// Dir holds the server's data (AOF) and log.
	Dir string

	appendfsync string
	cmd         *exec.Cmd
	run         *serverRun // the running process's, for Kill
}

// serverRun is one start of the server: whether the test ended it, and its
// end, which a goroutine waits for.
type serverRun struct {
	killed atomic.Bool
	ended  chan struct{} // closed once the process has been waited for
}

// RequireBinary skips the test when name is not on PATH, or fails it when the
// CI environment variable is "true", where every tool must be installed.
func RequireBinary(tb testing.TB, name string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s is not on PATH, and CI=true requires it (apt-get install the package that provides it)", name)
	}
	tb.Skipf("%s is not on PATH; skipping (install it, or run inside `nix develop`)", name)
	return ""
}

// Start starts redis-server with append-only persistence on a socket in
// tb.TempDir() and returns once it answers PING. It is stopped by tb.Cleanup.
// Its AOF policy is the stack's default, appendfsync always: under everysec
// Redis may answer before it has even written the AOF (while an earlier fsync
// runs), and the tests that kill Redis check what the stack promises.
func Start(tb testing.TB) *Server {
	tb.Helper()
	return StartAppendfsync(tb, "always")
}

// StartAppendfsync is Start with another appendfsync policy (always, everysec
// or no), kept across Restart.
func StartAppendfsync(tb testing.TB, policy string) *Server {
	tb.Helper()
	bin := RequireBinary(tb, "redis-server")
	// Unix socket paths are limited to ~100 bytes, and t.TempDir() can be long.
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		tb.Fatalf("make redis dir: %v", err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	s := &Server{Dir: dir, Socket: filepath.Join(dir, "redis.sock"), appendfsync: policy}
	s.URL = "unix://" + s.Socket
	s.start(tb, bin)
	return s
}

func (s *Server) start(tb testing.TB, bin string) {
	tb.Helper()
	cmd := exec.Command(bin,
		"--port", "0",
		"--unixsocket", s.Socket,
		"--unixsocketperm", "700",
		"--dir", s.Dir,
		"--appendonly", "yes",
		"--appendfsync", s.appendfsync,
		"--save", "",
		"--logfile", filepath.Join(s.Dir, "redis.log"),
	)
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start redis-server: %v", err)
	}
	run := &serverRun{ended: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(run.ended) }()
	s.cmd, s.run = cmd, run
	tb.Cleanup(func() {
		// A server that ended without the test's Kill (a crash, or a
		// signal from elsewhere) is said, with how it ended: a test that
		// failed on its Redis gone then shows why.
		select {
		case <-run.ended:
			if !run.killed.Load() {
				tb.Logf("redis-server (pid %d) ended without the test stopping it: %s\n%s", cmd.Process.Pid, cmd.ProcessState, s.logTail())
			}
		default:
		}
		s.Kill()
	})

	client := s.Client(tb)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := client.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("redis-server did not answer PING within 10s: %v\n%s", err, s.logTail())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Client returns a go-redis client for the server, closed by tb.Cleanup.
func (s *Server) Client(tb testing.TB) *redis.Client {
	tb.Helper()
	opts, err := redis.ParseURL(s.URL)
	if err != nil {
		tb.Fatalf("parse %s: %v", s.URL, err)
	}
	c := redis.NewClient(opts)
	tb.Cleanup(func() { c.Close() })
	return c
}

// busyScript keeps Redis busy for ARGV[1] milliseconds. Redis runs one
// command at a time, so every other client's calls wait, unread, until it
// ends, and then run.
var busyScript = redis.NewScript(`#!lua flags=no-writes
local t = redis.call('TIME')
local until_us = t[1] * 1000000 + t[2] + tonumber(ARGV[1]) * 1000
repeat
  t = redis.call('TIME')
until t[1] * 1000000 + t[2] >= until_us
return 1`)

// Busy keeps the server busy for d (at most 4 s: from 5 s Redis answers
// other clients BUSY) and returns once it no longer answers, as a Redis
// stalled by a slow command would; wait returns when it answers again.
func (s *Server) Busy(tb testing.TB, d time.Duration) (wait func()) {
	tb.Helper()
	if d > 4*time.Second {
		tb.Fatalf("Busy(%s): at most 4s", d)
	}
	opts, err := redis.ParseURL(s.URL)
	if err != nil {
		tb.Fatalf("parse %s: %v", s.URL, err)
	}
	opts.ReadTimeout = d + 10*time.Second
	c := redis.NewClient(opts)
	ctx := context.Background()
	if err := busyScript.Load(ctx, c).Err(); err != nil {
		c.Close()
		tb.Fatalf("load the busy script: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		done <- busyScript.Run(ctx, c, nil, d.Milliseconds()).Err()
		c.Close()
	}()
	// Until the script has started, another call could still run first.
	probe := redis.NewClient(&redis.Options{Network: opts.Network, Addr: opts.Addr,
		ReadTimeout: 50 * time.Millisecond, MaxRetries: -1})
	defer probe.Close()
	for deadline := time.Now().Add(5 * time.Second); probe.Ping(ctx).Err() == nil; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatalf("Redis still answered PING 5s after the busy script was sent")
		}
	}
	return func() {
		tb.Helper()
		if err := <-done; err != nil {
			tb.Fatalf("busy script: %v", err)
		}
	}
}

// Kill stops the server with SIGKILL (no final fsync), as a crash would.
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.run.killed.Store(true)
	_ = s.cmd.Process.Kill()
	<-s.run.ended
	s.cmd, s.run = nil, nil
}

// Restart kills the server and starts it again on the same socket and data
// directory, so tests can check what survives a crash.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Kill()
	bin := RequireBinary(tb, "redis-server")
	_ = os.Remove(s.Socket)
	s.start(tb, bin)
}

func (s *Server) logTail() string {
	f, err := os.Open(filepath.Join(s.Dir, "redis.log"))
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 20 {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
