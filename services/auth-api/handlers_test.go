package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/acme-payments/platform/internal/httpx"
	"github.com/acme-payments/platform/internal/logging"
	"github.com/acme-payments/platform/internal/servicetest"
	"github.com/acme-payments/platform/internal/token"
	"github.com/acme-payments/platform/internal/users"
)

// testSecret is 64 hex digits, 256 bits: strong enough not to draw a
// warning (token.MinSecretBits).
var testSecret = []byte("7465737420736563726574206f6620617574682d617069207465737473212121")

// newTestServer starts auth-api's real handler (the one run builds) over the
// reference users, and returns its URL and log.
func newTestServer(t *testing.T) (string, *servicetest.Buffer) {
	t.Helper()
	logs := &servicetest.Buffer{}
	log := logging.New(logs, "auth-api", slog.LevelDebug)
	db, err := users.Load("")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newHandler(log, db, token.NewIssuer(testSecret, nil), newFailureLimit(20, 10*time.Second, time.Now)))
	t.Cleanup(srv.Close)
	return srv.URL, logs
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func do(t *testing.T, method, url, contentType, body string, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(res.Body); err != nil {
		t.Fatal(err)
	}
	out := response{status: res.StatusCode, header: res.Header, raw: buf.String()}
	if err := json.Unmarshal(buf.Bytes(), &out.body); err != nil {
		t.Fatalf("%s %s: body %q is not a JSON object: %v", method, url, buf.String(), err)
	}
	if got := res.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("got Content-Type %q, want application/json", got)
	}
	return out
}

func TestTokenContract(t *testing.T) {
	url, _ := newTestServer(t)
	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantError  string // "" for success
	}{
		// The contract's table, row by row.
		{"username missing", `{"password":"password"}`, 422, "Username is blank"},
		{"username empty", `{"username":"","password":"password"}`, 422, "Username is blank"},
		{"username null", `{"username":null,"password":"password"}`, 422, "Username is blank"},
		{"both missing", `{}`, 422, "Username is blank"},
		{"password missing", `{"username":"alice"}`, 422, "Password is blank"},
		{"password empty", `{"username":"alice","password":""}`, 422, "Password is blank"},
		{"password missing, unknown user", `{"username":"dave"}`, 422, "Password is blank"},
		{"no such user", `{"username":"dave","password":"password"}`, 404, "User not found"},
		{"username in other case", `{"username":"Alice","password":"password"}`, 404, "User not found"},
		{"wrong password", `{"username":"alice","password":"wrong"}`, 401, "Invalid password"},
		{"success alice", `{"username":"alice","password":"password"}`, 200, ""},
		{"success becky", `{"username":"becky","password":"password"}`, 200, ""},
		{"success charlie (disabled users get tokens too)", `{"username":"charlie","password":"password"}`, 200, ""},

		// Bodies the original crashed on: JSON 4xx, never 500.
		{"empty body", ``, 422, ""},
		{"not JSON", `username=alice&password=password`, 422, ""},
		{"JSON array", `[{"username":"alice"}]`, 422, ""},
		{"JSON null", `null`, 422, ""},
		{"truncated", `{"username":"alice",`, 422, ""},
		{"username false is blank", `{"username":false,"password":"password"}`, 422, "Username is blank"},
		{"password 0 is blank", `{"username":"alice","password":0}`, 422, "Password is blank"},

		// A username or password that is not a string: the original compared
		// it with ==, which was False, so the contract's "no such user" or
		// "wrong password", never a crash.
		{"username a number", `{"username":5,"password":"password"}`, 404, "User not found"},
		{"username an array", `{"username":["alice"],"password":"password"}`, 404, "User not found"},
		{"username true", `{"username":true,"password":"password"}`, 404, "User not found"},
		{"username a number, password blank", `{"username":5,"password":""}`, 422, "Password is blank"},
		{"username and password numbers", `{"username":5,"password":5}`, 404, "User not found"},
		{"password a list", `{"username":"alice","password":["password"]}`, 401, "Invalid password"},
		{"password true", `{"username":"alice","password":true}`, 401, "Invalid password"},
		{"password a number", `{"username":"alice","password":12345}`, 401, "Invalid password"},
		{"password a number, unknown user", `{"username":"dave","password":12345}`, 404, "User not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, http.MethodPost, url+"/token", "application/json", tt.body)
			if res.status != tt.wantStatus {
				t.Errorf("got status %d, want %d (body %s)", res.status, tt.wantStatus, res.raw)
			}
			if tt.wantStatus == http.StatusOK {
				if len(res.body) != 1 || res.body["token"] == nil {
					t.Fatalf("got %s, want {\"token\": ...}", res.raw)
				}
				return
			}
			msg, _ := res.body["error"].(string)
			if len(res.body) != 1 || msg == "" {
				t.Fatalf("got %s, want {\"error\": ...}", res.raw)
			}
			if tt.wantError != "" && msg != tt.wantError {
				t.Errorf("got error %q, want %q", msg, tt.wantError)
			}
		})
	}
}

