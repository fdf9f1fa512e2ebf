package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/acme-payments/platform/internal/stackconfig"
)

// TestStack starts the real stack (Redis, the three services, HAProxy under
// process-compose) through the launcher, exercises the contract through
// HAProxy, and checks that `stack down` leaves nothing behind.
func TestStack(t *testing.T) {
	pcDir := requireTools(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	// The watchdog's restart of a hung service, below, in 3 s rather than
	// 15; the drain at a stop shorter than that, as the launcher requires.
	s := newStack(t, ctx, pcDir, map[string]string{"RESTART_HUNG_AFTER": "3s", "SHUTDOWN_GRACE": "2s"})

	t.Run("port taken", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:"+s.vars["PLATFORM_PORT"])
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		_, stderr, err := s.run("up", "--detach", "--wait", "--timeout", "30s")
		if err == nil {
			if _, stderr, err := s.run("down"); err != nil {
				t.Logf("stack down: %v\n%s", err, stderr)
			}
			t.Fatalf("up with PLATFORM_PORT taken: got success, want an error")
		}
		want := "port " + s.vars["PLATFORM_PORT"] + " on 127.0.0.1 is not free"
		if !strings.Contains(stderr, want) || !strings.Contains(stderr, "PLATFORM_PORT") {
			t.Errorf("up with PLATFORM_PORT taken: got %q, want it to contain %q and the variable name", stderr, want)
		}
		if rep := s.status(); rep.Running {
			t.Errorf("after a refused up: got a running stack, want nothing started")
		}
		// Refused before anything was built or prepared.
		if _, err := os.Stat(s.vars["STACK_STATE_DIR"]); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after a refused up: state dir %s: got %v, want it not created", s.vars["STACK_STATE_DIR"], err)
		}
	})

	start := time.Now()
	stdout, stderr, err := s.run("up", "--detach", "--wait", "--timeout", "60s")
	if err != nil {
		t.Fatalf("stack up --detach --wait: %v\n%s\n%s", err, stdout, stderr)
	}
	t.Logf("stack up --detach --wait returned after %s:\n%s", time.Since(start).Round(time.Millisecond), stderr)
	for _, name := range []string{"redis", "auth-api", "core-api", "psp-connector", "haproxy", "watchdog"} {
		if !strings.Contains(stderr, "stack: "+name) || !strings.Contains(stderr, "ready after") {
			t.Errorf("up's progress: got %q, want a ready line for %s", stderr, name)
		}
	}
	before := s.status()
	if !before.Running || len(before.Processes) != 6 {
		t.Fatalf("stack status after up: got %+v, want 6 running processes", before)
	}
	// status run with another PLATFORM_PORT still shows where the running
	// stack listens: the URLs up recorded.
	other := exec.CommandContext(ctx, filepath.Join(s.bin, "stack"), "status", "--json")
	other.Dir, other.Env = s.dir, append(append([]string{}, s.env...), "PLATFORM_PORT=1")
	if out, err := other.Output(); err != nil || !strings.Contains(string(out), `"platform_url": "`+s.base+`"`) {
		t.Errorf("status with PLATFORM_PORT=1 in its environment: got %v\n%s\nwant platform_url %s, the running stack's", err, out, s.base)
	}
	// A bad setting (an edit since up) does not make status say the stack
	// is not running: status needs only the state dir, and warns. It did
	// (a review: "running": false, exit 1).
	bad := exec.CommandContext(ctx, filepath.Join(s.bin, "stack"), "status", "--json")
	var badErr bytes.Buffer
	bad.Dir, bad.Env, bad.Stderr = s.dir, append(append([]string{}, s.env...), "PLATFORM_PORT=80a"), &badErr
	if out, err := bad.Output(); err != nil || !strings.Contains(string(out), `"running": true`) ||
		!strings.Contains(string(out), `"platform_url": "`+s.base+`"`) || !strings.Contains(badErr.String(), "PLATFORM_PORT") {
		t.Errorf("status with PLATFORM_PORT=80a in its environment: got %v\n%s\n%s\nwant the running stack, and a warning naming PLATFORM_PORT", err, out, badErr.String())
	}
	for _, p := range before.Processes {
		if !p.Ready || p.Pid <= 0 {
			t.Errorf("after up --wait: got %+v, want ready with a pid", p)
		}
	}

	t.Run("health through the router", func(t *testing.T) {
		for _, path := range []string{"/auth/health", "/transaction/health", "/auth/live", "/transaction/live"} {
			r := s.do(nil, http.MethodGet, path, nil, nil)
			if r.status != http.StatusOK || r.body["status"] != "pass" {
				t.Errorf("GET %s: got %s, want 200 with status pass", path, r)
			}
			if r.header.Get("X-Request-ID") == "" {
				t.Errorf("GET %s: got no X-Request-ID header, want one", path)
			}
		}
	})

	var aliceToken, processedID string
	t.Run("token, transaction, processed", func(t *testing.T) {
		aliceToken = s.token("alice")
		amount := 100000 + rand.IntN(900000)
		r := s.do(nil, http.MethodPost, "/transaction/transaction",
			map[string]any{"token": aliceToken, "amount": strconv.Itoa(amount), "currency": "USD"}, nil)
		if r.status != http.StatusOK {
			t.Fatalf("POST /transaction/transaction: got %s, want 200", r)
		}
		for k, want := range map[string]any{"user_id": 1.0, "amount": float64(amount), "currency": "USD"} {
			if r.body[k] != want {
				t.Errorf("POST /transaction/transaction: got %s=%v, want %v", k, r.body[k], want)
			}
		}
		id, _ := r.body["id"].(string)
		if id == "" {
			t.Fatalf("POST /transaction/transaction: got %s, want an id", r)
		}

		var status string
		if !pollUntil(15*time.Second, func() bool {
			r := s.do(nil, http.MethodGet, "/transaction/transactions/"+id, nil, map[string]string{"Authorization": "Bearer " + aliceToken})
			if r.status != http.StatusOK {
				t.Fatalf("GET /transaction/transactions/%s: got %s, want 200", id, r)
			}
			status, _ = r.body["status"].(string)
			return status == "processed"
		}) {
			t.Fatalf("transaction %s: got status %q after 15s, want processed", id, status)
		}
		processedID = id
		line := fmt.Sprintf("==> Making transaction with PSP: User ID: 1, Amount: %d, Currency: USD", amount)
		if n := s.logCount("psp-connector", line, 1); n != 1 {
			t.Errorf("psp-connector log: got %d lines %q, want exactly 1", n, line)
		}
	})

	t.Run("contract errors through the router", func(t *testing.T) {
		if aliceToken == "" {
			aliceToken = s.token("alice")
		}
		charlieToken := s.token("charlie")
		tests := []struct {
			name   string
			path   string
			body   map[string]any
			status int
			err    string // "" means any non-empty error
		}{
			{"username missing", "/auth/token", map[string]any{"password": "password"}, 422, "Username is blank"},
			{"username empty", "/auth/token", map[string]any{"username": "", "password": "password"}, 422, "Username is blank"},
			{"password missing", "/auth/token", map[string]any{"username": "alice"}, 422, "Password is blank"},
			{"password empty", "/auth/token", map[string]any{"username": "alice", "password": ""}, 422, "Password is blank"},
			{"no such user", "/auth/token", map[string]any{"username": "nobody", "password": "password"}, 404, "User not found"},
			{"wrong password", "/auth/token", map[string]any{"username": "alice", "password": "wrong"}, 401, "Invalid password"},
			{"token missing", "/transaction/transaction", map[string]any{"amount": 100, "currency": "USD"}, 422, "Token is blank"},
			{"token empty", "/transaction/transaction", map[string]any{"token": "", "amount": 100, "currency": "USD"}, 422, "Token is blank"},
			{"amount missing", "/transaction/transaction", map[string]any{"token": aliceToken, "currency": "USD"}, 422, "Amount is blank"},
			{"amount zero", "/transaction/transaction", map[string]any{"token": aliceToken, "amount": 0, "currency": "USD"}, 422, "Amount is blank"},
			{"currency missing", "/transaction/transaction", map[string]any{"token": aliceToken, "amount": 100}, 422, "Currency is blank"},
			{"currency empty", "/transaction/transaction", map[string]any{"token": aliceToken, "amount": 100, "currency": ""}, 422, "Currency is blank"},
			{"currency lower case", "/transaction/transaction", map[string]any{"token": aliceToken, "amount": 100, "currency": "usd"}, 422, "Invalid currency code"},
			{"currency checked before token", "/transaction/transaction", map[string]any{"token": "garbage", "amount": 100, "currency": "US"}, 422, "Invalid currency code"},
			{"malformed token", "/transaction/transaction", map[string]any{"token": "garbage", "amount": 100, "currency": "USD"}, 422, ""},
			{"user not enabled", "/transaction/transaction", map[string]any{"token": charlieToken, "amount": 100, "currency": "USD"}, 403, "User not enabled for transactions"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := s.do(nil, http.MethodPost, tt.path, tt.body, nil)
				got, _ := r.body["error"].(string)
				if r.status != tt.status || got == "" || (tt.err != "" && got != tt.err) {
					t.Errorf("POST %s %v: got %s, want %d {\"error\": %q}", tt.path, tt.body, r, tt.status, tt.err)
				}
			})
		}
	})

	t.Run("unknown path", func(t *testing.T) {
		for _, path := range []string{"/", "/nope", "/auth", "/health"} {
			r := s.do(nil, http.MethodGet, path, nil, nil)
			if r.status != http.StatusNotFound || r.body["error"] == nil || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
				t.Errorf("GET %s: got %s (%s), want 404 JSON with an error", path, r, r.header.Get("Content-Type"))
			}
		}
	})

	t.Run("request id logged", func(t *testing.T) {
		r := s.do(nil, http.MethodGet, "/auth/health", nil, map[string]string{"X-Request-ID": "client-chosen"})
		id := r.header.Get("X-Request-ID")
		if id == "" || id == "client-chosen" {
			t.Fatalf("X-Request-ID: got %q, want one generated by the router", id)
		}
		if !pollUntil(5*time.Second, func() bool {
			return strings.Contains(s.logFile("haproxy"), `"request_id":"`+id+`"`)
		}) {
			t.Errorf("haproxy log: got no line with request_id %s", id)
		}
	})

	// One access-log line maps a request to the transaction it queued, at
	// the default log level (core-api's X-Transaction-ID, haproxy.cfg).
	t.Run("access log: request id and transaction id in one line", func(t *testing.T) {
		if aliceToken == "" {
			aliceToken = s.token("alice")
		}
		r := s.do(nil, http.MethodPost, "/transaction/transaction",
			map[string]any{"token": aliceToken, "amount": 100, "currency": "USD"}, nil)
		requestID, txID := r.header.Get("X-Request-ID"), r.header.Get("X-Transaction-ID")
		if r.status != http.StatusOK || requestID == "" || txID == "" || txID != r.body["id"] {
			t.Fatalf("POST /transaction/transaction: got %s, X-Request-ID %q, X-Transaction-ID %q; want 200 with both, the second the body's id", r, requestID, txID)
		}
		var logged map[string]any
		if !pollUntil(5*time.Second, func() bool {
			for _, line := range strings.Split(s.logFile("haproxy"), "\n") {
				if strings.Contains(line, `"request_id":"`+requestID+`"`) {
					return json.Unmarshal([]byte(line), &logged) == nil
				}
			}
			return false
		}) {
			t.Fatalf("haproxy log: got no JSON line with request_id %s", requestID)
		}
		if logged["transaction_id"] != txID || logged["path"] != "/transaction/transaction" {
			t.Errorf("haproxy log line of request %s: got transaction_id %v, path %v; want %s, /transaction/transaction", requestID, logged["transaction_id"], logged["path"], txID)
		}
	})

	// With every request logged (HAPROXY_ACCESS_LOG=all, the default),
	// haproxy.cfg runs HAProxy on one thread: with two, a line is dropped
	// when both write to the stdout pipe at once (haproxy.cfg says why).
	t.Run("access log: one HAProxy thread, no line dropped", func(t *testing.T) {
		var pid int
		for _, p := range before.Processes {
			if p.Name == "haproxy" {
				pid = p.Pid
			}
		}
		status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		if err != nil {
			t.Skipf("no /proc status for HAProxy (pid %d): %v", pid, err)
		}
		if !strings.Contains(string(status), "\nThreads:\t1\n") {
			t.Errorf("HAProxy (pid %d) with HAPROXY_ACCESS_LOG=all: want 1 thread, /proc says %s", pid,
				regexp.MustCompile(`Threads:\s*\d+`).FindString(string(status)))
		}
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://127.0.0.1:" + s.vars["HAPROXY_STATS_PORT"] + "/metrics")
		if err != nil {
			t.Fatalf("GET HAProxy's /metrics: %v", err)
		}
		metrics, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("read HAProxy's /metrics: %v", err)
		}
		if m := regexp.MustCompile(`(?m)^haproxy_process_dropped_logs_total (\S+)$`).FindSubmatch(metrics); m == nil {
			t.Logf("no dropped-logs metric (HAProxy without the Prometheus exporter?)")
		} else if string(m[1]) != "0" {
			t.Errorf("HAProxy dropped %s log lines", m[1])
		}

		// HAProxy's readiness (the launcher's probe) answers JSON too.
		resp, err = (&http.Client{Timeout: 5 * time.Second}).Get("http://127.0.0.1:" + s.vars["HAPROXY_STATS_PORT"] + "/healthz")
		if err != nil {
			t.Fatalf("GET HAProxy's /healthz: %v", err)
		}
		healthz, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" || !json.Valid(healthz) {
			t.Errorf("HAProxy's /healthz: got %d %q %q, want 200 and a JSON body", resp.StatusCode, resp.Header.Get("Content-Type"), healthz)
		}
	})

	t.Run("token rate limit", func(t *testing.T) {
		// A client address of its own (any 127/8 address is loopback on
		// Linux), so the other subtests' token requests do not count.
		client := s.client
		if ln, err := net.Listen("tcp", "127.0.0.2:0"); err == nil {
			ln.Close()
			dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}
			client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: dialer.DialContext}}
		}
		limit, _ := strconv.Atoi(s.vars["AUTH_RATE_LIMIT"])
		var ok int
		var limited response
		for i := 0; i < 2*limit+5; i++ {
			r := s.do(client, http.MethodPost, "/auth/token", map[string]string{"username": "alice", "password": "password"}, nil)
			if r.status == http.StatusTooManyRequests {
				limited = r
				break
			}
			if r.status != http.StatusOK {
				t.Fatalf("token request %d: got %s, want 200 or 429", i+1, r)
			}
			ok++
		}
		if limited.status != http.StatusTooManyRequests {
			t.Fatalf("after %d token requests: got no 429, want one", ok)
		}
		if client != s.client && ok != limit {
			t.Errorf("token requests before the 429: got %d, want AUTH_RATE_LIMIT=%d", ok, limit)
		}
		msg, _ := limited.body["error"].(string)
		if !strings.Contains(msg, s.vars["AUTH_RATE_LIMIT"]) || !strings.HasPrefix(limited.header.Get("Content-Type"), "application/json") {
			t.Errorf("429: got %s (%s), want JSON whose error names the limit", limited, limited.header.Get("Content-Type"))
		}
	})

	t.Run("log kept across a restart", func(t *testing.T) {
		var pid int
		for _, p := range s.status().Processes {
			if p.Name == "psp-connector" {
				pid = p.Pid
			}
		}
		readyLines := strings.Count(s.logFile("psp-connector"), `"msg":"ready"`)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill -9 psp-connector (pid %d): %v", pid, err)
		}
		var restarted processState
		if !pollUntil(20*time.Second, func() bool {
			for _, p := range s.status().Processes {
				if p.Name == "psp-connector" {
					restarted = p
				}
			}
			return restarted.Restarts > 0 && restarted.Ready && restarted.Pid != pid
		}) {
			t.Fatalf("after kill -9: got %+v, want psp-connector restarted, ready, with a new pid", restarted)
		}
		if got := s.logCount("psp-connector", `"msg":"ready"`, readyLines+1); got != readyLines+1 {
			t.Errorf("psp-connector log after a restart: got %d ready lines, want %d (the old run's lines kept)", got, readyLines+1)
		}
		stdout, _, err := s.run("logs", "psp-connector")
		if err != nil || !strings.Contains(stdout, "==> Making transaction with PSP") {
			t.Errorf("stack logs psp-connector after a restart: got %v and %d bytes without the earlier contract line", err, len(stdout))
		}
		if strings.HasPrefix(stdout, "\n") || strings.Contains(stdout, "\n\n") {
			t.Errorf("stack logs psp-connector after a restart: a blank line in %q (process-compose writes them into the file; logs leaves them out)", stdout)
		}
	})

	// A stop and start through process-compose's API or TUI keeps the
	// process's log: with log_configuration.rotation, process-compose
	// appends to it (without, it truncated it, up to v1.122 at least, and
	// the connector's log, CHARGE_LOG, is where its ledger lines are). The
	// connector's own copy (CHARGE_LEDGER) keeps them as well.
	t.Run("log and ledger kept across a stop and start through process-compose", func(t *testing.T) {
		if processedID == "" {
			t.Skip("no transaction was processed")
		}
		ledgerLine := `"transaction_ids":["` + processedID + `"`
		if !strings.Contains(s.logFile("psp-connector"), ledgerLine) {
			t.Fatalf("psp-connector log: no ledger line naming %s before the stop", processedID)
		}
		pc := newPCAPI(filepath.Join(s.vars["STACK_STATE_DIR"], "process-compose.sock"))
		if err := pc.stop("psp-connector"); err != nil {
			t.Fatalf("stop psp-connector through process-compose: %v", err)
		}
		// Stopped, its row shows no pid nor uptime: process-compose keeps
		// the last pid and an age that stood still. (Its restarts count
		// the kill -9 above.)
		var row []string // PROCESS STATUS READY PID RESTARTS UPTIME
		pollUntil(10*time.Second, func() bool {
			out, _, _ := s.run("status")
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(l, "psp-connector ") {
					row = strings.Fields(l)
				}
			}
			return len(row) == 6 && row[1] == "Completed"
		})
		if len(row) != 6 || row[1] != "Completed" || row[2] != "no" || row[3] != "-" || row[5] != "-" {
			t.Errorf("stack status after a stop through process-compose: row %q, want Completed, not ready, and - for the pid and the uptime", row)
		}
		if err := pc.start("psp-connector"); err != nil {
			t.Fatalf("start psp-connector through process-compose: %v", err)
		}
		if !pollUntil(20*time.Second, func() bool {
			return strings.Contains(s.logFile("psp-connector"), `"msg":"consuming"`)
		}) {
			t.Fatalf("psp-connector not consuming 20 s after its start:\n%s", s.logFile("psp-connector"))
		}
		if !strings.Contains(s.logFile("psp-connector"), ledgerLine) {
			t.Errorf("psp-connector log after a stop and start through process-compose: the ledger line naming %s is gone (the log truncated)", processedID)
		}
		b, err := os.ReadFile(filepath.Join(s.vars["STACK_STATE_DIR"], "ledger", "psp-connector.jsonl"))
		if err != nil {
			t.Fatalf("the connector's ledger copy: %v", err)
		}
		if !strings.Contains(string(b), ledgerLine) {
			t.Errorf("the connector's ledger copy has no line naming %s:\n%s", processedID, b)
		}
	})

	// A service that runs but answers nothing (here: stopped with SIGSTOP)
	// is stopped by the watchdog after RESTART_HUNG_AFTER (3 s here), with
	// SIGQUIT and SIGCONT, so that its log gets the Go runtime's goroutine
	// dump, and process-compose starts it again. Without the watchdog it
	// stayed stopped: process-compose restarts only processes that exit.
	// The stats port takes 16 connections, and any local user can hold
	// them: the watchdog asks HAProxy on a unix socket of its own in the
	// state dir instead, so that such a user cannot get a healthy HAProxy
	// taken for hung and killed (it was, checked on the stats port).
	t.Run("the stats port held full: HAProxy not taken for hung", func(t *testing.T) {
		pid := 0
		for _, p := range s.status().Processes {
			if p.Name == "haproxy" {
				pid = p.Pid
			}
		}
		var held []net.Conn
		for range 32 {
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+s.vars["HAPROXY_STATS_PORT"], time.Second)
			if err != nil {
				break
			}
			held = append(held, c)
		}
		// RESTART_HUNG_AFTER is 3 s here: held for twice that and more.
		time.Sleep(7 * time.Second)
		for _, c := range held {
			c.Close()
		}
		if len(held) <= 16 {
			t.Fatalf("held %d connections to the stats port, want more than its 16", len(held))
		}
		for _, p := range s.status().Processes {
			if p.Name == "haproxy" && (p.Pid != pid || p.Restarts > 0) {
				t.Errorf("HAProxy with its stats port full for 7 s: got %+v, want pid %d, never restarted", p, pid)
			}
		}
		if wd := s.logFile("watchdog"); strings.Contains(wd, `"process":"haproxy"`) {
			t.Errorf("watchdog log names haproxy while only its stats port was full:\n%s", wd)
		}
	})

	t.Run("a hung service is restarted by the watchdog", func(t *testing.T) {
		hung := processState{}
		for _, p := range s.status().Processes {
			if p.Name == "auth-api" {
				hung = p
			}
		}
		if err := syscall.Kill(hung.Pid, syscall.SIGSTOP); err != nil {
			t.Fatalf("SIGSTOP auth-api (pid %d): %v", hung.Pid, err)
		}
		var restarted processState
		var health response
		if !pollUntil(30*time.Second, func() bool {
			for _, p := range s.status().Processes {
				if p.Name == "auth-api" {
					restarted = p
				}
			}
			if !restarted.Ready || restarted.Pid == hung.Pid {
				return false
			}
			// HAProxy's health check brings the new auth-api in.
			health = s.do(nil, http.MethodGet, "/auth/health", nil, nil)
			return health.status == http.StatusOK && strings.Contains(s.logFile("watchdog"), `"msg":"restarted by process-compose"`)
		}) {
			_ = syscall.Kill(hung.Pid, syscall.SIGCONT)
			t.Fatalf("30 s after SIGSTOP: got %+v, GET /auth/health %s; want auth-api restarted, ready with a new pid, 200 through the router and the watchdog's line\nwatchdog log:\n%s",
				restarted, health, s.logFile("watchdog"))
		}
		if !pidGone(hung.Pid) {
			t.Errorf("the hung auth-api (pid %d) still runs beside its successor", hung.Pid)
		}
		wd := s.logFile("watchdog")
		for _, want := range []string{
			fmt.Sprintf(`"msg":"not answering","service":"watchdog","process":"auth-api","pid":%d`, hung.Pid),
			fmt.Sprintf(`"msg":"restarting a hung process","service":"watchdog","process":"auth-api","pid":%d`, hung.Pid),
			fmt.Sprintf(`"msg":"restarted by process-compose","service":"watchdog","process":"auth-api","hung_pid":%d,"pid":%d`, hung.Pid, restarted.Pid),
		} {
			if !strings.Contains(wd, want) {
				t.Errorf("watchdog log: no line with %s:\n%s", want, wd)
			}
		}
		// The Go runtime's answer to SIGQUIT: every goroutine's stack, in
		// the service's own log, before the new run's lines.
		if log := s.logFile("auth-api"); !strings.Contains(log, "SIGQUIT: quit") || !strings.Contains(log, "goroutine ") {
			t.Errorf("auth-api log: no goroutine dump from SIGQUIT:\n%s", log)
		}
	})

	t.Run("down leaves nothing behind, then reset deletes the state dir", func(t *testing.T) {
		rep := s.status()
		pids := map[string]int{"process-compose": rep.ProcessComposePid}
		for _, p := range rep.Processes {
			pids[p.Name] = p.Pid
		}
		if rep.ProcessComposePid <= 0 {
			t.Fatalf("status: got no process-compose pid")
		}
		// Record when each process exits, to check the order.
		gone := map[string]time.Time{}
		var mu sync.Mutex
		stop := make(chan struct{})
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			for {
				mu.Lock()
				now := time.Now() // one time per sweep: same-sweep exits tie
				for name, pid := range pids {
					if _, seen := gone[name]; !seen && pidGone(pid) {
						gone[name] = now
					}
				}
				mu.Unlock()
				select {
				case <-stop:
					return
				case <-time.After(time.Millisecond):
				}
			}
		}()
		stdout, stderr, err := s.run("down")
		close(stop)
		<-watched
		if err != nil {
			t.Fatalf("stack down: %v\n%s\n%s", err, stdout, stderr)
		}
		for name, pid := range pids {
			if !pidGone(pid) {
				t.Errorf("after down: %s (pid %d) is still running", name, pid)
			}
		}
		// The reverse of the dependency tree of process-compose.yaml: each
		// process exits no earlier than the one that depends on it: HAProxy
		// first, psp-connector after core-api, Redis after psp-connector.
		for _, pair := range []struct{ dependent, dependency string }{
			{"haproxy", "auth-api"},
			{"haproxy", "core-api"},
			{"core-api", "psp-connector"},
			{"psp-connector", "redis"},
			// The watchdog stops first: it must not take a process being
			// stopped for a hung one.
			{"watchdog", "haproxy"},
		} {
			if gone[pair.dependency].Before(gone[pair.dependent]) {
				t.Errorf("shutdown order: %s exited %s before %s, which depends on it", pair.dependency,
					gone[pair.dependent].Sub(gone[pair.dependency]), pair.dependent)
			}
		}
		for _, v := range []string{"PLATFORM_PORT", "HAPROXY_STATS_PORT", "AUTH_API_PORT", "CORE_API_PORT", "PSP_CONNECTOR_PORT"} {
			ln, err := net.Listen("tcp", "127.0.0.1:"+s.vars[v])
			if err != nil {
				t.Errorf("after down, %s %s: got %v, want it free", v, s.vars[v], err)
				continue
			}
			ln.Close()
		}
		if rep := s.status(); rep.Running {
			t.Errorf("status after down: got running, want not running")
		}
		// reset takes the state dir that up and down left (a state dir of
		// the launcher's own making, every entry known to reset).
		if stdout, stderr, err := s.run("reset", "--yes"); err != nil {
			t.Errorf("stack reset --yes after down: %v\n%s\n%s", err, stdout, stderr)
		}
		if _, err := os.Stat(s.vars["STACK_STATE_DIR"]); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after reset: state dir %s: got %v, want it gone", s.vars["STACK_STATE_DIR"], err)
		}
	})
}

