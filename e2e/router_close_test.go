package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
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
