// Package stackconfig is the local stack's configuration: where its files are
// (a checkout or an installed share directory), the merged settings (stack.env
// defaults, then stack.local.env, then the environment; later wins), the
// state directory, and the generated JWT secret.
package stackconfig

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v10"

	"github.com/acme-payments/platform/internal/envconfig"
)

// File names the launcher looks for.
const (
	ComposeFileName  = "process-compose.yaml"
	HAProxyFileName  = "haproxy.cfg"
	DefaultsFileName = "stack.env"
	LocalFileName    = "stack.local.env"
	// HAProxyErrorsDir holds the router's JSON errorfiles, next to
	// haproxy.cfg, which names them relative to itself (default-path config).
	HAProxyErrorsDir = "haproxy-errors"
)

// Config is the stack's validated configuration. Defaults in the struct tags
// equal stack.env's (a test keeps the two in step), so the launcher also
// works when stack.env is missing.
type Config struct {
	StateDir        string        `env:"STACK_STATE_DIR"`
	PlatformHost    string        `env:"PLATFORM_HOST" envDefault:"127.0.0.1"`
	PlatformPort    int           `env:"PLATFORM_PORT" envDefault:"8080"`
	StatsPort       int           `env:"HAPROXY_STATS_PORT" envDefault:"8404"`
	AuthAPIPort     int           `env:"AUTH_API_PORT" envDefault:"5001"`
	CoreAPIPort     int           `env:"CORE_API_PORT" envDefault:"5002"`
	ConnectorPort   int           `env:"PSP_CONNECTOR_PORT" envDefault:"5003"`
	AuthRateLimit   int           `env:"AUTH_RATE_LIMIT" envDefault:"20"`
	AccessLog       string        `env:"HAPROXY_ACCESS_LOG" envDefault:"all"`
	RedisURL        string        `env:"REDIS_URL"`
	RedisAppendSync string        `env:"REDIS_APPENDFSYNC" envDefault:"always"`
	RedisMaxMemory  string        `env:"REDIS_MAXMEMORY" envDefault:"auto"`
	LogLevel        string        `env:"LOG_LEVEL" envDefault:"info"`
	ShutdownGrace   time.Duration `env:"SHUTDOWN_GRACE" envDefault:"10s"`
	HangAfter       time.Duration `env:"RESTART_HUNG_AFTER" envDefault:"15s"`
	JWTSecret       string        `env:"JWT_SECRET"`

	// RedisMaxMemoryBytes is REDIS_MAXMEMORY in bytes, auto worked out
	// (half of the machine's memory or of its cgroup's limit, whichever is
	// less); 0: no limit.
	RedisMaxMemoryBytes int64 `env:"-"`

	// Values is every setting after merging (files, then environment).
	Values map[string]string `env:"-"`
	// Sources says where each key of Values came from: a file path or
	// FromEnvironment.
	Sources map[string]string `env:"-"`
	// Warnings are about keys in the files that nothing reads (a typo, say):
	// one line each, naming the file and the key.
	Warnings []string `env:"-"`
}

// FromEnvironment is the source of a setting that came from the environment.
const FromEnvironment = "environment"

// Port is one TCP port the stack binds, with the variable that moves it and
// the one that sets its address (none: always 127.0.0.1).
type Port struct {
	Var     string
	HostVar string
	Host    string
	Port    int
}

// Ports lists every TCP port the stack listens on (Redis has none: it
// listens on a unix socket only).
func (c Config) Ports() []Port {
	return []Port{
		{"PLATFORM_PORT", "PLATFORM_HOST", c.PlatformHost, c.PlatformPort},
		{"HAPROXY_STATS_PORT", "", "127.0.0.1", c.StatsPort},
		{"AUTH_API_PORT", "", "127.0.0.1", c.AuthAPIPort},
		{"CORE_API_PORT", "", "127.0.0.1", c.CoreAPIPort},
		{"PSP_CONNECTOR_PORT", "", "127.0.0.1", c.ConnectorPort},
	}
}

// Load merges the defaults file, the optional local file and environ (later
// wins), parses the result and resolves the state directory against cwd.
// A relative STACK_STATE_DIR (or USERS_FILE) is relative to the directory of
// the file that sets it, or to cwd when set in the environment (absPaths);
// an empty STACK_STATE_DIR defaults to <checkout>/.stack in a checkout in a
// git repository, else $XDG_STATE_HOME/acme-platform, else
// $HOME/.local/state/acme-platform (the XDG default), else <cwd>/.stack
// (resolveStateDir).
//
// A bad setting does not hide the others: the error names each one
// (loadPast), so that one run shows everything to mend.
func Load(l Layout, cwd string, environ []string) (Config, error) {
	cfg, skipped, err := loadPast(l, cwd, environ, "")
	if skipped == nil && err == nil {
		return cfg, nil
	}
	return Config{}, indented{errors.Join(skipped, err)}
}

