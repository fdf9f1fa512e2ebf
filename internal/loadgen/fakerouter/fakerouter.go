// Package fakerouter is an in-process stand-in for the router's merchant
// API (POST /auth/token, POST /transaction/transaction, GET
// /transaction/transactions/{id}), for testing the load generator's own
// accounting without a stack: it issues JWT-shaped tokens with an exp claim,
// accepts transactions, and "processes" each one ProcessAfter after it was
// accepted, except those it is told to lose. Its knobs make the failures the
// generator must count: lost transactions, 503s, throttled or slow logins,
// a status endpoint that is down.
//
// Idempotency-Keys work as core-api's do: a key stored before answers its
// transaction again (Idempotent-Replayed: true), or 422 for different
// parameters; a malformed key gets a 400.
//
// It checks no signature and stores nothing outside the process. Whether the
// generator agrees with the real stack is tested against the real stack
// (cmd/loadgen's stack test and e2e/).
package fakerouter

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme-payments/platform/internal/httpx"
	"github.com/acme-payments/platform/internal/token"
	"github.com/acme-payments/platform/internal/txqueue"
	"github.com/acme-payments/platform/internal/txrequest"
)

// Core-api's 503 texts for a transaction Redis did not answer in time
// (services/core-api/handlers.go): without a key the answer carries the
// id to look up; with one, the request is to be sent again with its key.
const (
	MaybeQueuedText      = "Transaction queue did not answer in time; the transaction may be queued: look up its id before sending it again"
	MaybeQueuedKeyedText = "Transaction queue did not answer in time; the transaction may be queued: retry with the same Idempotency-Key"
)

// Options are the fake's knobs; the zero value is a router that processes
// every transaction at once.
type Options struct {
	// TokenTTL is the tokens' lifetime; 0 means auth-api's, token.TTL.
	TokenTTL time.Duration
	// ProcessAfter: a transaction's status turns "processed" this long after
	// it was accepted.
	ProcessAfter time.Duration
	// LoseEvery > 0: every LoseEvery-th accepted transaction stays queued
	// for ever.
	LoseEvery int64
	// ForgetEvery > 0: every ForgetEvery-th accepted transaction is never
	// stored, so that its status lookup answers 404, as one whose record
	// Redis lost would.
	ForgetEvery int64
	// FailTxEvery > 0: every FailTxEvery-th transaction request gets a 503.
	FailTxEvery int64
	// MaybeQueuedEvery > 0: every MaybeQueuedEvery-th transaction request
	// (replays of a stored Idempotency-Key not counted) gets core-api's 503
	// "may be queued", with an id when the request had no key; every other
	// one of those is stored (queued, then processed) all the same, with
	// its key.
	MaybeQueuedEvery int64
	// ThrottleLogins: the first ThrottleLogins token requests get a 429.
	ThrottleLogins int64
	// LoginDelay: every token request takes this long.
	LoginDelay time.Duration
	// StatusDown: the status endpoint answers every lookup with a 503.
	StatusDown bool
	// OneID: every accepted transaction gets the same id.
	OneID bool
}

// Router is the fake. Its counters say what it was sent.
type Router struct {
	opts Options

	Logins     atomic.Int64 // token requests
	TxRequests atomic.Int64 // transaction requests
	Accepted   atomic.Int64 // transactions answered 200
	fresh      atomic.Int64 // transaction requests that were not replays

	mu     sync.Mutex
	txs    map[string]*fakeTx
	keys   map[string]int       // Idempotency-Key: transaction requests that carried it
	stored map[string]storedKey // user + " " + Idempotency-Key: what it stored
}

// storedKey is what an Idempotency-Key stored, as core-api's idempotency
// record: the transaction's id and the parameters a repeat must match.
type storedKey struct {
	id       string
	amount   int64
	currency string
}

type fakeTx struct {
	user    string
	created time.Time
	lost    bool
}

// New returns a Router with opts, for a test that serves its handlers on a
// mux of its own; Start serves them all.
func New(opts Options) *Router {
	if opts.TokenTTL == 0 {
		opts.TokenTTL = token.TTL
	}
	return &Router{opts: opts, txs: make(map[string]*fakeTx), keys: make(map[string]int), stored: make(map[string]storedKey)}
}

// Start serves a new Router on a loopback httptest server, closed when the
// test ends.
func Start(tb testing.TB, opts Options) (*Router, *httptest.Server) {
	tb.Helper()
	f := New(opts)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /auth/token", f.Token)
	mux.HandleFunc("POST /transaction/transaction", f.Transaction)
	mux.HandleFunc("GET /transaction/transactions/{id}", f.Status)
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	return f, srv
}

// Token is POST /auth/token: password "password" for any user; "charlie" is
// not enabled, as in the reference users.
func (f *Router) Token(w http.ResponseWriter, r *http.Request) {
	n := f.Logins.Add(1)
	time.Sleep(f.opts.LoginDelay)
	if n <= f.opts.ThrottleLogins {
		w.Header().Set("Retry-After", "0")
		httpx.WriteError(w, http.StatusTooManyRequests, "Too Many Requests")
		return
	}
	var in struct{ Username, Password string }
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Password != "password" {
		httpx.WriteError(w, http.StatusUnauthorized, "Invalid password")
		return
	}
	exp := time.Now().Add(f.opts.TokenTTL)
	payload, _ := json.Marshal(map[string]any{"username": in.Username, "exp": float64(exp.UnixNano()) / 1e9,
		"enabled": in.Username != "charlie"})
	tok := "eyJhbGciOiJIUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(payload) + ".c2ln"
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"token": tok})
}

