package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/acme-payments/platform/internal/loadgen/fakerouter"
	"github.com/acme-payments/platform/internal/logging"
	"github.com/acme-payments/platform/internal/redistest"
	"github.com/acme-payments/platform/internal/servicetest"
	"github.com/acme-payments/platform/internal/token"
	"github.com/acme-payments/platform/internal/txqueue"
)

// testSecret is 64 hex digits, 256 bits: strong enough not to draw a
// warning (token.MinSecretBits).
var testSecret = []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")

// fixture is core-api's handler on a private Redis, behind httptest.
type fixture struct {
	url   string
	redis *redistest.Server
	rdb   *redis.Client
	logs  *servicetest.Buffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := redistest.Start(t)
	rdb, err := txqueue.Connect(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	logs := &servicetest.Buffer{}
	log := logging.New(logs, "core-api", -8) // everything, debug included
	h := newHandler(log, rdb, txqueue.NewQueue(rdb, time.Hour), token.NewVerifier(testSecret, nil))
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	})
	return &fixture{url: ts.URL, redis: srv, rdb: rdb, logs: logs}
}

// issue returns a token for a user of the reference data, signed with testSecret.
func issue(t *testing.T, userID int64, username string, enabled bool) string {
	t.Helper()
	raw, err := token.NewIssuer(testSecret, nil).Issue(userID, username, enabled)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// response is what a test needs of an answer.
type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// do sends a request and decodes its JSON body, failing the test if the body
// is not a JSON object.
func (f *fixture) do(t *testing.T, method, path, body string, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, f.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := response{status: res.StatusCode, header: res.Header, raw: string(raw)}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		t.Fatalf("%s %s: body %q is not a JSON object: %v", method, path, raw, err)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: got Content-Type %q, want application/json", method, path, ct)
	}
	return r
}

