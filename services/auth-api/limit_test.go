package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/acme-payments/platform/internal/httpx"
	"github.com/acme-payments/platform/internal/logging"
	"github.com/acme-payments/platform/internal/servicetest"
	"github.com/acme-payments/platform/internal/token"
	"github.com/acme-payments/platform/internal/users"
)

// fakeClock is a clock the test moves; safe to read from the server's goroutines.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// TestDirectLoginFailureLimit drives auth-api's real handler on both of its
// listeners, served by the shared httpx.ServeListeners as run serves them: a
// TCP port and a unix socket. With a limit of 3 failed logins per 10 s, the
// TCP port refuses a username's fourth login, the right password too, with
// a JSON 429 and Retry-After, until the window has passed; unknown names
// share one count; the unix socket (HAProxy's way in) is never limited.
func TestDirectLoginFailureLimit(t *testing.T) {
	clock := newFakeClock()
	logs := &servicetest.Buffer{}
	log := logging.New(logs, "auth-api", slog.LevelDebug)
	db, err := users.Load("")
	if err != nil {
		t.Fatal(err)
	}
	h := newHandler(log, db, token.NewIssuer(testSecret, nil), newFailureLimit(3, 10*time.Second, clock.now))
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "a.sock")
	unix, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- httpx.ServeListeners(ctx, httpx.NewServer(h, log), []net.Listener{tcp, unix}, time.Second, log)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	clients := map[string]*http.Client{
		"tcp": {Timeout: 5 * time.Second},
		"unix": {Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}},
	}
	urls := map[string]string{"tcp": "http://" + tcp.Addr().String() + "/token", "unix": "http://auth-api/token"}

	const limited = "Too many failed logins: the limit is 3 per 10 seconds for one username on auth-api's own port"
	tests := []struct {
		name           string
		advance        time.Duration // the clock moves this first
		via            string        // "tcp" or "unix"
		username, pw   string
		wantStatus     int
		wantRetryAfter string // "" for none
	}{
		{"tcp: 1st wrong password", 0, "tcp", "alice", "guess-1", 401, ""},
		{"tcp: 2nd wrong password", time.Second, "tcp", "alice", "guess-2", 401, ""},
		{"tcp: 3rd wrong password", time.Second, "tcp", "alice", "guess-3", 401, ""},
		{"tcp: 4th wrong password refused", 0, "tcp", "alice", "guess-4", 429, "8"},
		{"tcp: the right password refused too", 0, "tcp", "alice", "password", 429, "8"},
		{"tcp: another user logs in", 0, "tcp", "becky", "password", 200, ""},
		{"unix: the right password logs in", 0, "unix", "alice", "password", 200, ""},
		{"unix: 1st wrong password", 0, "unix", "becky", "guess-5", 401, ""},
		{"unix: 2nd wrong password", 0, "unix", "becky", "guess-6", 401, ""},
		{"unix: 3rd wrong password", 0, "unix", "becky", "guess-7", 401, ""},
		{"unix: 4th wrong password, not limited", 0, "unix", "becky", "guess-8", 401, ""},
		{"unix: 5th wrong password, not limited", 0, "unix", "becky", "guess-9", 401, ""},
		{"tcp: becky's unix failures did not count", 0, "tcp", "becky", "password", 200, ""},
		{"tcp: unknown name 1", 0, "tcp", "mallory", "guess-10", 404, ""},
		{"tcp: unknown name 2", 0, "tcp", "dave", "guess-11", 404, ""},
		{"tcp: unknown name 3", 0, "tcp", "Alice", "guess-12", 404, ""},
		{"tcp: unknown names share one count", 0, "tcp", "zed", "guess-13", 429, "10"},
		{"tcp: a known user still logs in", 0, "tcp", "charlie", "password", 200, ""},
		{"tcp: alice 1 s before the window's end", 7 * time.Second, "tcp", "alice", "password", 429, "1"},
		{"tcp: alice once the window has passed", time.Second, "tcp", "alice", "password", 200, ""},
		{"tcp: alice fails again, a new window", 0, "tcp", "alice", "guess-14", 401, ""},
	}
	for i, tt := range tests {
		clock.advance(tt.advance)
		body := fmt.Sprintf(`{"username":%q,"password":%q}`, tt.username, tt.pw)
		req, err := http.NewRequest(http.MethodPost, urls[tt.via], strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(httpx.RequestIDHeader, fmt.Sprintf("limit-%d", i))
		res, err := clients[tt.via].Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		var got map[string]string
		if err := json.Unmarshal(raw, &got); err != nil || res.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: got %q (%s), want a JSON object", tt.name, raw, res.Header.Get("Content-Type"))
		}
		if res.StatusCode != tt.wantStatus || res.Header.Get("Retry-After") != tt.wantRetryAfter {
			t.Errorf("%s: got %d %s (Retry-After %q), want %d (Retry-After %q)", tt.name, res.StatusCode, raw, res.Header.Get("Retry-After"), tt.wantStatus, tt.wantRetryAfter)
		}
		if tt.wantStatus == 429 && got["error"] != limited {
			t.Errorf("%s: got error %q, want %q", tt.name, got["error"], limited)
		}
	}

	// Each refusal logged at warn with its request id and who, no password.
	refused := 0
	for _, line := range strings.Split(logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["reason"] != "too_many_failed_logins" {
			continue
		}
		refused++
		if rec["level"] != "WARN" || rec["status"] != float64(429) || !strings.HasPrefix(fmt.Sprint(rec["request_id"]), "limit-") ||
			(rec["username"] == nil && rec["username_fingerprint"] == nil) {
			t.Errorf("refusal logged as %s, want WARN with status 429, its request id and the username or its fingerprint", line)
		}
	}
	if want := 4; refused != want {
		t.Errorf("got %d refusals logged, want %d", refused, want)
	}
	for _, pw := range []string{"guess-4", "guess-13", `"password"`} {
		if strings.Contains(logs.String(), pw) {
			t.Errorf("the log holds the password %s", pw)
		}
	}
}

