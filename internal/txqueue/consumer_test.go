package txqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/acme-payments/platform/internal/logging"
	"github.com/acme-payments/platform/internal/servicetest"
)

// recorder is a PSP that records every charge; fail, when set, decides
// whether a charge fails.
type recorder struct {
	mu      sync.Mutex
	charged []Message
	fail    func(Message) error
}

func (r *recorder) Charge(_ context.Context, m Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.charged = append(r.charged, m)
	if r.fail != nil {
		return r.fail(m)
	}
	return nil
}

// calls counts the charges of transaction id.
func (r *recorder) calls(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.charged {
		if m.ID == id {
			n++
		}
	}
	return n
}

func (r *recorder) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.charged)
}

// fastConfig returns a consumer config with short timeouts for tests.
func fastConfig(name string) ConsumerConfig {
	return ConsumerConfig{
		Name: name, BatchSize: 16, Block: 100 * time.Millisecond,
		VisibilityTimeout: 200 * time.Millisecond, ClaimInterval: 50 * time.Millisecond,
		MaxDeliveries: 3, StatusTTL: time.Hour, ShutdownGrace: 5 * time.Second,
	}
}

// runConsumer runs a consumer until the returned stop is called (or the test
// ends); stop fails the test if Run returned an error or did not return.
func runConsumer(t *testing.T, rdb *redis.Client, cfg ConsumerConfig, psp PSP, log *slog.Logger) (stop func()) {
	t.Helper()
	_, stop = startConsumer(t, rdb, cfg, psp, log)
	return stop
}

// startConsumer is runConsumer that also returns the consumer, for a test
// of its checks.
func startConsumer(t *testing.T, rdb *redis.Client, cfg ConsumerConfig, psp PSP, log *slog.Logger) (c *Consumer, stop func()) {
	t.Helper()
	c = newConsumer(t, rdb, cfg, psp, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: got %v, want nil", err)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("Run did not return within 15s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return c, stop
}

// newConsumer is NewConsumer that fails the test on an error.
func newConsumer(t *testing.T, rdb *redis.Client, cfg ConsumerConfig, psp PSP, log *slog.Logger) *Consumer {
	t.Helper()
	c, err := NewConsumer(rdb, cfg, psp, log)
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	return c
}

// runUntilItsStop runs c until Run returns, which the test makes it do by
// cancelling ctx (from its PSP, with a batch in hand); it fails the test if
// Run returns an error, or has not returned after within.
func runUntilItsStop(t *testing.T, c *Consumer, ctx context.Context, within time.Duration) {
	t.Helper()
	startRun(t, c, ctx)(within)
}

// startRun runs c.Run(ctx) in the background, for a test that acts while it
// runs, and returns wait: it waits for Run to return once ctx is cancelled,
// failing the test if Run returns an error, or has not returned after within.
func startRun(t *testing.T, c *Consumer, ctx context.Context) (wait func(within time.Duration)) {
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	return func(within time.Duration) {
		t.Helper()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
		case <-time.After(within):
			t.Fatalf("Run did not return within %s", within)
		}
	}
}

// checkChargedOnceAfterTheNextConsumer runs the next consumer, with psp,
// until every id is processed and no entry is pending, and checks that psp
// charged each id once in all: what a stopped consumer left was neither
// lost nor charged again.
func checkChargedOnceAfterTheNextConsumer(t *testing.T, rdb *redis.Client, q *Queue, psp *recorder, log *slog.Logger, ids ...string) {
	t.Helper()
	runConsumer(t, rdb, fastConfig("next"), psp, log)
	waitForProcessed(t, q, ids...)
	waitForNothingPending(t, rdb)
	checkChargedOnce(t, psp, ids...)
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

// statusIs reports whether transaction id's record has status want.
func statusIs(q *Queue, id, want string) func() bool {
	return func() bool {
		rec, err := q.Status(context.Background(), id)
		return err == nil && rec.Status == want
	}
}

// pendingCount is the number of entries delivered to Group but not acked.
func pendingCount(t *testing.T, rdb *redis.Client) int64 {
	t.Helper()
	p, err := rdb.XPending(context.Background(), Stream, Group).Result()
	if err != nil {
		t.Fatalf("XPENDING: %v", err)
	}
	return p.Count
}

// waitForProcessed waits until the record of each of ids says processed.
func waitForProcessed(t *testing.T, q *Queue, ids ...string) {
	t.Helper()
	for _, id := range ids {
		waitFor(t, id+" processed", statusIs(q, id, StatusProcessed))
	}
}

// waitForNothingPending waits until every entry delivered to Group is
// acknowledged.
func waitForNothingPending(t *testing.T, rdb *redis.Client) {
	t.Helper()
	waitFor(t, "nothing pending", func() bool { return pendingCount(t, rdb) == 0 })
}

// consumeUntilNothingPending runs a consumer until every entry delivered
// to Group is acknowledged, and stops it.
func consumeUntilNothingPending(t *testing.T, rdb *redis.Client, cfg ConsumerConfig, psp PSP, log *slog.Logger) {
	t.Helper()
	stop := runConsumer(t, rdb, cfg, psp, log)
	waitForNothingPending(t, rdb)
	stop()
}

// chargeCounter is a test PSP's count of its charges of each transaction
// (recorder's calls).
type chargeCounter interface{ calls(id string) int }

// checkChargedOnce fails the test for each of ids that psp did not charge
// exactly once.
func checkChargedOnce(t *testing.T, psp chargeCounter, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if got := psp.calls(id); got != 1 {
			t.Errorf("charges of %s: got %d, want 1", id, got)
		}
	}
}

// checkChargedOnceByEither fails the test for each of ids, the rounds of a
// batch, that a and b together did not charge exactly once.
func checkChargedOnceByEither(t *testing.T, a, b *recorder, ids ...string) {
	t.Helper()
	for i, id := range ids {
		if got := a.calls(id) + b.calls(id); got != 1 {
			t.Errorf("round %d of a's batch: charged %d times (a %d, b %d), want 1", i, got, a.calls(id), b.calls(id))
		}
	}
}

// checkStatus fails the test unless the record of transaction id has
// status want.
func checkStatus(t *testing.T, q *Queue, id, want string) {
	t.Helper()
	if rec, err := q.Status(context.Background(), id); err != nil || rec.Status != want {
		t.Errorf("status of %s: got %+v, %v; want %s", id, rec, err, want)
	}
}

// hasLogLine reports whether some JSON line of logs has every field in want.
func hasLogLine(logs string, want map[string]string) bool {
	for _, line := range strings.Split(logs, "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		ok := true
		for k, v := range want {
			if rec[k] != v {
				ok = false
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// enqueueOneEntry queues one transaction on an empty stream and returns its
// id and its stream entry (for a test to queue the entry again).
func enqueueOneEntry(t *testing.T, rdb *redis.Client, q *Queue) (string, redis.XMessage) {
	t.Helper()
	id := enqueueN(t, q, 1)[0]
	entries, err := rdb.XRange(context.Background(), Stream, "-", "+").Result()
	if err != nil || len(entries) != 1 {
		t.Fatalf("XRANGE: %d entries, %v", len(entries), err)
	}
	return id, entries[0]
}

// queueEntryAgain adds entry's fields to the stream as a new entry: a
// transaction queued twice, as a rerun enqueue did before its script
// guarded against it.
func queueEntryAgain(t *testing.T, rdb *redis.Client, entry redis.XMessage) {
	t.Helper()
	if err := rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: Stream, Values: entry.Values}).Err(); err != nil {
		t.Fatalf("XADD the entry again: %v", err)
	}
}

func enqueueN(t testing.TB, q *Queue, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		res, err := q.Enqueue(context.Background(),
			Transaction{UserID: int64(1 + i%3), Amount: int64(100 + i), Currency: "USD", RequestID: fmt.Sprintf("req-%d", i)}, "")
		if err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
		ids[i] = res.ID
	}
	return ids
}

func TestConsumerProcessesEachOnce(t *testing.T) {
	_, rdb, q := startQueue(t)
	log, logs := testLogger(t)
	ids := enqueueN(t, q, 40) // more than one batch
	psp := &recorder{}
	stop := runConsumer(t, rdb, fastConfig("c1"), psp, log)
	waitForProcessed(t, q, ids...)
	waitForNothingPending(t, rdb)
	stop()

	if got := psp.total(); got != len(ids) {
		t.Errorf("charges: got %d, want %d", got, len(ids))
	}
	for i, id := range ids {
		if got := psp.calls(id); got != 1 {
			t.Errorf("charges of %s: got %d, want 1", id, got)
		}
		rec, _ := q.Status(context.Background(), id)
		if rec.ProcessedAt == nil || rec.ProcessedAt.Before(rec.CreatedAt) || rec.Amount != int64(100+i) {
			t.Errorf("record %s: got %+v, want processed_at after created_at, amount %d", id, rec, 100+i)
		}
	}
	// The request id travels with the message into the connector's log line.
	if !hasLogLine(logs.String(), map[string]string{"msg": "processed", "transaction_id": ids[0], "request_id": "req-0"}) {
		t.Errorf("logs lack a processed line for %s with request_id req-0", ids[0])
	}
}

// TestConsumerChargesATransactionQueuedTwiceOnce: should a transaction's
// entry be in the stream twice (a rerun enqueue before its script guarded
// against it), the connector must charge it once, even with both entries
// in one batch, and acknowledge both.
func TestConsumerChargesATransactionQueuedTwiceOnce(t *testing.T) {
	_, rdb, q := startQueue(t)
	log, _ := testLogger(t)
	id, entry := enqueueOneEntry(t, rdb, q)
	queueEntryAgain(t, rdb, entry)
	psp := &recorder{}
	stop := runConsumer(t, rdb, fastConfig("c1"), psp, log)
	waitForProcessed(t, q, id)
	waitForNothingPending(t, rdb)
	stop()
	if got := psp.calls(id); got != 1 {
		t.Errorf("charges of %s queued twice: got %d, want 1", id, got)
	}
}

// TestConsumerAcksADuplicateOfADeadLetteredTransaction: a transaction queued
// twice whose first entry went to the dead-letter stream. The second entry
// must be acknowledged without a charge (the claim answers "failed before"),
// not left pending, redelivered for ever.
func TestConsumerAcksADuplicateOfADeadLetteredTransaction(t *testing.T) {
	_, rdb, q := startQueue(t)
	ctx := context.Background()
	log, _ := testLogger(t)
	id, entry := enqueueOneEntry(t, rdb, q)
	cfg := fastConfig("c1")
	cfg.MaxDeliveries = 1
	declining := &recorder{fail: func(Message) error { return errors.New("PSP is down") }}
	stop := runConsumer(t, rdb, cfg, declining, log)
	waitFor(t, id+" failed", statusIs(q, id, StatusFailed))
	waitForNothingPending(t, rdb)
	stop()

	queueEntryAgain(t, rdb, entry)
	psp := &recorder{}
	stop = runConsumer(t, rdb, cfg, psp, log)
	waitFor(t, "the duplicate acknowledged", func() bool {
		info, err := rdb.XInfoGroups(ctx, Stream).Result()
		return err == nil && len(info) == 1 && info[0].EntriesRead == 2 && info[0].Pending == 0
	})
	stop()
	if got := psp.calls(id); got != 0 {
		t.Errorf("charges of the dead-lettered transaction's duplicate: got %d, want 0", got)
	}
	checkStatus(t, q, id, StatusFailed)
}

// TestConsumerWarnsForTheRoundInHandAfterAFailedCharge: a dead consumer's
// batch of 32 in rounds of 16, one charge of round 0 failed, round 0's
// record done the consumer's way (releasing the failed claim), round 1
// charged but not recorded. Round 1 is the round in hand: its redelivery
// must carry the at-least-once warning, and the failed one none.
func TestConsumerWarnsForTheRoundInHandAfterAFailedCharge(t *testing.T) {
	_, rdb, q := startQueue(t)
	log, logs := testLogger(t)
	ctx := context.Background()
	batch := readAsDeadConsumer(t, q, 32)
	ids := txIDs(batch)
	claimAsDeadConsumer(t, rdb, batch, time.Millisecond)
	const failedAt = 3
	charged := slices.Concat(batch[:failedAt], batch[failedAt+1:16])
	rec := newRecordCall("dead", "dead", time.Hour, charged, batch[failedAt:failedAt+1], nil)
	if err := recordScript.Run(ctx, rdb, rec.keys, rec.args...).Err(); err != nil {
		t.Fatal(err)
	}
	// Round 1 (16..31) was charged; the consumer died before its record.

	reclaimAsSurvivor(t, rdb, &recorder{}, log, 0)
	for i := failedAt; i < 32; i++ {
		if i > failedAt && i < 16 {
			continue // recorded
		}
		inHand := i >= 16
		if warned := warnedAtLeastOnce(logs.String(), ids[i]); warned != inHand {
			t.Errorf("transaction %d: at-least-once warning %v, want %v", i, warned, inHand)
		}
	}
}

// TestConsumerSlowBatchIsNotTakenOver: consumer a charges a batch in rounds
// of one, each round slow but shorter than half the lease; consumer b runs
// beside it. However long the batch, b must never charge what a charges:
// once half the lease is gone, a's record renews it on the rest of the batch.
func TestConsumerSlowBatchIsNotTakenOver(t *testing.T) {
	const vt = 2 * time.Second
	tests := []struct {
		name   string
		rounds []time.Duration // one per transaction of a's batch
	}{
		{"within the lease", []time.Duration{20 * time.Millisecond, 20 * time.Millisecond}},
		{"uniform pace, 1.2 leases in all", []time.Duration{600 * time.Millisecond, 600 * time.Millisecond, 600 * time.Millisecond, 600 * time.Millisecond}},
		{"after a renewal, a longer round", []time.Duration{450 * time.Millisecond, 520 * time.Millisecond, 400 * time.Millisecond, 950 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rdb, q := startQueue(t)
			log, _ := testLogger(t)
			ids := enqueueN(t, q, len(tt.rounds))
			delay := map[string]time.Duration{}
			for i, id := range ids {
				delay[id] = tt.rounds[i]
			}
			psp := &recorder{}
			var mu sync.Mutex
			var overlap []string
			inA := map[string]bool{}
			slow := PSPFunc(func(ctx context.Context, m Message) error {
				mu.Lock()
				inA[m.ID] = true
				mu.Unlock()
				time.Sleep(delay[m.ID])
				mu.Lock()
				inA[m.ID] = false
				mu.Unlock()
				return psp.Charge(ctx, m)
			})
			fast := PSPFunc(func(ctx context.Context, m Message) error {
				mu.Lock()
				if inA[m.ID] {
					overlap = append(overlap, m.ID)
				}
				mu.Unlock()
				return psp.Charge(ctx, m)
			})
			cfgA := fastConfig("a")
			cfgA.BatchSize, cfgA.Chargers = len(ids), 1
			cfgA.VisibilityTimeout = vt
			stopA := runConsumer(t, rdb, cfgA, slow, log)
			waitFor(t, "a's batch read", func() bool {
				p, err := rdb.XPending(context.Background(), Stream, Group).Result()
				return err == nil && p.Count == int64(len(ids))
			})
			cfgB := fastConfig("b")
			cfgB.VisibilityTimeout = vt
			stopB := runConsumer(t, rdb, cfgB, fast, log)
			waitForProcessed(t, q, ids...)
			waitForNothingPending(t, rdb)
			stopA()
			stopB()
			for i, id := range ids {
				if got := psp.calls(id); got != 1 {
					t.Errorf("round %d (%v, lease %v): charged %d times, want 1", i, tt.rounds[i], vt, got)
				}
			}
			if len(overlap) > 0 {
				t.Errorf("b charged %v while a was charging them", overlap)
			}
		})
	}
}

// TestLeaseRenewalHoldsOffOtherConsumers: once the record call renews a
// consumer's lease on a transaction of its batch (after the first lease ran
// out), another consumer can neither reclaim its entry (XAUTOCLAIM: the
// renewal restarted the entry's idle time) nor claim it for a charge (the
// claim counts the lease from leased_at) until the renewed lease runs out.
func TestLeaseRenewalHoldsOffOtherConsumers(t *testing.T) {
	_, rdb, q := startQueue(t)
	ctx := context.Background()
	batch := readAsDeadConsumer(t, q, 1)
	const lease = time.Second
	claimedAt := time.Now()
	if codes := claimAsDeadConsumerAt(t, rdb, batch, lease, claimedAt); codes[0] != claimCharge {
		t.Fatalf("first claim: got %d, want %d", codes[0], claimCharge)
	}
	time.Sleep(lease + lease/5) // the first lease, and the entry's idle time, are past it

	renewal := newRecordCall("dead", "dead", time.Hour, nil, nil, batch)
	renewedAt := time.Now()
	renewal.args[0] = renewedAt.UnixNano()
	owned, err := recordScript.Run(ctx, rdb, renewal.keys, renewal.args...).Int64Slice()
	if err != nil || len(owned) != 1 || owned[0] != 1 {
		t.Fatalf("renewal: got %v, %v; want [1] (still ours)", owned, err)
	}

	msgs, _, err := rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream: Stream, Group: Group, Consumer: "b", MinIdle: lease, Start: "0-0", Count: 10,
	}).Result()
	if err != nil || len(msgs) != 0 {
		t.Errorf("XAUTOCLAIM by another consumer right after the renewal: got %d entries, %v; want none", len(msgs), err)
	}
	codes, err := claimer{claimant: "b", lease: lease, statusTTL: time.Hour, roundSize: 16}.claim(ctx, rdb,
		renewedAt.Add(lease/2).UnixNano(), batch)
	if err != nil || codes[0] != claimBusy {
		t.Errorf("claim by another consumer within the renewed lease: got %v, %v; want %d (busy)", codes, err, claimBusy)
	}
}

