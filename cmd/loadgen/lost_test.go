package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// neverProcessingAPI is a router that logs in and accepts every transaction
// but whose connector never processes one: every status stays "queued".
func neverProcessingAPI(t *testing.T) *httptest.Server {
	t.Helper()
	var n atomic.Int64
	answer := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /auth/token", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Username string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		payload, _ := json.Marshal(map[string]any{"user_id": 1, "username": in.Username, "enabled": true,
			"exp": time.Now().Add(30 * time.Second).Unix()})
		answer(w, map[string]string{"token": "eyJhbGciOiJIUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(payload) + ".c2ln"})
	})
	mux.HandleFunc("POST /transaction/transaction", func(w http.ResponseWriter, r *http.Request) {
		answer(w, map[string]any{"id": fmt.Sprintf("tx_%032x", n.Add(1)), "status": "queued"})
	})
	mux.HandleFunc("GET /transaction/transactions/{id}", func(w http.ResponseWriter, r *http.Request) {
		answer(w, map[string]any{"status": "queued"})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestRunFailsWhenTransactionsAreLost: the command's promise, "exits
// non-zero when an accepted transaction was never processed". run's error is
// what main turns into exit status 1, and the report says FAIL.
func TestRunFailsWhenTransactionsAreLost(t *testing.T) {
	srv := neverProcessingAPI(t)
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"loadgen", "--target", srv.URL, "--redis-url", "none",
		"-c", "1", "--count", "5", "--drain-timeout", "200ms", "--quiet"}, nil, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "5 of 5 checked accepted transactions were never processed") {
		t.Errorf("got error %v, want one saying the 5 accepted transactions were never processed", err)
	}
	if !strings.Contains(out.String(), "FAIL:") {
		t.Errorf("report does not say FAIL:\n%s", out.String())
	}
}
