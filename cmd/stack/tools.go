package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/acme-payments/platform/internal/stackconfig"
)

// binaries are the programs the stack runs, by name, as absolute paths.
type binaries map[string]string

// installHints says how to get each external tool.
var installHints = map[string]string{
	"redis-server":    "`nix develop` (or `nix run .#stack`); Debian/Ubuntu: `sudo apt-get install redis-server`; macOS: `brew install redis`",
	"haproxy":         "`nix develop` (or `nix run .#stack`); Debian/Ubuntu: `sudo apt-get install haproxy`; macOS: `brew install haproxy`",
	"process-compose": "`nix develop` (or `nix run .#stack`); with Go and a checkout the launcher builds it (tools/build-process-compose); or `brew install f1bonacc1/tap/process-compose`",
}

// findBinaries locates every program the stack needs. redis-server and
// haproxy must be on PATH; process-compose and the services are taken from
// PATH, else built from the checkout into the state dir's bin/. Every
// missing tool is reported at once, each with how to get it.
func (l *launcher) findBinaries(ctx context.Context) (binaries, error) {
	bins := binaries{}
	var missing []string
	for _, name := range []string{"redis-server", "haproxy"} {
		if p, err := lookPath(l.environ, name); err == nil {
			bins[name] = p
		} else {
			missing = append(missing, fmt.Sprintf("%s is not on PATH; get it with %s", name, installHints[name]))
		}
	}

	goBin, _ := lookPath(l.environ, "go")
	canBuild := l.layout.Checkout != "" && goBin != ""

	// The one built into bin/ is rebuilt when tools/go.mod or go.sum moved
	// the pin since, or when either script that builds it changed.
	built := filepath.Join(l.cfg.BinDir(), "process-compose")
	pcInputs := stackconfig.ProcessComposeBuild(l.layout.Checkout)
	if p, err := lookPath(l.environ, "process-compose"); err == nil {
		bins["process-compose"] = p
	} else if isExecutable(built) && (!canBuild || !newerThan(built, pcInputs...)) {
		bins["process-compose"] = built
	} else if canBuild && isFile(pcInputs[0]) && len(missing) > 0 {
		// Not a minute's build for a start that fails anyway.
		missing = append(missing, "process-compose is not on PATH: the launcher builds it from the checkout (tools/build-process-compose, about a minute) once the tools above are there; or get it with `nix develop` or `brew install f1bonacc1/tap/process-compose`")
	} else if canBuild && isFile(pcInputs[0]) {
		fmt.Fprintf(l.stderr, "stack: process-compose is not on PATH; building the version pinned in tools/go.mod into %s (tools/build-process-compose)\n", l.rel(l.cfg.BinDir()))
		if err := l.buildProcessCompose(ctx, pcInputs[0], built); err != nil {
			missing = append(missing, fmt.Sprintf("process-compose is not on PATH and building it failed: %v; get it with %s", err, installHints["process-compose"]))
		} else {
			bins["process-compose"] = built
		}
	} else {
		missing = append(missing, fmt.Sprintf("process-compose is not on PATH; get it with %s", installHints["process-compose"]))
	}

	var toBuild []string
	for _, name := range serviceNames {
		if p, err := lookPath(l.environ, name); err == nil {
			bins[name] = p
			continue
		}
		if !canBuild {
			why := "there is no checkout to build it from; run `nix run .#stack`, or run the launcher inside a checkout with Go installed"
			if l.layout.Checkout != "" {
				why = "go is not on PATH to build it from the checkout; install Go 1.24 or newer, or use `nix develop` or `nix run .#stack`"
			}
			missing = append(missing, fmt.Sprintf("%s is not on PATH and %s", name, why))
			continue
		}
		out := filepath.Join(l.cfg.BinDir(), name)
		bins[name] = out
		if stale, err := l.serviceStale(name, out); err != nil || stale {
			toBuild = append(toBuild, name)
		}
	}
	if len(toBuild) > 0 && len(missing) == 0 {
		// With an empty Go build cache this is the longest step of a first
		// up (1m16s on a 2-core machine): say so before it starts.
		fmt.Fprintf(l.stderr, "stack: building %s from the checkout into %s (about a minute the first time, seconds once Go's build cache has them)\n", strings.Join(toBuild, ", "), l.rel(l.cfg.BinDir()))
		pkgs := make([]string, len(toBuild))
		for i, name := range toBuild {
			pkgs[i] = "./services/" + name
		}
		if err := l.goBuild(ctx, goBin, l.layout.Checkout, l.cfg.BinDir()+string(filepath.Separator), pkgs...); err != nil {
			return nil, fmt.Errorf("build services: %w", err)
		}
	}
	if len(missing) > 0 {
		return nil, errors.New("missing tools:\n  - " + strings.Join(missing, "\n  - "))
	}
	return bins, nil
}