// TestConsumerRenewalKeepsTheClaimsRounds: a dead consumer's batch of 48 in
// rounds of 16; round 0's record renewed the lease on part of the rest
// (round 1); round 1 was charged but not recorded (the round in hand); round
// 2 never started. A renewal must not split the claim in two (the claim
// script compares rounds within a claim): only round 1 gets the
// at-least-once warning.
func TestConsumerRenewalKeepsTheClaimsRounds(t *testing.T) {
	for _, renew := range []bool{false, true} {
		t.Run(fmt.Sprintf("renewed %v", renew), func(t *testing.T) {
			_, rdb, q := startQueue(t)
			log, logs := testLogger(t)
			ctx := context.Background()
			batch := readAsDeadConsumer(t, q, 48)
			ids := txIDs(batch)
			claimAsDeadConsumer(t, rdb, batch, 50*time.Millisecond)
			var renewed []Message
			if renew {
				renewed = batch[16:32]
			}
			rec := newRecordCall("dead", "dead", time.Hour, batch[:16], nil, renewed)
			rec.args[0] = time.Now().UnixNano() + int64(time.Millisecond)
			if err := recordScript.Run(ctx, rdb, rec.keys, rec.args...).Err(); err != nil {
				t.Fatal(err)
			}
			reclaimAsSurvivor(t, rdb, &recorder{}, log, 50*time.Millisecond)
			for i := 16; i < 48; i++ {
				inHand := i < 32
				if warned := warnedAtLeastOnce(logs.String(), ids[i]); warned != inHand {
					t.Errorf("transaction %d: at-least-once warning %v, want %v", i, warned, inHand)
				}
			}
		})
	}
}

// TestRecordLeavesNoRecordWithoutExpiry: a status record that expires
// between the claim and the record (a STATUS_TTL shorter than the charge)
// must not come back as a partial record that never expires.
func TestRecordLeavesNoRecordWithoutExpiry(t *testing.T) {
	tests := []struct {
		name      string
		queueTTL  time.Duration // the TTL core-api gives the record
		chargeFor time.Duration // how long the PSP step takes
		wantGone  bool
	}{
		{"record alive at record time", time.Hour, 10 * time.Millisecond, false},
		{"record expired between claim and record", 300 * time.Millisecond, 700 * time.Millisecond, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rdb := startRedis(t)
			log, _ := testLogger(t)
			ctx := context.Background()
			q := NewQueue(rdb, tt.queueTTL)
			psp := &recorder{}
			cfg := fastConfig("c1")
			cfg.VisibilityTimeout = 10 * time.Second // no reclaim in this test
			cfg.StatusTTL = tt.queueTTL              // the claim raises the record's expiry to it
			stop := runConsumer(t, rdb, cfg, PSPFunc(func(ctx context.Context, m Message) error {
				time.Sleep(tt.chargeFor)
				return psp.Charge(ctx, m)
			}), log)
			id := enqueueN(t, q, 1)[0]
			waitFor(t, "charged and acknowledged", func() bool { return psp.total() == 1 && pendingCount(t, rdb) == 0 })
			stop()
			ttl, err := rdb.PTTL(ctx, StatusKey(id)).Result()
			switch {
			case err != nil:
				t.Fatal(err)
			case tt.wantGone && ttl != -2*time.Nanosecond:
				t.Errorf("PTTL of the expired record after the charge: got %v, want it gone (-2ns)", ttl)
			case !tt.wantGone && (ttl <= 0 || ttl > tt.queueTTL):
				t.Errorf("PTTL of the status record: got %v, want in (0, %v]", ttl, tt.queueTTL)
			}
			if !tt.wantGone {
				checkStatus(t, q, id, StatusProcessed)
			}
		})
	}
}

// TestConsumerReclaimsAbandonedEntry simulates a connector killed between
// read and ack: the entry stays pending for a dead consumer until another one
// reclaims it after the visibility timeout. Whatever step the dead consumer
// reached, the transaction is charged once in all.
func TestConsumerReclaimsAbandonedEntry(t *testing.T) {
	tests := []struct {
		name        string
		claimed     bool // the dead consumer ran claimScript
		recorded    bool // ... and charged and recorded it, but its ack was lost
		wantCharges int  // by the survivor
	}{
		{"killed after the read, before the claim", false, false, 1},
		{"killed after the claim, before the PSP step", true, false, 1},
		{"killed after the PSP step was recorded, its ack lost", true, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rdb, q := startQueue(t)
			log, _ := testLogger(t)
			ctx := context.Background()
			// The dead consumer claims as it reads, so its claim is dated
			// from before the read: the survivor's first reclaim (once the
			// entry has been idle for its VisibilityTimeout) then finds the
			// claim's lease over too, and charges at delivery 2. Dated at
			// the claim call instead, a slow test run (-race on a loaded
			// machine, seen in CI) left the claim fresh at that reclaim, and
			// the survivor charged only at delivery 3.
			readAt := time.Now()
			batch := readAsDeadConsumer(t, q, 1)
			id := batch[0].ID
			if tt.claimed {
				// With the survivor's lease: a claim holds for the lease it
				// was taken with.
				claimAsDeadConsumerAt(t, rdb, batch, fastConfig("dead").VisibilityTimeout, readAt)
			}
			if tt.recorded {
				if err := recordIDs(ctx, rdb, id); err != nil { // the record without its ack
					t.Fatalf("record: %v", err)
				}
			}

			psp := &recorder{}
			consumeUntilNothingPending(t, rdb, fastConfig("survivor"), psp, log)
			if got := psp.calls(id); got != tt.wantCharges {
				t.Errorf("charges: got %d, want %d", got, tt.wantCharges)
			}
			if tt.wantCharges == 1 {
				psp.mu.Lock()
				if d := psp.charged[0].Deliveries; d != 2 {
					t.Errorf("deliveries seen by the PSP: got %d, want 2", d)
				}
				psp.mu.Unlock()
			}
			if ok := statusIs(q, id, StatusProcessed)(); !ok {
				t.Errorf("status: want processed")
			}
			if n, _ := rdb.XLen(ctx, DeadLetterStream).Result(); n != 0 {
				t.Errorf("dead letters: got %d, want 0", n)
			}
		})
	}
}

// TestConsumerWarnsOnlyForTheRoundInHand: a consumer claimed a batch of 40
// (rounds of 16, 16 and 8), recorded some rounds, and stopped. Only its first
// unrecorded round can have been charged, so the survivor logs the
// at-least-once warning for that round alone, charges the later rounds
// without it, and charges every unrecorded transaction once.
func TestConsumerWarnsOnlyForTheRoundInHand(t *testing.T) {
	const roundSize = 16
	tests := []struct {
		name     string
		recorded int // rounds the dead consumer recorded before it stopped
		warned   [2]int
		never    [2]int // ids[never[0]:never[1]]: claimed, round never started
	}{
		{"stopped in its first round", 0, [2]int{0, 16}, [2]int{16, 40}},
		{"stopped in its second round", 1, [2]int{16, 32}, [2]int{32, 40}},
		{"stopped in its last round", 2, [2]int{32, 40}, [2]int{40, 40}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rdb, q := startQueue(t)
			log, logs := testLogger(t)
			ctx := context.Background()
			batch := readAsDeadConsumer(t, q, 40)
			ids := txIDs(batch)
			if codes := claimAsDeadConsumer(t, rdb, batch, time.Millisecond); len(codes) != 40 || slices.ContainsFunc(codes, func(c claimCode) bool { return c != claimCharge }) {
				t.Fatalf("the dead consumer's claim: got %v; want 40 times claimCharge (1)", codes)
			}
			for r := range tt.recorded {
				if err := recordRound(ctx, rdb, batch[r*roundSize:(r+1)*roundSize]); err != nil {
					t.Fatalf("record round %d: %v", r, err)
				}
			}

			psp := &recorder{}
			reclaimAsSurvivor(t, rdb, psp, log, 0)

			for i, id := range ids {
				want := 0
				if i >= tt.recorded*roundSize {
					want = 1
				}
				if got := psp.calls(id); got != want {
					t.Errorf("transaction %d: charged %d times by the survivor, want %d", i, got, want)
				}
				inHand := i >= tt.warned[0] && i < tt.warned[1]
				if warned := warnedAtLeastOnce(logs.String(), id); warned != inHand {
					t.Errorf("transaction %d: at-least-once warning %v, want %v", i, warned, inHand)
				}
			}
			wantNever := ids[tt.never[0]:tt.never[1]]
			if len(wantNever) > 0 && !strings.Contains(logs.String(), fmt.Sprintf(`"count":%d,"transaction_ids":["%s"`, len(wantNever), strings.Join(wantNever, `","`))) {
				t.Errorf("want one line naming the %d transactions whose round never started, %v", len(wantNever), wantNever)
			}
		})
	}
}

// claimAsDeadConsumer claims batch for the consumer "dead", in rounds of 16
// with the given lease, as a consumer does before it stops, and returns the
// claim codes.
func claimAsDeadConsumer(t testing.TB, rdb *redis.Client, batch []Message, lease time.Duration) []claimCode {
	t.Helper()
	return claimAsDeadConsumerAt(t, rdb, batch, lease, time.Now())
}