// indented shows each line of its error after the first indented, under it
// (stack: PLATFORM_PORT must be ...\n  LOG_LEVEL must be ...).
type indented struct{ error }

func (e indented) Error() string { return strings.ReplaceAll(e.error.Error(), "\n", "\n  ") }
func (e indented) Unwrap() error { return e.error }

// LoadStateDir is Load for down and status, which need only the state dir:
// it leaves out every setting that does not parse or validate, at its
// default, so that a bad PLATFORM_PORT cannot keep a running stack from
// being stopped, or from being reported as running. It
// fails only when the state dir itself is at fault, or when an error names
// no setting it could leave out. skipped holds every error it went past.
func LoadStateDir(l Layout, cwd string, environ []string) (cfg Config, skipped, err error) {
	return loadPast(l, cwd, environ, "STACK_STATE_DIR")
}

// loadPast loads with every setting that does not parse or validate left at
// its default, round after round, and returns every error it went past
// (skipped). It fails (err) when an error names no setting it could leave
// out, or names keep, which must not be left out.
func loadPast(l Layout, cwd string, environ []string, keep string) (cfg Config, skipped, err error) {
	dropped := map[string]bool{}
	var errs []error
	for {
		cfg, err = load(l, cwd, environ, dropped)
		if err == nil {
			return cfg, errors.Join(errs...), nil
		}
		more := false
		for _, name := range envconfig.SettingsAtFault(err) {
			if name == keep {
				return Config{}, errors.Join(errs...), err
			}
			if !dropped[name] {
				dropped[name], more = true, true
			}
		}
		if !more { // each round drops a setting, so this ends
			return Config{}, errors.Join(errs...), err
		}
		errs = append(errs, err)
	}
}

// load is Load with the settings named in drop left at their defaults.
func load(l Layout, cwd string, environ []string, drop map[string]bool) (Config, error) {
	values := map[string]string{}
	sources := map[string]string{}
	// fileSources keeps the file that set each key even where the
	// environment then overrides it: a key a file sets in vain (PATH, always
	// in the environment, most of all) still gets its warning.
	fileSources := map[string]string{}
	// An empty value in stack.local.env or the environment means the
	// default: stack.env's value, where it has one. Passed on empty, a
	// service setting stack.env sets (STATUS_TTL=1h) fell back to the
	// services' own default (168h) instead (RELIABILITY.md D107). For the
	// launcher's own settings stack.env's values are its built-in defaults
	// (TestStackEnvMatchesDefaults), so nothing changes for them.
	defaults := map[string]string{}
	set := func(k, v, src string) {
		if d := defaults[k]; v == "" && d != "" {
			values[k], sources[k] = d, l.DefaultsFile()
			return
		}
		values[k], sources[k] = v, src
	}
	for i, f := range []struct {
		path     string
		optional bool
	}{{l.DefaultsFile(), true}, {l.LocalFile(cwd), true}} {
		// A trusted checkout's own files are taken whoever owns them.
		inTrusted := l.Trusted && filepath.Dir(f.path) == l.Checkout
		vals, err := readEnvFile(f.path, f.optional, !inTrusted)
		if err != nil {
			return Config{}, err
		}
		if i == 0 {
			defaults = vals
		}
		for k, v := range vals {
			set(k, v, f.path)
			fileSources[k] = f.path
		}
	}
	for k, v := range env.ToMap(environ) {
		set(k, v, FromEnvironment)
	}
	for k := range drop {
		delete(values, k)
		delete(sources, k)
		delete(fileSources, k)
	}
	absPaths(values, sources, cwd)

	var cfg Config
	if err := envconfig.ParseValues(values, &cfg); err != nil {
		return Config{}, origins{values, sources}.withSources(err)
	}
	cfg.Values, cfg.Sources = values, sources
	cfg.Warnings = unreadKeys(fileSources)
	cfg.resolveStateDir(l, cwd, values["XDG_STATE_HOME"], values["HOME"])
	if cfg.RedisURL == "" {
		cfg.RedisURL = UnixURL(cfg.RedisSocket())
	}
	return cfg, origins{values, sources}.withSources(cfg.validate())
}

