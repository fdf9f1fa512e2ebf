//go:build linux

package httpx

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
)

// takeQueued accepts a connection the kernel has queued on ln, at once and
// whatever ln's deadline: nil when none is queued. An Accept whose deadline
// has passed by the time it runs (its goroutine preempted after the
// deadline was set, on a busy machine) fails without looking at the queue,
// so the drain's sweep asks here before it takes the queue as empty.
// A connection its client reset while it was queued comes with a nil
// RemoteAddr (net's Accept gives one); http.Server allows for that.
func takeQueued(ln syscall.Conn) (net.Conn, error) {
	raw, err := ln.SyscallConn()
	if err != nil {
		return nil, err
	}
	for {
		nfd, acceptErr := -1, error(nil)
		if err := raw.Control(func(fd uintptr) {
			nfd, _, acceptErr = syscall.Accept4(int(fd), syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		}); err != nil {
			return nil, err
		}
		switch {
		case errors.Is(acceptErr, syscall.ECONNABORTED):
			continue // reset while queued: the next one, as net's Accept does
		case errors.Is(acceptErr, syscall.EAGAIN):
			return nil, nil
		case acceptErr != nil:
			return nil, os.NewSyscallError("accept4", acceptErr)
		}
		f := os.NewFile(uintptr(nfd), "accepted")
		c, err := net.FileConn(f) // a dup of nfd, on Go's poller
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("take a queued connection: %w", err)
		}
		return c, nil
	}
}
