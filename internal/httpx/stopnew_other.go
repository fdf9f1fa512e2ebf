//go:build !linux

package httpx

import "net"

// stopNewConnections does nothing outside Linux: a connection that
// completes between the drain's last accept and the close is reset there
// (see the Linux version).
func stopNewConnections(*net.TCPListener) error { return nil }
