package loadgen

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme-payments/platform/internal/loadgen/fakerouter"
	tokens "github.com/acme-payments/platform/internal/token"
)

func testConfig(base string) Config {
	cfg := DefaultConfig(base)
	cfg.Concurrency = 8
	cfg.Duration = 0
	cfg.DrainTimeout = 5 * time.Second
	cfg.RequestTimeout = 30 * time.Second // generous: the machine is shared and -race is slow
	cfg.Seed = 1
	return cfg
}

// startFakeRouter starts a fake router with opts and returns it with the
// testConfig of a run against it.
func startFakeRouter(t *testing.T, opts fakerouter.Options) (*fakerouter.Router, Config) {
	t.Helper()
	f, srv := fakerouter.Start(t, opts)
	return f, testConfig(srv.URL)
}

// runLoad runs the load that cfg describes and returns its report, failing
// the test if Run returns an error.
func runLoad(t *testing.T, ctx context.Context, cfg Config) *Report {
	t.Helper()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return rep
}

func TestRunAccounting(t *testing.T) {
	tests := []struct {
		name string
		fake fakerouter.Options
		cfg  func(*Config)
		// want
		accepted, processed, queued int64
		missing                     int64 // accepted, and their status lookups answer 404
		maybeQueued, maybeFound     int64 // 503s "may be queued", and those found queued after all
		tokensBefore                int64 // the merchants' logins before the load
		errors                      map[string]int64
		ok                          bool
	}{
		{
			name:     "closed loop count, all processed",
			fake:     fakerouter.Options{ProcessAfter: 20 * time.Millisecond},
			cfg:      func(c *Config) { c.Count = 400 },
			accepted: 400, processed: 400, tokensBefore: 2,
			errors: map[string]int64{}, ok: true,
		},
		{
			name:     "open loop count",
			fake:     fakerouter.Options{},
			cfg:      func(c *Config) { c.Count = 60; c.Rate = 300 },
			accepted: 60, processed: 60, tokensBefore: 2,
			errors: map[string]int64{}, ok: true,
		},
		{
			name:     "open loop count, poisson arrivals",
			fake:     fakerouter.Options{},
			cfg:      func(c *Config) { c.Count = 60; c.Rate = 300; c.Arrivals = ArrivalsPoisson },
			accepted: 60, processed: 60, tokensBefore: 2,
			errors: map[string]int64{}, ok: true,
		},
		{
			name:     "bearer header, three merchants",
			fake:     fakerouter.Options{},
			cfg:      func(c *Config) { c.Count = 90; c.Bearer = true; c.Merchants = 3 },
			accepted: 90, processed: 90, tokensBefore: 3,
			errors: map[string]int64{}, ok: true,
		},
		{
			name:     "rejected requests are counted by status, not accepted",
			fake:     fakerouter.Options{FailTxEvery: 10},
			cfg:      func(c *Config) { c.Count = 200 },
			accepted: 180, processed: 180, tokensBefore: 2,
			errors: map[string]int64{"tx 503": 20}, ok: true,
		},
		{
			name:     "503s that may be queued are looked up, and not an error of the run",
			fake:     fakerouter.Options{MaybeQueuedEvery: 10},
			cfg:      func(c *Config) { c.Count = 200 },
			accepted: 180, processed: 180, maybeQueued: 20, maybeFound: 10, tokensBefore: 2,
			errors: map[string]int64{"tx 503 (may be queued)": 20}, ok: true,
		},
		{
			// Keyed, the 503 has no id: the transaction is sent again with
			// its key. Every tenth request that is not a replay gets a 503,
			// every other one of those stored all the same: 210 such
			// requests for 200 transactions, 21 503s, 11 stored, whose
			// retries are answered as replays (and 10 not, retried afresh).
			name:     "keyed 503s that may be queued are sent again with their key",
			fake:     fakerouter.Options{MaybeQueuedEvery: 10},
			cfg:      func(c *Config) { c.Count = 200; c.IdempotencyKeys = true },
			accepted: 200, processed: 200, maybeQueued: 21, maybeFound: 11, tokensBefore: 2,
			errors: map[string]int64{"tx 503 (may be queued)": 21}, ok: true,
		},
		{
			name:     "throttled logins are retried and counted",
			fake:     fakerouter.Options{ThrottleLogins: 2},
			cfg:      func(c *Config) { c.Count = 20; c.Concurrency = 2 },
			accepted: 20, processed: 20, tokensBefore: 2,
			errors: map[string]int64{"token 429": 2}, ok: true,
		},
		{
			name: "never processed transactions fail the run",
			fake: fakerouter.Options{LoseEvery: 50},
			cfg: func(c *Config) {
				c.Count = 200
				c.DrainTimeout = 300 * time.Millisecond
			},
			accepted: 200, processed: 196, queued: 4, tokensBefore: 2,
			errors: map[string]int64{}, ok: false,
		},
		{
			// Accepted, then nowhere to be found: as lost as one stuck in
			// the queue, though its lookup never answers "queued".
			name: "accepted transactions that are not found fail the run",
			fake: fakerouter.Options{ForgetEvery: 50},
			cfg: func(c *Config) {
				c.Count = 200
				c.DrainTimeout = 300 * time.Millisecond
			},
			accepted: 200, processed: 196, missing: 4, tokensBefore: 2,
			errors: map[string]int64{}, ok: false,
		},
		{
			name:     "sampled verification checks only the sample",
			fake:     fakerouter.Options{},
			cfg:      func(c *Config) { c.Count = 300; c.Verify = VerifySample; c.VerifySample = 50 },
			accepted: 300, processed: 50, tokensBefore: 2,
			errors: map[string]int64{}, ok: true,
		},
	}
	for _, tt := range tests {
		for _, std := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/std-client=%v", tt.name, std), func(t *testing.T) {
				f, cfg := startFakeRouter(t, tt.fake)
				cfg.StdClient = std
				tt.cfg(&cfg)
				rep := runLoad(t, context.Background(), cfg)
				if rep.Accepted != tt.accepted {
					t.Errorf("accepted: got %d, want %d", rep.Accepted, tt.accepted)
				}
				if got := f.Accepted.Load(); got != rep.Accepted {
					t.Errorf("server accepted %d, report says %d", got, rep.Accepted)
				}
				// Runs this short never refresh a token: every login was before the load.
				if rep.Tokens != 0 || rep.TokensBeforeLoad != tt.tokensBefore {
					t.Errorf("tokens: got %d during the load and %d before, want 0 and %d", rep.Tokens, rep.TokensBeforeLoad, tt.tokensBefore)
				}
				v := rep.Verification
				if v == nil {
					t.Fatal("no verification")
				}
				if v.Processed != tt.processed || v.Queued != tt.queued || v.Missing != tt.missing || v.Failed != 0 {
					t.Errorf("verification: got processed %d queued %d missing %d failed %d, want processed %d queued %d missing %d",
						v.Processed, v.Queued, v.Missing, v.Failed, tt.processed, tt.queued, tt.missing)
				}
				if v.MaybeQueued != tt.maybeQueued || v.MaybeQueuedFound != tt.maybeFound {
					t.Errorf("may be queued: got %d, %d found; want %d, %d found", v.MaybeQueued, v.MaybeQueuedFound, tt.maybeQueued, tt.maybeFound)
				}
				if got := rep.Latency["tx"].Count; got != tt.accepted {
					t.Errorf("tx latency count: got %d, want %d", got, tt.accepted)
				}
				// Every try not answered 200: those sent less those accepted.
				if got, want := rep.Latency["tx_not_accepted"].Count, rep.Sent-rep.Accepted; got != want {
					t.Errorf("tx_not_accepted latency count: got %d, want %d (%d sent, %d accepted)", got, want, rep.Sent, rep.Accepted)
				}
				if got := rep.Latency["enqueue_to_processed"].Count; got != tt.processed {
					t.Errorf("enqueue_to_processed count: got %d, want %d", got, tt.processed)
				}
				if !equalCounts(rep.Errors, tt.errors) {
					t.Errorf("errors: got %v, want %v", rep.Errors, tt.errors)
				}
				if err := rep.Err(); (err == nil) != tt.ok {
					t.Errorf("Err: got %v, want ok=%v", err, tt.ok)
				}
				var text bytes.Buffer
				if err := rep.WriteText(&text); err != nil {
					t.Fatal(err)
				}
				if tt.ok != strings.Contains(text.String(), "OK:") {
					t.Errorf("text report does not match ok=%v:\n%s", tt.ok, text.String())
				}
				if want := fmt.Sprintf("maybe queued  %d answered", tt.maybeQueued); tt.maybeQueued > 0 && !strings.Contains(text.String(), want) {
					t.Errorf("text report has no %q line:\n%s", want, text.String())
				}
				if got := strings.Contains(text.String(), ", idempotency keys\n"); got != cfg.IdempotencyKeys {
					t.Errorf("text report's first line names idempotency keys: %v, want %v:\n%s", got, cfg.IdempotencyKeys, text.String())
				}
			})
		}
	}
}

