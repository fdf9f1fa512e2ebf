package httpx

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"path"
	"runtime/debug"
	"time"

	"github.com/acme-payments/platform/internal/logging"
)

// RequestIDHeader carries the request id; HAProxy sets it on every request.
const RequestIDHeader = "X-Request-ID"

// maxRequestIDLen bounds a client-supplied id so logs cannot be flooded.
const maxRequestIDLen = 128

// NewRequestID returns a random 128-bit id in hex.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Middleware wraps a service's handler with what every request needs: the
// request id (taken from X-Request-ID when sane, generated otherwise, echoed in
// the response and put in the context for logging), a 1 MiB body cap, a JSON
// 500 for panics (logged at error with their stack), and one access log line
// per request.
func Middleware(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(RequestIDHeader)
		if !validRequestID(id) {
			id = NewRequestID()
		}
		ctx := logging.WithRequestID(r.Context(), id)
		r = r.WithContext(ctx)
		w.Header().Set(RequestIDHeader, id)
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p) // net/http's way to abort a response; it logs nothing
				}
				// With the stack, which net/http would have logged had
				// the panic reached it: without it nobody can tell where.
				log.ErrorContext(ctx, "panic", "panic", p, "method", r.Method, "path", r.URL.Path,
					"stack", string(debug.Stack()))
				if !rec.wrote {
					WriteError(rec, http.StatusInternalServerError, "Internal server error")
				}
			}
			log.DebugContext(ctx, "request", "method", r.Method, "path", r.URL.Path,
				"status", rec.status, "duration_ms", float64(time.Since(start).Microseconds())/1000)
		}()
		next.ServeHTTP(rec, r)
	})
}

// validRequestID accepts ids of printable ASCII without spaces, bounded in length.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// NotFound answers unknown paths with a JSON 404.
func NotFound(w http.ResponseWriter, _ *http.Request) {
	WriteError(w, http.StatusNotFound, "Not found")
}

// Routes wraps a ServeMux so that its plain-text 404 and 405 answers become
// JSON, keeping the Allow header the mux computed for a 405. A path not in
// canonical form (//token, /./token, /x/../token) gets a JSON 400 "Invalid
// path", as at the router, instead of the mux's bodiless redirect, which a
// client following a 307 would answer by posting the body again.
func Routes(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect && !canonicalPath(r.URL.Path) {
			WriteError(w, http.StatusBadRequest, "Invalid path")
			return
		}
		h, pattern := mux.Handler(r)
		if pattern == "" {
			// No route matched: find out whether the path exists for another method.
			probe := &headerOnly{h: http.Header{}}
			h.ServeHTTP(probe, r)
			if probe.status == http.StatusMethodNotAllowed {
				if allow := probe.h.Get("Allow"); allow != "" {
					w.Header().Set("Allow", allow)
				}
				WriteError(w, http.StatusMethodNotAllowed, "Method not allowed")
				return
			}
			NotFound(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// canonicalPath reports whether p is what ServeMux would not redirect: rooted,
// no empty, "." or ".." segments, a trailing slash kept.
func canonicalPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	c := path.Clean(p)
	if p[len(p)-1] == '/' && c != "/" {
		c += "/"
	}
	return c == p
}

// headerOnly records what the mux's fallback handler would answer, without a body.
type headerOnly struct {
	h      http.Header
	status int
}

func (h *headerOnly) Header() http.Header         { return h.h }
func (h *headerOnly) Write(b []byte) (int, error) { return len(b), nil }
func (h *headerOnly) WriteHeader(code int)        { h.status = code }
