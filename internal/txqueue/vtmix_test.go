package txqueue

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
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
	stopA := runSlowLongLeaseConsumer(t, rdb, a, ids, 150*time.Millisecond, log)
	b := &recorder{}
	stopB := runConsumer(t, rdb, fastConfig("b"), b, log) // VisibilityTimeout 200 ms
	waitForProcessed(t, q, ids...)
	waitForNothingPending(t, rdb)
	stopA()
	stopB()
	checkChargedOnceByEither(t, a, b, ids...)
}

// runSlowLongLeaseConsumer runs consumer "a" with a VisibilityTimeout of 5 s
// and one batch of all of ids, charged one at a time through psp, each
// charge taking perCharge (a slow PSP, still far within a's lease), and
// returns once a charged ids[0]: the rest of the batch is then in a's hand.
func runSlowLongLeaseConsumer(t *testing.T, rdb *redis.Client, psp *recorder, ids []string, perCharge time.Duration, log *slog.Logger) (stop func()) {
	t.Helper()
	cfg := fastConfig("a")
	cfg.VisibilityTimeout, cfg.BatchSize, cfg.Chargers = 5*time.Second, len(ids), 1
	stop = runConsumer(t, rdb, cfg, PSPFunc(func(ctx context.Context, m Message) error {
		err := psp.Charge(ctx, m)
		time.Sleep(perCharge)
		return err
	}), log)
	waitFor(t, "a charging its batch", func() bool { return psp.calls(ids[0]) == 1 })
	return stop
}