func TestTokenClaims(t *testing.T) {
	url, _ := newTestServer(t)
	v := token.NewVerifier(testSecret, nil)
	tests := []struct {
		username string
		want     token.Claims
	}{
		{"alice", token.Claims{UserID: 1, Username: "alice", Enabled: true}},
		{"becky", token.Claims{UserID: 2, Username: "becky", Enabled: true}},
		{"charlie", token.Claims{UserID: 3, Username: "charlie", Enabled: false}},
	}
	for _, tt := range tests {
		t.Run(tt.username, func(t *testing.T) {
			before := time.Now().Truncate(time.Second)
			res := do(t, http.MethodPost, url+"/token", "application/json", `{"username":"`+tt.username+`","password":"password"}`)
			raw, _ := res.body["token"].(string)
			got, err := v.Verify(raw)
			if err != nil {
				t.Fatalf("got %v verifying %q, want none", err, raw)
			}
			if d := got.ExpiresAt.Sub(before); d < token.TTL || d > token.TTL+time.Second {
				t.Errorf("got exp %v after the request, want %v", d, token.TTL)
			}
			got.ExpiresAt = time.Time{}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestTokenRequiresJSONContentType(t *testing.T) {
	url, _ := newTestServer(t)
	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded"} {
		t.Run("Content-Type "+ct, func(t *testing.T) {
			res := do(t, http.MethodPost, url+"/token", ct, `{"username":"alice","password":"password"}`)
			if res.status != http.StatusUnsupportedMediaType || res.body["error"] != "Content-Type must be application/json" {
				t.Errorf("got %d %s, want 415 with a JSON error", res.status, res.raw)
			}
		})
	}
}

// TestHealth: GET /health (readiness) and GET /live (the stack's watchdog)
// both pass with no checks: auth-api uses nothing but itself.
func TestHealth(t *testing.T) {
	url, _ := newTestServer(t)
	for _, path := range []string{"/health", "/live"} {
		res := do(t, http.MethodGet, url+path, "", "")
		if res.status != http.StatusOK {
			t.Errorf("GET %s: got status %d, want 200", path, res.status)
		}
		if got, want := res.raw, `{"status":"pass","checks":{}}`+"\n"; got != want {
			t.Errorf("GET %s: got %q, want %q", path, got, want)
		}
	}
}

func TestRoutingErrors(t *testing.T) {
	url, _ := newTestServer(t)
	tests := []struct {
		name, method, path, body string
		wantStatus               int
	}{
		{"unknown path", http.MethodGet, "/nope", "", 404},
		{"GET /token", http.MethodGet, "/token", "", 405},
		{"POST /health", http.MethodPost, "/health", "", 405},
		{"body over 1 MiB", http.MethodPost, "/token", `{"username":"` + strings.Repeat("a", httpx.MaxBodyBytes) + `"}`, 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := do(t, tt.method, url+tt.path, "application/json", tt.body)
			if res.status != tt.wantStatus {
				t.Errorf("got status %d, want %d (%s)", res.status, tt.wantStatus, res.raw)
			}
			if msg, _ := res.body["error"].(string); msg == "" {
				t.Errorf("got %s, want a JSON error", res.raw)
			}
		})
	}
}

// TestFailedLoginsAreLoggedWithoutPassword: each failed login is logged
// with its request id and reason, and names the user only when the users
// file has one of that name. A password typed into the username field is
// an unknown name: it must not reach the log, only a fingerprint of it.
func TestFailedLoginsAreLoggedWithoutPassword(t *testing.T) {
	url, logs := newTestServer(t)
	const passwordLike = "Tr0ub4dor&3-hunter2"
	tests := []struct {
		name, body, wantReason string
		wantUsername           string // "": no username key
		wantFingerprint        bool   // a username_fingerprint of 8 hex digits
	}{
		{"known user, wrong password", `{"username":"alice","password":"hunter2-secret"}`, "invalid_password", "alice", false},
		{"known user, blank password", `{"username":"becky"}`, "bad_request: Password is blank", "becky", false},
		{"known user, password not a string", `{"username":"charlie","password":["hunter2-secret"]}`, "invalid_password", "charlie", false},
		{"password typed as the username", `{"username":"` + passwordLike + `","password":"alice"}`, "user_not_found", "", true},
		{"password typed as the username, blank password", `{"username":"` + passwordLike + `"}`, "bad_request: Password is blank", "", true},
		{"unknown user", `{"username":"dave","password":"hunter2-secret"}`, "user_not_found", "", true},
		{"a known name in another case is unknown", `{"username":"Alice","password":"password"}`, "user_not_found", "", true},
		{"username not a string", `{"username":12345,"password":"hunter2-secret"}`, "user_not_found", "", false},
		{"username blank", `{"username":"","password":"hunter2-secret"}`, "bad_request: Username is blank", "", false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requestID := fmt.Sprintf("req-%d", i)
			res := do(t, http.MethodPost, url+"/token", "application/json", tt.body, httpx.RequestIDHeader, requestID)
			if got := res.header.Get(httpx.RequestIDHeader); got != requestID {
				t.Errorf("got X-Request-ID %q, want %q", got, requestID)
			}
			line, found := loginFailedLine(logs.String(), requestID)
			if found == nil {
				t.Fatalf("no \"login failed\" line with request_id %s in:\n%s", requestID, logs.String())
			}
			if found["reason"] != tt.wantReason {
				t.Errorf("got reason %v, want %q", found["reason"], tt.wantReason)
			}
			if got, ok := found["username"]; tt.wantUsername == "" && ok || tt.wantUsername != "" && got != tt.wantUsername {
				t.Errorf("got username %v (present: %v), want %q", got, ok, tt.wantUsername)
			}
			fp, ok := found["username_fingerprint"].(string)
			if ok != tt.wantFingerprint || ok && (len(fp) != 8 || strings.Trim(fp, "0123456789abcdef") != "") {
				t.Errorf("got username_fingerprint %v (present: %v), want 8 hex digits: %v", found["username_fingerprint"], ok, tt.wantFingerprint)
			}
			if strings.Contains(line, "hunter2") {
				t.Errorf("the log line holds a password: %s", line)
			}
		})
	}
	if strings.Contains(logs.String(), "hunter2") || strings.Contains(logs.String(), "Tr0ub4dor") {
		t.Errorf("the log holds a password:\n%s", logs.String())
	}
}

// TestUnknownUsernameFingerprint: an unknown username's fingerprint is the
// same for each login with it in one process, so that one client retrying
// one name shows as such, differs between names, and differs between
// processes (the key is drawn at start), so that it is no digest a guess
// could be tested against.
func TestUnknownUsernameFingerprint(t *testing.T) {
	urlA, logsA := newTestServer(t)
	urlB, logsB := newTestServer(t) // another process: another key
	login := func(url string, logs *servicetest.Buffer, requestID, username string) string {
		t.Helper()
		do(t, http.MethodPost, url+"/token", "application/json", `{"username":"`+username+`","password":"x"}`, httpx.RequestIDHeader, requestID)
		_, rec := loginFailedLine(logs.String(), requestID)
		fp, _ := rec["username_fingerprint"].(string)
		if fp == "" {
			t.Fatalf("no username_fingerprint for %q in:\n%s", username, logs.String())
		}
		return fp
	}
	first := login(urlA, logsA, "a-1", "my-secret-password")
	tests := []struct {
		name      string
		got       string
		wantEqual bool
	}{
		{"the same name again, same process", login(urlA, logsA, "a-2", "my-secret-password"), true},
		{"another name, same process", login(urlA, logsA, "a-3", "my-secret-passwore"), false},
		{"the same name, another process", login(urlB, logsB, "b-1", "my-secret-password"), false},
	}
	for _, tt := range tests {
		if (tt.got == first) != tt.wantEqual {
			t.Errorf("%s: got %s against %s, want equal: %v", tt.name, tt.got, first, tt.wantEqual)
		}
	}
}

// loginFailedLine finds the "login failed" line of requestID in logs, and
// returns it raw and decoded (nil when there is none).
func loginFailedLine(logs, requestID string) (string, map[string]any) {
	for _, line := range strings.Split(logs, "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "login failed" && rec["request_id"] == requestID {
			return line, rec
		}
	}
	return "", nil
}