// TestDownAfterProcessComposeKilled kills process-compose itself with
// SIGKILL, which orphans the stack's processes, and checks that `up` refuses
// to start a second stack over them, that `reset` refuses to delete their
// state dir, and that `down` finds and stops them.
func TestDownAfterProcessComposeKilled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := upReadyStack(t, ctx)
	rep := s.status()
	if err := syscall.Kill(rep.ProcessComposePid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 process-compose (pid %d): %v", rep.ProcessComposePid, err)
	}
	pollUntil(10*time.Second, func() bool { return pidGone(rep.ProcessComposePid) })

	if _, stderr, err := s.run("status"); err == nil || !strings.Contains(stderr, "process-compose is gone but processes of this stack still run") {
		t.Errorf("status over orphans: got %v %q, want an error naming the leftover processes", err, stderr)
	}
	_, stderr, err := s.run("up", "--detach", "--wait")
	if err == nil || !strings.Contains(stderr, "still running without process-compose") {
		t.Errorf("up over orphans: got %v %q, want a refusal naming the leftover processes", err, stderr)
	}
	// Nor may reset delete the state dir under them.
	if _, stderr, err := s.run("reset", "--yes"); err == nil || !strings.Contains(stderr, "still running") {
		t.Errorf("reset over orphans: got %v %q, want a refusal naming the leftover processes", err, stderr)
	}
	if _, err := os.Stat(s.vars["STACK_STATE_DIR"]); err != nil {
		t.Errorf("state dir after a refused reset: %v", err)
	}
	stdout, stderr, err := s.run("down")
	if err != nil {
		t.Fatalf("stack down: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "stopped leftover processes") {
		t.Errorf("down: got %q, want it to report the leftover processes it stopped", stdout)
	}
	for _, p := range rep.Processes {
		if !pidGone(p.Pid) {
			t.Errorf("after down: %s (pid %d) is still running", p.Name, p.Pid)
		}
	}
}