func (f *fixture) xlen(t *testing.T) int64 {
	t.Helper()
	n, err := f.rdb.XLen(context.Background(), txqueue.Stream).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// signWith signs claims with method and key, for tokens the issuer would never make.
func signWith(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	raw, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestCreateTransactionContract walks every row of the contract's core-api
// table, the check order, and the cases where the original crashed.
func TestCreateTransactionContract(t *testing.T) {
	f := newFixture(t)
	alice := issue(t, 1, "alice", true)
	charlie := issue(t, 3, "charlie", false)
	exp := time.Now().Add(20 * time.Second).Unix()
	expired, err := token.NewIssuer(testSecret, func() time.Time { return time.Now().Add(-time.Minute) }).Issue(1, "alice", true)
	if err != nil {
		t.Fatal(err)
	}
	otherSecret, err := token.NewIssuer([]byte("another-secret-another-secret-xx"), nil).Issue(1, "alice", true)
	if err != nil {
		t.Fatal(err)
	}
	hs384 := signWith(t, jwt.SigningMethodHS384, testSecret, jwt.MapClaims{"user_id": 1, "username": "alice", "enabled": true, "exp": exp})
	none := signWith(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{"user_id": 1, "username": "alice", "enabled": true, "exp": exp})
	noExp := signWith(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"user_id": 1, "username": "alice", "enabled": true})
	noUser := signWith(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"username": "alice", "enabled": true, "exp": exp})

	body := func(tok string, amount, currency any) string {
		m := map[string]any{"amount": amount, "currency": currency}
		if tok != "" {
			m["token"] = tok
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	tests := []struct {
		name       string
		body       string
		header     map[string]string
		wantStatus int
		wantError  string // "" for success
		wantAmount float64
	}{
		// The contract's table, row by row.
		{"token missing", `{"amount":100,"currency":"USD"}`, nil, 422, "Token is blank", 0},
		{"token empty", `{"token":"","amount":100,"currency":"USD"}`, nil, 422, "Token is blank", 0},
		{"token null", `{"token":null,"amount":100,"currency":"USD"}`, nil, 422, "Token is blank", 0},
		{"amount missing", `{"token":"` + alice + `","currency":"USD"}`, nil, 422, "Amount is blank", 0},
		{"amount empty", body(alice, "", "USD"), nil, 422, "Amount is blank", 0},
		{"amount 0", body(alice, 0, "USD"), nil, 422, "Amount is blank", 0},
		{"amount \"0\"", body(alice, "0", "USD"), nil, 422, "Amount is blank", 0},
		{"currency missing", `{"token":"` + alice + `","amount":100}`, nil, 422, "Currency is blank", 0},
		{"currency empty", body(alice, 100, ""), nil, 422, "Currency is blank", 0},
		{"currency lower case", body(alice, 100, "usd"), nil, 422, "Invalid currency code", 0},
		{"currency four letters", body(alice, 100, "USDX"), nil, 422, "Invalid currency code", 0},
		{"currency two letters", body(alice, 100, "US"), nil, 422, "Invalid currency code", 0},
		{"currency trailing newline", body(alice, 100, "USD\n"), nil, 422, "Invalid currency code", 0},
		{"currency digits", body(alice, 100, "123"), nil, 422, "Invalid currency code", 0},
		{"currency a number (USD's ISO 4217 numeric code)", body(alice, 100, 840), nil, 422, "Invalid currency code", 0},
		// Beyond the contract: a field given twice (nothing queued: the
		// fixture checks the stream after every refusal).
		{"amount given twice", `{"token":"` + alice + `","amount":1,"amount":1000,"currency":"USD"}`, nil, 422, "Field given twice: amount", 0},
		{"currency an array", body(alice, 100, []string{"USD"}), nil, 422, "Invalid currency code", 0},
		{"token malformed", body("not-a-jwt", 100, "USD"), nil, 422, token.ErrNotEnoughSegments.Error(), 0},
		{"token bad signature", body(otherSecret, 100, "USD"), nil, 422, token.ErrSignature.Error(), 0},
		{"token expired", body(expired, 100, "USD"), nil, 422, token.ErrExpired.Error(), 0},
		{"token wrong algorithm HS384", body(hs384, 100, "USD"), nil, 422, token.ErrAlgNotAllowed.Error(), 0},
		{"token algorithm none", body(none, 100, "USD"), nil, 422, token.ErrAlgNotAllowed.Error(), 0},
		{"token without exp", body(noExp, 100, "USD"), nil, 422, token.ErrMissingExp.Error(), 0},
		{"token without user_id", body(noUser, 100, "USD"), nil, 422, token.ErrMissingUserID.Error(), 0},
		{"user not enabled", body(charlie, 100, "USD"), nil, 403, "User not enabled for transactions", 0},
		{"success, amount a number", body(alice, 100, "USD"), nil, 200, "", 100},
		{"success, amount a digit string", body(alice, "100", "USD"), nil, 200, "", 100},
		{"success, largest amount", body(alice, 1_000_000_000, "EUR"), nil, 200, "", 1_000_000_000},

		// Check order: blank fields first, then the currency format, then the token.
		{"order: everything blank", `{}`, nil, 422, "Token is blank", 0},
		{"order: amount before currency", body("garbage", 0, ""), nil, 422, "Amount is blank", 0},
		{"order: currency blank before bad token", body("garbage", 100, ""), nil, 422, "Currency is blank", 0},
		{"order: currency format before token", body("garbage", 100, "usd"), nil, 422, "Invalid currency code", 0},
		{"order: currency format before disabled user", body(charlie, 100, "usd"), nil, 422, "Invalid currency code", 0},
		{"order: a currency number before token", body("garbage", 100, 840), nil, 422, "Invalid currency code", 0},

		// Bearer token.
		{"bearer token", `{"amount":100,"currency":"USD"}`, map[string]string{"Authorization": "Bearer " + alice}, 200, "", 100},
		{"bearer token, blank body token", body("", 7, "USD"), map[string]string{"Authorization": "bearer " + alice}, 200, "", 7},
		{"bearer token invalid", `{"amount":100,"currency":"USD"}`, map[string]string{"Authorization": "Bearer " + expired}, 422, token.ErrExpired.Error(), 0},
		{"body token wins over bearer", body(alice, 5, "USD"), map[string]string{"Authorization": "Bearer garbage"}, 200, "", 5},
		{"other auth scheme ignored", `{"amount":100,"currency":"USD"}`, map[string]string{"Authorization": "Basic " + alice}, 422, "Token is blank", 0},

		// Where the original crashed with a 500: a JSON 4xx instead.
		{"amount a float", body(alice, 1.5, "USD"), nil, 422, "", 0},
		{"amount a float string", body(alice, "1.5", "USD"), nil, 422, "", 0},
		{"amount negative", body(alice, -5, "USD"), nil, 422, "", 0},
		{"amount a boolean", body(alice, true, "USD"), nil, 422, "", 0},
		{"amount with spaces", body(alice, " 100", "USD"), nil, 422, "", 0},
		{"amount above the maximum", body(alice, 1_000_000_001, "USD"), nil, 422, "", 0},
		{"body not JSON", `amount=100`, nil, 422, "", 0},
		{"body a JSON array", `[1,2]`, nil, 422, "", 0},
		{"body empty", ``, nil, 422, "", 0},
		{"no Content-Type", body(alice, 100, "USD"), map[string]string{"Content-Type": ""}, 415, "Content-Type must be application/json", 0},
		{"Content-Type text/plain", body(alice, 100, "USD"), map[string]string{"Content-Type": "text/plain"}, 415, "Content-Type must be application/json", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.xlen(t)
			r := f.do(t, http.MethodPost, "/transaction", tt.body, tt.header)
			if r.status != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", r.status, r.raw, tt.wantStatus)
			}
			queued := f.xlen(t) - before
			if tt.wantStatus != http.StatusOK {
				msg, _ := r.body["error"].(string)
				if msg == "" || (tt.wantError != "" && msg != tt.wantError) || len(r.body) != 1 {
					t.Errorf("got body %s, want {\"error\": %q}", r.raw, tt.wantError)
				}
				if queued != 0 {
					t.Errorf("queued %d transactions, want 0", queued)
				}
				return
			}
			id, _ := r.body["id"].(string)
			if !txqueue.ValidID(id) || r.body["user_id"] != float64(1) || r.body["amount"] != tt.wantAmount ||
				r.body["status"] != "queued" || len(r.body) != 5 {
				t.Errorf("got body %s, want id, user_id 1, amount %v, currency, status queued", r.raw, tt.wantAmount)
			}
			if queued != 1 {
				t.Errorf("queued %d transactions, want 1", queued)
			}
		})
	}
}

