package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/acme-payments/platform/internal/procompose"
	"github.com/acme-payments/platform/internal/stackconfig"
	"github.com/acme-payments/platform/internal/token"
)

// up prepares everything, then runs process-compose: in the foreground, or
// detached (optionally waiting until every process is ready).
func (l *launcher) up(ctx context.Context, args []string) error {
	launched := time.Now()
	fs := newFlagSet("up")
	detach := fs.Bool("detach", false, "run in the background and return")
	wait := fs.Bool("wait", false, "with --detach: return once every process is ready")
	timeout := fs.Duration("timeout", 30*time.Second, "with --wait: give up after this long")
	noTUI := fs.Bool("no-tui", false, "in the foreground: plain prefixed logs even on a terminal")
	if err := l.parseFlags(fs, args); err != nil {
		return err
	}
	timeoutSet := false
	fs.Visit(func(f *flag.Flag) { timeoutSet = timeoutSet || f.Name == "timeout" })
	switch {
	case *wait && !*detach:
		return &exitError{code: 2, err: errors.New("--wait needs --detach (in the foreground, progress is shown as processes become ready)")}
	case timeoutSet && !*wait:
		return &exitError{code: 2, err: errors.New("--timeout needs --detach --wait (it bounds the wait for readiness)")}
	case *timeout <= 0:
		return &exitError{code: 2, err: fmt.Errorf("--timeout must be a positive duration such as 30s, got %s", *timeout)}
	}

	c := l.cfg
	// Before asking whether a stack runs there (PrepareStateDir checks it
	// again, before changing anything).
	if err := l.checkStateDir(); err != nil {
		return err
	}
	client := procompose.NewClient(c.ProcessComposeSocket())
	defer client.Close()
	if err := l.errIfInUse(ctx, client, "processes of an earlier run of this stack are still running without process-compose (%s); stop them with `stack down`"); err != nil {
		return err
	}
	// Someone else's directory, then ports: a taken port is the commonest
	// refusal, and both should come before a build or a new state dir.
	if err := l.refuseForeignStateDir(); err != nil {
		return err
	}
	fromEnv := func(name string) bool { return c.Sources[name] == stackconfig.FromEnvironment }
	if err := checkPorts(c.Ports(), l.layout.LocalFile(l.cwd), fromEnv); err != nil {
		return err
	}
	if err := c.PrepareStateDir(); err != nil {
		return err
	}
	release, err := l.lockStateDir(ctx, client)
	if err != nil {
		return err
	}
	defer release()
	if err := l.checkFreeSpace(false); err != nil {
		return err
	}
	bins, err := l.findBinaries(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return errInterrupted("while building; nothing was started")
		}
		return err
	}
	secret, source, err := c.EnsureJWTSecret()
	if err != nil {
		return err
	}
	l.warnIfWeakSecret(secret, source)
	l.warnIfSecretSettingsReadable()
	probeBin, err := l.probeBinary()
	if err != nil {
		return err
	}
	// Again, with the build and the launcher's copy in bin/: what the
	// stack starts on (the last run's logs, which clearRunFiles deletes,
	// counted as free, and kept on a refusal).
	if err := l.checkFreeSpace(true); err != nil {
		return err
	}
	if err := l.clearRunFiles(); err != nil {
		return err
	}
	l.fromPath(bins)
	l.warnIfCopiedWhole()
	searchPath, err := bins.searchPath(c.PathDir(), lookupEnv(l.environ, "PATH"))
	if err != nil {
		return fmt.Errorf("link the stack's programs into %s: %w", c.PathDir(), err)
	}
	if err := l.writeLaunched(); err != nil {
		return err
	}

	tui := !*detach && !*noTUI && isTerminal(l.stdout)
	cmd := exec.Command(bins["process-compose"], "up",
		"--config", l.layout.ComposeFile(),
		// --no-server=false: PC_NO_SERVER, set at all, turns the API off.
		"--no-server=false", "--use-uds", "--unix-socket", c.ProcessComposeSocket(),
		"--disable-dotenv",
		"--ordered-shutdown",
		"--log-file", c.ProcessComposeLog(),
		"--tui="+strconv.FormatBool(tui))
	cmd.Dir = c.StateDir
	launcherSet := map[string]string{
		"JWT_SECRET":                 secret,
		"STACK_CONFIG_DIR":           l.layout.ConfigDir,
		"STACK_LAUNCHER":             probeBin,
		"STACK_API_SOCKET":           c.ProcessComposeSocket(),
		"STACK_SERVICE_STOP_TIMEOUT": strconv.Itoa(c.ServiceStopTimeout()),
		"STACK_HAPROXY_STOP_SIGNAL":  strconv.Itoa(int(syscall.SIGUSR1)),
		"PATH":                       searchPath,
		// The API is on a unix socket in the 0700 state dir and the
		// launcher's requests carry no token: a PC_API_TOKEN of the user's
		// (process-compose v1.94 and later: every request without it gets
		// 401; one under 20 characters stops process-compose at start)
		// would lock the launcher out of its own stack.
		"PC_API_TOKEN":      "",
		"PC_API_TOKEN_PATH": "",
		// Names processes to disable (v1.75 and later): set for another
		// project, it would leave parts of this stack never started.
		"PC_DISABLED_PROCESSES": "",
	}
	// Not for the TUI, which creates the user's settings dir itself and
	// saves its choices there; not where the config dirs are not the XDG
	// ones checked below (macOS: ~/Library/Application Support).
	if !tui && runtime.GOOS == "linux" {
		pcConfig, err := l.processComposeConfigDir()
		if err != nil {
			return err
		}
		if pcConfig != "" {
			launcherSet["PROC_COMP_CONFIG"] = pcConfig
		}
	}
	if *detach && c.Values["NO_COLOR"] == "" {
		// No terminal to colour: process-compose's own log stays plain text.
		launcherSet["NO_COLOR"] = "1"
	}
	cmd.Env = c.Environ(launcherSet)
	// Unset, not emptied: process-compose tests only whether these are set
	// (an empty PC_NAMESPACES admits no namespace at all). Set for another
	// project, they would run none of this stack's processes, or refuse
	// the API's stop and start that `down` and the tests rely on.
	cmd.Env = slices.DeleteFunc(cmd.Env, func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return k == "PC_NAMESPACES" || k == "PC_READ_ONLY"
	})

	// Readiness times and --timeout count from here, not from the launch:
	// a first run may spend minutes building binaries.
	if prep := time.Since(launched); prep > time.Second {
		fmt.Fprintf(l.stderr, "stack: prepared in %s\n", prep.Round(100*time.Millisecond))
	}
	start := time.Now()
	if *detach {
		return l.upDetached(ctx, cmd, client, probeBin, start, *wait, *timeout)
	}
	return l.upForeground(ctx, cmd, client, start, tui)
}