// claimAsDeadConsumerAt is claimAsDeadConsumer with the claim dated at.
func claimAsDeadConsumerAt(t testing.TB, rdb *redis.Client, batch []Message, lease time.Duration, at time.Time) []claimCode {
	t.Helper()
	codes, err := claimer{claimant: "dead", lease: lease, statusTTL: time.Hour, roundSize: 16}.claim(context.Background(), rdb, at.UnixNano(), batch)
	if err != nil {
		t.Fatalf("the dead consumer's claim: %v", err)
	}
	return codes
}

// reclaimAsSurvivor runs the consumer "survivor", which takes a dead batch
// in one reclaimed page (vt: its VisibilityTimeout, 0 for fastConfig's),
// until nothing is pending.
func reclaimAsSurvivor(t *testing.T, rdb *redis.Client, psp PSP, log *slog.Logger, vt time.Duration) {
	t.Helper()
	cfg := survivorConfig()
	if vt > 0 {
		cfg.VisibilityTimeout = vt
	}
	reclaimAsSurvivorWith(t, rdb, psp, log, cfg)
}

// survivorConfig is reclaimAsSurvivor's consumer: "survivor", batches of 64,
// rounds of DefaultChargers.
func survivorConfig() ConsumerConfig {
	cfg := fastConfig("survivor")
	cfg.BatchSize = 64
	return cfg
}

// reclaimAsSurvivorWith is reclaimAsSurvivor with the survivor's whole
// configuration given.
func reclaimAsSurvivorWith(t *testing.T, rdb *redis.Client, psp PSP, log *slog.Logger, cfg ConsumerConfig) {
	t.Helper()
	// The survivor's first XAUTOCLAIM must find the whole batch idle for
	// its VisibilityTimeout, or it reclaims part of it alone: a renewal's
	// XCLAIM restarts its entries' idle time, and a slow run (-race on a
	// loaded machine) could otherwise start the survivor when the entries
	// idle since the read had passed it and the renewed ones had not. The
	// claim script compares a claim's rounds within one call only, so the
	// part reclaimed alone would count as the claim's round in hand.
	waitFor(t, "the dead batch idle for the survivor's VisibilityTimeout", func() bool {
		p, err := rdb.XPendingExt(context.Background(), &redis.XPendingExtArgs{
			Stream: Stream, Group: Group, Start: "-", End: "+", Count: 1 << 20,
		}).Result()
		if err != nil {
			t.Fatalf("XPENDING: %v", err)
		}
		for _, e := range p {
			if e.Idle < cfg.VisibilityTimeout {
				return false
			}
		}
		return true
	})
	consumeUntilNothingPending(t, rdb, cfg, psp, log)
}

// warnedAtLeastOnce reports whether logs hold the at-least-once warning for
// transaction id.
func warnedAtLeastOnce(logs, id string) bool {
	return hasLogLine(logs, map[string]string{
		"msg": "claimed before without a recorded charge; charging (at least once)", "transaction_id": id,
	})
}

// roundInHandOfDeadConsumer queues n transactions and leaves them as a
// connector killed between its first round's charges and their record leaves
// them: read and claimed by "dead" (readAsDeadConsumer, claimAsDeadConsumer)
// with a lease of 100 ms, which has run out when it returns.
func roundInHandOfDeadConsumer(t *testing.T, q *Queue, n int) []Message {
	t.Helper()
	batch := readAsDeadConsumer(t, q, n)
	claimAsDeadConsumer(t, q.rdb, batch, 100*time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	return batch
}

// readAsDeadConsumer queues n transactions, creates the group and reads them
// as consumer "dead", which then stops: they stay pending for a survivor.
func readAsDeadConsumer(t testing.TB, q *Queue, n int) []Message {
	t.Helper()
	enqueueN(t, q, n)
	rdb := q.rdb
	ctx := context.Background()
	if err := rdb.XGroupCreateMkStream(ctx, Stream, Group, "0").Err(); err != nil {
		t.Fatalf("XGROUP CREATE: %v", err)
	}
	got, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: Group, Consumer: "dead", Streams: []string{Stream, ">"}, Count: int64(n) + 1, Block: -1,
	}).Result()
	if err != nil || len(got) != 1 || len(got[0].Messages) != n {
		t.Fatalf("XREADGROUP as the dead consumer: got %v, %v; want %d entries", got, err, n)
	}
	msgs := make([]Message, n)
	for i, e := range got[0].Messages {
		if msgs[i], err = decodeMessage(e); err != nil {
			t.Fatalf("decode entry %s: %v", e.ID, err)
		}
	}
	return msgs
}

// recordRound runs recordScript for msgs, as the consumer does after a round.
func recordRound(ctx context.Context, rdb *redis.Client, msgs []Message) error {
	rec := newRecordCall("test", "test", time.Hour, msgs, nil, nil)
	return recordScript.Run(ctx, rdb, rec.keys, rec.args...).Err()
}

// recordIDs marks transactions processed by id alone, as a round's record
// does; "0-1" stands for a stream entry that is not pending (nothing to
// acknowledge).
func recordIDs(ctx context.Context, rdb *redis.Client, ids ...string) error {
	msgs := make([]Message, len(ids))
	for i, id := range ids {
		msgs[i] = Message{ID: id, StreamID: "0-1"}
	}
	return recordRound(ctx, rdb, msgs)
}

func TestConsumerDeadLettersPoison(t *testing.T) {
	_, rdb, q := startQueue(t)
	log, _ := testLogger(t)
	ctx := context.Background()
	good := enqueueN(t, q, 1)[0]
	// A transaction whose entry got corrupted: its record exists, its entry does not decode.
	withID := enqueueN(t, q, 1)[0]
	last, err := rdb.XRevRangeN(ctx, Stream, "+", "-", 1).Result()
	if err != nil || len(last) != 1 || last[0].Values["id"] != withID {
		t.Fatalf("XREVRANGE: got %v, %v; want the entry of %s", last, err, withID)
	}
	if err := rdb.XDel(ctx, Stream, last[0].ID).Err(); err != nil {
		t.Fatalf("XDEL: %v", err)
	}
	poison := []map[string]any{
		{"garbage": "yes"},
		{"id": "tx_not-an-id", "user_id": "1", "amount": "1", "currency": "USD", "enqueued_at": "1"},
		{"id": withID, "user_id": "1", "amount": "1.5", "currency": "USD", "enqueued_at": "1", "request_id": "req-poison"},
	}
	for _, v := range poison {
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: Stream, Values: v}).Err(); err != nil {
			t.Fatalf("XADD poison: %v", err)
		}
	}
	psp := &recorder{}
	stop := runConsumer(t, rdb, fastConfig("c1"), psp, log)
	waitFor(t, "three dead letters", func() bool { n, _ := rdb.XLen(ctx, DeadLetterStream).Result(); return n == 3 })
	waitFor(t, "good one processed", statusIs(q, good, StatusProcessed))
	waitForNothingPending(t, rdb)
	stop()

	if got := psp.total(); got != 1 {
		t.Errorf("charges: got %d, want 1 (the good one only)", got)
	}
	dead, err := rdb.XRange(ctx, DeadLetterStream, "-", "+").Result()
	if err != nil {
		t.Fatalf("XRANGE dead: %v", err)
	}
	for _, d := range dead {
		reason, _ := d.Values["reason"].(string)
		if !strings.HasPrefix(reason, "undecodable message: ") || d.Values["stream_id"] == "" {
			t.Errorf("dead letter %v: want an undecodable reason and the stream id", d.Values)
		}
	}
	if got := dead[2].Values["entry.amount"]; got != "1.5" {
		t.Errorf("dead letter keeps the entry: got entry.amount %v, want 1.5", got)
	}
	// The poison entry with a usable id gets a failed status record.
	rec, err := q.Status(ctx, withID)
	if err != nil || rec.Status != StatusFailed || rec.FailedAt == nil || rec.Error == "" {
		t.Errorf("status of poison with id: got %+v, %v; want failed with failed_at and error", rec, err)
	}
}

func TestConsumerDeadLettersAfterMaxDeliveries(t *testing.T) {
	_, rdb, q := startQueue(t)
	log, _ := testLogger(t)
	ctx := context.Background()
	id := enqueueN(t, q, 1)[0]
	psp := &recorder{fail: func(Message) error { return errors.New("PSP is down") }}
	cfg := fastConfig("c1")
	cfg.VisibilityTimeout = 50 * time.Millisecond
	cfg.ClaimInterval = 20 * time.Millisecond
	stop := runConsumer(t, rdb, cfg, psp, log)
	waitFor(t, "status failed", statusIs(q, id, StatusFailed))
	waitForNothingPending(t, rdb)
	stop()

	if got := psp.calls(id); got != cfg.MaxDeliveries {
		t.Errorf("PSP attempts: got %d, want %d", got, cfg.MaxDeliveries)
	}
	dead, err := rdb.XRange(ctx, DeadLetterStream, "-", "+").Result()
	if err != nil || len(dead) != 1 {
		t.Fatalf("dead letters: got %v (err %v), want 1", dead, err)
	}
	if got := dead[0].Values["reason"]; got != "PSP step failed: PSP is down" {
		t.Errorf("reason: got %v, want %q", got, "PSP step failed: PSP is down")
	}
	if got := dead[0].Values["entry.id"]; got != id {
		t.Errorf("entry.id: got %v, want %s", got, id)
	}
	rec, _ := q.Status(ctx, id)
	if rec.ProcessedAt != nil || rec.FailedAt == nil {
		t.Errorf("record: got %+v, want failed_at and no processed_at", rec)
	}
}

// TestConsumerRecordsOnlyTheChargesThatSucceeded runs one round in which
// half the charges fail: the round's record must hold only the others (the
// record built before the charges holds all 16 and must not be the one
// sent), and the failed ones go on to their redeliveries and the dead
// letters.
func TestConsumerRecordsOnlyTheChargesThatSucceeded(t *testing.T) {
	_, rdb, q := startQueue(t)
	log, _ := testLogger(t)
	ids := enqueueN(t, q, 16) // amounts 100..115
	declined := func(amount int64) bool { return amount%2 == 1 }
	psp := &recorder{fail: func(m Message) error {
		if declined(m.Amount) {
			return errors.New("declined")
		}
		return nil
	}}
	cfg := fastConfig("c1")
	cfg.Chargers, cfg.BatchSize = 16, 16
	cfg.VisibilityTimeout, cfg.ClaimInterval = 50*time.Millisecond, 20*time.Millisecond
	stop := runConsumer(t, rdb, cfg, psp, log)
	for i, id := range ids {
		want := StatusProcessed
		if declined(int64(100 + i)) {
			want = StatusFailed
		}
		waitFor(t, id+" "+want, statusIs(q, id, want))
	}
	stop()
	for i, id := range ids {
		want := 1
		if declined(int64(100 + i)) {
			want = cfg.MaxDeliveries
		}
		if got := psp.calls(id); got != want {
			t.Errorf("charges of %s (amount %d): got %d, want %d", id, 100+i, got, want)
		}
		rec, err := q.Status(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if declined(int64(100+i)) != (rec.ProcessedAt == nil) {
			t.Errorf("%s (amount %d): processed_at %v, want it set only for a charge that succeeded", id, 100+i, rec.ProcessedAt)
		}
	}
}

// TestConsumerShutdownFinishesBatchInHand cancels the consumer while it
// charges the first of a batch: the batch in hand completes and is acked; the
// rest stays in the stream for the next consumer, and nothing is charged twice.
func TestConsumerShutdownFinishesBatchInHand(t *testing.T) {
	_, rdb, q := startQueue(t)
	log, _ := testLogger(t)
	ctx := context.Background()
	ids := enqueueN(t, q, 10)

	cfg := fastConfig("first")
	cfg.BatchSize = 4
	c := newConsumer(t, rdb, cfg, nil, log)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	psp := &recorder{}
	c.psp = PSPFunc(func(ctx context.Context, m Message) error {
		cancel() // SIGTERM arrives while the batch is in hand
		return psp.Charge(ctx, m)
	})
	runUntilItsStop(t, c, runCtx, 15*time.Second)
	if got := psp.total(); got != cfg.BatchSize {
		t.Fatalf("charges before shutdown: got %d, want the batch of %d", got, cfg.BatchSize)
	}
	if n := pendingCount(t, rdb); n != 0 {
		t.Errorf("pending after shutdown: got %d, want 0 (batch acked)", n)
	}

	stop := runConsumer(t, rdb, fastConfig("second"), psp, log)
	waitForProcessed(t, q, ids...)
	stop()
	checkChargedOnce(t, psp, ids...)
}

// addUndecodableEntry queues an entry that does not decode (poison), for a
// batch with an entry to dead-letter.
func addUndecodableEntry(t *testing.T, rdb *redis.Client) {
	t.Helper()
	if err := rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: Stream, Values: map[string]any{"garbage": "yes"}}).Err(); err != nil {
		t.Fatalf("XADD poison: %v", err)
	}
}