func TestClip(t *testing.T) {
	tests := []struct{ in, want string }{
		{"alice", "alice"},
		{strings.Repeat("a", 64), strings.Repeat("a", 64)},
		{strings.Repeat("a", 65), strings.Repeat("a", 64) + "…"},
		{strings.Repeat("a", 63) + "é", strings.Repeat("a", 63) + "…"}, // é is 2 bytes: not split
	}
	for _, tt := range tests {
		if got := clip(tt.in); got != tt.want {
			t.Errorf("clip(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

// BenchmarkIssueToken measures POST /token in process (no network): decode,
// authenticate a reference user, sign, encode, through the shared middleware.
// Each request carries a TCP local address, as one that came on auth-api's
// TCP port does (net/http's LocalAddrContextKey), so that what that port
// alone does counts too.
func BenchmarkIssueToken(b *testing.B) {
	db, err := users.Load("")
	if err != nil {
		b.Fatal(err)
	}
	h := newHandler(logging.New(io.Discard, "auth-api", slog.LevelInfo), db, token.NewIssuer(testSecret, nil), newFailureLimit(20, 10*time.Second, time.Now))
	servicetest.BenchmarkPostJSON(b, viaTCPPort(h), "/token", `{"username":"alice","password":"password"}`)
}

// viaTCPPort passes each request on to h with the local address net/http
// gives a request that came on auth-api's TCP port.
func viaTCPPort(h http.Handler) http.Handler {
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5001}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, addr)))
	})
}

