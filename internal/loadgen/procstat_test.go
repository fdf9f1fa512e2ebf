package loadgen

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/acme-payments/platform/internal/loadgen/fakerouter"
)

func TestCPUSnapshot(t *testing.T) {
	startBusyChild(t)
	a, err := takeCPUSnapshot(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// The kernel counts CPU in clock ticks, and on a loaded machine a busy
	// child may get none for a while: look again until it has some, within
	// a bound, rather than after one fixed sleep (300 ms saw 0 under load).
	var u *CPUUsage
	for deadline := time.Now().Add(10 * time.Second); ; {
		time.Sleep(100 * time.Millisecond)
		b, err := takeCPUSnapshot(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if u = usage(a, b); u.Processes["sh"] > 0 || time.Now().After(deadline) {
			break
		}
	}
	if u.Processes["sh"] <= 0 {
		t.Errorf("busy child: got %v CPU-s in 10 s, want > 0 (%+v)", u.Processes["sh"], u)
	}
	if u.MachineAvailable <= 0 || u.MachineBusy < u.Processes["sh"]-0.02 {
		t.Errorf("machine: got busy %v of %v, want at least the child's %v", u.MachineBusy, u.MachineAvailable, u.Processes["sh"])
	}
	if _, err := takeCPUSnapshot(1 << 30); err == nil {
		t.Errorf("no such process: got nil error")
	}
}

func TestRunWatchPID(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	_, cfg := startFakeRouter(t, fakerouter.Options{})
	cfg.Count = 50
	cfg.WatchPID = os.Getpid()
	rep := runLoad(t, context.Background(), cfg)
	if rep.CPU == nil || len(rep.CPU.Processes) == 0 {
		t.Errorf("got CPU %+v, want the test process", rep.CPU)
	}

	// A pid that does not exist fails before the load, not after it.
	f, cfg := startFakeRouter(t, fakerouter.Options{})
	cfg.Count = 50
	cfg.WatchPID = 1 << 30
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "--watch-pid") {
		t.Errorf("a pid that does not exist: got %v, want a --watch-pid error", err)
	}
	if n := f.TxRequests.Load(); n != 0 {
		t.Errorf("a pid that does not exist: %d transactions sent, want none", n)
	}
}

// A process of the tree that exits during the load (a restarted service's
// old instance, a readiness probe) used CPU in the load phase: it must count,
// not vanish from the stack's CPU into "other".
func TestCPUOfProcessExitedDuringTheLoad(t *testing.T) {
	busy := startBusyChild(t)
	self, child := os.Getpid(), busy.Process.Pid
	a, err := takeCPUSnapshot(self)
	if err != nil {
		t.Fatal(err)
	}
	// Wait (bounded) until the child has used CPU since a, then end it.
	var burned int64
	for deadline := time.Now().Add(10 * time.Second); burned <= 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		s, err := takeCPUSnapshot(self)
		if err != nil {
			t.Fatal(err)
		}
		burned = s.procs[child].ticks - a.procs[child].ticks
	}
	if burned <= 0 {
		t.Skip("the busy child got no CPU tick in 10 s")
	}
	_ = busy.Process.Kill()
	_ = busy.Wait()
	b, err := takeCPUSnapshot(self)
	if err != nil {
		t.Fatal(err)
	}
	u := usage(a, b)
	var others float64
	for name, s := range u.Processes {
		if name != a.procs[self].name {
			others += s
		}
	}
	if want := float64(burned) / userHZ; others < want {
		t.Errorf("the child that exited: got %v CPU-s outside the test process (%v), want at least the %v it was seen to use", others, u.Processes, want)
	}
}

// startBusyChild starts a child that spins until the test ends, for the
// CPU readings of /proc (the test skips elsewhere).
func startBusyChild(t *testing.T) *exec.Cmd {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	busy := exec.Command("sh", "-c", "while :; do :; done")
	if err := busy.Start(); err != nil {
		t.Skipf("no sh: %v", err)
	}
	t.Cleanup(func() { _ = busy.Process.Kill(); _ = busy.Wait() })
	return busy
}
