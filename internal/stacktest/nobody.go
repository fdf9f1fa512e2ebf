package stacktest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// asNobodyVar is set to 1 in the environment of a test run again as nobody.
const asNobodyVar = "STACK_TEST_AS_NOBODY"

// AsNobody reports whether this test binary is the run RerunAsNobody made.
func AsNobody() bool { return os.Getenv(asNobodyVar) == "1" }

// ShortTempDir makes a directory under the system's temp dir whose name
// starts with prefix, removed when tb ends: unlike t.TempDir(), whose name
// holds the test's, short enough for the unix sockets of a state dir below
// it (about 100 bytes at most).
func ShortTempDir(tb testing.TB, prefix string) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// OpenTempDir makes a directory under the system's temp dir (not
// t.TempDir(), whose parents other users may not enter), mode 0755 so that
// another user can enter it, removed when tb ends.
func OpenTempDir(tb testing.TB, prefix string) string {
	tb.Helper()
	dir := ShortTempDir(tb, prefix)
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// RerunAsNobody runs the calling test again, alone, as the user nobody
// (uid and gid 65534), in dir (a temporary directory when ""), with
// AsNobody true and env, and returns its output. The test binary is copied
// where nobody may run it. Only root can do this: a test that needs another
// user's view calls it when os.Geteuid() is 0, and looks for itself
// otherwise. When the run cannot be started it skips tb, under CI=true too:
// that is the machine's doing, not the code's (the Nix build's sandbox
// keeps its temporary directory from other users, so the copy cannot be
// run there; failing there, as from ea5a054 on, failed the flake check). A
// run that started and failed (a non-zero exit) fails tb with its output:
// until 2026-12-07 that was a skip too, so a run as nobody that failed
// passed unseen.
func RerunAsNobody(tb testing.TB, dir string, env []string) string {
	tb.Helper()
	bin := OpenTempDir(tb, "test-nobody-")
	exe := filepath.Join(bin, filepath.Base(os.Args[0]))
	b, err := os.ReadFile(os.Args[0])
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		tb.Fatal(err)
	}
	if dir == "" {
		dir = bin
	}
	cmd := exec.Command(exe, "-test.run=^"+tb.Name()+"$", "-test.count=1", "-test.v")
	cmd.Dir = dir
	cmd.Env = append([]string{asNobodyVar + "=1", "PATH=" + os.Getenv("PATH"), "HOME=" + dir}, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		tb.Fatalf("%s, run again as nobody, failed (%v):\n%s", tb.Name(), err, out)
	case err != nil:
		tb.Skipf("cannot run %s as nobody here (a sandbox, or a temporary directory nobody may not enter): %v", tb.Name(), err)
	}
	return string(out)
}
