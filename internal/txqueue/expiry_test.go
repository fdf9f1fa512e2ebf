package txqueue

import (
	"context"
	"testing"
	"time"
)

// TestRecordsThatExpiredWhileQueuedAreChargedOnce: the local stack keeps
// status records for an hour (stack.env's STATUS_TTL), so a stack stopped
// for longer with a backlog finds its records gone (Redis counts the TTL in
// wall-clock time, down or not). Each transaction is still charged once and
// recorded processed: a first delivery as usual, with its record recreated;
// a round a dead consumer had in hand after a lookup in the PSP's ledger,
// which names what it made (here the first of two rounds of 16).
func TestRecordsThatExpiredWhileQueuedAreChargedOnce(t *testing.T) {
	const ttl = time.Second
	tests := []struct {
		name string
		// queue queues 32 transactions with records that expire after
		// ttl, and returns them with those the PSP made before.
		queue func(t *testing.T, q *Queue) (ids []string, made map[string]bool)
	}{
		{"never delivered", func(t *testing.T, q *Queue) ([]string, map[string]bool) {
			ids := enqueueN(t, q, 32)
			if err := q.rdb.XGroupCreateMkStream(context.Background(), Stream, Group, "0").Err(); err != nil {
				t.Fatal(err)
			}
			return ids, nil
		}},
		{"claimed by a consumer killed in its first round", func(t *testing.T, q *Queue) ([]string, map[string]bool) {
			batch := readAsDeadConsumer(t, q, 32)
			cl := claimer{claimant: "dead", lease: 100 * time.Millisecond, statusTTL: ttl, roundSize: 16}
			if _, err := cl.claim(context.Background(), q.rdb, time.Now().UnixNano(), batch); err != nil {
				t.Fatal(err)
			}
			made := map[string]bool{}
			for _, m := range batch[:16] {
				made[m.ID] = true
			}
			return txIDs(batch), made
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rdb := startRedis(t)
			log, _ := testLogger(t)
			ctx := context.Background()
			q := NewQueue(rdb, ttl)
			ids, made := tt.queue(t, q)
			waitFor(t, "the records expired", func() bool {
				n, err := rdb.Exists(ctx, StatusKey(ids[0]), StatusKey(ids[len(ids)-1])).Result()
				return err == nil && n == 0
			})

			psp := &ledgerRecorder{made: made}
			cfg := survivorConfig()
			cfg.StatusTTL = time.Hour
			stop := runConsumer(t, rdb, cfg, psp, log)
			waitForProcessed(t, q, ids...)
			waitForNothingPending(t, rdb)
			stop()
			for _, id := range ids {
				want := 1
				if made[id] {
					want = 0
				}
				if got := psp.calls(id); got != want {
					t.Errorf("charges of %s: got %d, want %d (made before: %v)", id, got, want, made[id])
				}
				if ttl := rdb.PTTL(ctx, StatusKey(id)).Val(); ttl < 59*time.Minute {
					t.Errorf("PTTL of %s's recreated record: got %v, want about the consumer's hour", id, ttl)
				}
			}
		})
	}
}