// TestCreateTransactionAnswersAndQueuesWhatWasSent: the 200 carries the
// contract's user_id, amount and currency of this request (not a default),
// and the queued entry holds the same, under the id answered.
func TestCreateTransactionAnswersAndQueuesWhatWasSent(t *testing.T) {
	f := newFixture(t)
	becky := issue(t, 2, "becky", true)
	r := f.do(t, http.MethodPost, "/transaction", `{"token":"`+becky+`","amount":"250","currency":"EUR"}`, nil)
	if r.status != http.StatusOK {
		t.Fatalf("got %d %s, want 200", r.status, r.raw)
	}
	want := map[string]any{"user_id": float64(2), "amount": float64(250), "currency": "EUR", "status": "queued"}
	for k, v := range want {
		if r.body[k] != v {
			t.Errorf("response %s: got %v, want %v (body %s)", k, r.body[k], v, r.raw)
		}
	}
	entries, err := f.rdb.XRange(context.Background(), txqueue.Stream, "-", "+").Result()
	if err != nil || len(entries) != 1 {
		t.Fatalf("XRANGE: %v, %v; want one entry", entries, err)
	}
	if got := r.header.Get("X-Transaction-ID"); got == "" || got != r.body["id"] {
		t.Errorf("X-Transaction-ID: got %q, want the id answered, %v", got, r.body["id"])
	}
	queued := map[string]any{"id": r.body["id"], "user_id": "2", "amount": "250", "currency": "EUR"}
	for k, v := range queued {
		if got := entries[0].Values[k]; got != v {
			t.Errorf("queued %s: got %v, want %v", k, got, v)
		}
	}
}

