package procompose

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/acme-payments/platform/internal/stacktest"
)

// A project of stand-in processes: one whose readiness probe passes, one
// whose probe never does.
const testProject = `version: "0.5"
processes:
  good:
    command: "echo good is up; exec sleep 60"
    readiness_probe:
      exec:
        command: "true"
      period_seconds: 1
  bad:
    command: "echo bad says hello; exec sleep 60"
    readiness_probe:
      exec:
        command: "false"
      period_seconds: 1
      failure_threshold: 1000000
`

// startProcessCompose runs the real process-compose on testProject with its
// API on a unix socket, and returns a client for it and a channel closed
// once process-compose has exited.
func startProcessCompose(t *testing.T) (*Client, <-chan struct{}) {
	t.Helper()
	bin := stacktest.ProcessCompose(t)
	dir, err := os.MkdirTemp("", "pc-test-") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	project := filepath.Join(dir, "project.yaml")
	if err := os.WriteFile(project, []byte(testProject), 0o600); err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(dir, "pc.sock")
	cmd := exec.Command(bin, "up", "--config", project, "--use-uds", "--unix-socket", socket,
		"--disable-dotenv", "--tui=false", "--log-file", filepath.Join(dir, "pc.log"))
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	c := NewClient(socket)
	t.Cleanup(c.Close)
	return c, exited
}

func TestClientAgainstProcessCompose(t *testing.T) {
	c, exited := startProcessCompose(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var events []ReadyEvent
	err := Waiter{Poll: c.Processes, Want: []string{"good"}, Start: time.Now(), OnReady: func(e ReadyEvent) { events = append(events, e) }}.Wait(ctx)
	if err != nil {
		t.Fatalf("wait for good: %v", err)
	}
	if len(events) != 1 || events[0].Name != "good" || events[0].Pid <= 0 {
		t.Errorf("ready events: got %+v, want one for good with its pid", events)
	}

	short, cancelShort := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer cancelShort()
	err = Waiter{Poll: c.Processes, Want: []string{"good", "bad"}, Start: time.Now()}.Wait(short)
	var nr *NotReadyError
	if !errors.As(err, &nr) {
		t.Fatalf("wait for good and bad: got %v, want a *NotReadyError", err)
	}
	if len(nr.Processes) != 1 || nr.Processes[0].Name != "bad" {
		t.Fatalf("not ready: got %+v, want only bad", nr.Processes)
	}
	if got, want := Describe(nr.Processes[0]), "running, readiness probe not passing"; got != want {
		t.Errorf("describe bad: got %q, want %q", got, want)
	}

	if !c.Alive(ctx) {
		t.Fatalf("alive: got false, want true")
	}
	if err := c.ShutDown(ctx); err != nil {
		t.Fatalf("shut down: %v", err)
	}
	for c.Alive(ctx) {
		select {
		case <-ctx.Done():
			t.Fatalf("process-compose still answers after shutdown: %v", ctx.Err())
		case <-exited: // the next Alive fails
		case <-time.After(20 * time.Millisecond):
		}
	}
	if _, err := c.Processes(ctx); !errors.Is(err, ErrNotRunning) {
		t.Errorf("processes after shutdown: got %v, want ErrNotRunning", err)
	}
}

// TestClientLiveOnASilentSocket: a process-compose that is stopped or stuck
// keeps its socket bound, so connections are accepted and never answered.
// Live must give up (not hang) and must not call that "not running".
func TestClientLiveOnASilentSocket(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "silent.sock")
	ln, err := net.Listen("unix", socket) // never accepts: the kernel queues the connection
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c := NewClient(socket)
	defer c.Close()
	c.liveTimeout = 100 * time.Millisecond

	err = c.Live(context.Background())
	if err == nil || errors.Is(err, ErrNotRunning) {
		t.Errorf("live on a silent socket: got %v, want a timeout that is not ErrNotRunning", err)
	}
	if c.Alive(context.Background()) {
		t.Errorf("alive on a silent socket: got true, want false")
	}
	if ClosedUnanswered(err) {
		t.Errorf("ClosedUnanswered(%v) on a silent socket: got true, want false (a timeout: something holds the socket)", err)
	}
}

// TestClosedUnansweredOnADroppedConnection: a socket whose holder lets each
// connection in and drops it unanswered (a process-compose being killed)
// gives errors that ClosedUnanswered names, whichever way Go's client sees
// the drop; none of them is ErrNotRunning (the socket did let them in).
func TestClosedUnansweredOnADroppedConnection(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "dropping.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for i := 0; ; i++ {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			if i%2 == 1 { // after the request, else before it is read
				_, _ = conn.Read(make([]byte, 4096))
			}
			conn.Close()
		}
	}()
	c := NewClient(socket)
	defer c.Close()
	for range 20 {
		_, err := c.Processes(context.Background())
		if err == nil || errors.Is(err, ErrNotRunning) || !ClosedUnanswered(err) {
			t.Fatalf("processes on a socket that drops each connection: got %v, want an error ClosedUnanswered names", err)
		}
	}
}

func TestClientNotRunning(t *testing.T) {
	c := NewClient(filepath.Join(t.TempDir(), "none.sock"))
	defer c.Close()
	ctx := context.Background()
	if c.Alive(ctx) {
		t.Errorf("alive without a server: got true, want false")
	}
	if _, err := c.Processes(ctx); !errors.Is(err, ErrNotRunning) {
		t.Errorf("processes without a server: got %v, want ErrNotRunning", err)
	}
	if err := c.ShutDown(ctx); !errors.Is(err, ErrNotRunning) {
		t.Errorf("shutdown without a server: got %v, want ErrNotRunning", err)
	}
}
