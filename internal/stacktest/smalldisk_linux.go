//go:build linux

package stacktest

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// SmallDisk mounts a tmpfs of size bytes on a new directory under the
// system's temp dir, owned by this user (mode 0700), and unmounts it when
// tb ends: a file system tests can fill, to see what a full disk does
// (ENOSPC). Only root can mount: as another user it mounts with `sudo -n`
// when that needs no password, and otherwise skips saying so, even under
// CI=true: `nix flake check` runs the tests with CI=true as an unprivileged
// build user, in a sandbox without sudo. As root (.ci/run) a mount that
// fails fails the test under CI=true. RLIMIT_FSIZE, which needs no privilege, is no
// stand-in: it fails writes with EFBIG, but lets fallocate with
// FALLOC_FL_KEEP_SIZE allocate past it, so room kept ahead by allocation,
// what a full disk is about, cannot be tried with it.
func SmallDisk(tb testing.TB, size int64) string {
	tb.Helper()
	dir := ShortTempDir(tb, "small-disk-")
	opts := fmt.Sprintf("size=%d,mode=0700,uid=%d,gid=%d", size, os.Getuid(), os.Getgid())
	var unmount func() error
	if os.Geteuid() == 0 {
		if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, opts); err != nil {
			Missing(tb, "mount a tmpfs on %s as root: %v", dir, err)
		}
		unmount = func() error { return syscall.Unmount(dir, syscall.MNT_DETACH) }
	} else {
		if out, err := exec.Command("sudo", "-n", "mount", "-t", "tmpfs", "-o", opts, "tmpfs", dir).CombinedOutput(); err != nil {
			tb.Skipf("a full disk is tried on a tmpfs, which only root can mount, and `sudo -n mount` failed: %v %s; skipping (run the tests as root, as .ci/run does, to try it)", err, out)
		}
		unmount = func() error {
			if out, err := exec.Command("sudo", "-n", "umount", "-l", dir).CombinedOutput(); err != nil {
				return fmt.Errorf("%w: %s", err, out)
			}
			return nil
		}
	}
	// Registered after ShortTempDir's removal, so run before it.
	tb.Cleanup(func() {
		if err := unmount(); err != nil {
			tb.Errorf("unmount the tmpfs on %s: %v", dir, err)
		}
	})
	return dir
}
