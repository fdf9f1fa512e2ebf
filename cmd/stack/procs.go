package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/acme-payments/platform/internal/procompose"
	"github.com/acme-payments/platform/internal/rotatedlog"
	"github.com/acme-payments/platform/internal/stackconfig"
)

// pidFile holds process-compose's pid while the stack runs.
func (l *launcher) pidFile() string { return filepath.Join(l.cfg.StateDir, "process-compose.pid") }

// processComposePid returns the pid of this stack's process-compose, or 0:
// the pid file's, when that is a live process-compose of this state dir;
// else (the pid file is missing, its process is gone, or the pid is another
// process's now) the one found in /proc by its state dir (Linux; elsewhere
// none is found).
func (l *launcher) processComposePid() int {
	pid := readPid(l.pidFile())
	if alive(pid) && isCommand(pid, "process-compose") && runsIn(pid, l.cfg.StateDir) {
		return pid
	}
	for _, p := range strays(l.cfg.StateDir) {
		if p.Name == "process-compose" {
			return p.Pid
		}
	}
	return 0
}

// errIfRunning returns an error when this stack's process-compose runs:
// its API answers, a process-compose of this state dir is alive without
// answering, or something holds the API socket and does not answer (a
// stopped or stuck process-compose where /proc cannot tell). `up` and
// `reset` refuse then.
// errStackRunning is errIfRunning's refusal when process-compose answers.
var errStackRunning = errors.New("the stack is running")

func (l *launcher) errIfRunning(ctx context.Context, client *procompose.Client) error {
	err := client.Live(ctx)
	switch {
	case err == nil:
		return fmt.Errorf("%w from %s; see `stack status`, or stop it with `stack down`", errStackRunning, l.cfg.StateDir)
	case ctx.Err() != nil:
		return ctx.Err()
	}
	if pid := l.processComposePid(); pid > 0 {
		return errNotAnswering(pid, client.Socket(), err)
	}
	if err := notThisUsers(l.cfg.StateDir, err); err != nil {
		return err
	}
	if !apiGone(err, 0) {
		return fmt.Errorf("something holds process-compose's API socket %s but does not answer (%w); if it is a stopped stack, `stack down` ends it", client.Socket(), err)
	}
	return nil
}

// apiGone reports whether err, from process-compose's API, means that no
// process-compose runs, pcPid being what processComposePid found after
// the call: nothing listens on the socket, or the connection was dropped
// unanswered while no process-compose of the state dir is alive. A
// process-compose killed as it was asked does that: its main thread shows
// as gone (a zombie) before its other threads have closed its socket (D76).
func apiGone(err error, pcPid int) bool {
	return errors.Is(err, procompose.ErrNotRunning) || (pcPid <= 0 && procompose.ClosedUnanswered(err))
}

// notThisUsers words err, from process-compose's API, when it says this
// user may not reach the API socket: the state dir is another user's (a
// stack started with sudo, say), and whether a stack runs there cannot be
// told. nil for any other error.
func notThisUsers(stateDir string, err error) error {
	if !errors.Is(err, fs.ErrPermission) {
		return nil
	}
	return fmt.Errorf("cannot tell whether a stack runs from %s: this user may not enter it (%w); if another user started it (with sudo, say), run the command as that user", stateDir, err)
}

// checkStateDir refuses what down, status and logs (and up, before it asks
// whether the stack runs) would otherwise trust: a state dir that is not this
// user's, or lies below a directory another user could change
// (stackconfig's CheckStateDir), and each of files, in it, that another user
// owns. Run as root on such a state dir, down would take another user's
// socket for process-compose's API and kill the process groups its answer
// names, signal the pid their file names, or, through a state dir they can
// point at / or /var/lib, stop the system's own haproxy or redis-server as
// strays; logs would print whatever their links lead to.
func (l *launcher) checkStateDir(files ...string) error {
	if err := l.cfg.CheckStateDir(); err != nil {
		switch {
		case errors.Is(err, fs.ErrPermission):
			return notThisUsers(l.cfg.StateDir, err)
		case errors.Is(err, stackconfig.ErrNotOwned):
			return fmt.Errorf("%w; or, if another user started the stack (with sudo, say), run the command as that user", err)
		}
		return err
	}
	for _, f := range files {
		if err := stackconfig.CheckOwned(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("not using %s: %w", f, err)
		}
	}
	return nil
}

// errNotAnswering says that process-compose (pid) runs but its API on
// socket does not answer, and why (cause, when known).
func errNotAnswering(pid int, socket string, cause error) error {
	why := ""
	if cause != nil && !errors.Is(cause, procompose.ErrNotRunning) {
		why = fmt.Sprintf(" (%v)", cause)
	}
	return fmt.Errorf("process-compose (pid %d) runs but does not answer on %s%s: it may still be starting (try again), or be stopped or stuck (`stack down` stops it)",
		pid, socket, why)
}

func writePid(path string, pid int) error {
	return os.WriteFile(path, []byte(strconv.Itoa(pid)+"\n"), 0o600)
}

