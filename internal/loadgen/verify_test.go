package loadgen

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme-payments/platform/internal/loadgen/fakerouter"
	"github.com/acme-payments/platform/internal/redistest"
)

// fakeWith serves the fake router on a loopback httptest server, with its
// transaction or status endpoint replaced by tx or status when they are not
// nil (each given the fake, to hand requests on to); newConns counts the
// connections clients made to it.
func fakeWith(t *testing.T, opts fakerouter.Options, tx, status func(*fakerouter.Router) http.HandlerFunc) (srv *httptest.Server, newConns *atomic.Int64) {
	t.Helper()
	f := fakerouter.New(opts)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /auth/token", f.Token)
	txHandler, statusHandler := http.HandlerFunc(f.Transaction), http.HandlerFunc(f.Status)
	if tx != nil {
		txHandler = tx(f)
	}
	if status != nil {
		statusHandler = status(f)
	}
	mux.HandleFunc("POST /transaction/transaction", txHandler)
	mux.HandleFunc("GET /transaction/transactions/{id}", statusHandler)
	srv = httptest.NewUnstartedServer(mux)
	newConns = new(atomic.Int64)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			newConns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, newConns
}

// mustRun runs cfg, which must not fail to start.
func mustRun(t *testing.T, cfg Config) *Report {
	t.Helper()
	rep := runLoad(t, t.Context(), cfg)
	return rep
}

// A status endpoint that never answers costs about one request timeout
// past the drain deadline, not one per transaction: before, 20 lookups two
// at a time with a 250 ms timeout took 2.5 s, and the defaults (32 at a
// time, 10 s) would take hours for a long run.
func TestVerificationGivesUpOnASilentStatusEndpoint(t *testing.T) {
	srv, _ := fakeWith(t, fakerouter.Options{}, nil, func(*fakerouter.Router) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	})
	cfg := testConfig(srv.URL)
	cfg.Count, cfg.Concurrency = 20, 2
	cfg.RequestTimeout, cfg.DrainTimeout = 250*time.Millisecond, 100*time.Millisecond
	rep := mustRun(t, cfg)
	v := rep.Verification
	if v.VerifySeconds > 1.5 {
		t.Errorf("verification took %.2f s with a 250 ms request timeout and a 100 ms drain timeout", v.VerifySeconds)
	}
	if v.Unverified != 20 || rep.Err() == nil {
		t.Errorf("unverified %d of 20, Err %v: want all unverified, and the run failed", v.Unverified, rep.Err())
	}
	if got := rep.Errors["status timeout"] + rep.Errors["status not looked up: lookups failing past the drain timeout"]; got != 20 {
		t.Errorf("errors %v: want the 20 transactions counted once each", rep.Errors)
	}
}

// A transaction whose lookups fail round after round counts once in the
// errors, as the report says (unverified: "see errors"): before, once per
// 20 ms round (280 errors for 20 transactions).
func TestVerificationCountsAFailingLookupOncePerTransaction(t *testing.T) {
	_, cfg := startFakeRouter(t, fakerouter.Options{StatusDown: true})
	cfg.Count = 20
	cfg.VerifyVia = ViaHTTP
	cfg.DrainTimeout = 300 * time.Millisecond
	rep := mustRun(t, cfg)
	if n, u := rep.Errors["status 503"], rep.Verification.Unverified; n != 20 || u != 20 {
		t.Errorf(`errors["status 503"] %d, unverified %d: want 20 and 20`, n, u)
	}
}

// The lookups' connections last the whole verification: a transaction that
// stays queued is looked up every 20 ms until the drain timeout, and each
// round dialled a new connection per worker (355 in 1 s for 8 workers).
func TestVerificationKeepsItsConnections(t *testing.T) {
	srv, newConns := fakeWith(t, fakerouter.Options{LoseEvery: 1}, nil, nil)
	cfg := testConfig(srv.URL)
	cfg.Count = 40
	cfg.DrainTimeout = time.Second
	rep := mustRun(t, cfg)
	if rep.Verification.Queued != 40 {
		t.Fatalf("queued %d, want all 40 (the fake loses every one)", rep.Verification.Queued)
	}
	// The load's 8 connections, a login's, and the lookups' 8.
	if n := newConns.Load(); n > int64(3*cfg.Concurrency) {
		t.Errorf("%d connections to the router for %d workers", n, cfg.Concurrency)
	}
}

