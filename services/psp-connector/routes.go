package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/redis/go-redis/v9"

	"github.com/acme-payments/platform/internal/httpx"
)

// newHandler returns psp-connector's HTTP API (only GET /health, for
// readiness probes), wrapped in the shared middleware.
func newHandler(log *slog.Logger, rdb *redis.Client) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /health", httpx.HandleHealth(redisCheck(rdb)))
	return httpx.Middleware(log, httpx.Routes(mux))
}

// redisCheck pings Redis; /health fails with 503 while it does not answer.
func redisCheck(rdb *redis.Client) httpx.Check {
	return httpx.Check{Name: "redis", Run: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }}
}
