package txqueue

import (
	"context"
	"testing"
	"time"
)

// TestAShorterVisibilityTimeoutElsewhereTakesNothingInHand: connector a,
// with a VisibilityTimeout of 5 s, charges a batch of 6 in rounds of 1,
// each charge taking 150 ms, well within its lease. Connector b runs beside
// it with a VisibilityTimeout of 200 ms (another stack on the same Redis,
// or a connector started with another VISIBILITY_TIMEOUT). b reclaims a's
// entries once they are idle for its 200 ms; it must leave them to a,
// whose lease still holds, and not charge them as well.
func TestAShorterVisibilityTimeoutElsewhereTakesNothingInHand(t *testing.T) {
	_, rdb, q := startQueue(t)
	log, _ := testLogger(t)
	ids := enqueueN(t, q, 6)

	a := &recorder{}
	cfgA := fastConfig("a")
	cfgA.VisibilityTimeout, cfgA.BatchSize, cfgA.Chargers = 5*time.Second, len(ids), 1
	stopA := runConsumer(t, rdb, cfgA, PSPFunc(func(ctx context.Context, m Message) error {
		err := a.Charge(ctx, m)
		time.Sleep(150 * time.Millisecond) // a slow PSP, still far within a's lease
		return err
	}), log)
	waitFor(t, "a charging its batch", func() bool { return a.calls(ids[0]) == 1 })
	b := &recorder{}
	stopB := runConsumer(t, rdb, fastConfig("b"), b, log) // VisibilityTimeout 200 ms
	waitForProcessed(t, q, ids...)
	waitForNothingPending(t, rdb)
	stopA()
	stopB()
	checkChargedOnceByEither(t, a, b, ids...)
}
