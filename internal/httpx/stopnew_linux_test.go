//go:build linux

package httpx

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestStopNewConnections: once stopNewConnections has run on a listener, a
// new connection no longer completes into its backlog (the SYN is dropped:
// the connect waits), one queued before is still accepted, and after the
// close a connect is refused. Without the filter the second connect
// completed at once, into the backlog, where the close would reset it.
func TestStopNewConnections(t *testing.T) {
	ln, err := listenTCP("127.0.0.1:0") // as Listen does: plain TCP
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	queued, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer queued.Close()

	if err := stopNewConnections(ln.(*net.TCPListener)); err != nil {
		t.Fatalf("stopNewConnections: %v", err)
	}
	// A dropped SYN is sent again after about a second: within 300 ms the
	// connect cannot have completed.
	if c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond); err == nil {
		c.Close()
		t.Fatalf("connect after stopNewConnections: completed, want it to wait (SYN dropped)")
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Errorf("connect after stopNewConnections: %v, want a timeout (SYN dropped)", err)
	}

	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(time.Second))
	c, err := ln.Accept()
	if err != nil {
		t.Fatalf("accept the connection queued before: %v", err)
	}
	if _, err := queued.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := c.Read(buf); err != nil || string(buf) != "ping" {
		t.Errorf("read from the connection queued before: %q, %v; want ping", buf, err)
	}
	c.Close()

	ln.Close()
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("connect after the close: completed, want refused")
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("connect after the close: %v, want connection refused", err)
	}
}

// TestStopNewConnectionsLetsAHalfDoneHandshakeComplete: a connection whose
// SYN was answered before stopNewConnections and whose ACK comes after it
// (RELIABILITY.md D72's residual window) still completes into the backlog,
// where the drain's sweep takes it. TCP_DEFER_ACCEPT holds the handshake
// half done on the listener's side until the client's first data, so the
// test can put the filter between the two. With a filter that dropped every
// packet, that data was dropped too: the connection never completed, and
// the close reset it with its request sent.
func TestStopNewConnectionsLetsAHalfDoneHandshakeComplete(t *testing.T) {
	ln, err := listenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tcp := ln.(*net.TCPListener)
	raw, err := tcp.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var setErr error
	if err := raw.Control(func(fd uintptr) {
		setErr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, 5)
	}); err != nil || setErr != nil {
		t.Fatalf("TCP_DEFER_ACCEPT: %v, %v", err, setErr)
	}
	client, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	_ = tcp.SetDeadline(time.Now().Add(100 * time.Millisecond))
	if c, err := tcp.Accept(); err == nil {
		c.Close()
		t.Fatal("accepted before the client's first data: the handshake was not held half done")
	}

	if err := stopNewConnections(tcp); err != nil {
		t.Fatalf("stopNewConnections: %v", err)
	}
	if _, err := client.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	_ = tcp.SetDeadline(time.Now().Add(2 * time.Second))
	c, err := tcp.Accept()
	if err != nil {
		t.Fatalf("accept the connection whose handshake the filter found half done: %v, want it completed", err)
	}
	defer c.Close()
	buf := make([]byte, 4)
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Errorf("read from it: %q, %v; want ping", buf, err)
	}
}

// TestServeListenerStopResetsNoNewConnection stops servers while clients
// open a new connection for every request, as fast as they can, and sorts
// every attempt: answered, refused at connect (retried safely), or broken
// after the connect (reset, or closed unanswered: the client cannot tell
// whether its request was served). Since the listener drops new SYNs from
// the sweep on (stopNewConnections), only a connection whose handshake was
// half done when the filter went on and whose ACK comes after the sweep has
// ended may break: at most mostBroken in its 64 stops. A connect that ends
// in a reset (ECONNRESET, where a refusal is ECONNREFUSED) is such a
// connection too, completed and reset before the dial looked (CI saw 2 in 32
// stops). Without the filter, the connections that completed between the
// sweep's last accept and the close were reset: 66–85 in 64 stops; with a
// filter that dropped the ACKs of half-done handshakes too, 0–4 in 64 stops;
// with the filter of today, 0 in 14 runs of 64 stops (10 of them beside CPU
// hogs, 3 under -race). mostBroken is three times the most seen with the
// filter of before, and a fifth of the least seen without one.
func TestServeListenerStopResetsNoNewConnection(t *testing.T) {
	const (
		rounds     = 4 // of servers stopped side by side, one after the other
		servers    = 16
		clients    = 4
		perStop    = 400 // requests each client sends at most: bounded loops
		mostBroken = 12
	)
	var all stopTally
	for range rounds {
		stopServers(t, servers, clients, perStop, &all)
	}
	t.Logf("%d stops: %d answered, %d refused at connect, %d broken after the connect",
		rounds*servers, all.answered.Load(), all.refused.Load(), all.broken.Load())
	if n := all.broken.Load(); n > mostBroken {
		var errs []string
		all.examples.Range(func(k, _ any) bool { errs = append(errs, k.(string)); return true })
		t.Errorf("%d connections broke after the connect (the listener reset them at its close), want at most %d: %v", n, mostBroken, errs)
	}
}

// stopTally counts the attempts of TestServeListenerStopResetsNoNewConnection,
// with one example of each way a connection broke.
type stopTally struct {
	answered, refused, broken atomic.Int64
	examples                  sync.Map
}

// stopServers starts servers side by side, each with clients opening a
// connection per request, stops each once its clients are under way, and
// counts every attempt in all (see TestServeListenerStopResetsNoNewConnection).
func stopServers(t *testing.T, servers, clients, perStop int, all *stopTally) {
	done := make(chan struct{}, servers)
	for range servers {
		go func() {
			defer func() { done <- struct{}{} }()
			ln, err := listenTCP("127.0.0.1:0")
			if err != nil {
				t.Error(err)
				return
			}
			addr := ln.Addr().String()
			stop := startServing(t, ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				WriteJSON(w, http.StatusOK, map[string]string{"served": "yes"})
			}))
			var wg sync.WaitGroup
			var sent atomic.Int64
			for range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range perStop {
						sent.Add(1)
						c, err := net.DialTimeout("tcp", addr, 5*time.Second)
						if err != nil {
							switch {
							case errors.Is(err, syscall.ECONNREFUSED):
								all.refused.Add(1)
								return // stopped: nothing more to send to
							case errors.Is(err, syscall.ECONNRESET):
								// The handshake completed (a reset
								// before it is a refusal) and the
								// close reset the connection before
								// the dial had looked: one that broke
								// after its connect, with nothing sent.
								all.broken.Add(1)
								all.examples.Store(err.Error(), true)
								continue
							}
							t.Errorf("connect: %v", err)
							return
						}
						_ = c.SetDeadline(time.Now().Add(5 * time.Second))
						_, err = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
						var res *http.Response
						if err == nil {
							res, err = http.ReadResponse(bufio.NewReader(c), nil)
						}
						c.Close()
						if err != nil {
							all.broken.Add(1)
							all.examples.Store(err.Error(), true)
							continue
						}
						res.Body.Close()
						all.answered.Add(1)
					}
				}()
			}
			// Stop once the clients are well under way.
			for sent.Load() < int64(clients*perStop/4) {
				time.Sleep(time.Millisecond)
			}
			began := time.Now()
			stop.cancel()
			stop.wait(t, began)
			wg.Wait()
		}()
	}
	for range servers {
		<-done
	}
}
