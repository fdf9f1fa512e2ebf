package txqueue

import (
	"context"
	"errors"
	"log/slog"

	"github.com/redis/go-redis/v9"

	"github.com/acme-payments/platform/internal/httpx"
)

// errRedisDown is the public output of RedisCheck when Redis does not answer.
var errRedisDown = errors.New("redis did not answer PING")

// errNotConsuming is the public output of a Consumer's check before its
// group is in place.
var errNotConsuming = errors.New("consumer group not in place yet")

// RedisCheck is the /health check of a service on the queue: it pings Redis.
// The public answer says only that it failed; the reason, which names hosts
// or socket paths, goes to the log.
func RedisCheck(log *slog.Logger, rdb *redis.Client) httpx.Check {
	return httpx.Check{Name: "redis", Run: func(ctx context.Context) error {
		if err := rdb.Ping(ctx).Err(); err != nil {
			log.WarnContext(ctx, "health check failed", "check", "redis", "error", err.Error())
			return errRedisDown
		}
		return nil
	}}
}

// Check is the consumer's /health check: it fails until Run has the
// consumer group in place, so a readiness probe passes only once the
// connector is really consuming.
func (c *Consumer) Check() httpx.Check {
	return httpx.Check{Name: "consumer", Run: func(context.Context) error {
		if !c.consuming.Load() {
			return errNotConsuming
		}
		return nil
	}}
}
