package servicetest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// mainEnv makes a service's test binary run the service's main instead of
// its tests (RunMainIfAsked), for what only a process can show: signals.
const mainEnv = "SERVICETEST_RUN_MAIN"

// RunMainIfAsked runs main and exits when the test binary was started as
// the service by CheckSecondSignalStopsAtOnce; a service's TestMain calls it
// before m.Run.
func RunMainIfAsked(main func()) {
	if os.Getenv(mainEnv) == "1" {
		main()
		os.Exit(0)
	}
}

// CheckSecondSignalStopsAtOnce runs the test binary as the service (its
// TestMain calls RunMainIfAsked) with HTTP_PORT=0, SHUTDOWN_GRACE=60s and
// environ, holds one POST to path in flight (its body never finishes), and
// sends SIGTERM: the service drains, waiting for that request. A second
// SIGTERM must then end the process at once, as a second Ctrl-C does, not
// after the drain (here the server's 15 s read timeout). The bounds only
// turn a hang into a failure.
func CheckSecondSignalStopsAtOnce(t *testing.T, path string, environ ...string) {
	t.Helper()
	out := &Buffer{}
	cmd := exec.Command(os.Args[0]) // no arguments: the services take none
	cmd.Env = append(append(os.Environ(), mainEnv+"=1", "HTTP_PORT=0", "SHUTDOWN_GRACE=60s"), environ...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		err := <-exited
		if t.Failed() {
			t.Logf("the service's output (it ended: %v):\n%s", err, out.String())
		}
	})
	conn, err := net.Dial("tcp", waitReady(t, os.Args[0], out, exited))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", path); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the handler is reading the body
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		t.Fatalf("the first SIGTERM ended it within 1 s (%v): no request held the drain, so this test shows nothing", err)
	case <-time.After(time.Second):
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
	case <-time.After(5 * time.Second):
		t.Fatal("still running 5 s after a second SIGTERM: it waits for the drain, as if the signal were not there")
	}
}
