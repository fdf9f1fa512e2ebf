package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/redis/go-redis/v9"

	"github.com/acme-payments/platform/internal/httpx"
	"github.com/acme-payments/platform/internal/token"
	"github.com/acme-payments/platform/internal/txqueue"
)

// newHandler returns core-api's whole HTTP API, wrapped in the shared
// middleware (request id, body cap, JSON 404/405/500).
func newHandler(log *slog.Logger, rdb *redis.Client, queue *txqueue.Queue, tokens *token.Verifier) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /health", httpx.HandleHealth(redisCheck(log, rdb)))
	mux.Handle("POST /transaction", handleCreateTransaction(log, tokens, queue))
	mux.Handle("GET /transactions/{id}", handleGetTransaction(log, tokens, queue))
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
