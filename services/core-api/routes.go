package main

import (
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
	mux.Handle("GET /health", httpx.HandleHealth(txqueue.RedisCheck(log, rdb)))
	mux.Handle("GET /live", httpx.HandleHealth()) // answering is all of core-api's work; Redis down is not its fault
	mux.Handle("POST /transaction", handleCreateTransaction(log, tokens, queue))
	mux.Handle("GET /transactions/{id}", handleGetTransaction(log, tokens, queue))
	return httpx.Middleware(log, httpx.Routes(mux))
}