func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // no /proc (macOS): trust kill(0)
	}
	// The state follows the parenthesised command name: "pid (comm) S ...".
	if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] != 'Z'
	}
	return true
}

// groupAlive reports whether any process of the process group pgid is left.
// process-compose starts every process as the leader of its own group, so
// the group also holds anything the process forked.
func groupAlive(pgid int) bool {
	if pgid <= 0 {
		return false
	}
	return syscall.Kill(-pgid, 0) == nil && anyAliveInGroup(pgid)
}

// anyAliveInGroup scans /proc for a non-zombie member of pgid; without /proc
// it trusts kill(-pgid, 0).
func anyAliveInGroup(pgid int) bool {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return true
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(s[i+1:])
		// fields: state ppid pgrp ...
		if len(fields) < 3 || fields[0] == "Z" {
			continue
		}
		if g, _ := strconv.Atoi(fields[2]); g == pgid {
			_ = pid
			return true
		}
	}
	return false
}

// survivors lists the processes whose process group still has a live member.
func survivors(procs []procompose.Process) []procompose.Process {
	var left []procompose.Process
	for _, p := range procs {
		if p.Pid > 0 && groupAlive(p.Pid) {
			left = append(left, p)
		}
	}
	return left
}

// verifyGone waits briefly for every process of procs to be gone, then kills
// and reports any survivor of stateDir's stack. A pid seen earlier may have
// been reused since (a process restarted, and its old pid went to another
// program): a group whose leader is alive but no longer runs in stateDir
// (runsIn) is someone else's, and left alone.
func verifyGone(procs []procompose.Process, stateDir string) error {
	deadline := time.Now().Add(2 * time.Second)
	ours := func(ps []procompose.Process) []procompose.Process {
		var left []procompose.Process
		for _, p := range survivors(ps) {
			if !alive(p.Pid) || runsIn(p.Pid, stateDir) {
				left = append(left, p)
			}
		}
		return left
	}
	left := ours(procs)
	for len(left) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		left = ours(left)
	}
	if len(left) == 0 {
		return nil
	}
	var names []string
	for _, p := range left {
		_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
		names = append(names, fmt.Sprintf("%s (pid %d)", p.Name, p.Pid))
	}
	return fmt.Errorf("survived the shutdown and were killed with SIGKILL: %s", strings.Join(names, ", "))
}

// tail returns the last n lines of the log at path, or a note saying why
// there are none. A log with fewer lines than n that process-compose has
// rotated (rotatedlog) gets the rest from the piece before it: the lines
// just before a process failed may have gone there.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "(no log yet)"
		}
		return fmt.Sprintf("(cannot read: %v)", err)
	}
	defer f.Close()
	lines := lastLines(f, n)
	if opened, err := f.Stat(); err == nil && len(lines) < n {
		if piece := rotatedlog.PieceBefore(path, opened); piece != "" {
			if pf, err := os.Open(piece); err == nil {
				lines = append(lastLines(pf, n-len(lines)), lines...)
				pf.Close()
			}
		}
	}
	if len(lines) == 0 {
		return "(empty)"
	}
	return strings.Join(lines, "\n")
}

// lastLines returns the last n lines of f, read from its last 256 KB.
func lastLines(f *os.File, n int) []string {
	if st, err := f.Stat(); err == nil && st.Size() > 256<<10 {
		_, _ = f.Seek(-256<<10, io.SeekEnd)
	}
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return lines
}

// copyFile copies src to dst (mode 0755) through a temporary file and a
// rename, so a running copy of dst is never overwritten in place.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

// processName is the name process-compose.yaml gives the process that runs
// program: redis for redis-server, the program's own name for the others.
func processName(program string) string {
	if program == "redis-server" {
		return "redis"
	}
	return program
}

// stackCommands are the programs a stack runs (as /proc/<pid>/comm shows
// them: at most 15 bytes).
var stackCommands = map[string]bool{
	"redis-server": true, "haproxy": true, "auth-api": true, "core-api": true,
	"psp-connector": true, "process-compose": true,
}

// isWatchdog reports whether process pid is a launcher running `watchdog`
// (process-compose.yaml's watchdog process), whatever the launcher's file is
// called (stack; .stack-wrapped in the Nix package).
func isWatchdog(pid int) bool {
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return false
	}
	args := strings.Split(string(cmdline), "\x00")
	return len(args) > 1 && args[1] == "watchdog"
}

// strays finds processes of the stack whose state dir is stateDir: one of
// the stack's programs, or its watchdog, that runsIn it. They are what is left when
// process-compose itself was killed. Linux only (it reads /proc); nil
// elsewhere.
func strays(stateDir string) []procompose.Process {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var found []procompose.Process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil {
			continue
		}
		name := strings.TrimSpace(string(comm))
		switch {
		case stackCommands[name]:
		case isWatchdog(pid):
			name = "watchdog"
		default:
			continue
		}
		if !runsIn(pid, stateDir) {
			continue
		}
		if !alive(pid) {
			continue
		}
		found = append(found, procompose.Process{Name: name, Pid: pid})
	}
	return found
}

