package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/acme-payments/platform/internal/stackconfig"
)

// processNames are the processes of process-compose.yaml, each after the processes it depends on.
var processNames = []string{"redis", "psp-connector", "core-api", "auth-api", "haproxy", "watchdog"}

// serviceNames are the platform's own binaries, built from services/<name>.
var serviceNames = []string{"auth-api", "core-api", "psp-connector"}

// launcher is what every command needs: where the files and state are, the
// merged configuration, and where to write.
type launcher struct {
	environ []string
	cwd     string
	exe     string
	layout  stackconfig.Layout
	cfg     stackconfig.Config
	// skipped names the bad settings down or status went past, at their
	// defaults (they need only the state dir).
	skipped error
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
}

// run parses the command line and runs one command: up (the default), down,
// status, logs, reset, help, the internal probe, watchdog and
// redis-server that process-compose.yaml runs, or the internal capped-log
// that `up --detach` gives process-compose's standard error to.
func run(ctx context.Context, args, environ []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 1 && args[1] == "redis-server" {
		// Before signals are caught: a SIGTERM in the moment before the
		// exec must stop Redis's start, not be swallowed by the launcher.
		return redisServer(args[2:], environ, stdout)
	}
	if len(args) > 1 && args[1] == "capped-log" {
		// Signals ignored, not caught: see cappedLog.
		return cappedLog(args[2:], stdin)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	cmd, rest := "up", args[1:]
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		cmd, rest = rest[0], rest[1:]
	}
	if cmd == "up" && len(rest) > 0 && isHelp(rest[0]) {
		cmd, rest = "help", nil
	}
	switch cmd {
	case "probe":
		return probe(ctx, rest, stdout)
	case "watchdog":
		return watchdog(ctx, rest, environ, stdout)
	}
	if cmd == "up" && len(rest) > 0 && rest[0] == "--version" {
		cmd, rest = "version", rest[1:]
	}
	if cmd == "version" {
		switch err := checkFlags(newFlagSet("version"), rest); {
		case errors.Is(err, flag.ErrHelp):
			cmd, rest = "help", nil
		case err != nil:
			return err
		default:
			fmt.Fprintln(stdout, "stack", version)
			return nil
		}
	}

	l, loadErr := newLauncher(environ, stdin, stdout, stderr)
	switch cmd {
	case "help":
		l.usage(stdout, loadErr)
		return nil
	case "up", "down", "status", "logs", "reset":
	default:
		return &exitError{code: 2, err: fmt.Errorf("unknown command %q; the commands are up, down, status, logs, reset, version and help (stack help says more)", cmd)}
	}
	if loadErr != nil && (cmd == "down" || cmd == "status") && !slices.ContainsFunc(rest, isHelp) && l.layout.ConfigDir != "" {
		// down and status need only the state dir: a bad setting of
		// another kind (an edit since up, say) must not keep a running
		// stack from being stopped, or make status say it is not running.
		if cfg, skipped, err := stackconfig.LoadStateDir(l.layout, l.cwd, environ); err == nil {
			if skipped == nil { // the files changed since the first load
				skipped = loadErr
			}
			fmt.Fprintf(stderr, "stack: warning: %s\n  (%s needs only the state dir, %s: going on with the defaults of the settings at fault)\n",
				strings.ReplaceAll(skipped.Error(), "\n", "\n  "), cmd, l.rel(cfg.StateDir))
			l.cfg, l.skipped, loadErr = cfg, skipped, nil
		}
	}
	if loadErr != nil {
		switch {
		case slices.ContainsFunc(rest, isHelp):
			// The help says what is wrong, and which files were read.
			l.usage(stdout, loadErr)
			return nil
		case cmd == "status" && slices.ContainsFunc(rest, func(a string) bool {
			return slices.Contains([]string{"--json", "-json", "--json=true", "-json=true"}, a)
		}):
			// Scripts get JSON whatever the state: here, the error.
			return errors.Join(loadErr, l.writeStatusJSON(statusReport{Processes: []processReport{}, Error: loadErr.Error()}))
		}
		return loadErr
	}
	var err error
	switch cmd {
	case "up":
		err = l.up(ctx, rest)
	case "down":
		err = l.down(ctx, rest)
	case "status":
		err = l.status(ctx, rest)
	case "logs":
		err = l.logs(ctx, rest)
	default:
		err = l.reset(ctx, rest)
	}
	if errors.Is(err, errHelpShown) {
		return nil
	}
	var ee *exitError
	if err != nil && ctx.Err() != nil && !errors.As(err, &ee) {
		// SIGINT or SIGTERM: say so, not just "context canceled".
		return &exitError{code: 130, err: fmt.Errorf("interrupted: %w", err)}
	}
	return err
}

// newLauncher finds the stack's files and loads its configuration. On error
// the launcher is still usable for printing help.
func newLauncher(environ []string, stdin io.Reader, stdout, stderr io.Writer) (*launcher, error) {
	l := &launcher{environ: environ, stdin: stdin, stdout: stdout, stderr: stderr}
	var err error
	if l.cwd, err = os.Getwd(); err != nil {
		return l, fmt.Errorf("current directory: %w", err)
	}
	if l.exe, err = os.Executable(); err != nil {
		l.exe = ""
	}
	shareDir := lookupEnv(environ, "STACK_SHARE_DIR")
	if l.layout, err = stackconfig.FindLayout(l.cwd, l.exe, shareDir, lookupEnv(environ, "STACK_TRUSTED_CHECKOUT")); err != nil {
		return l, err
	}
	if l.cfg, err = stackconfig.Load(l.layout, l.cwd, environ); err != nil {
		return l, err
	}
	for _, w := range l.cfg.Warnings {
		fmt.Fprintln(stderr, "stack: warning:", w)
	}
	return l, nil
}