// pathSettings are the settings that name a file or directory.
var pathSettings = []string{"STACK_STATE_DIR", "USERS_FILE"}

// absPaths makes each relative path setting absolute: from the directory of
// the file that sets it, or from cwd when it comes from the environment. The
// processes run in the state dir, where a relative path would mean
// something else.
func absPaths(values, sources map[string]string, cwd string) {
	for _, name := range pathSettings {
		v := values[name]
		if v == "" || filepath.IsAbs(v) {
			continue
		}
		base := cwd
		if src := sources[name]; src != FromEnvironment {
			base = filepath.Dir(src)
		}
		values[name] = filepath.Join(base, v)
	}
}

// origins are the merged settings and where each came from.
type origins struct{ values, sources map[string]string }

// withSources adds to err, an error about settings, where each setting at
// fault got its value, as in `PLATFORM_PORT must be a whole number, got "x"
// (PLATFORM_PORT is set in /src/stack.local.env)`; to each error of a joined
// one. A setting at its built-in default gets no note.
func (o origins) withSources(err error) error {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var errs []error
		for _, e := range joined.Unwrap() {
			errs = append(errs, o.withSources(e))
		}
		return errors.Join(errs...)
	}
	var notes []string
	for _, name := range envconfig.SettingsAtFault(err) {
		if note := o.sourceNote(name); note != "" {
			notes = append(notes, note)
		}
	}
	if len(notes) == 0 {
		return err
	}
	return fmt.Errorf("%w (%s)", err, strings.Join(notes, "; "))
}

// sourceNote says where setting name got its value: "NAME is set in
// <file>" ("" when it has none).
func (o origins) sourceNote(name string) string {
	if where := o.setIn(name); where != "" {
		return name + " is " + where
	}
	return ""
}

// SetIn says where setting name got its value: "set in <file>", "set in
// the environment", or "" at its built-in default (origins.setIn).
func (c Config) SetIn(name string) string { return origins{c.Values, c.Sources}.setIn(name) }

// StateDirNote is what an error about the state dir ends with: where
// STACK_STATE_DIR was set, as " (STACK_STATE_DIR is set in <file>)", or ""
// for the default state dir.
func (c Config) StateDirNote() string {
	if note := (origins{c.Values, c.Sources}).sourceNote("STACK_STATE_DIR"); note != "" {
		return " (" + note + ")"
	}
	return ""
}

// setIn is "set in <file>", "set in the environment", or "" for a setting
// at its built-in default: never set, or set empty (stack.env's
// `STACK_STATE_DIR=` means the default, and naming stack.env would send the
// reader to an empty line).
func (o origins) setIn(name string) string {
	if o.values[name] == "" {
		return ""
	}
	switch src := o.sources[name]; src {
	case "":
		return ""
	case FromEnvironment:
		return "set in the environment"
	default:
		return "set in " + src
	}
}

// settingName matches what could be a setting's name in a message.
var settingName = regexp.MustCompile(`\b[A-Z][A-Z0-9_]*[A-Z0-9]\b`)

// WhereSet says where each known setting that text, from process's log,
// names got its value, as in "VISIBILITY_TIMEOUT is set in
// /src/stack.local.env": for a service's error, which the service itself
// cannot know. A service's HTTP_PORT is the stack's port variable for it:
// "core-api's HTTP_PORT is CORE_API_PORT=5002, set in the environment".
func (c Config) WhereSet(process, text string) []string {
	known := knownSettings()
	o := origins{c.Values, c.Sources}
	var notes []string
	add := func(note string) {
		if note != "" && !slices.Contains(notes, note) {
			notes = append(notes, note)
		}
	}
	for _, name := range settingName.FindAllString(text, -1) {
		switch {
		case slices.Contains(known, name):
			add(o.sourceNote(name))
		case name == "HTTP_PORT":
			for _, p := range c.Ports() {
				if p.Var == servicePortVar(process) {
					where := o.setIn(p.Var)
					if where == "" {
						where = "its default"
					}
					add(fmt.Sprintf("%s's HTTP_PORT is %s=%d, %s", process, p.Var, p.Port, where))
				}
			}
		}
	}
	return notes
}

// servicePortVar is the variable that sets service's port, as
// process-compose.yaml passes it on as HTTP_PORT: AUTH_API_PORT for auth-api.
func servicePortVar(service string) string {
	return strings.ToUpper(strings.ReplaceAll(service, "-", "_")) + "_PORT"
}