// TestConsumerDrainEndsWithinShutdownGrace stops the consumer while Redis
// holds writes (CLIENT PAUSE WRITE), in the middle of a batch with a
// round whose charges were declined and an entry that does not decode: its
// record, the release of its claims and the dead letter all wait for Redis.
// Run still returns within ShutdownGrace; before, each of those calls had
// its own timeout on top of it (by hand: 1.3 s past a 3 s grace). Nothing
// is lost: once Redis writes again, the next consumer charges both and
// dead-letters the entry.
func TestConsumerDrainEndsWithinShutdownGrace(t *testing.T) {
	srv, rdb, q := startQueue(t)
	log, _ := testLogger(t)
	ctx := context.Background()
	addUndecodableEntry(t, rdb)
	ids := enqueueN(t, q, 2)
	admin := srv.Client(t)
	defer func() { _ = admin.Do(ctx, "CLIENT", "UNPAUSE").Err() }()

	cfg := fastConfig("stopped-while-redis-holds-writes")
	cfg.BatchSize, cfg.Chargers, cfg.ShutdownGrace = 4, 2, 3*time.Second
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stoppedAt time.Time
	var pause sync.Once
	declining := PSPFunc(func(context.Context, Message) error {
		pause.Do(func() {
			if err := admin.Do(ctx, "CLIENT", "PAUSE", 30_000, "WRITE").Err(); err != nil {
				t.Errorf("CLIENT PAUSE: %v", err)
			}
			stoppedAt = time.Now()
			cancel() // SIGTERM, with the round in hand
		})
		return errors.New("declined by the test's PSP")
	})
	c := newConsumer(t, rdb, cfg, declining, log)
	runUntilItsStop(t, c, runCtx, 30*time.Second)
	// The slack is for a loaded machine's timers; the calls that outlasted
	// the grace before took 1 s each (the client's read timeout).
	checkRunReturnedWithinGrace(t, stoppedAt, cfg.ShutdownGrace, time.Second, "")

	if err := admin.Do(ctx, "CLIENT", "UNPAUSE").Err(); err != nil {
		t.Fatalf("CLIENT UNPAUSE: %v", err)
	}
	checkChargedOnceAfterTheNextConsumer(t, rdb, q, &recorder{}, log, ids...)
	if n, err := rdb.XLen(ctx, DeadLetterStream).Result(); err != nil || n != 1 {
		t.Errorf("dead letters: got %d, %v; want 1 (the entry that does not decode)", n, err)
	}
}

// TestConsumerDrainRecordsWhenRedisReturnsWithinGrace: Redis goes away as
// a round is charged, at the stop, and is back within ShutdownGrace, after
// the batch's time (ShutdownGrace less finishReserve) but before the grace's
// end. The record, retried until then, lands: the charge is recorded once,
// and nothing is left for a redelivery to charge again. Retried only until
// the batch's time ended, it was given up with the grace's last part unused,
// and the next consumer (a PSP without a ledger) charged it a second time.
func TestConsumerDrainRecordsWhenRedisReturnsWithinGrace(t *testing.T) {
	srv, rdb, q := startQueue(t)
	log, _ := testLogger(t)
	id := enqueueN(t, q, 1)[0]

	cfg := fastConfig("redis-back-within-the-grace")
	cfg.ShutdownGrace = 4 * time.Second // the batch's time ends 2 s after the stop
	runCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stoppedAt time.Time
	var once sync.Once
	stopped := make(chan struct{})
	psp := &recorder{fail: func(Message) error {
		once.Do(func() {
			srv.Kill()
			stoppedAt = time.Now()
			cancel() // SIGTERM, with the round charged and its record to come
			close(stopped)
		})
		return nil
	}}
	c := newConsumer(t, rdb, cfg, psp, log)
	done := make(chan time.Time, 1)
	go func() {
		if err := c.Run(runCtx); err != nil {
			t.Errorf("Run: %v", err)
		}
		done <- time.Now()
	}()
	<-stopped
	time.Sleep(time.Until(stoppedAt.Add(cfg.ShutdownGrace - finishReserve(cfg.ShutdownGrace) + 500*time.Millisecond)))
	srv.Restart(t)
	back := time.Since(stoppedAt)
	var returned time.Time
	select {
	case returned = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30 s of its stop")
	}
	took := returned.Sub(stoppedAt)
	t.Logf("Redis back %s after the stop; Run returned %s after it (ShutdownGrace %s)",
		back.Round(time.Millisecond), took.Round(time.Millisecond), cfg.ShutdownGrace)
	if took > cfg.ShutdownGrace+time.Second {
		t.Errorf("Run returned %s after its stop, want at most %s (ShutdownGrace and a slack)", took.Round(time.Millisecond), cfg.ShutdownGrace+time.Second)
	}
	if !statusIs(q, id, StatusProcessed)() {
		t.Errorf("not recorded processed when Run returned, though Redis was back %s before the grace's end", (cfg.ShutdownGrace - back).Round(time.Millisecond))
	}
	checkChargedOnceAfterTheNextConsumer(t, rdb, q, psp, log, id)
}

// TestConsumerRecordsAChargeThatOutlastedTheGrace: the PSP step of a
// round returns after ShutdownGrace is over (nothing bounds it: the line
// PSP's write to a stdout that blocks), with Redis answering at once. The
// drain has outlasted the grace already; the round's record is still sent,
// and lands, instead of leaving a charge that happened for a redelivery to
// make again (charged twice by a PSP without a ledger).
func TestConsumerRecordsAChargeThatOutlastedTheGrace(t *testing.T) {
	_, rdb, q := startQueue(t)
	log, _ := testLogger(t)
	id := enqueueN(t, q, 1)[0]

	cfg := fastConfig("charge-outlasting-the-grace")
	cfg.ShutdownGrace = time.Second
	runCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stoppedAt time.Time
	var once sync.Once
	psp := &recorder{fail: func(Message) error {
		once.Do(func() {
			stoppedAt = time.Now()
			cancel() // SIGTERM, in the middle of the charge
			time.Sleep(cfg.ShutdownGrace + 200*time.Millisecond)
		})
		return nil
	}}
	c := newConsumer(t, rdb, cfg, psp, log)
	if err := c.Run(runCtx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	took := time.Since(stoppedAt)
	t.Logf("Run returned %s after its stop (ShutdownGrace %s, the charge %s)", took.Round(time.Millisecond),
		cfg.ShutdownGrace, cfg.ShutdownGrace+200*time.Millisecond)
	if most := cfg.ShutdownGrace + 200*time.Millisecond + 2*ioTimeout; took > most {
		t.Errorf("Run returned %s after its stop, want at most %s (the charge and one record attempt)", took.Round(time.Millisecond), most)
	}
	if !statusIs(q, id, StatusProcessed)() {
		t.Errorf("the charge was not recorded when Run returned")
	}
	checkChargedOnceAfterTheNextConsumer(t, rdb, q, psp, log, id)
}

// stopInTheFirstCharge returns a PSP whose first charge stops Run (cancel,
// as a SIGTERM would; atStop runs just before, when not nil) and then
// outlasts the batch's time (ShutdownGrace less finishReserve) by 200 ms:
// its round is recorded, and no later round of the batch starts.
func stopInTheFirstCharge(cfg ConsumerConfig, cancel context.CancelFunc, atStop func()) *recorder {
	var once sync.Once
	return &recorder{fail: func(Message) error {
		once.Do(func() {
			if atStop != nil {
				atStop()
			}
			cancel()
			time.Sleep(cfg.ShutdownGrace - finishReserve(cfg.ShutdownGrace) + 200*time.Millisecond)
		})
		return nil
	}}
}

// checkRunReturnedWithinGrace logs how long after its stop (at stoppedAt)
// Run returned, which it has just done, and fails the test if that is more
// than grace and slack (for a loaded machine's timers); why, when not
// empty, says what a longer time means.
func checkRunReturnedWithinGrace(t *testing.T, stoppedAt time.Time, grace, slack time.Duration, why string) {
	t.Helper()
	took, most := time.Since(stoppedAt), grace+slack
	t.Logf("Run returned %s after its stop (ShutdownGrace %s)", took.Round(time.Millisecond), grace)
	if took > most {
		if why != "" {
			why = ": " + why
		}
		t.Errorf("Run returned %s after its stop, want at most %s (ShutdownGrace and a slack)%s", took.Round(time.Millisecond), most, why)
	}
}

// checkTheUnstartedRoundReleased checks, once Run has returned after a
// stop in the first round of a batch of ids (rounds of chargers), that psp
// charged that round alone, and that the claims of the rest, whose round
// never started, were released (no charging_by left).
func checkTheUnstartedRoundReleased(t *testing.T, rdb *redis.Client, psp chargeCounter, ids []string, chargers int) {
	t.Helper()
	unstarted := 0
	for _, id := range ids {
		if psp.calls(id) > 0 {
			continue
		}
		unstarted++
		by, err := rdb.HGet(context.Background(), StatusKey(id), "charging_by").Result()
		if !errors.Is(err, redis.Nil) {
			t.Errorf("%s, whose round never started: charging_by %q (%v) after Run returned, want none (released)", id, by, err)
		}
	}
	if charged := len(ids) - unstarted; charged != chargers {
		t.Fatalf("charged before the stop: %d of %d, want the first round's %d", charged, len(ids), chargers)
	}
}

// TestConsumerStoppedBetweenRoundsReleasesTheUnstartedOnes stops a consumer
// in the first of a batch's two rounds, with a charge that outlasts the
// batch's time (ShutdownGrace less finishReserve): the round is recorded,
// the second never starts. Its claims are released when Run returns (no
// charging_by left), so the next consumer charges them once as first
// charges, without the at-least-once warning. Left claimed (before), the
// next claim took them for the stopped consumer's round in hand, and
// charged them saying "claimed before without a recorded charge; charging
// (at least once)", for transactions nothing had charged: seen with the
// stack's batches of 144 when records took 1.3 s each.
func TestConsumerStoppedBetweenRoundsReleasesTheUnstartedOnes(t *testing.T) {
	_, rdb, q := startQueue(t)
	log, logs := testLogger(t)
	ids := enqueueN(t, q, 8)

	cfg := fastConfig("stopped-between-rounds")
	cfg.BatchSize, cfg.Chargers = 8, 4
	cfg.ShutdownGrace = 2 * time.Second // the batch's time ends 1 s after the stop
	runCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	psp := stopInTheFirstCharge(cfg, cancel, nil)
	c := newConsumer(t, rdb, cfg, psp, log)
	if err := c.Run(runCtx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkTheUnstartedRoundReleased(t, rdb, psp, ids, cfg.Chargers)

	checkChargedOnceAfterTheNextConsumer(t, rdb, q, psp, log, ids...)
	const warned = "claimed before without a recorded charge; charging (at least once)"
	if hasLogLine(logs.String(), map[string]string{"msg": warned}) {
		t.Errorf("the next consumer charged the unstarted round with the at-least-once warning:\n%s", logs.String())
	}
}

// lateScripts is a go-redis hook that, once on, holds back each pipeline of
// this client's calls of the given scripts for lag before it goes out, or
// until its context ends (then the calls fail with the context's error):
// Redis answering them late.
type lateScripts struct {
	on      atomic.Bool
	lag     time.Duration
	scripts []*redis.Script
}

func (h *lateScripts) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *lateScripts) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (h *lateScripts) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if h.on.Load() && slices.ContainsFunc(cmds, h.late) {
			select {
			case <-time.After(h.lag):
			case <-ctx.Done():
				for _, cmd := range cmds {
					cmd.SetErr(ctx.Err())
				}
				return ctx.Err()
			}
		}
		return next(ctx, cmds)
	}
}

func (h *lateScripts) late(cmd redis.Cmder) bool {
	args := cmd.Args()
	return len(args) > 1 && cmd.Name() == "evalsha" &&
		slices.ContainsFunc(h.scripts, func(s *redis.Script) bool { return args[1] == s.Hash() })
}

// TestConsumerStoppedBetweenRoundsDeadLettersBesideTheRelease: as in
// TestConsumerStoppedBetweenRoundsReleasesTheUnstartedOnes, a stop leaves
// the second round of a batch unstarted, and the batch also holds an entry
// to dead-letter (it does not decode); Redis answers each release and
// dead-letter call 1.2 s late. The batch's finishing calls share one
// deadline, 2*ioTimeout from its end, cut here to 1.8 s by the grace's
// end: the release, sent before the dead letters, took their time, and
// the dead letter failed ("dead-lettering failed; entry left pending",
// until a redelivery after VisibilityTimeout), though it fitted before
// the stop's release existed. Sent side by side, both land.
func TestConsumerStoppedBetweenRoundsDeadLettersBesideTheRelease(t *testing.T) {
	srv, rdb, q := startQueue(t)
	log, logs := testLogger(t)
	ctx := context.Background()
	addUndecodableEntry(t, rdb)
	ids := enqueueN(t, q, 7)

	late := &lateScripts{lag: 1200 * time.Millisecond, scripts: []*redis.Script{releaseScript, deadLetterScript}}
	rdbC := connectTo(t, srv)
	rdbC.AddHook(late)
	cfg := fastConfig("stopped-between-rounds")
	cfg.BatchSize, cfg.Chargers = 8, 4  // the poison entry, and rounds of 4 and 3
	cfg.ShutdownGrace = 4 * time.Second // the batch's time ends 2 s after the stop
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stoppedAt time.Time
	psp := stopInTheFirstCharge(cfg, cancel, func() {
		stoppedAt = time.Now()
		late.on.Store(true)
	})
	c := newConsumer(t, rdbC, cfg, psp, log)
	runUntilItsStop(t, c, runCtx, 30*time.Second)
	late.on.Store(false)
	checkRunReturnedWithinGrace(t, stoppedAt, cfg.ShutdownGrace, time.Second, "")

	if n, err := rdb.XLen(ctx, DeadLetterStream).Result(); err != nil || n != 1 {
		t.Errorf("dead letters when Run returned: got %d, %v; want 1 (the entry that does not decode)", n, err)
	}
	if hasLogLine(logs.String(), map[string]string{"msg": "dead-lettering failed; entry left pending"}) {
		t.Errorf("the dead letter failed:\n%s", logs.String())
	}
	checkTheUnstartedRoundReleased(t, rdb, psp, ids, cfg.Chargers)
	checkChargedOnceAfterTheNextConsumer(t, rdb, q, psp, log, ids...)
}

