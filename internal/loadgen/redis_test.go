package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme-payments/platform/internal/loadgen/fakerouter"
	"github.com/acme-payments/platform/internal/redistest"
	"github.com/acme-payments/platform/internal/txqueue"
	"github.com/redis/go-redis/v9"
)

// TestRunVerifiesThroughRedis runs the generator against an HTTP front that
// enqueues with the real txqueue on a real Redis, with and without the real
// consumer draining it, and checks the verification through the queue probe
// and the status records.
func TestRunVerifiesThroughRedis(t *testing.T) {
	tests := []struct {
		name     string
		consumer bool
		forget   bool // every 10th answer's id was never enqueued: no status record
		ok       bool
	}{
		{"consumer running: all processed", true, false, true},
		{"no consumer: all lost", false, false, false},
		{"consumer running, 30 accepted with no record: lost", true, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			answer := func(int64) frontAnswer { return answerQueued }
			if tt.forget {
				answer = forgetEvery(10)
			}
			api, redisURL := startEnqueuingFront(t, tt.consumer, answer)

			cfg := testConfig(api.URL)
			cfg.Count = 300
			cfg.Queue = startQueueProbe(t, redisURL, DefaultStream)
			cfg.DrainTimeout = 500 * time.Millisecond
			if !tt.consumer {
				cfg.DrainTimeout = 100 * time.Millisecond
			}
			rep := runLoad(t, context.Background(), cfg)
			v := rep.Verification
			if rep.Accepted != 300 || v.Checked != 300 {
				t.Fatalf("accepted %d checked %d, want 300 300 (errors %v)", rep.Accepted, v.Checked, rep.Errors)
			}
			if err := rep.Err(); (err == nil) != tt.ok {
				t.Errorf("Err: got %v, want ok=%v", err, tt.ok)
			}
			switch {
			case tt.forget:
				if !v.Drained || v.Processed != 270 || v.Missing != 30 || v.GroupTaken != 270 || v.StreamAdded != 270 {
					t.Errorf("got drained %v processed %d missing %d group took %d stream added %d, want true 270 30 270 270",
						v.Drained, v.Processed, v.Missing, v.GroupTaken, v.StreamAdded)
				}
			case tt.consumer:
				if !v.Drained || v.Processed != 300 || v.GroupTaken != 300 || v.StreamAdded != 300 || rep.Latency["enqueue_to_processed"].Count != 300 {
					t.Errorf("got drained %v processed %d group took %d stream added %d e2e count %d, want true 300 300 300 300",
						v.Drained, v.Processed, v.GroupTaken, v.StreamAdded, rep.Latency["enqueue_to_processed"].Count)
				}
			case v.Drained || v.Queued != 300:
				t.Errorf("got drained %v queued %d, want false 300", v.Drained, v.Queued)
			}
			if len(rep.Errors) != 0 {
				t.Errorf("errors: got %v, want none", rep.Errors)
			}
		})
	}
}

// frontAnswer is what startEnqueuingFront does with a transaction.
type frontAnswer int

const (
	// answerQueued: enqueued, answered 200 with its id.
	answerQueued frontAnswer = iota
	// answerForgotten: answered 200 with an id that was never enqueued (a
	// lost transaction).
	answerForgotten
	// answerMaybeQueued: enqueued, and answered as core-api answers when
	// Redis's answer came too late: a 503 "may be queued" with its id, or,
	// sent with an Idempotency-Key, without one.
	answerMaybeQueued
	// answerDeadLettered: enqueued in a currency the consumer's PSP step
	// refuses, and answered 200 with its id: with one delivery allowed, the
	// consumer dead-letters it (status failed, entry in the dead-letter
	// stream, acked: the group drains).
	answerDeadLettered
	// answerOthersDeadLetter: enqueued and answered as answerQueued, and
	// another client's transaction is dead-lettered beside it.
	answerOthersDeadLetter
)

// refusedCurrency is the currency the test consumer's PSP step refuses.
const refusedCurrency = "XXX"

// forgetEvery answers every n-th transaction answerForgotten, the others
// answerQueued.
func forgetEvery(n int64) func(int64) frontAnswer {
	return func(i int64) frontAnswer {
		if i%n == 0 {
			return answerForgotten
		}
		return answerQueued
	}
}

