package httpx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// NewServer returns an http.Server for h with every timeout set, so that slow
// or idle clients cannot hold connections forever.
func NewServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// Serve listens on addr and, when socket is not empty, also on a unix socket
// at that path (HAProxy's way in: no TCP stack on the hop; a stale socket file
// left by a crash is replaced), logs one "ready" line once both are bound, and
// serves until ctx is done. Then it serves the connections already waiting
// (ServeListeners), stops accepting, lets in-flight requests finish within
// grace, and returns. A listen failure is returned at once,
// naming the address or path and the variables that set it (addr comes from
// HTTP_HOST and HTTP_PORT, socket from HTTP_SOCKET: envconfig.Server).
func Serve(ctx context.Context, srv *http.Server, addr, socket string, grace time.Duration, log *slog.Logger) error {
	lns, err := Listen(addr, socket)
	if err != nil {
		return err
	}
	return ServeListeners(ctx, srv, lns, grace, log)
}

// Listen is Serve's first step, for a caller that must know it can listen
// before it starts other work: it listens on addr and, when socket is not
// empty, on that unix socket too.
func Listen(addr, socket string) ([]net.Listener, error) {
	ln, err := listenTCP(addr)
	if err != nil {
		return nil, fmt.Errorf("HTTP_HOST, HTTP_PORT: listen on %s: %w", addr, err)
	}
	lns := []net.Listener{ln}
	if socket != "" {
		uln, err := listenUnix(socket)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("HTTP_SOCKET: %w", err)
		}
		lns = append(lns, uln)
	}
	return lns, nil
}

// listenTCP listens on addr with plain TCP. Go listens with Multipath TCP
// by default since 1.24 where the kernel has it, and an MPTCP socket
// refuses the socket filter that a stop puts on the listener
// (stopNewConnections: EOPNOTSUPP); its clients here are on loopback, and
// none speaks MPTCP.
func listenTCP(addr string) (net.Listener, error) {
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	return lc.Listen(context.Background(), "tcp", addr)
}

// listenUnix listens on a unix socket at path, first removing a socket file
// nobody answers on (left by a killed process). The file is removed when the
// server stops (ServeListeners), or else when the listener closes.
func listenUnix(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("listen on unix socket %s: a file that is not a socket is in the way", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("listen on unix socket %s: another process is serving on it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale unix socket %s: %w", path, err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on unix socket %s: %w", path, err)
	}
	return ln, nil
}

// ServeListener is Serve on a listener the caller opened (tests use port 0).
func ServeListener(ctx context.Context, srv *http.Server, ln net.Listener, grace time.Duration, log *slog.Logger) error {
	return ServeListeners(ctx, srv, []net.Listener{ln}, grace, log)
}

// ServeListeners is Serve on listeners the caller opened; the first one's
// address is the "addr" of the ready line, the others are "also". It takes
// srv over: it sets srv.ConnContext and srv.ConnState and wraps srv.Handler
// (keeping what they did), so call it once per server.
//
// When ctx is done it first serves the connections already waiting in each
// listener's backlog (a unix socket's file is removed first, so that no
// more come: a client's connect fails at once, and HAProxy answers 503),
// and only then stops accepting. Closing a listener resets the connections
// still queued on it, and http.Server closes unanswered a connection whose
// request it reads after Shutdown began: HAProxy answered both with a 502
// (RELIABILITY.md D47). So Shutdown waits until every connection accepted so
// far has had its first request reach the handler; one that has sent
// nothing by then is closed, as the listener's close would have reset it.
// All of that takes at most backlogDrainMax plus 100 ms.
//
// Every request that reaches the handler from the stop on is answered with
// Connection: close, and Shutdown waits until the connections kept alive
// have closed that way, for at most keepAliveDrainMax from the stop.
// Shutdown closes an idle one at once, and a client that had just sent a
// request on it gets no answer: HAProxy then closes its own client's
// connection unanswered (D48). A request already in the handler at the
// stop is answered as usual; its connection closes with the next one, or
// with Shutdown.
func ServeListeners(ctx context.Context, srv *http.Server, lns []net.Listener, grace time.Duration, log *slog.Logger) error {
	lns = slices.Clone(lns) // the caller's stay as they are
	bls := make([]*backlogListener, 0, len(lns))
	for i, ln := range lns {
		if bl := newBacklogListener(ln); bl != nil {
			lns[i] = bl
			bls = append(bls, bl)
		}
	}
	conns := trackConns(srv)
	// Each listener's Serve error, naming that listener.
	errc := make(chan error, len(lns))
	also := make([]string, 0, len(lns)-1)
	for i, ln := range lns {
		go func() {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve %s: %w", ln.Addr(), err)
				return
			}
			errc <- nil
		}()
		if i > 0 {
			also = append(also, ln.Addr().Network()+":"+ln.Addr().String())
		}
	}
	if len(also) > 0 {
		log.Info("ready", "addr", lns[0].Addr().String(), "also", also)
	} else {
		log.Info("ready", "addr", lns[0].Addr().String())
	}

	select {
	case err := <-errc:
		_ = srv.Close()
		if err == nil { // closed by someone else than this function
			err = fmt.Errorf("serve %s: %w", lns[0].Addr(), http.ErrServerClosed)
		}
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "grace", grace.String())
	conns.stopping.Store(true)
	keepAliveCtx, stopKeepAlive := context.WithTimeout(context.Background(), keepAliveDrainMax)
	defer stopKeepAlive()
	for _, bl := range bls {
		bl.drain()
	}
	// One bound for all of it, whatever a Serve loop or a client does.
	drainCtx, stopDrain := context.WithTimeout(context.Background(), backlogDrainMax+100*time.Millisecond)
	defer stopDrain()
	for _, bl := range bls {
		select {
		case <-bl.drained:
		case <-drainCtx.Done():
			// A Serve loop still draining would accept a connection
			// whose request Shutdown leaves unanswered: none from now.
			_ = bl.closeSocket()
		}
	}
	for _, bl := range bls {
		bl.waitFirstRequests(drainCtx)
	}
	conns.waitClosed(keepAliveCtx)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("drain HTTP server within %s: %w", grace, err)
	}
	for range lns {
		if err := <-errc; err != nil {
			return err
		}
	}
	log.Info("stopped")
	return nil
}

