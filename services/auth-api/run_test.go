package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

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
	for name, secret := range map[string]string{"short": "short", "32 hex digits": string(testSecret[:32])} {
		t.Run(name, func(t *testing.T) {
			_, out, stop := startRun(t, "JWT_SECRET="+secret)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), `"level":"WARN"`) || !strings.Contains(out.String(), "JWT_SECRET is weak") {
				t.Errorf("got no warning naming JWT_SECRET:\n%s", out.String())
			}
			if !strings.Contains(out.String(), `"msg":"ready"`) {
				t.Errorf("got no ready line:\n%s", out.String())
			}
		})
	}
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
