package txqueue

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// heldRecordReply is a go-redis hook that, once armed, holds back the reply
// of this client's next record script call until go is closed: the record
// ran, and the connector is paused right after it (a GC pause, SIGSTOP).
type heldRecordReply struct {
	armed atomic.Bool
	goOn  chan struct{}
}

func (h *heldRecordReply) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *heldRecordReply) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		args := cmd.Args()
		if len(args) > 1 && cmd.Name() == "evalsha" && args[1] == recordScript.Hash() && h.armed.CompareAndSwap(true, false) {
			<-h.goOn
		}
		return err
	}
}

func (h *heldRecordReply) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestAConsumerOfTheSameNameIsNotTakenForThisOne: connector a charges the
// first round (of 1) of its batch of 3, then pauses past its lease right
// after that round's record. Meanwhile another connector reclaims the rest
// of the batch, and is charging it when a goes on. a must charge none of
// it: its lease ran out, and the other connector holds the claims now.
// Named b, the other connector is told apart (D56); given a's own name, as
// two connectors started with the same CONSUMER_NAME are, its claims read as
// a's own, and a charged them again.
func TestAConsumerOfTheSameNameIsNotTakenForThisOne(t *testing.T) {
	for _, other := range []string{"b", "a"} {
		t.Run("other named "+other, func(t *testing.T) {
			srv, rdb, q := startQueue(t)
			logA, logsA := testLogger(t)
			logB, _ := testLogger(t)
			ids := enqueueN(t, q, 3)

			held := &heldRecordReply{goOn: make(chan struct{})}
			a, stopA := startAOnALinkOfItsOwn(t, srv, held, func() { held.armed.Store(true) }, ids, logA)
			release := make(chan struct{})
			b := &recorder{}
			stopB := runConsumer(t, rdb, fastConfig(other), PSPFunc(func(ctx context.Context, m Message) error {
				err := b.Charge(ctx, m)
				if m.ID == ids[1] {
					<-release // still charging when a goes on
				}
				return err
			}), logB)
			waitFor(t, other+" charging the rest of a's batch", func() bool { return b.calls(ids[1]) == 1 })
			close(held.goOn) // a goes on: it charges ids[1] too, or leaves the rest of its batch
			waitFor(t, "a deciding about the rest of its batch", func() bool {
				return a.calls(ids[1]) > 0 || hasLogLine(logsA.String(), map[string]string{
					"msg": "no longer claimed by this consumer (another took them over while the batch was in hand, or their records expired); leaving them pending"})
			})
			close(release)
			waitForNothingPending(t, rdb)
			stopA()
			stopB()
			checkChargedOnceByEither(t, a, b, ids...)
		})
	}
}

// TestARestartUnderTheSameNameTakesItsOldBatchOver: a connector named "dead"
// (a CONSUMER_NAME of the operator's) stopped in the second round of its
// batch of 40, in rounds of 16; it starts again under the same name, a new
// process, and finds its old entries pending under its name. It charges the
// round in hand once, with the at-least-once warning, and the round that
// never started once, without it; the recorded round not at all.
func TestARestartUnderTheSameNameTakesItsOldBatchOver(t *testing.T) {
	_, rdb, q := startQueue(t)
	log, logs := testLogger(t)
	batch := readAsDeadConsumer(t, q, 40)
	ids := txIDs(batch)
	claimAsDeadConsumer(t, rdb, batch, time.Millisecond)
	if err := recordRound(context.Background(), rdb, batch[:16]); err != nil {
		t.Fatalf("record round 0: %v", err)
	}

	psp := &recorder{}
	cfg := survivorConfig()
	cfg.Name = "dead"
	reclaimAsSurvivorWith(t, rdb, psp, log, cfg)
	for i, id := range ids {
		want, warn := 1, i >= 16 && i < 32
		if i < 16 {
			want = 0
		}
		if got := psp.calls(id); got != want {
			t.Errorf("transaction %d: charged %d times after the restart, want %d", i, got, want)
		}
		if got := warnedAtLeastOnce(logs.String(), id); got != warn {
			t.Errorf("transaction %d: at-least-once warning %v, want %v", i, got, warn)
		}
	}
}

// TestACrashIsNotAFailedDelivery: with MaxDeliveries 1 (MAX_DELIVERIES=1,
// which the connector accepts), a connector stopped for good in the first
// round of its batch of 40, in rounds of 16. The survivor's reclaim is each
// entry's second delivery, over the limit; but the PSP never saw rounds 1
// and 2 (and round 0 may have been charged), so none of them failed: each
// is charged once, none dead-lettered or marked failed. Before, the 24
// transactions of rounds 1 and 2 were dead-lettered, status failed, never
// sent to the PSP.
func TestACrashIsNotAFailedDelivery(t *testing.T) {
	_, rdb, q := startQueue(t)
	log, _ := testLogger(t)
	ctx := context.Background()
	batch := readAsDeadConsumer(t, q, 40)
	claimAsDeadConsumer(t, rdb, batch, time.Millisecond)

	psp := &recorder{}
	cfg := survivorConfig()
	cfg.MaxDeliveries = 1
	reclaimAsSurvivorWith(t, rdb, psp, log, cfg)
	if n, err := rdb.XLen(ctx, DeadLetterStream).Result(); err != nil || n != 0 {
		t.Errorf("dead letters: got %d, %v; want 0", n, err)
	}
	for i, m := range batch {
		if got := psp.calls(m.ID); got != 1 {
			t.Errorf("transaction %d: charged %d times, want 1", i, got)
		}
		if rec, err := q.Status(ctx, m.ID); err != nil || rec.Status != StatusProcessed {
			t.Errorf("transaction %d: status %q (%v), want %q", i, rec.Status, err, StatusProcessed)
		}
	}
}