// backlogDrainMax bounds how long a stopping server waits for more
// connections in its listen backlog; the sweep after it (backlogSweepEnd)
// takes what is queued then. A unix socket gets no new ones once its file
// is gone; a TCP listener takes new ones too, as long as they come within
// backlogIdle of each other.
const backlogDrainMax = 250 * time.Millisecond

// backlogIdle is how long Accept waits for one more connection while
// draining before it takes the backlog as empty.
const backlogIdle = 5 * time.Millisecond

// backlogSweepEnd and backlogSweepIdle bound the sweep of the backlog at
// the end of a drain (backlogListener.sweep): it ends when an accept finds
// none within backlogSweepIdle (the kernel's queue empty too), or
// backlogSweepEnd past the drain's bound, whenever the accept loop began it.
// That fits in the 100 ms that ServeListeners allows past backlogDrainMax
// and leaves the rest for the first requests of the connections it took.
// The whole window is the sweep's, not a share of it counted from when it
// begins: on a busy machine the accept loop can lose the CPU for tens of
// milliseconds between two accepts, and a queued connection left when the
// sweep's time runs out is reset by the close (RELIABILITY.md D130, D133).
const (
	backlogSweepEnd  = 70 * time.Millisecond
	backlogSweepIdle = time.Millisecond
)

// backlogListener is a listener that can serve its backlog before it
// closes (ServeListeners). While draining, its Accept returns the
// connections already queued, each with a short deadline for the next; once
// none comes within backlogIdle (or backlogDrainMax has passed) it takes
// what is queued still (sweep), closes its socket (a later connect is
// refused), reports drained and waits for Close, rather than handing
// http.Server an error it would retry or end on too early. It keeps the connections whose first
// request has not reached the handler yet (firstRequestConn).
type backlogListener struct {
	net.Listener
	deadline func(time.Time) error
	raw      syscall.Conn      // the socket, for takeQueued
	unix     *net.UnixListener // nil for TCP
	tcp      *net.TCPListener  // nil for a unix socket

	draining  atomic.Bool
	drainEnd  atomic.Int64 // UnixNano by which draining stops, however busy
	drained   chan struct{}
	drainOnce sync.Once
	closed    chan struct{}
	closeOnce sync.Once
	// sweepEnd is when the sweep of what is queued after the drain's wait
	// ends (UnixNano, sweep): 0 before it, in the past once it has ended.
	sweepEnd atomic.Int64
	// The socket closes once drained, before Close.
	socketOnce sync.Once
	socketErr  error

	mu      sync.Mutex
	waiting map[*firstRequestConn]struct{}
}

