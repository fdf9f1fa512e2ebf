package stackconfig

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ShareDirName is the directory under <prefix>/share where an installed
// launcher (the Nix package) finds process-compose.yaml, haproxy.cfg and
// stack.env: <prefix>/bin/stack uses <prefix>/share/acme-platform.
const ShareDirName = "acme-platform"

// Layout says where the stack's committed files are.
type Layout struct {
	// ConfigDir holds process-compose.yaml, haproxy.cfg and stack.env.
	ConfigDir string
	// Checkout is the repository root when the launcher runs inside a
	// checkout, else "": where it builds missing binaries from, and where
	// .stack/ and stack.local.env go. Without STACK_SHARE_DIR it is also
	// ConfigDir (so edits to the files apply at once).
	Checkout string
	// How says how ConfigDir was found, for --help and error messages.
	How string
	// Trusted: Checkout is the one STACK_TRUSTED_CHECKOUT names, taken,
	// with its settings files, whoever owns them or may change them
	// (trustCheckout).
	Trusted bool
}

// ComposeFile is the process-compose.yaml the stack runs.
func (l Layout) ComposeFile() string { return filepath.Join(l.ConfigDir, ComposeFileName) }

// HAProxyFile is the haproxy.cfg the router loads.
func (l Layout) HAProxyFile() string { return filepath.Join(l.ConfigDir, HAProxyFileName) }

// HAProxyErrors is the directory of the router's JSON errorfiles, which
// haproxy.cfg names relative to itself.
func (l Layout) HAProxyErrors() string { return filepath.Join(l.ConfigDir, HAProxyErrorsDir) }

// DefaultsFile is the committed stack.env.
func (l Layout) DefaultsFile() string { return filepath.Join(l.ConfigDir, DefaultsFileName) }

// LocalFile is the untracked stack.local.env: at the checkout's root, or in
// cwd when there is no checkout.
func (l Layout) LocalFile(cwd string) string {
	if l.Checkout != "" {
		return filepath.Join(l.Checkout, LocalFileName)
	}
	return filepath.Join(cwd, LocalFileName)
}

// FindLayout looks for the stack's files, first match wins: shareDir (the
// STACK_SHARE_DIR variable) when set; the nearest directory at or above cwd
// holding both go.mod and process-compose.yaml (a checkout); then
// <dir of exe>/../share/acme-platform (an installed package). trusted (the
// STACK_TRUSTED_CHECKOUT variable, from the environment only) names a
// checkout to take although another user owns it or may change it.
func FindLayout(cwd, exe, shareDir, trusted string) (Layout, error) {
	checkout, isTrusted, err := findCheckout(cwd, trusted)
	if err != nil {
		return Layout{}, err
	}
	if shareDir != "" && !filepath.IsAbs(shareDir) {
		// The processes run in the state dir: every path they get is absolute.
		shareDir = filepath.Join(cwd, shareDir)
	}
	if shareDir != "" {
		if missing := missingConfig(shareDir); missing != "" {
			return Layout{}, fmt.Errorf("STACK_SHARE_DIR=%s has no %s", shareDir, missing)
		}
		return Layout{ConfigDir: shareDir, Checkout: checkout, How: "STACK_SHARE_DIR", Trusted: isTrusted}, nil
	}
	if checkout != "" {
		return Layout{ConfigDir: checkout, Checkout: checkout, How: "checkout", Trusted: isTrusted}, nil
	}
	if exe != "" {
		if resolved, err := filepath.EvalSymlinks(exe); err == nil {
			exe = resolved
		}
		share := filepath.Join(filepath.Dir(filepath.Dir(exe)), "share", ShareDirName)
		if isFile(filepath.Join(share, ComposeFileName)) {
			if missing := missingConfig(share); missing != "" {
				return Layout{}, fmt.Errorf("the installed stack files in %s are incomplete: no %s", share, missing)
			}
			return Layout{ConfigDir: share, How: "installed"}, nil
		}
	}
	return Layout{}, fmt.Errorf("no %s found: run inside a checkout of the platform (a directory with go.mod and %s), "+
		"or set STACK_SHARE_DIR to a directory holding %s, %s and %s/ (and %s, if its defaults are to differ from the built-in ones)",
		ComposeFileName, ComposeFileName, ComposeFileName, HAProxyFileName, HAProxyErrorsDir, DefaultsFileName)
}