// aliceAndBcryptDora loads a users file of alice (plaintext "password") and
// dora, whose password "pw" is a bcrypt hash at cost.
func aliceAndBcryptDora(t *testing.T, cost int) *users.DB {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), cost)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "users.json")
	file := `[{"id":1,"username":"alice","password":"password","enabled":true},` +
		`{"id":10,"username":"dora","password":"` + string(hash) + `","enabled":true}]`
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := users.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// TestTokenWhenTheRequestHasEnded: a login of a bcrypt user whose request
// has ended (the client went away while it waited for a bcrypt slot, or the
// server closed the connection) is not compared, and answers the JSON 503
// added to the contract, logged as such; plaintext and unknown users are
// answered as ever, since they never wait for a slot.
func TestTokenWhenTheRequestHasEnded(t *testing.T) {
	db := aliceAndBcryptDora(t, bcrypt.MinCost)
	logs := &servicetest.Buffer{}
	h := newHandler(logging.New(logs, "auth-api", slog.LevelDebug), db, token.NewIssuer(testSecret, nil), nil)
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name       string
		ctx        context.Context
		body       string
		wantStatus int
		wantError  string // "" for a token
		wantReason string // in the "login failed" line
	}{
		{"bcrypt user, request ended", ended, `{"username":"dora","password":"pw"}`, 503,
			"Password not checked: too many logins in progress; try again", "password_not_checked: context canceled"},
		{"bcrypt user, wrong password, request ended", ended, `{"username":"dora","password":"nope"}`, 503,
			"Password not checked: too many logins in progress; try again", "password_not_checked: context canceled"},
		{"plaintext user, request ended", ended, `{"username":"alice","password":"password"}`, 200, "", ""},
		{"unknown user, request ended", ended, `{"username":"dave","password":"pw"}`, 404, "User not found", "user_not_found"},
		{"bcrypt user", context.Background(), `{"username":"dora","password":"pw"}`, 200, "", ""},
		{"bcrypt user, wrong password", context.Background(), `{"username":"dora","password":"nope"}`, 401, "Invalid password", "invalid_password"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("req-ended-%d", i)
			req := httptest.NewRequestWithContext(tt.ctx, http.MethodPost, "/token", strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(httpx.RequestIDHeader, id)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			var body map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("got %q (%s), want a JSON object: %v", rec.Body, rec.Header().Get("Content-Type"), err)
			}
			if rec.Code != tt.wantStatus || body["error"] != tt.wantError || (tt.wantError == "") != (body["token"] != "") {
				t.Errorf("got %d %s, want %d with error %q", rec.Code, rec.Body, tt.wantStatus, tt.wantError)
			}
			var reason any
			for _, line := range strings.Split(logs.String(), "\n") {
				var rec map[string]any
				if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "login failed" && rec["request_id"] == id {
					reason = rec["reason"]
				}
			}
			if tt.wantReason != "" && reason != tt.wantReason {
				t.Errorf("got reason %v logged, want %q", reason, tt.wantReason)
			}
		})
	}
}