// newBacklogListener wraps a TCP or unix listener; nil for any other, which
// is closed as it is.
func newBacklogListener(ln net.Listener) *backlogListener {
	bl := &backlogListener{Listener: ln, drained: make(chan struct{}), closed: make(chan struct{}),
		waiting: make(map[*firstRequestConn]struct{})}
	switch l := ln.(type) {
	case *net.TCPListener:
		bl.deadline, bl.raw, bl.tcp = l.SetDeadline, l, l
	case *net.UnixListener:
		bl.deadline, bl.raw, bl.unix = l.SetDeadline, l, l
	default:
		return nil
	}
	return bl
}

// drain begins serving the backlog: a unix socket's file goes first, so
// that connecting fails from now on instead of queueing a connection that
// would be reset; the deadline wakes an Accept that is waiting.
func (l *backlogListener) drain() {
	if l.unix != nil {
		// Removed now, so a successor's socket at the same path must not
		// go at Close; an abstract socket (@name) has no file. Before
		// draining is set: from then on Accept may close the socket.
		l.unix.SetUnlinkOnClose(false)
		if path := l.unix.Addr().String(); !strings.HasPrefix(path, "@") {
			_ = os.Remove(path)
		}
	}
	l.drainEnd.Store(time.Now().Add(backlogDrainMax).UnixNano())
	l.draining.Store(true)
	_ = l.deadline(l.nextDeadline())
}

// nextDeadline is when a draining Accept stops waiting for one more.
func (l *backlogListener) nextDeadline() time.Time {
	return time.Unix(0, min(time.Now().Add(backlogIdle).UnixNano(), l.drainEnd.Load()))
}

func (l *backlogListener) Accept() (net.Conn, error) {
	if l.sweepEnd.Load() != 0 {
		return l.sweep()
	}
	if l.draining.Load() {
		// From this call on: the time http.Server took to start the last
		// connection's goroutine must not count, or a busy machine would
		// end the drain with connections still queued.
		_ = l.deadline(l.nextDeadline())
	}
	c, err := l.Listener.Accept()
	if err == nil {
		return l.track(c), nil
	}
	if !l.draining.Load() {
		return nil, err
	}
	l.sweepEnd.Store(l.drainEnd.Load() + int64(backlogSweepEnd))
	if l.tcp != nil {
		// From here no new connection starts (Linux): the sweep takes
		// all there will be, and one whose handshake was half done if it
		// completes within backlogSweepIdle. Should the filter fail, the
		// sweep is as before: one that completes after it is reset.
		_ = stopNewConnections(l.tcp)
	}
	return l.sweep()
}

// sweep takes, once the drain's wait has ended (none came within
// backlogIdle, or backlogDrainMax passed), what the kernel has queued: a
// deadline that passed before the poller reported a queued connection
// ends the wait with that connection still queued, and the close would
// reset it. Each accept here tries the queue first, and waits at most
// backlogSweepIdle for a connection; the sweep ends on the first accept
// that finds none, or backlogSweepEnd past drainEnd, so it may leave some
// of a long queue, and takes connections that come meanwhile. Then the
// socket closes, so that a client that connects from then on is refused at
// once, which it can retry, rather than queued and reset when Shutdown
// closes the listener, maybe with its request sent.
func (l *backlogListener) sweep() (net.Conn, error) {
	if now, end := time.Now().UnixNano(), l.sweepEnd.Load(); now < end {
		_ = l.deadline(time.Unix(0, min(now+int64(backlogSweepIdle), end)))
		if c, err := l.Listener.Accept(); err == nil {
			return l.track(c), nil
		}
		if c, err := takeQueued(l.raw); err == nil && c != nil {
			return l.track(c), nil
		}
		l.sweepEnd.Store(1) // ended: none came
	}
	_ = l.closeSocket()
	l.drainOnce.Do(func() { close(l.drained) })
	<-l.closed
	return nil, net.ErrClosed
}

