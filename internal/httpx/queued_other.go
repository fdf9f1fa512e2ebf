//go:build !linux

package httpx

import (
	"net"
	"syscall"
)

// takeQueued takes nothing outside Linux: there the drain's sweep relies
// on Accept alone, whose deadline can pass before it looks at the queue
// (see the Linux version).
func takeQueued(syscall.Conn) (net.Conn, error) { return nil, nil }