func TestRunDurationRefreshesTokens(t *testing.T) {
	_, cfg := startFakeRouter(t, fakerouter.Options{TokenTTL: 400 * time.Millisecond})
	cfg.Concurrency = 2
	cfg.Duration = time.Second
	cfg.TokenRefresh = 200 * time.Millisecond
	rep := runLoad(t, context.Background(), cfg)
	// Two merchants, each logged in before the load and replacing a 400 ms
	// token 200 ms before expiry over one second: at least 3 logins each
	// during the load.
	if rep.Tokens < 6 || rep.TokensBeforeLoad != 2 {
		t.Errorf("tokens: got %d during the load and %d before, want >= 6 and 2", rep.Tokens, rep.TokensBeforeLoad)
	}
	if rep.Accepted == 0 {
		t.Errorf("accepted: got 0, want > 0")
	}
	if n := rep.Errors["tx 422"]; n != 0 {
		t.Errorf("tx 422 (expired token used): got %d, want 0", n)
	}
	if err := rep.Err(); err != nil {
		t.Errorf("Err: got %v, want nil", err)
	}
}

// The report gives the seed the run used, so that --seed can repeat its
// amounts, currencies and arrivals: the one asked for, or the one drawn,
// which must come back exactly from the JSON report.
func TestRunReportsItsSeed(t *testing.T) {
	tests := []struct {
		name string
		seed uint64 // 0: drawn from the clock
	}{
		{"asked for", 7},
		{"drawn", 0},
		{"drawn again", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, cfg := startFakeRouter(t, fakerouter.Options{})
			cfg.Count, cfg.Seed = 10, tt.seed
			rep := runLoad(t, context.Background(), cfg)
			switch {
			case tt.seed != 0 && rep.Seed != tt.seed:
				t.Errorf("seed: got %d, want %d", rep.Seed, tt.seed)
			case tt.seed == 0 && (rep.Seed == 0 || rep.Seed >= 1<<53):
				// Under 2^53: readers that hold JSON numbers as float64 (jq,
				// JavaScript) get it back exactly.
				t.Errorf("seed: got %d, want one drawn in [1, 2^53)", rep.Seed)
			}
			var back map[string]any
			if b, err := json.Marshal(rep); err != nil || json.Unmarshal(b, &back) != nil {
				t.Fatalf("report JSON: %v", err)
			}
			if got := uint64(back["seed"].(float64)); got != rep.Seed {
				t.Errorf("seed through JSON as a float64: got %d, want %d", got, rep.Seed)
			}
		})
	}
}

