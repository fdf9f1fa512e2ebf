//go:build unix

package stackconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRefusesAStateDirOthersCanMove: a directory above the state dir that
// another user may write (not sticky), or owns, lets them move the state
// dir away and put theirs in its place, between runs or while the stack
// runs; up, as root, would then use their socket and logs, and down would
// signal what their pid file names. PrepareStateDir refuses it, naming
// STACK_STATE_DIR and the directory, before creating anything; a sticky
// directory (/tmp) and this user's own are fine. A directory refused for its
// mode has the refusal say how to mend it in place (chmod go-w): pointing
// STACK_STATE_DIR elsewhere leaves a stack already running from there
// running, as `down` would then look elsewhere. Giving a directory away
// needs root.
func TestRefusesAStateDirOthersCanMove(t *testing.T) {
	const other = 65534
	type layout struct {
		stateDir string // the STACK_STATE_DIR to prepare
		culprit  string // the directory the refusal names; "" for none
		owned    bool   // refused for its owner, not its mode: no chmod mends it
	}
	tests := []struct {
		name     string
		root     bool // needs root (to give a directory away)
		make     func(t *testing.T, base string) layout
		mustMiss string // a directory the refusal must not have created
	}{
		{"under this user's directories", false, func(t *testing.T, base string) layout {
			return layout{stateDir: filepath.Join(base, "mine", "st")}
		}, ""},
		{"in a sticky directory writable by all", false, func(t *testing.T, base string) layout {
			mkdir(t, filepath.Join(base, "tmp"), 0o777|os.ModeSticky)
			return layout{stateDir: filepath.Join(base, "tmp", "st")}
		}, ""},
		{"in a directory writable by all", false, func(t *testing.T, base string) layout {
			mkdir(t, filepath.Join(base, "shared"), 0o777)
			return layout{filepath.Join(base, "shared", "st"), filepath.Join(base, "shared"), false}
		}, ""},
		{"two levels below a directory writable by all", false, func(t *testing.T, base string) layout {
			mkdir(t, filepath.Join(base, "shared"), 0o777)
			mkdir(t, filepath.Join(base, "shared", "mine"), 0o700)
			return layout{filepath.Join(base, "shared", "mine", "st"), filepath.Join(base, "shared"), false}
		}, ""},
		{"below a directory writable by all, not created yet", false, func(t *testing.T, base string) layout {
			mkdir(t, filepath.Join(base, "shared"), 0o777)
			return layout{filepath.Join(base, "shared", "new", "st"), filepath.Join(base, "shared"), false}
		}, "shared/new"},
		{"through a symlink into a directory writable by all", false, func(t *testing.T, base string) layout {
			mkdir(t, filepath.Join(base, "shared"), 0o777)
			mkdir(t, filepath.Join(base, "shared", "mine"), 0o700)
			symlink(t, filepath.Join(base, "shared", "mine"), filepath.Join(base, "link"))
			return layout{filepath.Join(base, "link", "st"), filepath.Join(base, "shared"), false}
		}, ""},
		{"a symlink to a state dir in a directory writable by all", false, func(t *testing.T, base string) layout {
			mkdir(t, filepath.Join(base, "shared"), 0o777)
			mkdir(t, filepath.Join(base, "shared", "st"), 0o700)
			symlink(t, filepath.Join(base, "shared", "st"), filepath.Join(base, "st"))
			return layout{filepath.Join(base, "st"), filepath.Join(base, "shared"), false}
		}, ""},
		{"a symlink to it through a link in a directory writable by all", false, func(t *testing.T, base string) layout {
			// st -> shared/hop -> mine/st: whoever replaces hop moves st.
			mkdir(t, filepath.Join(base, "shared"), 0o777)
			mkdir(t, filepath.Join(base, "mine"), 0o700)
			mkdir(t, filepath.Join(base, "mine", "st"), 0o700)
			symlink(t, filepath.Join(base, "mine", "st"), filepath.Join(base, "shared", "hop"))
			symlink(t, filepath.Join(base, "shared", "hop"), filepath.Join(base, "st"))
			return layout{filepath.Join(base, "st"), filepath.Join(base, "shared"), false}
		}, ""},
		{"below relative symlinks through a directory writable by all", false, func(t *testing.T, base string) layout {
			// link -> shared/hop -> ../mine, both relative.
			mkdir(t, filepath.Join(base, "shared"), 0o777)
			mkdir(t, filepath.Join(base, "mine"), 0o700)
			symlink(t, "../mine", filepath.Join(base, "shared", "hop"))
			symlink(t, "shared/hop", filepath.Join(base, "link"))
			return layout{filepath.Join(base, "link", "st"), filepath.Join(base, "shared"), false}
		}, ""},
		{"below relative symlinks of this user's only", false, func(t *testing.T, base string) layout {
			mkdir(t, filepath.Join(base, "mine"), 0o700)
			mkdir(t, filepath.Join(base, "mine", "sub"), 0o700)
			symlink(t, "../mine/sub", filepath.Join(base, "mine", "hop"))
			symlink(t, "mine/hop/..", filepath.Join(base, "link"))
			return layout{stateDir: filepath.Join(base, "link", "st")}
		}, ""},
		{"in another user's directory", true, func(t *testing.T, base string) layout {
			mkdir(t, filepath.Join(base, "theirs"), 0o755)
			chown(t, filepath.Join(base, "theirs"), other)
			return layout{filepath.Join(base, "theirs", "st"), filepath.Join(base, "theirs"), true}
		}, ""},
		{"in another user's sticky directory", true, func(t *testing.T, base string) layout {
			mkdir(t, filepath.Join(base, "theirs"), 0o777|os.ModeSticky)
			chown(t, filepath.Join(base, "theirs"), other)
			return layout{filepath.Join(base, "theirs", "st"), filepath.Join(base, "theirs"), true}
		}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root && os.Geteuid() != 0 {
				t.Skip("needs root, to give a directory to another user")
			}
			base := t.TempDir()
			l := tc.make(t, base)
			c := Config{StateDir: l.stateDir}
			err := c.PrepareStateDir()
			if l.culprit == "" {
				if err != nil {
					t.Fatalf("PrepareStateDir: %v; want it accepted", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "STACK_STATE_DIR") || !strings.Contains(err.Error(), "above it "+l.culprit+" ") {
				t.Fatalf("PrepareStateDir: got %v, want a refusal naming STACK_STATE_DIR and %s", err, l.culprit)
			}
			if fix := "chmod go-w " + l.culprit; strings.Contains(err.Error(), fix) == l.owned {
				t.Errorf("PrepareStateDir: got %v; want %q in it: %v", err, fix, !l.owned)
			}
			if tc.mustMiss != "" {
				if _, err := os.Lstat(filepath.Join(base, tc.mustMiss)); !os.IsNotExist(err) {
					t.Errorf("%s after the refusal: %v; want it not created", tc.mustMiss, err)
				}
			}
		})
	}
}

func mkdir(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func chown(t *testing.T, path string, uid int) {
	t.Helper()
	if err := os.Chown(path, uid, uid); err != nil {
		t.Fatal(err)
	}
}
