//go:build !linux

package stacktest

import (
	"runtime"
	"testing"
)

// SmallDisk is Linux's only (a tmpfs it mounts): elsewhere it skips.
func SmallDisk(tb testing.TB, size int64) string {
	tb.Helper()
	tb.Skipf("a tmpfs to fill is mounted only on Linux (GOOS %s); skipping", runtime.GOOS)
	return ""
}