// isHelp reports whether arg asks for the help.
func isHelp(arg string) bool { return arg == "-h" || arg == "--help" || arg == "-help" }

func lookupEnv(environ []string, key string) string {
	val := ""
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			val = v
		}
	}
	return val
}

// usage prints the help, with the files and state dir in use.
func (l *launcher) usage(w io.Writer, loadErr error) {
	fmt.Fprint(w, `stack runs the payments platform locally: Redis, auth-api, core-api and
psp-connector behind HAProxy, supervised by process-compose, with a
watchdog that restarts any of them that hangs (RESTART_HUNG_AFTER).

Usage:
  stack [up] [--detach [--wait] [--timeout 30s]] [--no-tui]
  stack down [--timeout 90s]
  stack status [--json]
  stack logs [process] [-f]
  stack reset [--yes]
  stack version
  stack help            (or -h, --help after any command)

Commands:
  up      Start the stack (the default command). In the foreground it shows
          process-compose's TUI on a terminal and prefixed logs otherwise, with a
          line per process as it becomes ready (and why, once, for a process
          restarted 3 times without becoming ready); Ctrl-C stops everything
          (the TUI asks first: Enter on Yes).
          --detach runs it in the background; --wait then returns once every
          process is ready, or exits 1 after --timeout (counted from the start
          of process-compose, after any build) naming each process that is
          not, with the end of its log; at once when a process was restarted
          3 times without becoming ready (it fails at start). Fails before
          starting anything when one of its settings is bad, a port is
          taken or a tool is missing; builds process-compose and the
          services from the checkout when they are not on PATH.
  down    Stop every process (the watchdog and the router first, Redis
          after the services that use it), wait until all are gone and
          check that none survived.
  status  One line per process: status, readiness, pid, restarts, uptime.
          --json for scripts. Exit status 3 when the stack is not running;
          1 when process-compose runs but its API does not answer, or when
          process-compose is gone but processes of the stack are left.
  logs    Print a process's whole log since the last up, across restarts
          (every process when none is named); -f keeps following.
  reset   Delete the state directory (Redis data, logs, psp-connector's
          ledger, the generated JWT secret) after confirmation, or at once
          with --yes.
  version Print the launcher's version (stamped by the Nix build; "dev" otherwise).

Processes: `+strings.Join(processNames, ", ")+`
`)
	if l.layout.ConfigDir == "" {
		fmt.Fprintf(w, "\nFiles: not found: %v\n", loadErr)
		if dir := lookupEnv(l.environ, "STACK_STATE_DIR"); dir != "" {
			fmt.Fprintf(w, "\nState dir (STACK_STATE_DIR): %s, set in the environment\n", dir)
		} else {
			fmt.Fprintf(w, "\nState dir (STACK_STATE_DIR): not known until the stack's files are found\n")
		}
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "\nFiles (%s):\n", describeHow(l.layout.How))
	fmt.Fprintf(tw, "  %s\t%s\n", stackconfig.ComposeFileName, l.layout.ComposeFile())
	fmt.Fprintf(tw, "  %s\t%s\n", stackconfig.HAProxyFileName, l.layout.HAProxyFile())
	fmt.Fprintf(tw, "  %s/\t%s\t(its errorfiles)\n", stackconfig.HAProxyErrorsDir, l.layout.HAProxyErrors())
	defaults := "(defaults)"
	if _, err := os.Stat(l.layout.DefaultsFile()); err != nil {
		defaults = "(defaults; absent: the built-in ones apply)"
	}
	fmt.Fprintf(tw, "  %s\t%s\t%s\n", stackconfig.DefaultsFileName, l.layout.DefaultsFile(), defaults)
	local := l.layout.LocalFile(l.cwd)
	note := "(local overrides; absent)"
	if _, err := os.Stat(local); err == nil {
		note = "(local overrides)"
	}
	fmt.Fprintf(tw, "  %s\t%s\t%s\n", stackconfig.LocalFileName, local, note)
	tw.Flush()
	fmt.Fprintln(w, "  The environment overrides both files; stack.env lists every setting.")
	if loadErr != nil {
		fmt.Fprintf(w, "\nConfiguration error: %v\n", loadErr)
		return
	}
	c := l.cfg
	fmt.Fprintf(w, "\nState dir (STACK_STATE_DIR): %s\n", c.StateDir)
	fmt.Fprintf(w, "  redis/ (AOF data and the unix socket), logs/<process>.log, ledger/ (psp-connector's\n")
	fmt.Fprintf(w, "  record of what it charged, kept across up), secrets/jwt_secret,\n")
	fmt.Fprintf(w, "  bin/ (binaries built from the checkout), run/ (the running stack's sockets, URLs,\n")
	fmt.Fprintf(w, "  links to the programs it runs, process-compose's settings dir), process-compose.sock,\n")
	fmt.Fprintf(w, "  process-compose.pid\n")
	urls := l.urls()
	fmt.Fprintf(w, "\nPlatform: %s   HAProxy stats: %s\n", urls.PlatformURL, urls.StatsURL)
}

func describeHow(how string) string {
	switch how {
	case "checkout":
		return "from this checkout"
	case "installed":
		return "installed next to this binary, share/" + stackconfig.ShareDirName
	default:
		return "from " + how
	}
}

// rel shortens a path under the current directory to one relative to it;
// any other path (a sibling of it, say) stays as it is.
func (l *launcher) rel(path string) string {
	if r, err := filepath.Rel(l.cwd, path); err == nil && len(r) < len(path) && filepath.IsLocal(r) {
		return r
	}
	return path
}
