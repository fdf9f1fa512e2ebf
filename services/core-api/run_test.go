package main

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/acme-payments/platform/internal/redistest"
	"github.com/acme-payments/platform/internal/servicetest"
	"github.com/acme-payments/platform/internal/txqueue"
)

// startRun runs the real service in-process on a free port with environ
// (internal/servicetest) and returns its base URL, its stdout and a stop
// function that cancels it and returns run's error.
func startRun(t *testing.T, environ ...string) (string, *servicetest.Buffer, func() error) {
	t.Helper()
	svc := servicetest.Start(t, "core-api", run, append([]string{}, environ...)...)
	return svc.URL, svc.Out, svc.Stop
}

func TestRunServesAndShutsDown(t *testing.T) {
	srv := redistest.Start(t)
	url, out, stop := startRun(t, "JWT_SECRET="+string(testSecret), "REDIS_URL="+srv.URL)
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Errorf("got %s, want it bound to 127.0.0.1", url)
	}
	res, err := http.Get(url + "/health")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("GET /health: got %d, want 200", res.StatusCode)
	}
	alice := issue(t, 1, "alice", true)
	res, err = http.Post(url+"/transaction", "application/json",
		strings.NewReader(`{"token":"`+alice+`","amount":100,"currency":"USD"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("POST /transaction: got %d, want 200", res.StatusCode)
	}
	if err := stop(); err != nil {
		t.Fatalf("got %v from run after cancel, want nil", err)
	}
	for _, want := range []string{`"msg":"ready"`, `"service":"core-api"`, `"msg":"stopped"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout lacks %s:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), `"level":"WARN"`) {
		t.Errorf("got a warning with a 256-bit secret:\n%s", out.String())
	}
}

// TestRunKeepsIdempotencyKeysForIDEMPOTENCY_TTL: the setting reaches the
// queue; the key a keyed transaction stores expires after it, not after
// the default 24 h.
func TestRunKeepsIdempotencyKeysForIDEMPOTENCY_TTL(t *testing.T) {
	srv := redistest.Start(t)
	url, _, stop := startRun(t, "JWT_SECRET="+string(testSecret), "REDIS_URL="+srv.URL, "IDEMPOTENCY_TTL=90s")
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("run after cancel: %v", err)
		}
	}()
	req, err := http.NewRequest(http.MethodPost, url+"/transaction",
		strings.NewReader(`{"token":"`+issue(t, 1, "alice", true)+`","amount":100,"currency":"USD"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "order-1")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("POST /transaction with an Idempotency-Key: got %d, want 200", res.StatusCode)
	}
	rdb := srv.Client(t)
	got, err := rdb.PTTL(context.Background(), txqueue.IdempotencyKey(1, "order-1")).Result()
	if err != nil || got <= 60*time.Second || got > 90*time.Second {
		t.Errorf("the Idempotency-Key's PTTL: got %v (err %v), want just under IDEMPOTENCY_TTL's 90s", got, err)
	}
}

// TestRunStartsWithoutRedis: Redis may come up after core-api; until then
// health fails and transactions get a 503.
func TestRunStartsWithoutRedis(t *testing.T) {
	url, _, _ := startRun(t, "JWT_SECRET="+string(testSecret), "REDIS_URL=unix:///nonexistent/redis.sock")
	res, err := http.Get(url + "/health")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET /health without Redis: got %d, want 503", res.StatusCode)
	}
}

// TestRunWarnsAboutWeakSecret: a secret too weak for HS256, short or 32
// hex digits (128 bits), draws a warning naming JWT_SECRET, and the service
// starts all the same.
func TestRunWarnsAboutWeakSecret(t *testing.T) {
	servicetest.WarnsAboutWeakSecret(t, "core-api", run, "REDIS_URL="+redistest.Start(t).URL)
}

func TestRunFailsFast(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		environ []string
		want    string
	}{
		{"no JWT_SECRET", nil, nil, "JWT_SECRET"},
		{"empty JWT_SECRET", nil, []string{"JWT_SECRET="}, "JWT_SECRET"},
		{"REDIS_URL bad scheme", nil, []string{"JWT_SECRET=x", "REDIS_URL=http://127.0.0.1:6379"}, "REDIS_URL"},
		{"REDIS_URL bad database", nil, []string{"JWT_SECRET=x", "REDIS_URL=redis://127.0.0.1:6379/x"}, "REDIS_URL"},
		{"HTTP_PORT not a number", nil, []string{"JWT_SECRET=x", "HTTP_PORT=http"}, "HTTP_PORT"},
		{"HTTP_PORT out of range", nil, []string{"JWT_SECRET=x", "HTTP_PORT=70000"}, "HTTP_PORT"},
		{"STATUS_TTL not a duration", nil, []string{"JWT_SECRET=x", "STATUS_TTL=7d"}, "STATUS_TTL"},
		{"STATUS_TTL too short", nil, []string{"JWT_SECRET=x", "STATUS_TTL=1ms"}, "STATUS_TTL"},
		{"IDEMPOTENCY_TTL not a duration", nil, []string{"JWT_SECRET=x", "IDEMPOTENCY_TTL=1d"}, "IDEMPOTENCY_TTL"},
		{"IDEMPOTENCY_TTL too short", nil, []string{"JWT_SECRET=x", "IDEMPOTENCY_TTL=500ms"}, "IDEMPOTENCY_TTL must be a duration of at least 1s"},
		{"LOG_LEVEL unknown", nil, []string{"JWT_SECRET=x", "LOG_LEVEL=loud"}, "LOG_LEVEL"},
		{"SHUTDOWN_GRACE zero", nil, []string{"JWT_SECRET=x", "SHUTDOWN_GRACE=0s"}, "SHUTDOWN_GRACE"},
		{"HTTP_HOST not an address", nil, []string{"JWT_SECRET=x", "HTTP_HOST=256.0.0.1"}, "HTTP_HOST, HTTP_PORT: listen on 256.0.0.1"},
		{"HTTP_SOCKET in a missing directory", nil, []string{"JWT_SECRET=x", "HTTP_PORT=0", "HTTP_SOCKET=/nonexistent/dir/x.sock"}, "HTTP_SOCKET: listen on unix socket /nonexistent/dir/x.sock"},
		{"arguments", []string{"core-api", "--port=5000"}, []string{"JWT_SECRET=x"}, "environment variables"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			args := tt.args
			if args == nil {
				args = []string{"core-api"}
			}
			err := run(ctx, args, append([]string{"HTTP_PORT=0"}, tt.environ...), &servicetest.Buffer{})
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
	servicetest.CheckSecondSignalStopsAtOnce(t, "/transaction", "JWT_SECRET="+string(testSecret), "REDIS_URL=unix://"+t.TempDir()+"/none.sock")
}