// track keeps c until its first request reaches the handler.
func (l *backlogListener) track(c net.Conn) net.Conn {
	fc := &firstRequestConn{Conn: c, l: l}
	l.mu.Lock()
	l.waiting[fc] = struct{}{}
	l.mu.Unlock()
	return fc
}

func (l *backlogListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.closeSocket()
}

// closeSocket closes the listening socket once; Shutdown's Close after the
// drain closed it must not fail with "use of closed network connection".
func (l *backlogListener) closeSocket() error {
	l.socketOnce.Do(func() { l.socketErr = l.Listener.Close() })
	return l.socketErr
}

// waitFirstRequests waits until every connection has had its first request
// reach the handler, or closed; when ctx ends first, it closes those that
// have not, which have sent nothing whole (as the listener's close would
// have reset them, before; a silent one would hold Shutdown for the
// server's ReadHeaderTimeout).
func (l *backlogListener) waitFirstRequests(ctx context.Context) {
	if waitUntil(ctx, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.waiting) == 0
	}) {
		return
	}
	l.mu.Lock()
	left := make([]*firstRequestConn, 0, len(l.waiting))
	for c := range l.waiting {
		left = append(left, c)
	}
	l.mu.Unlock()
	for _, c := range left {
		c.Close()
	}
}

// waitUntil checks done every millisecond until it holds (true) or ctx
// ends (false).
func waitUntil(ctx context.Context, done func() bool) bool {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !done() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// firstRequestConn is an accepted connection until its first request
// reaches the handler (trackConns) or it closes: until then, a
// stopping server waits for it (waitFirstRequests).
type firstRequestConn struct {
	net.Conn
	l    *backlogListener
	once sync.Once
}

func (c *firstRequestConn) settle() {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.waiting, c)
		c.l.mu.Unlock()
	})
}

func (c *firstRequestConn) Close() error {
	c.settle()
	return c.Conn.Close()
}

// CloseWrite passes the half-close on, which http.Server uses to let a
// client read an error answer before the connection closes.
func (c *firstRequestConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

type firstRequestConnKey struct{}

// keepAliveDrainMax bounds how long, from the stop, a stopping server
// waits for its connections to close after an answer with Connection:
// close (ServeListeners). Under load HAProxy sends its next request on
// each within milliseconds; one it leaves idle until then is closed by
// Shutdown.
const keepAliveDrainMax = 250 * time.Millisecond

// connTracker follows a server's connections for its stop: how many are
// open, and, once stopping, it has each request from then on answered with
// Connection: close, so that the client stops reusing the connection
// before the server would close it idle.
type connTracker struct {
	stopping atomic.Bool
	open     atomic.Int64
}

// trackConns takes srv's ConnState, ConnContext and Handler over (keeping
// what they did). The handler settles each firstRequestConn when a request
// of it arrives (from then on Shutdown waits for it), and says Connection:
// close once stopping.
func trackConns(srv *http.Server) *connTracker {
	t := &connTracker{}
	connState := srv.ConnState
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			t.open.Add(1)
		case http.StateClosed, http.StateHijacked:
			t.open.Add(-1)
		}
		if connState != nil {
			connState(c, st)
		}
	}
	connContext := srv.ConnContext
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if connContext != nil {
			ctx = connContext(ctx, c)
		}
		if fc, ok := c.(*firstRequestConn); ok {
			ctx = context.WithValue(ctx, firstRequestConnKey{}, fc)
		}
		return ctx
	}
	h := srv.Handler
	if h == nil {
		h = http.DefaultServeMux
	}
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fc, ok := r.Context().Value(firstRequestConnKey{}).(*firstRequestConn); ok {
			fc.settle()
		}
		if t.stopping.Load() {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
	return t
}

// waitClosed waits until every connection has closed, or ctx ends.
func (t *connTracker) waitClosed(ctx context.Context) {
	waitUntil(ctx, func() bool { return t.open.Load() == 0 })
}