func TestRunTokenMode(t *testing.T) {
	_, cfg := startFakeRouter(t, fakerouter.Options{})
	cfg.Mode = ModeTokens
	cfg.Count = 150
	rep := runLoad(t, context.Background(), cfg)
	if rep.Tokens != 150 || rep.Latency["token"].Count != 150 {
		t.Errorf("tokens: got %d (latency count %d), want 150", rep.Tokens, rep.Latency["token"].Count)
	}
	if rep.Verification != nil || rep.Sent != 0 {
		t.Errorf("token mode sent transactions or verified: %+v", rep)
	}
	if err := rep.Err(); err != nil {
		t.Errorf("Err: got %v, want nil", err)
	}
}

// TestRunOpenLoopRatesSpanTheSchedule: an open loop's rates, accepted and
// processed, are its requests over the time its schedule spans. Ten requests at 20/s are due
// 0-450 ms apart and answered by 451 ms or so; dividing by that would
// report 22/s.
func TestRunOpenLoopRatesSpanTheSchedule(t *testing.T) {
	tests := []struct {
		name string
		cfg  func(*Config)
		want time.Duration // at least; the schedule's span
	}{
		{name: "count", cfg: func(c *Config) { c.Count = 10 }, want: 500 * time.Millisecond},
		{name: "duration", cfg: func(c *Config) { c.Duration = 500 * time.Millisecond }, want: 500 * time.Millisecond},
		{name: "tokens", cfg: func(c *Config) { c.Mode, c.Count = ModeTokens, 10 }, want: 500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, cfg := startFakeRouter(t, fakerouter.Options{})
			cfg.Rate = 20
			tt.cfg(&cfg)
			rep := runLoad(t, t.Context(), cfg)
			if err := rep.Err(); err != nil {
				t.Fatalf("run failed: %v", err)
			}
			n, perSec := rep.Accepted, rep.AcceptedPerSec
			if cfg.Mode == ModeTokens {
				n, perSec = rep.Tokens, rep.TokensPerSec
			}
			if n != 10 {
				t.Fatalf("%d done, want 10", n)
			}
			if got := time.Duration(rep.Elapsed * float64(time.Second)); got < tt.want {
				t.Errorf("elapsed %v, want at least the schedule's %v", got, tt.want)
			}
			if perSec > cfg.Rate {
				t.Errorf("%.2f/s reported for a run at %g/s", perSec, cfg.Rate)
			}
			if v := rep.Verification; v != nil && v.ProcessedPerSec > cfg.Rate {
				t.Errorf("%.2f/s processed reported for a run at %g/s", v.ProcessedPerSec, cfg.Rate)
			}
		})
	}
}

// TestRunSendsIdempotencyKeys: with --idempotency-keys every transaction
// request carries a key of its own, through either HTTP client, and two
// runs with one --seed do not share a key; without it none carries one.
func TestRunSendsIdempotencyKeys(t *testing.T) {
	tests := []struct {
		name      string
		keys, std bool
	}{
		{name: "no keys"},
		{name: "keys", keys: true},
		{name: "keys, net/http client", keys: true, std: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, cfg := startFakeRouter(t, fakerouter.Options{})
			cfg.Count, cfg.IdempotencyKeys, cfg.StdClient = 100, tt.keys, tt.std
			for run := 1; run <= 2; run++ {
				rep, err := Run(t.Context(), cfg)
				if err != nil {
					t.Fatalf("run %d: %v", run, err)
				}
				if err := rep.Err(); err != nil {
					t.Fatalf("run %d failed: %v", run, err)
				}
				if rep.IdempotencyKeys != tt.keys {
					t.Errorf("run %d: report's idempotency_keys %v, want %v", run, rep.IdempotencyKeys, tt.keys)
				}
			}
			keyed, distinct := f.IdempotencyKeys()
			want := 0
			if tt.keys {
				want = int(f.TxRequests.Load())
			}
			if keyed != want || distinct != want {
				t.Errorf("%d of %d transaction requests keyed, %d different keys; want %d and %d",
					keyed, f.TxRequests.Load(), distinct, want, want)
			}
		})
	}
}

// A keyed transaction that gets "may be queued" on every try is sent 5
// times in all, then counted once as unresolved: it has no id to look up.
// So is one whose retries get other answers a retry may mend.
func TestRunKeyedRetriesAreBounded(t *testing.T) {
	srv, _ := fakeWith(t, fakerouter.Options{}, func(*fakerouter.Router) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{
				"error": fakerouter.MaybeQueuedKeyedText})
		}
	}, nil)
	cfg := testConfig(srv.URL)
	cfg.Count, cfg.IdempotencyKeys = 2, true
	rep := mustRun(t, cfg)
	want := map[string]int64{"tx 503 (may be queued)": 10, errKeyedUnresolved: 2}
	if !equalCounts(rep.Errors, want) || rep.Sent != 10 {
		t.Errorf("errors %v, sent %d; want %v and 10", rep.Errors, rep.Sent, want)
	}
}