// resolveStateDir sets the default state dir: .stack in a checkout that is
// in a git repository (git ignores it, and Nix copies only what git
// tracks). Elsewhere it is one per user, not one per working directory:
// `stack down` run from another directory than `stack up` must find the
// stack. That includes a checkout outside git (an unpacked archive), which
// Nix copies whole into the world-readable store, a .stack in it (its JWT
// secret) included (InGitRepository).
func (c *Config) resolveStateDir(l Layout, cwd, xdgState, home string) {
	switch {
	case c.StateDir != "": // absolute already (absPaths)
	case l.Checkout != "" && InGitRepository(l.Checkout):
		c.StateDir = filepath.Join(l.Checkout, ".stack")
	default:
		c.StateDir = UserStateDir(cwd, xdgState, home)
		// Before RELIABILITY.md D82 such a checkout had its state in
		// .stack: a stack may still run there, or its Redis hold
		// transactions not yet processed. Say so, rather than start
		// afresh without a word.
		old := Config{StateDir: filepath.Join(l.Checkout, ".stack")}
		if l.Checkout != "" && filepath.Clean(c.StateDir) != old.StateDir && isFile(old.StateMarkerFile()) {
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s holds an earlier stack's state (Redis data, logs, secret); outside git the default state dir is %s now, since Nix copies such a checkout whole into the world-readable store. "+
				"To go on with it: STACK_STATE_DIR=%s (better, from a git clone); to retire it: STACK_STATE_DIR=%s stack down, then delete it once its Redis holds nothing you need",
				old.StateDir, c.StateDir, old.StateDir, old.StateDir))
		}
	}
	c.StateDir = filepath.Clean(c.StateDir)
}

// UserStateDir is the default state dir outside a git checkout, one per user:
// $XDG_STATE_HOME/acme-platform, else $HOME/.local/state/acme-platform (the
// XDG default), else <cwd>/.stack. The load generator looks there too.
func UserStateDir(cwd, xdgState, home string) string {
	switch {
	case xdgState != "" && filepath.IsAbs(xdgState):
		return filepath.Join(xdgState, "acme-platform")
	case home != "" && filepath.IsAbs(home):
		return filepath.Join(home, ".local", "state", "acme-platform")
	}
	return filepath.Join(cwd, ".stack")
}

// maxSocketPath is the longest unix socket path every supported OS accepts
// (sun_path is 108 bytes on Linux, 104 on macOS, including the NUL).
const maxSocketPath = 103

