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
			return nil, fmt.Errorf("another launcher (stack up or stack reset) is using %s right now; when it is done, `stack status` says what runs", l.cfg.StateDir)
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
