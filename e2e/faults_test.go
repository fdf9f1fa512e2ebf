package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/acme-payments/platform/internal/txqueue"
)

// faultLoad is the size of the kill -9 loads (the 20,000).
const faultLoad = 20_000

// connectorKills are the accepted counts at which the connector is killed
// during the load, each once the previous one was restarted; at
// connectorPause it is frozen (SIGSTOP), so that a backlog builds for
// drainKills.
var connectorKills = []int64{2_000, 5_000}

const connectorPause = 8_000

// drainKills bounds the kills after the load, while the connector drains the
// backlog: with the writers gone, Redis answers fast and batches are full, so
// the connector spends most of its time charging and recording, where a kill
// matters. Each comes a random 20-120 ms after the restarted connector is
// ready: it drains over 10,000 a second alone, so later kills would find the
// backlog gone.
const drainKills = 8

// TestFaults runs the fault scenarios in order on one stack, as an operator
// would meet them in one bad day: the connector and Redis killed mid-load,
// a backend stopped and started, the router restarted and killed, SIGTERM
// to each service under load, and to the connector while Redis holds
// writes, and finally `stack down`. Every scenario
// checks that each acknowledged transaction was processed exactly once.
// The figures it logs are RELIABILITY.md's table.
func TestFaults(t *testing.T) {
	st := startFaultStack(t, stackOptions{})
	tokens := newTokenSource(st)

	t.Run("kill -9 psp-connector mid-load", func(t *testing.T) {
		first := int64(1)
		var kills []string
		var mu sync.Mutex
		lastPid := 0 // the previous kill's, so waitRunning waits for its successor
		marks := append(append([]int64{}, connectorKills...), connectorPause)
		fault := atAccepted(marks, func(n int64) {
			st.waitRunning(t, "psp-connector", lastPid, 10*time.Second)
			if n >= connectorPause {
				// Frozen, not stopped: until D81 (RELIABILITY.md) a stop and
				// start through process-compose truncated the connector's log
				// file, and the row counts its contract lines there.
				pid := st.signal(t, "psp-connector", syscall.SIGSTOP)
				mu.Lock()
				lastPid = pid
				kills = append(kills, fmt.Sprintf("SIGSTOP pid %d at %d accepted (backlog %d)", pid, n, st.backlog(t)))
				mu.Unlock()
				return
			}
			pid := st.signal(t, "psp-connector", syscall.SIGKILL)
			mu.Lock()
			lastPid = pid
			kills = append(kills, fmt.Sprintf("kill -9 pid %d at %d accepted, %s (backlog %d)", pid, n, time.Now().Format("15:04:05.000000"), st.backlog(t)))
			mu.Unlock()
		})
		res := st.runLoad(context.Background(), t, loadOptions{
			total: faultLoad, firstAmount: first, tokens: tokens, progress: fault.progress,
		})
		fault.wait(t, len(res.accepted))
		t.Logf("load: %s", res.summary())
		mu.Lock()
		if err := syscall.Kill(lastPid, syscall.SIGCONT); err != nil {
			t.Fatalf("SIGCONT psp-connector pid %d: %v", lastPid, err)
		}
		kills = append(kills, fmt.Sprintf("SIGCONT after the load (backlog %d)", st.backlog(t)))
		drained := 0
		for i := range drainKills {
			if i > 0 {
				st.waitRunning(t, "psp-connector", lastPid, 10*time.Second)
			}
			time.Sleep(time.Duration(20+rand.IntN(100)) * time.Millisecond)
			if b := st.backlog(t); b < 500 {
				break
			}
			pid := st.signal(t, "psp-connector", syscall.SIGKILL)
			lastPid = pid
			drained++
			kills = append(kills, fmt.Sprintf("kill -9 pid %d at %s while draining (backlog %d)", pid, time.Now().Format("15:04:05.000000"), st.backlog(t)))
		}
		mu.Unlock()
		t.Logf("kills: %s", strings.Join(kills, "; "))
		st.waitRunning(t, "psp-connector", lastPid, 30*time.Second)
		// No duplicate is allowed: a kill between a round's lines and its
		// record leaves the round's ledger line in the log (CHARGE_LOG),
		// and the connector that takes the round over records it instead of
		// charging it again (psp-connector's README).
		o := verifyExactlyOnce(t, st, res, [2]int64{first, first + faultLoad}, 90*time.Second)
		// Each start joined the group under a name of its own; the killed
		// ones, their entries reclaimed, are removed (RELIABILITY.md, D79).
		consumers := st.groupConsumersOnceOne(t, 10*time.Second)
		if want := "-" + strconv.Itoa(st.pidOf(t, "psp-connector")); len(consumers) != 1 || !strings.HasSuffix(consumers[0], want) {
			t.Errorf("consumers in the group after the kills: got %q, want only the running connector's (…%s)", consumers, want)
		}
		t.Logf("RESULT kill -9 psp-connector ×%d (%d during the load, %d while draining) | %d tx, 32 workers | %s | consumers in the group after: %d of %d connectors started",
			len(connectorKills)+drained, len(connectorKills), drained, faultLoad, o, len(consumers), len(connectorKills)+drained+1)
		if drained < 3 {
			t.Errorf("only %d kills while draining, want at least 3: the backlog drained too fast to test", drained)
		}
	})

	t.Run("kill -9 redis-server mid-load", func(t *testing.T) {
		first := int64(100_001)
		var killedAt time.Time
		killedPid := 0
		probes := make(chan outageReport, 1)
		kill := atAccepted([]int64{faultLoad / 3}, func(n int64) {
			pid := st.signal(t, "redis", syscall.SIGKILL)
			killedAt, killedPid = time.Now(), pid
			t.Logf("killed redis-server pid %d at %d accepted", pid, n)
			go func() { probes <- st.probeOutage(tokens, killedAt, 30*time.Second) }()
		})
		res := st.runLoad(context.Background(), t, loadOptions{
			total: faultLoad, firstAmount: first, tokens: tokens, progress: kill.progress,
		})
		kill.wait(t, len(res.accepted))
		t.Logf("load: %s", res.summary())
		p := <-probes
		t.Logf("outage: %s", p)
		for code, samples := range res.errorSamples {
			t.Logf("client saw %d, e.g. %s", code, strings.Join(samples, " | "))
		}
		if res.nonJSON > 0 {
			t.Errorf("%d error answers during the outage were not JSON", res.nonJSON)
		}
		if p.coreHealthFail == 0 {
			t.Errorf("core-api /health never reported fail while Redis was down")
		}
		// core-api answers while Redis is down, so the router must keep
		// passing its answers on, not take it for down.
		if p.routerFail == 0 || p.routerOwn503 > 0 {
			t.Errorf("GET /transaction/health through the router while Redis was down: core-api's 503 fail ×%d, the router's own 503 ×%d; want only core-api's", p.routerFail, p.routerOwn503)
		}
		if p.slowest > 2*time.Second {
			t.Errorf("slowest core-api answer while Redis was down took %s, want under 2s", p.slowest)
		}
		if p.recovered == 0 {
			t.Errorf("core-api /health did not pass again within 30s of the kill")
		}
		st.waitRunning(t, "redis", killedPid, 30*time.Second)
		// A charge whose record fails stays in hand until Redis is back, so
		// a Redis outage repeats no charge at all.
		o := verifyExactlyOnce(t, st, res, [2]int64{first, first + faultLoad}, 90*time.Second)
		t.Logf("RESULT kill -9 redis-server | %d tx, 32 workers | %s | outage: %s", faultLoad, o, p)
	})

	t.Run("auth-api stopped and started", func(t *testing.T) {
		tok := st.login(t, "alice")
		// Whatever happens below, the later subtests need auth-api back.
		restarted := false
		t.Cleanup(func() {
			if !restarted {
				if err := st.pc.start("auth-api"); err != nil {
					t.Logf("start auth-api again after a failure: %v", err)
				}
			}
		})
		stopped := time.Now()
		if err := st.pc.stop("auth-api"); err != nil {
			t.Fatal(err)
		}
		// Poll GET /auth/health, which reaches auth-api like /auth/token does
		// but is not rate-limited (polling the token route would soon get 429s).
		down := st.pollRoute(t, "/auth/health", http.StatusServiceUnavailable, 10*time.Second)
		t.Logf("auth-api stopped: %s", down)
		if down.first == 0 {
			t.Fatalf("no JSON 503 within 10s of stopping auth-api")
		}
		// HAProxy checks every 1 s and needs 2 failures; a request before that
		// costs at most its connect retries. Either way, well under 3 s.
		if down.first > 3*time.Second {
			t.Errorf("first JSON 503 after %s, want within the check interval (3s)", down.first)
		}
		// The other route is unaffected.
		c := st.client(5 * time.Second)
		r, err := c.Post(st.base+"/transaction/transaction", "application/json",
			strings.NewReader(fmt.Sprintf(`{"token":%q,"amount":7,"currency":"USD"}`, tok)))
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != http.StatusOK {
			t.Errorf("transaction while auth-api is down: got %d, want 200", r.StatusCode)
		}
		started := time.Now()
		if err := st.pc.start("auth-api"); err != nil {
			t.Fatal(err)
		}
		restarted = true
		up := st.pollRoute(t, "/auth/health", http.StatusOK, 15*time.Second)
		t.Logf("auth-api started: %s", up)
		if up.first == 0 {
			t.Fatalf("the token route did not answer 200 within 15s of starting auth-api")
		}
		if !down.onlyWanted {
			t.Errorf("after the first JSON 503, the router answered %v while auth-api was down, want only JSON 503", down.statuses)
		}
		t.Logf("RESULT auth-api stopped and started | GET /auth/health every 50 ms | first JSON 503 %s after the stop, then only JSON 503: %v (%v) | 200 again %s after the start | %s stop to 200",
			down.first.Round(time.Millisecond), down.onlyWanted, down.statuses, up.first.Round(time.Millisecond),
			(started.Sub(stopped) + up.first).Round(time.Millisecond))
	})

	t.Run("router restart and kill -9 under load", func(t *testing.T) {
		first := int64(200_001)
		const n = 6000
		var events []string
		var mu sync.Mutex
		killedPid := 0
		began := time.Now()
		fault := atAccepted([]int64{n / 3, n * 2 / 3}, func(k int64) {
			mu.Lock()
			defer mu.Unlock()
			if len(events) == 0 {
				pid := st.pidOf(t, "haproxy")
				at := time.Since(began)
				if err := st.pc.restart("haproxy"); err != nil {
					t.Errorf("restart haproxy: %v", err)
				}
				events = append(events, fmt.Sprintf("restart through process-compose (pid %d) at %d accepted, %s into the load; the API call took %s",
					pid, k, at.Round(time.Millisecond), (time.Since(began)-at).Round(time.Millisecond)))
				return
			}
			pid := st.signal(t, "haproxy", syscall.SIGKILL)
			killedPid = pid
			events = append(events, fmt.Sprintf("kill -9 (pid %d) at %d accepted, %s into the load", pid, k, time.Since(began).Round(time.Millisecond)))
		})
		res := st.runLoad(context.Background(), t, loadOptions{total: n, firstAmount: first, tokens: tokens, progress: fault.progress})
		fault.wait(t, len(res.accepted))
		t.Logf("load: %s", res.summary())
		t.Logf("router events: %s", strings.Join(events, "; "))
		st.waitRunning(t, "haproxy", killedPid, 30*time.Second)
		o := verifyExactlyOnce(t, st, res, [2]int64{first, first + n}, 60*time.Second)
		replays := 0
		for _, tx := range res.accepted {
			if tx.replayed {
				replays++
			}
		}
		// A replay means an earlier attempt was queued but its answer lost with
		// the router: after a broken connection the test saw, or one that Go's
		// client retried by itself (it retries requests with an Idempotency-Key).
		t.Logf("RESULT router restart + kill -9 | %d tx, 32 workers | %s | %d acknowledged by an idempotent replay (%d after a broken connection, %d after a transparent client retry)",
			n, o, replays, res.answerLost, replays-res.answerLost)
	})

	t.Run("router restarted while Redis is down", func(t *testing.T) {
		// process-compose never starts again a process restarted while one it
		// depends on is not ready; core-api stays ready while Redis is down
		// (it answers, with 503), so the router comes back, /auth with it.
		redisStopped := false
		t.Cleanup(func() {
			if redisStopped {
				if err := st.pc.start("redis"); err != nil {
					t.Logf("start redis again after a failure: %v", err)
				}
			}
		})
		if err := st.pc.stop("redis"); err != nil {
			t.Fatal(err)
		}
		redisStopped = true
		// Until process-compose's probes have seen the outage: psp-connector
		// (200 only) not ready, then one more probe period for core-api's
		// probe to have run too.
		deadline := time.Now().Add(3 * composeProbePeriod)
		for {
			procs, err := st.pc.processes()
			if err == nil && procs["psp-connector"].IsReady == "Not Ready" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("psp-connector still ready %s after Redis stopped (%v)", 3*composeProbePeriod, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(composeProbePeriod + 500*time.Millisecond)
		if code, status, err := st.health("CORE_API_PORT", 5*time.Second); err != nil || code != http.StatusServiceUnavailable || status != "fail" {
			t.Fatalf("core-api /health with Redis stopped: got %d %q %v, want 503 fail", code, status, err)
		}
		procs, err := st.pc.processes()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("before the restart, process-compose says core-api is %q, psp-connector %q", procs["core-api"].IsReady, procs["psp-connector"].IsReady)
		if err := st.pc.restart("haproxy"); err != nil {
			t.Fatal(err)
		}
		auth := st.pollRoute(t, "/auth/health", http.StatusOK, 15*time.Second)
		if auth.first == 0 {
			t.Fatalf("after restarting haproxy with Redis down, /auth/health never answered 200 (%s)", auth)
		}
		code, status, err := getHealth(st.base+"/transaction/health", 5*time.Second)
		if err != nil || code != http.StatusServiceUnavailable || status != "fail" {
			t.Errorf("/transaction/health through the router with Redis down: got %d %q %v, want core-api's 503 fail", code, status, err)
		}
		if err := st.pc.start("redis"); err != nil {
			t.Fatal(err)
		}
		redisStopped = false
		tx := st.pollRoute(t, "/transaction/health", http.StatusOK, 30*time.Second)
		if tx.first == 0 {
			t.Fatalf("/transaction/health did not answer 200 within 30s of starting Redis (%s)", tx)
		}
		t.Logf("RESULT router restarted while Redis is down | Redis stopped, haproxy restarted through process-compose | /auth/health 200 again %s after the restart; /transaction/health core-api's 503 fail; 200 again %s after Redis started",
			auth.first.Round(time.Millisecond), tx.first.Round(time.Millisecond))
	})

	t.Run("SIGTERM under load", func(t *testing.T) {
		for i, svc := range []string{"core-api", "psp-connector", "auth-api"} {
			t.Run(svc, func(t *testing.T) {
				st.sigtermUnderLoad(t, tokens, svc, int64(300_001+i*100_000))
			})
		}
	})

	t.Run("SIGTERM psp-connector while Redis holds writes", func(t *testing.T) {
		st.sigtermConnectorWhileRedisHoldsWrites(t, tokens, 600_001)
	})

	// The suite runs with RESTART_HUNG_AFTER=0 (faultEnv), but the watchdog
	// still judges: every silence it saw, under all of the above, must be
	// one that the default 15 s would not have restarted, but for the
	// connector the suite froze on purpose. The router's row with Redis
	// down checks the watchdog's targets too: core-api's /health is a 503
	// for its whole length, its /live a 200.
	t.Run("the watchdog would have restarted only the frozen connector", func(t *testing.T) {
		silences, restarts := watchdogSilences(t, st.readLog(t, "watchdog"), time.Now())
		if len(restarts) > 0 {
			t.Errorf("the watchdog restarted processes with RESTART_HUNG_AFTER=0:\n%s", strings.Join(restarts, "\n"))
		}
		var summary []string
		for _, name := range []string{"redis", "psp-connector", "core-api", "auth-api", "haproxy"} {
			longest := time.Duration(0)
			for _, d := range silences[name] {
				longest = max(longest, d)
			}
			summary = append(summary, fmt.Sprintf("%s %d, longest %s", name, len(silences[name]), longest.Round(time.Millisecond)))
			if name != "psp-connector" && longest >= defaultHangAfter {
				t.Errorf("%s: silent for %s, which RESTART_HUNG_AFTER's default (%s) would have restarted", name, longest, defaultHangAfter)
			}
		}
		t.Logf("RESULT watchdog's judgement | the faults above, RESTART_HUNG_AFTER=0 | silences reported (over 2 s): %s | restarts %d",
			strings.Join(summary, "; "), len(restarts))
	})

	t.Run("stack down leaves nothing", func(t *testing.T) {
		ps, err := st.pc.processes()
		if err != nil {
			t.Fatal(err)
		}
		var pids []string
		var all []int
		for name, p := range ps {
			if p.Pid > 0 {
				all = append(all, p.Pid)
				pids = append(pids, fmt.Sprintf("%s=%d", name, p.Pid))
			}
		}
		if b, err := os.ReadFile(filepath.Join(st.stateDir, "process-compose.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				all = append(all, pid)
				pids = append(pids, fmt.Sprintf("process-compose=%d", pid))
			}
		}
		if err := st.down(t); err != nil {
			t.Fatalf("stack down: %v", err)
		}
		var alive []string
		for _, pid := range all {
			if !pidGone(pid) {
				alive = append(alive, strconv.Itoa(pid))
			}
		}
		var listening []string
		for name, port := range st.ports {
			if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
				c.Close()
				listening = append(listening, fmt.Sprintf("%s=%d", name, port))
			}
		}
		if c, err := net.DialTimeout("unix", filepath.Join(st.stateDir, "redis", "redis.sock"), time.Second); err == nil {
			c.Close()
			listening = append(listening, "redis socket")
		}
		if len(alive) > 0 {
			t.Errorf("processes still alive after stack down: %v", alive)
		}
		if len(listening) > 0 {
			t.Errorf("still listening after stack down: %v", listening)
		}
		t.Logf("RESULT stack down | after all of the above | %d pids checked (%s), %d ports + the Redis socket checked | alive %d, listening %d",
			len(all), strings.Join(pids, " "), len(st.ports), len(alive), len(listening))
	})
}

// faultSchedule runs a fault once as a load's accepted count reaches each
// mark, one at a time, in the background (so the load goes on while the
// fault happens). wait blocks until every fault that started has finished.
type faultSchedule struct {
	marks []int64
	fault func(n int64)
	next  atomic.Int64
	mu    sync.Mutex // one fault at a time, in order
	wg    sync.WaitGroup
}

func atAccepted(marks []int64, fault func(n int64)) *faultSchedule {
	return &faultSchedule{marks: marks, fault: fault}
}

// progress is the load's progress callback.
func (f *faultSchedule) progress(n int64) {
	i := f.next.Load()
	if i >= int64(len(f.marks)) || n < f.marks[i] || !f.next.CompareAndSwap(i, i+1) {
		return
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		f.mu.Lock()
		defer f.mu.Unlock()
		f.fault(n)
	}()
}

// wait blocks until the faults started so far are done, and fails the test
// unless every mark was reached: a load that ended before a fault proves
// nothing about it. accepted is what the load got.
func (f *faultSchedule) wait(t *testing.T, accepted int) {
	t.Helper()
	f.wg.Wait()
	if ran := f.next.Load(); ran < int64(len(f.marks)) {
		t.Fatalf("%d of the %d faults ran: they were due at %v accepted transactions, and the load got %d", ran, len(f.marks), f.marks, accepted)
	}
}

// backlog is the consumer group's lag plus pending entries (what is queued
// but not yet acknowledged), or -1 when Redis does not answer.
func (s *faultStack) backlog(t *testing.T) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	groups, err := s.rdb.XInfoGroups(ctx, txqueue.Stream).Result()
	if err != nil {
		return -1
	}
	for _, g := range groups {
		if g.Name == txqueue.Group {
			return g.Lag + g.Pending
		}
	}
	return -1
}

