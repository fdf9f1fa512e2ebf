package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/acme-payments/platform/internal/logging"
)

// lockedBuffer is a log sink safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newTestLogger() (*slog.Logger, *lockedBuffer) {
	buf := &lockedBuffer{}
	return logging.New(buf, "test", slog.LevelDebug), buf
}

var generatedID = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestMiddlewareRequestID(t *testing.T) {
	tests := []struct {
		name     string
		incoming string
		wantSame bool
	}{
		{"router's id kept", "haproxy-1234", true},
		{"128 printable bytes kept", strings.Repeat("x", 128), true},
		{"missing: generated", "", false},
		{"too long: replaced", strings.Repeat("x", 129), false},
		{"space: replaced", "a b", false},
		{"non-ASCII: replaced", "idé", false},
		{"control character: replaced", "a\x7f", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, _ := newTestLogger()
			var seen string
			h := Middleware(log, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen = logging.RequestID(r.Context())
			}))
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.incoming != "" {
				r.Header.Set(RequestIDHeader, tt.incoming)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			got := rec.Header().Get(RequestIDHeader)
			if got != seen {
				t.Errorf("got response id %q, handler saw %q; want the same", got, seen)
			}
			if tt.wantSame && got != tt.incoming {
				t.Errorf("got %q, want the incoming %q", got, tt.incoming)
			}
			if !tt.wantSame && !generatedID.MatchString(got) {
				t.Errorf("got %q, want a generated 32-hex-digit id", got)
			}
		})
	}
}

func TestMiddlewarePanicBecomesJSON500(t *testing.T) {
	log, logs := newTestLogger()
	h := Middleware(log, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/x", nil)
	r.Header.Set(RequestIDHeader, "req-panic")
	h.ServeHTTP(rec, r)
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("got %d, want 500", rec.Code)
	}
	if got, want := rec.Body.String(), `{"error":"Internal server error"}`+"\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if !strings.Contains(logs.String(), `"msg":"panic"`) || !strings.Contains(logs.String(), `"request_id":"req-panic"`) {
		t.Errorf("got log %s, want a panic line with the request id", logs.String())
	}
	// Where it panicked: net/http logs the stack of a panic it recovers
	// itself, so recovering it here must not lose it.
	var line struct {
		Stack string `json:"stack"`
	}
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if strings.Contains(l, `"msg":"panic"`) {
			_ = json.Unmarshal([]byte(l), &line)
		}
	}
	if !strings.Contains(line.Stack, "middleware_test.go:") {
		t.Errorf("got panic line stack %q, want the stack of the panic (naming middleware_test.go)", line.Stack)
	}
}

func TestMiddlewarePanicAfterWriteKeepsResponse(t *testing.T) {
	log, _ := newTestLogger()
	h := Middleware(log, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusAccepted, map[string]int{"n": 1})
		panic("late")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusAccepted || rec.Body.String() != `{"n":1}`+"\n" {
		t.Errorf("got %d %q, want the handler's 202 untouched", rec.Code, rec.Body.String())
	}
}

func TestMiddlewareCapsBody(t *testing.T) {
	log, _ := newTestLogger()
	var readErr error
	h := Middleware(log, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, readErr = io.ReadAll(r.Body)
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/", strings.NewReader(strings.Repeat("a", MaxBodyBytes+1))))
	var tooBig *http.MaxBytesError
	if !errors.As(readErr, &tooBig) {
		t.Errorf("got %v reading a body over %d bytes, want *http.MaxBytesError", readErr, MaxBodyBytes)
	}
}

func TestMiddlewareAccessLog(t *testing.T) {
	log, logs := newTestLogger()
	h := Middleware(log, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		WriteError(w, http.StatusNotFound, "no")
	}))
	r := httptest.NewRequest(http.MethodGet, "/things/1", nil)
	r.Header.Set(RequestIDHeader, "req-access")
	h.ServeHTTP(httptest.NewRecorder(), r)
	var rec map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(logs.String())), &rec); err != nil {
		t.Fatalf("got log %q, want one JSON line: %v", logs.String(), err)
	}
	for k, want := range map[string]any{"msg": "request", "method": "GET", "path": "/things/1", "status": float64(404), "request_id": "req-access"} {
		if rec[k] != want {
			t.Errorf("got %s=%v, want %v", k, rec[k], want)
		}
	}
}

func TestRoutes(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"id": r.PathValue("id")})
	})
	mux.HandleFunc("POST /items", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusCreated, map[string]string{})
	})
	h := Routes(mux)
	tests := []struct {
		method, path string
		wantStatus   int
		wantBody     string
		wantAllow    string
	}{
		{"GET", "/items/7", 200, `{"id":"7"}`, ""},
		{"HEAD", "/items/7", 200, "", ""},
		{"POST", "/items", 201, `{}`, ""},
		{"GET", "/nope", 404, `{"error":"Not found"}`, ""},
		{"GET", "/items", 405, `{"error":"Method not allowed"}`, "POST"},
		{"DELETE", "/items/7", 405, `{"error":"Method not allowed"}`, "GET, HEAD"},
		// Not canonical: the mux would redirect with an empty body.
		{"POST", "//items", 400, `{"error":"Invalid path"}`, ""},
		{"POST", "/./items", 400, `{"error":"Invalid path"}`, ""},
		{"POST", "/x/../items", 400, `{"error":"Invalid path"}`, ""},
		{"GET", "/items/7/.", 400, `{"error":"Invalid path"}`, ""},
		{"GET", "//nope", 400, `{"error":"Invalid path"}`, ""},
		{"GET", "/nope/", 404, `{"error":"Not found"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.wantStatus {
				t.Errorf("got status %d, want %d", rec.Code, tt.wantStatus)
			}
			if tt.method != "HEAD" && strings.TrimSpace(rec.Body.String()) != tt.wantBody {
				t.Errorf("got body %q, want %q", rec.Body.String(), tt.wantBody)
			}
			if got := rec.Header().Get("Allow"); got != tt.wantAllow {
				t.Errorf("got Allow %q, want %q", got, tt.wantAllow)
			}
		})
	}
}
