package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/redis/go-redis/v9"

	"github.com/acme-payments/platform/internal/httpx"
)

// newHandler returns psp-connector's HTTP API (only GET /health, for
// readiness probes), wrapped in the shared middleware.
func newHandler(log *slog.Logger, rdb *redis.Client) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /health", httpx.HandleHealth(redisCheck(log, rdb)))
	return httpx.Middleware(log, httpx.Routes(mux))
}

// redisCheck pings Redis; /health fails with 503 while it does not answer.
// The public answer says only that; the reason (which names hosts or socket
// paths) goes to the log.
func redisCheck(log *slog.Logger, rdb *redis.Client) httpx.Check {
	return httpx.Check{Name: "redis", Run: func(ctx context.Context) error {
		if err := rdb.Ping(ctx).Err(); err != nil {
			log.WarnContext(ctx, "health check failed", "check", "redis", "error", err.Error())
			return errRedisDown
		}
		return nil
	}}
}

// errRedisDown is the health check's public output when Redis does not answer.
var errRedisDown = errors.New("redis did not answer PING")
