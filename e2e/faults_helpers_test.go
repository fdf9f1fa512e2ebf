package e2e

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/acme-payments/platform/internal/txqueue"
)

// pcAPI drives process-compose over its unix socket: the calls the fault
// tests need beyond listing processes (stop, start, restart one process).
type pcAPI struct {
	http *http.Client
}

func newPCAPI(socket string) *pcAPI {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}
	return &pcAPI{http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// pcProcess is the part of process-compose's process state the tests read.
type pcProcess struct {
	Name      string `json:"name"`
	Status    string `json:"status"`
	IsReady   string `json:"is_ready"`
	Pid       int    `json:"pid"`
	Restarts  int    `json:"restarts"`
	ExitCode  int    `json:"exit_code"`
	IsRunning bool   `json:"is_running"`
}

func (p *pcAPI) call(method, path string, out any) error {
	req, err := http.NewRequest(method, "http://process-compose"+path, nil)
	if err != nil {
		return err
	}
	res, err := p.http.Do(req)
	if err != nil {
		return fmt.Errorf("process-compose %s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("process-compose %s %s: %s: %s", method, path, res.Status, body)
	}
	if out != nil {
		return json.Unmarshal(body, out)
	}
	return nil
}

// processes returns every process's state by name.
func (p *pcAPI) processes() (map[string]pcProcess, error) {
	var resp struct {
		Data []pcProcess `json:"data"`
	}
	if err := p.call(http.MethodGet, "/processes", &resp); err != nil {
		return nil, err
	}
	out := make(map[string]pcProcess, len(resp.Data))
	for _, d := range resp.Data {
		out[d.Name] = d
	}
	return out, nil
}

// stop stops process name through the API. process-compose (v1.64.1, and
// the same code later) answers "no such process" when the process exits
// between its stop signal and its kill timer (see cmd/stack/down.go); that
// answer counts as stopped once the API also says the process is not running.
func (p *pcAPI) stop(name string) error {
	err := p.call(http.MethodPatch, "/process/stop/"+name, nil)
	if err == nil || !strings.Contains(err.Error(), "no such process") {
		return err
	}
	procs, perr := p.processes()
	if perr != nil || procs[name].IsRunning {
		return err
	}
	return nil
}

func (p *pcAPI) start(name string) error { return p.call(http.MethodPost, "/process/start/"+name, nil) }

// restart restarts process name through the API. Its stop half meets the
// same "no such process" as stop (seen in CI's race run, 2026-12-07: haproxy
// exited at its stop signal, the kill timer fired 10 s later, and
// process-compose then did not start it again, so every later row ran
// against no router until the test binary's 10-minute limit); then, once
// the API says the process is not running, it is started here.
func (p *pcAPI) restart(name string) error {
	err := p.call(http.MethodPost, "/process/restart/"+name, nil)
	if err == nil || !strings.Contains(err.Error(), "no such process") {
		return err
	}
	procs, perr := p.processes()
	if perr != nil || procs[name].IsRunning {
		return err
	}
	return p.start(name)
}

// faultStack is what the fault, hostile and security tests use of a running
// stack: the router, the stack's own Redis (over its unix socket), its logs,
// its secret and process-compose's API.
type faultStack struct {
	addr     string // the router, host:port
	base     string // http://host:port
	stateDir string
	logDir   string
	secret   []byte
	// upOutput is what `stack up` printed (standard output, then error).
	upOutput string
	ports    map[string]int // variable (PLATFORM_PORT, ...) -> port
	rdb      *redis.Client
	pc       *pcAPI
	// down stops the stack through the launcher (`stack down`).
	down func(t *testing.T) error
}

// stackOptions are environment overrides for a fault test's stack.
type stackOptions struct {
	env map[string]string
}

// faultEnv is every fault test's base environment: reclaim abandoned
// entries after 3 s instead of 30 s, so a killed connector's batch comes
// back within the test's time, and charging rounds of connectorChargers.
// And no restart by the watchdog (it only logs): the suite's faults are its
// own. It freezes the connector (SIGSTOP) from 8,000 accepted to the end of
// the load: 7 s under -race with nothing else running (1,889 tx/s), so CI's
// `go test -race ./...`, with other packages beside it on 2 cores, needs
// only half that rate to reach the watchdog's 15 s; with 3 s, a watchdog
// restart of the frozen connector made the thaw (SIGCONT) fail with "no
// such process".
var faultEnv = map[string]string{
	"VISIBILITY_TIMEOUT": "3s",
	"CLAIM_INTERVAL":     "1s",
	"CHARGE_CONCURRENCY": strconv.Itoa(connectorChargers),
	"RESTART_HUNG_AFTER": "0",
}

// streamMark identifies how far the transaction stream has come: its last
// generated id and the count of entries ever added (Redis 7+). Unlike XLEN,
// neither goes down when the connector trims acknowledged entries, so an
// unchanged mark means nothing was queued.
type streamMark struct {
	lastID string
	added  int64
	length int64
}

func (m streamMark) String() string {
	return fmt.Sprintf("last id %s, %d entries added, length %d", m.lastID, m.added, m.length)
}

// mark reads the transaction stream's streamMark ("0-0" when it does not exist yet).
func (s *faultStack) mark(t *testing.T) streamMark {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := s.rdb.XInfoStream(ctx, txqueue.Stream).Result()
	if err != nil {
		if strings.Contains(err.Error(), "no such key") {
			return streamMark{lastID: "0-0"}
		}
		t.Fatalf("XINFO STREAM %s: %v", txqueue.Stream, err)
	}
	return streamMark{lastID: info.LastGeneratedID, added: info.EntriesAdded, length: info.Length}
}

// client is an HTTP client for the router with a hard per-request timeout.
func (s *faultStack) client(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			MaxIdleConnsPerHost: 256,
			DisableCompression:  true,
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// login gets a token for username (password "password") through the router.
func (s *faultStack) login(t *testing.T, username string) string {
	t.Helper()
	tok, err := s.tryLogin(s.client(5*time.Second), username)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (s *faultStack) tryLogin(c *http.Client, username string) (string, error) {
	body := fmt.Sprintf(`{"username":%q,"password":"password"}`, username)
	res, err := c.Post(s.base+"/auth/token", "application/json", strings.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("login %s: %w", username, err)
	}
	defer res.Body.Close()
	var out struct {
		Token string `json:"token"`
	}
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || json.Unmarshal(raw, &out) != nil || out.Token == "" {
		return "", fmt.Errorf("login %s: got %d %s", username, res.StatusCode, raw)
	}
	return out.Token, nil
}

// logPath is a process's log file in the state dir.
func (s *faultStack) logPath(process string) string {
	return filepath.Join(s.logDir, process+".log")
}

// readLog returns a process's whole log (every run since `stack up`).
func (s *faultStack) readLog(t *testing.T, process string) string {
	t.Helper()
	b, err := os.ReadFile(s.logPath(process))
	if err != nil {
		t.Fatalf("read %s's log: %v", process, err)
	}
	return string(b)
}

// defaultHangAfter is RESTART_HUNG_AFTER's default (stack.env): how long a
// silence gets a process restarted on a stack run as it ships.
const defaultHangAfter = 15 * time.Second

// watchdogSilences reads the watchdog's log: for each process, how long each
// silence it reported lasted ("not answering" until "answers again" or
// "replaced while not answering"; one not over by end counts until end),
// and the restarts it logged.
func watchdogSilences(t *testing.T, log string, end time.Time) (silences map[string][]time.Duration, restarts []string) {
	t.Helper()
	silences = map[string][]time.Duration{}
	open := map[string]time.Time{}
	for _, line := range strings.Split(log, "\n") {
		var ev struct {
			Msg, Process, Since string
			SilentFor           string `json:"silent_for"`
		}
		if line == "" || json.Unmarshal([]byte(line), &ev) != nil {
			continue
		}
		switch ev.Msg {
		case "not answering":
			since, err := time.Parse(time.RFC3339Nano, ev.Since)
			if err != nil {
				t.Fatalf("watchdog log: %q: %v", line, err)
			}
			open[ev.Process] = since
		case "answers again", "replaced while not answering":
			d, err := time.ParseDuration(ev.SilentFor)
			if err != nil {
				t.Fatalf("watchdog log: %q: %v", line, err)
			}
			silences[ev.Process] = append(silences[ev.Process], d)
			delete(open, ev.Process)
		case "restarting a hung process":
			restarts = append(restarts, line)
		}
	}
	for name, since := range open {
		silences[name] = append(silences[name], end.Sub(since))
	}
	return silences, restarts
}

// pidOf returns a running process's pid, failing when it is not running.
func (s *faultStack) pidOf(t *testing.T, name string) int {
	t.Helper()
	ps, err := s.pc.processes()
	if err != nil {
		t.Fatal(err)
	}
	p, ok := ps[name]
	if !ok || p.Pid <= 0 || !p.IsRunning {
		t.Fatalf("process %s is not running: %+v", name, p)
	}
	return p.Pid
}

// groupConsumersOnceOne waits, up to timeout, until the consumer group lists
// a single consumer, and returns the names it lists then (or at the
// timeout). The connector removes the consumers of its killed predecessors
// once their entries are reclaimed, at its next claim pass.
func (s *faultStack) groupConsumersOnceOne(t *testing.T, timeout time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ks, err := s.rdb.XInfoConsumers(context.Background(), txqueue.Stream, txqueue.Group).Result()
		if err != nil {
			t.Fatalf("XINFO CONSUMERS: %v", err)
		}
		names := make([]string, len(ks))
		for i, k := range ks {
			names[i] = k.Name
		}
		if len(names) <= 1 || time.Now().After(deadline) {
			return names
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// signal sends sig to a process of the stack, after checking that the pid
// is the process's own binary and not a shell around it, and that it is this
// stack's: go test runs packages side by side, and a pid process-compose
// reported a moment ago may by now be another test's redis-server.
func (s *faultStack) signal(t *testing.T, name string, sig syscall.Signal) int {
	t.Helper()
	pid := s.pidOf(t, name)
	comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	want := name
	if name == "redis" {
		want = "redis-server"
	}
	if got := strings.TrimSpace(string(comm)); got != "" && !strings.HasPrefix(want, got) && !strings.HasPrefix(got, want) {
		t.Fatalf("pid %d of %s runs %q, want %s", pid, name, got, want)
	}
	// Its working directory says so (process-compose starts every process
	// in the state dir, Redis in its redis/; Redis's environment cannot
	// tell, as it writes its process title over it).
	// Without /proc (macOS) the pid from process-compose is taken as it is.
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	state, serr := filepath.EvalSymlinks(s.stateDir)
	if runtime.GOOS == "linux" && (err != nil || serr != nil || (cwd != state && cwd != filepath.Join(state, "redis"))) {
		t.Fatalf("pid %d of %s is not this stack's (it works in %q, not in %s; %v %v): not signalled", pid, name, cwd, s.stateDir, err, serr)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatalf("kill -%d %s (pid %d): %v", int(sig), name, pid, err)
	}
	return pid
}

// waitRunning waits until name runs under a pid other than oldPid and is
// ready, and returns how long that took.
func (s *faultStack) waitRunning(t *testing.T, name string, oldPid int, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ps, err := s.pc.processes()
		if err == nil {
			if p := ps[name]; p.IsRunning && p.Pid > 0 && p.Pid != oldPid && (p.IsReady == "Ready" || p.IsReady == "-") {
				return time.Since(start)
			}
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s did not come back within %s (last state %+v, err %v)", name, timeout, ps[name], err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// health asks a service's /health directly (not through the router) and
// returns the status code and the body's "status".
func (s *faultStack) health(portVar string, timeout time.Duration) (int, string, error) {
	return getHealth(fmt.Sprintf("http://127.0.0.1:%d/health", s.ports[portVar]), timeout)
}

// getHealth GETs a /health URL and returns the status code and the body's
// "status" ("" when the body has none, as in the router's own 503).
func getHealth(url string, timeout time.Duration) (int, string, error) {
	c := &http.Client{Timeout: timeout}
	res, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	var body struct {
		Status string `json:"status"`
	}
	raw, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(raw, &body)
	return res.StatusCode, body.Status, nil
}

// ---- load ----

// loadOptions describe one load run: total transactions, each with a unique
// amount (firstAmount, firstAmount+1, ...) so the connector's contract line
// identifies it, sent by workers with an Idempotency-Key per transaction and
// retried until accepted, so a fault makes requests fail but never doubles one.
type loadOptions struct {
	total       int
	firstAmount int64
	workers     int
	// maxTries bounds the retries of one transaction.
	maxTries int
	// timeout bounds one request.
	timeout time.Duration
	// progress, when set, is called with the number of accepted transactions
	// after each acceptance (for triggering a fault mid-load).
	progress func(accepted int64)
	// url is where transactions are posted; default the router's
	// /transaction/transaction.
	url string
	// noKeepAlive opens a connection per request, so that every request a
	// server accepted is one it must answer (no idle connection races).
	noKeepAlive bool
	// tokens, when set, is shared with other loads (one login per user).
	tokens *tokenSource
}

// loadTx is one accepted transaction.
type loadTx struct {
	id       string
	user     int64
	amount   int64
	currency string
	replayed bool // the 200 was an idempotent replay of an earlier attempt
}

// loadResult is what a load run saw.
type loadResult struct {
	mu        sync.Mutex
	accepted  map[int64]loadTx // by amount
	statuses  map[int]int      // HTTP status -> count, every attempt
	transport map[string]int   // transport error kind -> count
	failed    []int64          // amounts never accepted
	slowest   map[int]time.Duration
	attempts  int64
	elapsed   time.Duration
	// errorSamples keeps a few non-200 bodies per status, to show what the
	// client saw.
	errorSamples map[int][]string
	// nonJSON counts error answers that were not JSON.
	nonJSON int
	// perSecond counts acceptances in each second of the load.
	perSecond []int
	// answerLost counts transactions whose attempt failed in transport but
	// whose retry was an idempotent replay: the server had queued it, and its
	// answer never reached the client.
	answerLost int
	// neverReached counts transport failures whose retry queued the
	// transaction afresh: the server never processed that attempt.
	neverReached int
	// maybeQueuedWas and maybeQueuedWasNot count transactions that got
	// core-api's 503 "may be queued" (Redis did not answer in time), by
	// whether the retry with the same key was a replay (it had been queued).
	maybeQueuedWas, maybeQueuedWasNot int
	// resentByClient counts attempts that Go's client sent a second time by
	// itself, on a new connection, because the kept-alive one it had used
	// closed without an answer (it does so for a request with an
	// Idempotency-Key). The router does that when the service closed its
	// own kept-alive connection under the request.
	resentByClient int
}

func (r *loadResult) summary() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	codes := make([]int, 0, len(r.statuses))
	for c := range r.statuses {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	var parts []string
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d×%d (slowest %s)", c, r.statuses[c], r.slowest[c].Round(time.Millisecond)))
	}
	for k, n := range r.transport {
		parts = append(parts, fmt.Sprintf("%s×%d", k, n))
	}
	rate := float64(len(r.accepted)) / r.elapsed.Seconds()
	return fmt.Sprintf("accepted %d in %s (%.0f tx/s), %d attempts: %s; after a broken connection: %d answers lost (retry replayed), %d never reached the server (retry queued afresh); after a 503 \"may be queued\": %d had been (retry replayed), %d not (retry queued afresh); %d resent by the client after a kept-alive connection closed without an answer; accepted per second %v",
		len(r.accepted), r.elapsed.Round(time.Millisecond), rate, r.attempts, strings.Join(parts, ", "), r.answerLost, r.neverReached, r.maybeQueuedWas, r.maybeQueuedWasNot, r.resentByClient, r.perSecond)
}

// tokenSource keeps one fresh token per user, logging in again through the
// router shortly before expiry. It never hammers the token route: after a
// 429 it waits for Retry-After, after another failure 200 ms, and meanwhile
// hands out the previous token while it is still valid.
type tokenSource struct {
	s      *faultStack
	c      *http.Client
	mu     sync.Mutex
	tokens map[string]tokenEntry
	logins int
}

type tokenEntry struct {
	raw  string
	at   time.Time
	next time.Time // no login attempt before this
}

func newTokenSource(s *faultStack) *tokenSource {
	return &tokenSource{s: s, c: s.client(5 * time.Second), tokens: map[string]tokenEntry{}}
}

func (ts *tokenSource) get(user string) (string, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	e := ts.tokens[user]
	now := time.Now()
	if e.raw != "" && now.Sub(e.at) < 20*time.Second || now.Before(e.next) {
		if e.raw != "" && now.Sub(e.at) < 28*time.Second {
			return e.raw, nil
		}
		return "", fmt.Errorf("no valid token for %s until %s", user, e.next.Format(time.TimeOnly))
	}
	ts.logins++
	raw, err := ts.s.tryLogin(ts.c, user)
	if err != nil {
		e.next = now.Add(200 * time.Millisecond)
		if strings.Contains(err.Error(), "got 429") {
			e.next = now.Add(10 * time.Second)
		}
		ts.tokens[user] = e
		if e.raw != "" && now.Sub(e.at) < 28*time.Second {
			return e.raw, nil
		}
		return "", err
	}
	ts.tokens[user] = tokenEntry{raw: raw, at: now}
	return raw, nil
}

var loadUsers = []struct {
	name string
	id   int64
}{{"alice", 1}, {"becky", 2}}

var loadCurrencies = []string{"USD", "EUR", "GBP", "JPY"}

// runLoad sends opts.total transactions through the router and returns what
// was accepted. It stops early, with what it has, when ctx ends.
func (s *faultStack) runLoad(ctx context.Context, t *testing.T, opts loadOptions) *loadResult {
	t.Helper()
	if opts.workers == 0 {
		opts.workers = 32
	}
	if opts.maxTries == 0 {
		opts.maxTries = 200
	}
	if opts.timeout == 0 {
		opts.timeout = 5 * time.Second
	}
	if opts.firstAmount == 0 {
		opts.firstAmount = 1
	}
	if opts.url == "" {
		opts.url = s.base + "/transaction/transaction"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	c := s.client(opts.timeout)
	c.Transport.(*http.Transport).DisableKeepAlives = opts.noKeepAlive
	defer c.CloseIdleConnections()
	ts := opts.tokens
	if ts == nil {
		ts = newTokenSource(s)
	}
	res := &loadResult{accepted: map[int64]loadTx{}, statuses: map[int]int{}, transport: map[string]int{},
		slowest: map[int]time.Duration{}, errorSamples: map[int][]string{}}
	var next, acceptedN atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range opts.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(opts.total) {
					return
				}
				amount := opts.firstAmount + i
				u := loadUsers[i%int64(len(loadUsers))]
				cur := loadCurrencies[i%int64(len(loadCurrencies))]
				tx, ok := s.sendOne(ctx, c, ts, res, u.name, amount, cur, opts)
				if !ok {
					res.mu.Lock()
					res.failed = append(res.failed, amount)
					res.mu.Unlock()
					continue
				}
				tx.user = u.id
				sec := int(time.Since(start) / time.Second)
				res.mu.Lock()
				res.accepted[amount] = tx
				for len(res.perSecond) <= sec {
					res.perSecond = append(res.perSecond, 0)
				}
				res.perSecond[sec]++
				res.mu.Unlock()
				n := acceptedN.Add(1)
				if opts.progress != nil {
					opts.progress(n)
				}
			}
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}

// countRetried counts a transaction accepted after an attempt whose outcome
// the client could not know (unknown): in was when the accepting retry was
// an idempotent replay (that attempt had queued it), else in wasNot.
func countRetried(unknown, replayed bool, was, wasNot *int) {
	switch {
	case !unknown:
	case replayed:
		*was++
	default:
		*wasNot++
	}
}

// sendOne posts one transaction, retrying with the same Idempotency-Key
// until it is accepted or maxTries is reached.
func (s *faultStack) sendOne(ctx context.Context, c *http.Client, ts *tokenSource, res *loadResult,
	user string, amount int64, cur string, opts loadOptions) (loadTx, bool) {
	key := fmt.Sprintf("fault-%d", amount)
	backoff := 20 * time.Millisecond
	transportFailed, maybeQueued := false, false
	for try := 0; try < opts.maxTries && ctx.Err() == nil; try++ {
		if try > 0 {
			time.Sleep(backoff)
			backoff = min(2*backoff, 500*time.Millisecond)
		}
		tok, err := ts.get(user)
		if err != nil {
			continue
		}
		body := fmt.Sprintf(`{"token":%q,"amount":%d,"currency":%q}`, tok, amount, cur)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, opts.url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		var conns atomic.Int32
		req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			GotConn: func(httptrace.GotConnInfo) { conns.Add(1) },
		}))
		began := time.Now()
		r, err := c.Do(req)
		took := time.Since(began)
		atomic.AddInt64(&res.attempts, 1)
		if n := int(conns.Load()); n > 1 {
			res.mu.Lock()
			res.resentByClient += n - 1
			res.mu.Unlock()
		}
		if err != nil {
			res.mu.Lock()
			res.transport[transportKind(err)]++
			res.mu.Unlock()
			transportFailed = transportFailed || !errors.Is(err, syscall.ECONNREFUSED)
			continue
		}
		raw, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		r.Body.Close()
		res.mu.Lock()
		res.statuses[r.StatusCode]++
		res.slowest[r.StatusCode] = max(res.slowest[r.StatusCode], took)
		if r.StatusCode != http.StatusOK {
			if len(res.errorSamples[r.StatusCode]) < 3 {
				res.errorSamples[r.StatusCode] = append(res.errorSamples[r.StatusCode], string(raw))
			}
			var e struct {
				Error string `json:"error"`
			}
			if json.Unmarshal(raw, &e) != nil || e.Error == "" || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
				res.nonJSON++
			}
			maybeQueued = maybeQueued || strings.Contains(e.Error, "the transaction may be queued")
		}
		res.mu.Unlock()
		if r.StatusCode != http.StatusOK {
			continue
		}
		var out struct {
			ID       string `json:"id"`
			Amount   int64  `json:"amount"`
			Currency string `json:"currency"`
		}
		if err := json.Unmarshal(raw, &out); err != nil || out.ID == "" || out.Amount != amount {
			res.mu.Lock()
			res.transport["bad 200 body"]++
			res.mu.Unlock()
			continue
		}
		replayed := r.Header.Get("Idempotent-Replayed") == "true"
		res.mu.Lock()
		countRetried(maybeQueued, replayed, &res.maybeQueuedWas, &res.maybeQueuedWasNot)
		countRetried(transportFailed, replayed, &res.answerLost, &res.neverReached)
		res.mu.Unlock()
		return loadTx{id: out.ID, amount: amount, currency: out.Currency, replayed: replayed}, true
	}
	return loadTx{}, false
}

func transportKind(err error) string {
	msg := err.Error()
	for _, k := range []string{"connection refused", "connection reset", "EOF", "Client.Timeout", "broken pipe"} {
		if strings.Contains(msg, k) {
			return k
		}
	}
	return "transport error"
}

// ---- verification ----

// contractLine matches the connector's contract line.
var contractLine = regexp.MustCompile(`^==> Making transaction with PSP: User ID: (\d+), Amount: (\d+), Currency: ([A-Z]{3})$`)

// connectorChargers is the fault stack's CHARGE_CONCURRENCY (faultEnv), the
// size of the connector's charging rounds. A round's lines and its ledger
// line go out in writes of at most PIPE_BUF (4,096 bytes; one write for a
// round of the default size), so a kill of the connector cannot cut a write
// in two: the connector that takes the round over finds what was written in
// the ledger lines and does not charge it again. (An outage of
// Redis repeats none either: the round's charges stay in hand until their
// record lands.) The connector's default, as the stack runs it.
const connectorChargers = txqueue.DefaultChargers

// rechargeMsg is the connector's warning when it charges a transaction again
// because an earlier charge was interrupted before it was recorded: the
// documented at-least-once case, and the only acceptable cause of a second
// contract line.
const rechargeMsg = "claimed before without a recorded charge; charging (at least once)"

// madeBeforeMsg is the connector's record of transactions an interrupted
// round had charged, found in its ledger lines (CHARGE_LOG) and recorded
// instead of charged again.
const madeBeforeMsg = "the PSP made these before their consumer stopped; recorded processed, not charged again"

// ledger is what the connector's log says it did, across restarts.
type ledger struct {
	lines     map[int64]int   // amount -> contract lines with it
	lineUser  map[int64]int64 // amount -> user id of the (last) line
	skipped   map[string]int  // transaction id -> "duplicate delivery skipped" records
	recharged map[string]int  // transaction id -> rechargeMsg records
	made      map[string]int  // transaction id -> madeBeforeMsg records naming it
	msgs      map[string]int  // log msg -> count (for the report)
	starts    int             // "consuming" records: one per (re)start
	other     []string        // lines neither JSON nor contract
}

// readLedger parses the connector's whole log.
func readLedger(t *testing.T, s *faultStack) ledger {
	t.Helper()
	f, err := os.Open(s.logPath("psp-connector"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l := ledger{lines: map[int64]int{}, lineUser: map[int64]int64{},
		skipped: map[string]int{}, recharged: map[string]int{}, made: map[string]int{}, msgs: map[string]int{}}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := contractLine.FindStringSubmatch(line); m != nil {
			amount, _ := strconv.ParseInt(m[2], 10, 64)
			user, _ := strconv.ParseInt(m[1], 10, 64)
			l.lines[amount]++
			l.lineUser[amount] = user
			continue
		}
		var rec struct {
			Msg   string   `json:"msg"`
			TxID  string   `json:"transaction_id"`
			TxIDs []string `json:"transaction_ids"`
		}
		if json.Unmarshal([]byte(line), &rec) != nil {
			if strings.Contains(line, "==>") || len(l.other) < 20 {
				l.other = append(l.other, line)
			}
			continue
		}
		l.msgs[rec.Msg]++
		switch rec.Msg {
		case "duplicate delivery skipped":
			l.skipped[rec.TxID]++
		case rechargeMsg:
			l.recharged[rec.TxID]++
		case madeBeforeMsg:
			for _, id := range rec.TxIDs {
				l.made[id]++
			}
		case "consuming":
			l.starts++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read connector log: %v", err)
	}
	return l
}

// outcome is one fault run's figures, as RELIABILITY.md reports them.
type outcome struct {
	acknowledged int // distinct transactions answered 200
	processed    int // of those, with status processed and exactly one contract line
	lost         int // acknowledged, but no contract line or status not processed
	duplicated   int // acknowledged, with more than one contract line
	recharged    int // of the duplicated, those the connector logged as re-charged after an interruption
	warned       int // acknowledged transactions the connector logged as re-charged (rechargeMsg), duplicated or not
	fromLedger   int // acknowledged transactions an interrupted round had charged, recorded from the ledger lines (madeBeforeMsg), not charged again
	strays       int // contract lines for amounts never acknowledged in this run
}

func (o outcome) String() string {
	return fmt.Sprintf("acknowledged %d, processed %d, lost %d, duplicated %d (%d logged as re-charged after an interrupted charge; %d re-charge warnings in all), %d found charged in the ledger lines and not charged again, stray lines %d",
		o.acknowledged, o.processed, o.lost, o.duplicated, o.recharged, o.warned, o.fromLedger, o.strays)
}

// verifyExactlyOnce waits until every accepted transaction's status is
// processed and the connector's log has had time to show every line, then
// checks each accepted transaction has exactly one contract line (by its
// unique amount). A second line fails the test, with or without the
// connector's at-least-once warning (rechargeMsg): in the stack, the ledger
// lines read back through CHARGE_LOG leave no case where the connector has
// to charge a transaction again.
func verifyExactlyOnce(t *testing.T, s *faultStack, res *loadResult, amounts [2]int64, timeout time.Duration) outcome {
	t.Helper()
	ids := make([]string, 0, len(res.accepted))
	byID := map[string]loadTx{}
	for _, tx := range res.accepted {
		ids = append(ids, tx.id)
		byID[tx.id] = tx
	}
	deadline := time.Now().Add(timeout)
	var notDone []string
	for {
		notDone = notDone[:0]
		statuses := s.statuses(t, ids)
		for i, id := range ids {
			if statuses[i] != txqueue.StatusProcessed {
				notDone = append(notDone, id+"="+statuses[i])
			}
		}
		if len(notDone) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	// The status is set right after a round's lines are written; give the
	// log file a moment to catch up.
	var l ledger
	for wait := time.Now().Add(5 * time.Second); ; {
		l = readLedger(t, s)
		missing := 0
		for amount := range res.accepted {
			if l.lines[amount] == 0 {
				missing++
			}
		}
		if missing == 0 || time.Now().After(wait) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	o := outcome{acknowledged: len(res.accepted)}
	var lostSample, dupSample []string
	for amount, tx := range res.accepted {
		if l.recharged[tx.id] > 0 {
			o.warned++
		}
		if l.made[tx.id] > 0 {
			o.fromLedger++
		}
		n := l.lines[amount]
		switch {
		case n == 1 && l.lineUser[amount] == tx.user:
			o.processed++
		case n == 0:
			o.lost++
			if len(lostSample) < 5 {
				lostSample = append(lostSample, fmt.Sprintf("%s (amount %d, %s, skipped as duplicate %d)",
					tx.id, amount, s.markedAt(tx.id), l.skipped[tx.id]))
			}
		case n > 1:
			o.duplicated++
			if l.recharged[tx.id] >= n-1 {
				o.recharged++
			}
			if len(dupSample) < 5 {
				dupSample = append(dupSample, fmt.Sprintf("%s (amount %d, %d lines, %d re-charges logged)", tx.id, amount, n, l.recharged[tx.id]))
			}
		default:
			o.lost++
		}
	}
	for amount := range l.lines {
		if amount >= amounts[0] && amount < amounts[1] {
			if _, ok := res.accepted[amount]; !ok {
				o.strays++
			}
		}
	}
	if len(notDone) > 0 {
		t.Errorf("%d accepted transactions not processed within %s, e.g. %v", len(notDone), timeout, notDone[:min(5, len(notDone))])
	}
	if o.lost > 0 {
		t.Errorf("%d accepted transactions have no contract line, e.g. %v", o.lost, lostSample)
	}
	if o.duplicated > 0 {
		t.Errorf("%d accepted transactions charged more than once (%d of them with the at-least-once warning), want none, e.g. %v",
			o.duplicated, o.recharged, dupSample)
	}
	if o.strays > 0 {
		t.Errorf("%d contract lines for amounts in [%d, %d) that were never acknowledged", o.strays, amounts[0], amounts[1])
	}
	if len(res.failed) > 0 {
		t.Errorf("%d transactions never accepted despite retries, e.g. amounts %v", len(res.failed), res.failed[:min(5, len(res.failed))])
	}
	t.Logf("connector log: %d starts, records %v", l.starts, l.msgs)
	return o
}

// markedAt says when the connector marked a transaction processed, from its
// status record, for diagnostics.
func (s *faultStack) markedAt(id string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	m, err := s.rdb.HGetAll(ctx, txqueue.StatusKey(id)).Result()
	if err != nil {
		return "status unreadable: " + err.Error()
	}
	ns, _ := strconv.ParseInt(m["processed_at"], 10, 64)
	return fmt.Sprintf("status %s, marked %s", m["status"], time.Unix(0, ns).Format("15:04:05.000000"))
}

// statuses reads the status field of each transaction's record, pipelined.
func (s *faultStack) statuses(t *testing.T, ids []string) []string {
	t.Helper()
	out := make([]string, len(ids))
	const batch = 1000
	for lo := 0; lo < len(ids); lo += batch {
		hi := min(lo+batch, len(ids))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.StringCmd, hi-lo)
		for i := lo; i < hi; i++ {
			cmds[i-lo] = pipe.HGet(ctx, txqueue.StatusKey(ids[i]), "status")
		}
		_, _ = pipe.Exec(ctx)
		cancel()
		for i, c := range cmds {
			v, err := c.Result()
			switch {
			case errors.Is(err, redis.Nil):
				out[lo+i] = "missing"
			case err != nil:
				out[lo+i] = "error: " + err.Error()
			default:
				out[lo+i] = v
			}
		}
	}
	return out
}

// ---- logs ----

// logIndex maps request ids to the log records that carry them, from every
// process's log; the router's lines for requests it could not parse are
// under badRequestKey.
type logIndex map[string][]map[string]any

// badRequestKey collects the router's <BADREQ> lines, which mostly have no
// request id.
const badRequestKey = "<BADREQ>"

// waitLogs reads every service's and the router's log into an index, after
// a short pause for process-compose to write the last lines. A line that
// names a request id but is not JSON (say, cut short) fails the test.
func (s *faultStack) waitLogs(t *testing.T) logIndex {
	t.Helper()
	time.Sleep(500 * time.Millisecond)
	idx := logIndex{}
	for _, p := range []string{"haproxy", "auth-api", "core-api"} {
		sc := bufio.NewScanner(strings.NewReader(s.readLog(t, p)))
		sc.Buffer(make([]byte, 1<<20), 4<<20)
		for sc.Scan() {
			line := sc.Bytes()
			if !bytes.Contains(line, []byte(`"request_id"`)) {
				continue
			}
			var rec map[string]any
			if err := json.Unmarshal(line, &rec); err != nil {
				t.Errorf("%s's log has a line that is not JSON (%v): %.200s...", p, err, line)
				continue
			}
			id, _ := rec["request_id"].(string)
			if p == "haproxy" {
				rec["service"] = "haproxy"
				if rec["method"] == "<BADREQ>" {
					// Counted as unparsable; filed under its request id
					// too when it has one (2.6 gives one to the HTTP/2
					// preface it refuses, and answers it with that id).
					idx[badRequestKey] = append(idx[badRequestKey], rec)
					if id == "" || id == "-" {
						continue
					}
				}
			}
			idx[id] = append(idx[id], rec)
		}
	}
	return idx
}

// logReason returns why the logs say a hostile request was refused: the
// service's reason or error when a service answered, or the router's line
// (status, termination state, server, path) when HAProxy answered itself, the
// service had no route for it, or the service's HTTP server refused it as
// malformed (400) before any handler. "" means no log line explains it.
func logReason(idx logIndex, r hostileResult) string {
	if r.requestID == "" {
		return ""
	}
	var router string
	routerOnly := false
	serviceSaw := false
	for _, rec := range idx[r.requestID] {
		if rec["service"] != "haproxy" {
			serviceSaw = true
			for _, k := range []string{"reason", "error"} {
				if v, _ := rec[k].(string); v != "" {
					return fmt.Sprintf("%v: %v: %s", rec["service"], rec["msg"], v)
				}
			}
			continue
		}
		status, _ := rec["status"].(float64)
		if int(status) != r.res.status {
			continue
		}
		router = fmt.Sprintf("haproxy: status %d, termination %v, server %v, path %v", int(status), rec["termination"], rec["server"], rec["path"])
		server, _ := rec["server"].(string)
		routerOnly = server == "" || server == "<NOSRV>" || routeMiss(r.res)
	}
	// A 400 or 417 from a service that logged nothing under the id: Go's
	// HTTP server refused the request (malformed, or an Expect other than
	// 100-continue) before any handler ran, and the router's line (that
	// status, that server, the path) is the record. Only with the router's
	// JSON for those (haproxy.cfg's http-response rules) or the service's
	// unlogged "Invalid path": a handler's own 400 (a bad Idempotency-Key)
	// must be logged like any refusal.
	if router != "" && !serviceSaw && unloggedRefusal(r.res) {
		routerOnly = true
	}
	if routerOnly {
		return router
	}
	return ""
}

// routeMiss reports whether res is a service's answer to a path or method it
// has no route for (httpx.Routes: 404 "Not found", 405 "Method not
// allowed"), which no handler logs. A handler's own 404 ("User not found",
// "Transaction not found") is a refusal like any other and must be logged
// under the request id: before 2026-12-05 any 404 passed on the router's line.
func routeMiss(res rawResponse) bool {
	var body struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(res.body, &body) != nil {
		return false
	}
	return res.status == http.StatusNotFound && body.Error == "Not found" ||
		res.status == http.StatusMethodNotAllowed && body.Error == "Method not allowed"
}

// unloggedRefusal reports whether res is a 400 or 417 that no handler
// answered, so no service logs it: the router's JSON for Go's HTTP server's
// own 400 and 417 (haproxy.cfg), or httpx.Routes's "Invalid path".
func unloggedRefusal(res rawResponse) bool {
	var body struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(res.body, &body) != nil {
		return false
	}
	switch res.status {
	case http.StatusBadRequest:
		return body.Error == "Bad request" || body.Error == "Invalid path"
	case http.StatusExpectationFailed:
		return strings.HasPrefix(body.Error, "Expectation failed")
	}
	return false
}

// ---- starting a stack ----

// startFaultStack starts the real stack through the launcher (`stack up
// --detach --wait`, using the whole-stack harness's newStack: free ports, a
// fresh state dir, binaries built from this checkout) with faultEnv and
// opts.env, and stops it with `stack down` when the test ends.
func startFaultStack(t *testing.T, opts stackOptions) *faultStack {
	t.Helper()
	pcDir := requireTools(t)
	if testing.Short() {
		t.Skip("whole-stack fault tests are skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	t.Cleanup(cancel)
	extra := map[string]string{"LOG_LEVEL": "info"}
	for k, v := range faultEnv {
		extra[k] = v
	}
	for k, v := range opts.env {
		extra[k] = v
	}
	su := newStack(t, ctx, pcDir, extra)
	stateDir := su.vars["STACK_STATE_DIR"]
	ports := map[string]int{}
	for _, k := range []string{"PLATFORM_PORT", "HAPROXY_STATS_PORT", "AUTH_API_PORT", "CORE_API_PORT", "PSP_CONNECTOR_PORT"} {
		ports[k], _ = strconv.Atoi(su.vars[k])
	}
	s := &faultStack{
		addr:     net.JoinHostPort(cmp.Or(su.vars["PLATFORM_HOST"], "127.0.0.1"), su.vars["PLATFORM_PORT"]),
		stateDir: stateDir,
		logDir:   filepath.Join(stateDir, "logs"),
		ports:    ports,
		pc:       newPCAPI(filepath.Join(stateDir, "process-compose.sock")),
	}
	s.base = "http://" + s.addr
	t.Cleanup(func() {
		// The harness deletes the state dir; keep the logs of a failed test.
		if t.Failed() {
			if keep, err := os.MkdirTemp("", "e2e-faults-logs-"); err == nil {
				if err := os.CopyFS(keep, os.DirFS(s.logDir)); err == nil {
					t.Logf("logs kept in %s", keep)
				}
			}
		}
	})
	var downOnce sync.Once
	var downErr error
	s.down = func(t *testing.T) error {
		t.Helper()
		downOnce.Do(func() {
			out, errOut, err := su.run("down", "--timeout", "60s")
			t.Logf("stack down: %s", strings.TrimSpace(out+errOut))
			downErr = err
		})
		return downErr
	}
	out, errOut, err := su.run("up", "--detach", "--wait", "--timeout", "60s")
	t.Cleanup(func() {
		if err := s.down(t); err != nil {
			t.Errorf("stack down: %v", err)
		}
	})
	if err != nil {
		t.Fatalf("stack up: %v\n%s%s", err, out, errOut)
	}
	t.Logf("stack up: %s", lastLine(errOut))
	s.upOutput = out + errOut

	secret, err := os.ReadFile(filepath.Join(stateDir, "secrets", "jwt_secret"))
	if err != nil {
		t.Fatalf("read the generated JWT secret: %v", err)
	}
	s.secret = bytes.TrimSpace(secret)
	s.rdb = redis.NewClient(&redis.Options{Network: "unix", Addr: filepath.Join(stateDir, "redis", "redis.sock"),
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, MaxRetries: -1})
	t.Cleanup(func() { s.rdb.Close() })
	return s
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
