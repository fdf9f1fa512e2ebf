//go:build linux

package httpx

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestTakeQueuedIgnoresThePassedDeadline: with the listener's deadline
// passed, Accept fails without looking at the queue; takeQueued takes each
// queued connection, as a working conn, then reports none.
func TestTakeQueuedIgnoresThePassedDeadline(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			addr := "127.0.0.1:0"
			if network == "unix" {
				addr = filepath.Join(t.TempDir(), "s")
			}
			ln, err := net.Listen(network, addr)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			const queued = 3
			for i := range queued {
				c, err := net.DialTimeout(network, ln.Addr().String(), time.Second)
				if err != nil {
					t.Fatalf("connection %d: %v", i, err)
				}
				defer c.Close()
				if _, err := c.Write([]byte{byte('a' + i)}); err != nil {
					t.Fatal(err)
				}
			}
			raw := ln.(syscall.Conn)
			if err := ln.(interface{ SetDeadline(time.Time) error }).SetDeadline(time.Now().Add(-time.Second)); err != nil {
				t.Fatal(err)
			}
			if c, err := ln.Accept(); !errors.Is(err, os.ErrDeadlineExceeded) {
				if c != nil {
					c.Close()
				}
				t.Fatalf("Accept past the deadline: %v, want %v", err, os.ErrDeadlineExceeded)
			}
			for i := range queued {
				c, err := takeQueued(raw)
				if err != nil || c == nil {
					t.Fatalf("takeQueued, connection %d of %d queued: %v, %v", i+1, queued, c, err)
				}
				defer c.Close()
				_ = c.SetReadDeadline(time.Now().Add(time.Second))
				b := make([]byte, 1)
				if _, err := c.Read(b); err != nil || b[0] != byte('a'+i) {
					t.Errorf("connection %d read %q, %v; want %q", i+1, b, err, 'a'+i)
				}
			}
			if c, err := takeQueued(raw); c != nil || err != nil {
				t.Errorf("takeQueued with none queued: %v, %v; want nil, nil", c, err)
			}
		})
	}
}
