package stackconfig

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acme-payments/platform/internal/txqueue"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// shortTempDir is a new directory in os.TempDir() whose name starts with
// prefix, removed when the test ends: short, unlike t.TempDir(), whose name
// holds the test's, where the state dir's unix sockets must fit.
func shortTempDir(t *testing.T, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// environMap is cfg.Environ(nil) as a map.
func environMap(cfg Config) map[string]string {
	got := map[string]string{}
	for _, kv := range cfg.Environ(nil) {
		k, v, _ := strings.Cut(kv, "=")
		got[k] = v
	}
	return got
}

// checkout makes a directory that FindLayout takes for a checkout. Not
// t.TempDir(): the default state dir, and so its unix sockets, goes under the
// checkout, and t.TempDir() can be too long for a socket path (`nix develop`
// sets TMPDIR=/tmp/nix-shell.XXXXXX; macOS's TMPDIR is long too).
func checkout(t *testing.T, stackEnv string) Layout {
	t.Helper()
	root := shortTempDir(t, "co-")
	writeFile(t, filepath.Join(root, "go.mod"), "module x\n")
	writeFile(t, filepath.Join(root, ComposeFileName), "processes: {}\n")
	// A git checkout, as a clone is (its state dir defaults to .stack in it).
	if err := os.Mkdir(filepath.Join(root, ".git"), 0o700); err != nil {
		t.Fatal(err)
	}
	if stackEnv != "" {
		writeFile(t, filepath.Join(root, DefaultsFileName), stackEnv)
	}
	return Layout{ConfigDir: root, Checkout: root, How: "checkout"}
}

func TestParseEnvFile(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr string
	}{
		{"plain", "A=1\nB=two\n", map[string]string{"A": "1", "B": "two"}, ""},
		{"comments and blanks", "# c\n\n  A=1\n#B=2\n", map[string]string{"A": "1"}, ""},
		{"empty value", "A=\n", map[string]string{"A": ""}, ""},
		{"export prefix", "export A=1\n", map[string]string{"A": "1"}, ""},
		{"double quotes kept literally", `A="x # y"` + "\n", map[string]string{"A": "x # y"}, ""},
		{"single quotes", "A='$HOME'\n", map[string]string{"A": "$HOME"}, ""},
		{"inline comment", "A=1 # one\n", map[string]string{"A": "1"}, ""},
		{"comment after a quoted value", "A='warn'   # c\nB=\"127.0.0.1\"  # local\n", map[string]string{"A": "warn", "B": "127.0.0.1"}, ""},
		{"empty quotes", "A=''\n", map[string]string{"A": ""}, ""},
		{"no closing quote", "A=\"x\n", nil, "f:1: A: no closing \""},
		{"text after the closing quote", "A='x' y\n", nil, "f:1: A: text after the closing '"},
		{"hash inside a value", "A=a#b\n", map[string]string{"A": "a#b"}, ""},
		{"value with equals", "A=b=c\n", map[string]string{"A": "b=c"}, ""},
		{"later line wins", "A=1\nA=2\n", map[string]string{"A": "2"}, ""},
		{"no equals", "A\n", nil, "f:1"},
		{"bad key", "1A=1\n", nil, "f:1"},
		{"bad key later", "A=1\nB C=2\n", nil, "f:2"},
		{"a line over 64 KiB", "A=1\nB=" + strings.Repeat("x", 70000) + "\n", nil, "f:2: a line longer than 65536 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEnvFile(strings.NewReader(tt.in), "f")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLoadMergesDefaultsLocalAndEnvironment(t *testing.T) {
	l := checkout(t, "PLATFORM_PORT=8080\nCORE_API_PORT=5002\nAUTH_API_PORT=5001\nLOG_LEVEL=info\nEXTRA=from-defaults\n")
	writeFile(t, filepath.Join(l.Checkout, LocalFileName), "CORE_API_PORT=6002\nAUTH_API_PORT=6001\n")
	environ := []string{"AUTH_API_PORT=7001", "LOG_LEVEL=debug"}

	cfg, err := Load(l, l.Checkout, environ)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key, wantValue, wantSource string
	}{
		{"PLATFORM_PORT", "8080", l.DefaultsFile()},
		{"CORE_API_PORT", "6002", l.LocalFile(l.Checkout)},
		{"AUTH_API_PORT", "7001", "environment"},
		{"LOG_LEVEL", "debug", "environment"},
		{"EXTRA", "from-defaults", l.DefaultsFile()},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if got := cfg.Values[tt.key]; got != tt.wantValue {
				t.Errorf("value: got %q, want %q", got, tt.wantValue)
			}
			if got := cfg.Sources[tt.key]; got != tt.wantSource {
				t.Errorf("source: got %q, want %q", got, tt.wantSource)
			}
		})
	}
	if cfg.PlatformPort != 8080 || cfg.CoreAPIPort != 6002 || cfg.AuthAPIPort != 7001 || cfg.LogLevel != "debug" {
		t.Errorf("parsed: got %+v, want ports 8080/6002/7001 and debug", cfg)
	}
	if want := filepath.Join(l.Checkout, ".stack"); cfg.StateDir != want {
		t.Errorf("state dir: got %q, want %q", cfg.StateDir, want)
	}
	if want := "unix://" + filepath.Join(l.Checkout, ".stack", "redis", "redis.sock"); cfg.RedisURL != want {
		t.Errorf("REDIS_URL: got %q, want %q", cfg.RedisURL, want)
	}
}