// A keyed transaction is sent again with its key after any answer a retry
// may mend, not only "may be queued": a 502, a 429, core-api's plain 503.
// Until 2026-12-06 such an answer to a retry ended it, uncounted, and a
// transaction an earlier try had queued went unnoticed. A retry that finds
// its token expired during the back-off (core-api's 422 "Signature has
// expired.") is sent again with a fresh token, whose answer settles it;
// until 2026-12-07 it was counted as unresolved.
func TestRunKeyedRetriesMendOtherFailures(t *testing.T) {
	type answer struct {
		status int
		text   string
	}
	tests := []struct {
		name       string
		before     []answer // the answers before the transaction is accepted
		wantLogins int64
	}{
		{"a 502", []answer{{http.StatusBadGateway, "try again"}}, 1},
		{"a 429", []answer{{http.StatusTooManyRequests, "try again"}}, 1},
		{"a 503", []answer{{http.StatusServiceUnavailable, "try again"}}, 1},
		{"a 502, then the token expired", []answer{{http.StatusBadGateway, "bad gateway"},
			{http.StatusUnprocessableEntity, tokens.ErrExpired.Error()}}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tries atomic.Int64
			var f *fakerouter.Router
			srv, _ := fakeWith(t, fakerouter.Options{}, func(router *fakerouter.Router) http.HandlerFunc {
				f = router
				return func(w http.ResponseWriter, r *http.Request) {
					if n := int(tries.Add(1)); n <= len(tt.before) {
						writeJSON(w, tt.before[n-1].status, map[string]string{"error": tt.before[n-1].text})
						return
					}
					router.Transaction(w, r)
				}
			}, nil)
			cfg := testConfig(srv.URL)
			cfg.Count, cfg.Concurrency, cfg.Merchants, cfg.IdempotencyKeys = 1, 1, 1, true
			rep := mustRun(t, cfg)
			if want := int64(len(tt.before) + 1); rep.Accepted != 1 || rep.Sent != want || rep.Errors[errKeyedUnresolved] != 0 {
				t.Errorf("accepted %d, sent %d, errors %v; want try %d accepted", rep.Accepted, rep.Sent, rep.Errors, want)
			}
			if got := f.Logins.Load(); got != tt.wantLogins {
				t.Errorf("%d logins, want %d (an expired token is not sent again)", got, tt.wantLogins)
			}
		})
	}
}

// TestRunKeyedRetriesOfAnExpiredTokenAreBounded: a keyed transaction whose
// every retry is answered 422 "Signature has expired." is sent again, each
// time after a fresh login, only within its 4 retries, then counted
// unresolved. Each of its 5 tries counts in tx_not_accepted from its own
// send: answered at once, none took long, where from the first try's send
// the last would count the 750 ms of back-off before it.
func TestRunKeyedRetriesOfAnExpiredTokenAreBounded(t *testing.T) {
	var tries atomic.Int64
	var f *fakerouter.Router
	srv, _ := fakeWith(t, fakerouter.Options{}, func(router *fakerouter.Router) http.HandlerFunc {
		f = router
		return func(w http.ResponseWriter, r *http.Request) {
			if tries.Add(1) == 1 {
				writeJSON(w, http.StatusBadGateway, map[string]string{"error": "bad gateway"})
				return
			}
			writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": tokens.ErrExpired.Error()})
		}
	}, nil)
	cfg := testConfig(srv.URL)
	cfg.Count, cfg.Concurrency, cfg.Merchants, cfg.IdempotencyKeys = 1, 1, 1, true
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second) // an unbounded retry ends here
	defer cancel()
	rep := runLoad(t, ctx, cfg)
	if rep.Interrupted || rep.Sent != 1+keyedRetries || rep.Accepted != 0 || rep.Errors[errKeyedUnresolved] != 1 {
		t.Errorf("interrupted %v, sent %d, accepted %d, errors %v; want %d tries, then unresolved",
			rep.Interrupted, rep.Sent, rep.Accepted, rep.Errors, 1+keyedRetries)
	}
	// The login before the load, and one after each of the first 3
	// expired answers (the 4th ends the transaction).
	if got := f.Logins.Load(); got != keyedRetries {
		t.Errorf("%d logins, want %d: each retry after an expired answer logs in again", got, keyedRetries)
	}
	if p := rep.Latency["tx_not_accepted"]; p.Count != 1+keyedRetries || p.Max >= 400 {
		t.Errorf("tx_not_accepted latency: %d tries, max %.1f ms; want %d, each well under the 750 ms of back-off",
			p.Count, p.Max, 1+keyedRetries)
	}
}