// validate checks one rule at a time; each error names its variable.
func (c *Config) validate() error {
	if strings.ContainsAny(c.StateDir, "\"'$\\\n`") {
		return envconfig.Invalid("STACK_STATE_DIR", "%q contains a quote, '$', '\\', '`' or a newline; choose a plainer path", c.StateDir)
	}
	if n := len(c.ProcessComposeSocket()); n > maxSocketPath {
		return envconfig.Invalid("STACK_STATE_DIR", "%q is too long: the unix socket %s would be %d bytes, over the OS limit of %d; choose a shorter path",
			c.StateDir, c.ProcessComposeSocket(), n, maxSocketPath)
	}
	for _, s := range socketServices {
		if n := len(c.ServiceSocket(s.name)); n > maxSocketPath {
			return envconfig.Invalid("STACK_STATE_DIR", "%q is too long: %s's socket %s would be %d bytes, over the OS limit of %d; choose a shorter path",
				c.StateDir, s.name, c.ServiceSocket(s.name), n, maxSocketPath)
		}
	}
	if n := len(c.RedisSocket()); n > maxSocketPath {
		return envconfig.Invalid("STACK_STATE_DIR", "%q is too long: the Redis socket %s would be %d bytes, over the OS limit of %d; choose a shorter path",
			c.StateDir, c.RedisSocket(), n, maxSocketPath)
	}
	if err := CheckPlatformHost(c.PlatformHost); err != nil {
		return err
	}
	seen := map[int]string{}
	for _, p := range c.Ports() {
		if p.Port < 1 || p.Port > 65535 {
			return envconfig.Invalid(p.Var, "must be a port number from 1 to 65535, got %d", p.Port)
		}
		if other, dup := seen[p.Port]; dup {
			return &envconfig.SettingError{Vars: []string{other, p.Var},
				Msg: fmt.Sprintf("%s and %s are both %d; give each its own port", other, p.Var, p.Port)}
		}
		seen[p.Port] = p.Var
	}
	if c.AuthRateLimit < 1 {
		return envconfig.Invalid("AUTH_RATE_LIMIT", "must be at least 1 (token requests per 10 s per client address), got %d", c.AuthRateLimit)
	}
	if !slices.Contains([]string{"all", "errors"}, c.AccessLog) {
		return envconfig.Invalid("HAPROXY_ACCESS_LOG", "must be all or errors, got %q", c.AccessLog)
	}
	if !slices.Contains([]string{"always", "everysec", "no"}, c.RedisAppendSync) {
		return envconfig.Invalid("REDIS_APPENDFSYNC", "must be always, everysec or no, got %q", c.RedisAppendSync)
	}
	maxmem, err := redisMaxMemory(c.RedisMaxMemory)
	if err != nil {
		return envconfig.Invalid("REDIS_MAXMEMORY", "%s", err)
	}
	c.RedisMaxMemoryBytes = maxmem
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, strings.ToLower(c.LogLevel)) {
		return envconfig.Invalid("LOG_LEVEL", "must be debug, info, warn or error, got %q", c.LogLevel)
	}
	if c.ShutdownGrace <= 0 || c.ShutdownGrace > time.Hour {
		return envconfig.Invalid("SHUTDOWN_GRACE", "must be a positive duration up to 1h, such as 10s, got %s", c.ShutdownGrace)
	}
	if c.HangAfter != 0 && (c.HangAfter < MinHangAfter || c.HangAfter > time.Hour) {
		return envconfig.Invalid("RESTART_HUNG_AFTER", "must be 0 (never restart a hung process) or a duration from %s to 1h, such as 15s, got %s", MinHangAfter, c.HangAfter)
	}
	// A service draining after a SIGTERM that process-compose did not send
	// (kill by hand) shows as running with its listeners closed: it must
	// not be taken for hung before its drain may end.
	if c.HangAfter != 0 && c.HangAfter <= c.ShutdownGrace {
		return &envconfig.SettingError{Vars: []string{"RESTART_HUNG_AFTER", "SHUTDOWN_GRACE"},
			Msg: fmt.Sprintf("RESTART_HUNG_AFTER (%s) must be longer than SHUTDOWN_GRACE (%s), or 0: a service draining after a SIGTERM answers nothing, and would be taken for hung", c.HangAfter, c.ShutdownGrace)}
	}
	return nil
}

// MinHangAfter is the shortest RESTART_HUNG_AFTER: below it, a busy
// machine's slow answers could look like a hang to the watchdog.
const MinHangAfter = 3 * time.Second

// UnixURL is the redis URL of the unix socket at path: unix://<path>, with
// the path escaped, so that a '#', '?' or '%' in a directory name reaches the
// services' URL parser (go-redis's) as part of the path, not as a fragment,
// a query or an escape.
func UnixURL(path string) string {
	return (&url.URL{Scheme: "unix", Path: path}).String()
}

// RedisSocket is the path of the stack's Redis unix socket.
func (c Config) RedisSocket() string { return filepath.Join(c.StateDir, "redis", "redis.sock") }

// socketServices are the services HAProxy reaches on a unix socket, and the
// variable that gives each its path (process-compose.yaml passes it on as the
// service's HTTP_SOCKET and as HAProxy's unix@ server address).
var socketServices = []struct{ name, envVar string }{
	{"auth-api", "AUTH_API_SOCKET"},
	{"core-api", "CORE_API_SOCKET"},
}

// ServiceSocket is the unix socket service name (auth-api, core-api) serves
// HAProxy on, besides its loopback port (HTTP_SOCKET): the router's hop skips
// the TCP stack, and the 0700 state dir keeps it to this user.
func (c Config) ServiceSocket(name string) string {
	return filepath.Join(c.RunDir(), name+".sock")
}

// ProcessComposeSocket is the path of process-compose's API socket.
func (c Config) ProcessComposeSocket() string {
	return filepath.Join(c.StateDir, "process-compose.sock")
}

// RunDir holds the files of the running stack: the services' sockets, the
// launched URLs, process-compose's settings dir when the user has none.
func (c Config) RunDir() string { return filepath.Join(c.StateDir, "run") }

// PathDir holds a symlink to each program the stack runs, as the launcher
// chose it; it comes first on the PATH the launcher gives process-compose.
func (c Config) PathDir() string { return filepath.Join(c.RunDir(), "bin") }