func TestLoadStateDir(t *testing.T) {
	cwd := t.TempDir()
	share := Layout{ConfigDir: t.TempDir(), How: "installed"}
	co := checkout(t, "")
	// An unpacked archive of the repository: Nix would copy a .stack in it
	// into the store, so the default is the per-user one.
	archive := checkout(t, "")
	if err := os.Remove(filepath.Join(archive.Checkout, ".git")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		layout  Layout
		environ []string
		want    string
	}{
		{"checkout default", co, nil, filepath.Join(co.Checkout, ".stack")},
		{"checkout default, HOME set", co, []string{"HOME=/home/u"}, filepath.Join(co.Checkout, ".stack")},
		{"checkout outside git", archive, []string{"HOME=/home/u"}, "/home/u/.local/state/acme-platform"},
		{"checkout outside git, with XDG_STATE_HOME", archive, []string{"HOME=/home/u", "XDG_STATE_HOME=/xdg"}, "/xdg/acme-platform"},
		{"checkout outside git, no HOME", archive, nil, filepath.Join(cwd, ".stack")},
		{"installed, no HOME", share, nil, filepath.Join(cwd, ".stack")},
		{"installed default", share, []string{"HOME=/home/u"}, "/home/u/.local/state/acme-platform"},
		{"installed with XDG_STATE_HOME", share, []string{"HOME=/home/u", "XDG_STATE_HOME=/xdg"}, "/xdg/acme-platform"},
		{"explicit absolute", co, []string{"STACK_STATE_DIR=/srv/st"}, "/srv/st"},
		{"explicit relative to cwd", share, []string{"STACK_STATE_DIR=st"}, filepath.Join(cwd, "st")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Load(tt.layout, cwd, tt.environ)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.StateDir != tt.want {
				t.Errorf("got %q, want %q", cfg.StateDir, tt.want)
			}
		})
	}
}

// TestLoadWarnsOfAStateDirLeftInACheckoutOutsideGit: before RELIABILITY.md
// D82 a checkout outside git kept its state in .stack; its Redis may hold
// transactions not yet processed, or its stack still run, so the launcher
// names it rather than start afresh elsewhere without a word.
func TestLoadWarnsOfAStateDirLeftInACheckoutOutsideGit(t *testing.T) {
	tests := []struct {
		name    string
		git     bool
		marker  bool // .stack/.stack-state, as up makes it
		environ []string
		warn    bool
	}{
		{"outside git, an earlier stack's state", false, true, []string{"HOME=/home/u"}, true},
		{"outside git, a .stack that is no state dir", false, false, []string{"HOME=/home/u"}, false},
		{"outside git, STACK_STATE_DIR set", false, true, []string{"HOME=/home/u", "STACK_STATE_DIR=/srv/st"}, false},
		{"a git checkout", true, true, []string{"HOME=/home/u"}, false},
		// With neither HOME nor XDG_STATE_HOME, and run from the checkout,
		// the default is that same .stack: the state dir in use, not an
		// earlier stack's to retire.
		{"outside git, no HOME: .stack is the state dir still", false, true, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := checkout(t, "")
			if !tt.git {
				if err := os.Remove(filepath.Join(l.Checkout, ".git")); err != nil {
					t.Fatal(err)
				}
			}
			left := filepath.Join(l.Checkout, ".stack")
			if err := os.Mkdir(left, 0o700); err != nil {
				t.Fatal(err)
			}
			if tt.marker {
				writeFile(t, filepath.Join(left, ".stack-state"), "")
			}
			cfg, err := Load(l, l.Checkout, tt.environ)
			if err != nil {
				t.Fatal(err)
			}
			warned := slices.ContainsFunc(cfg.Warnings, func(w string) bool {
				return strings.Contains(w, left+" holds an earlier stack's state") && strings.Contains(w, "STACK_STATE_DIR="+left)
			})
			if warned != tt.warn {
				t.Errorf("warned: got %v, want %v (warnings %q)", warned, tt.warn, cfg.Warnings)
			}
		})
	}
}

