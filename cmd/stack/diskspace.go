package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// The room up wants on the state dir's file system. Every write of the
// stack goes there (with the stack's own Redis): Redis's AOF (about 1.5 KB
// a transaction, measured: 11.5 MB after 7,418), the logs (HAProxy's
// access log about 425 bytes a transaction) and psp-connector's ledger
// copy, which keeps 1 MB allocated ahead and charges nothing once that is
// used up. On a full disk Redis exits at its first AOF write that does not
// fit (appendfsync always), and is restarted only to exit again, while
// core-api answers 503: `up --wait` reported every process ready on a full
// disk, and the first transaction stopped the stack (RELIABILITY.md, "A
// full disk").
const (
	// leastFreeBytes: below it, up refuses (the ledger copy's 1 MB, and
	// Redis's first writes).
	leastFreeBytes = 4 << 20
	// warnFreeBytes: below it, up warns: about 30,000 transactions.
	warnFreeBytes = 64 << 20
)

// checkFreeSpace refuses to start the stack when the state dir's file
// system has less than leastFreeBytes free, and with warn warns under
// warnFreeBytes, naming the state dir and what is free. The logs up is
// about to delete (clearRunFiles) count as free. Up calls it before it
// builds anything, to refuse at once, and again once the build and the
// launcher's copy are in bin/ (34 MB for the three services, 7 MB for the
// copy under `go run`), to start on what they left: checked only before,
// a state dir with a little more than they take free passed, and the stack
// started under leastFreeBytes (TestUpLeavesRoomAfterItsBuild). It warns
// then only.
func (l *launcher) checkFreeSpace(warn bool) error {
	dir := l.cfg.StateDir
	free, err := freeBytes(dir)
	if err != nil {
		// Not knowing is no reason to refuse: the writes that fail say so.
		fmt.Fprintf(l.stderr, "stack: warning: cannot tell how much room the state dir's file system has (%s): %v\n", dir, err)
		return nil
	}
	logs, _ := filepath.Glob(filepath.Join(l.cfg.LogDir(), "*.log"))
	for _, f := range logs {
		if st, err := os.Lstat(f); err == nil && st.Mode().IsRegular() {
			free += st.Size()
		}
	}
	switch {
	case free < leastFreeBytes:
		return fmt.Errorf("the state dir %s%s has %s free on its file system, less than the %s the stack needs to start: Redis would exit at its first write to its AOF, and every transaction be answered 503; free some space there, or point STACK_STATE_DIR at a file system with room",
			dir, l.cfg.StateDirNote(), megabytes(free), megabytes(leastFreeBytes))
	case free < warnFreeBytes && warn:
		fmt.Fprintf(l.stderr, "stack: warning: the state dir's file system has only %s free (%s): each transaction takes about 2 KB there (Redis's AOF, the logs), and once it is full Redis stops and core-api answers 503 until there is room\n",
			megabytes(free), dir)
	}
	return nil
}

// freeBytes is how many bytes a user without privileges can still write on
// the file system dir is on.
func freeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil //nolint:unconvert // Bsize is uint32 on macOS
}

// megabytes says n bytes in MB, with one decimal under 10 MB.
func megabytes(n int64) string {
	if n < 10<<20 {
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d MB", n>>20)
}
