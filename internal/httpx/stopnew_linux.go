//go:build linux

package httpx

import (
	"fmt"
	"net"
	"syscall"
)

// stopNewConnections has the kernel drop every packet that reaches ln's
// socket from now on (a socket filter that accepts nothing): the SYN of a
// new connection is dropped, so none completes into the listen backlog any
// more, and the client sends its SYN again about a second later, when the
// socket is closed and the connect is refused. Connections already in the
// backlog are sockets of their own, outside the filter, and can still be
// accepted. Without it, one that completed between the drain's last accept
// and the close was reset by the close, possibly with its request sent
// (RELIABILITY.md, "Listen backlog at SIGTERM").
func stopNewConnections(ln *net.TCPListener) error {
	raw, err := ln.SyscallConn()
	if err != nil {
		return err
	}
	dropAll := []syscall.SockFilter{{Code: syscall.BPF_RET | syscall.BPF_K, K: 0}}
	var setErr error
	if err := raw.Control(func(fd uintptr) {
		// Deprecated in favour of golang.org/x/net/bpf, which only
		// assembles filters; attaching one is this call either way, and
		// golang.org/x/sys/unix would be 7 MB more of vendor/ for it.
		setErr = syscall.AttachLsf(int(fd), dropAll) //nolint:staticcheck // see above
	}); err != nil {
		return err
	}
	if setErr != nil {
		return fmt.Errorf("stop new connections on %s: %w", ln.Addr(), setErr)
	}
	return nil
}