// TestDownStopsAStoppedProcessCompose: a process-compose stopped with
// SIGSTOP keeps its API socket bound and never answers. status and up say
// so, naming its pid, and down still stops it and every process of the
// stack, without waiting out its whole timeout.
func TestDownStopsAStoppedProcessCompose(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := upReadyStack(t, ctx)
	rep := s.status()
	pc := rep.ProcessComposePid
	stopProcess(t, pc)
	want := fmt.Sprintf("process-compose (pid %d)", pc)
	for _, args := range [][]string{{"status"}, {"up", "--detach", "--wait"}} {
		if _, stderr, err := s.run(args...); err == nil || !strings.Contains(stderr, want) || !strings.Contains(stderr, "does not answer") {
			t.Errorf("stack %s with process-compose stopped: got %v %q, want an error naming %s that does not answer", args[0], err, stderr, want)
		}
	}
	stdout, stderr, err := s.run("down", "--timeout", "60s")
	if err != nil {
		t.Fatalf("stack down: %v\n%s", err, stderr)
	}
	t.Logf("down: %s%s", stdout, stderr)
	checkAllGone(t, rep, "after down")
}

// TestDownWithoutPidFile checks that `down` stops every process, and
// process-compose itself, when the pid file is gone: it finds
// process-compose by its state dir instead. (It used to ask process-compose's
// API to stop; process-compose can outlive its processes by 5 s then, and
// `down` failed, reporting it as a survivor.)
func TestDownWithoutPidFile(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := upReadyStack(t, ctx)
	rep := s.status()
	if err := os.Remove(filepath.Join(s.vars["STACK_STATE_DIR"], "process-compose.pid")); err != nil {
		t.Fatalf("remove the pid file: %v", err)
	}
	if got := s.status().ProcessComposePid; got != rep.ProcessComposePid {
		t.Errorf("status without a pid file: process-compose pid %d, want %d (found in /proc)", got, rep.ProcessComposePid)
	}
	if _, stderr, err := s.run("down"); err != nil {
		t.Fatalf("stack down without a pid file: %v\n%s", err, stderr)
	}
	pids := map[string]int{"process-compose": rep.ProcessComposePid}
	for _, p := range rep.Processes {
		pids[p.Name] = p.Pid
	}
	for name, pid := range pids {
		if !pidGone(pid) {
			t.Errorf("after down: %s (pid %d) is still running", name, pid)
		}
	}
}

