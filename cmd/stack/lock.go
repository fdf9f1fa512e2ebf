package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/acme-payments/platform/internal/procompose"
)

// lockFile is the state dir's launcher lock.
func (l *launcher) lockFile() string { return filepath.Join(l.cfg.StateDir, "launcher.lock") }

// lockStateDir takes the state dir's launcher lock (an flock, which the
// kernel drops with the process, so it never goes stale), so that two
// launchers never start, or reset, one stack at once: without it both could
// pass the "is it running?" check while the first was still building. up
// holds it until process-compose has its pid file (with --wait, until the
// stack is ready; in the foreground, until the stack stops), reset until the
// directory is gone. The file is opened without following a symlink, and is
// not inherited by process-compose. Under the lock it checks again that the
// stack does not run (errIfRunning): another launcher may have started it
// since the caller's own check. It returns the release.
func (l *launcher) lockStateDir(ctx context.Context, client *procompose.Client) (release func(), err error) {
	f, err := os.OpenFile(l.lockFile(), os.O_CREATE|os.O_RDWR|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock the state dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		switch {
		case errors.Is(err, syscall.EWOULDBLOCK):
			return nil, l.errLauncherBusy()
		case errors.Is(err, syscall.ENOTSUP), errors.Is(err, syscall.ENOLCK):
			// A file system without locks (some network mounts): go on as
			// before the lock, with the checks alone.
			return func() {}, nil
		}
		return nil, fmt.Errorf("lock %s: %w", l.lockFile(), err)
	}
	if err := l.errIfRunning(ctx, client); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// errIfInUse is what up and reset check before they take the lock: the
// stack runs (errIfRunning), or processes of it run without
// process-compose (strays). Either may be the work of another launcher
// that is starting the stack right now, between its lock and process-compose's
// pid file, and the advice for a leftover (`stack down`) would stop that
// stack: while another launcher holds the lock, the refusal says so instead.
func (l *launcher) errIfInUse(ctx context.Context, client *procompose.Client, leftover string) error {
	err := l.errIfRunning(ctx, client)
	if err == nil {
		if left := strays(l.cfg.StateDir); len(left) > 0 {
			err = fmt.Errorf(leftover, describeProcs(left))
		}
	}
	// A stack that answers is running, whoever holds the lock (a
	// foreground up holds it for the stack's whole life): say so.
	if err != nil && !errors.Is(err, errStackRunning) && ctx.Err() == nil && l.launcherBusy() {
		return l.errLauncherBusy()
	}
	return err
}

// errLauncherBusy is the refusal while another launcher holds the lock.
func (l *launcher) errLauncherBusy() error {
	return fmt.Errorf("another launcher (stack up or stack reset) is using %s right now; when it is done, `stack status` says what runs", l.cfg.StateDir)
}

// launcherBusy reports whether another launcher holds the state dir's lock
// at this moment. Not for a launcher that holds it itself: its own lock
// makes the answer yes.
func (l *launcher) launcherBusy() bool {
	f, err := os.OpenFile(l.lockFile(), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer f.Close() // drops the lock if it was taken
	return errors.Is(syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB), syscall.EWOULDBLOCK)
}