// ProcessComposeLog is process-compose's own log.
func (c Config) ProcessComposeLog() string { return filepath.Join(c.LogDir(), "process-compose.log") }

// LogDir holds one log file per process, plus process-compose's own.
func (c Config) LogDir() string { return filepath.Join(c.StateDir, "logs") }

// LogFile is the log of process (redis, auth-api, ..., watchdog): the
// log_location process-compose.yaml gives it, in LogDir.
func (c Config) LogFile(process string) string { return filepath.Join(c.LogDir(), process+".log") }

// LedgerFile is psp-connector's own copy of its ledger lines
// (CHARGE_LEDGER): in a directory of its own, which `up` leaves alone, as
// the PSP's record of what it made outlives the logs.
func (c Config) LedgerFile() string {
	return filepath.Join(c.StateDir, "ledger", "psp-connector.jsonl")
}

// BinDir holds binaries the launcher builds (services, process-compose).
func (c Config) BinDir() string { return filepath.Join(c.StateDir, "bin") }

// ServiceStopTimeout is how long process-compose waits after SIGTERM before
// SIGKILL: the services' drain grace plus five seconds, in whole seconds.
func (c Config) ServiceStopTimeout() int {
	return int(math.Ceil(c.ShutdownGrace.Seconds())) + 5
}

// PrepareStateDir creates the state directory (mode 0700, tightened if it
// already exists) and its redis/, run/, logs/, ledger/ and bin/
// subdirectories. It refuses a state dir (or one of those) that another
// user owns, before
// changing anything in it: its owner could undo the mode and replace what is
// in it (checkOwner); and one below a directory that another user could
// change (CheckParents), before creating anything.
func (c Config) PrepareStateDir() error {
	if err := CheckParents(c.StateDir); err != nil {
		return err
	}
	if err := os.MkdirAll(c.StateDir, 0o700); err != nil {
		return fmt.Errorf("create state dir (STACK_STATE_DIR): %w", err)
	}
	// Again: a directory MkdirAll was to create may have been made by
	// another user first (in /tmp, say).
	if err := c.CheckStateDir(); err != nil {
		return err
	}
	if err := os.Chmod(c.StateDir, 0o700); err != nil {
		return fmt.Errorf("restrict state dir %s to mode 0700: %w", c.StateDir, err)
	}
	for _, d := range []string{filepath.Dir(c.RedisSocket()), c.RunDir(), c.LogDir(), filepath.Dir(c.LedgerFile()), c.BinDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
		if err := checkOwnerOf(d, os.Lstat); err != nil {
			return fmt.Errorf("state dir (STACK_STATE_DIR): %w", err)
		}
	}
	if _, err := os.Stat(c.StateMarkerFile()); errors.Is(err, os.ErrNotExist) {
		const text = "This is a state dir of the payments platform's local stack (STACK_STATE_DIR).\n`stack reset` deletes it; up and reset accept a directory that holds this file.\n"
		if err := os.WriteFile(c.StateMarkerFile(), []byte(text), 0o600); err != nil {
			return fmt.Errorf("mark the state dir: %w", err)
		}
	}
	return nil
}

// CheckStateDir refuses a state dir that is not this user's to trust, for
// every command that uses what it holds (up, down, status, logs): one below
// a directory another user could change (CheckParents), or one that another
// user owns, through a symlink its target and the link itself: the link's
// owner can point it elsewhere at any time, as everything is reached through
// it (a link planted in /tmp where the settings name a state dir that does
// not exist yet); and one that is no directory (a file where the settings
// name it), naming STACK_STATE_DIR. A state dir that does not exist yet
// passes.
func (c Config) CheckStateDir() error {
	if err := CheckParents(c.StateDir); err != nil {
		return err
	}
	if fi, err := os.Stat(c.StateDir); err == nil && !fi.IsDir() {
		return fmt.Errorf("state dir %s is not a directory: point STACK_STATE_DIR at a directory, new or the stack's%s", c.StateDir, c.StateDirNote())
	}
	for _, stat := range []func(string) (os.FileInfo, error){os.Stat, os.Lstat} {
		if err := checkOwnerOf(c.StateDir, stat); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("state dir (STACK_STATE_DIR): %w", err)
		}
	}
	return nil
}

