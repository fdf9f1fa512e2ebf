package loadgen

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeAPI is an in-process stand-in for the router's HTTP API, good enough
// to test the generator's own accounting: it issues JWT-shaped tokens with an
// exp claim, accepts transactions, and "processes" each one processAfter
// after it was accepted, except the ids it is told to lose.
type fakeAPI struct {
	fakeOpts

	logins   atomic.Int64
	txReqs   atomic.Int64
	accepted atomic.Int64

	mu  sync.Mutex
	txs map[string]*fakeTx
}

// fakeOpts are the fake's knobs.
type fakeOpts struct {
	tokenTTL     time.Duration
	processAfter time.Duration
	// loseEvery > 0: every loseEvery-th accepted transaction stays queued.
	loseEvery int64
	// failTxEvery > 0: every failTxEvery-th transaction request gets a 503.
	failTxEvery int64
	// throttleLogins: the first throttleLogins token requests get a 429.
	throttleLogins int64
	// loginDelay: every token request takes this long.
	loginDelay time.Duration
	// statusDown: the status endpoint answers every lookup with a 503.
	statusDown bool
	// oneID: every accepted transaction gets the same id.
	oneID bool
}

type fakeTx struct {
	user     string
	created  time.Time
	lost     bool
	amount   int64
	currency string
}

func startFake(t *testing.T, opts fakeOpts) (*fakeAPI, *httptest.Server) {
	t.Helper()
	f := &fakeAPI{fakeOpts: opts}
	if f.tokenTTL == 0 {
		f.tokenTTL = 30 * time.Second
	}
	f.txs = make(map[string]*fakeTx)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /auth/token", f.token)
	mux.HandleFunc("POST /transaction/transaction", f.transaction)
	mux.HandleFunc("GET /transaction/transactions/{id}", f.status)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeAPI) token(w http.ResponseWriter, r *http.Request) {
	n := f.logins.Add(1)
	time.Sleep(f.loginDelay)
	if n <= f.throttleLogins {
		w.Header().Set("Retry-After", "0")
		http.Error(w, `{"error":"Too Many Requests"}`, http.StatusTooManyRequests)
		return
	}
	var in struct{ Username, Password string }
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Password != "password" {
		http.Error(w, `{"error":"Invalid password"}`, http.StatusUnauthorized)
		return
	}
	exp := time.Now().Add(f.tokenTTL)
	payload, _ := json.Marshal(map[string]any{"username": in.Username, "exp": float64(exp.UnixNano()) / 1e9,
		"enabled": in.Username != "charlie"}) // as the reference users
	tok := "eyJhbGciOiJIUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(payload) + ".c2ln"
	writeJSON(w, http.StatusOK, map[string]string{"token": tok})
}

// user checks a token and returns its username, or "" when it is invalid or
// expired.
func (f *fakeAPI) user(tok string) string {
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

func (f *fakeAPI) transaction(w http.ResponseWriter, r *http.Request) {
	n := f.txReqs.Add(1)
	if f.failTxEvery > 0 && n%f.failTxEvery == 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "unavailable"})
		return
	}
	var in struct {
		Token    string `json:"token"`
		Amount   int64  `json:"amount"`
		Currency string `json:"currency"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": err.Error()})
		return
	}
	if in.Token == "" {
		in.Token = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	if in.Amount < 1 || !currencyRE.MatchString(in.Currency) {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": "bad body"})
		return
	}
	u := f.user(in.Token)
	if u == "" {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": "Signature has expired"})
		return
	}
	k := f.accepted.Add(1)
	id := fmt.Sprintf("tx_%032x", k)
	if f.oneID {
		id = "tx_same"
	}
	f.mu.Lock()
	f.txs[id] = &fakeTx{user: u, created: time.Now(), lost: f.loseEvery > 0 && k%f.loseEvery == 0, amount: in.Amount, currency: in.Currency}
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "amount": in.Amount, "currency": in.Currency, "status": "queued"})
}

func (f *fakeAPI) status(w http.ResponseWriter, r *http.Request) {
	if f.statusDown {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "unavailable"})
		return
	}
	u := f.user(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	if u == "" {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "no token"})
		return
	}
	f.mu.Lock()
	tx, ok := f.txs[r.PathValue("id")]
	f.mu.Unlock()
	if !ok || tx.user != u {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "Transaction not found"})
		return
	}
	out := map[string]any{"status": "queued", "created_at": tx.created, "updated_at": tx.created}
	if done := tx.created.Add(f.processAfter); !tx.lost && time.Now().After(done) {
		out["status"] = "processed"
		out["processed_at"] = done
		out["updated_at"] = done
	}
	writeJSON(w, http.StatusOK, out)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
