//go:build unix

package stackconfig

import (
	"fmt"
	"os"
	"syscall"
)

// checkOwner refuses what fi describes (path) unless this process's
// effective user owns it. A state dir, or the secret file, of another user is
// theirs to change even after up restricts its mode: one a local user created
// in advance under a shared directory such as /tmp, with a
// secrets/jwt_secret of their own, would hand them the signing key, and with
// it any user's transactions (RELIABILITY.md D54).
func checkOwner(path string, fi os.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if euid := os.Geteuid(); int(st.Uid) != euid {
		return fmt.Errorf("%s is owned by uid %d, not by this user (uid %d): another user could read or replace what the stack keeps there; point STACK_STATE_DIR at a new directory of this user's", path, st.Uid, euid)
	}
	return nil
}