// buildWaitDelay bounds the wait for a build's output once the build is
// stopped (Ctrl-C): the compilers it started may live on a moment, holding
// the launcher's pipe open.
const buildWaitDelay = 2 * time.Second

// buildProcessCompose runs the checkout's tools/build-process-compose (script),
// which builds the pinned process-compose, as the flake does, into out.
func (l *launcher) buildProcessCompose(ctx context.Context, script, out string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	bash, err := lookPath(l.environ, "bash")
	if err != nil {
		return fmt.Errorf("%s needs bash: %w", script, err)
	}
	cmd := exec.CommandContext(ctx, bash, script, out)
	cmd.Env = staticBuildEnv(l.environ)
	cmd.Stdout = l.stderr
	cmd.Stderr = l.stderr
	cmd.WaitDelay = buildWaitDelay
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", script, out, err)
	}
	return nil
}

// newerThan reports whether any of files was modified after bin (a missing
// file is not newer; a missing bin is older than any file that exists).
func newerThan(bin string, files ...string) bool {
	var built time.Time
	if st, err := os.Stat(bin); err == nil {
		built = st.ModTime()
	}
	for _, f := range files {
		if st, err := os.Stat(f); err == nil && st.ModTime().After(built) {
			return true
		}
	}
	return false
}

// serviceStale reports whether bin is missing or older than any source file
// (Go, or a file it embeds such as internal/users/users.json: any file but
// tests, testdata/ and Markdown), go.mod, go.sum or vendor/modules.txt of the
// checkout that it is built from. Hand edits inside vendor/ are not looked
// for (go mod vendor rewrites modules.txt).
func (l *launcher) serviceStale(name, bin string) (bool, error) {
	st, err := os.Stat(bin)
	if err != nil {
		return true, nil
	}
	built := st.ModTime()
	root := l.layout.Checkout
	if newerThan(bin, filepath.Join(root, "go.mod"), filepath.Join(root, "go.sum"), filepath.Join(root, "vendor", "modules.txt")) {
		return true, nil
	}
	newer := errors.New("newer")
	for _, dir := range []string{filepath.Join("services", name), "internal"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "testdata" {
				return filepath.SkipDir
			}
			if !d.Type().IsRegular() || strings.HasSuffix(path, "_test.go") || strings.HasSuffix(path, ".md") {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			if info.ModTime().After(built) {
				return newer
			}
			return nil
		})
		if errors.Is(err, newer) {
			return true, nil
		}
		if err != nil {
			return true, err
		}
	}
	return false, nil
}

// goBuild runs `go build -o out pkgs...` in dir, with the build's output on
// stderr, and without cgo (staticBuildEnv).
func (l *launcher) goBuild(ctx context.Context, goBin, dir, out string, pkgs ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	args := append([]string{"build", "-o", out}, pkgs...)
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = dir
	cmd.Env = staticBuildEnv(l.environ)
	cmd.Stdout = l.stderr
	cmd.Stderr = l.stderr
	cmd.WaitDelay = buildWaitDelay
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s (in %s): %w", strings.Join(args, " "), dir, err)
	}
	return nil
}

