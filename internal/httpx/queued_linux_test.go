//go:build linux

package httpx

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// listenForTest listens on a loopback port ("tcp") or on a socket in the
// test's temporary dir ("unix"), closed at the test's end.
func listenForTest(t *testing.T, network string) net.Listener {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "s")
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// TestTakeQueuedIgnoresThePassedDeadline: with the listener's deadline
// passed, Accept fails without looking at the queue; takeQueued takes each
// queued connection, as a working conn, then reports none.
func TestTakeQueuedIgnoresThePassedDeadline(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			ln := listenForTest(t, network)
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
				// A TCP connect can return before the kernel has put the
				// connection in the queue (the loopback's ACK handled later,
				// on a busy machine): asked again for up to a second.
				var c net.Conn
				var err error
				for try := 0; c == nil && err == nil && try < 1000; try++ {
					if c, err = takeQueued(raw); c == nil && err == nil {
						time.Sleep(time.Millisecond)
					}
				}
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

// takeQueuedListener accepts only through takeQueued, polling, and counts
// what it took.
type takeQueuedListener struct {
	net.Listener
	closed chan struct{}
	taken  *atomic.Int32
}

func (l takeQueuedListener) Accept() (net.Conn, error) {
	for {
		c, err := takeQueued(l.Listener.(syscall.Conn))
		if err != nil {
			return nil, err
		}
		if c != nil {
			l.taken.Add(1)
			return c, nil
		}
		select {
		case <-l.closed:
			return nil, net.ErrClosed
		case <-time.After(time.Millisecond):
		}
	}
}

// TestTakeQueuedConnectionsAreServed: the connections the drain's sweep
// takes through takeQueued are served as any other: http.Server answers a
// request on one, TCP and unix, with the peer's address as Accept gives it,
// and keeps the connection alive for the next request.
func TestTakeQueuedConnectionsAreServed(t *testing.T) {
	for _, tc := range []struct{ network, remote string }{
		{"tcp", "127.0.0.1:"},
		{"unix", "@"}, // an unnamed client socket, as net's Accept has it
	} {
		t.Run(tc.network, func(t *testing.T) {
			ln := listenForTest(t, tc.network)
			tql := takeQueuedListener{Listener: ln, closed: make(chan struct{}), taken: new(atomic.Int32)}
			srv := &http.Server{
				Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					_, _ = io.WriteString(w, r.RemoteAddr)
				}),
				ReadHeaderTimeout: 5 * time.Second,
			}
			served := make(chan error, 1)
			go func() { served <- srv.Serve(tql) }()
			defer func() {
				close(tql.closed)
				_ = srv.Close()
				if err := <-served; !errors.Is(err, http.ErrServerClosed) {
					t.Errorf("Serve: %v, want %v", err, http.ErrServerClosed)
				}
			}()
			client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
				DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, tc.network, ln.Addr().String())
				},
			}}
			defer client.CloseIdleConnections()
			for i := range 2 { // the second on the kept-alive connection
				res, err := client.Get("http://taken/")
				if err != nil {
					t.Fatalf("request %d: %v", i+1, err)
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), tc.remote) {
					t.Errorf("request %d: %d, RemoteAddr %q; want 200, %q…", i+1, res.StatusCode, body, tc.remote)
				}
			}
			if n := tql.taken.Load(); n != 1 {
				t.Errorf("connections taken for 2 requests: %d, want 1 (kept alive)", n)
			}
		})
	}
}

// TestTakeQueuedGoesPastAConnectionResetWhileQueued: a client that gave up
// (a reset) while its connection was queued neither fails takeQueued nor
// hides the connection queued behind it. Its connection is either skipped
// (ECONNABORTED, as net's Accept skips it) or taken with no peer address
// (the kernel has none for it any more, which http.Server accepts), never
// an error, which would end the drain's sweep with the next one still
// queued, for the close to reset.
func TestTakeQueuedGoesPastAConnectionResetWhileQueued(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	gaveUp, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	gaveUpAddr := gaveUp.LocalAddr().String()
	_ = gaveUp.(*net.TCPConn).SetLinger(0) // its close resets it
	gaveUp.Close()
	waiting, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer waiting.Close()
	if _, err := waiting.Write([]byte("w")); err != nil {
		t.Fatal(err)
	}
	raw := ln.(syscall.Conn)
	// Asked again for up to a second: a loopback connect can return before
	// its connection is queued.
	for try := 0; try < 1000; try++ {
		c, err := takeQueued(raw)
		if err != nil {
			t.Fatalf("takeQueued after a connection reset while queued: %v", err)
		}
		if c == nil {
			time.Sleep(time.Millisecond)
			continue
		}
		if c.RemoteAddr() == nil || c.RemoteAddr().String() == gaveUpAddr { // the reset one
			c.Close()
			continue
		}
		defer c.Close()
		if got, want := c.RemoteAddr().String(), waiting.LocalAddr().String(); got != want {
			t.Fatalf("took the connection of %s, want the one queued behind the reset one, %s", got, want)
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		b := make([]byte, 1)
		if _, err := c.Read(b); err != nil || b[0] != 'w' {
			t.Errorf("the connection queued behind the reset one read %q, %v; want %q", b, err, "w")
		}
		return
	}
	t.Fatal("takeQueued never took the connection queued behind the reset one")
}
