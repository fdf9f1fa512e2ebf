package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/acme-payments/platform/internal/redistest"
	"github.com/acme-payments/platform/internal/servicetest"
	"github.com/acme-payments/platform/internal/txqueue"
	"github.com/acme-payments/platform/internal/txrequest"
)

// startRun runs the real service in-process on a free port with environ
// (internal/servicetest) and returns its base URL, its stdout and a stop
// function that cancels it and returns run's error.
func startRun(t *testing.T, environ ...string) (string, *servicetest.Buffer, func() error) {
	t.Helper()
	svc := servicetest.Start(t, "psp-connector", run, append([]string{"CONSUMER_NAME=test"}, environ...)...)
	return svc.URL, svc.Out, svc.Stop
}

// waitFor polls cond until it holds, failing the test after 15 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// getHealth returns the status code and "status" of GET /health.
func getHealth(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url + "/health")
	if err != nil {
		t.Fatalf("GET /health: %v", err)
	}
	defer res.Body.Close()
	var body struct{ Status string }
	b, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("GET /health: body %q is not JSON: %v", b, err)
	}
	return res.StatusCode, body.Status
}

// getLive returns the status code and body of GET /live.
func getLive(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url + "/live")
	if err != nil {
		t.Fatalf("GET /live: %v", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// contractLines returns the lines of out that the PSP step printed.
func contractLines(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "==> ") {
			lines = append(lines, l)
		}
	}
	return lines
}

// TestRunLiveFailsWhileItsOutputIsBlocked: the connector's stdout stops
// taking writes, as a pipe nobody reads would, so the charge in hand blocks
// in its Write while the HTTP server still answers. GET /live (the stack's
// watchdog restarts the connector on anything but its 200) answers 200
// before, 503 saying the loop is stuck once the loop has started no step
// for its limit (VISIBILITY_TIMEOUT, at least 10 s), and 200 again once the
// output flows; the transaction is then processed, once.
func TestRunLiveFailsWhileItsOutputIsBlocked(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	q := txqueue.NewQueue(rdb, time.Hour)
	svc := servicetest.Start(t, "psp-connector", run, "CONSUMER_NAME=test", "REDIS_URL="+srv.URL, "VISIBILITY_TIMEOUT=1s")
	waitFor(t, "GET /health to pass", func() bool { code, _ := getHealth(t, svc.URL); return code == http.StatusOK })
	if code, body := getLive(t, svc.URL); code != http.StatusOK {
		t.Fatalf("GET /live before: got %d %s, want 200", code, body)
	}

	svc.Out.Hold()
	// Released once, also when the test fails while the output is held:
	// the service could not stop otherwise.
	release := sync.OnceFunc(svc.Out.Release)
	defer release()
	res, err := q.Enqueue(ctx, txqueue.Transaction{UserID: 1, Amount: 100, Currency: "USD", RequestID: "req-blocked"}, "")
	if err != nil {
		t.Fatal(err)
	}
	var code int
	var body string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if code, body = getLive(t, svc.URL); code != http.StatusOK {
			break
		}
	}
	healthCode, healthStatus := getHealth(t, svc.URL)
	release()
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "stuck") {
		t.Errorf("GET /live with the output blocked: got %d %s, want 503 saying the loop is stuck", code, body)
	}
	if healthCode != http.StatusServiceUnavailable || healthStatus != "fail" {
		t.Errorf("GET /health with the output blocked: got %d %q, want 503 fail", healthCode, healthStatus)
	}

	waitFor(t, "GET /live to pass again", func() bool { code, _ := getLive(t, svc.URL); return code == http.StatusOK })
	waitFor(t, res.ID+" processed", func() bool {
		rec, err := q.Status(ctx, res.ID)
		return err == nil && rec.Status == txqueue.StatusProcessed
	})
	if got := contractLines(svc.Out.String()); len(got) != 1 {
		t.Errorf("contract lines: got %d %q, want 1", len(got), got)
	}
}

