// Package servicetest runs a service's real run function inside a test: on a
// free port, with the test's own environment, reading its JSON log for the
// "ready" line, and stopping it (as SIGTERM would) when the test ends; and
// benchmarks a service's handler in process (BenchmarkPostJSON).
package servicetest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// RunFunc is the shape of every service's run: command-line args, environ
// (KEY=value pairs) and the writer that stands for stdout.
type RunFunc func(ctx context.Context, args, environ []string, stdout io.Writer) error

// Service is a service started by Start.
type Service struct {
	// URL is the base URL of its HTTP server, from its "ready" log line.
	URL string
	// Out holds everything it wrote to stdout.
	Out *Buffer

	stop func() error
}

// Stop cancels run's context and returns run's error. It is safe to call more
// than once; the test's cleanup calls it too.
func (s *Service) Stop() error { return s.stop() }

// Start runs run with HTTP_PORT=0 followed by environ, and returns once the
// service has logged "ready" with its address. It fails the test when run
// returns first, or when no ready line comes within 10 s. The service is
// stopped when the test ends, which fails the test if run then returns an
// error, and its stdout is logged if the test failed.
func Start(tb testing.TB, name string, run RunFunc, environ ...string) *Service {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &Buffer{}
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, []string{name}, append([]string{"HTTP_PORT=0"}, environ...), out) }()

	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-errc:
			case <-time.After(15 * time.Second):
				tb.Errorf("%s: run did not return within 15s of cancellation", name)
			}
		})
		return runErr
	}
	tb.Cleanup(func() {
		if err := stop(); err != nil {
			tb.Errorf("%s: run returned %v after cancellation, want nil", name, err)
		}
		if tb.Failed() {
			tb.Logf("%s stdout:\n%s", name, out.String())
		}
	})

	return &Service{URL: "http://" + waitReady(tb, name, out, errc), Out: out, stop: stop}
}

// WarnsAboutWeakSecret runs run, the service called name, with environ and
// each JWT_SECRET too weak for HS256 (a short one, and 32 hex digits: 128
// bits), and wants a warning naming JWT_SECRET and the service ready all the
// same.
func WarnsAboutWeakSecret(t *testing.T, name string, run RunFunc, environ ...string) {
	t.Helper()
	for what, secret := range map[string]string{"short": "short", "32 hex digits": "0123456789abcdef0123456789abcdef"} {
		t.Run(what, func(t *testing.T) {
			svc := Start(t, name, run, append([]string{"JWT_SECRET=" + secret}, environ...)...)
			if err := svc.Stop(); err != nil {
				t.Fatal(err)
			}
			out := svc.Out.String()
			if !strings.Contains(out, `"level":"WARN"`) || !strings.Contains(out, "JWT_SECRET is weak") {
				t.Errorf("got no warning naming JWT_SECRET:\n%s", out)
			}
			if !strings.Contains(out, `"msg":"ready"`) {
				t.Errorf("got no ready line:\n%s", out)
			}
		})
	}
}

// waitReady returns the address of the service's "ready" line in out, and
// fails tb when none comes within 10 s, or when ended (the service's end)
// comes first; what ended delivers is put back for whoever waits next.
func waitReady(tb testing.TB, name string, out *Buffer, ended chan error) string {
	tb.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		select {
		case err := <-ended:
			ended <- err
			tb.Fatalf("%s: ended before ready: %v\n%s", name, err, out.String())
		default:
		}
		if addr := readyAddr(out.String()); addr != "" {
			return addr
		}
	}
	tb.Fatalf("%s: no ready line within 10s:\n%s", name, out.String())
	return ""
}

// readyAddr finds the address in the first JSON log line with msg "ready".
func readyAddr(log string) string {
	for _, line := range strings.Split(log, "\n") {
		var rec struct{ Msg, Addr string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "ready" && rec.Addr != "" {
			return rec.Addr
		}
	}
	return ""
}

// Buffer is a bytes.Buffer safe for a service writing while a test reads.
type Buffer struct {
	held sync.RWMutex // write-locked between Hold and Release
	mu   sync.Mutex
	buf  bytes.Buffer
}

// Write appends p, once the buffer is not held.
func (b *Buffer) Write(p []byte) (int, error) {
	b.held.RLock()
	defer b.held.RUnlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Hold makes every Write wait until Release, as a full pipe that nobody
// reads would: the service's stdout stops taking output. String still
// answers.
func (b *Buffer) Hold() { b.held.Lock() }

// Release lets the Writes that Hold kept waiting, and later ones, through.
func (b *Buffer) Release() { b.held.Unlock() }

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// BenchmarkPostJSON runs b.N POSTs of body to path on h in process (no
// network), from RunParallel's goroutines, and fails b on any answer but
// 200: a service handler's whole cost, middleware included.
func BenchmarkPostJSON(b *testing.B, h http.Handler, path, body string) {
	b.Helper()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Errorf("got %d %s", rec.Code, rec.Body)
				return
			}
		}
	})
}
