package txqueue

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestADeadLetterLeavesWhatAnotherConsumerClaimedSince: connector a decides
// to dead-letter a transaction, and does it at the end of its batch. Before
// that end, while a's batch is held (a paused, or a long charge), connector b
// claims the transaction, the PSP takes b's charge, and b stops before its
// record. a's dead letter must leave the transaction alone, pending: b may
// have charged it. Before, a acknowledged the entry, wrote a dead letter and
// marked it failed, so b's charge was never looked up or recorded: a charged
// transaction read "failed" for good.
func TestADeadLetterLeavesWhatAnotherConsumerClaimedSince(t *testing.T) {
	tests := []struct {
		name string
		// claimedFailed: the transaction's PSP step failed before a's
		// reclaim (psp_failed), so a's claim dead-letters it over a's
		// MaxDeliveries, while a charges another transaction of the
		// batch; otherwise a's PSP declines it on its last delivery,
		// and a pauses between that charge and its record.
		claimedFailed bool
		// maybeCharged: the transaction was the round in hand of a
		// connector that stopped before a's reclaim, so a's claim finds
		// it maybe charged, and a's dead letter keeps its status (D114).
		maybeCharged bool
		// bMaxDeliveries is b's MaxDeliveries (a's is 1).
		bMaxDeliveries int
		wantB          claimCode // b's claim
	}{
		// The same configuration: b takes a's round in hand, one a may
		// have charged, once a's lease ran out in its pause.
		{name: "declined on its last delivery, a paused before its record", bMaxDeliveries: 1,
			wantB: claimChargeUnknownRound},
		// A connector with a larger MAX_DELIVERIES beside it (rolled out
		// one at a time) charges what a's claim found over a's limit.
		{name: "over a's MAX_DELIVERIES after a failed PSP step, b allows more", claimedFailed: true,
			bMaxDeliveries: 5, wantB: claimCharge},
		// The dead letter of one a's own claim found maybe charged
		// (status kept) leaves another consumer's claim alone too.
		{name: "maybe charged, declined on its last delivery, a paused before its record", maybeCharged: true,
			bMaxDeliveries: 1, wantB: claimChargeUnknownRound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, rdb, q := startQueue(t)
			ctx := context.Background()
			logA, logsA := testLogger(t)
			cfg := fastConfig("a")
			cfg.MaxDeliveries, cfg.Chargers = 1, 1

			charging, goOn := make(chan struct{}), make(chan struct{})
			// Only a's first charge of the target is held: one a charges
			// again (its dead letter not decided) goes through.
			var held sync.Once
			hold := func() { held.Do(func() { close(charging); <-goOn }) }
			var target, other string
			var a *recorder
			if tt.claimedFailed {
				// x read both, claimed target, and its PSP step failed.
				batch := readAsDeadConsumer(t, q, 2)
				target, other = batch[0].ID, batch[1].ID
				x := claimer{claimant: "x#1", lease: time.Millisecond, statusTTL: time.Hour, roundSize: 1}
				if _, err := x.claim(ctx, rdb, time.Now().UnixNano(), batch[:1]); err != nil {
					t.Fatal(err)
				}
				rec := newRecordCall("dead", "x#1", time.Hour, nil, batch[:1], nil)
				if err := recordScript.Run(ctx, rdb, rec.keys, rec.args...).Err(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(cfg.VisibilityTimeout) // a's reclaim takes both
				a = &recorder{fail: func(Message) error { hold(); return nil }}
			} else {
				if tt.maybeCharged {
					target = roundInHandOfDeadConsumer(t, q, 1)[0].ID
				} else {
					target = enqueueN(t, q, 1)[0]
				}
				a = &recorder{fail: func(Message) error { hold(); return errors.New("declined") }}
			}
			stopA := runConsumer(t, connectTo(t, srv), cfg, a, logA)
			select {
			case <-charging:
			case <-time.After(15 * time.Second):
				t.Fatal("a did not charge within 15s")
			}
			time.Sleep(cfg.VisibilityTimeout + 50*time.Millisecond) // a's lease runs out

			// b reclaims the target, charges it (the PSP takes it), and
			// stops before its record.
			var streamID string
			entries, err := rdb.XRange(ctx, Stream, "-", "+").Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if e.Values[fieldID] == target {
					streamID = e.ID
				}
			}
			claimed, err := rdb.XClaim(ctx, &redis.XClaimArgs{Stream: Stream, Group: Group, Consumer: "b",
				MinIdle: cfg.VisibilityTimeout, Messages: []string{streamID}}).Result()
			if err != nil || len(claimed) != 1 {
				t.Fatalf("b's XCLAIM: got %v, %v; want the target", claimed, err)
			}
			m, err := decodeMessage(claimed[0])
			if err != nil {
				t.Fatal(err)
			}
			p, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: Stream, Group: Group, Start: streamID,
				End: streamID, Count: 1}).Result()
			if err != nil || len(p) != 1 {
				t.Fatalf("XPENDING: got %v, %v", p, err)
			}
			m.Deliveries = p[0].RetryCount
			codes, err := claimer{claimant: "b#1", lease: cfg.VisibilityTimeout, statusTTL: time.Hour, roundSize: 1,
				maxDeliveries: tt.bMaxDeliveries}.claim(ctx, rdb, time.Now().UnixNano(), []Message{m})
			if err != nil || len(codes) != 1 || codes[0] != tt.wantB {
				t.Fatalf("b's claim: got %v, %v; want [%d]", codes, err, tt.wantB)
			}

			close(goOn) // a's batch goes on to its end
			waitFor(t, "a's batch to end", func() bool {
				n, err := rdb.XLen(ctx, DeadLetterStream).Result()
				return err == nil && n > 0 || hasLogLine(logsA.String(), map[string]string{
					"msg": "not dead-lettered: another consumer claimed it since, and may have charged it; left pending"})
			})
			stopA()
			if n, err := rdb.XLen(ctx, DeadLetterStream).Result(); err != nil || n != 0 {
				t.Errorf("dead letters after a's batch: got %d, %v; want 0", n, err)
			}
			if rec, err := q.Status(ctx, target); err != nil || rec.Status == StatusFailed {
				t.Errorf("status after a's batch: got %q, %v; want not %q (b may have charged it)", rec.Status, err, StatusFailed)
			}

			// The next connector finds b's charge in the PSP's ledger.
			next := &ledgerRecorder{made: map[string]bool{target: true}}
			logNext, _ := testLogger(t)
			consumeUntilNothingPending(t, rdb, fastConfig("next"), next, logNext)
			checkStatus(t, q, target, StatusProcessed)
			if got := next.calls(target); got != 0 {
				t.Errorf("the next connector's charges: got %d, want 0 (b's charge is in the ledger)", got)
			}
			if other != "" {
				checkStatus(t, q, other, StatusProcessed)
				if got := a.calls(other) + next.calls(other); got != 1 {
					t.Errorf("charges of the batch's other transaction: got %d, want 1", got)
				}
			}
		})
	}
}