// TestRunProcessesQueuedTransactions runs the connector on three queued
// transactions at both log levels that matter: each contract line exactly
// once, and at info a progress line counting them, while the line per
// transaction with its request id comes only at debug.
func TestRunProcessesQueuedTransactions(t *testing.T) {
	tests := []struct {
		logLevel string
		perTx    int // "processed" log lines per transaction
	}{
		{"info", 0},
		{"debug", 1},
	}
	for _, tt := range tests {
		t.Run("LOG_LEVEL="+tt.logLevel, func(t *testing.T) {
			srv := redistest.Start(t)
			rdb := srv.Client(t)
			ctx := context.Background()
			q := txqueue.NewQueue(rdb, time.Hour)
			want := map[string]string{} // transaction id → request id
			for _, tx := range []txqueue.Transaction{
				{UserID: 1, Amount: 100, Currency: "USD", RequestID: "req-a"},
				{UserID: 2, Amount: 250, Currency: "EUR", RequestID: "req-b"},
				{UserID: 1, Amount: 1_000_000_000, Currency: "JPY", RequestID: "req-c"},
			} {
				res, err := q.Enqueue(ctx, tx, "")
				if err != nil {
					t.Fatal(err)
				}
				want[res.ID] = tx.RequestID
			}

			url, out, stop := startRun(t, "REDIS_URL="+srv.URL, "LOG_LEVEL="+tt.logLevel)
			for id := range want {
				waitFor(t, id+" processed", func() bool {
					rec, err := q.Status(ctx, id)
					return err == nil && rec.Status == txqueue.StatusProcessed
				})
			}
			if code, status := getHealth(t, url); code != http.StatusOK || status != "pass" {
				t.Errorf("GET /health: got %d %q, want 200 pass", code, status)
			}
			if err := stop(); err != nil {
				t.Fatalf("run after cancel: got %v, want nil", err)
			}

			// Each line exactly once. A round's lines may come in any order:
			// compare them sorted.
			lines := contractLines(out.String())
			wantLines := []string{
				"==> Making transaction with PSP: User ID: 1, Amount: 100, Currency: USD",
				"==> Making transaction with PSP: User ID: 2, Amount: 250, Currency: EUR",
				"==> Making transaction with PSP: User ID: 1, Amount: 1000000000, Currency: JPY",
			}
			slices.Sort(lines)
			slices.Sort(wantLines)
			if strings.Join(lines, "\n") != strings.Join(wantLines, "\n") {
				t.Errorf("got contract lines\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(wantLines, "\n"))
			}
			perTx := map[string]int{}
			progress := 0.0
			for _, l := range strings.Split(out.String(), "\n") {
				var rec map[string]any
				if json.Unmarshal([]byte(l), &rec) != nil || rec["service"] != "psp-connector" {
					continue
				}
				switch rec["msg"] {
				case "processed":
					if id, _ := rec["transaction_id"].(string); rec["request_id"] == want[id] {
						perTx[id]++
					}
				case "progress":
					n, _ := rec["processed"].(float64)
					progress += n
				}
			}
			for id, reqID := range want {
				if perTx[id] != tt.perTx {
					t.Errorf("processed log lines for %s with request_id %s: got %d, want %d", id, reqID, perTx[id], tt.perTx)
				}
			}
			if progress != float64(len(want)) {
				t.Errorf("progress lines count %v processed transactions, want %d", progress, len(want))
			}
			// The consuming line says the batches' and the rounds' sizes:
			// BATCH_SIZE's and CHARGE_CONCURRENCY's defaults, unset here,
			// the same as txqueue's.
			batchSize := fmt.Sprintf(`"batch_size":%d`, txqueue.DefaultBatchSize)
			roundSize := fmt.Sprintf(`"round_size":%d`, txqueue.DefaultChargers)
			for _, wantLog := range []string{`"msg":"ready"`, `"msg":"consuming"`, batchSize, roundSize, `"msg":"stopped","service":"psp-connector","server":"health"`} {
				if !strings.Contains(out.String(), wantLog) {
					t.Errorf("stdout lacks %s", wantLog)
				}
			}
			checkStoppedLast(t, out.String())
		})
	}
}

// redisWithOneQueued starts a private Redis with tx queued on it.
func redisWithOneQueued(t *testing.T, tx txqueue.Transaction) (*redistest.Server, *redis.Client, *txqueue.Queue, txqueue.Enqueued) {
	t.Helper()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	q := txqueue.NewQueue(rdb, time.Hour)
	res, err := q.Enqueue(context.Background(), tx, "")
	if err != nil {
		t.Fatal(err)
	}
	return srv, rdb, q, res
}

// TestRunReclaimsFromKilledConnector simulates a connector killed between
// read and ack: another consumer read the entry and never acked it. This
// connector reclaims it after VISIBILITY_TIMEOUT and prints its line once.
func TestRunReclaimsFromKilledConnector(t *testing.T) {
	srv, rdb, q, res := redisWithOneQueued(t, txqueue.Transaction{UserID: 2, Amount: 42, Currency: "GBP"})
	ctx := context.Background()
	if err := rdb.XGroupCreateMkStream(ctx, txqueue.Stream, txqueue.Group, "0").Err(); err != nil {
		t.Fatal(err)
	}
	got, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: txqueue.Group, Consumer: "killed", Streams: []string{txqueue.Stream, ">"}, Count: 1, Block: -1,
	}).Result()
	if err != nil || len(got) != 1 || len(got[0].Messages) != 1 {
		t.Fatalf("XREADGROUP as the killed connector: got %v, %v", got, err)
	}

	_, out, stop := startRun(t, "REDIS_URL="+srv.URL, "VISIBILITY_TIMEOUT=1s", "CLAIM_INTERVAL=100ms")
	waitFor(t, "processed", func() bool {
		rec, err := q.Status(ctx, res.ID)
		return err == nil && rec.Status == txqueue.StatusProcessed
	})
	waitFor(t, "acked", func() bool {
		p, err := rdb.XPending(ctx, txqueue.Stream, txqueue.Group).Result()
		return err == nil && p.Count == 0
	})
	time.Sleep(200 * time.Millisecond) // a few more claim passes: nothing may print again
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	lines := contractLines(out.String())
	if len(lines) != 1 || lines[0] != "==> Making transaction with PSP: User ID: 2, Amount: 42, Currency: GBP" {
		t.Errorf("got contract lines %q, want the GBP line once", lines)
	}
}