// A keyed transaction whose earlier try may have been queued (a 502, a
// "may be queued", a time-out) and whose retry gets an answer that is not
// retried (a 422 other than an expired token's, a 400, a 401) has an
// unknown fate: it is counted as unresolved, as one whose retries were used
// up is. Until 2026-12-07 such a retry ended it, counted nowhere but as a
// "tx 422": a transaction the first try had queued went unnoticed.
func TestRunKeyedRetryEndedByAnotherAnswerIsUnresolved(t *testing.T) {
	for _, tt := range []struct {
		name   string
		first  func(w http.ResponseWriter)
		second int
	}{
		{"502 then 422", func(w http.ResponseWriter) {
			writeJSON(w, http.StatusBadGateway, map[string]string{"error": "bad gateway"})
		}, http.StatusUnprocessableEntity},
		{"may be queued then 400", func(w http.ResponseWriter) {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": fakerouter.MaybeQueuedKeyedText})
		}, http.StatusBadRequest},
		{"time-out then 401", func(w http.ResponseWriter) { time.Sleep(400 * time.Millisecond) }, http.StatusUnauthorized},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var tries atomic.Int64
			srv, _ := fakeWith(t, fakerouter.Options{}, func(f *fakerouter.Router) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					if tries.Add(1) == 1 {
						tt.first(w)
						return
					}
					writeJSON(w, tt.second, map[string]string{"error": "refused"})
				}
			}, nil)
			cfg := testConfig(srv.URL)
			cfg.Count, cfg.Concurrency, cfg.Merchants, cfg.IdempotencyKeys = 1, 1, 1, true
			cfg.RequestTimeout = 200 * time.Millisecond
			rep := mustRun(t, cfg)
			if rep.Sent != 2 || rep.Errors[errKeyedUnresolved] != 1 {
				t.Errorf("sent %d, errors %v; want 2 tries and the transaction counted unresolved", rep.Sent, rep.Errors)
			}
			// Both tries count in tx_not_accepted, a time-out at its 200 ms.
			if p := rep.Latency["tx_not_accepted"]; p.Count != 2 || (tt.name == "time-out then 401" && p.Max < 200) {
				t.Errorf("tx_not_accepted latency: %d tries, max %.1f ms; want 2 (and a time-out's 200 ms)", p.Count, p.Max)
			}
		})
	}
	// A keyed transaction refused at its first try was never queued.
	srv, _ := fakeWith(t, fakerouter.Options{}, func(f *fakerouter.Router) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": "refused"})
		}
	}, nil)
	cfg := testConfig(srv.URL)
	cfg.Count, cfg.Concurrency, cfg.Merchants, cfg.IdempotencyKeys = 1, 1, 1, true
	if rep := mustRun(t, cfg); rep.Errors[errKeyedUnresolved] != 0 {
		t.Errorf("errors %v: a first try refused is not unresolved", rep.Errors)
	}
}

// TestRunTokenModeWithoutTokensFails: a token run in which every login was
// refused did no work, and exits non-zero.
func TestRunTokenModeWithoutTokensFails(t *testing.T) {
	_, cfg := startFakeRouter(t, fakerouter.Options{})
	cfg.Mode = ModeTokens
	cfg.Count = 20
	cfg.Password = "wrong"
	rep := runLoad(t, context.Background(), cfg)
	if err := rep.Err(); err == nil || !strings.Contains(err.Error(), "no token was issued") {
		t.Errorf("Err: got %v, want no token was issued", err)
	}
}

// TestRunInterruptedWhileVerifying stops the run while it waits for
// transactions that are never processed: the report says interrupted, not
// that the transactions were lost.
func TestRunInterruptedWhileVerifying(t *testing.T) {
	_, cfg := startFakeRouter(t, fakerouter.Options{ProcessAfter: time.Hour})
	cfg.Count = 20
	cfg.DrainTimeout = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(500*time.Millisecond, cancel) // the 20 are sent in far less
	rep := runLoad(t, ctx, cfg)
	if rep.Accepted != 20 || rep.Verification == nil || !rep.Verification.Interrupted {
		t.Fatalf("got accepted %d, verification %+v; want 20, interrupted", rep.Accepted, rep.Verification)
	}
	if err := rep.Err(); err == nil || !strings.Contains(err.Error(), "interrupted while verifying") {
		t.Errorf("Err: got %v, want interrupted while verifying", err)
	}
	// No verdict either way: not "fail", which --json said until 2026-12-06.
	if verdict, why := rep.Verdict(); verdict != VerdictNotVerified || !strings.Contains(why, "interrupted") {
		t.Errorf("verdict %s (%s), want not verified: interrupted", verdict, why)
	}
	if n := rep.Errors["queue probe"]; n > 0 {
		t.Errorf("errors: %d queue probe errors from the interruption", n)
	}
}

func TestRunFailsFastOnBadLogin(t *testing.T) {
	_, cfg := startFakeRouter(t, fakerouter.Options{})
	cfg.Count = 10
	cfg.Password = "wrong"
	_, err := Run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") {
		t.Errorf("got %v, want a login error with HTTP 401", err)
	}

	// A user whose token says enabled: false would only collect 403s.
	f, cfg := startFakeRouter(t, fakerouter.Options{})
	cfg.Count = 10
	cfg.Users = []string{"alice", "charlie"}
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), `"charlie" is not enabled`) {
		t.Errorf("a disabled user: got %v, want an error naming charlie", err)
	}
	if n := f.TxRequests.Load(); n != 0 {
		t.Errorf("a disabled user: %d transactions sent, want none", n)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want string // substring of the error; "" for valid
	}{
		{"default with count", func(c *Config) {}, ""},
		{"both duration and count", func(c *Config) { c.Duration = time.Second }, "--duration, --count"},
		{"neither", func(c *Config) { c.Count = 0 }, "--duration, --count"},
		{"bad currency", func(c *Config) { c.Currencies = []string{"usd"} }, "--currencies"},
		{"bad url", func(c *Config) { c.TxURL = "localhost:8080" }, "--tx-url"},
		{"refresh too long", func(c *Config) { c.TokenRefresh = 30 * time.Second }, "--token-refresh"},
		{"zero concurrency", func(c *Config) { c.Concurrency = 0 }, "--concurrency"},
		{"bad verify", func(c *Config) { c.Verify = "some" }, "--verify"},
		{"bad mode", func(c *Config) { c.Mode = "both" }, "--mode"},
		{"verify-via in token mode", func(c *Config) { c.Mode = ModeTokens; c.VerifyVia = ViaRedis }, "--mode token verifies nothing"},
		{"negative count", func(c *Config) { c.Count = -5 }, "--count: -5 is negative"},
		{"negative duration with a count", func(c *Config) { c.Duration = -5 * time.Second }, "--duration: -5s is negative"},
		{"more merchants than workers", func(c *Config) { c.Merchants = 4; c.Concurrency = 2 }, "--merchants: 4 merchants for 2 workers"},
		{"as many merchants as workers", func(c *Config) { c.Merchants = 2; c.Concurrency = 2 }, ""},
		{"rate not a number", func(c *Config) { c.Rate = math.NaN() }, "--rate"},
		{"rate infinite", func(c *Config) { c.Rate = math.Inf(1) }, "--rate"},
		{"rate too small to schedule", func(c *Config) { c.Rate = 1e-12 }, "--rate"},
		{"open loop", func(c *Config) { c.Rate = 2.5 }, ""},
		{"open loop, poisson arrivals", func(c *Config) { c.Rate = 2.5; c.Arrivals = ArrivalsPoisson }, ""},
		{"poisson arrivals in a closed loop", func(c *Config) { c.Arrivals = ArrivalsPoisson }, "--arrivals: poisson spaces an open loop's requests; it needs --rate"},
		{"unknown arrivals", func(c *Config) { c.Rate = 2.5; c.Arrivals = "bursty" }, `--arrivals: "bursty" is not even or poisson`},
		{"idempotency keys", func(c *Config) { c.IdempotencyKeys = true }, ""},
		{"idempotency keys without transactions", func(c *Config) { c.Mode = ModeTokens; c.IdempotencyKeys = true }, "--idempotency-keys: --mode token sends no transactions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig("http://127.0.0.1:8080")
			cfg.Count = 1
			tt.mod(&cfg)
			err := cfg.validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("got %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v, want an error naming %s", err, tt.want)
			}
		})
	}
}