// CheckParents refuses stateDir when a directory that a lookup of it reads
// a name from (lookupDirs: the directories above it, and those on the way
// to where each symlink on its path leads) lets a user other than root and
// this one rename what it holds (checkParent): they could move the state
// dir, or a symlink on the way to it, away, between runs or while the
// stack runs, and put theirs, or a symlink, in its place; the launcher,
// perhaps as root, would then use their socket, pid file and logs.
// Directories not created yet are skipped.
func CheckParents(stateDir string) error {
	dirs, err := lookupDirs(stateDir)
	if err != nil {
		return fmt.Errorf("state dir (STACK_STATE_DIR) %s: cannot check the directories above it: %w", stateDir, err)
	}
	for _, d := range dirs {
		fi, err := os.Lstat(d)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			return fmt.Errorf("state dir (STACK_STATE_DIR) %s: cannot check the directories above it: %w", stateDir, err)
		}
		if err := checkParent(d, fi); err != nil {
			// A mode is mended in place, which also lets down stop a stack
			// running from there; pointing STACK_STATE_DIR elsewhere would
			// leave it running.
			mend := ""
			if errors.As(err, new(modeError)) {
				mend = fmt.Sprintf("make %s writable by its owner only (chmod go-w %s), or ", d, d)
			}
			return fmt.Errorf("state dir (STACK_STATE_DIR) %s: the directory above it %w: another user could move the state dir away and put theirs in its place; %spoint STACK_STATE_DIR at a directory whose parents only root and this user can change (the default outside a checkout, ~/.local/state/acme-platform, is one)", stateDir, err, mend)
		}
	}
	return nil
}

// modeError is a refusal of checkParent for the directory's mode, not its
// owner: chmod go-w mends it.
type modeError string

func (e modeError) Error() string { return string(e) }

// checkOwnerOf stats path with stat (os.Stat or os.Lstat) and refuses it
// unless this user owns it (checkOwner).
func checkOwnerOf(path string, stat func(string) (os.FileInfo, error)) error {
	fi, err := stat(path)
	if err != nil {
		return err
	}
	return checkOwner(path, fi)
}

// ErrNotOwned is in every refusal of a state dir, or of a file in it, that
// another user owns.
var ErrNotOwned = errors.New("another user could read or replace what the stack keeps there")

// CheckOwned refuses path unless this user owns it; a symlink is not
// followed: its own owner is the one checked (checkOwner).
func CheckOwned(path string) error { return checkOwnerOf(path, os.Lstat) }

// StateMarkerFile marks a directory as a state dir, so that what else may
// appear in it (a core dump, .DS_Store) does not make up and reset take it
// for someone else's directory.
func (c Config) StateMarkerFile() string { return filepath.Join(c.StateDir, ".stack-state") }

