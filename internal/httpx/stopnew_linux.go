//go:build linux

package httpx

import (
	"fmt"
	"net"
	"syscall"
)

// stopNewConnections has the kernel drop, from now on, every SYN that
// opens a connection to ln's socket (a socket filter): no new connection
// starts, and the client sends its SYN again about a second later, when the
// socket is closed and the connect is refused. Every other packet passes,
// so a connection whose SYN was answered before (with a request sock, or
// with a syncookie) still completes into the listen backlog when its ACK
// comes, and the drain's sweep takes it (until 2026-12-07 the filter
// dropped every packet, that ACK too: such a connection never completed
// and the close reset it, D72's residual window). Connections already in
// the backlog are sockets of their own, outside the filter, and can still
// be accepted; one that completes after it is a clone of the listener with
// a copy of the filter, which drops nothing it needs. Without the filter,
// one that completed between the drain's last accept and the close was
// reset by the close, possibly with its request sent (RELIABILITY.md, D72).
func stopNewConnections(ln *net.TCPListener) error {
	raw, err := ln.SyscallConn()
	if err != nil {
		return err
	}
	// A TCP socket's filter sees the segment from its TCP header on:
	// byte 13 holds the flags.
	dropSYNs := []syscall.SockFilter{
		{Code: syscall.BPF_LD | syscall.BPF_B | syscall.BPF_ABS, K: 13},
		{Code: syscall.BPF_ALU | syscall.BPF_AND | syscall.BPF_K, K: 0x12}, // SYN and ACK
		{Code: syscall.BPF_JMP | syscall.BPF_JEQ | syscall.BPF_K, K: 0x02, Jt: 0, Jf: 1},
		{Code: syscall.BPF_RET | syscall.BPF_K, K: 0},          // SYN without ACK: dropped
		{Code: syscall.BPF_RET | syscall.BPF_K, K: 0xffffffff}, // the rest: kept whole
	}
	var setErr error
	if err := raw.Control(func(fd uintptr) {
		// Deprecated in favour of golang.org/x/net/bpf, which only
		// assembles filters; attaching one is this call either way, and
		// golang.org/x/sys/unix would be 7 MB more of vendor/ for it.
		setErr = syscall.AttachLsf(int(fd), dropSYNs) //nolint:staticcheck // see above
	}); err != nil {
		return err
	}
	if setErr != nil {
		return fmt.Errorf("stop new connections on %s: %w", ln.Addr(), setErr)
	}
	return nil
}