// TestFailureLimitIsBounded: however many names a client makes up, the
// counts never outnumber the users file's users by more than one (the shared
// count of unknown names), a login that succeeds leaves none, and a window
// after the last failure they are gone.
func TestFailureLimitIsBounded(t *testing.T) {
	db, err := users.Load("")
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock()
	l := newFailureLimit(3, 10*time.Second, clock.now)
	fail := func(req tokenRequest) {
		if l.admit(db, req) == 0 {
			l.done(db, req, true)
		}
	}
	for i := range 10_000 {
		fail(tokenRequest{Username: fmt.Sprintf("made-up-%d", i)})
		fail(tokenRequest{Username: []string{"alice", "becky", "charlie"}[i%3]})
		if i%1000 == 0 {
			clock.advance(time.Second)
		}
	}
	if got, want := len(l.counts), db.Len()+1; got != want {
		t.Errorf("got %d counts after 20,000 failures under 10,003 names, want %d", got, want)
	}
	// A window after the last failure, the next login finds them gone.
	clock.advance(10 * time.Second)
	req := tokenRequest{Username: "alice"}
	if wait := l.admit(db, req); wait != 0 {
		t.Errorf("alice refused for %s once the window passed, want 0", wait)
	}
	l.done(db, req, false)
	if len(l.counts) != 0 {
		t.Errorf("got %d counts a window after the last failure, want 0", len(l.counts))
	}
}

// TestFailureLimitOff: DIRECT_LOGIN_FAILURE_LIMIT=0 is no limit at all.
func TestFailureLimitOff(t *testing.T) {
	l := newFailureLimit(0, 10*time.Second, time.Now)
	req, _ := http.NewRequestWithContext(context.WithValue(context.Background(), http.LocalAddrContextKey, &net.TCPAddr{}), http.MethodPost, "/token", nil)
	if l != nil || l.appliesTo(req) {
		t.Errorf("got %v, want no limit", l)
	}
}

// BenchmarkFailureLimitOnALogin measures what the limit adds to a login on
// the TCP port while no failure is counted: the listener's look-up, and the
// login counted as under way, then done.
func BenchmarkFailureLimitOnALogin(b *testing.B) {
	db, err := users.Load("")
	if err != nil {
		b.Fatal(err)
	}
	l := newFailureLimit(20, 10*time.Second, time.Now)
	r, _ := http.NewRequestWithContext(context.WithValue(context.Background(), http.LocalAddrContextKey, &net.TCPAddr{}), http.MethodPost, "/token", nil)
	req := tokenRequest{Username: "alice", Password: "password"}
	for b.Loop() {
		if !l.appliesTo(r) || l.admit(db, req) != 0 {
			b.Fatal("refused")
		}
		l.done(db, req, false)
	}
}

// TestDirectLoginFailureLimitUnderConcurrency: the limit counts the logins
// being checked as well as those that failed, so that logins sent together
// get no more password checks than the limit. A bcrypt user's 40 wrong
// passwords sent at once (a slot and 64 waiting: all admitted) took 20
// comparisons; before, every one was compared (40 401s), since each was
// checked against the count before any of them had failed. A plaintext user
// likewise, and neither can then log in until the window has passed.
func TestDirectLoginFailureLimitUnderConcurrency(t *testing.T) {
	db := aliceAndBcryptDora(t, bcrypt.MinCost+2)
	db.LimitBcrypt(1, 64)
	clock := newFakeClock()
	h := viaTCPPort(newHandler(logging.New(&servicetest.Buffer{}, "auth-api", slog.LevelDebug), db, token.NewIssuer(testSecret, nil),
		newFailureLimit(20, 10*time.Second, clock.now)))
	post := func(username, password string) int {
		req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(fmt.Sprintf(`{"username":%q,"password":%q}`, username, password)))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	for _, who := range []string{"dora", "alice"} {
		codes := make([]int, 40)
		var wg sync.WaitGroup
		for i := range codes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[i] = post(who, fmt.Sprintf("guess-%d", i))
			}()
		}
		wg.Wait()
		got := map[int]int{}
		for _, c := range codes {
			got[c]++
		}
		if got[401] != 20 || got[429] != 20 {
			t.Errorf("%s: 40 wrong passwords at once got %v, want 20 401s and 20 429s", who, got)
		}
		if c := post(who, map[string]string{"dora": "pw", "alice": "password"}[who]); c != 429 {
			t.Errorf("%s: the right password after them got %d, want 429", who, c)
		}
	}
	clock.advance(10 * time.Second)
	if c := post("dora", "pw"); c != 200 {
		t.Errorf("dora once the window passed: got %d, want 200", c)
	}
}