// msgStopping is the 503's error for a bcrypt login not compared because the
// server is stopping: it says so, and that a later try can succeed.
const msgStopping = "Password not checked: the server is stopping; try again shortly"

// TestLoginFailure: the one mapping from a failed login to what the client
// sees and the reason logged. A login refused because too many wait for a
// bcrypt slot (users.ErrTooManyWaiting; counted in internal/users,
// TestWaitingLoginsAreBounded) gets the same 503 as one whose request ended
// while it waited, with its own reason in the log; one refused because the
// server is stopping (users.ErrStopping; TestRunDrainAnswersWaitingLoginsAtOnce)
// gets a 503 that says so, not that too many logins are in progress.
func TestLoginFailure(t *testing.T) {
	const notChecked = "Password not checked: too many logins in progress; try again"
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantMsg    string
		wantReason string
	}{
		{"no such user", users.ErrNotFound, 404, "User not found", "user_not_found"},
		{"wrong password", users.ErrInvalidPassword, 401, "Invalid password", "invalid_password"},
		{"request ended while waiting", fmt.Errorf("%w: waiting for one of 1 bcrypt slots: %w", users.ErrNotChecked, context.Canceled),
			503, notChecked, "password_not_checked: waiting for one of 1 bcrypt slots: context canceled"},
		{"too many waiting", fmt.Errorf("%w: the most allowed, 1 comparing and 16 waiting, are under way", users.ErrTooManyWaiting),
			503, notChecked, "password_not_checked: too many bcrypt logins waiting: the most allowed, 1 comparing and 16 waiting, are under way"},
		{"server stopping", fmt.Errorf("%w: all 1 bcrypt slots are comparing, and no login waits for one any more", users.ErrStopping),
			503, msgStopping, "password_not_checked: the server is stopping: all 1 bcrypt slots are comparing, and no login waits for one any more"},
		{"anything else", errors.New("boom"), 500, "Internal server error", "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, msg, reason := loginFailure(tt.err)
			if status != tt.wantStatus || msg != tt.wantMsg || reason != tt.wantReason {
				t.Errorf("got %d %q %q, want %d %q %q", status, msg, reason, tt.wantStatus, tt.wantMsg, tt.wantReason)
			}
		})
	}
}
