package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/acme-payments/platform/internal/procompose"
)

// down asks process-compose to stop every process in reverse dependency
// order (the watchdog and HAProxy first, Redis after the services that use it), waits until
// process-compose has exited, and checks that no process of the stack
// survived; survivors are killed and reported as an error.
func (l *launcher) down(ctx context.Context, args []string) error {
	start := time.Now()
	fs := newFlagSet("down")
	timeout := fs.Duration("timeout", 90*time.Second, "give up waiting after this long")
	if err := l.parseFlags(fs, args); err != nil {
		return err
	}
	if *timeout <= 0 {
		return &exitError{code: 2, err: fmt.Errorf("--timeout must be a positive duration such as 90s, got %s", *timeout)}
	}
	c := l.cfg
	if err := l.checkStateDir(c.ProcessComposeSocket(), l.pidFile()); err != nil {
		return err
	}
	client := procompose.NewClient(c.ProcessComposeSocket())
	defer client.Close()
	pcPid := l.processComposePid()

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	// A stopped (SIGSTOP) or stuck process-compose keeps its socket bound
	// and never answers: ask for a few seconds only.
	askCtx, cancelAsk := context.WithTimeout(ctx, 3*time.Second)
	procs, err := client.Processes(askCtx)
	cancelAsk()
	if err != nil && pcPid > 0 && ctx.Err() == nil {
		err = procompose.ErrNotRunning // its API is gone or silent; it is handled below
	}
	if err != nil && apiGone(err, l.processComposePid()) {
		err = procompose.ErrNotRunning // dropped by a process-compose gone since (D76)
	}
	if _, statErr := os.Lstat(c.ProcessComposeSocket()); err != nil && pcPid <= 0 && errors.Is(statErr, os.ErrNotExist) {
		// Nothing to ask, however short the timeout: only strays to look for.
		err = procompose.ErrNotRunning
	}
	if errors.Is(err, procompose.ErrNotRunning) {
		if pcPid > 0 {
			// The API is gone or silent but process-compose is not: end it
			// (SIGCONT in case it was stopped), which stops its processes
			// too; if it does not end within their stop timeout, kill it,
			// and its processes are stopped below.
			fmt.Fprintf(l.stderr, "stack: process-compose (pid %d) does not answer on %s; sending SIGTERM\n", pcPid, c.ProcessComposeSocket())
			_ = syscall.Kill(pcPid, syscall.SIGTERM)
			_ = syscall.Kill(pcPid, syscall.SIGCONT)
			waitCtx, cancelWait := context.WithTimeout(ctx, time.Duration(c.ServiceStopTimeout())*time.Second)
			err := waitExit(waitCtx, pcPid)
			cancelWait()
			if err != nil {
				fmt.Fprintf(l.stderr, "stack: process-compose (pid %d) did not stop; sending SIGKILL\n", pcPid)
				_ = syscall.Kill(pcPid, syscall.SIGKILL)
				if err := waitExit(ctx, pcPid); err != nil {
					return err
				}
			}
		}
		os.Remove(l.pidFile())
		if left := strays(c.StateDir); len(left) > 0 {
			fmt.Fprintf(l.stderr, "stack: process-compose is gone but %s of its processes are not; stopping them\n", strconv.Itoa(len(left)))
			names := stopStrays(left, graceWithin(ctx, time.Duration(c.ServiceStopTimeout())*time.Second))
			fmt.Fprintf(l.stdout, "stack: stopped leftover processes: %s\n", strings.Join(names, ", "))
			return nil
		}
		if pcPid > 0 {
			fmt.Fprintf(l.stdout, "stack: stopped process-compose (pid %d); none of its processes left running\n", pcPid)
			return nil
		}
		fmt.Fprintf(l.stdout, "stack: not running (state dir %s)\n", l.rel(c.StateDir))
		return nil
	}
	if err := notThisUsers(c.StateDir, err); err != nil {
		return err
	}
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("--timeout %s ran out before process-compose answered; nothing was stopped: %w", *timeout, err)
	}
	if err != nil {
		return err
	}
	var running []procompose.Process
	for _, p := range procs {
		if p.Pid > 0 && p.IsRunning {
			running = append(running, p)
		}
	}
	fmt.Fprintf(l.stderr, "stack: stopping %d processes (the watchdog and HAProxy first, Redis after the services that use it)\n", len(running))
	// SIGTERM makes process-compose stop its processes in order, as the API's
	// POST /project/stop does; the API is used only when process-compose's pid
	// is unknown (no /proc). Through the API process-compose can outlive
	// its last process by 5 s: when a process exits between process-compose's
	// stop signal and the start of its kill timer (forceKillOnTimeout in its
	// app/process.go; v1.64.1, and the same code in later releases), the
	// request's handler waits out the whole shutdown timeout, and on exit
	// process-compose's API server waits up to 5 s for that request. A signal
	// leaves no request to wait for.
	if pcPid > 0 {
		if err := syscall.Kill(pcPid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("ask process-compose (pid %d) to stop: %w", pcPid, err)
		}
	} else if err := client.ShutDown(ctx); err != nil && !errors.Is(err, procompose.ErrNotRunning) {
		return fmt.Errorf("ask process-compose to stop: %w", err)
	}
	if pcPid > 0 {
		if err := waitExit(ctx, pcPid); err != nil {
			why := "interrupted"
			if errors.Is(err, context.DeadlineExceeded) {
				why = "--timeout " + timeout.String() + " ran out"
			}
			return fmt.Errorf("%s while process-compose (pid %d) was stopping the stack; it carries on: `stack status` says when it is done", why, pcPid)
		}
	} else {
		for client.Alive(ctx) {
			select {
			case <-ctx.Done():
				return fmt.Errorf("process-compose still answers after %s", *timeout)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	leftovers := running
	if pcPid > 0 {
		// Probes that process-compose ran are in its own process group.
		leftovers = append(leftovers, procompose.Process{Name: "process-compose", Pid: pcPid})
	}
	if err := verifyGone(leftovers, c.StateDir); err != nil {
		return err
	}
	if err := stopSurvivors(c.StateDir, graceWithin(ctx, 5*time.Second)); err != nil {
		return err
	}
	os.Remove(l.pidFile())
	os.Remove(c.ProcessComposeSocket())
	fmt.Fprintf(l.stdout, "stack: stopped %d processes in %dms; none left running\n", len(running), time.Since(start).Milliseconds())
	return nil
}

// graceWithin is grace, cut to what is left before ctx's deadline (--timeout):
// a leftover that ignores SIGTERM is killed when the time is up.
func graceWithin(ctx context.Context, grace time.Duration) time.Duration {
	if deadline, ok := ctx.Deadline(); ok {
		return max(min(grace, time.Until(deadline)), 0)
	}
	return grace
}

// waitExit waits until pid is gone, or fails when ctx ends first.
func waitExit(ctx context.Context, pid int) error {
	for alive(pid) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("process-compose (pid %d) still running: %w", pid, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}