func TestCreateTransactionBodyTooLarge(t *testing.T) {
	f := newFixture(t)
	big := `{"token":"` + strings.Repeat("a", 2<<20) + `"}`
	r := f.do(t, http.MethodPost, "/transaction", big, nil)
	if r.status != http.StatusRequestEntityTooLarge || r.body["error"] == nil {
		t.Errorf("got %d %s, want 413 with an error", r.status, r.raw)
	}
}

func TestRequestIDTravelsInTheQueue(t *testing.T) {
	f := newFixture(t)
	alice := issue(t, 1, "alice", true)
	r := f.do(t, http.MethodPost, "/transaction", `{"token":"`+alice+`","amount":9,"currency":"USD"}`,
		map[string]string{"X-Request-ID": "req-from-router"})
	if r.status != http.StatusOK || r.header.Get("X-Request-ID") != "req-from-router" {
		t.Fatalf("got %d, X-Request-ID %q; want 200 and the id echoed", r.status, r.header.Get("X-Request-ID"))
	}
	entries, err := f.rdb.XRange(context.Background(), txqueue.Stream, "-", "+").Result()
	if err != nil || len(entries) != 1 {
		t.Fatalf("XRANGE: %v, %v", entries, err)
	}
	if got := entries[0].Values["request_id"]; got != "req-from-router" {
		t.Errorf("request_id in the queue: got %v, want req-from-router", got)
	}
	for _, line := range strings.Split(strings.TrimSpace(f.logs.String()), "\n") {
		if !strings.Contains(line, `"request_id":"req-from-router"`) {
			t.Errorf("log line without the request id: %s", line)
		}
	}
}

func TestIdempotencyKey(t *testing.T) {
	f := newFixture(t)
	alice := issue(t, 1, "alice", true)
	becky := issue(t, 2, "becky", true)
	post := func(tok, body, key string) response {
		t.Helper()
		h := map[string]string{"Authorization": "Bearer " + tok}
		if key != "" {
			h["Idempotency-Key"] = key
		}
		return f.do(t, http.MethodPost, "/transaction", body, h)
	}
	first := post(alice, `{"amount":100,"currency":"USD"}`, "order-1")
	if first.status != http.StatusOK {
		t.Fatalf("first: got %d %s", first.status, first.raw)
	}
	tests := []struct {
		name         string
		tok, body    string
		key          string
		wantStatus   int
		wantSameID   bool
		wantReplayed bool
		wantXLen     int64
	}{
		// A fresh token each retry must not matter: only the parameters do.
		{"same key and body replays", issue(t, 1, "alice", true), `{"amount":"100","currency":"USD"}`, "order-1", 200, true, true, 1},
		{"same key, other amount", alice, `{"amount":101,"currency":"USD"}`, "order-1", 422, false, false, 1},
		{"same key, other currency", alice, `{"amount":100,"currency":"EUR"}`, "order-1", 422, false, false, 1},
		{"same key, other user", becky, `{"amount":100,"currency":"USD"}`, "order-1", 200, false, false, 2},
		{"other key", alice, `{"amount":100,"currency":"USD"}`, "order-2", 200, false, false, 3},
		{"key too long", alice, `{"amount":100,"currency":"USD"}`, strings.Repeat("k", 256), 400, false, false, 3},
		{"key not ASCII", alice, `{"amount":100,"currency":"USD"}`, "caf\u00e9", 400, false, false, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := post(tt.tok, tt.body, tt.key)
			if r.status != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", r.status, r.raw, tt.wantStatus)
			}
			if tt.wantStatus == http.StatusOK {
				if same := r.body["id"] == first.body["id"]; same != tt.wantSameID {
					t.Errorf("got id %v (first %v), want same = %v", r.body["id"], first.body["id"], tt.wantSameID)
				}
				if got := r.header.Get("Idempotent-Replayed") == "true"; got != tt.wantReplayed {
					t.Errorf("Idempotent-Replayed: got %v, want %v", got, tt.wantReplayed)
				}
				if tt.wantReplayed && r.raw != first.raw {
					t.Errorf("replay: got %s, want the first response %s", r.raw, first.raw)
				}
			}
			if got := f.xlen(t); got != tt.wantXLen {
				t.Errorf("stream length: got %d, want %d", got, tt.wantXLen)
			}
		})
	}
}