// outageReport is what core-api and psp-connector said while Redis was down.
type outageReport struct {
	probes         int
	coreHealthFail int           // core-api /health answered 503 "fail"
	connHealthFail int           // psp-connector /health answered 503 "fail"
	tx503          int           // POST /transaction straight to core-api answered JSON 503
	routerFail     int           // GET /transaction/health through the router: core-api's 503 "fail"
	routerOwn503   int           // ... the router's own 503 (it took core-api for down)
	slowest        time.Duration // slowest core-api answer during the outage
	firstFail      time.Duration // kill to the first failing health check
	recovered      time.Duration // kill to core-api /health passing again after failing
	other          []string
}

func (o outageReport) String() string {
	return fmt.Sprintf("%d probes; core-api /health fail ×%d, psp-connector /health fail ×%d, direct POST JSON 503 ×%d; through the router core-api's fail ×%d, the router's own 503 ×%d; first fail %s, healthy again %s after the kill; slowest answer %s%s",
		o.probes, o.coreHealthFail, o.connHealthFail, o.tx503, o.routerFail, o.routerOwn503, o.firstFail.Round(time.Millisecond),
		o.recovered.Round(time.Millisecond), o.slowest.Round(time.Millisecond), strings.Join(o.other, "; "))
}

// probeOutage asks core-api and psp-connector directly, every 50 ms, for
// their health and (core-api) for a transaction, until core-api's health
// passes again after failing, or max passes.
func (s *faultStack) probeOutage(tokens *tokenSource, killed time.Time, limit time.Duration) outageReport {
	c := &http.Client{Timeout: 5 * time.Second}
	var o outageReport
	failed := false
	for time.Since(killed) < limit {
		o.probes++
		began := time.Now()
		code, status, err := s.health("CORE_API_PORT", 5*time.Second)
		o.slowest = max(o.slowest, time.Since(began))
		switch {
		case err != nil:
			o.other = appendMax(o.other, "core-api /health: "+err.Error())
		case code == http.StatusServiceUnavailable && status == "fail":
			o.coreHealthFail++
			if !failed {
				o.firstFail = time.Since(killed)
			}
			failed = true
		case code == http.StatusOK && failed:
			o.recovered = time.Since(killed)
			return o
		}
		if code, status, err := s.health("PSP_CONNECTOR_PORT", 5*time.Second); err == nil && code == http.StatusServiceUnavailable && status == "fail" {
			o.connHealthFail++
		}
		if code, status, err := getHealth(s.base+"/transaction/health", 5*time.Second); err == nil && code == http.StatusServiceUnavailable {
			switch status {
			case "fail":
				o.routerFail++
			case "":
				o.routerOwn503++
			}
		}
		if tok, err := tokens.get("alice"); failed && err == nil {
			// A valid transaction straight to core-api: it must fail fast, as
			// JSON. Its amount (90,000,000 and up) is outside every load's
			// range, so if it is accepted it does not count as a stray line.
			began := time.Now()
			r, err := c.Post(fmt.Sprintf("http://127.0.0.1:%d/transaction", s.ports["CORE_API_PORT"]), "application/json",
				strings.NewReader(fmt.Sprintf(`{"token":%q,"amount":%d,"currency":"USD"}`, tok, 90_000_000+o.probes)))
			o.slowest = max(o.slowest, time.Since(began))
			if err == nil {
				raw, _ := io.ReadAll(r.Body)
				r.Body.Close()
				var e struct {
					Error string `json:"error"`
				}
				if r.StatusCode == http.StatusServiceUnavailable && json.Unmarshal(raw, &e) == nil && e.Error != "" {
					o.tx503++
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return o
}

func appendMax(list []string, s string) []string {
	if len(list) < 3 {
		return append(list, s)
	}
	return list
}

// routePoll is what polling a route through the router saw.
type routePoll struct {
	first      time.Duration // until the first answer with the wanted status (0: never)
	polls      int
	onlyWanted bool // after the first, every answer had the wanted status
	statuses   map[int]int
	slowest    time.Duration
}

func (p routePoll) String() string {
	return fmt.Sprintf("wanted answer first after %s (%d polls, statuses %v, slowest %s)",
		p.first.Round(time.Millisecond), p.polls, p.statuses, p.slowest.Round(time.Millisecond))
}

// pollRoute gets path through the router every 50 ms until it answers want
// (as JSON), then 1 s more to check it keeps doing so.
func (s *faultStack) pollRoute(t *testing.T, path string, want int, timeout time.Duration) routePoll {
	t.Helper()
	c := s.client(5 * time.Second)
	c.Transport.(*http.Transport).DisableKeepAlives = true
	start := time.Now()
	p := routePoll{statuses: map[int]int{}, onlyWanted: true}
	for time.Since(start) < timeout {
		p.polls++
		began := time.Now()
		r, err := c.Get(s.base + path)
		took := time.Since(began)
		p.slowest = max(p.slowest, took)
		code := 0
		if err == nil {
			raw, _ := io.ReadAll(r.Body)
			r.Body.Close()
			var m map[string]any
			if json.Unmarshal(raw, &m) == nil && strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
				code = r.StatusCode
			} else {
				code = -r.StatusCode // not JSON
			}
		}
		p.statuses[code]++
		if code == want && p.first == 0 {
			p.first = time.Since(start)
		} else if code != want && p.first != 0 {
			p.onlyWanted = false
		}
		if p.first != 0 && time.Since(start) > p.first+time.Second {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p
}

// inFlight is one request held open across a SIGTERM: its headers and half
// its body are sent before the signal, the rest after it, so the server is
// mid-request when it is told to stop.
type inFlight struct {
	conn net.Conn
	rest []byte
}

// startInFlight sends method path's headers and the first half of body
// straight to the service on port, and waits for the server to be reading it.
func startInFlight(t *testing.T, port int, path, body string) *inFlight {
	t.Helper()
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	half := len(body) / 2
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body[:half])
	if _, err := conn.Write([]byte(head)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the server has read the headers and waits for the body
	return &inFlight{conn: conn, rest: []byte(body[half:])}
}

// finish sends the rest of the body and returns the status and body.
func (f *inFlight) finish() (int, string, error) {
	defer f.conn.Close()
	if _, err := f.conn.Write(f.rest); err != nil {
		return 0, "", fmt.Errorf("write the rest of the body: %w", err)
	}
	r, err := http.ReadResponse(bufio.NewReader(f.conn), nil)
	if err != nil {
		return 0, "", fmt.Errorf("read the answer: %w", err)
	}
	defer r.Body.Close()
	raw, _ := io.ReadAll(r.Body)
	return r.StatusCode, string(raw), nil
}

// sigtermUnderLoad sends SIGTERM to svc while transactions flow through the
// router (and, for core-api, straight to it with a connection per request),
// with one request held mid-body across the signal (for the two APIs), and
// checks that the held request completed, nothing the server processed lost
// its answer, the service drained and stopped cleanly, process-compose
// restarted it, and every acknowledged transaction was processed exactly once.
func (s *faultStack) sigtermUnderLoad(t *testing.T, tokens *tokenSource, svc string, first int64) {
	const n = 4000
	var termed []string
	var mu sync.Mutex
	termedPid := 0
	var held *inFlight
	var heldStatus int
	var heldBody string
	var heldErr error
	heldDone := make(chan struct{})
	term := atAccepted([]int64{n / 3}, func(k int64) {
		switch svc {
		case "auth-api":
			held = startInFlight(t, s.ports["AUTH_API_PORT"], "/token", `{"username":"becky","password":"password"}`)
		case "core-api":
			tok, err := tokens.get("becky")
			if err != nil {
				t.Error(err)
			}
			held = startInFlight(t, s.ports["CORE_API_PORT"], "/transaction",
				fmt.Sprintf(`{"token":%q,"amount":%d,"currency":"CHF"}`, tok, first+2*n))
		}
		pid := s.signal(t, svc, syscall.SIGTERM)
		mu.Lock()
		termedPid = pid
		termed = append(termed, fmt.Sprintf("pid %d at %d accepted", pid, k))
		mu.Unlock()
		if held != nil {
			time.Sleep(300 * time.Millisecond) // shutdown under way: listener closed, draining
			heldStatus, heldBody, heldErr = held.finish()
		}
		close(heldDone)
	})
	var wg sync.WaitGroup
	var direct *loadResult
	if svc == "core-api" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			direct = s.runLoad(context.Background(), t, loadOptions{
				total: n / 2, firstAmount: first + n, tokens: tokens, workers: 8, noKeepAlive: true,
				url: fmt.Sprintf("http://127.0.0.1:%d/transaction", s.ports["CORE_API_PORT"]),
			})
		}()
	}
	res := s.runLoad(context.Background(), t, loadOptions{total: n, firstAmount: first, tokens: tokens, progress: term.progress})
	wg.Wait()
	term.wait(t, len(res.accepted)) // the fault closes heldDone: it has run
	<-heldDone
	mu.Lock()
	t.Logf("SIGTERM %s: %s", svc, strings.Join(termed, "; "))
	mu.Unlock()
	t.Logf("load through the router: %s", res.summary())
	for code, samples := range res.errorSamples {
		t.Logf("router answered %d, e.g. %s", code, strings.Join(samples, " | "))
	}
	s.waitRunning(t, svc, termedPid, 30*time.Second)

	extra := ""
	if held != nil {
		shown := strings.TrimSpace(heldBody)
		if svc == "auth-api" {
			shown = fmt.Sprintf("(a %d-byte body)", len(heldBody)) // a token; not for the test log
		}
		t.Logf("request held mid-body across SIGTERM: %d %s (err %v)", heldStatus, shown, heldErr)
		if heldErr != nil || heldStatus != http.StatusOK {
			t.Errorf("request in flight at SIGTERM: got %d %q, err %v; want 200", heldStatus, heldBody, heldErr)
		}
		extra = fmt.Sprintf(" | request held mid-body across SIGTERM: %d", heldStatus)
	}
	if svc == "core-api" && heldStatus == http.StatusOK {
		var out struct {
			ID     string `json:"id"`
			Amount int64  `json:"amount"`
		}
		if err := json.Unmarshal([]byte(heldBody), &out); err == nil {
			res.accepted[out.Amount] = loadTx{id: out.ID, user: 2, amount: out.Amount, currency: "CHF"}
		}
	}
	o := verifyExactlyOnce(t, s, res, [2]int64{first, first + n}, 60*time.Second)
	if direct != nil {
		t.Logf("load straight to core-api (a connection per request): %s", direct.summary())
		od := verifyExactlyOnce(t, s, direct, [2]int64{first + n, first + n + n/2}, 60*time.Second)
		// A connection per request: Go's client never retries by itself here,
		// so any replay means an attempt was queued and its answer lost.
		replays := 0
		for _, tx := range direct.accepted {
			if tx.replayed {
				replays++
			}
		}
		if direct.answerLost > 0 || replays > 0 {
			t.Errorf("%d transactions straight to core-api were queued but their answer was lost (in flight at SIGTERM); %d replays",
				direct.answerLost, replays)
		}
		extra += fmt.Sprintf(" | straight to core-api: %s; %d broken connections never reached the server (listen backlog at close), %d answers lost",
			od, direct.neverReached, direct.answerLost)
	}
	// Through the router, a replay means core-api queued an attempt whose
	// answer never arrived (Go's client may have retried it by itself).
	routerReplays := 0
	for _, tx := range res.accepted {
		if tx.replayed {
			routerReplays++
		}
	}
	// A request resent by the client itself had its kept-alive connection
	// closed unanswered by the router: without an Idempotency-Key, Go's
	// client (as any other) would have reported an error (D48).
	if res.statuses[http.StatusBadGateway] > 0 || res.transport["transport error"] > 0 || res.answerLost > 0 || routerReplays > 0 || res.resentByClient > 0 {
		t.Errorf("through the router: 502 ×%d, transport errors %v, answers lost %d, replays %d, resent by the client %d: requests in flight at SIGTERM were dropped",
			res.statuses[http.StatusBadGateway], res.transport, res.answerLost, routerReplays, res.resentByClient)
	}
	if res.nonJSON > 0 {
		t.Errorf("%d error answers were not JSON", res.nonJSON)
	}
	s.checkCleanStop(t, svc)
	t.Logf("RESULT SIGTERM %s | %d tx through the router, 32 workers | %s | router statuses %v%s", svc, n, o, res.statuses, extra)
}

// sigtermConnectorWhileRedisHoldsWrites freezes the connector while a load
// queues transactions, lets it take up the backlog again, makes Redis hold
// every write (CLIENT PAUSE WRITE: the records, the acks and the reads all
// wait) and sends the connector SIGTERM. The connector must exit within
// SHUTDOWN_GRACE, however long Redis holds its writes (RELIABILITY.md D75:
// each call finishing a charged round used to get its own timeout on top of
// the grace), and, once Redis writes again, every acknowledged transaction
// must be processed exactly once: what the drain could not record is found
// in the ledger lines at its redelivery, not charged again.
func (s *faultStack) sigtermConnectorWhileRedisHoldsWrites(t *testing.T, tokens *tokenSource, first int64) {
	const n = 4000
	frozen := 0
	freeze := atAccepted([]int64{n / 4}, func(int64) { frozen = s.signal(t, "psp-connector", syscall.SIGSTOP) })
	res := s.runLoad(context.Background(), t, loadOptions{total: n, firstAmount: first, tokens: tokens, progress: freeze.progress})
	freeze.wait(t, len(res.accepted))
	t.Logf("load: %s", res.summary())

	ctx := context.Background()
	hold := 3 * stackShutdownGrace
	// Whatever happens below: a Redis left holding writes would fail every
	// row after this one.
	defer func() { _ = s.rdb.Do(ctx, "CLIENT", "UNPAUSE").Err() }()
	queued := s.backlog(t)
	if err := syscall.Kill(frozen, syscall.SIGCONT); err != nil {
		t.Fatalf("SIGCONT psp-connector pid %d: %v", frozen, err)
	}
	// A round in hand when Redis begins to hold writes, every time: with
	// process-compose stopped, the connector's charge lines fill the pipe
	// to it and a charge waits in its write; Redis then holds writes, and
	// once process-compose runs again the charge ends and its record
	// waits. (Paused at a moment of its own choosing, Redis caught a
	// round between its charge and its record in 1 run of 5.)
	pc := s.processComposePid(t)
	if err := syscall.Kill(pc, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP process-compose pid %d: %v", pc, err)
	}
	defer func() { _ = syscall.Kill(pc, syscall.SIGCONT) }()
	backlog := s.waitBacklogSteady(t, 10*time.Second)
	if err := s.rdb.Do(ctx, "CLIENT", "PAUSE", hold.Milliseconds(), "WRITE").Err(); err != nil {
		t.Fatalf("CLIENT PAUSE WRITE: %v", err)
	}
	if err := syscall.Kill(pc, syscall.SIGCONT); err != nil {
		t.Fatalf("SIGCONT process-compose pid %d: %v", pc, err)
	}
	time.Sleep(300 * time.Millisecond) // its calls waiting on Redis
	termed := time.Now()
	pid := s.signal(t, "psp-connector", syscall.SIGTERM)
	for !pidGone(pid) && time.Since(termed) < hold {
		time.Sleep(10 * time.Millisecond)
	}
	exited := time.Since(termed)
	if err := s.rdb.Do(ctx, "CLIENT", "UNPAUSE").Err(); err != nil {
		t.Fatalf("CLIENT UNPAUSE: %v", err)
	}
	t.Logf("SIGTERM psp-connector pid %d with a backlog of %d, Redis holding writes: exited %s after it (SHUTDOWN_GRACE %s)",
		pid, backlog, exited.Round(time.Millisecond), stackShutdownGrace)
	// The slack is for a loaded machine: here 5.013–5.056 s with a 5 s
	// grace, also beside two CPU hogs; before D75, 5.912–5.918 s (the
	// record in flight went on past the grace).
	if most := stackShutdownGrace + 500*time.Millisecond; exited > most {
		t.Errorf("psp-connector exited %s after its SIGTERM, want at most %s (SHUTDOWN_GRACE and a slack)", exited.Round(time.Millisecond), most)
	}
	s.waitRunning(t, "psp-connector", pid, 30*time.Second)
	o := verifyExactlyOnce(t, s, res, [2]int64{first, first + n}, 60*time.Second)
	if o.fromLedger == 0 {
		t.Errorf("no charge was left unrecorded by the drain and found in the ledger lines (backlog %d at the pause): the row did not test a round in hand", backlog)
	}
	t.Logf("RESULT SIGTERM psp-connector while Redis holds writes | %d tx, 32 workers, the connector frozen from %d accepted to the load's end, backlog %d when let go, %d at the pause | exited %s after SIGTERM (SHUTDOWN_GRACE %s) | %s",
		n, n/4, queued, backlog, exited.Round(time.Millisecond), stackShutdownGrace, o)
}

// processComposePid is the stack's process-compose, from its pid file.
func (s *faultStack) processComposePid(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.stateDir, "process-compose.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		t.Fatalf("process-compose.pid holds %q: %v", b, err)
	}
	return pid
}

// waitBacklogSteady waits until the backlog stays the same for 100 ms (the
// consumer waits on something) and returns it.
func (s *faultStack) waitBacklogSteady(t *testing.T, timeout time.Duration) int64 {
	t.Helper()
	last, since := s.backlog(t), time.Now()
	for start := time.Now(); time.Since(since) < 100*time.Millisecond; {
		if time.Since(start) > timeout {
			t.Fatalf("the backlog did not stay the same for 100 ms within %s (last %d)", timeout, last)
		}
		time.Sleep(10 * time.Millisecond)
		if b := s.backlog(t); b != last {
			last, since = b, time.Now()
		}
	}
	return last
}

// checkCleanStop checks the service's log for its last shutdown: it logged
// "shutting down" and then "stopped", and no drain timeout.
func (s *faultStack) checkCleanStop(t *testing.T, svc string) {
	t.Helper()
	log := s.readLog(t, svc)
	i := strings.LastIndex(log, `"msg":"shutting down"`)
	if i < 0 {
		t.Errorf("%s never logged \"shutting down\"", svc)
		return
	}
	rest := log[i:]
	if !strings.Contains(rest, `"msg":"stopped"`) {
		t.Errorf("%s logged \"shutting down\" but not \"stopped\" after it", svc)
	}
	if strings.Contains(rest, "drain HTTP server within") {
		t.Errorf("%s did not drain within its grace", svc)
	}
}
