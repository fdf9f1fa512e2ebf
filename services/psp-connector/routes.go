package main

import (
	"log/slog"
	"net/http"

	"github.com/redis/go-redis/v9"

	"github.com/acme-payments/platform/internal/httpx"
	"github.com/acme-payments/platform/internal/txqueue"
)

// newHandler returns psp-connector's HTTP API, wrapped in the shared
// middleware: GET /health, for readiness probes (Redis answers, the consumer
// group is in place, the consuming loop is not stuck), and GET /live, for
// the stack's watchdog (only the loop: 503 when it is stuck).
func newHandler(log *slog.Logger, rdb *redis.Client, consumer *txqueue.Consumer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /health", httpx.HandleHealth(txqueue.ConsumerRedisCheck(log, rdb), consumer.Check()))
	mux.Handle("GET /live", httpx.HandleHealth(consumer.LiveCheck()))
	return httpx.Middleware(log, httpx.Routes(mux))
}
