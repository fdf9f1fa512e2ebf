package main

import (
	"log/slog"
	"net/http"

	"github.com/redis/go-redis/v9"

	"github.com/acme-payments/platform/internal/httpx"
	"github.com/acme-payments/platform/internal/txqueue"
)

// newHandler returns psp-connector's HTTP API (only GET /health, for
// readiness probes: Redis answers and the consumer group is in place),
// wrapped in the shared middleware.
func newHandler(log *slog.Logger, rdb *redis.Client, consumer *txqueue.Consumer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /health", httpx.HandleHealth(txqueue.RedisCheck(log, rdb), consumer.Check()))
	return httpx.Middleware(log, httpx.Routes(mux))
}