// TestForegroundUpStopsOnSIGINT runs `stack up --no-tui` in the foreground,
// in a process group of its own, so that only the launcher gets the SIGINT,
// as from `kill -INT` or an IDE's stop button (a terminal's Ctrl-C signals
// process-compose too), and checks that it stops the whole stack and that
// the launcher then exits 0.
func TestForegroundUpStopsOnSIGINT(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := newStack(t, ctx, requireTools(t), nil)
	up := startForegroundUp(t, ctx, s)
	up.waitForLine("Ctrl-C stops the stack")
	up.interruptAndCheckStopped(s.status())
}

// TestForegroundUpSaysWhyAServiceFailsAtStart: in the foreground, a service
// that fails at every start (a bad MAX_DELIVERIES in stack.local.env) gets
// the same report as `up --wait` gives, once, amid the logs; the stack keeps
// running until Ctrl-C.
func TestForegroundUpSaysWhyAServiceFailsAtStart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := newStack(t, ctx, requireTools(t), nil)
	local := filepath.Join(s.dir, stackconfig.LocalFileName)
	if err := os.WriteFile(local, []byte("MAX_DELIVERIES=0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	up := startForegroundUp(t, ctx, s)
	up.waitForLine("stack: the stack keeps running as it is; Ctrl-C stops it")
	report := strings.Join(up.seen(), "\n")
	for _, want := range []string{
		"stack: psp-connector exited and was restarted 3 times without becoming ready",
		"MAX_DELIVERIES must be at least 1, got 0",
		"MAX_DELIVERIES is set in " + local,
	} {
		if !strings.Contains(report, want) {
			t.Errorf("stack up --no-tui:\n%s\nwant it to contain %q", report, want)
		}
	}
	up.interruptAndCheckStopped(s.status())
}

// foregroundUp is `stack up --no-tui` running in a process group of its own,
// so that a SIGINT reaches the launcher alone, as from `kill -INT` or an
// IDE's stop button (a terminal's Ctrl-C signals process-compose too).
type foregroundUp struct {
	t      *testing.T
	cmd    *exec.Cmd
	mu     sync.Mutex
	lines  []string // its stderr so far
	line   chan string
	exited chan error
}

func startForegroundUp(t *testing.T, ctx context.Context, s *stackUnderTest) *foregroundUp {
	t.Helper()
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, "stack"), "up", "--no-tui")
	cmd.Dir, cmd.Env = s.dir, s.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout = io.Discard
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	up := &foregroundUp{t: t, cmd: cmd, line: make(chan string, 1024), exited: make(chan error, 1)}
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			up.mu.Lock()
			up.lines = append(up.lines, sc.Text())
			up.mu.Unlock()
			select {
			case up.line <- sc.Text():
			default: // nobody is waiting for lines now
			}
		}
	}()
	go func() { <-scanned; up.exited <- cmd.Wait() }()
	return up
}