func TestLoadRelativePathsFromTheFileThatSetsThem(t *testing.T) {
	l := checkout(t, "")
	sub := filepath.Join(l.Checkout, "services", "x")
	writeFile(t, l.LocalFile(l.Checkout), "STACK_STATE_DIR=run/state\nUSERS_FILE=testdata/users.json\n")
	tests := []struct {
		name          string
		environ       []string
		wantState     string
		wantUsersFile string
	}{
		{"from stack.local.env: the checkout's root", nil,
			filepath.Join(l.Checkout, "run", "state"), filepath.Join(l.Checkout, "testdata", "users.json")},
		{"from the environment: the current directory", []string{"STACK_STATE_DIR=st", "USERS_FILE=u.json"},
			filepath.Join(sub, "st"), filepath.Join(sub, "u.json")},
		{"absolute: as it is", []string{"USERS_FILE=/etc/users.json"},
			filepath.Join(l.Checkout, "run", "state"), "/etc/users.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Load(l, sub, tt.environ)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.StateDir != tt.wantState {
				t.Errorf("state dir: got %s, want %s", cfg.StateDir, tt.wantState)
			}
			if got := cfg.Values["USERS_FILE"]; got != tt.wantUsersFile {
				t.Errorf("USERS_FILE: got %s, want %s", got, tt.wantUsersFile)
			}
		})
	}
}