// Environ returns the environment for process-compose and, through it, every
// process: the merged settings, every known setting in its validated form
// (so a key missing from stack.env still gets its default), then extra
// (later wins), as sorted KEY=value entries.
func (c Config) Environ(extra map[string]string) []string {
	m := make(map[string]string, len(c.Values)+len(extra)+2)
	for k, v := range c.Values {
		m[k] = v
	}
	for _, p := range c.Ports() {
		m[p.Var] = strconv.Itoa(p.Port)
	}
	m["STACK_STATE_DIR"] = c.StateDir
	m["PLATFORM_HOST"] = c.PlatformHost
	m["AUTH_RATE_LIMIT"] = strconv.Itoa(c.AuthRateLimit)
	m["REDIS_URL"] = c.RedisURL
	for _, s := range socketServices {
		m[s.envVar] = c.ServiceSocket(s.name)
	}
	m["REDIS_APPENDFSYNC"] = c.RedisAppendSync
	m["REDIS_MAXMEMORY"] = strconv.FormatInt(c.RedisMaxMemoryBytes, 10)
	m["HAPROXY_ACCESS_LOG"] = c.AccessLog
	m["LOG_LEVEL"] = strings.ToLower(c.LogLevel)
	m["SHUTDOWN_GRACE"] = c.ShutdownGrace.String()
	m["RESTART_HUNG_AFTER"] = c.HangAfter.String()
	for k, v := range extra {
		m[k] = v
	}
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// minRedisMaxMemory is the least REDIS_MAXMEMORY other than 0: below it,
// Redis warns that it may not even start its work.
const minRedisMaxMemory = 1 << 20

// physicalMemory returns the memory the stack may use in bytes, or 0 when it
// cannot tell: availableMemory of this system. A variable, for tests.
var physicalMemory = func() int64 { return availableMemory("/") }

// availableMemory is the memory the processes started from here may use, in
// root's /proc and /sys: the machine's (MemTotal in /proc/meminfo), or the
// memory limit of this process's cgroup or of one above it (a container's,
// a systemd unit's MemoryMax), whichever is less; 0 when neither can be
// read. Redis, started by process-compose from the launcher, is in the same
// cgroup: past that limit the kernel's OOM killer ends it, so a ceiling
// above it would never be reached.
func availableMemory(root string) int64 {
	total := memTotal(root)
	if limit := cgroupMemoryLimit(root); limit > 0 && (total == 0 || limit < total) {
		return limit
	}
	return total
}

// memTotal is MemTotal in root's /proc/meminfo in bytes, or 0.
func memTotal(root string) int64 {
	b, err := os.ReadFile(filepath.Join(root, "proc", "meminfo"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// cgroupMemoryLimit is the least memory limit set on this process's cgroup
// (/proc/self/cgroup) or on one above it, cgroup v2 (memory.max) or v1's
// memory controller (memory.limit_in_bytes), or 0 for none. Each directory
// from the cgroup's up to the hierarchy's root is read where it exists: in
// a container the cgroup's path names the host's hierarchy, while the
// container sees its own cgroup at the root.
func cgroupMemoryLimit(root string) int64 {
	b, err := os.ReadFile(filepath.Join(root, "proc", "self", "cgroup"))
	if err != nil {
		return 0
	}
	least := int64(0)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 || !strings.HasPrefix(f[2], "/") {
			continue
		}
		var base, file string
		switch {
		case f[0] == "0" && f[1] == "":
			base, file = filepath.Join(root, "sys", "fs", "cgroup"), "memory.max"
		case slices.Contains(strings.Split(f[1], ","), "memory"):
			base, file = filepath.Join(root, "sys", "fs", "cgroup", "memory"), "memory.limit_in_bytes"
		default:
			continue
		}
		for dir := filepath.Clean(f[2]); ; dir = filepath.Dir(dir) {
			v, err := os.ReadFile(filepath.Join(base, dir, file))
			if n, perr := strconv.ParseInt(strings.TrimSpace(string(v)), 10, 64); err == nil && perr == nil && n > 0 &&
				(least == 0 || n < least) {
				least = n // "max" (v2's none) does not parse; v1's none is near MaxInt64
			}
			if dir == "/" {
				break
			}
		}
	}
	return least
}

// redisUnits are the size suffixes Redis reads in its configuration.
var redisUnits = map[string]int64{"": 1, "b": 1, "k": 1000, "kb": 1 << 10, "m": 1000 * 1000,
	"mb": 1 << 20, "g": 1000 * 1000 * 1000, "gb": 1 << 30}

// redisMaxMemory parses REDIS_MAXMEMORY: auto (half of the machine's
// memory or of its cgroup's memory limit, whichever is less, or no limit
// where neither can be read), 0 (no limit), or a size in
// Redis's units (4gb, 512mb, bytes) of at least 1mb.
func redisMaxMemory(given string) (int64, error) {
	v := strings.ToLower(strings.TrimSpace(given))
	switch v {
	case "auto":
		return physicalMemory() / 2, nil
	case "0":
		return 0, nil
	}
	digits := strings.TrimRightFunc(v, func(r rune) bool { return r < '0' || r > '9' })
	unit, ok := redisUnits[v[len(digits):]]
	n, err := strconv.ParseInt(digits, 10, 64)
	if !ok || err != nil || n > math.MaxInt64/unit {
		return 0, fmt.Errorf("must be auto, 0 (no limit) or a size such as 4gb or 512mb, got %q", given)
	}
	if n*unit < minRedisMaxMemory {
		return 0, fmt.Errorf("must be auto, 0 (no limit) or at least 1mb, got %q", given)
	}
	return n * unit, nil
}

// CheckPlatformHost checks PLATFORM_HOST, the address HAProxy binds: an IPv4
// address, since HAProxy binds "<host>:<port>" and the launcher and loadgen
// print http://<host>:<port>, both of which an IPv6 address would need
// brackets for.
func CheckPlatformHost(host string) error {
	if host == "" {
		return envconfig.Invalid("PLATFORM_HOST", "must not be empty (127.0.0.1 keeps the platform local)")
	}
	if ip := net.ParseIP(host); ip == nil || ip.To4() == nil {
		return envconfig.Invalid("PLATFORM_HOST", "must be an IPv4 address such as 127.0.0.1 (0.0.0.0 exposes the platform), got %q", host)
	}
	return nil
}