// A transaction answered 503 "may be queued" with an id, and found queued
// after the load, must be processed like an accepted one: failed, or still
// queued at the drain deadline, it fails the run. Before, "found" was all
// the report said, and the run passed.
func TestRunFailsWhenAMaybeQueuedTransactionIsNotProcessed(t *testing.T) {
	for _, final := range []string{"queued", "failed", "processed"} {
		t.Run(final, func(t *testing.T) {
			var n atomic.Int64
			srv, _ := fakeWith(t, fakerouter.Options{}, func(f *fakerouter.Router) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					if n.Add(1) == 3 {
						writeJSON(w, http.StatusServiceUnavailable, map[string]string{"id": "tx_maybe",
							"error": fakerouter.MaybeQueuedText})
						return
					}
					f.Transaction(w, r)
				}
			}, func(f *fakerouter.Router) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					if r.PathValue("id") == "tx_maybe" {
						writeJSON(w, http.StatusOK, map[string]any{"status": final, "created_at": time.Now(), "processed_at": time.Now()})
						return
					}
					f.Status(w, r)
				}
			})
			cfg := testConfig(srv.URL)
			cfg.Count = 10
			cfg.DrainTimeout = 300 * time.Millisecond
			rep := mustRun(t, cfg)
			v := rep.Verification
			wantUnprocessed := int64(1)
			if final == "processed" {
				wantUnprocessed = 0
			}
			if v.MaybeQueued != 1 || v.MaybeQueuedFound != 1 || v.MaybeQueuedUnprocessed != wantUnprocessed {
				t.Errorf("maybe queued %d, found %d, not processed %d; want 1, 1, %d", v.MaybeQueued, v.MaybeQueuedFound, v.MaybeQueuedUnprocessed, wantUnprocessed)
			}
			if verdict, why := rep.Verdict(); (verdict == VerdictPass) != (final == "processed") {
				t.Errorf("verdict %s (%s) with the maybe-queued transaction %s", verdict, why, final)
			}
		})
	}
}

// A 200 without a transaction id was accepted and can never be checked:
// the run fails. Before, it was an error in the list and the verdict
// passed.
func TestRunFailsOnAcceptedAnswersWithoutAnID(t *testing.T) {
	var n atomic.Int64
	srv, _ := fakeWith(t, fakerouter.Options{}, func(f *fakerouter.Router) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1)%5 == 0 {
				writeJSON(w, http.StatusOK, map[string]string{"status": "queued"})
				return
			}
			f.Transaction(w, r)
		}
	}, nil)
	cfg := testConfig(srv.URL)
	cfg.Count = 20
	rep := mustRun(t, cfg)
	if verdict, why := rep.Verdict(); verdict != VerdictFail || !strings.Contains(why, "4 answers of 200 carried no transaction id") {
		t.Errorf("verdict %s (%s), want fail naming the 4 answers without an id", verdict, why)
	}
}

// With --verify none the queue probe alone vouches for the run, and only
// if at least as many entries reached its stream as were accepted: a probe of
// another stream (or another stack's Redis) reads drained at once. Before,
// the run passed with every transaction lost; then it was "not verified",
// which exits 0, though the probe saw them lost (a review).
func TestRunVerifyNoneNeedsTheStreamToGetTheLoad(t *testing.T) {
	srv := redistest.Start(t)
	stream := "loadgen-verify-none"
	if err := srv.Client(t).XGroupCreateMkStream(t.Context(), stream, DefaultGroup, "$").Err(); err != nil {
		t.Fatal(err)
	}
	_, cfg := startFakeRouter(t, fakerouter.Options{LoseEvery: 1}) // its transactions never reach that stream
	cfg.Count = 10
	cfg.Queue = startQueueProbe(t, srv.URL, stream)
	cfg.Verify = VerifyNone
	rep := mustRun(t, cfg)
	verdict, why := rep.Verdict()
	if verdict != VerdictFail || !strings.Contains(why, "stream got 0 entries during the run, fewer than the 10 accepted") || rep.Err() == nil {
		t.Errorf("verdict %s (%s), Err %v; want fail, naming the stream's 0 of 10", verdict, why, rep.Err())
	}
}

// The "may be queued" transactions are looked up until each is final or
// not found, with failed lookups tried again: one failed lookup was taken
// for "never queued", and stopped the lookups of the others, so a run with
// a transaction queued for ever passed.
func TestMaybeQueuedLookupsRetryFailuresAndCheckEveryOne(t *testing.T) {
	var n, flakyLooks atomic.Int64
	srv, _ := fakeWith(t, fakerouter.Options{}, func(f *fakerouter.Router) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			ids := map[int64]string{3: "tx_flaky_then_queued", 4: "tx_never_queued", 5: "tx_stuck", 6: "tx_unreachable"}
			if id, ok := ids[n.Add(1)]; ok {
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"id": id, "error": fakerouter.MaybeQueuedText})
				return
			}
			f.Transaction(w, r)
		}
	}, func(f *fakerouter.Router) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			switch r.PathValue("id") {
			case "tx_flaky_then_queued":
				if flakyLooks.Add(1) == 1 {
					writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "unavailable"})
					return
				}
				writeJSON(w, http.StatusOK, map[string]any{"status": "processed", "created_at": time.Now(), "processed_at": time.Now()})
			case "tx_never_queued":
				writeJSON(w, http.StatusNotFound, map[string]string{"error": "Transaction not found"})
			case "tx_stuck":
				writeJSON(w, http.StatusOK, map[string]any{"status": "queued", "created_at": time.Now()})
			case "tx_unreachable":
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "unavailable"})
			default:
				f.Status(w, r)
			}
		}
	})
	cfg := testConfig(srv.URL)
	cfg.Count, cfg.Concurrency, cfg.Merchants = 12, 1, 1
	cfg.DrainTimeout = 300 * time.Millisecond
	rep := mustRun(t, cfg)
	v := rep.Verification
	if v.MaybeQueued != 4 || v.MaybeQueuedFound != 2 || v.MaybeQueuedUnprocessed != 1 || v.MaybeQueuedUnverified != 1 {
		t.Errorf("maybe queued %d, found %d, not processed %d, unverified %d; want 4, 2 (flaky, stuck), 1 (stuck), 1 (unreachable)",
			v.MaybeQueued, v.MaybeQueuedFound, v.MaybeQueuedUnprocessed, v.MaybeQueuedUnverified)
	}
	if verdict, why := rep.Verdict(); verdict != VerdictFail || !strings.Contains(why, "not processed") || !strings.Contains(why, "could not be looked up") {
		t.Errorf("verdict %s (%s), want fail naming the stuck and the unreachable one", verdict, why)
	}
}

