//go:build unix

package stackconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRefusesACheckoutAnotherUserControls: FindLayout takes the nearest
// directory at or above the current one that holds go.mod and
// process-compose.yaml for the checkout, whose process-compose.yaml the
// launcher runs and whose stack.local.env it reads. Run from a directory
// below /tmp (an installed launcher, `nix run`), that was /tmp itself once
// any local user had put the two files there: their commands ran as this
// user (seen as root: `id` written by the planted process-compose.yaml), with
// their JWT_SECRET. A checkout that a user other than root and this one owns
// or may add a file to is now refused, naming it; this user's own, and one
// its user private group may write, are taken. Giving a file away needs
// root.
func TestRefusesACheckoutAnotherUserControls(t *testing.T) {
	const other = 65534
	tests := []struct {
		name    string
		root    bool                          // needs root (to give a file away)
		arrange func(t *testing.T, co string) // co: the checkout, made by this user, mode 0755
		want    []string                      // in the refusal; none: taken as the checkout
	}{
		{"this user's checkout", false, func(*testing.T, string) {}, nil},
		{"writable by this user's group", false, func(t *testing.T, co string) {
			if err := os.Chown(co, -1, os.Getegid()); err != nil {
				t.Fatal(err)
			}
			mkChmod(t, co, 0o775)
		}, nil},
		{"writable by every user", false, func(t *testing.T, co string) { mkChmod(t, co, 0o777) },
			[]string{"looks like a checkout", "is writable by every user (mode 0777)", "chmod go-w"}},
		{"sticky and writable by every user, as /tmp", false, func(t *testing.T, co string) { mkChmod(t, co, 0o777|os.ModeSticky) },
			[]string{"is writable by every user (mode 1777), where any of them may add a file"}},
		{"process-compose.yaml writable by every user", false, func(t *testing.T, co string) {
			mkChmod(t, filepath.Join(co, ComposeFileName), 0o666)
		}, []string{ComposeFileName + " is writable by every user (mode 0666)"}},
		{"owned by another user", true, func(t *testing.T, co string) { chown(t, co, other) },
			[]string{"is owned by uid 65534, neither root nor this user"}},
		{"go.mod of another user's", true, func(t *testing.T, co string) { chown(t, filepath.Join(co, "go.mod"), other) },
			[]string{"go.mod is owned by uid 65534"}},
		{"process-compose.yaml of another user's", true, func(t *testing.T, co string) { chown(t, filepath.Join(co, ComposeFileName), other) },
			[]string{ComposeFileName + " is owned by uid 65534"}},
		{"haproxy.cfg of another user's", true, func(t *testing.T, co string) {
			writeFile(t, filepath.Join(co, HAProxyFileName), "global\n")
			chown(t, filepath.Join(co, HAProxyFileName), other)
		}, []string{HAProxyFileName + " is owned by uid 65534"}},
		{"the refusal says how to trust it", false, func(t *testing.T, co string) { mkChmod(t, co, 0o777) },
			[]string{"if you trust it, set STACK_TRUSTED_CHECKOUT=" + "<co>" + " in the environment"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && os.Geteuid() != 0 {
				t.Skip("needs root, to give a file to another user")
			}
			base := t.TempDir()
			co := filepath.Join(base, "shared")
			mkdir(t, co, 0o755)
			writeFile(t, filepath.Join(co, "go.mod"), "module x\n")
			writeFile(t, filepath.Join(co, ComposeFileName), "processes: {}\n")
			cwd := filepath.Join(co, "mine", "work") // the current directory, below it
			if err := os.MkdirAll(cwd, 0o755); err != nil {
				t.Fatal(err)
			}
			tt.arrange(t, co)
			for i := range tt.want {
				tt.want[i] = strings.ReplaceAll(tt.want[i], "<co>", co)
			}
			l, err := FindLayout(cwd, "", "", "")
			if len(tt.want) == 0 {
				if err != nil || l.Checkout != co {
					t.Fatalf("got %+v, %v; want the checkout %s", l, err, co)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %+v, nil; want a refusal containing %q", l, tt.want)
			}
			for _, w := range append([]string{co}, tt.want...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "sticky") && strings.Contains(err.Error(), "chmod") {
				t.Errorf("got %q, which advises chmod on a shared directory", err)
			}
		})
	}
}

// TestRefusesSettingsAnotherUserControls: outside a checkout (an installed
// launcher) stack.local.env is read from the current directory, /tmp say,
// where any user may create one with their JWT_SECRET, REDIS_URL or
// STACK_STATE_DIR. Load refuses a settings file that a user other than root
// and this one owns or may write, naming it.
func TestRefusesSettingsAnotherUserControls(t *testing.T) {
	const other = 65534
	share := Layout{ConfigDir: t.TempDir(), How: "installed"}
	tests := []struct {
		name    string
		root    bool
		mode    os.FileMode
		owner   int // -1: this user
		wantErr string
	}{
		{"this user's, 0644", false, 0o644, -1, ""},
		{"this user's, 0600", false, 0o600, -1, ""},
		{"writable by every user", false, 0o666, -1, "is writable by every user (mode 0666)"},
		{"another user's", true, 0o644, other, "is owned by uid 65534, neither root nor this user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && os.Geteuid() != 0 {
				t.Skip("needs root, to give a file to another user")
			}
			cwd := shortTempDir(t, "cwd-") // the state dir's sockets go below it
			local := share.LocalFile(cwd)
			writeFile(t, local, "JWT_SECRET=theirs-0123456789abcdef0123456789abcdef\n")
			mkChmod(t, local, tt.mode)
			if tt.owner != -1 {
				chown(t, local, tt.owner)
			}
			cfg, err := Load(share, cwd, []string{"HOME=" + cwd})
			if tt.wantErr == "" {
				if err != nil || cfg.JWTSecret == "" {
					t.Fatalf("got JWT_SECRET %q, %v; want the file's", cfg.JWTSecret, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), local) {
				t.Fatalf("got JWT_SECRET %q, %v; want a refusal naming %s and containing %q", cfg.JWTSecret, err, local, tt.wantErr)
			}
			if strings.Contains(err.Error(), "theirs-0123") {
				t.Errorf("the refusal quotes the file: %q", err)
			}
		})
	}
}

func mkChmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// TestTakesTheCheckoutSTACK_TRUSTED_CHECKOUTNames: as git's safe.directory,
// STACK_TRUSTED_CHECKOUT names a checkout to take although another user
// owns it or may change it (root in a container, on a checkout mounted from
// a user's, was refused with no way round but to run as that user), with its
// settings files. It names one checkout: another one is still refused.
func TestTakesTheCheckoutSTACK_TRUSTED_CHECKOUTNames(t *testing.T) {
	const other = 65534
	tests := []struct {
		name    string
		root    bool
		arrange func(t *testing.T, co string)
		trusted func(co string) string // STACK_TRUSTED_CHECKOUT's value
		want    string                 // in the refusal; "": taken, trusted
	}{
		{"writable by every user, named", false, func(t *testing.T, co string) { mkChmod(t, co, 0o777) },
			func(co string) string { return co }, ""},
		{"named through a symlink", false, func(t *testing.T, co string) { mkChmod(t, co, 0o777) },
			func(co string) string {
				link := filepath.Join(filepath.Dir(co), "link")
				if err := os.Symlink(co, link); err != nil {
					t.Fatal(err)
				}
				return link
			}, ""},
		{"another checkout named", false, func(t *testing.T, co string) { mkChmod(t, co, 0o777) },
			func(co string) string { return filepath.Dir(co) }, "is writable by every user (mode 0777)"},
		{"owned by another user, with its stack.local.env, named", true, func(t *testing.T, co string) {
			writeFile(t, filepath.Join(co, LocalFileName), "PLATFORM_PORT=18181\n")
			chown(t, filepath.Join(co, LocalFileName), other)
			chown(t, co, other)
		}, func(co string) string { return co }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && os.Geteuid() != 0 {
				t.Skip("needs root, to give a file to another user")
			}
			base := shortTempDir(t, "tc-") // the state dir's sockets go below it
			co := filepath.Join(base, "mounted")
			mkdir(t, co, 0o755)
			writeFile(t, filepath.Join(co, "go.mod"), "module x\n")
			writeFile(t, filepath.Join(co, ComposeFileName), "processes: {}\n")
			tt.arrange(t, co)
			l, err := FindLayout(co, "", "", tt.trusted(co))
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("got %+v, %v; want a refusal containing %q", l, err, tt.want)
				}
				return
			}
			if err != nil || l.Checkout != co || !l.Trusted {
				t.Fatalf("got %+v, %v; want the checkout %s, trusted", l, err, co)
			}
			cfg, err := Load(l, co, []string{"HOME=" + co})
			if err != nil {
				t.Fatalf("Load: got %v, want the trusted checkout's settings taken", err)
			}
			if tt.root && cfg.PlatformPort != 18181 {
				t.Errorf("PLATFORM_PORT: got %d, want 18181 from the checkout's stack.local.env", cfg.PlatformPort)
			}
		})
	}
}
