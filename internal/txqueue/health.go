package txqueue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/acme-payments/platform/internal/httpx"
)

// errRedisDown is the public output of RedisCheck when Redis does not answer.
var errRedisDown = errors.New("redis did not answer PING")

// errRedisRefusesWrites is the public output of RedisCheck when Redis answers
// PING but would refuse the enqueue script's writes.
var errRedisRefusesWrites = errors.New("redis refuses writes")

// errNotConsuming is the public output of a Consumer's check before its
// group is in place.
var errNotConsuming = errors.New("consumer group not in place yet")

// writableScript writes nothing, but its shebang declares that it may write
// (no "no-writes" flag), so Redis (7.0 and later) refuses it exactly when it
// would refuse a write: maxmemory reached (OOM), a read-only replica
// (READONLY), too few replicas (NOREPLICAS), a failed save (MISCONF); and it
// waits like a write while writes are paused.
var writableScript = redis.NewScript("#!lua\nreturn 1")

// writableWhenFullScript is writableScript that Redis runs past its
// maxmemory too, as it runs the consumer's scripts (whenFull).
var writableWhenFullScript = redis.NewScript(whenFull + "\nreturn 1")

// RedisCheck is the /health check of a service on the queue: Redis answers
// PING and would accept a write, since every transaction needs one. The
// public answer says only which of the two failed; the reason, which names
// hosts or socket paths, goes to the log.
func RedisCheck(log *slog.Logger, rdb *redis.Client) httpx.Check {
	return redisCheck(log, rdb, writableScript)
}

// ConsumerRedisCheck is RedisCheck for psp-connector, whose scripts Redis
// runs past its maxmemory (whenFull): a full Redis, which refuses new
// transactions, still passes it, since the connector still charges and
// records what was accepted; a Redis refusing every write does not.
func ConsumerRedisCheck(log *slog.Logger, rdb *redis.Client) httpx.Check {
	return redisCheck(log, rdb, writableWhenFullScript)
}

// redisCheck is RedisCheck with the script that stands for the service's
// writes.
func redisCheck(log *slog.Logger, rdb *redis.Client, writable *redis.Script) httpx.Check {
	return httpx.Check{Name: "redis", Run: func(ctx context.Context) error {
		if err := rdb.Ping(ctx).Err(); err != nil {
			log.WarnContext(ctx, "health check failed", "check", "redis", "error", err.Error())
			return errRedisDown
		}
		err := writable.Run(ctx, rdb, nil).Err()
		if err != nil && strings.Contains(err.Error(), "Error compiling script") {
			// A Redis before 7.0 knows no shebang: PING is all it can tell.
			return nil
		}
		if err != nil {
			log.WarnContext(ctx, "health check failed", "check", "redis", "error", err.Error())
			return errRedisRefusesWrites
		}
		return nil
	}}
}

// Check is the consumer's /health check: it fails until Run has the
// consumer group in place, so a readiness probe passes only once the
// connector is really consuming, and while Run is stuck (LiveCheck).
func (c *Consumer) Check() httpx.Check {
	return httpx.Check{Name: "consumer", Run: func(context.Context) error {
		if !c.consuming.Load() {
			return errNotConsuming
		}
		return c.stuck()
	}}
}

// LiveCheck is the consumer's /live check, for the stack's watchdog: it
// fails only when Run has started no step (an attempt at the group, a
// read, a round of charges, an attempt at a record…) for StallAfter, as
// when a write of the PSP's or of the log blocks or a call never returns,
// whether it consumes already or still waits for the group. A consumer
// waiting for Redis keeps starting steps (its retries), and one whose Run
// has not started or has returned passes: readiness (Check) is about
// whether it consumes.
func (c *Consumer) LiveCheck() httpx.Check {
	return httpx.Check{Name: "consumer", Run: func(context.Context) error { return c.stuck() }}
}

// stuck returns the checks' error for a stalled Run, or nil.
func (c *Consumer) stuck() error {
	if d := c.stalled(); d > 0 {
		return fmt.Errorf("consuming loop has started no step for %s (the most allowed is %s): it is stuck", d.Round(100*time.Millisecond), c.cfg.StallAfter)
	}
	return nil
}