func TestJWTClaims(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	enc := func(claims string) string {
		return "h." + base64.RawURLEncoding.EncodeToString([]byte(claims)) + ".s"
	}
	tests := []struct {
		name         string
		tok          string
		want         time.Time
		wantDisabled bool
	}{
		{"integer exp", enc(`{"exp":1700000030}`), time.Unix(1_700_000_030, 0), false},
		{"fractional exp", enc(`{"exp":1700000030.5}`), time.Unix(1_700_000_030, 500_000_000), false},
		{"no exp", enc(`{"user_id":1}`), now.Add(30 * time.Second), false},
		{"enabled", enc(`{"exp":1700000030,"enabled":true}`), time.Unix(1_700_000_030, 0), false},
		{"not enabled", enc(`{"exp":1700000030,"enabled":false}`), time.Unix(1_700_000_030, 0), true},
		{"not a jwt", "opaque", now.Add(30 * time.Second), false},
		{"bad base64", "h.%%%.s", now.Add(30 * time.Second), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, disabled := jwtClaims(tt.tok, now)
			if !got.Equal(tt.want) || disabled != tt.wantDisabled {
				t.Errorf("got %v, disabled %v; want %v, %v", got, disabled, tt.want, tt.wantDisabled)
			}
		})
	}
}

func TestEndToEnd(t *testing.T) {
	tests := []struct {
		name string
		body string
		want time.Duration
		ok   bool
	}{
		{"rfc3339 processed_at", `{"created_at":"2025-01-01T00:00:00Z","processed_at":"2025-01-01T00:00:00.0025Z","updated_at":"2025-01-01T00:00:01Z"}`, 2500 * time.Microsecond, true},
		{"updated_at fallback", `{"created_at":"2025-01-01T00:00:00Z","updated_at":"2025-01-01T00:00:00.001Z"}`, time.Millisecond, true},
		{"enqueued_at preferred", `{"enqueued_at":"2025-01-01T00:00:00.001Z","created_at":"2025-01-01T00:00:00Z","processed_at":"2025-01-01T00:00:00.003Z"}`, 2 * time.Millisecond, true},
		{"unix nanoseconds", `{"created_at":1735689600000000000,"processed_at":1735689600004000000}`, 4 * time.Millisecond, true},
		{"unix milliseconds string", `{"created_at":"1735689600000","processed_at":"1735689600007"}`, 7 * time.Millisecond, true},
		{"unix seconds float", `{"created_at":1735689600.5,"processed_at":1735689601}`, 500 * time.Millisecond, true},
		{"missing created", `{"processed_at":"2025-01-01T00:00:00Z"}`, 0, false},
		{"null processed", `{"created_at":"2025-01-01T00:00:00Z","processed_at":null}`, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b statusBody
			if err := json.Unmarshal([]byte(tt.body), &b); err != nil {
				t.Fatal(err)
			}
			got, ok := b.endToEnd()
			if ok != tt.ok || (ok && (got-tt.want).Abs() > time.Microsecond) {
				t.Errorf("got %v, %v, want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestTxBody(t *testing.T) {
	cfg := testConfig("http://x")
	w := &worker{}
	w.rng = newTestRand()
	for _, bearer := range []bool{false, true} {
		cfg.Bearer = bearer
		for _, tok := range []string{"a.b-c_d.e", `we"ird`} {
			amount, currency := w.drawTx(&cfg)
			body := w.txBody(&cfg, tok, amount, currency)
			var got struct {
				Token    *string `json:"token"`
				Amount   int64   `json:"amount"`
				Currency string  `json:"currency"`
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("body %s: %v", body, err)
			}
			if bearer != (got.Token == nil) || !bearer && *got.Token != tok {
				t.Errorf("bearer=%v: token field of %s, want token %q in body only without bearer", bearer, body, tok)
			}
			if got.Amount < 1 || got.Amount > cfg.MaxAmount || !currencyRE.MatchString(got.Currency) {
				t.Errorf("body %s: amount or currency out of range", body)
			}
			if got.Amount != amount || got.Currency != currency {
				t.Errorf("body %s: want the amount and currency drawn, %d %s", body, amount, currency)
			}
		}
	}
}

func equalCounts(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func newTestRand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

// TestRunOpenLoopInterruptCountsOnlySentRequests: after Ctrl-C in an
// open-loop run, the workers keep draining the buffered due times
// (4*Concurrency of them) and call one() for each; h1conn.do refuses at once
// with ctx.Err(), yet one() counts each as sent and as "tx interrupted in
// flight". The report then claims requests that never left the process.
func TestRunOpenLoopInterruptCountsOnlySentRequests(t *testing.T) {
	f := fakerouter.New(fakerouter.Options{})
	var seen atomic.Int64
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /auth/token", f.Token)
	mux.HandleFunc("POST /transaction/transaction", func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		select { // hold every request until the run is interrupted
		case <-r.Context().Done():
		case <-release:
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })

	cfg := testConfig(srv.URL)
	cfg.Concurrency = 2
	cfg.Rate = 100000
	cfg.Count = 1000000
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// Interrupt once both workers are blocked in flight (bounded wait).
		for i := 0; i < 5000 && seen.Load() < int64(cfg.Concurrency); i++ {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	rep := runLoad(t, ctx, cfg)
	// Requests cut in flight may or may not have reached the handler, but
	// never more than Concurrency of them can be in flight.
	if max := seen.Load() + int64(cfg.Concurrency); rep.Sent > max {
		t.Errorf("tx_sent %d, but the server saw %d requests and at most %d were in flight: requests never sent are counted (errors %v)",
			rep.Sent, seen.Load(), cfg.Concurrency, rep.Errors)
	}
	if n := rep.Errors["tx interrupted in flight"]; n > int64(cfg.Concurrency) {
		t.Errorf("%d 'tx interrupted in flight' with only %d workers", n, cfg.Concurrency)
	}
}

// TestRunLookupFailuresAreUnverified: lookups that keep failing say nothing
// of the transaction; the run fails, but not as "never processed".
func TestRunLookupFailuresAreUnverified(t *testing.T) {
	_, cfg := startFakeRouter(t, fakerouter.Options{StatusDown: true})
	cfg.Count = 20
	cfg.VerifyVia = ViaHTTP
	cfg.DrainTimeout = 200 * time.Millisecond
	rep := runLoad(t, context.Background(), cfg)
	v := rep.Verification
	if v.Unverified != 20 || v.Missing != 0 || v.Queued != 0 || v.Lost() != 0 {
		t.Errorf("got unverified %d, missing %d, queued %d; want 20, 0, 0", v.Unverified, v.Missing, v.Queued)
	}
	err := rep.Err()
	if err == nil || !strings.Contains(err.Error(), "20 of 20 checked transactions could not be looked up") || strings.Contains(err.Error(), "never processed") {
		t.Errorf("Err: got %v, want could not be looked up, not never processed", err)
	}
	if v.Drained {
		t.Error("drained: got true with no status known")
	}
}

// TestRunDuplicateIDsFail: two accepted transactions under one id cannot
// both be accounted for by its one status record.
func TestRunDuplicateIDsFail(t *testing.T) {
	_, cfg := startFakeRouter(t, fakerouter.Options{OneID: true})
	cfg.Count = 10
	cfg.Merchants = 1 // one user: the one record is theirs
	rep := runLoad(t, context.Background(), cfg)
	if got := rep.Verification.DuplicateIDs; got != 9 {
		t.Errorf("duplicate ids: got %d, want 9", got)
	}
	if err := rep.Err(); err == nil || !strings.Contains(err.Error(), "9 accepted answers repeated an id") {
		t.Errorf("Err: got %v, want 9 repeated ids", err)
	}
}

// TestRunClosedLoopLatencyExcludesLogin: in closed loop a transaction's
// latency starts with its request, not with a token refresh before it.
func TestRunClosedLoopLatencyExcludesLogin(t *testing.T) {
	// Logged in before the load, the merchant's token lasts 1.6 s and is
	// replaced 0.5 s before that, within the 1.5 s load, by a 1 s login.
	_, cfg := startFakeRouter(t, fakerouter.Options{LoginDelay: time.Second, TokenTTL: 1600 * time.Millisecond})
	cfg.Concurrency = 2
	cfg.Merchants = 1
	cfg.Duration = 1500 * time.Millisecond
	cfg.TokenRefresh = 500 * time.Millisecond
	rep := runLoad(t, context.Background(), cfg)
	if rep.Tokens == 0 {
		t.Fatal("no token was refreshed during the load: the test proves nothing")
	}
	// The fake answers a transaction in far less than a second; only the
	// login counted into it would reach that.
	if got := rep.Latency["tx"].Max; got >= 1000 {
		t.Errorf("tx latency max: got %.1f ms, want < 1000 (the 1 s login counted in)", got)
	}
	if got := rep.Latency["token"].P50; got < 1000 {
		t.Errorf("token latency p50: got %.1f ms, want >= 1000 (the fake's delay)", got)
	}
}

func TestLatencyCountsClampedValues(t *testing.T) {
	l := newLatency()
	l.record(time.Millisecond)
	l.record(25 * time.Minute)
	p := l.summary()
	if p.Count != 2 || p.Clamped != 1 {
		t.Errorf("got count %d, clamped %d; want 2, 1", p.Count, p.Clamped)
	}
	rep := &Report{Mode: ModeTokens, Tokens: 2, Latency: map[string]Percentiles{"token": p}}
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "token: 1 above 10 min") {
		t.Errorf("text report does not say a value was clamped:\n%s", b.String())
	}
}

func TestWriteTextSmallRate(t *testing.T) {
	rep := &Report{Mode: ModeTransactions, Rate: 0.25, Arrivals: ArrivalsEven, Accepted: 1, Seed: 7}
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "open loop at 0.25/s (even arrivals)") || !strings.Contains(b.String(), ", seed 7\n") {
		t.Errorf("got %q, want the rate 0.25/s, its arrivals and the seed", b.String())
	}
}

// Without a queue probe the drain is read from the statuses. A transaction
// the status endpoint says was processed 5 s after it was created was not
// processed before its answer came plus 5 s, whenever the lookups ran: the
// drain is at least that long after the load, not 0 because no lookup
// happened to see it queued.
func TestStatusDrainIsNotBeforeTheLastProcessing(t *testing.T) {
	const took = 5 * time.Second
	var n atomic.Int64
	created := time.Now()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /auth/token", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"token": "h.e30.s"})
	})
	mux.HandleFunc("POST /transaction/transaction", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"id": fmt.Sprintf("tx%d", n.Add(1)), "status": "queued"})
	})
	mux.HandleFunc("GET /transaction/transactions/{id}", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "processed", "created_at": created, "processed_at": created.Add(took)})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	cfg := testConfig(srv.URL)
	cfg.Count = 20
	cfg.Concurrency = 2
	rep := runLoad(t, context.Background(), cfg)
	v := rep.Verification
	if v == nil || !v.Drained || v.DrainMethod != "status" || v.Processed != 20 {
		t.Fatalf("got %+v, want 20 processed, drained by status", v)
	}
	// The last answer came at most the load's length before its end.
	if min := (took - time.Duration(rep.Elapsed*float64(time.Second))).Seconds(); v.DrainSeconds < min {
		t.Errorf("drain: got %.3f s, want at least %.3f (each transaction took %v after its creation)", v.DrainSeconds, min, took)
	}
}