// ProcessComposeBuild lists the files of checkout that process-compose is
// built from where it is not on PATH: the script that builds it first
// (tools/build-process-compose), then the pin (tools/go.mod, tools/go.sum) and
// the edits of its source that the script applies, as the flake does
// (nix/process-compose-without-swagger-ui.sh and
// nix/process-compose-logs-survive-a-full-disk.sh). The launcher rebuilds when
// one is newer than its build; the tests key their cached build by them.
func ProcessComposeBuild(checkout string) []string {
	return []string{
		filepath.Join(checkout, "tools", "build-process-compose"),
		filepath.Join(checkout, "tools", "go.mod"),
		filepath.Join(checkout, "tools", "go.sum"),
		filepath.Join(checkout, "nix", "process-compose-without-swagger-ui.sh"),
		filepath.Join(checkout, "nix", "process-compose-logs-survive-a-full-disk.sh"),
	}
}

// InGitRepository reports whether dir, or a directory above it, holds .git.
// Nix takes a flake there as the files git tracks; elsewhere (an unpacked
// archive, say) as `path:`, and it copies the whole directory into the
// world-readable store, whatever a state dir inside it holds.
func InGitRepository(dir string) bool {
	for {
		if _, err := os.Lstat(filepath.Join(dir, ".git")); err == nil {
			return true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return false
		}
		dir = parent
	}
}

// findCheckout is the nearest directory at or above cwd holding both go.mod
// and process-compose.yaml, or "", and whether it is trusted, the one
// trusted names.
func findCheckout(cwd, trusted string) (string, bool, error) {
	for dir := cwd; ; {
		if isFile(filepath.Join(dir, "go.mod")) && isFile(filepath.Join(dir, ComposeFileName)) {
			if sameDir(dir, trusted) {
				return dir, true, nil
			}
			return dir, false, trustCheckout(dir)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false, nil
		}
		dir = parent
	}
}

// sameDir reports whether trusted names dir ("" names none).
func sameDir(dir, trusted string) bool {
	if trusted == "" {
		return false
	}
	a, errA := os.Stat(dir)
	b, errB := os.Stat(trusted)
	return errA == nil && errB == nil && os.SameFile(a, b)
}

// trustCheckout refuses a checkout found at or above the current directory
// that a user other than root and this one could have put there or can
// change (checkChangers): the directory, or its go.mod, process-compose.yaml
// or haproxy.cfg. The launcher runs the commands of its
// process-compose.yaml, builds its code and takes its settings
// (stack.local.env: JWT_SECRET, REDIS_URL, ...), so another user's
// directory above the current one (/tmp, where anyone may create go.mod and
// process-compose.yaml) would run as this user, as git's search for .git
// did before its safe.directory check (CVE-2022-24765). As git's
// safe.directory, STACK_TRUSTED_CHECKOUT in the environment names one to
// take all the same (findCheckout): root in a container, say, on a checkout
// mounted from a user's.
func trustCheckout(dir string) error {
	for _, p := range []string{dir, filepath.Join(dir, "go.mod"), filepath.Join(dir, ComposeFileName), filepath.Join(dir, HAProxyFileName)} {
		fi, err := os.Stat(p) // a symlink is judged by where it leads (the current directory may be named through one)
		if errors.Is(err, fs.ErrNotExist) && p != dir {
			continue
		}
		if err == nil {
			err = checkChangers(p, fi)
		}
		if err != nil {
			mend := ""
			if errors.As(err, new(modeError)) {
				mend = fmt.Sprintf(", make it writable by its owner only (chmod go-w %s)", p)
			}
			return &UntrustedCheckoutError{Dir: dir, err: fmt.Errorf("%s looks like a checkout of the platform (go.mod and %s), but %w: the launcher would run its commands and take its settings from a directory another user controls; run the launcher from a directory outside it%s, or, if you trust it, set STACK_TRUSTED_CHECKOUT=%s in the environment", dir, ComposeFileName, err, mend, dir)}
		}
	}
	return nil
}

// UntrustedCheckoutError is FindLayout's refusal of a checkout that another
// user controls (trustCheckout), which a caller that can do without a
// checkout must not take for "no checkout here".
type UntrustedCheckoutError struct {
	Dir string // the checkout refused
	err error
}

func (e *UntrustedCheckoutError) Error() string { return e.err.Error() }
func (e *UntrustedCheckoutError) Unwrap() error { return e.err }

// missingConfig names what a directory of the stack's files lacks of
// process-compose.yaml, haproxy.cfg and haproxy-errors/ ("" for nothing):
// without them the stack would start and then fail, process by process.
// stack.env may be missing: its defaults are built in.
func missingConfig(dir string) string {
	var missing []string
	for _, f := range []string{ComposeFileName, HAProxyFileName} {
		if !isFile(filepath.Join(dir, f)) {
			missing = append(missing, f)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, HAProxyErrorsDir)); err != nil || !st.IsDir() {
		missing = append(missing, HAProxyErrorsDir+"/")
	}
	return strings.Join(missing, ", ")
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}