func (up *foregroundUp) seen() []string {
	up.mu.Lock()
	defer up.mu.Unlock()
	return append([]string(nil), up.lines...)
}

// waitForLine waits up to 60 s for a stderr line containing want.
func (up *foregroundUp) waitForLine(want string) {
	up.t.Helper()
	for _, l := range up.seen() {
		if strings.Contains(l, want) {
			return
		}
	}
	timeout := time.After(60 * time.Second)
	for {
		select {
		case l := <-up.line:
			if strings.Contains(l, want) {
				return
			}
		case err := <-up.exited:
			up.t.Fatalf("stack up --no-tui exited before printing %q: %v\n%s", want, err, strings.Join(up.seen(), "\n"))
		case <-timeout:
			up.t.Fatalf("stack up --no-tui: no %q after 60 s\n%s", want, strings.Join(up.seen(), "\n"))
		}
	}
}

// interruptAndCheckStopped sends SIGINT to the launcher alone; it must stop
// the whole stack (every process of rep gone) and exit 0.
func (up *foregroundUp) interruptAndCheckStopped(rep statusReport) {
	up.t.Helper()
	if err := syscall.Kill(up.cmd.Process.Pid, syscall.SIGINT); err != nil {
		up.t.Fatal(err)
	}
	select {
	case err := <-up.exited:
		if err != nil {
			up.t.Errorf("stack up after SIGINT: %v, want exit status 0\n%s", err, strings.Join(up.seen(), "\n"))
		}
	case <-time.After(60 * time.Second):
		up.t.Fatalf("stack up --no-tui still running 60 s after SIGINT (to the launcher alone)")
	}
	if seen := strings.Join(up.seen(), "\n"); !strings.Contains(seen, "stack: stopped; none of the stack's processes is left running") {
		up.t.Errorf("stack up after SIGINT: no closing line saying nothing is left running in\n%s", seen)
	}
	checkAllGone(up.t, rep, "after SIGINT")
}