// One lookup failing once, after the drain deadline, is tried again and
// leaves the rest of the lookups alone: it made the 22 transactions after
// it unverified, and a run in which every one was processed failed.
func TestVerificationRidesOutATransientLookupError(t *testing.T) {
	var looks atomic.Int64
	srv, _ := fakeWith(t, fakerouter.Options{}, nil, func(f *fakerouter.Router) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(20 * time.Millisecond) // so that the deadline passes during the first round
			if looks.Add(1) == 8 {
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "unavailable"})
				return
			}
			f.Status(w, r)
		}
	})
	cfg := testConfig(srv.URL)
	cfg.Count, cfg.Concurrency, cfg.Merchants = 30, 1, 1
	cfg.DrainTimeout = 100 * time.Millisecond
	rep := mustRun(t, cfg)
	v := rep.Verification
	if v.Processed != 30 || v.Unverified != 0 {
		t.Errorf("processed %d, unverified %d of 30; want all processed", v.Processed, v.Unverified)
	}
	if verdict, why := rep.Verdict(); verdict != VerdictPass {
		t.Errorf("verdict %s (%s), want pass", verdict, why)
	}
}

// The report counts every 503 "may be queued", whatever --verify: with
// --verify none, until 2026-12-07, maybe_queued counted only those of
// keyed transactions, and the text report had no "maybe queued" line for
// the others (they were only under errors).
func TestMaybeQueuedIsCountedWithVerifyNone(t *testing.T) {
	for _, verify := range []Verify{VerifyAll, VerifyNone} {
		t.Run(string(verify), func(t *testing.T) {
			_, cfg := startFakeRouter(t, fakerouter.Options{MaybeQueuedEvery: 5})
			cfg.Count, cfg.Verify = 20, verify
			rep := mustRun(t, cfg)
			v := rep.Verification
			if n := rep.Errors[errTxMaybeQueued]; n != 4 || v.MaybeQueued != n {
				t.Errorf("maybe queued %d, errors %v: want the 4 answers counted in both", v.MaybeQueued, rep.Errors)
			}
			var b strings.Builder
			_ = rep.WriteText(&b)
			if !strings.Contains(b.String(), "maybe queued  4 answered") {
				t.Errorf("text report has no maybe queued line:\n%s", b.String())
			}
		})
	}
}

// TestSampleDrawsWhatAShuffleOfTheWholeListDraws: sample shuffles only the
// positions it draws, so as not to copy a run's whole accepted list; for a
// --seed to repeat the positions sampled (Report.Seed), it must draw what a
// Fisher-Yates shuffle of a copy of the whole list, stopped after n, drew.
func TestSampleDrawsWhatAShuffleOfTheWholeListDraws(t *testing.T) {
	txs := make([]acceptedTx, 1000)
	for i := range txs {
		txs[i] = acceptedTx{id: parseTxID(fmt.Sprintf("tx_%032x", i)), merchant: int32(i)}
	}
	wholeShuffle := func(n int, seed uint64) []acceptedTx {
		rng := rand.New(rand.NewPCG(seed, 0x5eed))
		c := append([]acceptedTx(nil), txs...)
		for i := 0; i < n; i++ {
			j := i + rng.IntN(len(c)-i)
			c[i], c[j] = c[j], c[i]
		}
		return c[:n]
	}
	for _, n := range []int{1, 3, 100, 999, 1000} {
		for _, seed := range []uint64{1, 2, 42} {
			got, want := sample(txs, n, seed), wholeShuffle(n, seed)
			if !slices.Equal(got, want) {
				t.Errorf("n %d seed %d: got %v, want %v", n, seed, got[:min(n, 5)], want[:min(n, 5)])
			}
			seen := make(map[int32]bool, n)
			for _, tx := range got {
				if seen[tx.merchant] {
					t.Fatalf("n %d seed %d: position %d drawn twice", n, seed, tx.merchant)
				}
				seen[tx.merchant] = true
			}
		}
	}
}
