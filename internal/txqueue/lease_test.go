package txqueue

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/acme-payments/platform/internal/redistest"
)

// recordCut is a go-redis hook that fails this client's record script calls
// while on, without sending them: the connector's link to Redis is cut (a
// partition, or a Redis that stops answering only it), while other
// connectors still reach Redis.
type recordCut struct{ on atomic.Bool }

func (h *recordCut) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *recordCut) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		args := cmd.Args()
		if h.on.Load() && len(args) > 1 && (cmd.Name() == "evalsha" || cmd.Name() == "eval") &&
			(args[1] == recordScript.Hash()) {
			err := errors.New("i/o timeout (the test cut the link)")
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}

func (h *recordCut) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// startAOnALinkOfItsOwn runs connector "a", which charges a batch of ids in
// rounds of one, on a client of srv of its own with hook; its charge of
// ids[0], its first round, calls arm, which turns the hook on. It returns
// once that charge is made, with a's PSP and stop.
func startAOnALinkOfItsOwn(t *testing.T, srv *redistest.Server, hook redis.Hook, arm func(), ids []string, log *slog.Logger) (*recorder, func()) {
	t.Helper()
	rdbA := connectTo(t, srv)
	rdbA.AddHook(hook)
	a := &recorder{fail: func(m Message) error {
		if m.ID == ids[0] {
			arm()
		}
		return nil
	}}
	cfgA := fastConfig("a")
	cfgA.BatchSize, cfgA.Chargers = len(ids), 1
	stopA := runConsumer(t, rdbA, cfgA, a, log)
	waitFor(t, "a's first round charged", func() bool { return a.calls(ids[0]) == 1 })
	return a, stopA
}

// TestARecordRetriedPastTheLeaseChargesNothingTakenOver: connector a charges
// the first round (of 1) of its batch of 4, and its record cannot reach
// Redis for longer than the lease. a keeps the charge in hand and retries
// (D1c); meanwhile b reclaims the batch and charges it: the round in hand
// again (the known cost of an outage longer than VISIBILITY_TIMEOUT with two
// connectors, README), and the three rounds a never started. Once a's record
// lands, a must not charge those three as well: its lease on them ran out
// during the retries and b took them over.
func TestARecordRetriedPastTheLeaseChargesNothingTakenOver(t *testing.T) {
	srv, rdb, q := startQueue(t)
	log, logs := testLogger(t)
	ids := enqueueN(t, q, 4)

	cut := &recordCut{}
	a, stopA := startAOnALinkOfItsOwn(t, srv, cut, func() { cut.on.Store(true) }, ids, log)

	b := &recorder{}
	stopB := runConsumer(t, rdb, fastConfig("b"), b, log)
	waitForProcessed(t, q, ids[1:]...) // by b
	cut.on.Store(false)                // the link is back: a's record lands
	waitFor(t, "a's record after the cut", func() bool {
		return hasLogLine(logs.String(), map[string]string{"msg": "recorded the charges after Redis came back"})
	})
	waitForNothingPending(t, rdb)
	stopA() // a finishes the batch in hand first
	stopB()
	for i, id := range ids[1:] {
		if got := a.calls(id) + b.calls(id); got != 1 {
			t.Errorf("round %d of a's batch, never started by a before its lease ran out: charged %d times (a %d, b %d), want 1",
				i+1, got, a.calls(id), b.calls(id))
		}
	}
}

// slowRecordReply is a go-redis hook that, once armed, holds back the reply
// of this client's next record script call for pause: the record ran, and
// its answer comes late (a GC pause or SIGSTOP of the connector right after
// it, or a slow network path to it).
type slowRecordReply struct {
	armed atomic.Bool
	pause time.Duration
}

func (h *slowRecordReply) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *slowRecordReply) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		args := cmd.Args()
		if len(args) > 1 && cmd.Name() == "evalsha" && args[1] == recordScript.Hash() && h.armed.CompareAndSwap(true, false) {
			time.Sleep(h.pause)
		}
		return err
	}
}

func (h *slowRecordReply) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestAPauseBetweenRoundsChargesNothingTakenOver: connector a charges the
// first round (of 1) of its batch of 3 well within its lease, so that
// round's record renews nothing; then a stops for twice the lease before
// its next round (its record's answer is late, or a GC pause, SIGSTOP).
// Meanwhile b reclaims the rest of the batch and charges it. When a goes
// on, it must not charge what b took over: a round starts only with at
// least half of its lease left.
func TestAPauseBetweenRoundsChargesNothingTakenOver(t *testing.T) {
	srv, rdb, q := startQueue(t)
	log, _ := testLogger(t)
	ids := enqueueN(t, q, 3)

	slow := &slowRecordReply{pause: 3 * fastConfig("a").VisibilityTimeout} // three of a's leases
	a, stopA := startAOnALinkOfItsOwn(t, srv, slow, func() { slow.armed.Store(true) }, ids, log)
	b := &recorder{}
	stopB := runConsumer(t, rdb, fastConfig("b"), b, log)
	waitForNothingPending(t, rdb)
	time.Sleep(slow.pause) // a goes on
	stopA()
	stopB()
	checkChargedOnceByEither(t, a, b, ids...)
}

// TestALongBatchKeepsItsStatusRecords: a batch that takes longer than half
// of STATUS_TTL (a slow PSP, with the shortest STATUS_TTL the connector
// allows, twice the sum of VISIBILITY_TIMEOUT and CLAIM_INTERVAL) keeps its status
// records: each lease renewal renews their expiry, as a claim does. Before,
// the records of the batch's last transactions expired while it was in
// hand: the renewal found them no longer claimed, left them pending, and
// their reclaim charged them at a second delivery with the at-least-once
// warning for an expired record.
func TestALongBatchKeepsItsStatusRecords(t *testing.T) {
	_, rdb := startRedis(t)
	log, logs := testLogger(t)
	cfg := fastConfig("slow-psp")
	cfg.BatchSize, cfg.Chargers = 12, 1 // a round a transaction
	cfg.VisibilityTimeout, cfg.ClaimInterval = time.Second, 100*time.Millisecond
	cfg.StatusTTL = 2 * (cfg.VisibilityTimeout + cfg.ClaimInterval)
	q := NewQueue(rdb, cfg.StatusTTL)        // core-api gives a record STATUS_TTL too
	const chargeFor = 300 * time.Millisecond // 12 of them: 3.6 s, well past the 2.2 s TTL
	ids := enqueueN(t, q, cfg.BatchSize)
	psp := &recorder{}
	stop := runConsumer(t, rdb, cfg, PSPFunc(func(ctx context.Context, m Message) error {
		time.Sleep(chargeFor)
		return psp.Charge(ctx, m)
	}), log)
	waitFor(t, "every transaction charged and acknowledged", func() bool {
		return psp.total() >= len(ids) && pendingCount(t, rdb) == 0
	})
	stop()
	psp.mu.Lock()
	for _, m := range psp.charged {
		if m.Deliveries != 1 {
			t.Errorf("transaction %s charged at delivery %d, want 1 (its first)", m.ID, m.Deliveries)
		}
	}
	psp.mu.Unlock()
	for _, id := range ids {
		if n := psp.calls(id); n != 1 {
			t.Errorf("transaction %s charged %d times, want 1", id, n)
		}
	}
	for _, msg := range []string{
		"delivered before, and its status record expired; charging (at least once)",
		"no longer claimed by this consumer (another took them over while the batch was in hand, or their records expired); leaving them pending",
	} {
		if strings.Contains(logs.String(), msg) {
			t.Errorf("the connector logged %q", msg)
		}
	}
}