// upDetached starts process-compose in its own session and returns; with
// wait, once all are ready. Its standard output (a copy of every process's
// log) is dropped; its standard error goes through a pipe to `stack
// capped-log` (launcher, this launcher's binary), which keeps its first
// processComposeErrMax bytes in logs/process-compose.err: on a full disk
// process-compose writes a line there for every log line it loses, and
// written straight to the file those took back the space freed (D122).
func (l *launcher) upDetached(ctx context.Context, cmd *exec.Cmd, client *procompose.Client, launcher string, start time.Time, wait bool, timeout time.Duration) error {
	c := l.cfg
	outPath := filepath.Join(c.LogDir(), "process-compose.err")
	out, err := os.OpenFile(outPath, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	out.Close()
	relayOut, relayIn, err := os.Pipe()
	if err != nil {
		return err
	}
	defer relayIn.Close()
	relay := exec.Command(launcher, "capped-log", "--max", strconv.Itoa(processComposeErrMax), outPath)
	relay.Stdin = relayOut
	// Its own session: a hangup of this terminal does not reach it.
	relay.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = relay.Start()
	relayOut.Close()
	if err != nil {
		return fmt.Errorf("start the relay of process-compose's standard error: %w", err)
	}
	// It ends when process-compose's end of the pipe closes (this one's is
	// closed on return): at once when process-compose does not start.
	relayDone := make(chan struct{})
	go func() { _ = relay.Wait(); close(relayDone) }()
	cmd.Stdout, cmd.Stderr = nil, relayIn
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start process-compose: %w", err)
	}
	relayIn.Close()
	if err := writePid(l.pidFile(), cmd.Process.Pid); err != nil {
		// Without its pid file the stack would be hard to find and stop.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		return fmt.Errorf("stopped process-compose (pid %d) again: %w", cmd.Process.Pid, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	abort := func() error {
		select {
		case err := <-exited:
			exited <- err
			// Its last lines are in the file once the relay has read
			// the pipe to its end.
			select {
			case <-relayDone:
			case <-time.After(2 * time.Second):
			}
			return fmt.Errorf("process-compose exited (%w); its output:\n%s", err, tail(outPath, 20))
		default:
			return nil
		}
	}

	if !wait {
		// Wait only for the API, so that `stack status` works at once.
		waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		for !client.Alive(waitCtx) {
			if err := abort(); err != nil {
				return err
			}
			select {
			case <-waitCtx.Done():
				if ctx.Err() != nil {
					return errInterrupted(fmt.Sprintf("while process-compose (pid %d) was starting; it goes on in the background: `stack status` shows it, `stack down` stops it", cmd.Process.Pid))
				}
				return fmt.Errorf("process-compose (pid %d) did not open its API socket %s within 10s; see %s", cmd.Process.Pid, client.Socket(), outPath)
			case <-time.After(10 * time.Millisecond):
			}
		}
		fmt.Fprintf(l.stdout, "stack: started in the background (process-compose pid %d, state in %s)\n", cmd.Process.Pid, l.rel(c.StateDir))
		fmt.Fprintln(l.stdout, "stack: `stack status` shows readiness, `stack logs -f` the logs, `stack down` stops it")
		return nil
	}

	waitCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err = procompose.Waiter{
		Poll:        client.Processes,
		Want:        processNames,
		Start:       start,
		OnReady:     l.printReady,
		Abort:       abort,
		MaxRestarts: giveUpAfterRestarts,
	}.Wait(waitCtx)
	if err != nil && ctx.Err() != nil {
		return errInterrupted("while waiting for readiness; the stack was left running: `stack status` shows it, `stack down` stops it")
	}
	if err != nil {
		return l.notReady(err)
	}
	l.printAllReady(time.Since(start))
	return nil
}