// TestConsumerStoppedDuringReclaimEndsWithinShutdownGrace stops the
// consumer while its reclaim pass waits on a Redis that holds writes (CLIENT
// PAUSE WRITE), with nothing in hand: the stop lands during the trim that
// follows the failed XAUTOCLAIM. The loop checks its ctx only at its top, so
// it still sends the iteration's XREADGROUP after the stop, with a deadline
// of its own (Block plus 1 s) that ShutdownGrace does not bound: with the
// stack's Block of 1 s and a grace of 2 s, Run returned 2.7 s after the
// stop. On a real stack: 3.397 s after a SIGTERM with SHUTDOWN_GRACE=3s, and
// with 2.5s the watchdog (RESTART_HUNG_AFTER=3s) sent the draining
// connector SIGQUIT 3.04 s after it, in that XREADGROUP. A check of ctx
// before the read (none after a stop) makes it 0.7 s; 1.7 s since D79, as
// the consumer's leave at its stop waits its 1 s for the paused Redis.
func TestConsumerStoppedDuringReclaimEndsWithinShutdownGrace(t *testing.T) {
	srv, rdb := startRedis(t)
	ctx := context.Background()
	admin := srv.Client(t)
	defer func() { _ = admin.Do(ctx, "CLIENT", "UNPAUSE").Err() }()

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var paused atomic.Bool
	var stoppedAt atomic.Int64
	var once sync.Once
	logs := &syncBuffer{}
	// The stop comes 300 ms after the reclaim's XAUTOCLAIM failed (it
	// waited out the client's 1 s read timeout): the trim after it is in
	// flight, and ends about 700 ms after the stop.
	tw := writerFunc(func(p []byte) (int, error) {
		if paused.Load() && strings.Contains(string(p), `"msg":"reclaim failed"`) {
			once.Do(func() {
				time.AfterFunc(300*time.Millisecond, func() {
					stoppedAt.Store(time.Now().UnixNano())
					cancel() // SIGTERM
				})
			})
		}
		return logs.Write(p)
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	})
	log := logging.New(tw, "txqueue-test", slog.LevelDebug)

	cfg := fastConfig("stopped-during-reclaim")
	// The stack's Block and ClaimInterval (the defaults), so that the read
	// after the trim waits Block, not what is left of a 50 ms interval.
	cfg.Block, cfg.ClaimInterval, cfg.ShutdownGrace = time.Second, 5*time.Second, 2*time.Second
	c := newConsumer(t, rdb, cfg, &recorder{}, log)
	waitRun := startRun(t, c, runCtx)
	waitFor(t, "the consumer consuming", func() bool { return strings.Contains(logs.String(), `"msg":"consuming"`) })
	if err := admin.Do(ctx, "CLIENT", "PAUSE", 30_000, "WRITE").Err(); err != nil {
		t.Fatalf("CLIENT PAUSE: %v", err)
	}
	paused.Store(true)
	waitRun(30 * time.Second)
	if stoppedAt.Load() == 0 {
		t.Fatal("Run returned before its stop")
	}
	checkRunReturnedWithinGrace(t, time.Unix(0, stoppedAt.Load()), cfg.ShutdownGrace, 250*time.Millisecond,
		"a read sent after the stop outlasted the grace")
}

// writerFunc is an io.Writer made of a function.
type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestConsumerSaysWhatTheRedeliveryOfAnUnrecordedChargeDoes: Redis goes
// away as a round is charged, at the stop, and is not back before
// ShutdownGrace's end, so the charge is left unrecorded. The error logged
// for it says what its redelivery will do: ask the PSP's ledger first, when
// the PSP keeps one (the stack's connector does), or charge it again.
func TestConsumerSaysWhatTheRedeliveryOfAnUnrecordedChargeDoes(t *testing.T) {
	const (
		chargedAgain = "could not record the charge before shutdown; entry left pending, a redelivery charges again"
		askedFirst   = "could not record the charge before shutdown; entry left pending, a redelivery asks the PSP's ledger before charging it again"
	)
	tests := []struct {
		name    string
		psp     func(charge func(Message) error) PSP
		wantLog string
	}{
		{"a PSP without a ledger", func(charge func(Message) error) PSP { return &recorder{fail: charge} }, chargedAgain},
		{"a PSP with a ledger", func(charge func(Message) error) PSP {
			return &ledgerRecorder{recorder: recorder{fail: charge}}
		}, askedFirst},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, rdb, q := startQueue(t)
			log, logs := testLogger(t)
			id := enqueueN(t, q, 1)[0]
			cfg := fastConfig("redis-gone-at-the-stop")
			cfg.ShutdownGrace = time.Second
			runCtx, cancel := context.WithCancel(context.Background())
			defer cancel()
			c := newConsumer(t, rdb, cfg, tt.psp(func(Message) error {
				srv.Kill()
				cancel() // SIGTERM, with the charge made
				return nil
			}), log)
			runUntilItsStop(t, c, runCtx, 15*time.Second)
			if !hasLogLine(logs.String(), map[string]string{"msg": tt.wantLog, "transaction_id": id}) {
				t.Errorf("no log line %q for %s:\n%s", tt.wantLog, id, logs.String())
			}
		})
	}
}

// TestConsumerWaitsForRedis starts the consumer while Redis is down; it must
// keep retrying and process the backlog once Redis is back.
func TestConsumerWaitsForRedis(t *testing.T) {
	srv, rdb, q := startQueue(t)
	log, _ := testLogger(t)
	ids := enqueueN(t, q, 2)
	srv.Kill()
	psp := &recorder{}
	stop := runConsumer(t, rdb, fastConfig("c1"), psp, log)
	time.Sleep(300 * time.Millisecond) // let it fail a few times
	srv.Restart(t)
	waitForProcessed(t, q, ids...)
	stop()
	if got := psp.total(); got != len(ids) {
		t.Errorf("charges: got %d, want %d", got, len(ids))
	}
}

// TestConsumerRecordsChargesAcrossRedisRestart kills Redis in the middle of a
// batch, right after a charge (the worst moment: charged, not yet recorded),
// and restarts it: the round's charges stay in hand and are recorded once
// Redis is back, and every transaction is charged exactly once.
func TestConsumerRecordsChargesAcrossRedisRestart(t *testing.T) {
	srv, rdb, q := startQueue(t)
	log, logs := testLogger(t)
	ids := enqueueN(t, q, 40)
	killed := make(chan struct{})
	var once sync.Once
	psp := &recorder{fail: func(Message) error {
		once.Do(func() { srv.Kill(); close(killed) })
		return nil
	}}
	cfg := fastConfig("c1")
	cfg.Chargers = 4
	stop := runConsumer(t, rdb, cfg, psp, log)
	select {
	case <-killed:
	case <-time.After(15 * time.Second):
		t.Fatal("no charge within 15s")
	}
	time.Sleep(400 * time.Millisecond) // several failed record attempts
	srv.Restart(t)
	waitForProcessed(t, q, ids...)
	waitForNothingPending(t, rdb)
	stop()
	checkChargedOnce(t, psp, ids...)
	if !hasLogLine(logs.String(), map[string]string{"msg": "recorded the charges after Redis came back"}) {
		t.Errorf("logs lack the line saying a charge was recorded after the restart:\n%s", logs.String())
	}
}

// TestConsumerCarriesOnWhenRedisLosesItsDataMidRound: Redis loses its data
// (FLUSHALL here; a restart without persistence alike) while a round is
// charged but not yet recorded. The group and its pending entries are gone,
// so there is nothing left to acknowledge: the record must land anyway, and
// the consumer must go on to what is queued afterwards, not retry the lost
// group's XACK for ever.
func TestConsumerCarriesOnWhenRedisLosesItsDataMidRound(t *testing.T) {
	_, rdb, q := startQueue(t)
	log, logs := testLogger(t)
	first := enqueueN(t, q, 1)[0]
	// The second transaction is queued after the loss, before the round's
	// record: the stream exists again, without the group.
	var second string
	flushed := make(chan struct{})
	var once sync.Once
	psp := &recorder{fail: func(Message) error {
		once.Do(func() {
			if err := rdb.FlushAll(context.Background()).Err(); err != nil {
				t.Errorf("FLUSHALL: %v", err)
			}
			second = enqueueN(t, q, 1)[0]
			close(flushed)
		})
		return nil
	}}
	stop := runConsumer(t, rdb, fastConfig("c1"), psp, log)
	select {
	case <-flushed:
	case <-time.After(15 * time.Second):
		t.Fatal("no charge within 15s")
	}
	waitFor(t, "second processed after the data loss", statusIs(q, second, StatusProcessed))
	stop()
	if got := psp.calls(first); got != 1 {
		t.Errorf("charges of the round in hand: got %d, want 1", got)
	}
	if got := psp.calls(second); got != 1 {
		t.Errorf("charges of the transaction queued after the loss: got %d, want 1", got)
	}
	if !strings.Contains(logs.String(), "consumer group is gone") {
		t.Errorf("no log line about the lost group:\n%s", logs.String())
	}
}

// TestConsumerRecreatesLostGroup: when Redis loses its data and scripts
// (restarted without persistence), XREADGROUP answers NOGROUP and EVALSHA
// NOSCRIPT; the consumer recreates the group, reloads the scripts and carries
// on with what is queued afterwards.
func TestConsumerRecreatesLostGroup(t *testing.T) {
	_, rdb, q := startQueue(t)
	log, logs := testLogger(t)
	first := enqueueN(t, q, 1)[0]
	psp := &recorder{}
	stop := runConsumer(t, rdb, fastConfig("c1"), psp, log)
	waitFor(t, "first processed", statusIs(q, first, StatusProcessed))
	if err := rdb.FlushAll(context.Background()).Err(); err != nil {
		t.Fatalf("FLUSHALL: %v", err)
	}
	// A restarted Redis has lost its script cache too: the pipelined
	// EVALSHAs must reload their scripts.
	if err := rdb.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatalf("SCRIPT FLUSH: %v", err)
	}
	second := enqueueN(t, q, 1)[0]
	waitFor(t, "second processed", statusIs(q, second, StatusProcessed))
	stop()
	if psp.calls(first) != 1 || psp.calls(second) != 1 {
		t.Errorf("charges: got %d and %d, want 1 each", psp.calls(first), psp.calls(second))
	}
	psp.mu.Lock()
	if last := psp.charged[len(psp.charged)-1]; last.ID != second || last.Deliveries != 1 {
		t.Errorf("second charged on delivery %d, want 1 (NOSCRIPT retried at once, not after a reclaim)", last.Deliveries)
	}
	psp.mu.Unlock()
	if !strings.Contains(logs.String(), "consumer group is gone") {
		t.Errorf("no log line about the lost group")
	}
}

// TestClaimScript walks one status record through the claim outcomes that
// decide whether a delivery charges: fresh, interrupted (same or another
// consumer after the lease), busy (another consumer within the lease), done.
func TestClaimScript(t *testing.T) {
	_, rdb, q := startQueue(t)
	ctx := context.Background()
	id := enqueueN(t, q, 1)[0]
	lease := time.Second
	t0 := time.Now()
	claim := func(consumer string, at time.Time) claimCode {
		t.Helper()
		codes, err := claimer{claimant: consumer, lease: lease, statusTTL: time.Hour, roundSize: 16}.claim(ctx, rdb, at.UnixNano(),
			[]Message{{ID: id, Transaction: Transaction{UserID: 1, Amount: 100, Currency: "USD"}}})
		if err != nil {
			t.Fatalf("claim: %v", err)
		}
		return codes[0]
	}
	steps := []struct {
		name     string
		consumer string
		at       time.Time
		want     claimCode
	}{
		{"first claim charges", "a", t0, claimCharge},
		{"another consumer within the lease waits", "b", t0.Add(lease / 2), claimBusy},
		{"the same consumer again: interrupted, charge again", "a", t0.Add(lease / 2), claimChargeUnknownRound},
		{"another consumer after the lease: interrupted, charge again", "b", t0.Add(3 * lease), claimChargeUnknownRound},
	}
	for _, s := range steps {
		if got := claim(s.consumer, s.at); got != s.want {
			t.Errorf("%s: got %d, want %d", s.name, got, s.want)
		}
	}
	if err := recordIDs(ctx, rdb, id); err != nil {
		t.Fatalf("record: %v", err)
	}
	if got := claim("c", time.Now()); got != claimDone {
		t.Errorf("after record: got %d, want 0 (already processed)", got)
	}
	checkStatus(t, q, id, StatusProcessed)
	if n, _ := rdb.HExists(ctx, StatusKey(id), "charging_by").Result(); n {
		t.Error("charging_by left on a processed record")
	}
}

// TestClaimBatchMixedOutcomes claims a batch in one call: each transaction
// gets its own code, in order, and a missing record is recreated from the
// message.
func TestClaimBatchMixedOutcomes(t *testing.T) {
	_, rdb, q := startQueue(t)
	ctx := context.Background()
	ids := enqueueN(t, q, 2)
	if err := recordIDs(ctx, rdb, ids[0]); err != nil {
		t.Fatalf("record: %v", err)
	}
	missing := newID()
	batch := []Message{
		{ID: ids[0], Transaction: Transaction{UserID: 1, Amount: 100, Currency: "USD"}},
		{ID: ids[1], Transaction: Transaction{UserID: 1, Amount: 100, Currency: "USD"}},
		{ID: missing, Transaction: Transaction{UserID: 7, Amount: 42, Currency: "EUR"}, EnqueuedAt: time.Unix(0, 5)},
	}
	got, err := claimer{claimant: "a", lease: time.Second, statusTTL: time.Hour, roundSize: 16}.claim(ctx, rdb, time.Now().UnixNano(), batch)
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	if want := []claimCode{claimDone, claimCharge, claimCharge}; !slices.Equal(got, want) {
		t.Errorf("codes: got %v, want %v (processed, fresh, recreated)", got, want)
	}
	rec, err := q.Status(ctx, missing)
	if err != nil || rec.Status != StatusQueued || rec.UserID != 7 || rec.Amount != 42 || rec.Currency != "EUR" {
		t.Errorf("recreated record: got %+v, %v; want queued, user 7, 42 EUR", rec, err)
	}
	if ttl := rdb.PTTL(ctx, StatusKey(missing)).Val(); ttl <= 0 {
		t.Errorf("recreated record's TTL: got %v, want the status TTL", ttl)
	}
}