// runsIn reports whether process pid belongs to the stack whose state dir is
// stateDir: its environment has STACK_STATE_DIR=stateDir and STACK_LAUNCHER,
// as `up` gives process-compose and process-compose passes on to every
// process (a shell that merely exported STACK_STATE_DIR, and what it starts,
// is not the stack's), or it works in the state dir (process-compose starts
// them there; Redis, which overwrites its environment with its process title,
// works in its redis/ subdirectory: only redis-server counts there). Those
// two directories exactly: another stack's state dir may lie anywhere below
// this one. A state dir reached
// through a symlink is the same state dir: /proc shows working directories
// with symlinks resolved, and `up` may have been given either path. Without
// /proc it cannot tell, and says yes.
func runsIn(pid int, stateDir string) bool {
	if !haveProc() {
		return true
	}
	dirs := []string{stateDir}
	if real, err := filepath.EvalSymlinks(stateDir); err == nil && real != stateDir {
		dirs = append(dirs, real)
	}
	proc := filepath.Join("/proc", strconv.Itoa(pid))
	cwd, _ := os.Readlink(filepath.Join(proc, "cwd"))
	env, _ := os.ReadFile(filepath.Join(proc, "environ"))
	env = append([]byte{0}, env...)
	launched := bytes.Contains(env, []byte("\x00STACK_LAUNCHER="))
	for _, dir := range dirs {
		if cwd == dir || (cwd == filepath.Join(dir, "redis") && isCommand(pid, "redis-server")) {
			return true
		}
		if launched && bytes.Contains(env, []byte("\x00STACK_STATE_DIR="+dir+"\x00")) {
			return true
		}
	}
	// A process's own STACK_STATE_DIR is not resolved: a symlink repointed
	// since its stack started would make another stack's process ours.
	// Started through a symlink, the stack's processes still work in the
	// resolved state dir, which the working-directory test above matches.
	return false
}

// isCommand reports whether process pid runs the program name, as
// /proc/<pid>/comm shows it. Without /proc it cannot tell, and says yes.
func isCommand(pid int, name string) bool {
	comm, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
	if err != nil {
		return !haveProc()
	}
	return strings.TrimSpace(string(comm)) == name
}

// haveProc reports whether /proc is there to read processes from (Linux).
func haveProc() bool {
	_, err := os.Stat("/proc/self")
	return err == nil
}

// stopSurvivors stops the stack's processes still running in stateDir once
// its process-compose has exited (stopStrays, with grace), and reports them.
func stopSurvivors(stateDir string, grace time.Duration) error {
	if left := strays(stateDir); len(left) > 0 {
		return fmt.Errorf("survived the shutdown and were stopped: %s", strings.Join(stopStrays(left, grace), ", "))
	}
	return nil
}

// stopStrays stops the stack's processes in the order process-compose
// stops them (stopOrder): the watchdog first, so that it restarts nothing
// being stopped, then HAProxy, with its soft-stop signal (SIGUSR1,
// as process-compose.yaml has it: requests in flight finish), then the APIs,
// then psp-connector, and Redis only once the services that use it are gone
// (a connector still recording its charges needs Redis, or it charges them
// again after the next start). Each step gets SIGTERM (HAProxy SIGUSR1) and
// whatever is left of grace; what outlives it is killed. It returns a
// description of each process, in the order they were stopped.
func stopStrays(procs []procompose.Process, grace time.Duration) []string {
	procs = slices.Clone(procs)
	slices.SortStableFunc(procs, func(a, b procompose.Process) int { return stopOrder(a.Name) - stopOrder(b.Name) })
	var names []string
	deadline := time.Now().Add(grace)
	for i := 0; i < len(procs); {
		j := i
		for j < len(procs) && stopOrder(procs[j].Name) == stopOrder(procs[i].Name) {
			sig := syscall.SIGTERM
			if procs[j].Name == "haproxy" {
				sig = syscall.SIGUSR1
			}
			_ = syscall.Kill(procs[j].Pid, sig)
			names = append(names, fmt.Sprintf("%s (pid %d)", procs[j].Name, procs[j].Pid))
			j++
		}
		for _, p := range procs[i:j] {
			for alive(p.Pid) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if alive(p.Pid) {
				_ = syscall.Kill(p.Pid, syscall.SIGKILL)
			}
		}
		i = j
	}
	return names
}

// stopOrder is when a process of the stack (by its program, as strays names
// them) is stopped: process-compose itself first (it stops its own), then
// the reverse of processNames (each process before those it depends on).
func stopOrder(program string) int {
	i := slices.Index(processNames, processName(program))
	if i < 0 {
		return 0
	}
	return len(processNames) - i
}

// describeProcs lists processes as "name (pid N), ...".
func describeProcs(procs []procompose.Process) string {
	names := make([]string, len(procs))
	for i, p := range procs {
		names[i] = fmt.Sprintf("%s (pid %d)", p.Name, p.Pid)
	}
	return strings.Join(names, ", ")
}
