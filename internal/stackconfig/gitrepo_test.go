package stackconfig

import (
	"os"
	"path/filepath"
	"testing"
)

// TestInGitRepository: a checkout is in git when it, or a directory above
// it, holds .git, whether a directory (a clone) or a file (a `git worktree`
// or a submodule, whose .git names the real one). Nix takes a flake there as
// the files git tracks, so the default state dir is .stack in the checkout
// (resolveStateDir) and its secret is not copied into the store; taken for a
// checkout outside git, a worktree got the per-user state dir and an
// archive's warnings.
func TestInGitRepository(t *testing.T) {
	tests := []struct {
		name string
		make func(t *testing.T, root string) string // returns the checkout
		want bool
	}{
		{"a clone: .git a directory", func(t *testing.T, root string) string {
			mkdir(t, filepath.Join(root, ".git"), 0o700)
			return root
		}, true},
		{"a git worktree: .git a file", func(t *testing.T, root string) string {
			writeFile(t, filepath.Join(root, ".git"), "gitdir: /elsewhere/.git/worktrees/wt\n")
			return root
		}, true},
		{"a subdirectory of a clone", func(t *testing.T, root string) string {
			mkdir(t, filepath.Join(root, ".git"), 0o700)
			mkdir(t, filepath.Join(root, "platform"), 0o700)
			sub := filepath.Join(root, "platform", "x")
			mkdir(t, sub, 0o700)
			return sub
		}, true},
		{"a subdirectory of a worktree", func(t *testing.T, root string) string {
			writeFile(t, filepath.Join(root, ".git"), "gitdir: /elsewhere/.git/worktrees/wt\n")
			sub := filepath.Join(root, "platform")
			mkdir(t, sub, 0o700)
			return sub
		}, true},
		{"no .git anywhere", func(t *testing.T, root string) string { return root }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// t.TempDir's parents may hold no .git: the checks above them
			// would otherwise decide the answer.
			if InGitRepository(t.TempDir()) {
				t.Skip("the temporary directory is inside a git repository")
			}
			dir := tt.make(t, t.TempDir())
			if got := InGitRepository(dir); got != tt.want {
				t.Errorf("InGitRepository(%s): got %v, want %v", dir, got, tt.want)
			}
		})
	}
}

// TestLoadStateDirInAGitWorktree: a checkout made by `git worktree add`
// (its .git a file) is a git checkout: its state dir is .stack in it.
func TestLoadStateDirInAGitWorktree(t *testing.T) {
	l := checkout(t, "")
	if err := os.Remove(filepath.Join(l.Checkout, ".git")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(l.Checkout, ".git"), "gitdir: /elsewhere/.git/worktrees/wt\n")
	cfg, err := Load(l, l.Checkout, []string{"HOME=/home/u"})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(l.Checkout, ".stack"); cfg.StateDir != want {
		t.Errorf("state dir: got %q, want %q", cfg.StateDir, want)
	}
}