// startEnqueuingFront starts a real Redis with the consumer group in place
// (with consumer, a txqueue consumer that processes every entry) and an HTTP
// front for the generator: logins get a token, and the n-th transaction
// (from 1) is handled as answer(n) says, with its Idempotency-Key if it has
// one (a replay is answered with Idempotent-Replayed: true). It returns the
// front and the Redis's URL.
func startEnqueuingFront(t *testing.T, consumer bool, answer func(n int64) frontAnswer) (*httptest.Server, string) {
	t.Helper()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := rdb.XGroupCreateMkStream(ctx, txqueue.Stream, txqueue.Group, "$").Err(); err != nil {
		t.Fatal(err)
	}
	if consumer {
		c, err := txqueue.NewConsumer(rdb, txqueue.ConsumerConfig{Name: "test", Block: 100 * time.Millisecond, MaxDeliveries: 1},
			txqueue.PSPFunc(func(_ context.Context, m txqueue.Message) error {
				if m.Currency == refusedCurrency {
					return errors.New("refused")
				}
				return nil
			}),
			slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { defer close(done); _ = c.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	q := txqueue.NewQueue(rdb, time.Hour)
	var answered atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("POST /auth/token", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]string{"token": "h.e30.s"})
	})
	mux.HandleFunc("POST /transaction/transaction", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Amount   int64
			Currency string
		}
		_ = json.NewDecoder(r.Body).Decode(&in)
		n := answered.Add(1)
		a := answer(n)
		if a == answerForgotten {
			writeJSON(w, 200, map[string]any{"id": fmt.Sprintf("tx_%032x", n), "status": "queued"})
			return
		}
		key := r.Header.Get("Idempotency-Key")
		switch a {
		case answerDeadLettered:
			in.Currency = refusedCurrency
		case answerOthersDeadLetter:
			if err := rdb.XAdd(r.Context(), &redis.XAddArgs{Stream: txqueue.DeadLetterStream,
				Values: []string{"entry.id", fmt.Sprintf("tx_%032x", 1<<40+n), "reason", "another client's"}}).Err(); err != nil {
				writeJSON(w, 500, map[string]string{"error": err.Error()})
				return
			}
		}
		e, err := q.Enqueue(r.Context(), txqueue.Transaction{UserID: 1, Amount: in.Amount, Currency: in.Currency}, key)
		switch {
		case err != nil:
			writeJSON(w, 503, map[string]string{"error": err.Error()})
		case a == answerMaybeQueued && key != "":
			writeJSON(w, 503, map[string]any{"error": fakerouter.MaybeQueuedKeyedText})
		case a == answerMaybeQueued:
			writeJSON(w, 503, map[string]any{"id": e.ID, "error": fakerouter.MaybeQueuedText})
		default:
			if e.Replayed {
				w.Header().Set("Idempotent-Replayed", "true")
			}
			writeJSON(w, 200, map[string]any{"id": e.ID, "status": "queued"})
		}
	})
	api := httptest.NewServer(mux)
	t.Cleanup(api.Close)
	return api, srv.URL
}

// startQueueProbe opens a queue probe on the Redis at url, for stream and
// the connector's group, closed when the test ends.
func startQueueProbe(t *testing.T, url, stream string) *QueueProbe {
	t.Helper()
	probe, err := NewQueueProbe(url, stream, DefaultGroup)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { probe.Close() })
	return probe
}

// writeJSON answers v as JSON with status, as the router's services do.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// A queue probe that fails after the load (here: its stream is deleted as
// the last transaction is accepted, with an entry never delivered, so it
// never reads drained) is retried every 2 ms until the drain timeout; its
// error counts once, not once per attempt.
func TestRunCountsAFailingQueueProbeOnce(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	stream := "stream-" + t.Name()
	if err := rdb.XGroupCreateMkStream(ctx, stream, DefaultGroup, "$").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"id", "never-delivered"}}).Err(); err != nil {
		t.Fatal(err)
	}
	f, cfg := startFakeRouter(t, fakerouter.Options{})
	cfg.Count = 10
	cfg.Queue = startQueueProbe(t, srv.URL, stream)
	cfg.Verify = VerifyNone
	cfg.DrainTimeout = 300 * time.Millisecond
	deleted := make(chan error, 1)
	go func() {
		for range 5000 { // up to 5 s
			if f.Accepted.Load() >= cfg.Count {
				deleted <- rdb.Del(ctx, stream).Err()
				return
			}
			time.Sleep(time.Millisecond)
		}
		deleted <- errors.New("the load never reached its count")
	}()
	rep := runLoad(t, ctx, cfg)
	if err := <-deleted; err != nil {
		t.Fatalf("delete the stream: %v", err)
	}
	if n := rep.Errors["queue probe"]; n != 1 {
		t.Errorf(`errors["queue probe"]: got %d, want 1 (errors %v)`, n, rep.Errors)
	}
	if rep.Verification.Drained {
		t.Error("drained: got true from a probe that failed")
	}
}

