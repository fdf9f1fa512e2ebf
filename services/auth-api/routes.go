package main

import (
	"log/slog"
	"net/http"

	"github.com/acme-payments/platform/internal/httpx"
	"github.com/acme-payments/platform/internal/token"
	"github.com/acme-payments/platform/internal/users"
)

// newHandler returns auth-api's whole HTTP API, wrapped in the shared
// middleware (request id, body cap, JSON 404/405/500). direct is the
// failed-login limit of the TCP port (nil: none).
func newHandler(log *slog.Logger, db *users.DB, issuer *token.Issuer, direct *failureLimit) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /health", httpx.HandleHealth())
	mux.Handle("GET /live", httpx.HandleHealth()) // answering is all of auth-api's work
	mux.Handle("POST /token", handleToken(log, db, issuer, direct))
	return httpx.Middleware(log, httpx.Routes(mux))
}
