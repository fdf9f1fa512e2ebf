package stacktest

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// FillDisk fills the file system dir is on with a file in dir, until a
// write fails with ENOSPC, and returns a function that removes the file
// (space back). It fails tb on any other error.
func FillDisk(tb testing.TB, dir string) (free func()) {
	tb.Helper()
	path := filepath.Join(dir, "fill-"+strconv.Itoa(os.Getpid()))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	free = func() {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			tb.Errorf("free the disk: %v", err)
		}
	}
	tb.Cleanup(free)
	block := make([]byte, 4096)
	for range 1 << 20 { // 4 GB at most: a tmpfs of SmallDisk's is far smaller
		if _, err := f.Write(block); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return free
			}
			tb.Fatalf("fill %s: %v", dir, err)
		}
	}
	tb.Fatalf("fill %s: 4 GB written and the disk is not full", dir)
	return free
}
