package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acme-payments/platform/internal/stacktest"
)

// TestRouterAnswersAClientThatHalfCloses: a client may shut down its
// sending side once its request is out (shutdown(SHUT_WR): nc -N, scripts,
// some HTTP/1.0 clients) and still read the answer. HAProxy 3.x aborts such
// a request by default ("option abortonclose") and answers its JSON 400
// "Bad request" at once, although the request has already gone to the
// service: on 3.4.7 a transaction was passed to core-api, which would queue
// it, and its client was told that its request was malformed (the review:
// 400 in under 1 ms for each of these rows, 2.6.12 answered 200). haproxy.cfg
// turns the option off, as 2.6 has it by default.
func TestRouterAnswersAClientThatHalfCloses(t *testing.T) {
	haproxy := stacktest.Binary(t, "haproxy", "apt-get install haproxy, or nix develop")
	backend := startDropOnceBackend(t)
	port := startRouter(t, haproxy, stacktest.RepoRoot(t), backend.socket).platform
	const tx = `{"token":"t","amount":1,"currency":"USD"}`
	tests := []struct {
		name, request string
	}{
		{"transaction without a key", "POST /transaction/transaction HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n" +
			fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(tx), tx)},
		{"transaction with an Idempotency-Key", "POST /transaction/transaction HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nIdempotency-Key: k-1\r\n" +
			fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(tx), tx)},
		{"chunked transaction, HTTP/1.0-style close", "POST /transaction/transaction HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nConnection: close\r\n" +
			fmt.Sprintf("Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(tx), tx)},
		{"login", "POST /auth/token HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 42\r\n\r\n" +
			`{"username":"alice","password":"password"}`},
		{"status lookup", "GET /transaction/transactions/tx_1 HTTP/1.1\r\nHost: test\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			began := time.Now()
			if _, err := io.WriteString(conn, tt.request); err != nil {
				t.Fatal(err)
			}
			if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second)) // only turns a hang into a failure
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer after the client's half-close: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			// The backend answers 200 with its JSON.
			if resp.StatusCode != http.StatusOK || !json.Valid(body) {
				t.Errorf("got %d %s after %s, want the service's 200", resp.StatusCode, body, time.Since(began).Round(time.Millisecond))
			}
		})
	}
}

// TestRouterTellsWhenARetriedTransactionMayBeQueued: HAProxy sends a
// transaction with an Idempotency-Key again when core-api closed the
// connection without an answer (retry-on empty-response). If core-api is
// gone by then (killed after it queued the transaction, say), the retry
// finds no socket and the client gets the router's 503. That 503 said "no
// healthy backend, try again shortly", the words the platform keeps for
// when nothing can have been queued (core-api's own 503s, D46; the router's
// 502 and 504 for core-api, D50), though the first try had reached core-api
// (the review: 1 attempt at the backend, then this 503, on 2.6.12 and
// 3.4.7). core-api's 503 now keeps those words and adds that a keyed
// transaction is to be sent again only with the same key.
func TestRouterTellsWhenARetriedTransactionMayBeQueued(t *testing.T) {
	haproxy := stacktest.Binary(t, "haproxy", "apt-get install haproxy, or nix develop")
	const (
		general = "Service unavailable: no healthy backend, try again shortly"
		sameKey = "send it again only with the same Idempotency-Key"
	)
	tx := `{"token":"t","amount":1,"currency":"USD"}`
	tests := []struct {
		name string
		// stopFirst stops the backend before the request; otherwise it
		// reads the request, stops and closes the connection unanswered.
		stopFirst    bool
		wantAttempts int
		wantErrors   []string // each in the JSON 503's error
	}{
		{name: "keyed transaction, answer lost, core-api gone before the retry", wantAttempts: 1, wantErrors: []string{general, sameKey}},
		{name: "core-api gone before the transaction", stopFirst: true, wantAttempts: 0, wantErrors: []string{general, sameKey}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			backend := startStopOnRequestBackend(t)
			port := startRouter(t, haproxy, stacktest.RepoRoot(t), backend.socket).platform
			if tt.stopFirst {
				backend.stop()
			}
			req, err := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d/transaction/transaction", port), strings.NewReader(tx))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", "k-1")
			req.Header.Set(dropOnceHeader, "stop")
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var got struct{ Error string }
			if resp.StatusCode != http.StatusServiceUnavailable || json.Unmarshal(body, &got) != nil {
				t.Fatalf("got %d %s, want a JSON 503", resp.StatusCode, body)
			}
			for _, want := range tt.wantErrors {
				if !strings.Contains(got.Error, want) {
					t.Errorf("503's error %q does not say %q", got.Error, want)
				}
			}
			if n := backend.attempts(); n != tt.wantAttempts {
				t.Errorf("attempts at the backend: got %d, want %d", n, tt.wantAttempts)
			}
		})
	}
}

// stopOnRequestBackend answers /health (and requests without
// dropOnceHeader) until the first request that has that header, which it
// reads whole; it then removes its socket, as a stopped service does, and
// closes that request's connection without an answer.
type stopOnRequestBackend struct {
	socket string
	ln     net.Listener
	mu     sync.Mutex
	seen   int
	once   sync.Once
}

func (b *stopOnRequestBackend) attempts() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seen
}

func (b *stopOnRequestBackend) stop() {
	b.once.Do(func() {
		_ = b.ln.Close() // removes the socket's file too
		_ = os.Remove(b.socket)
	})
}

func startStopOnRequestBackend(t *testing.T) *stopOnRequestBackend {
	t.Helper()
	b := &stopOnRequestBackend{}
	b.socket, b.ln = serveBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(dropOnceHeader) == "" {
			answerHealthy(w)
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		b.mu.Lock()
		b.seen++
		b.mu.Unlock()
		b.stop()
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
	})
	return b
}