func TestLoadErrorsNameTheVariable(t *testing.T) {
	l := checkout(t, "")
	tests := []struct {
		name    string
		environ []string
		want    string
	}{
		{"port not a number", []string{"PLATFORM_PORT=eighty"}, `PLATFORM_PORT must be a whole number, got "eighty"`},
		{"port out of range", []string{"CORE_API_PORT=70000"}, "CORE_API_PORT must be a port number"},
		{"ports collide", []string{"AUTH_API_PORT=5002"}, "AUTH_API_PORT and CORE_API_PORT are both 5002"},
		{"rate limit", []string{"AUTH_RATE_LIMIT=0"}, "AUTH_RATE_LIMIT must be at least 1"},
		{"host not an address", []string{"PLATFORM_HOST=999.1.1.1"}, `PLATFORM_HOST must be an IPv4 address such as 127.0.0.1 (0.0.0.0 exposes the platform), got "999.1.1.1"`},
		{"host with a space", []string{"PLATFORM_HOST=127.0.0.1 "}, "PLATFORM_HOST must be an IPv4 address"},
		{"host IPv6", []string{"PLATFORM_HOST=::1"}, "PLATFORM_HOST must be an IPv4 address"},
		{"fsync", []string{"REDIS_APPENDFSYNC=sometimes"}, "REDIS_APPENDFSYNC must be always, everysec or no"},
		{"maxmemory not a size", []string{"REDIS_MAXMEMORY=lots"}, `REDIS_MAXMEMORY must be auto, 0 (no limit) or a size such as 4gb or 512mb, got "lots"`},
		{"maxmemory too small", []string{"REDIS_MAXMEMORY=100kb"}, `REDIS_MAXMEMORY must be auto, 0 (no limit) or at least 1mb, got "100kb"`},
		{"maxmemory quoted as given", []string{"REDIS_MAXMEMORY=Half"}, `REDIS_MAXMEMORY must be auto, 0 (no limit) or a size such as 4gb or 512mb, got "Half"`},
		{"access log", []string{"HAPROXY_ACCESS_LOG=some"}, "HAPROXY_ACCESS_LOG must be all or errors"},
		{"log level", []string{"LOG_LEVEL=loud"}, "LOG_LEVEL must be debug, info, warn or error"},
		{"grace not a duration", []string{"SHUTDOWN_GRACE=soon"}, `SHUTDOWN_GRACE must be a duration such as 10s, got "soon"`},
		{"hang timeout too short", []string{"RESTART_HUNG_AFTER=1s"}, "RESTART_HUNG_AFTER must be 0 (never restart a hung process) or a duration from 3s to 1h"},
		{"hang timeout within the drain", []string{"RESTART_HUNG_AFTER=20s", "SHUTDOWN_GRACE=30s"}, "RESTART_HUNG_AFTER (20s) must be longer than SHUTDOWN_GRACE (30s), or 0"},
		{"state dir with a quote", []string{`STACK_STATE_DIR=/tmp/it's`}, "STACK_STATE_DIR"},
		{"state dir too long", []string{"STACK_STATE_DIR=/" + strings.Repeat("d", 120)}, "STACK_STATE_DIR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(l, l.Checkout, tt.environ)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestLoadNamesEveryBadSetting: one run names every bad setting, not the
// first only, so that a user mends them all at once (it named one per run;
// LOG_LEVEL's is found only once the ports parse).
func TestLoadNamesEveryBadSetting(t *testing.T) {
	l := checkout(t, "")
	bad := []string{"PLATFORM_PORT=abc", "LOG_LEVEL=loud", "SHUTDOWN_GRACE=soon", "STACK_STATE_DIR=/tmp/it's"}
	_, err := Load(l, l.Checkout, bad)
	if err == nil {
		t.Fatalf("Load(%v): no error", bad)
	}
	for _, setting := range bad {
		if name, _, _ := strings.Cut(setting, "="); !strings.Contains(err.Error(), name) {
			t.Errorf("Load(%v): the error does not name %s:\n%v", bad, name, err)
		}
	}
}

func TestReadEnvFileNamesAnUnreadableFileOnce(t *testing.T) {
	dir := t.TempDir()
	_, err := ReadEnvFile(dir, true)
	if err == nil || strings.Count(err.Error(), dir) != 1 {
		t.Errorf("reading a directory as an env file: got %v, want an error naming %s once", err, dir)
	}
}

// TestStackEnvMatchesDefaults keeps the committed stack.env and the
// launcher's built-in defaults in step: every setting is listed, with the
// same default.
func TestStackEnvMatchesDefaults(t *testing.T) {
	committed, err := ReadEnvFile(filepath.Join("..", "..", DefaultsFileName), false)
	if err != nil {
		t.Fatal(err)
	}
	typ := reflect.TypeOf(Config{})
	for i := range typ.NumField() {
		f := typ.Field(i)
		key := f.Tag.Get("env")
		if key == "" || key == "-" || key == "JWT_SECRET" {
			continue
		}
		t.Run(key, func(t *testing.T) {
			got, ok := committed[key]
			if !ok {
				t.Fatalf("stack.env does not list %s", key)
			}
			if want := f.Tag.Get("envDefault"); got != want {
				t.Errorf("stack.env: got %s=%q, want the launcher's default %q", key, got, want)
			}
		})
	}
	if v, ok := committed["JWT_SECRET"]; ok {
		t.Errorf("stack.env: got JWT_SECRET=%q, want no secret in a committed file", v)
	}
}

func TestEnvironGivesEveryProcessItsSettings(t *testing.T) {
	l := checkout(t, "") // no stack.env at all: built-in defaults
	// An empty value means the default, as in stack.env.
	cfg, err := Load(l, l.Checkout, []string{"HOME=/h", "SHUTDOWN_GRACE=3s", "PLATFORM_HOST="})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range cfg.Environ(map[string]string{"JWT_SECRET": "s", "HOME": "/other"}) {
		k, v, _ := strings.Cut(kv, "=")
		got[k] = v
	}
	want := map[string]string{
		"PLATFORM_PORT": "8080", "HAPROXY_STATS_PORT": "8404", "AUTH_API_PORT": "5001", "CORE_API_PORT": "5002",
		"PSP_CONNECTOR_PORT": "5003", "PLATFORM_HOST": "127.0.0.1", "AUTH_RATE_LIMIT": "20",
		"REDIS_APPENDFSYNC": "always", "HAPROXY_ACCESS_LOG": "all", "LOG_LEVEL": "info", "SHUTDOWN_GRACE": "3s",
		"RESTART_HUNG_AFTER": "15s", "STACK_STATE_DIR": cfg.StateDir,
		"REDIS_URL": cfg.RedisURL, "JWT_SECRET": "s", "HOME": "/other",
		"AUTH_API_SOCKET": filepath.Join(cfg.StateDir, "run", "auth-api.sock"),
		"CORE_API_SOCKET": filepath.Join(cfg.StateDir, "run", "core-api.sock"),
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %q, want %q", k, got[k], v)
		}
	}
	if cfg.ServiceStopTimeout() != 8 {
		t.Errorf("service stop timeout for a 3s grace: got %d, want 8", cfg.ServiceStopTimeout())
	}
	if cfg.ShutdownGrace != 3*time.Second {
		t.Errorf("grace: got %s, want 3s", cfg.ShutdownGrace)
	}
}

// TestEmptyValueMeansStackEnvsDefault: an empty value in stack.local.env or
// the environment means the default, stack.env's. For a service setting
// stack.env sets (STATUS_TTL=1h), the services' own default (168h) is not
// it: an empty STATUS_TTL gave every process "", and the services kept their
// records a week.
func TestEmptyValueMeansStackEnvsDefault(t *testing.T) {
	tests := []struct {
		name, local string
		environ     []string
		want        map[string]string // Environ's value of each key
	}{
		{"empty in stack.local.env", "STATUS_TTL=\nPLATFORM_PORT=\n", nil,
			map[string]string{"STATUS_TTL": "1h", "PLATFORM_PORT": "9080"}},
		{"empty in the environment", "", []string{"STATUS_TTL=", "PLATFORM_PORT="},
			map[string]string{"STATUS_TTL": "1h", "PLATFORM_PORT": "9080"}},
		{"empty in the environment over stack.local.env", "STATUS_TTL=2h\n", []string{"STATUS_TTL="},
			map[string]string{"STATUS_TTL": "1h"}},
		{"set in the environment", "STATUS_TTL=2h\n", []string{"STATUS_TTL=3h"},
			map[string]string{"STATUS_TTL": "3h"}},
		{"empty where stack.env sets nothing", "VISIBILITY_TIMEOUT=\n", []string{"CLAIM_INTERVAL="},
			map[string]string{"VISIBILITY_TIMEOUT": "", "CLAIM_INTERVAL": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := checkout(t, "STATUS_TTL=1h\nPLATFORM_PORT=9080\nSTACK_STATE_DIR=\n")
			if tt.local != "" {
				writeFile(t, filepath.Join(l.Checkout, LocalFileName), tt.local)
			}
			cfg, err := Load(l, l.Checkout, tt.environ)
			if err != nil {
				t.Fatal(err)
			}
			got := environMap(cfg)
			for k, want := range tt.want {
				if got[k] != want {
					t.Errorf("%s: got %q, want %q", k, got[k], want)
				}
			}
		})
	}
}

// TestEnvironSetsEveryComposeVariable: every ${VAR} of the committed
// process-compose.yaml gets a value without stack.env (a STACK_SHARE_DIR
// may leave it out), from Environ or from the launcher itself. process-compose
// expands an unset one to nothing: RESTART_HUNG_AFTER, missing from Environ,
// gave the watchdog `--after ""`, and it failed at every start.
func TestEnvironSetsEveryComposeVariable(t *testing.T) {
	compose, err := os.ReadFile(filepath.Join("..", "..", ComposeFileName))
	if err != nil {
		t.Fatal(err)
	}
	l := checkout(t, "") // no stack.env
	cfg, err := Load(l, l.Checkout, []string{"HOME=/h"})
	if err != nil {
		t.Fatal(err)
	}
	got := environMap(cfg)
	vars := regexp.MustCompile(`\$\{([A-Z0-9_]+)\}`).FindAllStringSubmatch(string(compose), -1)
	if len(vars) == 0 {
		t.Fatalf("no ${VAR} in %s", ComposeFileName)
	}
	for _, m := range vars {
		name := m[1]
		if why := ignoredInFiles[name]; strings.HasPrefix(why, "the launcher sets it") {
			continue // up sets it for process-compose
		}
		if got[name] == "" {
			t.Errorf("%s uses ${%s}, which Environ leaves empty without stack.env", ComposeFileName, name)
		}
	}
}

func TestFindLayout(t *testing.T) {
	co := checkout(t, "")
	sub := filepath.Join(co.Checkout, "services", "x")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	prefix := t.TempDir()
	share := filepath.Join(prefix, "share", ShareDirName)
	writeFile(t, filepath.Join(share, ComposeFileName), "processes: {}\n")
	writeFile(t, filepath.Join(share, HAProxyFileName), "global\n")
	writeFile(t, filepath.Join(share, HAProxyErrorsDir, "503.http"), "")
	exe := filepath.Join(prefix, "bin", "stack")
	writeFile(t, exe, "")
	nowhere := t.TempDir()
	// A share dir with process-compose.yaml only, installed and not.
	partialPrefix := t.TempDir()
	partial := filepath.Join(partialPrefix, "share", ShareDirName)
	writeFile(t, filepath.Join(partial, ComposeFileName), "processes: {}\n")
	partialExe := filepath.Join(partialPrefix, "bin", "stack")
	writeFile(t, partialExe, "")

	tests := []struct {
		name, cwd, exe, shareEnv string
		wantDir, wantHow         string
		wantCheckout             string
		wantErr                  string
	}{
		{"checkout root", co.Checkout, exe, "", co.Checkout, "checkout", co.Checkout, ""},
		{"checkout subdirectory", sub, exe, "", co.Checkout, "checkout", co.Checkout, ""},
		{"installed share dir", nowhere, exe, "", share, "installed", "", ""},
		{"STACK_SHARE_DIR wins, the checkout still builds", sub, exe, share, share, "STACK_SHARE_DIR", co.Checkout, ""},
		{"STACK_SHARE_DIR outside a checkout", nowhere, exe, share, share, "STACK_SHARE_DIR", "", ""},
		{"STACK_SHARE_DIR relative: from the current directory", filepath.Dir(share), exe, ShareDirName, share, "STACK_SHARE_DIR", "", ""},
		{"nothing found", nowhere, filepath.Join(nowhere, "stack"), "", "", "", "", "no process-compose.yaml found"},
		{"STACK_SHARE_DIR without the files", co.Checkout, exe, nowhere, "", "", "", "has no process-compose.yaml, haproxy.cfg, haproxy-errors/"},
		{"STACK_SHARE_DIR without haproxy.cfg", co.Checkout, exe, partial, "", "", "", "has no haproxy.cfg, haproxy-errors/"},
		{"installed files incomplete", nowhere, partialExe, "", "", "", "", "incomplete: no haproxy.cfg, haproxy-errors/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := FindLayout(tt.cwd, tt.exe, tt.shareEnv, "")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %+v, %v; want an error containing %q", l, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.ConfigDir != tt.wantDir || l.How != tt.wantHow || l.Checkout != tt.wantCheckout {
				t.Errorf("got %s (%s, checkout %q), want %s (%s, checkout %q)", l.ConfigDir, l.How, l.Checkout, tt.wantDir, tt.wantHow, tt.wantCheckout)
			}
		})
	}
}

// TestDefaultRedisURLLeadsToTheSocket: the REDIS_URL the launcher gives the
// services when none is set must bring the services' own parser
// (txqueue.ParseURL, go-redis's) to the stack's Redis socket, whatever
// characters the state dir's path holds that a URL treats specially.
func TestDefaultRedisURLLeadsToTheSocket(t *testing.T) {
	share := Layout{ConfigDir: t.TempDir(), How: "installed"}
	for _, dir := range []string{"/srv/st", "/srv/my stack", "/srv/stack#2", "/srv/100%", "/srv/what?", "/srv/a%2fb"} {
		t.Run(dir, func(t *testing.T) {
			cfg, err := Load(share, t.TempDir(), []string{"STACK_STATE_DIR=" + dir})
			if err != nil {
				t.Fatal(err)
			}
			opts, err := txqueue.ParseURL(cfg.RedisURL)
			if err != nil {
				t.Fatalf("REDIS_URL %q: %v", cfg.RedisURL, err)
			}
			if opts.Network != "unix" || opts.Addr != cfg.RedisSocket() {
				t.Errorf("REDIS_URL %q leads to %s %s, want unix %s", cfg.RedisURL, opts.Network, opts.Addr, cfg.RedisSocket())
			}
		})
	}
}

// TestProcessComposeBuild: the files that process-compose is built from
// without Nix are this checkout's, the script that builds it first. A renamed
// one would leave the launcher naming a script that is not there, or never
// rebuilding after an edit.
func TestProcessComposeBuild(t *testing.T) {
	checkout, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	inputs := ProcessComposeBuild(checkout)
	if got, want := filepath.Base(inputs[0]), "build-process-compose"; got != want {
		t.Errorf("the script: got %s, want %s", got, want)
	}
	for _, f := range inputs {
		if !isFile(f) {
			t.Errorf("%s: not a file of this checkout", f)
		}
	}
}

// TestParseEnvFileErrorsDoNotQuoteValues: a malformed line may hold the JWT
// secret, and the error goes to a terminal or a CI log (RELIABILITY.md D55).
// Before, "JWT_SECRET <value>" and "JWT_SECRET='<value>'<more>" were quoted back.
func TestParseEnvFileErrorsDoNotQuoteValues(t *testing.T) {
	const secret = "s3cr3t-0123456789abcdef"
	for _, line := range []string{
		"JWT_SECRET " + secret,
		"JWT_SECRET: " + secret,
		"JWT_SECRET='x'" + secret,
		`JWT_SECRET="x" ` + secret,
		"JWT SECRET=" + secret,
		secret[:6] + " " + secret[6:] + "=x",
	} {
		_, err := ParseEnvFile(strings.NewReader("A=1\n"+line+"\n"), "f")
		if err == nil {
			t.Errorf("%q: parsed, want an error", line)
			continue
		}
		if !strings.HasPrefix(err.Error(), "f:2:") {
			t.Errorf("%q: got %v, want an error naming line 2", line, err)
		}
		for i := 0; i+6 <= len(secret); i++ {
			if strings.Contains(err.Error(), secret[i:i+6]) {
				t.Errorf("%q: the error quotes part of the value: %v", line, err)
				break
			}
		}
	}
}

// TestRedisMaxMemory: REDIS_MAXMEMORY reaches Redis (process-compose.yaml's
// --maxmemory) in bytes: auto as half of the memory the stack may use
// (TestAutoRedisMaxMemoryHeedsTheCgroupLimit), or no limit
// (0) where that cannot be read; a size in Redis's units as it reads them.
func TestRedisMaxMemory(t *testing.T) {
	tests := []struct {
		value    string
		physical int64
		want     int64
	}{
		{"auto", 24 << 30, 12 << 30},
		{"auto", 0, 0},         // no /proc/meminfo: no limit
		{"", 8 << 30, 4 << 30}, // empty: the default, auto
		{"0", 8 << 30, 0},
		{"4gb", 8 << 30, 4 << 30},
		{"4GB", 8 << 30, 4 << 30},
		{"512mb", 8 << 30, 512 << 20},
		{"2g", 8 << 30, 2e9},
		{"1048576", 8 << 30, 1 << 20},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q with %d bytes", tt.value, tt.physical), func(t *testing.T) {
			saved := physicalMemory
			physicalMemory = func() int64 { return tt.physical }
			t.Cleanup(func() { physicalMemory = saved })
			cfg, err := Load(checkout(t, ""), "", []string{"REDIS_MAXMEMORY=" + tt.value})
			if err != nil {
				t.Fatal(err)
			}
			if cfg.RedisMaxMemoryBytes != tt.want {
				t.Errorf("RedisMaxMemoryBytes: got %d, want %d", cfg.RedisMaxMemoryBytes, tt.want)
			}
			if want := fmt.Sprintf("REDIS_MAXMEMORY=%d", tt.want); !slices.Contains(cfg.Environ(nil), want) {
				t.Errorf("Environ: no %s", want)
			}
		})
	}
	if n := physicalMemory(); runtime.GOOS == "linux" && n <= 0 {
		t.Errorf("physicalMemory on Linux: got %d, want MemTotal from /proc/meminfo", n)
	}
}