// TestRunSampleFailsWhenTheStreamGotFewerThanAccepted: with --verify sample
// and the queue probe, the sample vouches only for the transactions it
// checked, and the probe's count is what vouches for the rest. In each row
// every 10th accepted answer carries an id that was never enqueued (the
// connector drains everything that was), and the sample of 3 (seed 2, one
// worker, so one order of answers) happens to look up none of them: the
// stream's count must fail the run.
//   - The stream got 90 entries for 100 accepted.
//   - 10 more answered 503 "may be queued" (with an id) were queued all the
//     same: the stream got 90 entries for 90 accepted. Found queued by their
//     ids, those 10 count against the stream too. Until 2026-12-07 that run
//     passed.
func TestRunSampleFailsWhenTheStreamGotFewerThanAccepted(t *testing.T) {
	tests := []struct {
		name                                  string
		answer                                func(n int64) frontAnswer
		wantAccepted, wantStream, wantMaybeQd int64
		wantErr                               string
	}{
		{"10 of 100 accepted lost", forgetEvery(10), 100, 90, 0,
			"the queue probe's stream got 90 entries during the run, fewer than the 100 accepted (statuses checked: 3)"},
		{"10 of 90 accepted lost, 10 that may be queued were", func(n int64) frontAnswer {
			switch n % 10 {
			case 0:
				return answerForgotten
			case 5:
				return answerMaybeQueued
			}
			return answerQueued
		}, 90, 90, 10,
			`the queue probe's stream got 90 entries during the run, fewer than the 90 accepted and the 10 answered "may be queued" found queued (statuses checked: 3)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := sampledRun(t, tt.answer)
			cfg.Seed = 2
			rep := runLoad(t, context.Background(), cfg)
			v := rep.Verification
			if rep.Accepted != tt.wantAccepted || v.Checked != 3 || !v.Drained || v.StreamAdded != tt.wantStream ||
				v.MaybeQueued != tt.wantMaybeQd || v.MaybeQueuedFound != tt.wantMaybeQd {
				t.Fatalf("accepted %d checked %d drained %v stream added %d may be queued %d found %d, want %d 3 true %d %d %d (errors %v)",
					rep.Accepted, v.Checked, v.Drained, v.StreamAdded, v.MaybeQueued, v.MaybeQueuedFound,
					tt.wantAccepted, tt.wantStream, tt.wantMaybeQd, tt.wantMaybeQd, rep.Errors)
			}
			if v.Processed != 3 {
				t.Fatalf("the sample found %d of 3 processed: it hit a lost one, and the test proves nothing", v.Processed)
			}
			if err := rep.Err(); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				verdict, why := rep.Verdict()
				t.Errorf("Err: got %v (verdict %s: %s), want %q", err, verdict, why, tt.wantErr)
			}
		})
	}
}

// TestRunSampleCountsAKeyedMaybeQueuedOnce: with --idempotency-keys, a 503
// "may be queued" has no id; its retry is answered as a replay, so the
// transaction is counted accepted, and found queued by the replay. Its one
// entry in the stream must count once against the stream's count, as the
// accepted one it is: taken also for one found by id, it made the bound
// 111 for a stream of 100 entries, and this clean run failed. Every 10th
// request (the 5th, 15th, ..., 105th: 111 requests for 100 transactions)
// is stored and answered "may be queued"; the request after it is its
// retry.
func TestRunSampleCountsAKeyedMaybeQueuedOnce(t *testing.T) {
	cfg := sampledRun(t, func(n int64) frontAnswer {
		if n%10 == 5 {
			return answerMaybeQueued
		}
		return answerQueued
	})
	cfg.IdempotencyKeys = true // a retry follows its 503, one worker
	rep := runLoad(t, context.Background(), cfg)
	v := rep.Verification
	if rep.Accepted != 100 || rep.Sent != 111 || v.Checked != 3 || !v.Drained || v.StreamAdded != 100 ||
		v.MaybeQueued != 11 || v.MaybeQueuedFound != 11 || v.MaybeQueuedFoundByID != 0 {
		t.Fatalf("accepted %d sent %d checked %d drained %v stream added %d may be queued %d found %d (by id %d), want 100 111 3 true 100 11 11 (0) (errors %v)",
			rep.Accepted, rep.Sent, v.Checked, v.Drained, v.StreamAdded, v.MaybeQueued, v.MaybeQueuedFound, v.MaybeQueuedFoundByID, rep.Errors)
	}
	if err := rep.Err(); err != nil {
		t.Errorf("Err: got %v, want nil: every transaction was stored once, and processed", err)
	}
}

// sampledRun starts a front that answers as answer says (startEnqueuingFront,
// with a consumer) and returns the configuration of a run of 100
// transactions through it, one worker (one order of answers, so one sample
// for a seed), statuses sampled 3 at a time, and the queue probe on its
// Redis.
func sampledRun(t *testing.T, answer func(n int64) frontAnswer) Config {
	t.Helper()
	api, redisURL := startEnqueuingFront(t, true, answer)
	cfg := testConfig(api.URL)
	cfg.Concurrency, cfg.Merchants = 1, 1
	cfg.Count = 100
	cfg.Verify, cfg.VerifySample = VerifySample, 3
	cfg.Queue = startQueueProbe(t, redisURL, DefaultStream)
	cfg.DrainTimeout = 2 * time.Second
	return cfg
}

// TestRunFailsWhenAcceptedTransactionsWereDeadLettered: the connector
// dead-letters a transaction it could not charge: status failed, entry in
// the dead-letter stream, and acked, so the group drains and the stream got
// an entry for every accepted transaction. The status lookups of --verify
// all find it failed; but a sample that misses it (seed 2, one worker: the
// 10th, 20th, ... are not among the 3), or --verify none, had only the
// queue probe to vouch for the rest, and it passed the run with 10 of 100
// accepted transactions failed. The probe reads the dead-letter stream's
// entries of the run, matched by transaction id: another client's dead
// letter in it at the same time is not this run's failure.
func TestRunFailsWhenAcceptedTransactionsWereDeadLettered(t *testing.T) {
	deadEvery10th := func(n int64) frontAnswer {
		if n%10 == 0 {
			return answerDeadLettered
		}
		return answerQueued
	}
	othersEvery10th := func(n int64) frontAnswer {
		if n%10 == 0 {
			return answerOthersDeadLetter
		}
		return answerQueued
	}
	tests := []struct {
		name        string
		answer      func(n int64) frontAnswer
		verify      Verify
		wantChecked int64
		wantFailed  int64
		wantDead    int64
		wantErr     string // "": passes
	}{
		{"sample misses them", deadEvery10th, VerifySample, 3, 0, 10,
			"10 of 100 accepted transactions were dead-lettered"},
		{"verify none", deadEvery10th, VerifyNone, 0, 0, 10,
			"10 of 100 accepted transactions were dead-lettered"},
		{"verify all finds them failed", deadEvery10th, VerifyAll, 100, 10, 10,
			"10 of 100 checked transactions failed"},
		{"another client's dead letters: sample", othersEvery10th, VerifySample, 3, 0, 0, ""},
		{"another client's dead letters: none", othersEvery10th, VerifyNone, 0, 0, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := sampledRun(t, tt.answer)
			cfg.Seed = 2
			cfg.Verify = tt.verify
			if tt.verify != VerifySample {
				cfg.VerifySample = 0
			}
			rep := runLoad(t, context.Background(), cfg)
			v := rep.Verification
			if rep.Accepted != 100 || v.Checked != tt.wantChecked || !v.Drained || v.StreamAdded != 100 || v.Failed != tt.wantFailed {
				t.Fatalf("accepted %d checked %d drained %v stream added %d failed %d, want 100 %d true 100 %d (errors %v)",
					rep.Accepted, v.Checked, v.Drained, v.StreamAdded, v.Failed, tt.wantChecked, tt.wantFailed, rep.Errors)
			}
			if tt.verify == VerifySample && v.Processed != 3 {
				t.Fatalf("the sample found %d of 3 processed: it hit a dead-lettered one, and the test proves nothing", v.Processed)
			}
			if v.DeadLettered != tt.wantDead {
				t.Errorf("dead-lettered: got %d, want %d", v.DeadLettered, tt.wantDead)
			}
			err := rep.Err()
			verdict, why := rep.Verdict()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Err: got %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Err: got %v (verdict %s: %s), want %q", err, verdict, why, tt.wantErr)
			case tt.wantErr != "" && verdict != VerdictFail:
				t.Errorf("verdict: got %s, want %s", verdict, VerdictFail)
			}
		})
	}
}