// staticBuildEnv returns environ with CGO_ENABLED=0 added, unless environ sets
// CGO_ENABLED to something itself: the binaries the launcher builds are then
// statically linked, like the Nix package's (nix/packages.nix). None of them
// needs cgo, and on Linux a static Go binary starts with 1.7–3.6 ms less CPU (no
// dynamic loader, fewer page faults): a cold start starts each service, and
// process-compose, once (BENCHMARKS.md, cold start).
func staticBuildEnv(environ []string) []string {
	if lookupEnv(environ, "CGO_ENABLED") != "" {
		return environ
	}
	return append(slices.Clip(environ), "CGO_ENABLED=0")
}

// lookPath is exec.LookPath over the PATH of environ.
func lookPath(environ []string, name string) (string, error) {
	for _, dir := range filepath.SplitList(lookupEnv(environ, "PATH")) {
		if !filepath.IsAbs(dir) {
			// An empty or relative entry ("PATH=/usr/bin:", ".") would
			// run whatever the current directory holds under that name,
			// as the stack's Redis or HAProxy: skipped, as Go's own
			// exec.LookPath refuses it (exec.ErrDot).
			continue
		}
		p := filepath.Join(dir, name)
		if isExecutable(p) {
			return filepath.Abs(p)
		}
	}
	return "", fmt.Errorf("%s: %w", name, exec.ErrNotFound)
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// searchPath fills dir with one symlink per chosen binary, named as
// process-compose.yaml names the program, and nothing else, and returns a
// PATH that looks there first, then in orig. Each name then finds exactly
// the launcher's choice: the directories the binaries came from may hold
// other programs of the same names (the state dir's bin/ keeps a core-api
// built earlier even when core-api now comes from PATH), and putting those
// directories first ran the stale one.
func (b binaries) searchPath(dir, orig string) (string, error) {
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", err
	}
	for name, p := range b {
		if err := os.Symlink(p, filepath.Join(dir, name)); err != nil {
			return "", err
		}
	}
	if orig == "" {
		return dir, nil
	}
	return dir + string(filepath.ListSeparator) + orig, nil
}

// fromPath says, inside a checkout, which services the launcher takes from
// PATH rather than building them from the checkout, and where each is:
// after `nix profile install`, say, an edit of the checkout would not run.
func (l *launcher) fromPath(bins binaries) {
	if l.layout.Checkout == "" {
		return
	}
	var taken []string
	for _, name := range serviceNames {
		if p := bins[name]; p != "" && filepath.Dir(p) != l.cfg.BinDir() {
			taken = append(taken, fmt.Sprintf("%s (%s)", name, p))
		}
	}
	if len(taken) > 0 {
		fmt.Fprintf(l.stderr, "stack: services taken from PATH: %s\n", strings.Join(taken, ", "))
	}
}

// warnIfCopiedWhole warns when the checkout is not in a git repository (an
// unpacked archive, say) and holds a secret: Nix then takes the flake `.`
// as `path:.` and copies the whole directory into the world-readable store,
// a state dir inside it (its JWT secret) and a JWT_SECRET set in
// stack.local.env included. The default state dir is outside such a
// checkout (stackconfig.InGitRepository); one set inside it, or the
// fallback without HOME, is warned about.
func (l *launcher) warnIfCopiedWhole() {
	co := l.layout.Checkout
	if co == "" || stackconfig.InGitRepository(co) {
		return
	}
	var copied []string
	if strings.HasPrefix(l.cfg.StateDir, co+string(filepath.Separator)) {
		copied = append(copied, fmt.Sprintf("the state dir %s (the JWT secret)", l.rel(l.cfg.StateDir)))
	}
	if local := l.layout.LocalFile(co); l.cfg.Sources["JWT_SECRET"] == local {
		copied = append(copied, fmt.Sprintf("%s (its JWT_SECRET)", l.rel(local)))
	}
	if len(copied) == 0 {
		return
	}
	fmt.Fprintf(l.stderr, "stack: warning: %s is not a git checkout, so `nix run .`, `nix develop .` and `nix flake check .` there copy all of it into the world-readable Nix store, %s included; keep them outside it (STACK_STATE_DIR; JWT_SECRET in the environment), or use a git clone\n",
		co, strings.Join(copied, " and "))
}