// TestRunOpenLoopReportsFallingBehind: an open loop whose workers are all
// busy when requests fall due sends them late, in a burst once a worker is
// free, and measures their latency from the due time (no coordinated
// omission). The report must also say that the schedule was not kept:
// otherwise a generator short of connections (-c) or of CPU passes its own
// queueing off as the platform's latency, at a rate it never sent. Here one
// worker meets a router that takes 50 ms per transaction at 100/s.
func TestRunOpenLoopReportsFallingBehind(t *testing.T) {
	srv := startSlowRouter(t, func() { time.Sleep(50 * time.Millisecond) })
	cfg := testConfig(srv.URL)
	cfg.Concurrency, cfg.Merchants = 1, 1
	cfg.Rate, cfg.Count = 100, 10
	rep := runLoad(t, context.Background(), cfg)
	if err := rep.Err(); err != nil {
		t.Fatalf("run failed: %v", err)
	}
	// The 10th was due at 90 ms and sent after 9 answers of 50 ms.
	if p := rep.Latency["tx"]; p.Max < 400 {
		t.Errorf("tx latency max %.1f ms, want at least 400 (from the due time)", p.Max)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(js, &fields); err != nil {
		t.Fatal(err)
	}
	late, _ := fields["late_starts"].(float64)
	lag, _ := fields["max_start_lag_ms"].(float64)
	if late < 8 || lag < 300 || !strings.Contains(text.String(), "behind schedule: ") {
		t.Errorf("late_starts %v, max_start_lag_ms %v, want at least 8 and 300, and a line saying the schedule was not kept:\n%s", late, lag, text.String())
	}
}

// TestRunDurationRateIsNotDilutedByAStraggler: a --duration run's rates are
// those of its duration. One transaction the router holds for 3 s, taken up
// just before a 1 s closed loop ends, kept the load phase open until its
// answer while every other worker had stopped: accepted/s was the second's
// work divided by 4 s.
func TestRunDurationRateIsNotDilutedByAStraggler(t *testing.T) {
	start := time.Now()
	var held atomic.Bool
	srv := startSlowRouter(t, func() {
		if time.Since(start) > 900*time.Millisecond && held.CompareAndSwap(false, true) {
			time.Sleep(3 * time.Second)
		} else {
			time.Sleep(5 * time.Millisecond)
		}
	})
	cfg := testConfig(srv.URL)
	cfg.Concurrency, cfg.Merchants = 2, 1
	cfg.Duration = time.Second
	rep := runLoad(t, context.Background(), cfg)
	if err := rep.Err(); err != nil {
		t.Fatalf("run failed: %v", err)
	}
	if !held.Load() || rep.Elapsed < 2.5 {
		t.Fatalf("no transaction was held past the end (elapsed %.2fs): the test proves nothing", rep.Elapsed)
	}
	// Two workers at about 5 ms each, one of them for ~0.9 s only: far
	// more than 150/s, whatever the machine, over the second of the load.
	if got, want := rep.AcceptedPerSec, float64(rep.Accepted-1)/cfg.Duration.Seconds()*0.9; got < want {
		t.Errorf("accepted %d (%.0f/s) in a %v run with a straggler answered %.2fs after the start: want at least %.0f/s",
			rep.Accepted, got, cfg.Duration, rep.Elapsed, want)
	}
}

// startSlowRouter serves the fake router's routes, each transaction after
// wait returns.
func startSlowRouter(t *testing.T, wait func()) *httptest.Server {
	t.Helper()
	f := fakerouter.New(fakerouter.Options{})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /auth/token", f.Token)
	mux.HandleFunc("POST /transaction/transaction", func(w http.ResponseWriter, r *http.Request) {
		wait()
		f.Transaction(w, r)
	})
	mux.HandleFunc("GET /transaction/transactions/{id}", f.Status)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}
