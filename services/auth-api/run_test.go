package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/acme-payments/platform/internal/httpx"
	"github.com/acme-payments/platform/internal/servicetest"
	"github.com/acme-payments/platform/internal/users"
)

// startRun runs the real service in-process on a free port with environ
// (internal/servicetest) and returns its base URL, its stdout and a stop
// function that cancels it and returns run's error.
func startRun(t *testing.T, environ ...string) (string, *servicetest.Buffer, func() error) {
	t.Helper()
	svc := servicetest.Start(t, "auth-api", run, append([]string{}, environ...)...)
	return svc.URL, svc.Out, svc.Stop
}

func TestRunServesAndShutsDown(t *testing.T) {
	url, out, stop := startRun(t, "JWT_SECRET="+string(testSecret), "HTTP_HOST=127.0.0.1")
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Errorf("got %s, want it bound to 127.0.0.1", url)
	}

	var health *http.Response
	var err error
	for i := 0; i < 50; i++ {
		if health, err = http.Get(url + "/health"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	health.Body.Close()
	if health.StatusCode != http.StatusOK {
		t.Errorf("GET /health: got %d, want 200", health.StatusCode)
	}

	res, err := http.Post(url+"/token", "application/json", strings.NewReader(`{"username":"alice","password":"password"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("POST /token: got %d, want 200", res.StatusCode)
	}

	if err := stop(); err != nil {
		t.Fatalf("got %v from run after cancel, want nil", err)
	}
	for _, want := range []string{`"msg":"ready"`, `"service":"auth-api"`, `"msg":"users loaded"`, `"msg":"stopped"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout lacks %s:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), `"level":"WARN"`) {
		t.Errorf("got a warning with a 256-bit secret:\n%s", out.String())
	}
	if res, err := http.Get(url + "/health"); err == nil {
		res.Body.Close()
		t.Error("the server still answers after run returned")
	}
}

// TestRunWarnsAboutWeakSecret: a secret too weak for HS256, short or 32
// hex digits (128 bits), draws a warning naming JWT_SECRET, and the service
// starts all the same.
func TestRunWarnsAboutWeakSecret(t *testing.T) {
	servicetest.WarnsAboutWeakSecret(t, "auth-api", run)
}

func TestRunUsesUsersFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.json")
	if err := os.WriteFile(path, []byte(`[{"id":7,"username":"zed","password":"pw","enabled":true}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	url, _, _ := startRun(t, "JWT_SECRET="+string(testSecret), "USERS_FILE="+path)
	for body, want := range map[string]int{
		`{"username":"zed","password":"pw"}`:         http.StatusOK,
		`{"username":"alice","password":"password"}`: http.StatusNotFound,
	} {
		res, err := http.Post(url+"/token", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("%s: got %d, want %d", body, res.StatusCode, want)
		}
	}
}

// TestRunLimitsBcrypt: BCRYPT_CONCURRENCY and BCRYPT_MAX_WAITING reach the
// users (the "users loaded" line says the bounds in force): GOMAXPROCS - 1
// (at least 1) slots and users.DefaultWaitingPerSlot waiting per slot when
// they are unset.
func TestRunLimitsBcrypt(t *testing.T) {
	def := max(1, runtime.GOMAXPROCS(0)-1)
	tests := []struct {
		environ           []string
		want, wantWaiting int
	}{
		{nil, def, users.DefaultWaitingPerSlot * def},
		{[]string{"BCRYPT_CONCURRENCY=0", "BCRYPT_MAX_WAITING=0"}, def, users.DefaultWaitingPerSlot * def},
		{[]string{"BCRYPT_CONCURRENCY=3"}, 3, 3 * users.DefaultWaitingPerSlot},
		{[]string{"BCRYPT_CONCURRENCY=3", "BCRYPT_MAX_WAITING=5"}, 3, 5},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.environ), func(t *testing.T) {
			_, out, stop := startRun(t, append([]string{"JWT_SECRET=" + string(testSecret)}, tt.environ...)...)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf(`"bcrypt_concurrency":%d,"bcrypt_max_waiting":%d`, tt.want, tt.wantWaiting)
			for _, line := range strings.Split(out.String(), "\n") {
				if strings.Contains(line, `"msg":"users loaded"`) && !strings.Contains(line, want) {
					t.Errorf("got %s, want %s in it", line, want)
				}
			}
			if !strings.Contains(out.String(), `"msg":"users loaded"`) {
				t.Errorf("no \"users loaded\" line in:\n%s", out.String())
			}
		})
	}
}

func TestRunFailsFast(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "users.json")
	if err := os.WriteFile(bad, []byte(`{"alice":"password"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	// A well-formed hash at cost 20: a minute of CPU per login (users.MaxBcryptCost).
	slow := filepath.Join(t.TempDir(), "slow.json")
	if err := os.WriteFile(slow, []byte(`[{"id":1,"username":"a","password":"$2a$20$cRWBifNpODLX19.VVLP1hOIlhqD/FOuTi5PGjwkZJ/fPnCBbIRY1y","enabled":true}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		environ []string
		want    string
	}{
		{"no JWT_SECRET", nil, []string{"HTTP_PORT=0"}, "JWT_SECRET"},
		{"empty JWT_SECRET", nil, []string{"JWT_SECRET="}, "JWT_SECRET"},
		{"HTTP_PORT not a number", nil, []string{"JWT_SECRET=x", "HTTP_PORT=http"}, "HTTP_PORT"},
		{"HTTP_PORT out of range", nil, []string{"JWT_SECRET=x", "HTTP_PORT=70000"}, "HTTP_PORT"},
		{"LOG_LEVEL unknown", nil, []string{"JWT_SECRET=x", "LOG_LEVEL=loud"}, "LOG_LEVEL"},
		{"SHUTDOWN_GRACE not a duration", nil, []string{"JWT_SECRET=x", "SHUTDOWN_GRACE=10"}, "SHUTDOWN_GRACE"},
		{"SHUTDOWN_GRACE zero", nil, []string{"JWT_SECRET=x", "SHUTDOWN_GRACE=0s"}, "SHUTDOWN_GRACE"},
		{"USERS_FILE missing", nil, []string{"JWT_SECRET=x", "USERS_FILE=/nonexistent/users.json"}, "USERS_FILE: open /nonexistent/users.json"},
		{"USERS_FILE malformed", nil, []string{"JWT_SECRET=x", "USERS_FILE=" + bad}, "USERS_FILE " + bad},
		{"USERS_FILE with a bcrypt cost over 14", nil, []string{"JWT_SECRET=x", "HTTP_PORT=0", "USERS_FILE=" + slow}, "USERS_FILE " + slow + ": user #1 (a): bcrypt cost 20 is over the maximum of 14"},
		{"BCRYPT_CONCURRENCY negative", nil, []string{"JWT_SECRET=x", "HTTP_PORT=0", "BCRYPT_CONCURRENCY=-2"}, "BCRYPT_CONCURRENCY must be"},
		{"BCRYPT_MAX_WAITING negative", nil, []string{"JWT_SECRET=x", "HTTP_PORT=0", "BCRYPT_MAX_WAITING=-2"}, "BCRYPT_MAX_WAITING must be"},
		{"HTTP_HOST not an address", nil, []string{"JWT_SECRET=x", "HTTP_HOST=256.0.0.1"}, "HTTP_HOST, HTTP_PORT: listen on 256.0.0.1"},
		{"HTTP_SOCKET in a missing directory", nil, []string{"JWT_SECRET=x", "HTTP_PORT=0", "HTTP_SOCKET=/nonexistent/dir/x.sock"}, "HTTP_SOCKET: listen on unix socket /nonexistent/dir/x.sock"},
		{"arguments", []string{"auth-api", "--port=5000"}, []string{"JWT_SECRET=x"}, "environment variables"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			args := tt.args
			if args == nil {
				args = []string{"auth-api"}
			}
			out := &servicetest.Buffer{}
			err := run(ctx, args, tt.environ, out)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestMain(m *testing.M) {
	servicetest.RunMainIfAsked(main)
	os.Exit(m.Run())
}

// TestRunSecondSignalStopsAtOnce: the first SIGTERM (or Ctrl-C) drains,
// and a second one stops the process at once; it waited out the drain.
func TestRunSecondSignalStopsAtOnce(t *testing.T) {
	servicetest.CheckSecondSignalStopsAtOnce(t, "/token", "JWT_SECRET="+string(testSecret))
}

// TestRunDrainAnswersWaitingLoginsAtOnce: when run's context ends (SIGTERM)
// with one bcrypt comparison under way and BCRYPT_MAX_WAITING logins
// waiting for its slot, the waiting ones get the JSON 503 at once, without
// a comparison, logged with the reason, and the one under way finishes with
// its token; run returns once it has, far within SHUTDOWN_GRACE (30 s).
// Before, the waiting logins were compared one by one during the drain, a
// second each here: 17 s in all. The comparisons are real, of a cost chosen
// to take about a second on this machine (slowHash), so that the 18 logins
// are under way long before the first ends; the first answer, the login
// refused because 17 are under way already, shows that they are. The
// bounds, 5 s for an answer that comes at once and 10 s for run, leave room
// for a slow machine.
func TestRunDrainAnswersWaitingLoginsAtOnce(t *testing.T) {
	const waiting = 16
	hash, perLogin := slowHash(t)
	path := filepath.Join(t.TempDir(), "users.json")
	if err := os.WriteFile(path, []byte(`[{"id":10,"username":"dora","password":"`+hash+`","enabled":true}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	url, out, stop := startRun(t, "JWT_SECRET="+string(testSecret), "USERS_FILE="+path, "SHUTDOWN_GRACE=30s",
		"BCRYPT_CONCURRENCY=1", fmt.Sprintf("BCRYPT_MAX_WAITING=%d", waiting))

	type answer struct {
		id     string
		status int
		body   map[string]string
		at     time.Time
	}
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableKeepAlives: true}}
	answers := make(chan answer, waiting+2)
	for i := range waiting + 2 { // one compares, 16 wait, one is refused
		go func() {
			a := answer{id: fmt.Sprintf("drain-%d", i)}
			defer func() { a.at = time.Now(); answers <- a }()
			req, err := http.NewRequest(http.MethodPost, url+"/token", strings.NewReader(`{"username":"dora","password":"pw"}`))
			if err != nil {
				t.Error(err)
				return
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(httpx.RequestIDHeader, a.id)
			res, err := client.Do(req)
			if err != nil {
				t.Errorf("%s: %v", a.id, err)
				return
			}
			defer res.Body.Close()
			a.status = res.StatusCode
			if err := json.NewDecoder(res.Body).Decode(&a.body); err != nil {
				t.Errorf("%s: %d with a body that is not a JSON object: %v", a.id, a.status, err)
			}
		}()
	}
	first := <-answers
	if first.status != http.StatusServiceUnavailable || !strings.HasPrefix(loginFailedReason(out.String(), first.id), "password_not_checked: too many bcrypt logins waiting") {
		t.Fatalf("first answer: got %d %v (reason %q), want the 503 of a login refused with 17 under way; a comparison of %v ended before 18 logins came in",
			first.status, first.body, loginFailedReason(out.String(), first.id), perLogin)
	}

	stopped := time.Now()
	runErr := make(chan error, 1)
	go func() { runErr <- stop() }()
	var tokens, refused int
	var last, slowest503 time.Duration
	for range waiting + 1 {
		a := <-answers
		took := a.at.Sub(stopped).Round(time.Millisecond)
		last = max(last, took)
		switch {
		case a.status == http.StatusOK && a.body["token"] != "":
			tokens++
		case a.status == http.StatusServiceUnavailable && a.body["error"] == msgStopping:
			refused++
			slowest503 = max(slowest503, took)
			if reason := loginFailedReason(out.String(), a.id); !strings.HasPrefix(reason, "password_not_checked: the server is stopping") {
				t.Errorf("%s: got reason %q logged, want it to say the server is stopping", a.id, reason)
			}
			if took > 5*time.Second {
				t.Errorf("%s: got its 503 %v after the stop, want it at once", a.id, took)
			}
		default:
			t.Errorf("%s: got %d %v %v after the stop, want a token or the 503", a.id, a.status, a.body, took)
		}
	}
	if tokens != 1 || refused != waiting {
		t.Errorf("of the %d logins under way at the stop: got %d tokens and %d 503s, want 1 (the one comparing) and %d (those waiting)", waiting+1, tokens, refused, waiting)
	}
	if err := <-runErr; err != nil {
		t.Errorf("run: got %v, want nil", err)
	}
	took := time.Since(stopped)
	t.Logf("with 1 comparison (%v each) under way and %d logins waiting: the last 503 %v after the stop, the last answer %v, run returned after %v",
		perLogin, waiting, slowest503, last, took.Round(time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("run returned %v after the stop, want it once the comparison under way ends (%v each), far within SHUTDOWN_GRACE (30 s)", took.Round(time.Millisecond), perLogin)
	}
}

// slowHash returns a bcrypt hash of "pw" whose comparison takes about a
// second on this machine (longer under the race detector, which makes
// bcrypt about 12 times slower, by the cost it chooses), at most
// users.MaxBcryptCost, and how long making it took.
func slowHash(t *testing.T) (string, time.Duration) {
	t.Helper()
	const probe = 8
	h, err := bcrypt.GenerateFromPassword([]byte("pw"), probe)
	if err != nil {
		t.Fatal(err)
	}
	// The fastest of three comparisons: a stall of the scheduler in one
	// would choose too low a cost.
	fastest := time.Duration(math.MaxInt64)
	for range 3 {
		start := time.Now()
		_ = bcrypt.CompareHashAndPassword(h, []byte("pw"))
		fastest = min(fastest, time.Since(start))
	}
	cost := probe
	for d := fastest; d < time.Second && cost < users.MaxBcryptCost; d *= 2 {
		cost++
	}
	start := time.Now()
	if h, err = bcrypt.GenerateFromPassword([]byte("pw"), cost); err != nil {
		t.Fatal(err)
	}
	return string(h), time.Since(start).Round(time.Millisecond)
}

// loginFailedReason is the reason of the "login failed" line logged with
// request id id, or "" when there is none.
func loginFailedReason(log, id string) string {
	for _, line := range strings.Split(log, "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "login failed" && rec["request_id"] == id {
			reason, _ := rec["reason"].(string)
			return reason
		}
	}
	return ""
}

// TestRunWithoutASocketLimitsNoLogin: without HTTP_SOCKET the TCP port is
// auth-api's only way in, the router's too (the contract's HTTP_PORT), so
// the failed-login limit per username, which would let anyone lock a user
// out there, is off unless DIRECT_LOGIN_FAILURE_LIMIT is set: 21 wrong
// passwords for alice, then hers, logs in (before: 429 from the 21st on).
// Set, the limit applies to the port all the same.
func TestRunWithoutASocketLimitsNoLogin(t *testing.T) {
	for _, tt := range []struct {
		name       string
		environ    []string
		wantStatus int // the right password's, after 21 wrong ones
	}{
		{"no HTTP_SOCKET, no limit set", nil, http.StatusOK},
		{"no HTTP_SOCKET, DIRECT_LOGIN_FAILURE_LIMIT=20", []string{"DIRECT_LOGIN_FAILURE_LIMIT=20"}, http.StatusTooManyRequests},
	} {
		t.Run(tt.name, func(t *testing.T) {
			url, _, _ := startRun(t, append([]string{"JWT_SECRET=" + string(testSecret)}, tt.environ...)...) // stopped, and its error checked, at the test's end
			post := func(password string) int {
				res, err := http.Post(url+"/token", "application/json", strings.NewReader(`{"username":"alice","password":"`+password+`"}`))
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				return res.StatusCode
			}
			wrong := 0
			for i := range 21 {
				if post(fmt.Sprintf("guess-%d", i)) == http.StatusUnauthorized {
					wrong++
				}
			}
			if got := post("password"); got != tt.wantStatus {
				t.Errorf("after 21 wrong passwords (%d answered 401): got %d for the right one, want %d", wrong, got, tt.wantStatus)
			}
		})
	}
}
