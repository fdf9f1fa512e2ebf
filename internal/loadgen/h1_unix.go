//go:build unix

package loadgen

import (
	"errors"
	"net"
	"syscall"
)

// idleConnAlive reports whether an idle connection is still open with
// nothing to read: a non-blocking peek finds neither the server's FIN nor
// unasked bytes.
func idleConnAlive(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	alive := true
	var buf [1]byte
	err = rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// n == 0 without an error is the FIN, n > 0 unasked bytes; only
		// "would block" means open and quiet.
		alive = errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK)
		return true
	})
	return alive && err == nil
}