// TestForegroundUpTUIQuitsOnConfirmedCtrlC runs `stack up` on a terminal (a
// pty from util-linux's script(1)), where process-compose shows its TUI, as
// `nix run .#stack` does in a developer's shell. Once every process is
// ready it types Ctrl-C: the TUI asks "Are you sure you want to quit?" and
// the stack keeps running; Enter answers Yes, and then the whole stack must
// stop and the launcher exit 0. The TUI reads its settings from an empty
// PROC_COMP_CONFIG, so a developer's disable_exit_confirmation cannot change
// the test. It skips without script(1) or a pty, even under CI=true (a Nix
// build sandbox has neither); .ci/run checks that both are there.
func TestForegroundUpTUIQuitsOnConfirmedCtrlC(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("script(1)'s flags here are util-linux's")
	}
	pcDir := requireTools(t)
	script, err := exec.LookPath("script")
	if err != nil {
		t.Skip("script(1) (util-linux) is not on PATH; skipping the TUI test")
	}
	if out, err := exec.Command(script, "--quiet", "--return", "--command", "true", "/dev/null").CombinedOutput(); err != nil {
		t.Skipf("script(1) cannot open a pseudo-terminal here (%v: %s); skipping the TUI test", err, bytes.TrimSpace(out))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := newStack(t, ctx, pcDir, nil)
	// script(1) runs the command with $SHELL -c: single-quote the path.
	stack := "'" + strings.ReplaceAll(filepath.Join(s.bin, "stack"), "'", `'\''`) + "'"
	cmd := exec.CommandContext(ctx, script, "--quiet", "--return", "--command", stack+" up", "/dev/null")
	cmd.Dir = s.dir
	cmd.Env = append(append([]string(nil), s.env...), "TERM=xterm-256color", "PROC_COMP_CONFIG="+t.TempDir())
	keys, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	var screen tailBuffer
	cmd.Stdout, cmd.Stderr = &screen, &screen
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	gone := func() bool {
		select {
		case err := <-exited:
			exited <- err // for the next look
			return true
		default:
			return false
		}
	}

	// Ready, and the TUI drawn (so that its terminal is in raw mode and
	// Ctrl-C is a key for it, not a SIGINT for every process on the pty).
	var rep statusReport
	if !pollUntil(60*time.Second, func() bool {
		rep = s.status()
		return gone() || rep.Running && len(rep.Processes) == 6 && allReady(rep) && // redis, 3 services, haproxy, watchdog
			strings.Contains(screen.plainText(), "F1Shortcuts")
	}) || gone() {
		t.Fatalf("stack up on a terminal: not every process ready with the TUI drawn after 60 s (exited: %v)\n%s", gone(), screen.lastText())
	}
	if _, err := keys.Write([]byte{0x03}); err != nil { // Ctrl-C
		t.Fatal(err)
	}
	// The dialog is drawn over the process table, so its lines come out
	// between the table's rows: look for its first line.
	asked := pollUntil(10*time.Second, func() bool {
		return gone() || strings.Contains(screen.plainText(), "Areyousureyouwantto")
	})
	if gone() {
		t.Fatalf("stack up on a terminal exited on Ctrl-C without asking: %v\n%s", <-exited, screen.lastText())
	}
	if !asked {
		t.Fatalf("no \"Are you sure you want to quit?\" on the TUI 10 s after Ctrl-C; the screen's text:\n%s", screen.lastText())
	}
	if now := s.status(); !now.Running || !allReady(now) {
		t.Errorf("with the TUI asking whether to quit, the stack is not running and ready: %+v", now)
	}
	if _, err := keys.Write([]byte("\r")); err != nil { // Enter: Yes
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("stack up on a terminal after Ctrl-C and Yes: %v, want exit status 0\n%s", err, screen.lastText())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("stack up on a terminal still running 60 s after Ctrl-C and Yes\n%s", screen.lastText())
	}
	checkAllGone(t, rep, "after Ctrl-C and Yes")
}

func allReady(rep statusReport) bool {
	for _, p := range rep.Processes {
		if !p.Ready {
			return false
		}
	}
	return true
}

// pollUntil checks cond every 50 ms for up to d and says whether it came true.
func pollUntil(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); ; time.Sleep(50 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

// tailBuffer keeps the last 256 KiB written to it: a TUI redraws its screen
// many times a second.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const tailBufferSize = 256 << 10

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - tailBufferSize; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

// terminalControls matches what a TUI writes besides text: CSI and OSC
// sequences, charset selections, and the box-drawing characters and white
// space its layout puts between words.
var terminalControls = regexp.MustCompile(`\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|[\s\x00-\x1f\x{2500}-\x{257f}]`)

// lastText is the end of plainText, for a failure message.
func (b *tailBuffer) lastText() string {
	s := b.plainText()
	if len(s) > 2000 {
		s = "..." + s[len(s)-2000:]
	}
	return s
}

// plainText is the text written so far, without terminal controls or spaces
// (so "Are you sure" reads "Areyousure", however the TUI moved the cursor).
func (b *tailBuffer) plainText() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return terminalControls.ReplaceAllString(string(b.buf), "")
}