// giveUpAfterRestarts is how many restarts of a process that was never
// ready end `up --wait` before its --timeout: with process-compose's 1 s
// backoff, about 3 s instead of 30 s for a service that fails at start.
const giveUpAfterRestarts = 3

// upForeground runs process-compose attached to this terminal and returns
// when it exits. SIGINT, SIGTERM and SIGHUP are passed on: a Ctrl-C in the
// terminal reaches process-compose directly too, but a SIGINT sent to the
// launcher alone (kill -INT, an IDE's stop button) does not. process-compose
// acts on the first signal and ignores the rest.
func (l *launcher) upForeground(ctx context.Context, cmd *exec.Cmd, client *procompose.Client, start time.Time, tui bool) error {
	cmd.Stdin, cmd.Stdout, cmd.Stderr = l.stdin, l.stdout, l.stderr
	if f, ok := l.stdin.(*os.File); !ok || f == nil {
		cmd.Stdin = nil
	}
	forward := make(chan os.Signal, 2)
	signal.Notify(forward, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(forward)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start process-compose: %w", err)
	}
	defer os.Remove(l.pidFile())
	// Without its pid file `down` and `status` from another terminal would
	// not find this process-compose: stop it, and say why once it is gone.
	pidErr := writePid(l.pidFile(), cmd.Process.Pid)
	if pidErr != nil {
		_ = cmd.Process.Signal(syscall.SIGTERM)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	// The waiter polls the processes (and prints readiness); what it saw
	// last is checked for survivors once process-compose has exited, after
	// the waiter has stopped.
	var lastSeen []procompose.Process
	waiterDone := make(chan struct{})
	waitCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	if tui || pidErr != nil {
		close(waiterDone)
	} else {
		go func() {
			defer close(waiterDone)
			err := procompose.Waiter{
				Poll: func(ctx context.Context) ([]procompose.Process, error) {
					procs, err := client.Processes(ctx)
					if err == nil {
						lastSeen = procs
					}
					return procs, err
				},
				Want:        processNames,
				Start:       start,
				OnReady:     l.printReady,
				MaxRestarts: giveUpAfterRestarts,
				// A process fails at start: say why, once, amid the logs,
				// and go on watching the others.
				OnFailingStart: func(nr *procompose.NotReadyError) {
					writeNotReady(l.stderr, nr, l.cfg.LogFile, l.rel, l.cfg.WhereSet)
					fmt.Fprintln(l.stderr, "stack: the stack keeps running as it is; Ctrl-C stops it")
				},
			}.Wait(waitCtx)
			if err == nil {
				l.printAllReady(time.Since(start))
				fmt.Fprintln(l.stderr, "stack: Ctrl-C stops the stack")
			}
		}()
	}
	pcLog := l.rel(l.cfg.ProcessComposeLog())
	interrupted := false
	for {
		select {
		case sig := <-forward:
			if !interrupted {
				// Stop polling before process-compose stops: its API can
				// hang while it stops a process it is about to restart
				// (v1.64.1), and it waits 5 s for a hung request and then
				// exits 1, after every process has stopped.
				interrupted = true
				cancel()
				<-waiterDone
			}
			_ = cmd.Process.Signal(sig)
		case err := <-exited:
			cancel()
			<-waiterDone
			if pidErr != nil {
				return fmt.Errorf("stopped process-compose: %w", pidErr)
			}
			if err != nil && !isSignalExit(err) {
				var ee *exec.ExitError
				if !interrupted || !errors.As(err, &ee) || ee.ExitCode() != 1 {
					return fmt.Errorf("process-compose: %w (its log: %s)", err, pcLog)
				}
				// Asked to stop, it did, and exited 1 (as after waiting out
				// a hung API request): what counts is that nothing is left,
				// checked below.
				fmt.Fprintf(l.stderr, "stack: process-compose ended with %v after the interrupt (its log: %s)\n", err, pcLog)
			}
			if err := verifyGone(lastSeen, l.cfg.StateDir); err != nil {
				return err
			}
			// lastSeen may be stale or empty (the TUI, a poll stopped by the
			// interrupt, a process restarted since): look for the stack's
			// processes as down does.
			if err := stopSurvivors(l.cfg.StateDir, time.Duration(l.cfg.ServiceStopTimeout())*time.Second); err != nil {
				return err
			}
			if haveProc() && interrupted {
				fmt.Fprintln(l.stderr, "stack: stopped; none of the stack's processes is left running")
			}
			return nil
		}
	}
}

// probeBinary returns a path of this launcher that outlives it: a binary
// that `go run` built in a temporary directory is copied into bin/.
func (l *launcher) probeBinary() (string, error) {
	exe := l.exe
	if exe == "" {
		return "", errors.New("cannot find the launcher's own executable (needed for readiness probes)")
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	if !strings.Contains(exe, string(filepath.Separator)+"go-build") {
		return exe, nil
	}
	dst := filepath.Join(l.cfg.BinDir(), "stack")
	if err := copyFile(exe, dst); err != nil {
		return "", fmt.Errorf("copy the launcher to %s for readiness probes: %w", dst, err)
	}
	return dst, nil
}

// warnIfWeakSecret says, before anything starts, what auth-api and
// core-api will log at their start: the JWT secret in use is too weak for
// HS256 (token.EstimateSecret), naming where it was set. The generated one
// never is.
func (l *launcher) warnIfWeakSecret(secret string, source stackconfig.SecretSource) {
	est := token.EstimateSecret(secret)
	if !est.Weak() {
		return
	}
	where := "from " + l.cfg.SecretFile()
	if source == stackconfig.SecretExplicit {
		where = strings.Join(l.cfg.WhereSet("", "JWT_SECRET"), "; ") // JWT_SECRET is set in <file>
	}
	fmt.Fprintf(l.stderr, "stack: warning: the JWT secret (%s) is weak: %s\n", where, est.Shortfall())
}

// warnIfSecretSettingsReadable warns about each settings file that holds a
// secret in use (JWT_SECRET, a REDIS_URL with a password) and that another
// user may read: stack.local.env written with the usual umask is 0644, and
// with JWT_SECRET any local user could sign a token for any user.
func (l *launcher) warnIfSecretSettingsReadable() {
	for _, w := range l.cfg.SecretSettingsOthersCanRead() {
		fmt.Fprintf(l.stderr, "stack: warning: %s\n", w)
	}
}

// clearRunFiles removes the previous run's logs (their rotated pieces too)
// and a stale API socket, so `stack logs` shows this run only, and starts
// an empty log for each process: with log rotation, process-compose makes a
// process's log only at its first line (lumberjack opens the file at the
// first write), and HAProxy prints nothing until its first request, so
// `stack logs haproxy` would tell a running stack's user that there is no
// log yet. process-compose appends to these (RELIABILITY.md D81). First,
// in a state dir from before the ledger copy, the ledger lines of
// psp-connector's log are kept there (keepLedgerLinesOfAnOlderConnector).
func (l *launcher) clearRunFiles() error {
	if err := l.keepLedgerLinesOfAnOlderConnector(); err != nil {
		return err
	}
	logs, err := filepath.Glob(filepath.Join(l.cfg.LogDir(), "*.log"))
	if err != nil {
		return err
	}
	for _, f := range append(logs, l.cfg.ProcessComposeSocket(), l.pidFile()) {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	for _, name := range processNames {
		f, err := os.OpenFile(l.cfg.LogFile(name), os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
		if err != nil {
			return fmt.Errorf("start %s's log: %w", name, err)
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}

func (l *launcher) printReady(e procompose.ReadyEvent) {
	fmt.Fprintf(l.stderr, "stack: %-14s ready after %5dms (pid %d)\n", e.Name, e.After.Milliseconds(), e.Pid)
}

func (l *launcher) printAllReady(d time.Duration) {
	urls := l.urls()
	fmt.Fprintf(l.stderr, "stack: all %d processes ready after %dms: platform %s, HAProxy stats %s\n",
		len(processNames), d.Milliseconds(), urls.PlatformURL, urls.StatsURL)
}

// notReady reports each process that is not ready, with the end of its
// log, and returns an error saying the stack was left running.
func (l *launcher) notReady(err error) error {
	var nr *procompose.NotReadyError
	if !errors.As(err, &nr) {
		return err
	}
	writeNotReady(l.stderr, nr, l.cfg.LogFile, l.rel, l.cfg.WhereSet)
	return fmt.Errorf("%d of %d processes not ready after %s; the stack was left running: inspect it with `stack status` and `stack logs <process>`, stop it with `stack down`",
		len(nr.Processes), len(processNames), nr.Waited.Round(time.Millisecond))
}

// writeNotReady prints one block per process that is not ready: its state,
// the last lines of its log, and where each setting those lines name got its
// value (whereSet).
func writeNotReady(w io.Writer, nr *procompose.NotReadyError, logFile func(process string) string, rel func(string) string, whereSet func(process, text string) []string) {
	if nr.Cause != nil {
		fmt.Fprintf(w, "stack: %v\n", nr.Cause)
	}
	for _, p := range nr.Processes {
		logPath := logFile(p.Name)
		fmt.Fprintf(w, "stack: %s is not ready: %s\n", p.Name, procompose.Describe(p))
		fmt.Fprintf(w, "  last lines of %s:\n", rel(logPath))
		lines := tail(logPath, 15)
		for _, line := range strings.Split(lines, "\n") {
			if strings.TrimSpace(line) != "" { // process-compose adds blank lines around a restart
				fmt.Fprintf(w, "    %s\n", line)
			}
		}
		for _, note := range whereSet(p.Name, lines) {
			fmt.Fprintf(w, "  %s\n", note)
		}
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func isSignalExit(err error) bool {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return true
		}
	}
	return false
}

// processComposeConfigDir is PROC_COMP_CONFIG for process-compose: "" (leave
// it be) when the settings set it or when process-compose finds a config
// home of its own (process-compose/ in the XDG config home or dirs, where it
// looks); otherwise an empty directory in the state dir's run/, which spares
// every start process-compose's two warnings that it found none ("Path not
// found for process compose config home", v1.64.1) without hiding a user's
// own theme or shortcuts.
func (l *launcher) processComposeConfigDir() (string, error) {
	v := l.cfg.Values
	if v["PROC_COMP_CONFIG"] != "" {
		return "", nil
	}
	home := v["XDG_CONFIG_HOME"]
	if home == "" && v["HOME"] != "" {
		home = filepath.Join(v["HOME"], ".config")
	}
	dirs := v["XDG_CONFIG_DIRS"]
	if dirs == "" {
		dirs = "/etc/xdg"
	}
	for _, d := range append([]string{home}, filepath.SplitList(dirs)...) {
		if d == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "process-compose")); err == nil {
			return "", nil
		}
	}
	dir := filepath.Join(l.cfg.RunDir(), "process-compose")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create process-compose's config dir: %w", err)
	}
	return dir, nil
}

// errInterrupted is the error of a command stopped by SIGINT or SIGTERM: exit
// status 130, as a shell gives a command ended by Ctrl-C.
func errInterrupted(what string) error {
	return &exitError{code: 130, err: errors.New("interrupted " + what)}
}