// TestConsumerCheckPassesOnceConsuming: the connector's readiness check fails
// until Run has the group in place, and fails again once Run has returned.
func TestConsumerCheckPassesOnceConsuming(t *testing.T) {
	_, rdb := startRedis(t)
	log, _ := testLogger(t)
	c := newConsumer(t, rdb, fastConfig("ready"), &recorder{}, log)
	check := c.Check()
	if err := check.Run(context.Background()); err == nil {
		t.Fatal("check passed before Run; want it to fail until the group is in place")
	}
	ctx, cancel := context.WithCancel(context.Background())
	waitRun := startRun(t, c, ctx)
	waitFor(t, "consumer check passes", func() bool { return check.Run(context.Background()) == nil })
	if n, err := rdb.Exists(context.Background(), Stream).Result(); err != nil || n != 1 {
		t.Errorf("stream exists: got %d, %v; want 1 (the group was created with MKSTREAM)", n, err)
	}
	cancel()
	waitRun(15 * time.Second)
	if err := check.Run(context.Background()); err == nil {
		t.Error("check passes after Run returned; want it to fail")
	}
}

// TestConsumerLiveCheckFailsOnlyWhenStuck: the connector's /live check (which
// the stack's watchdog restarts it on) passes while the consumer waits for a
// Redis that is down, longer than StallAfter, because it keeps retrying;
// fails, with readiness, once a charge that never returns has kept the loop
// from starting a step for StallAfter; and passes again when the charge
// returns.
func TestConsumerLiveCheckFailsOnlyWhenStuck(t *testing.T) {
	srv, rdb, q := startQueue(t)
	log, _ := testLogger(t)
	release := make(chan struct{})
	var charging atomic.Bool
	psp := PSPFunc(func(ctx context.Context, m Message) error {
		charging.Store(true)
		<-release
		return nil
	})
	cfg := fastConfig("stuck")
	// Above the consumer's longest wait between two retries (maxBackoff).
	cfg.StallAfter = 3 * time.Second
	c, _ := startConsumer(t, rdb, cfg, psp, log)
	unblock := sync.OnceFunc(func() { close(release) })
	defer unblock() // before the cleanup stops the consumer, also on a failure
	live, ready := c.LiveCheck(), c.Check()
	waitFor(t, "consumer ready", func() bool { return ready.Run(context.Background()) == nil })

	srv.Kill()
	for end := time.Now().Add(cfg.StallAfter + 1500*time.Millisecond); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if err := live.Run(context.Background()); err != nil {
			t.Fatalf("live check failed while Redis was down (the consumer retries, it is not stuck): %v", err)
		}
	}
	srv.Restart(t)

	id := enqueueN(t, q, 1)[0]
	waitFor(t, "the charge to start", charging.Load)
	waitFor(t, "the live check to fail", func() bool { return live.Run(context.Background()) != nil })
	if err := live.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "stuck") {
		t.Errorf("live check: got %v, want it to say the loop is stuck", err)
	}
	if err := ready.Run(context.Background()); err == nil {
		t.Error("readiness check passes while the loop is stuck; want it to fail too")
	}
	unblock()
	waitFor(t, "the live check to pass again", func() bool { return live.Run(context.Background()) == nil })
	waitForProcessed(t, q, id)
}

// TestConsumerLiveCheckFailsWhenStuckBeforeConsuming: a consumer whose
// loop is stuck while it waits for Redis to create its group (here, its
// warning blocks in a Write to an output nobody reads, as the D74 case
// once consuming) is stuck too, and the watchdog would never restart it if
// the live check passed for every consumer not consuming yet: it stays
// not ready, charging nothing, for good. The check fails once no attempt
// has started for StallAfter, and passes again when the output flows.
func TestConsumerLiveCheckFailsWhenStuckBeforeConsuming(t *testing.T) {
	srv, rdb := startRedis(t)
	srv.Kill()
	out := &servicetest.Buffer{}
	log := logging.New(out, "txqueue-test", slog.LevelInfo)
	cfg := fastConfig("stuck-early")
	cfg.StallAfter = 2 * time.Second
	c, _ := startConsumer(t, rdb, cfg, PSPFunc(func(context.Context, Message) error { return nil }), log)
	live := c.LiveCheck()
	waitFor(t, "the first warning about the group", func() bool {
		return strings.Contains(out.String(), "cannot create consumer group yet")
	})
	out.Hold()
	release := sync.OnceFunc(out.Release)
	defer release() // before the cleanup stops the consumer, also on a failure
	waitFor(t, "the live check to fail", func() bool { return live.Run(context.Background()) != nil })
	if err := live.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "stuck") {
		t.Errorf("live check: got %v, want it to say the loop is stuck", err)
	}
	release()
	waitFor(t, "the live check to pass again", func() bool { return live.Run(context.Background()) == nil })
}

// TestConsumerLiveCheckPassesWhileRedisHoldsWrites: Redis that holds every
// write unanswered (CLIENT PAUSE WRITE: XREADGROUP, XAUTOCLAIM and the
// scripts wait, PING and HELLO are answered) is slow, not a stuck consumer:
// with StallAfter at its default for a short VisibilityTimeout (the 10 s
// floor) and the real Block and ClaimInterval, the live check passes all
// along. go-redis gives a blocking read Block plus 10 s to answer, so the
// read alone outlasted the floor; with the reclaim and trim before it and
// a retry's backoff after it, the check failed for 1 to 5 s out of every
// 13 to 15 (a stack with RESTART_HUNG_AFTER=3s restarted the connector).
func TestConsumerLiveCheckPassesWhileRedisHoldsWrites(t *testing.T) {
	srv, rdb := startRedis(t)
	log, _ := testLogger(t)
	c, _ := startConsumer(t, rdb, ConsumerConfig{Name: "paused", VisibilityTimeout: time.Second},
		PSPFunc(func(context.Context, Message) error { return nil }), log)
	if got, want := c.cfg.StallAfter, minStallAfter; got != want {
		t.Fatalf("StallAfter: got %s, want the floor %s", got, want)
	}
	admin := srv.Client(t)
	// Before the cleanup stops the consumer, also on a failure.
	defer func() { _ = admin.Do(context.Background(), "CLIENT", "UNPAUSE").Err() }()
	live, ready := c.LiveCheck(), c.Check()
	waitFor(t, "consumer ready", func() bool { return ready.Run(context.Background()) == nil })

	hold := minStallAfter + 4*time.Second
	if err := admin.Do(context.Background(), "CLIENT", "PAUSE", hold.Milliseconds(), "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(hold); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if err := live.Run(context.Background()); err != nil {
			t.Fatalf("live check failed while Redis held writes (the consumer retries, it is not stuck): %v", err)
		}
	}
}

// TestConsumerStoppedBeforeRedisAnswers stops a consumer that is still
// waiting for Redis to create its group: Run returns nil, and neither its log
// nor its health check ever says it was consuming.
func TestConsumerStoppedBeforeRedisAnswers(t *testing.T) {
	srv, rdb := startRedis(t)
	srv.Kill()
	log, logs := testLogger(t)
	c := newConsumer(t, rdb, fastConfig("early"), &recorder{}, log)
	ctx, cancel := context.WithCancel(context.Background())
	waitRun := startRun(t, c, ctx)
	waitFor(t, "a failed group creation", func() bool {
		return strings.Contains(logs.String(), "cannot create consumer group yet")
	})
	cancel()
	waitRun(15 * time.Second)
	if strings.Contains(logs.String(), `"msg":"consuming"`) {
		t.Errorf("log says consuming after a stop before the group existed:\n%s", logs.String())
	}
	if err := c.Check().Run(context.Background()); err == nil {
		t.Error("check passes; want it to fail")
	}
}

// TestConsumerRecordsEachRoundInOneCall: the connector charges in rounds of
// Chargers transactions and records each round in one script call, so the
// records of one round share one processed_at, and every transaction is
// charged once.
func TestConsumerRecordsEachRoundInOneCall(t *testing.T) {
	psp := &recorder{}
	q, ids := consumeFullBatches(t, psp)
	calls := map[time.Time]int{}
	for _, id := range ids {
		rec, err := q.Status(context.Background(), id)
		if err != nil || rec.ProcessedAt == nil {
			t.Fatalf("status of %s: %+v %v", id, rec, err)
		}
		calls[*rec.ProcessedAt]++
	}
	if want := roundTotal / roundSize; len(calls) != want {
		t.Errorf("record calls (distinct processed_at): got %d, want %d (rounds of %d)", len(calls), want, roundSize)
	}
	for at, n := range calls {
		if n != roundSize {
			t.Errorf("record call at %s wrote %d records, want %d", at, n, roundSize)
		}
	}
}

// The rounds tests: roundTotal transactions, all queued before the consumer
// starts so that every batch of roundBatch is full, charged in rounds of
// roundSize.
const roundSize, roundBatch, roundTotal = 16, 64, 320

// consumeFullBatches queues roundTotal transactions, runs a consumer with
// psp until every one is processed, checks that each was charged exactly
// once, and returns the queue and the ids.
func consumeFullBatches(t *testing.T, psp interface {
	PSP
	chargeCounter
}) (*Queue, []string) {
	t.Helper()
	_, rdb, q := startQueue(t)
	log, _ := testLogger(t)
	ids := enqueueN(t, q, roundTotal)
	cfg := fastConfig("c1")
	cfg.Chargers, cfg.BatchSize = roundSize, roundBatch
	stop := runConsumer(t, rdb, cfg, psp, log)
	waitForProcessed(t, q, ids...)
	stop()
	checkChargedOnce(t, psp, ids...)
	return q, ids
}

// roundRecorder is a RoundPSP that records each ChargeRound call.
type roundRecorder struct {
	recorder
	rounds []int // sizes of the ChargeRound calls
}

func (r *roundRecorder) ChargeRound(ctx context.Context, round []Message, errs []error) {
	r.mu.Lock()
	r.rounds = append(r.rounds, len(round))
	r.mu.Unlock()
	for i, m := range round {
		errs[i] = r.Charge(ctx, m)
	}
}

// TestConsumerUsesRoundPSP: a PSP that can charge a round at once gets one
// call per round, and every transaction is charged once.
func TestConsumerUsesRoundPSP(t *testing.T) {
	psp := &roundRecorder{}
	consumeFullBatches(t, psp)
	psp.mu.Lock()
	defer psp.mu.Unlock()
	if len(psp.rounds) != roundTotal/roundSize {
		t.Errorf("ChargeRound calls: got %d (sizes %v), want %d of %d", len(psp.rounds), psp.rounds, roundTotal/roundSize, roundSize)
	}
	for _, n := range psp.rounds {
		if n != roundSize {
			t.Errorf("round sizes: got %v, want all %d", psp.rounds, roundSize)
			break
		}
	}
}

// roundPSPFunc is a RoundPSP made of a function.
type roundPSPFunc func(ctx context.Context, round []Message, errs []error)

func (f roundPSPFunc) Charge(ctx context.Context, m Message) error {
	errs := []error{nil}
	f(ctx, []Message{m}, errs)
	return errs[0]
}

func (f roundPSPFunc) ChargeRound(ctx context.Context, round []Message, errs []error) {
	f(ctx, round, errs)
}

// TestRoundsKeepTheirStoredRoundsAfterALostRenewal: consumer "dead" claims 6
// transactions in rounds of 2 (stored rounds 0, 0, 1, 1, 2, 2). Its first
// round outlasts the lease, and meanwhile consumer "b" takes m2 over, so the
// renewal drops m2. Cut again in twos, the rest would make [m3, m4] a round
// across stored rounds 1 and 2; "dead" charges its next round and is killed
// before the record. The survivor must warn for every transaction it charges
// a second time (before the fix, m4 was charged twice without a warning).
func TestRoundsKeepTheirStoredRoundsAfterALostRenewal(t *testing.T) {
	const vt = 300 * time.Millisecond
	_, rdb, q := startQueue(t)
	log, logs := testLogger(t)
	ctx := context.Background()
	batch := readAsDeadConsumer(t, q, 6)

	var mu sync.Mutex
	chargedByDead := map[string]int{}
	var roundsByDead [][]string
	killed := make(chan struct{})
	psp := roundPSPFunc(func(ctx context.Context, round []Message, errs []error) {
		mu.Lock()
		n := len(roundsByDead)
		roundsByDead = append(roundsByDead, txIDs(round))
		for _, m := range round {
			chargedByDead[m.ID]++
		}
		mu.Unlock()
		switch n {
		case 0:
			time.Sleep(vt + 50*time.Millisecond) // the lease on the rest runs out
			b := claimer{claimant: "b", lease: vt, statusTTL: time.Hour, roundSize: 16}
			if _, err := b.claim(ctx, rdb, time.Now().UnixNano(), batch[2:3]); err != nil {
				t.Errorf("b's claim of m2: %v", err)
			}
		case 1:
			close(killed)
			select {} // kill -9 before the round's record: this goroutine never returns
		}
	})
	cfg := fastConfig("dead")
	cfg.Chargers, cfg.BatchSize, cfg.VisibilityTimeout = 2, 6, vt
	c := newConsumer(t, rdb, cfg, psp, log)
	now := time.Now().UnixNano()
	if _, err := c.claimer().claim(ctx, rdb, now, batch); err != nil {
		t.Fatal(err)
	}
	var chargeable []Message // with their stored rounds, as handle passes them
	for _, m := range batch {
		chargeable = appendChargeable(chargeable, m, cfg.Chargers)
	}
	go c.chargeAll(ctx, chargeable, time.Unix(0, now))
	<-killed
	mu.Lock()
	t.Logf("dead's rounds: %v", roundsByDead)
	mu.Unlock()

	survivor := &recorder{}
	reclaimAsSurvivor(t, rdb, survivor, log, vt)
	mu.Lock()
	defer mu.Unlock()
	for i, m := range batch {
		if chargedByDead[m.ID] > 0 && survivor.calls(m.ID) > 0 && !warnedAtLeastOnce(logs.String(), m.ID) {
			t.Errorf("m%d charged by dead and again by the survivor, without the re-charge warning", i)
		}
	}
}