// TestRunHealthFailsWhenRedisIsDown: /health passes with Redis up, fails
// once it is down, and passes again once it is back. The first pass is
// waited for: /health fails until the consumer group is in place
// (Consumer.Check), which comes after the "ready" line startRun waits for,
// and later still on a loaded machine (3 of 40 failed under the race
// detector and two CPU hogs, asking once).
func TestRunHealthFailsWhenRedisIsDown(t *testing.T) {
	srv := redistest.Start(t)
	url, _, stop := startRun(t, "REDIS_URL="+srv.URL)
	var code int
	var status string
	waitFor(t, "health to pass with Redis up", func() bool {
		code, status = getHealth(t, url)
		return code == http.StatusOK
	})
	if status != "pass" {
		t.Errorf("with Redis up: got %d %q, want 200 pass", code, status)
	}
	srv.Kill()
	if code, status := getHealth(t, url); code != http.StatusServiceUnavailable || status != "fail" {
		t.Errorf("with Redis down: got %d %q, want 503 fail", code, status)
	}
	srv.Restart(t)
	waitFor(t, "health to pass again", func() bool {
		code, _ := getHealth(t, url)
		return code == http.StatusOK
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestRunChargesWhileRedisIsFull: against a Redis at its maxmemory
// (noeviction), which refuses new transactions, the connector charges what
// was queued before and its /health passes: it works. Its check was
// core-api's, which fails then ("redis refuses writes"), so a full Redis
// showed the connector as not ready while it charged.
func TestRunChargesWhileRedisIsFull(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	if err := rdb.XGroupCreateMkStream(ctx, txqueue.Stream, txqueue.Group, "0").Err(); err != nil {
		t.Fatal(err)
	}
	q := txqueue.NewQueue(rdb, time.Hour)
	var ids []string
	for i := range 3 {
		res, err := q.Enqueue(ctx, txqueue.Transaction{UserID: 1, Amount: int64(100 + i), Currency: "USD", RequestID: "req"}, "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.ID)
	}
	for _, kv := range [][2]string{{"maxmemory-policy", "noeviction"}, {"maxmemory", "1"}} {
		if err := rdb.ConfigSet(ctx, kv[0], kv[1]).Err(); err != nil {
			t.Fatal(err)
		}
	}
	url, out, stop := startRun(t, "REDIS_URL="+srv.URL)
	for _, id := range ids {
		waitFor(t, id+" processed", func() bool {
			rec, err := q.Status(ctx, id)
			return err == nil && rec.Status == txqueue.StatusProcessed
		})
	}
	if code, status := getHealth(t, url); code != http.StatusOK || status != "pass" {
		t.Errorf("GET /health with Redis full: got %d %q, want 200 pass", code, status)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := len(contractLines(out.String())); got != len(ids) {
		t.Errorf("contract lines: got %d, want %d", got, len(ids))
	}
}

func TestRunFailsFast(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		environ []string
		want    string
	}{
		{"REDIS_URL bad scheme", nil, []string{"REDIS_URL=http://x"}, "REDIS_URL"},
		{"HTTP_PORT not a number", nil, []string{"HTTP_PORT=http"}, "HTTP_PORT"},
		{"HTTP_PORT out of range", nil, []string{"HTTP_PORT=70000"}, "HTTP_PORT"},
		{"HTTP_SOCKET without HTTP_PORT", nil, []string{"HTTP_PORT=", "HTTP_SOCKET=/tmp/psp.sock"}, "HTTP_SOCKET is set but HTTP_PORT is not"},
		{"HTTP_HOST without HTTP_PORT", nil, []string{"HTTP_PORT=", "HTTP_HOST=0.0.0.0"}, "HTTP_HOST is set but HTTP_PORT is not"},
		{"VISIBILITY_TIMEOUT not a duration", nil, []string{"VISIBILITY_TIMEOUT=30"}, "VISIBILITY_TIMEOUT"},
		{"VISIBILITY_TIMEOUT too short to be a lease", nil, []string{"VISIBILITY_TIMEOUT=1ms"}, "VISIBILITY_TIMEOUT must be at least 1s"},
		{"VISIBILITY_TIMEOUT zero", nil, []string{"VISIBILITY_TIMEOUT=0s"}, "VISIBILITY_TIMEOUT"},
		{"CLAIM_INTERVAL negative", nil, []string{"CLAIM_INTERVAL=-1s"}, "CLAIM_INTERVAL"},
		{"CLAIM_INTERVAL zero", nil, []string{"CLAIM_INTERVAL=0s"}, "CLAIM_INTERVAL"},
		{"CHARGE_CONCURRENCY zero", nil, []string{"CHARGE_CONCURRENCY=0"}, "CHARGE_CONCURRENCY"},
		{"CHARGE_CONCURRENCY negative", nil, []string{"CHARGE_CONCURRENCY=-4"}, "CHARGE_CONCURRENCY"},
		{"CHARGE_CONCURRENCY above 64", nil, []string{"CHARGE_CONCURRENCY=65"}, "CHARGE_CONCURRENCY"},
		{"MAX_DELIVERIES zero", nil, []string{"MAX_DELIVERIES=0"}, "MAX_DELIVERIES"},
		{"BATCH_SIZE zero", nil, []string{"BATCH_SIZE=0"}, "BATCH_SIZE"},
		{"BATCH_SIZE huge", nil, []string{"BATCH_SIZE=1000000"}, "BATCH_SIZE"},
		{"STATUS_TTL too short", nil, []string{"STATUS_TTL=10ms"}, "STATUS_TTL"},
		// A claimed record must outlast the wait for its reclaim (D103).
		{"STATUS_TTL shorter than VISIBILITY_TIMEOUT", nil, []string{"STATUS_TTL=1s", "VISIBILITY_TIMEOUT=2s"}, "STATUS_TTL must be at least twice the sum of VISIBILITY_TIMEOUT and CLAIM_INTERVAL (2 × (2s + 5s) = 14s), got 1s"},
		{"STATUS_TTL under twice VISIBILITY_TIMEOUT plus CLAIM_INTERVAL", nil, []string{"STATUS_TTL=69s"}, "STATUS_TTL must be at least twice the sum of VISIBILITY_TIMEOUT and CLAIM_INTERVAL (2 × (30s + 5s) = 1m10s), got 1m9s"},
		{"LOG_LEVEL unknown", nil, []string{"LOG_LEVEL=loud"}, "LOG_LEVEL"},
		{"SHUTDOWN_GRACE zero", nil, []string{"SHUTDOWN_GRACE=0s"}, "SHUTDOWN_GRACE"},
		{"HTTP_HOST not an address", nil, []string{"HTTP_HOST=256.0.0.1", "REDIS_URL=unix:///nonexistent.sock"}, "HTTP_HOST, HTTP_PORT: listen on 256.0.0.1"},
		{"arguments", []string{"psp-connector", "--once"}, nil, "environment variables"},
		{"CHARGE_LOG in no directory", nil, []string{"CHARGE_LOG=/nonexistent/psp-connector.log"}, "CHARGE_LOG"},
		{"CHARGE_LOG a directory", nil, []string{"CHARGE_LOG=" + os.TempDir() + "/"}, "CHARGE_LOG"},
		{"CHARGE_LEDGER in no directory", nil, []string{"CHARGE_LEDGER=/nonexistent/ledger.jsonl"}, "CHARGE_LEDGER"},
		{"CHARGE_LEDGER a directory", nil, []string{"CHARGE_LEDGER=" + os.TempDir()}, "CHARGE_LEDGER"},
		{"CHARGE_LEDGER is CHARGE_LOG", nil, []string{"CHARGE_LOG=" + os.TempDir() + "/psp.log", "CHARGE_LEDGER=" + os.TempDir() + "//psp.log"}, "CHARGE_LEDGER"},
		{"CHARGE_LEDGER cannot be created", nil, []string{"CHARGE_LEDGER=/proc/ledger.jsonl", "REDIS_URL=unix:///nonexistent.sock"}, "CHARGE_LEDGER"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			args := tt.args
			if args == nil {
				args = []string{"psp-connector"}
			}
			err := run(ctx, args, append([]string{"HTTP_PORT=0"}, tt.environ...), &servicetest.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestRunChargesNothingWhenItCannotListen: with its port taken the
// connector exits, naming the variables, before it takes anything off the
// queue.
func TestRunChargesNothingWhenItCannotListen(t *testing.T) {
	srv, _, q, res := redisWithOneQueued(t, txqueue.Transaction{UserID: 1, Amount: 5, Currency: "USD"})
	ctx := context.Background()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := strconv.Itoa(taken.Addr().(*net.TCPAddr).Port)
	out := &servicetest.Buffer{}
	runCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err = run(runCtx, []string{"psp-connector"}, []string{"HTTP_PORT=" + port, "REDIS_URL=" + srv.URL}, out)
	if err == nil || !strings.Contains(err.Error(), "HTTP_HOST, HTTP_PORT") {
		t.Fatalf("got %v, want a listen error naming HTTP_HOST, HTTP_PORT", err)
	}
	if lines := contractLines(out.String()); len(lines) != 0 {
		t.Errorf("charged %q although it could not listen", lines)
	}
	if rec, err := q.Status(ctx, res.ID); err != nil || rec.Status != txqueue.StatusQueued {
		t.Errorf("status: got %+v, %v; want still queued", rec, err)
	}
}

// TestRunWithOnlyRedisURL: the contract configures the connector with
// REDIS_URL alone. So configured (no HTTP_PORT), it charges, serves no
// /health and listens nowhere: it cannot take the APIs' default port 5000.
func TestRunWithOnlyRedisURL(t *testing.T) {
	srv, _, q, res := redisWithOneQueued(t, txqueue.Transaction{UserID: 3, Amount: 7, Currency: "GBP"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &servicetest.Buffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"psp-connector"}, []string{"REDIS_URL=" + srv.URL}, out) }()
	waitFor(t, "the transaction processed", func() bool {
		select {
		case err := <-done:
			t.Fatalf("run returned %v before processing:\n%s", err, out.String())
		default:
		}
		rec, err := q.Status(context.Background(), res.ID)
		return err == nil && rec.Status == txqueue.StatusProcessed
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run after cancel: got %v, want nil", err)
	}
	if got, want := contractLines(out.String()), []string{"==> Making transaction with PSP: User ID: 3, Amount: 7, Currency: GBP"}; !slices.Equal(got, want) {
		t.Errorf("contract lines: got %q, want %q", got, want)
	}
	if !strings.Contains(out.String(), `"msg":"no health endpoint: set HTTP_PORT for GET /health"`) {
		t.Errorf("no log line saying there is no health endpoint:\n%s", out.String())
	}
	if strings.Contains(out.String(), `"msg":"ready"`) {
		t.Errorf("got a ready line (a listener) without HTTP_PORT:\n%s", out.String())
	}
	checkStoppedLast(t, out.String())
}

// checkStoppedLast checks that the connector's last line is its own
// "stopped", after the consumer's and the health server's lines: the health
// server's "stopped" (server=health) came before the consumer's last lines
// when the consumer drained a batch after the signal, and without HTTP_PORT
// there was no "stopped" at all.
func checkStoppedLast(t *testing.T, out string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := lines[len(lines)-1]
	if !strings.Contains(last, `"msg":"stopped"`) || strings.Contains(last, `"server"`) {
		t.Errorf("last line: got %s, want the connector's own \"stopped\"", last)
	}
}

func TestLinePSP(t *testing.T) {
	tests := []struct {
		m    txqueue.Message
		want string
	}{
		{txqueue.Message{Transaction: txqueue.Transaction{UserID: 1, Amount: 100, Currency: "USD"}},
			"==> Making transaction with PSP: User ID: 1, Amount: 100, Currency: USD\n"},
		{txqueue.Message{Transaction: txqueue.Transaction{UserID: 123456789, Amount: 1_000_000_000, Currency: "EUR"}},
			"==> Making transaction with PSP: User ID: 123456789, Amount: 1000000000, Currency: EUR\n"},
	}
	for _, tt := range tests {
		w := &countingWriter{}
		if err := (linePSP{w: w}).Charge(context.Background(), tt.m); err != nil {
			t.Fatal(err)
		}
		line, ledger, _ := strings.Cut(w.buf.String(), "\n")
		if line+"\n" != tt.want || w.writes != 1 {
			t.Errorf("got %q in %d writes, want %q (then its ledger line) in 1", w.buf.String(), w.writes, tt.want)
		}
		checkLedgerLine(t, ledger, tt.m)
	}
}

// checkLedgerLine checks that out is exactly one ledger line, a JSON log
// line at info naming round's transactions in order.
func checkLedgerLine(t *testing.T, out string, round ...txqueue.Message) {
	t.Helper()
	var rec struct {
		Time           time.Time `json:"time"`
		Level, Msg     string
		Service        string
		TransactionIDs []string `json:"transaction_ids"`
	}
	if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
		t.Fatalf("ledger line: got %q, want one line", out)
	}
	if err := json.Unmarshal([]byte(out), &rec); err != nil {
		t.Fatalf("ledger line %q: %v", out, err)
	}
	var want []string
	for _, m := range round {
		want = append(want, m.ID)
	}
	if rec.Level != "INFO" || rec.Msg != chargedMsg || rec.Service != "psp-connector" || rec.Time.IsZero() ||
		!slices.Equal(rec.TransactionIDs, want) {
		t.Errorf("ledger line: got %+v, want INFO %q by psp-connector at a time, naming %v", rec, chargedMsg, want)
	}
}

func TestLinePSPChargeRound(t *testing.T) {
	round := testRound()
	want := "==> Making transaction with PSP: User ID: 1, Amount: 100, Currency: USD\n" +
		"==> Making transaction with PSP: User ID: 2, Amount: 250, Currency: EUR\n" +
		"==> Making transaction with PSP: User ID: 3, Amount: 7, Currency: JPY\n"
	w := &countingWriter{}
	errs := make([]error, len(round))
	linePSP{w: w}.ChargeRound(context.Background(), round, errs)
	lines, ledger := w.buf.String()[:min(len(want), w.buf.Len())], w.buf.String()[min(len(want), w.buf.Len()):]
	if lines != want || w.writes != 1 {
		t.Errorf("got %q in %d writes, want %q (then the ledger line) in 1", w.buf.String(), w.writes, want)
	}
	checkLedgerLine(t, ledger, round...)
	for i, err := range errs {
		if err != nil {
			t.Errorf("errs[%d]: got %v, want nil", i, err)
		}
	}

	// A failed write fails every charge of the round.
	broken := errors.New("broken pipe")
	linePSP{w: failingWriter{broken}}.ChargeRound(context.Background(), round, errs)
	for i, err := range errs {
		if !errors.Is(err, broken) {
			t.Errorf("after a failed write, errs[%d]: got %v, want %v", i, err, broken)
		}
	}

	// A short write (a full disk) fails only the lines it did not finish:
	// the first line went out whole, so that charge happened.
	full := errors.New("no space left on device")
	short := &shortWriter{n: len("==> Making transaction with PSP: User ID: 1, Amount: 100, Currency: USD\n") + 5, err: full}
	linePSP{w: short}.ChargeRound(context.Background(), round, errs)
	for i, want := range []error{nil, full, full} {
		if !errors.Is(errs[i], want) || (want == nil && errs[i] != nil) {
			t.Errorf("after a short write, errs[%d]: got %v, want %v", i, errs[i], want)
		}
	}
}

// TestARoundLeavesInWritesThatFitAPipe: the ledger's promise (a transaction
// named in a ledger line had its contract line printed) holds only while
// each Write is at most PIPE_BUF, since process-compose reads the
// connector's stdout from a pipe. On Linux a round of CHARGE_CONCURRENCY's
// default with the longest lines a transaction can have (a 19-digit user id,
// the largest amount) leaves in one Write; a round of any allowed size (up to
// 64) leaves in Writes of at most pipeBuf, each its transactions' lines then
// the ledger line naming exactly them, every transaction once, in order.
// It logs the largest round that fits one Write, which the README quotes.
func TestARoundLeavesInWritesThatFitAPipe(t *testing.T) {
	cfg, err := parseConfig([]string{"REDIS_URL=redis://127.0.0.1:6379"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Chargers != txqueue.DefaultChargers {
		t.Errorf("CHARGE_CONCURRENCY's default: got %d, want txqueue.DefaultChargers (%d)", cfg.Chargers, txqueue.DefaultChargers)
	}
	longest := func(n int) []txqueue.Message {
		round := make([]txqueue.Message, n)
		for i := range round {
			round[i] = txqueue.Message{ID: fmt.Sprintf("tx_%032x", i),
				Transaction: txqueue.Transaction{UserID: math.MaxInt64, Amount: txrequest.MaxAmount, Currency: "USD"}}
		}
		return round
	}
	oneWrite := 0
	for size := 1; size <= 64; size++ {
		round := longest(size)
		w := &writesWriter{}
		errs := make([]error, size)
		linePSP{w: w}.ChargeRound(context.Background(), round, errs)
		if len(w.writes) == 1 {
			oneWrite = size
		}
		if size == cfg.Chargers && runtime.GOOS == "linux" && len(w.writes) != 1 {
			t.Errorf("a round of the default %d with the longest lines: %d writes, want 1", size, len(w.writes))
		}
		rest := round
		for i, b := range w.writes {
			if len(b) > pipeBuf {
				t.Errorf("round of %d, write %d: %d bytes, want at most %d", size, i, len(b), pipeBuf)
			}
			lines := strings.SplitAfter(string(b), "\n")
			lines = lines[:len(lines)-1] // after the last newline: ""
			n := len(lines) - 1
			if n < 1 || n > len(rest) {
				t.Fatalf("round of %d, write %d: %d lines for %d transactions left", size, i, len(lines), len(rest))
			}
			for j, l := range lines[:n] {
				if want := string(appendLine(nil, rest[j])); l != want {
					t.Errorf("round of %d, write %d, line %d: got %q, want %q", size, i, j, l, want)
				}
			}
			checkLedgerLine(t, lines[n], rest[:n]...)
			rest = rest[n:]
		}
		if len(rest) != 0 {
			t.Errorf("round of %d: %d transactions never written", size, len(rest))
		}
		for i, err := range errs {
			if err != nil {
				t.Errorf("round of %d, errs[%d]: %v", size, i, err)
			}
		}
	}
	if runtime.GOOS == "linux" && oneWrite < cfg.Chargers {
		t.Errorf("rounds of up to %d fit one write, fewer than the default %d", oneWrite, cfg.Chargers)
	}
	t.Logf("rounds of up to %d with the longest lines fit one write of %d bytes", oneWrite, pipeBuf)

	// A round split in two whose second Write fails: the first part's
	// charges happened, the second's did not, and nothing follows the
	// failed Write.
	round := longest(40)
	broken := errors.New("broken pipe")
	w := &writesWriter{failFrom: 1, err: broken}
	errs := make([]error, len(round))
	linePSP{w: w}.ChargeRound(context.Background(), round, errs)
	first := strings.Count(string(w.writes[0]), "\n") - 1
	if len(w.writes) != 1 || w.calls != 2 {
		t.Fatalf("a round of 40 whose second write fails: %d writes kept in %d calls, want 1 in 2", len(w.writes), w.calls)
	}
	for i, err := range errs {
		if want := i >= first; (err != nil) != want || (want && !errors.Is(err, broken)) {
			t.Errorf("errs[%d] of 40 (first write held %d): got %v", i, first, err)
		}
	}
}

// writesWriter keeps each Write; once failFrom calls have passed (if err is
// set), it writes nothing and fails.
type writesWriter struct {
	writes   [][]byte
	calls    int
	failFrom int
	err      error
}

func (w *writesWriter) Write(p []byte) (int, error) {
	w.calls++
	if w.err != nil && w.calls > w.failFrom {
		return 0, w.err
	}
	w.writes = append(w.writes, slices.Clone(p))
	return len(p), nil
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

// shortWriter writes the first n bytes, then fails with err.
type shortWriter struct {
	n   int
	err error
}

func (w *shortWriter) Write(p []byte) (int, error) {
	if len(p) <= w.n {
		return len(p), nil
	}
	return w.n, w.err
}

type countingWriter struct {
	buf    bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	return w.buf.Write(p)
}

// testRound is a round of three transactions with their ids.
func testRound() []txqueue.Message {
	return []txqueue.Message{
		{ID: "tx_00000000000000000000000000000001", Transaction: txqueue.Transaction{UserID: 1, Amount: 100, Currency: "USD"}},
		{ID: "tx_00000000000000000000000000000002", Transaction: txqueue.Transaction{UserID: 2, Amount: 250, Currency: "EUR"}},
		{ID: "tx_00000000000000000000000000000003", Transaction: txqueue.Transaction{UserID: 3, Amount: 7, Currency: "JPY"}},
	}
}

// TestLedgerPSPMade: the ledger PSP prints to a file (as process-compose
// writes the connector's stdout to its log) and reads it back: a
// transaction whose round's Write went out whole is made; one whose round
// was cut before its ledger line (the lines written, the ledger line not),
// or that was never charged, is not; a file that cannot be read is an error
// naming CHARGE_LOG.
func TestLedgerPSPMade(t *testing.T) {
	f, psp := newLedgerLog(t)
	round := testRound()
	errs := make([]error, 2)
	psp.ChargeRound(context.Background(), round[:2], errs)
	// The third one's round cut by a kill: its line out, its ledger line not.
	if _, err := f.Write(appendLine(nil, round[2])); err != nil {
		t.Fatal(err)
	}
	// Other output in between, as the connector's log lines.
	if _, err := f.WriteString(`{"level":"INFO","msg":"progress","transaction_ids":["tx_00000000000000000000000000000004"]}` + "\n"); err != nil {
		t.Fatal(err)
	}
	ids := []string{round[0].ID, round[1].ID, round[2].ID, "tx_00000000000000000000000000000004"}
	got, err := psp.Made(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, true, false, false} {
		if got[ids[i]] != want {
			t.Errorf("Made(%s): got %v, want %v", ids[i], got[ids[i]], want)
		}
	}

	missing := ledgerPSP{log: filepath.Join(t.TempDir(), "none.log")}
	if _, err := missing.Made(context.Background(), ids); err == nil || !strings.Contains(err.Error(), "CHARGE_LOG") {
		t.Errorf("Made on a missing file: got %v, want an error naming CHARGE_LOG", err)
	}
}

// freezeAfterWrite passes Writes on to w, and after the first one freezes
// Redis for the connector using hook: as a connector stopped (SIGSTOP, or
// killed) after its round's lines went out, with its ledger copy, and
// before their record.
type freezeAfterWrite struct {
	w     io.Writer
	hook  *redisFreeze
	wrote chan struct{} // closed after the first Write
	once  sync.Once
}

func (s *freezeAfterWrite) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	s.once.Do(func() {
		s.hook.on.Store(true)
		close(s.wrote)
	})
	return n, err
}

// redisFreeze is a go-redis hook that, once on, holds every command of its
// client until release is closed.
type redisFreeze struct {
	on      atomic.Bool
	release chan struct{}
}

func (h *redisFreeze) hold() {
	if h.on.Load() {
		<-h.release
	}
}

func (h *redisFreeze) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *redisFreeze) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.hold()
		return next(ctx, cmd)
	}
}

func (h *redisFreeze) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.hold()
		return next(ctx, cmds)
	}
}

// startFrozenFirst starts the connector that a takeover test's second one
// takes over from, stopped with work in hand. start runs it on rdb, a client
// of srv whose commands hold once its PSP turns freeze on (as the connector
// SIGSTOPped, or killed), and returns its stop and the channel the PSP closes
// as it freezes. startFrozenFirst waits up to 15 s for that channel, failing
// with "the first connector <notYet> within 15 s"; at the test's end it
// releases Redis and reports stop's error.
func startFrozenFirst(t *testing.T, srv *redistest.Server, notYet string,
	start func(rdb *redis.Client, freeze *redisFreeze) (stop func() error, frozen <-chan struct{})) {
	t.Helper()
	freeze := &redisFreeze{release: make(chan struct{})}
	rdb := srv.Client(t)
	rdb.AddHook(freeze)
	stop, frozen := start(rdb, freeze)
	t.Cleanup(func() {
		close(freeze.release)
		if err := stop(); err != nil {
			t.Errorf("first connector, once Redis answered it again: %v", err)
		}
	})
	select {
	case <-frozen:
	case <-time.After(15 * time.Second):
		t.Fatalf("the first connector %s within 15 s", notYet)
	}
}

// TestLedgerMakesARoundInHandExactlyOnce: a connector prints a round to its
// log file and stops before recording it (Redis never answers it again, as
// if it were killed right after the print). A second connector reading the same file
// back (CHARGE_LOG) takes the round over once the first one's lease ran
// out: it finds the round's ledger line, records the transactions and
// prints none of their lines again. Every transaction has exactly one
// contract line in the output, and each is processed. Without the ledger
// (linePSP), the same run prints the round twice.
//
// When the log is truncated before the takeover (process-compose does that
// when it starts the connector itself, after a stop through its API or TUI),
// only CHARGE_LEDGER, the connector's own copy of its ledger lines, still
// names the round: with it the round is charged once, without it twice.
func TestLedgerMakesARoundInHandExactlyOnce(t *testing.T) {
	for _, tt := range []struct {
		name        string
		log, own    bool // CHARGE_LOG, CHARGE_LEDGER
		truncateLog bool
		// removeLog removes the log before the takeover (an operator
		// freeing disk); its writer writes on in the unlinked file, as
		// lumberjack does until its next rotation.
		removeLog  bool
		wantRepeat bool
	}{
		{"ledger lines read back (CHARGE_LOG)", true, false, false, false, false},
		{"CHARGE_LOG and CHARGE_LEDGER", true, true, false, false, false},
		{"log truncated before the takeover, CHARGE_LEDGER kept", true, true, true, false, false},
		{"log truncated before the takeover, CHARGE_LOG only", true, false, true, false, true},
		{"log removed before the takeover, CHARGE_LEDGER kept", true, true, false, true, false},
		{"no ledger: at least once", false, false, false, false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := redistest.Start(t)
			rdb := srv.Client(t)
			ctx := context.Background()
			q := txqueue.NewQueue(rdb, time.Hour)
			var ids []string
			for i := range 3 {
				res, err := q.Enqueue(ctx, txqueue.Transaction{UserID: 1, Amount: int64(100 + i), Currency: "USD"}, "")
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, res.ID)
			}
			dir := t.TempDir()
			path := filepath.Join(dir, "psp-connector.log")
			f := openLog(t, path)
			log := slog.New(slog.NewJSONHandler(f, nil))
			var own *ledgerFile
			var err error
			if tt.own {
				own, err = openLedgerFile(filepath.Join(dir, "ledger.jsonl"), ledgerTail, log)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { own.Close() })
			}
			psp := func(w io.Writer) txqueue.PSP {
				if !tt.log && !tt.own {
					return linePSP{w: w}
				}
				p := ledgerPSP{linePSP: linePSP{w: w}, own: own}
				if tt.log {
					p.log = path
				}
				return p
			}
			startFrozenFirst(t, srv, "printed nothing", func(rdb *redis.Client, freeze *redisFreeze) (func() error, <-chan struct{}) {
				frozen := &freezeAfterWrite{w: f, hook: freeze, wrote: make(chan struct{})}
				return startConsumer(t, rdb, "first", psp(frozen), log), frozen.wrote
			})
			if own != nil {
				waitFor(t, "the first connector's ledger copy", func() bool {
					st, err := os.Stat(own.path)
					return err == nil && st.Size() > 0
				})
			}
			var lost []byte // what the truncation took
			if tt.truncateLog {
				if lost, err = os.ReadFile(path); err != nil {
					t.Fatal(err)
				}
				if err := os.Truncate(path, 0); err != nil {
					t.Fatal(err)
				}
			}
			var removed *os.File // the removed log, to read it back
			if tt.removeLog {
				if removed, err = os.Open(path); err != nil {
					t.Fatal(err)
				}
				defer removed.Close()
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			}

			stopSecond := startConsumer(t, rdb, "second", psp(f), log)
			for _, id := range ids {
				waitFor(t, id+" processed", func() bool {
					rec, err := q.Status(ctx, id)
					return err == nil && rec.Status == txqueue.StatusProcessed
				})
			}
			if err := stopSecond(); err != nil {
				t.Fatalf("second connector: %v", err)
			}

			var b []byte
			if removed != nil {
				b, err = io.ReadAll(removed)
			} else {
				b, err = os.ReadFile(path)
			}
			if err != nil {
				t.Fatal(err)
			}
			out := string(lost) + string(b)
			for i := range ids {
				line := fmt.Sprintf("==> Making transaction with PSP: User ID: 1, Amount: %d, Currency: USD\n", 100+i)
				got := strings.Count(out, line)
				want := 1
				if tt.wantRepeat {
					want = 2
				}
				if got != want {
					t.Errorf("contract lines for amount %d: got %d, want %d\n%s", 100+i, got, want, out)
				}
			}
			made := strings.Contains(out, "the PSP made these before their consumer stopped; recorded processed, not charged again")
			if made == tt.wantRepeat {
				t.Errorf("log says the round was found in the ledger: got %v, want %v\n%s", made, !tt.wantRepeat, out)
			}
		})
	}
}

// startConsumer runs a consumer named name with psp and short timeouts (a
// lease of 300 ms) until the returned stop is called; stop returns Run's
// error.
func startConsumer(t *testing.T, rdb *redis.Client, name string, psp txqueue.PSP, log *slog.Logger) (stop func() error) {
	t.Helper()
	return startConsumerWith(t, rdb, txqueue.ConsumerConfig{Name: name, BatchSize: 16, Block: 100 * time.Millisecond,
		VisibilityTimeout: 300 * time.Millisecond, ClaimInterval: 100 * time.Millisecond,
		MaxDeliveries: 5, StatusTTL: time.Hour, ShutdownGrace: time.Second, Chargers: 16}, psp, log)
}

// startConsumerWith runs a consumer with cfg and psp until the returned stop
// is called; stop returns Run's error.
func startConsumerWith(t *testing.T, rdb *redis.Client, cfg txqueue.ConsumerConfig, psp txqueue.PSP, log *slog.Logger) (stop func() error) {
	t.Helper()
	c, err := txqueue.NewConsumer(rdb, cfg, psp, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	return func() error {
		cancel()
		return <-done
	}
}

func TestMain(m *testing.M) {
	servicetest.RunMainIfAsked(main)
	os.Exit(m.Run())
}

// TestRunSecondSignalStopsAtOnce: the first SIGTERM (or Ctrl-C) drains,
// and a second one stops the process at once; it waited out the drain
// (here a request to its health server that never finishes).
func TestRunSecondSignalStopsAtOnce(t *testing.T) {
	servicetest.CheckSecondSignalStopsAtOnce(t, "/health", "REDIS_URL=unix://"+t.TempDir()+"/none.sock")
}

// TestLedgerPSPMadeSkipsWhatIsNoLine: what is not a line of the connector's
// output in CHARGE_LOG, a line longer than any ledger line (another
// writer's, or garbage) or the run of NUL bytes that a log truncated under a
// writer without O_APPEND starts with, costs only itself: the ledger lines
// around it are still found. Before, bufio.Scanner's limit made Made fail,
// and every transaction in hand was charged again.
func TestLedgerPSPMadeSkipsWhatIsNoLine(t *testing.T) {
	round := testRound()
	ids := []string{round[0].ID, round[1].ID, round[2].ID}
	for _, tt := range []struct {
		name    string
		between func(f *os.File) error
	}{
		{"a line of 2 MB", func(f *os.File) error {
			_, err := f.WriteString(strings.Repeat("x", 2<<20) + "\n")
			return err
		}},
		{"a hole of 70 MB: a truncated log written on at its old offset", func(f *os.File) error {
			st, err := f.Stat()
			if err != nil {
				return err
			}
			if err := f.Truncate(st.Size() + 70<<20); err != nil {
				return err
			}
			_, err = f.Seek(0, io.SeekEnd)
			return err
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, psp := newLedgerLog(t)
			errs := make([]error, 1)
			psp.ChargeRound(context.Background(), round[:1], errs)
			if err := tt.between(f); err != nil {
				t.Fatal(err)
			}
			psp.ChargeRound(context.Background(), round[1:2], errs)
			got, err := psp.Made(context.Background(), ids)
			if err != nil {
				t.Fatalf("Made: %v", err)
			}
			// The first round is more than 64 MB back after the hole.
			want := []bool{!strings.HasPrefix(tt.name, "a hole"), true, false}
			for i := range ids {
				if got[ids[i]] != want[i] {
					t.Errorf("Made(%s): got %v, want %v", ids[i], got[ids[i]], want[i])
				}
			}
		})
	}
}

// newLedgerLog creates an empty CHARGE_LOG in t's temporary directory,
// closed when t ends, and a ledger PSP that writes to it and reads it back.
func newLedgerLog(t *testing.T) (*os.File, ledgerPSP) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "psp-connector.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, ledgerPSP{linePSP: linePSP{w: f}, log: path}
}

// TestRunShowsItselfAliveInItsDatabase: the running connector keeps
// txqueue.ConsumerAliveKey, named after itself, in the database its
// REDIS_URL names and in no other, so that a core-api queueing in another
// database can tell that no connector consumes it (txqueue.GoWarnIfNoConsumer).
func TestRunShowsItselfAliveInItsDatabase(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	_, _, stop := startRun(t, "REDIS_URL="+srv.URL+"?db=1")
	other, err := txqueue.Connect(ctx, srv.URL+"?db=0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	own, err := txqueue.Connect(ctx, srv.URL+"?db=1")
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	waitFor(t, "the connector's key in database 1", func() bool {
		return own.Get(ctx, txqueue.ConsumerAliveKey).Val() == "test"
	})
	if ttl := own.PTTL(ctx, txqueue.ConsumerAliveKey).Val(); ttl <= 0 || ttl > txqueue.ConsumerAliveTTL {
		t.Errorf("got the key's expiry %s, want up to %s", ttl, txqueue.ConsumerAliveTTL)
	}
	if n := other.Exists(ctx, txqueue.ConsumerAliveKey).Val(); n != 0 {
		t.Errorf("got the key in database 0 too, want it only in database 1")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