// TestIdempotencyKeyGivenTwice: two Idempotency-Key headers are refused
// (which one would the retry send?), and nothing is queued.
func TestIdempotencyKeyGivenTwice(t *testing.T) {
	f := newFixture(t)
	req, err := http.NewRequest(http.MethodPost, f.url+"/transaction", strings.NewReader(`{"amount":100,"currency":"USD"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+issue(t, 1, "alice", true))
	req.Header.Add("Idempotency-Key", "order-a")
	req.Header.Add("Idempotency-Key", "order-b")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if want := `{"error":"Idempotency-Key must be given once"}`; res.StatusCode != http.StatusBadRequest || strings.TrimSpace(string(raw)) != want {
		t.Errorf("got %d %s, want 400 %s", res.StatusCode, raw, want)
	}
	if n := f.xlen(t); n != 0 {
		t.Errorf("stream length: got %d, want 0", n)
	}
}

func TestGetTransaction(t *testing.T) {
	f := newFixture(t)
	alice := issue(t, 1, "alice", true)
	becky := issue(t, 2, "becky", true)
	created := f.do(t, http.MethodPost, "/transaction", `{"token":"`+alice+`","amount":250,"currency":"EUR"}`, nil)
	if created.status != http.StatusOK {
		t.Fatalf("create: got %d %s", created.status, created.raw)
	}
	id := created.body["id"].(string)
	expired, _ := token.NewIssuer(testSecret, func() time.Time { return time.Now().Add(-time.Minute) }).Issue(1, "alice", true)

	tests := []struct {
		name       string
		path       string
		header     map[string]string
		wantStatus int
		wantError  string
	}{
		{"owner, bearer", "/transactions/" + id, map[string]string{"Authorization": "Bearer " + alice}, 200, ""},
		{"owner, query token", "/transactions/" + id + "?token=" + alice, nil, 200, ""},
		{"another user", "/transactions/" + id, map[string]string{"Authorization": "Bearer " + becky}, 404, "Transaction not found"},
		{"unknown id", "/transactions/tx_00000000000000000000000000000000", map[string]string{"Authorization": "Bearer " + alice}, 404, "Transaction not found"},
		{"malformed id", "/transactions/transaction:1", map[string]string{"Authorization": "Bearer " + alice}, 404, "Transaction not found"},
		{"no token", "/transactions/" + id, nil, 422, "Token is blank"},
		{"expired token", "/transactions/" + id, map[string]string{"Authorization": "Bearer " + expired}, 422, token.ErrExpired.Error()},
		{"bad token in query", "/transactions/" + id + "?token=abc", nil, 422, token.ErrNotEnoughSegments.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.do(t, http.MethodGet, tt.path, "", tt.header)
			if r.status != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", r.status, r.raw, tt.wantStatus)
			}
			if tt.wantError != "" {
				if r.body["error"] != tt.wantError {
					t.Errorf("got %s, want error %q", r.raw, tt.wantError)
				}
				return
			}
			if r.body["id"] != id || r.body["user_id"] != float64(1) || r.body["amount"] != float64(250) ||
				r.body["currency"] != "EUR" || r.body["status"] != "queued" {
				t.Errorf("got %s, want the queued EUR 250 record of %s", r.raw, id)
			}
			for _, k := range []string{"created_at", "updated_at"} {
				s, _ := r.body[k].(string)
				if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
					t.Errorf("%s: got %q, want an RFC 3339 time", k, s)
				}
			}
		})
	}
}

// TestGetTransactionClientGone: a client that goes away while its status is
// looked up ends the Redis call; that is logged at info as the client's
// doing, not as the queue failing.
func TestGetTransactionClientGone(t *testing.T) {
	f := newFixture(t)
	logs := &servicetest.Buffer{}
	h := newHandler(logging.New(logs, "core-api", -8), f.rdb, txqueue.NewQueue(f.rdb, time.Hour), token.NewVerifier(testSecret, nil))
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // gone before the lookup
	r := httptest.NewRequest(http.MethodGet, "/transactions/tx_00000000000000000000000000000000", nil).WithContext(ctx)
	r.Header.Set("Authorization", "Bearer "+issue(t, 1, "alice", true))
	h.ServeHTTP(httptest.NewRecorder(), r)
	if strings.Contains(logs.String(), `"level":"ERROR"`) || !strings.Contains(logs.String(), "the client went away") {
		t.Errorf("logs: got\n%s\nwant an info line saying the client went away, and no error", logs.String())
	}
}

func TestRoutesAnswerJSON(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		method, path string
		wantStatus   int
	}{
		{http.MethodGet, "/nope", 404},
		{http.MethodGet, "/transaction", 405},
		{http.MethodPost, "/health", 405},
		{http.MethodDelete, "/transactions/tx_00000000000000000000000000000000", 405},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r := f.do(t, tt.method, tt.path, "", nil)
			if r.status != tt.wantStatus || r.body["error"] == nil {
				t.Errorf("got %d %s, want %d with an error", r.status, r.raw, tt.wantStatus)
			}
		})
	}
}

func TestHealthAndRedisOutage(t *testing.T) {
	f := newFixture(t)
	alice := issue(t, 1, "alice", true)
	r := f.do(t, http.MethodGet, "/health", "", nil)
	checks, _ := r.body["checks"].(map[string]any)
	if r.status != http.StatusOK || r.body["status"] != "pass" || checks["redis"] == nil {
		t.Fatalf("with Redis up: got %d %s, want 200 pass with a redis check", r.status, r.raw)
	}

	f.redis.Kill()
	r = f.do(t, http.MethodGet, "/health", "", nil)
	if r.status != http.StatusServiceUnavailable || r.body["status"] != "fail" {
		t.Errorf("with Redis down: got %d %s, want 503 fail", r.status, r.raw)
	}
	// Redis down is no reason to restart core-api: the watchdog's /live passes.
	if r := f.do(t, http.MethodGet, "/live", "", nil); r.status != http.StatusOK || r.body["status"] != "pass" {
		t.Errorf("GET /live with Redis down: got %d %s, want 200 pass", r.status, r.raw)
	}
	r = f.do(t, http.MethodPost, "/transaction", `{"token":"`+alice+`","amount":1,"currency":"USD"}`, nil)
	if r.status != http.StatusServiceUnavailable || r.body["error"] == nil {
		t.Errorf("POST /transaction with Redis down: got %d %s, want a JSON 503", r.status, r.raw)
	}
	r = f.do(t, http.MethodGet, "/transactions/tx_00000000000000000000000000000000", "", map[string]string{"Authorization": "Bearer " + alice})
	if r.status != http.StatusServiceUnavailable {
		t.Errorf("GET /transactions/{id} with Redis down: got %d %s, want 503", r.status, r.raw)
	}
	if strings.Contains(r.raw, "redis") || strings.Contains(r.raw, "dial") {
		t.Errorf("503 body leaks internals: %s", r.raw)
	}

	f.redis.Restart(t)
	r = f.do(t, http.MethodPost, "/transaction", `{"token":"`+alice+`","amount":1,"currency":"USD"}`, nil)
	if r.status != http.StatusOK {
		t.Errorf("after Redis is back: got %d %s, want 200", r.status, r.raw)
	}
}

// TestTransactionRedisTooSlowMayBeQueued: when Redis does not answer the
// enqueue in time (here: busy 2.5 s, core-api gives up after 1 s), the
// transaction may still be queued, and is once Redis gets to it. So the 503
// must not say "try again", which would queue it twice: without an
// Idempotency-Key it gives the id to look up; with one, it says to retry
// with the same key, and that retry answers the transaction Redis stored.
func TestTransactionRedisTooSlowMayBeQueued(t *testing.T) {
	f := newFixture(t)
	alice := issue(t, 1, "alice", true)
	body := `{"token":"` + alice + `","amount":7,"currency":"USD"}`
	bearer := map[string]string{"Authorization": "Bearer " + alice}
	// A connection in the pool, so that the enqueue itself is what waits.
	if r := f.do(t, http.MethodGet, "/health", "", nil); r.status != http.StatusOK {
		t.Fatalf("GET /health: got %d %s", r.status, r.raw)
	}

	wait := f.redis.Busy(t, 2500*time.Millisecond)
	r := f.do(t, http.MethodPost, "/transaction", body, nil)
	wait()
	id, _ := r.body["id"].(string)
	if r.status != http.StatusServiceUnavailable || r.body["error"] != errMaybeQueued.msg || !txqueue.ValidID(id) {
		t.Fatalf("POST /transaction while Redis is too slow: got %d %s, want 503 %q with the transaction's id", r.status, r.raw, errMaybeQueued.msg)
	}
	if got := r.header.Get("X-Transaction-ID"); got != id {
		t.Errorf("X-Transaction-ID of the 503: got %q, want the id it gives, %s", got, id)
	}
	if got := f.do(t, http.MethodGet, "/transactions/"+id, "", bearer); got.status != http.StatusOK || got.body["status"] != txqueue.StatusQueued {
		t.Errorf("GET /transactions/%s once Redis is free: got %d %s, want 200 queued", id, got.status, got.raw)
	}

	keyed := map[string]string{"Idempotency-Key": "order-42"}
	wait = f.redis.Busy(t, 2500*time.Millisecond)
	r = f.do(t, http.MethodPost, "/transaction", body, keyed)
	wait()
	if r.status != http.StatusServiceUnavailable || r.body["error"] != errMaybeQueuedKeyed.msg || r.body["id"] != nil {
		t.Fatalf("POST /transaction with an Idempotency-Key while Redis is too slow: got %d %s, want 503 %q without an id", r.status, r.raw, errMaybeQueuedKeyed.msg)
	}
	if got := r.header.Get("X-Transaction-ID"); got != "" {
		t.Errorf("X-Transaction-ID of the keyed 503: got %q, want none (the stored transaction may be another id)", got)
	}
	retry := f.do(t, http.MethodPost, "/transaction", body, keyed)
	if retry.status != http.StatusOK || retry.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("the retry with the same Idempotency-Key: got %d %s (Idempotent-Replayed %q), want 200, replayed", retry.status, retry.raw, retry.header.Get("Idempotent-Replayed"))
	}
	if got := retry.header.Get("X-Transaction-ID"); got == "" || got != retry.body["id"] {
		t.Errorf("X-Transaction-ID of the replay: got %q, want the id answered, %v", got, retry.body["id"])
	}
	if n := f.rdb.XLen(context.Background(), txqueue.Stream).Val(); n != 2 {
		t.Errorf("stream length %d, want 2: one transaction per request the client sent once", n)
	}
}

// BenchmarkCreateTransaction measures POST /transaction in process (no
// network): decode, verify, enqueue on a real Redis, encode.
func BenchmarkCreateTransaction(b *testing.B) {
	srv := redistest.Start(b)
	rdb, err := txqueue.Connect(context.Background(), srv.URL)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rdb.Close() })
	log := logging.New(io.Discard, "core-api", 0)
	h := newHandler(log, rdb, txqueue.NewQueue(rdb, time.Hour), token.NewVerifier(testSecret, nil))
	raw, err := token.NewIssuer(testSecret, nil).Issue(1, "alice", true)
	if err != nil {
		b.Fatal(err)
	}
	servicetest.BenchmarkPostJSON(b, h, "/transaction", `{"token":"`+raw+`","amount":100,"currency":"USD"}`)
}

// TestHealthFailsWhileRedisRefusesWrites: a Redis that answers PING but
// refuses every write (maxmemory reached, a read-only replica, too few
// replicas, writes paused) turns every POST /transaction into a 503, so
// /health must say "fail" too, and pass again once writes are accepted.
func TestHealthFailsWhileRedisRefusesWrites(t *testing.T) {
	f := newFixture(t)
	alice := issue(t, 1, "alice", true)
	admin := f.redis.Client(t)
	ctx := context.Background()
	tests := []struct {
		name       string
		set, reset [][]any
	}{
		{"maxmemory reached", [][]any{{"CONFIG", "SET", "maxmemory", "1"}}, [][]any{{"CONFIG", "SET", "maxmemory", "0"}}},
		{"read-only replica", [][]any{{"REPLICAOF", "127.0.0.1", "1"}}, [][]any{{"REPLICAOF", "NO", "ONE"}}},
		{"too few replicas", [][]any{{"CONFIG", "SET", "min-replicas-to-write", "1"}}, [][]any{{"CONFIG", "SET", "min-replicas-to-write", "0"}}},
		{"writes paused", [][]any{{"CLIENT", "PAUSE", "60000", "WRITE"}}, [][]any{{"CLIENT", "UNPAUSE"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, c := range tt.set {
				if err := admin.Do(ctx, c...).Err(); err != nil {
					t.Fatalf("%v: %v", c, err)
				}
			}
			post := f.do(t, http.MethodPost, "/transaction", `{"token":"`+alice+`","amount":1,"currency":"USD"}`, nil)
			health := f.do(t, http.MethodGet, "/health", "", nil)
			for _, c := range tt.reset {
				if err := admin.Do(ctx, c...).Err(); err != nil {
					t.Fatalf("%v: %v", c, err)
				}
			}
			if post.status != http.StatusServiceUnavailable {
				t.Errorf("POST /transaction: got %d %s, want 503", post.status, post.raw)
			}
			if health.status != http.StatusServiceUnavailable || health.body["status"] != "fail" {
				t.Errorf("GET /health while POST /transaction answers %d: got %d %s, want 503 fail", post.status, health.status, health.raw)
			}
			if again := f.do(t, http.MethodGet, "/health", "", nil); again.status != http.StatusOK {
				t.Errorf("GET /health once writes are accepted again: got %d %s, want 200", again.status, again.raw)
			}
		})
	}
}

// The load generator's tests run against a fake router that answers core-api's
// 503s "may be queued" with copies of their texts; the generator tells them
// apart from other 503s by those texts.
func TestLoadgenFakeRouterAnswersWithCoreAPIsTexts(t *testing.T) {
	for _, tc := range []struct {
		name       string
		core, fake string
	}{
		{"may be queued, with a key", errMaybeQueuedKeyed.msg, fakerouter.MaybeQueuedKeyedText},
		{"may be queued, without a key", errMaybeQueued.msg, fakerouter.MaybeQueuedText},
	} {
		if tc.core != tc.fake {
			t.Errorf("%s: core-api says %q, the fake router %q", tc.name, tc.core, tc.fake)
		}
	}
}
