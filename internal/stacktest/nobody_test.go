package stacktest

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
)

// recorder is the test it wraps, except that a Fatal or Skip is recorded
// instead of carried out, and ends only the goroutine, as it would.
type recorder struct {
	testing.TB
	fatal, skipped string
}

func (r *recorder) Fatal(args ...any) { r.fatal = fmt.Sprint(args...); runtime.Goexit() }
func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *recorder) Skip(args ...any) { r.skipped = fmt.Sprint(args...); runtime.Goexit() }
func (r *recorder) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// rerun calls RerunAsNobody for t through a recorder.
func rerun(t *testing.T, dir string, env []string) (*recorder, string) {
	r := &recorder{TB: t}
	var out string
	done := make(chan struct{})
	go func() {
		defer close(done)
		out = RerunAsNobody(r, dir, env)
	}()
	<-done
	return r, out
}

// TestRerunAsNobody: a run as nobody that passes gives its output; one that
// ran and failed fails the test (until 2026-12-07 it skipped it, under
// CI=true too, so a failure as nobody went unseen); one that cannot be
// started (here: in a directory nobody may not enter) skips it, under
// CI=true too (the Nix build's sandbox is such a place).
func TestRerunAsNobody(t *testing.T) {
	if AsNobody() {
		if os.Getenv("CHILD") == "fail" {
			t.Fatal("failed as nobody")
		}
		fmt.Printf("as uid %d gid %d\n", os.Geteuid(), os.Getegid())
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run a test as nobody")
	}
	r, out := rerun(t, "", []string{"CHILD=pass"})
	if r.skipped != "" && r.fatal == "" {
		// The Nix build's sandbox: its temporary directory is closed to
		// other users, so no run as nobody can start.
		t.Skipf("no run as nobody can start here: %s", r.skipped)
	}
	if r.fatal != "" || r.skipped != "" || !strings.Contains(out, "as uid 65534 gid 65534\n") {
		t.Errorf("a run that passes: fatal %q, skipped %q, output:\n%s", r.fatal, r.skipped, out)
	}
	r, _ = rerun(t, "", []string{"CHILD=fail"})
	if !strings.Contains(r.fatal, "failed as nobody") || r.skipped != "" {
		t.Errorf("a run that failed: fatal %q, skipped %q; want it failed, with the run's output", r.fatal, r.skipped)
	}
	closed := t.TempDir() // mode 0700, root's
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		r, _ = rerun(t, closed, nil)
		if r.fatal != "" || !strings.Contains(r.skipped, "cannot run "+t.Name()+" as nobody") {
			t.Errorf("CI=%q, a run that cannot start: fatal %q, skipped %q; want it skipped", ci, r.fatal, r.skipped)
		}
	}
}
