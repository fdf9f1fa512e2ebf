//go:build !unix

package loadgen

import "net"

// idleConnAlive cannot peek here: the connection is assumed open.
func idleConnAlive(net.Conn) bool { return true }