// user checks a token's shape and expiry (not its signature) and returns its
// username, or "" when it is malformed or expired.
func (f *Router) user(tok string) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Username string  `json:"username"`
		Exp      float64 `json:"exp"`
	}
	if json.Unmarshal(b, &c) != nil || time.Now().After(time.Unix(0, int64(c.Exp*1e9))) {
		return ""
	}
	return c.Username
}

var currencyCode = regexp.MustCompile(`^[A-Z]{3}$`)

// Transaction is POST /transaction/transaction, token in the body or as a
// Bearer header.
func (f *Router) Transaction(w http.ResponseWriter, r *http.Request) {
	n := f.TxRequests.Add(1)
	key := r.Header.Get("Idempotency-Key")
	if key != "" {
		f.mu.Lock()
		f.keys[key]++
		f.mu.Unlock()
		if !txqueue.ValidIdempotencyKey(key) {
			httpx.WriteError(w, http.StatusBadRequest, "Idempotency-Key must be 1 to 255 printable ASCII characters")
			return
		}
	}
	if f.opts.FailTxEvery > 0 && n%f.opts.FailTxEvery == 0 {
		httpx.WriteError(w, http.StatusServiceUnavailable, "unavailable")
		return
	}
	var in struct {
		Token    string `json:"token"`
		Amount   int64  `json:"amount"`
		Currency string `json:"currency"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		httpx.WriteError(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	if in.Token == "" {
		in.Token = txrequest.BearerToken(r.Header.Get("Authorization"))
	}
	if in.Amount < 1 || !currencyCode.MatchString(in.Currency) {
		httpx.WriteError(w, http.StatusUnprocessableEntity, "bad body")
		return
	}
	u := f.user(in.Token)
	if u == "" {
		httpx.WriteError(w, http.StatusUnprocessableEntity, "Signature has expired")
		return
	}
	scope := u + " " + key
	if key != "" {
		// A key seen before answers its stored transaction, or 422.
		f.mu.Lock()
		s, seen := f.stored[scope]
		f.mu.Unlock()
		switch {
		case seen && (s.amount != in.Amount || s.currency != in.Currency):
			httpx.WriteError(w, http.StatusUnprocessableEntity, "Idempotency-Key was already used with a different request")
			return
		case seen:
			f.Accepted.Add(1)
			w.Header().Set("Idempotent-Replayed", "true")
			httpx.WriteJSON(w, http.StatusOK, map[string]any{"id": s.id, "amount": in.Amount, "currency": in.Currency, "status": "queued"})
			return
		}
	}
	// Counted apart from replays, so that how many 503s a run gets does
	// not depend on which requests came in between.
	fresh := f.fresh.Add(1)
	if every := f.opts.MaybeQueuedEvery; every > 0 && fresh%every == 0 {
		id := fmt.Sprintf("tx_%032x", 1<<40+n)
		if (fresh/every)%2 == 1 {
			f.store(id, u, scope, key, in.Amount, in.Currency, false)
		}
		if key != "" {
			httpx.WriteError(w, http.StatusServiceUnavailable, MaybeQueuedKeyedText)
			return
		}
		httpx.WriteErrorBody(w, http.StatusServiceUnavailable, httpx.ErrorBody{Error: MaybeQueuedText, ID: id})
		return
	}
	k := f.Accepted.Add(1)
	id := fmt.Sprintf("tx_%032x", k)
	if f.opts.OneID {
		id = "tx_same"
	}
	if f.opts.ForgetEvery <= 0 || k%f.opts.ForgetEvery != 0 {
		f.store(id, u, scope, key, in.Amount, in.Currency, f.opts.LoseEvery > 0 && k%f.opts.LoseEvery == 0)
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"id": id, "amount": in.Amount, "currency": in.Currency, "status": "queued"})
}

// store queues a transaction, and its key's record when it had a key.
func (f *Router) store(id, user, scope, key string, amount int64, currency string, lost bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.txs[id] = &fakeTx{user: user, created: time.Now(), lost: lost}
	if key != "" {
		f.stored[scope] = storedKey{id: id, amount: amount, currency: currency}
	}
}

// IdempotencyKeys says how many transaction requests carried an
// Idempotency-Key, and how many different keys they carried.
func (f *Router) IdempotencyKeys() (keyed, distinct int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range f.keys {
		keyed += n
	}
	return keyed, len(f.keys)
}

// Status is GET /transaction/transactions/{id}, for the token's own user
// only.
func (f *Router) Status(w http.ResponseWriter, r *http.Request) {
	if f.opts.StatusDown {
		httpx.WriteError(w, http.StatusServiceUnavailable, "unavailable")
		return
	}
	u := f.user(txrequest.BearerToken(r.Header.Get("Authorization")))
	if u == "" {
		httpx.WriteError(w, http.StatusUnauthorized, "no token")
		return
	}
	f.mu.Lock()
	tx, ok := f.txs[r.PathValue("id")]
	f.mu.Unlock()
	if !ok || tx.user != u {
		httpx.WriteError(w, http.StatusNotFound, "Transaction not found")
		return
	}
	out := map[string]any{"status": "queued", "created_at": tx.created, "updated_at": tx.created}
	if done := tx.created.Add(f.opts.ProcessAfter); !tx.lost && time.Now().After(done) {
		out["status"] = "processed"
		out["processed_at"] = done
		out["updated_at"] = done
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}
