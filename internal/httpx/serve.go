package httpx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
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
// serves until ctx is done. Then it stops accepting, lets in-flight requests
// finish within grace, and returns. A listen failure is returned at once,
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
	ln, err := net.Listen("tcp", addr)
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

// listenUnix listens on a unix socket at path, first removing a socket file
// nobody answers on (left by a killed process). Closing the listener removes
// the file.
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
// address is the "addr" of the ready line, the others are "also".
func ServeListeners(ctx context.Context, srv *http.Server, lns []net.Listener, grace time.Duration, log *slog.Logger) error {
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