// TestOverDeliveredEntry: an entry delivered more than MaxDeliveries (3 in
// fastConfig) is dead-lettered, status failed, only when nothing can have
// charged it and a PSP step of it failed. Deliveries 1–3 go to connectors
// that stop (dead1–dead3), each having done what the row says; the
// survivor's reclaim is delivery 4.
func TestOverDeliveredEntry(t *testing.T) {
	tests := []struct {
		name string
		// lastClaim is who claimed it last, with which lease ("" for never).
		lastClaim string
		lease     time.Duration
		busy      bool // the last claim is dated an hour ahead
		failed    bool // the last claim's PSP step failed, and its record released it
		// want
		deadLettered    bool
		survivorCharges int
		warned          bool
	}{
		// Its deliveries were cut short (stops or crashes before a claim):
		// the PSP never saw it, so nothing failed (D102).
		{name: "never claimed: charged, not failed", survivorCharges: 1},
		{name: "released after a failed PSP step: dead-lettered, failed",
			lastClaim: "dead3", lease: 100 * time.Millisecond, failed: true, deadLettered: true},
		{name: "its round in hand when dead3 stopped: charged again, at least once, not failed",
			lastClaim: "dead3", lease: 100 * time.Millisecond, survivorCharges: 1, warned: true},
		// A claim the survivor must take for live: dated an hour ahead (a
		// clock far ahead of the survivor's), it holds for the whole test.
		{name: "another consumer charging it: left pending, not failed",
			lastClaim: "live", lease: 100 * time.Millisecond, busy: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rdb, q := startQueue(t)
			log, logs := testLogger(t)
			ctx := context.Background()
			batch := readAsDeadConsumer(t, q, 1) // delivery 1
			id := batch[0].ID
			for _, name := range []string{"dead2", "dead3"} { // deliveries 2 and 3
				if err := rdb.XClaim(ctx, &redis.XClaimArgs{Stream: Stream, Group: Group, Consumer: name,
					Messages: []string{batch[0].StreamID}}).Err(); err != nil {
					t.Fatal(err)
				}
			}
			if tt.lastClaim != "" {
				at := time.Now()
				if tt.busy {
					at = at.Add(time.Hour)
				}
				cl := claimer{claimant: tt.lastClaim, lease: tt.lease, statusTTL: time.Hour, roundSize: 16}
				if _, err := cl.claim(ctx, rdb, at.UnixNano(), batch); err != nil {
					t.Fatal(err)
				}
			}
			if tt.failed {
				rec := newRecordCall("dead3", tt.lastClaim, time.Hour, nil, batch, nil)
				if err := recordScript.Run(ctx, rdb, rec.keys, rec.args...).Err(); err != nil {
					t.Fatal(err)
				}
			}
			if !tt.busy {
				time.Sleep(tt.lease) // the dead consumer's lease runs out
			}
			survivor := &recorder{}
			cfg := fastConfig("survivor")
			stop := runConsumer(t, rdb, cfg, survivor, log)
			if tt.busy {
				// Busy: wait until the survivor has reclaimed it twice,
				// each time finding it held.
				waitFor(t, "two reclaims", func() bool {
					return strings.Count(logs.String(), `"msg":"another consumer is charging it; entry left pending"`) >= 2
				})
			} else {
				waitForNothingPending(t, rdb)
			}
			stop()
			if tt.busy {
				// A reclaim that found it held charged nothing, and takes
				// back the delivery it counted (D134).
				p, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: Stream, Group: Group, Start: "-", End: "+", Count: 1}).Result()
				if err != nil || len(p) != 1 || p[0].RetryCount != 3 {
					t.Errorf("pending after the reclaims that found it held: %+v, %v; want its 3 deliveries before them", p, err)
				}
			}
			dl, err := rdb.XRange(ctx, DeadLetterStream, "-", "+").Result()
			if err != nil {
				t.Fatal(err)
			}
			if got := len(dl) == 1; got != tt.deadLettered {
				t.Errorf("dead letters: got %d, want dead-lettered %v", len(dl), tt.deadLettered)
			}
			if tt.deadLettered && len(dl) == 1 && dl[0].Values["reason"] != "delivered 3 times without success" {
				t.Errorf("dead letter reason: got %v", dl[0].Values["reason"])
			}
			rec, err := q.Status(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if failed := rec.Status == StatusFailed; failed != tt.deadLettered {
				t.Errorf("status: got %q, want failed only when dead-lettered", rec.Status)
			}
			if got := survivor.calls(id); got != tt.survivorCharges {
				t.Errorf("survivor's charges: got %d, want %d", got, tt.survivorCharges)
			}
			if got := warnedAtLeastOnce(logs.String(), id); got != tt.warned {
				t.Errorf("at-least-once warning: got %v, want %v", got, tt.warned)
			}
		})
	}
}

// TestRedeliveryWithAnExpiredRecordWarns: "dead" claimed and charged a
// transaction and stopped before its record; the record is then gone (it
// expired). The survivor cannot tell whether it was charged, recreates the
// record and charges it, saying so.
func TestRedeliveryWithAnExpiredRecordWarns(t *testing.T) {
	_, rdb, q := startQueue(t)
	log, logs := testLogger(t)
	ctx := context.Background()
	batch := readAsDeadConsumer(t, q, 1)
	id := batch[0].ID
	claimAsDeadConsumer(t, rdb, batch, 100*time.Millisecond)
	if err := rdb.Del(ctx, StatusKey(id)).Err(); err != nil { // as if it expired
		t.Fatal(err)
	}
	survivor := &recorder{}
	reclaimAsSurvivor(t, rdb, survivor, log, 0)
	if got := survivor.calls(id); got != 1 {
		t.Errorf("survivor's charges: got %d, want 1", got)
	}
	if !hasLogLine(logs.String(), map[string]string{
		"msg": "delivered before, and its status record expired; charging (at least once)", "transaction_id": id,
	}) {
		t.Errorf("no warning that the charge may repeat one")
	}
	checkStatus(t, q, id, StatusProcessed) // the record recreated
}

// TestClaimKeepsTheRecordForTheStatusTTL: a record near the end of its TTL
// when it is claimed lives on for the consumer's StatusTTL, so that it
// outlives the claim (a record gone after a charge hides the charge).
func TestClaimKeepsTheRecordForTheStatusTTL(t *testing.T) {
	_, rdb := startRedis(t)
	ctx := context.Background()
	q := NewQueue(rdb, 2*time.Second) // core-api's STATUS_TTL
	batch := readAsDeadConsumer(t, q, 1)
	key := StatusKey(batch[0].ID)
	claimAsDeadConsumer(t, rdb, batch, time.Second) // the consumer's StatusTTL: an hour
	if ttl := rdb.PTTL(ctx, key).Val(); ttl < 59*time.Minute {
		t.Errorf("PTTL after the claim: got %v, want about an hour", ttl)
	}
	// A record without an expiry keeps none.
	if err := rdb.Persist(ctx, key).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.HDel(ctx, key, "charging_by").Err(); err != nil {
		t.Fatal(err)
	}
	claimAsDeadConsumer(t, rdb, batch, time.Second)
	if ttl := rdb.PTTL(ctx, key).Val(); ttl != -1*time.Nanosecond {
		t.Errorf("PTTL of a persistent record after the claim: got %v, want none (-1ns)", ttl)
	}
}

// TestAFailedRechargeKeepsItsEarlierCharge: "dead" charged a transaction and
// stopped before its record, so its redelivery is charged again with the
// at-least-once warning. When that charge fails, the transaction may still
// have been charged by dead's delivery: it must never be marked failed (a
// failed status must mean the money did not move), and its next charge must
// warn again. On its last delivery the failed charge dead-letters it, with
// its status kept (queued), for a person to settle with the PSP; before
// (until D114), it was charged again after every VisibilityTimeout.
func TestAFailedRechargeKeepsItsEarlierCharge(t *testing.T) {
	tests := []struct {
		name          string
		maxDeliveries int
		// want
		status      string
		deadLetters int64
		charges     int // the survivor's
	}{
		{"the failed charge is its last delivery: dead-lettered, status kept", 2, StatusQueued, 1, 1},
		{"deliveries left after the failed charge: charged again", 5, StatusProcessed, 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rdb, q := startQueue(t)
			log, logs := testLogger(t)
			ctx := context.Background()
			batch := roundInHandOfDeadConsumer(t, q, 1) // delivery 1: charged, no record
			id := batch[0].ID

			var mu sync.Mutex
			failures := 1
			survivor := &recorder{fail: func(Message) error {
				mu.Lock()
				defer mu.Unlock()
				if failures > 0 {
					failures--
					return errors.New("PSP unavailable")
				}
				return nil
			}}
			cfg := fastConfig("survivor")
			cfg.MaxDeliveries = tt.maxDeliveries
			consumeUntilNothingPending(t, rdb, cfg, survivor, log)

			checkStatus(t, q, id, tt.status)
			if n, err := rdb.XLen(ctx, DeadLetterStream).Result(); err != nil || n != tt.deadLetters {
				t.Errorf("dead letters: got %d, %v; want %d", n, err, tt.deadLetters)
			}
			if got := survivor.calls(id); got != tt.charges {
				t.Errorf("survivor's charges: got %d, want %d", got, tt.charges)
			}
			warnings := 0
			for _, line := range strings.Split(logs.String(), "\n") {
				if warnedAtLeastOnce(line, id) {
					warnings++
				}
			}
			if warnings != tt.charges {
				t.Errorf("at-least-once warnings: got %d, want %d (one per charge after dead's)", warnings, tt.charges)
			}
		})
	}
}

// TestALaterClaimKeepsAnEarlierCharge: "dead" charged x and stopped before
// its record; "dead2" claimed x again (with the warning) in the second round
// of its batch and stopped in its first round, with y. x's second round never
// started, but dead's charge of x may have happened: the survivor must warn
// for x as for y.
func TestALaterClaimKeepsAnEarlierCharge(t *testing.T) {
	_, rdb, q := startQueue(t)
	log, logs := testLogger(t)
	ctx := context.Background()
	batch := readAsDeadConsumer(t, q, 2) // y, x: delivery 1
	y, x := batch[0], batch[1]
	claimAsDeadConsumer(t, rdb, []Message{x}, 50*time.Millisecond) // dead charged x; no record
	time.Sleep(50 * time.Millisecond)
	if err := rdb.XClaim(ctx, &redis.XClaimArgs{Stream: Stream, Group: Group, Consumer: "dead2",
		Messages: []string{y.StreamID, x.StreamID}}).Err(); err != nil { // delivery 2
		t.Fatal(err)
	}
	for i := range batch {
		batch[i].Deliveries = 2
	}
	cl := claimer{claimant: "dead2", lease: 50 * time.Millisecond, statusTTL: time.Hour, roundSize: 1}
	codes, err := cl.claim(ctx, rdb, time.Now().UnixNano(), batch)
	if err != nil {
		t.Fatal(err)
	}
	if want := []claimCode{claimCharge, claimChargeUnknownRound}; !slices.Equal(codes, want) {
		t.Fatalf("dead2's claim: got %v, want %v", codes, want)
	}
	// dead2 charged y (round 0) and stopped before its record; x's round 1 never started.
	time.Sleep(50 * time.Millisecond)

	reclaimAsSurvivor(t, rdb, &recorder{}, log, 0)
	for _, m := range []Message{y, x} {
		if !warnedAtLeastOnce(logs.String(), m.ID) {
			t.Errorf("transaction %s: got no at-least-once warning, want one", m.ID)
		}
	}
}

// ledgerRecorder is a recorder that can also say which transactions it made
// before (LedgerPSP), as a PSP looked up by idempotency key would.
type ledgerRecorder struct {
	recorder
	made    map[string]bool
	lookErr error
	asked   []string
}

func (l *ledgerRecorder) Made(_ context.Context, ids []string) (map[string]bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.asked = append(l.asked, ids...)
	return l.made, l.lookErr
}

