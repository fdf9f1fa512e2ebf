package txqueue

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestADeclinedMaybeChargedTransactionIsNotRetriedForGood: "dead" claimed a
// transaction and stopped with its round in hand, so an earlier delivery
// may have charged it; the survivor's PSP then declines every charge of it.
// It must never read failed (a failed status must mean the money did not
// move, D24, D40), and it must not be charged again for good either: its
// charges on deliveries 2 to MaxDeliveries fail, and then it goes to the
// dead-letter stream, saying that it may have been charged, its status left
// queued for a person to settle with the PSP. Before, it was charged again
// after every VisibilityTimeout (72 deliveries in 15 s), never
// dead-lettered, with or without a ledger that does not name it.
func TestADeclinedMaybeChargedTransactionIsNotRetriedForGood(t *testing.T) {
	tests := []struct {
		name          string
		maxDeliveries int
		ledger        bool // the survivor's PSP can say what it made; it did not make this one
		recordExpired bool // the status record is gone before the survivor's claim
	}{
		{name: "MAX_DELIVERIES 2", maxDeliveries: 2},
		{name: "MAX_DELIVERIES 5", maxDeliveries: 5},
		{name: "a ledger that does not name it", maxDeliveries: 2, ledger: true},
		{name: "its status record expired", maxDeliveries: 3, recordExpired: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rdb, q := startQueue(t)
			log, logs := testLogger(t)
			ctx := context.Background()
			batch := roundInHandOfDeadConsumer(t, q, 1) // delivery 1: charged or not, no record
			id := batch[0].ID
			if tt.recordExpired {
				if err := rdb.Del(ctx, StatusKey(id)).Err(); err != nil {
					t.Fatal(err)
				}
			}
			declining := &ledgerRecorder{recorder: recorder{fail: func(Message) error { return errors.New("declined") }},
				made: map[string]bool{}}
			var psp PSP = &declining.recorder
			if tt.ledger {
				psp = declining
			}
			cfg := fastConfig("survivor")
			cfg.MaxDeliveries = tt.maxDeliveries
			start := time.Now()
			stop := runConsumer(t, rdb, cfg, psp, log)
			// Bounded: until nothing is pending, or 10 s (about 40
			// reclaims of a VisibilityTimeout of 200 ms).
			for pendingCount(t, rdb) > 0 && time.Since(start) < 10*time.Second {
				time.Sleep(20 * time.Millisecond)
			}
			stop()

			if got, want := declining.calls(id), tt.maxDeliveries-1; got != want {
				t.Errorf("the survivor's charges in %.1f s: got %d, want %d (deliveries 2 to %d)",
					time.Since(start).Seconds(), got, want, tt.maxDeliveries)
			}
			if n := pendingCount(t, rdb); n != 0 {
				t.Errorf("entries pending: got %d, want 0", n)
			}
			checkStatus(t, q, id, StatusQueued)
			// Left as it was, the record keeps its expiry: a dead letter
			// of each such transaction adds no record kept for good.
			if ttl := rdb.PTTL(ctx, StatusKey(id)).Val(); ttl <= 0 {
				t.Errorf("PTTL of the status record after its dead letter: got %v, want an expiry", ttl)
			}
			dl, err := rdb.XRange(ctx, DeadLetterStream, "-", "+").Result()
			if err != nil {
				t.Fatal(err)
			}
			if len(dl) != 1 {
				t.Fatalf("dead letters: got %d, want 1", len(dl))
			}
			v := dl[0].Values
			if v["entry.id"] != id || v["maybe_charged"] != "1" || !strings.HasSuffix(v["reason"].(string), maybeChargedReason) {
				t.Errorf("dead letter: got %v, want the transaction's entry with maybe_charged 1 and a reason ending %q",
					v, maybeChargedReason)
			}
			if !hasLogLine(logs.String(), map[string]string{"level": "ERROR", "transaction_id": id,
				"msg": "dead-lettered, status not set to failed: it may have been charged; a person must check with the PSP"}) {
				t.Errorf("no error line saying it was dead-lettered, may have been charged:\n%s", logs.String())
			}
			if tt.ledger {
				declining.mu.Lock()
				asked := strings.Join(declining.asked, " ")
				declining.mu.Unlock()
				if !strings.Contains(asked, id) {
					t.Errorf("the ledger was asked about %q, want %s among them", asked, id)
				}
			}
		})
	}
}