// TestConsumerAsksTheLedgerBeforeChargingAgain: "dead" claimed a round and
// stopped before its record. With a PSP that can say what it made
// (LedgerPSP), the survivor asks it about that round first: what it made is
// recorded processed and not charged again (exactly once); what it did not
// make, or when the lookup fails, everything it did not answer made, is
// charged with the at-least-once warning, as without a ledger.
func TestConsumerAsksTheLedgerBeforeChargingAgain(t *testing.T) {
	tests := []struct {
		name        string
		made        bool  // the PSP says it made the transaction
		lookErr     error // the lookup fails
		wantCharges int
		wantWarning bool
		wantLog     string
	}{
		{name: "made before: recorded, not charged again", made: true,
			wantCharges: 0, wantLog: "the PSP made these before their consumer stopped; recorded processed, not charged again"},
		{name: "not made: charged, with the warning",
			wantCharges: 1, wantWarning: true},
		{name: "the lookup fails: charged, with the warning", lookErr: errors.New("ledger unreadable"),
			wantCharges: 1, wantWarning: true, wantLog: "could not ask the PSP which transactions it made; charging them again (at least once)"},
		// Part of the ledger could not be read, but the rest named it:
		// made, so not charged again (before, a failed lookup's answer was
		// dropped, and the transaction was charged a second time).
		{name: "the lookup fails but names it made: recorded, not charged again", made: true, lookErr: errors.New("one of two sources unreadable"),
			wantCharges: 0, wantLog: "the PSP made these before their consumer stopped; recorded processed, not charged again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rdb, q := startQueue(t)
			log, logs := testLogger(t)
			batch := roundInHandOfDeadConsumer(t, q, 1) // charged or not; no record
			id := batch[0].ID

			survivor := &ledgerRecorder{made: map[string]bool{id: tt.made}, lookErr: tt.lookErr}
			consumeUntilNothingPending(t, rdb, fastConfig("survivor"), survivor, log)

			checkStatus(t, q, id, StatusProcessed)
			if got := survivor.calls(id); got != tt.wantCharges {
				t.Errorf("survivor's charges: got %d, want %d", got, tt.wantCharges)
			}
			survivor.mu.Lock()
			asked := slices.Clone(survivor.asked)
			survivor.mu.Unlock()
			if !slices.Contains(asked, id) {
				t.Errorf("the ledger was asked about %v, want %s among them", asked, id)
			}
			if got := warnedAtLeastOnce(logs.String(), id); got != tt.wantWarning {
				t.Errorf("at-least-once warning: got %v, want %v", got, tt.wantWarning)
			}
			if tt.wantLog != "" && !hasLogLine(logs.String(), map[string]string{"msg": tt.wantLog}) {
				t.Errorf("no log line %q:\n%s", tt.wantLog, logs.String())
			}
		})
	}
}

// stoppingLedger is a ledgerRecorder whose lookup is slow: it stops its
// consumer (stop, as a SIGTERM would) and answers only when its context
// ends, with the context's error, as ledgerPSP.Made does when stopped.
type stoppingLedger struct {
	ledgerRecorder
	stop func()
}

func (l *stoppingLedger) Made(ctx context.Context, ids []string) (map[string]bool, error) {
	l.mu.Lock()
	l.asked = append(l.asked, ids...)
	l.mu.Unlock()
	l.stop()
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestConsumerStoppedDuringTheLedgerLookupLeavesTheBatchPending: a stop
// that ends the lookup of a dead consumer's round in hand (the shutdown's
// grace nearly over) leaves the batch pending, uncharged, and says so, not
// that the round is charged again; Run returns within the grace, and the
// next consumer finds the round in the ledger and charges nothing.
func TestConsumerStoppedDuringTheLedgerLookupLeavesTheBatchPending(t *testing.T) {
	_, rdb, q := startQueue(t)
	log, logs := testLogger(t)
	batch := roundInHandOfDeadConsumer(t, q, 1)
	id := batch[0].ID

	runCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := fastConfig("stopped-while-looking-up")
	cfg.ShutdownGrace = time.Second
	survivor := &stoppingLedger{stop: cancel}
	c := newConsumer(t, rdb, cfg, survivor, log)
	began := time.Now()
	runUntilItsStop(t, c, runCtx, 15*time.Second)
	t.Logf("Run returned %s after its start", time.Since(began))

	survivor.mu.Lock()
	asked := slices.Clone(survivor.asked)
	survivor.mu.Unlock()
	if !slices.Contains(asked, id) {
		t.Fatalf("the ledger was asked about %v, want %s among them", asked, id)
	}
	if got := survivor.calls(id); got != 0 {
		t.Errorf("charges during the stop: got %d, want 0", got)
	}
	const left = "shutdown's grace ended while asking the PSP which transactions it made; the batch is left pending, uncharged"
	if !hasLogLine(logs.String(), map[string]string{"msg": left}) {
		t.Errorf("no log line %q:\n%s", left, logs.String())
	}
	if hasLogLine(logs.String(), map[string]string{"msg": "could not ask the PSP which transactions it made; charging them again (at least once)"}) {
		t.Errorf("the stopped lookup was logged as a failed one, charging again:\n%s", logs.String())
	}
	if n := pendingCount(t, rdb); n != 1 {
		t.Errorf("pending after the stop: got %d, want 1", n)
	}

	next := &ledgerRecorder{made: map[string]bool{id: true}}
	runConsumer(t, rdb, fastConfig("next"), next, log)
	waitForProcessed(t, q, id)
	waitForNothingPending(t, rdb)
	if got := next.calls(id); got != 0 {
		t.Errorf("the next consumer's charges of %s, which the ledger names: got %d, want 0", id, got)
	}
}

// roundLedger is a RoundPSP and a LedgerPSP: it records the transactions of
// each round it charges, and says it made those in made.
type roundLedger struct {
	mu     sync.Mutex
	rounds [][]string
	made   map[string]bool
}

func (p *roundLedger) Charge(ctx context.Context, m Message) error {
	errs := []error{nil}
	p.ChargeRound(ctx, []Message{m}, errs)
	return errs[0]
}

func (p *roundLedger) ChargeRound(_ context.Context, round []Message, errs []error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rounds = append(p.rounds, txIDs(round))
	for i := range round {
		errs[i] = nil
	}
}

func (p *roundLedger) Made(context.Context, []string) (map[string]bool, error) { return p.made, nil }

// TestRoundsKeepTheClaimsRoundsWhenTheLedgerTakesSome: "dead" claimed 20
// transactions in rounds of 16 and 4 and stopped before recording its first
// round. The survivor's claim stores rounds again, in its own round size:
// with rounds of 16, its round in hand (16) then the 4 never started; with
// rounds of 24 (the default, and a dead connector's round size may differ
// from the survivor's after an upgrade), all 20 in one. The ledger says 3 of
// the first 16 were made, so the survivor charges 17, in the rounds its
// claim stored: 13 then 4, or 17. A write that mixed two of the rounds its
// claim stored (the 13 with 3 of the 4), killed before its record, would
// leave those 3 looking "never started" to the next claim, and they would
// be charged again with no ledger lookup.
func TestRoundsKeepTheClaimsRoundsWhenTheLedgerTakesSome(t *testing.T) {
	for _, survivorRounds := range []int{16, DefaultChargers} {
		t.Run(fmt.Sprintf("survivor's rounds of %d", survivorRounds), func(t *testing.T) {
			_, rdb, q := startQueue(t)
			log, _ := testLogger(t)
			batch := roundInHandOfDeadConsumer(t, q, 20) // rounds 0 (16) and 1 (4); none recorded

			stored := map[string]int{} // the round the survivor's claim stores
			for i, m := range batch {
				stored[m.ID] = i / survivorRounds
			}
			survivor := &roundLedger{made: map[string]bool{batch[0].ID: true, batch[1].ID: true, batch[2].ID: true}}
			cfg := survivorConfig()
			cfg.Chargers = survivorRounds
			reclaimAsSurvivorWith(t, rdb, survivor, log, cfg)

			survivor.mu.Lock()
			defer survivor.mu.Unlock()
			charged := 0
			for _, round := range survivor.rounds {
				charged += len(round)
				for _, id := range round {
					if stored[id] != stored[round[0]] {
						t.Errorf("a round mixes the claim's rounds %d and %d: %v (all: %v)", stored[round[0]], stored[id], round, survivor.rounds)
						break
					}
				}
			}
			if charged != 17 {
				t.Errorf("survivor charged %d transactions in %v, want 17 (20 less the 3 the ledger names)", charged, survivor.rounds)
			}
			if want := (17 + 3 + survivorRounds - 1) / survivorRounds; len(survivor.rounds) != want {
				t.Errorf("survivor charged in %d rounds (%v), want %d: its claim's rounds of %d", len(survivor.rounds), survivor.rounds, want, survivorRounds)
			}
		})
	}
}

// breakingLedger is a LedgerPSP whose lookup says made names transactions
// it made and, the first time, leaves Redis refusing writes (maxmemory 1)
// until the next charge, or for 100 ms, so that the record of what it made fails. The round
// whose first transaction is hang is charged and then hangs (the connector
// killed between a round's charges and its record) until release is closed.
type breakingLedger struct {
	rdb     *redis.Client
	made    map[string]bool
	hang    string
	release chan struct{}

	mu      sync.Mutex
	broke   bool
	charged []string
}

func (p *breakingLedger) Made(ctx context.Context, ids []string) (map[string]bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.broke {
		p.broke = true
		if err := p.rdb.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
			return nil, err
		}
		time.AfterFunc(100*time.Millisecond, func() {
			_ = p.rdb.ConfigSet(context.Background(), "maxmemory", "0").Err()
		})
	}
	return p.made, nil
}

func (p *breakingLedger) Charge(ctx context.Context, m Message) error {
	errs := []error{nil}
	p.ChargeRound(ctx, []Message{m}, errs)
	return errs[0]
}

func (p *breakingLedger) ChargeRound(ctx context.Context, round []Message, errs []error) {
	_ = p.rdb.ConfigSet(context.WithoutCancel(ctx), "maxmemory", "0").Err()
	p.mu.Lock()
	p.charged = append(p.charged, txIDs(round)...)
	p.mu.Unlock()
	for i := range round {
		errs[i] = nil
	}
	if round[0].ID == p.hang {
		<-p.release
		for i := range round {
			errs[i] = errors.New("killed")
		}
	}
}

// TestAFailedLedgerRecordLeavesNoEarlierRoundBehind: "dead" stopped before
// recording its first round of 16 (of 20). The survivor finds one of that
// round in the PSP's ledger, but recording it fails (Redis refuses writes for
// a moment). Had it charged the other 15 and then been killed between the
// charges of its next round (the last 4) and their record, the one left
// claimed by the failed record would pass, for the next claim, for the
// survivor's round in hand, and those 4 for a round that never started:
// charged again with no ledger lookup. Whatever the survivor charged before
// it was killed, the third consumer must look it up first.
func TestAFailedLedgerRecordLeavesNoEarlierRoundBehind(t *testing.T) {
	_, rdb, q := startQueue(t)
	log, _ := testLogger(t)
	batch := roundInHandOfDeadConsumer(t, q, 20) // dead's rounds: 0-15, 16-19; none recorded

	survivor := &breakingLedger{rdb: rdb, made: map[string]bool{batch[0].ID: true}, hang: batch[16].ID, release: make(chan struct{})}
	cfg := survivorConfig()
	cfg.Chargers = 16
	allIdle := func(vt time.Duration) func() bool {
		return func() bool {
			p, err := rdb.XPendingExt(context.Background(), &redis.XPendingExtArgs{
				Stream: Stream, Group: Group, Start: "-", End: "+", Count: 100,
			}).Result()
			if err != nil || len(p) == 0 {
				return false
			}
			for _, e := range p {
				if e.Idle < vt+50*time.Millisecond {
					return false
				}
			}
			return true
		}
	}
	waitFor(t, "the dead batch idle", allIdle(cfg.VisibilityTimeout))
	c := newConsumer(t, rdb, cfg, survivor, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		close(survivor.release)
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the survivor's Run: got %v, want nil", err)
		}
	}()
	waitFor(t, "the survivor's last round charged", func() bool {
		survivor.mu.Lock()
		defer survivor.mu.Unlock()
		return slices.Contains(survivor.charged, batch[19].ID)
	})

	// The survivor is "killed": a third consumer takes over what is left.
	made := map[string]bool{}
	survivor.mu.Lock()
	for _, id := range survivor.charged {
		made[id] = true
	}
	survivor.mu.Unlock()
	made[batch[0].ID] = true
	third := &ledgerRecorder{made: made}
	cfg3 := fastConfig("third")
	cfg3.BatchSize = 64
	waitFor(t, "what the survivor left idle", allIdle(cfg3.VisibilityTimeout))
	consumeUntilNothingPending(t, rdb, cfg3, third, log)
	for id := range made {
		if n := third.calls(id); n != 0 {
			t.Errorf("%s, charged by the survivor before it was killed, charged %d more times without a ledger lookup", id, n)
		}
	}
}

// TestConsumerReleaseFailureNamesTheRequest: the warning that a claim
// could not be released is about one transaction, so it carries the
// request id and the stream id with the transaction id, as the consumer's
// other lines about one transaction do.
func TestConsumerReleaseFailureNamesTheRequest(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	if err := rdb.Close(); err != nil { // every call fails at once: the client is closed
		t.Fatal(err)
	}
	log, buf := testLogger(t)
	c := newConsumer(t, rdb, fastConfig("release-test"), &recorder{}, log)
	m := Message{Transaction: Transaction{UserID: 1, Amount: 100, Currency: "USD", RequestID: "req-release"},
		ID: "tx_00000000000000000000000000000001", StreamID: "1-0"}
	c.release(context.Background(), []Message{m})
	want := map[string]string{
		"msg":            "could not release the claim; its next delivery may charge it with the at-least-once warning",
		"transaction_id": m.ID,
		"stream_id":      m.StreamID,
		"request_id":     m.RequestID,
	}
	if !hasLogLine(buf.String(), want) {
		t.Errorf("logs: got\n%s\nwant a line with %v", buf.String(), want)
	}
}
