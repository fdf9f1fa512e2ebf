package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/acme-payments/platform/internal/stacktest"
)

// TestRouterRefusesAnHTTP10RequestWithABodyItMustNotHave: an HTTP/1.0 (or
// 0.9) GET, HEAD or DELETE that announces a body is refused with the JSON
// 413 of haproxy-errors/413.http and reaches no service; the same requests
// without a body, and other methods or versions with one, are served as
// before. HAProxy's HTTP/1 layer refused the first kind while parsing
// them, and 3.2.26 and 3.4.7 then closed the connection without writing
// their answer (RELIABILITY.md, "HAProxy 3.4.7"). haproxy.cfg now lets the
// parser accept them (global h1-accept-payload-with-any-method) and refuses
// them with its first rule, which must match what the parser refused,
// neither more nor less.
func TestRouterRefusesAnHTTP10RequestWithABodyItMustNotHave(t *testing.T) {
	haproxy := stacktest.Binary(t, "haproxy", "apt-get install haproxy, or nix develop")
	backend := startCountingBackend(t)
	port := startRouter(t, haproxy, stacktest.RepoRoot(t), backend.socket).platform
	tests := []struct {
		name    string
		request string // the request line and the headers before X-Case
		rest    string // the headers after X-Case, the empty line and the body
		refused bool   // true: the router's JSON 413, and no request at the service
	}{
		{"HTTP/1.0 GET with a Content-Length", "GET /transaction/transactions/tx_1 HTTP/1.0", "Content-Length: 2\r\n\r\n{}", true},
		{"HTTP/1.0 GET with a Content-Length of 007", "GET /transaction/transactions/tx_1 HTTP/1.0", "Content-Length: 007\r\n\r\n{\"a\":1}", true},
		{"HTTP/1.0 GET with a chunked body", "GET /transaction/transactions/tx_1 HTTP/1.0", "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", true},
		{"HTTP/1.0 HEAD with a Content-Length", "HEAD /transaction/transactions/tx_1 HTTP/1.0", "Content-Length: 2\r\n\r\n{}", true},
		{"HTTP/1.0 DELETE with a Content-Length", "DELETE /transaction/transaction HTTP/1.0", "Content-Length: 2\r\n\r\n{}", true},
		{"HTTP/0.9 GET with a Content-Length", "GET /transaction/transactions/tx_1 HTTP/0.9", "Content-Length: 2\r\n\r\n{}", true},
		{"HTTP/1.0 GET without a body", "GET /transaction/transactions/tx_1 HTTP/1.0", "\r\n", false},
		{"HTTP/1.0 GET with a Content-Length of 0", "GET /transaction/transactions/tx_1 HTTP/1.0", "Content-Length: 0\r\n\r\n", false},
		{"HTTP/1.0 GET with a Content-Length of 000", "GET /transaction/transactions/tx_1 HTTP/1.0", "Content-Length: 000\r\n\r\n", false},
		{"HTTP/1.0 POST with a body", "POST /transaction/transaction HTTP/1.0", "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", false},
		{"HTTP/1.1 GET with a body", "GET /transaction/transactions/tx_1 HTTP/1.1", "Connection: close\r\nContent-Length: 2\r\n\r\n{}", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second)) // only turns a hang into a failure
			if _, err := io.WriteString(conn, tt.request+"\r\nHost: test\r\nX-Case: "+tt.name+"\r\n"+tt.rest); err != nil {
				t.Fatal(err)
			}
			method, _, _ := strings.Cut(tt.request, " ")
			resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			seen := backend.count(tt.name)
			if !tt.refused {
				if resp.StatusCode != http.StatusOK || seen != 1 {
					t.Errorf("got %d %s, and the service saw the request %d times; want the service's 200, once", resp.StatusCode, body, seen)
				}
				return
			}
			if seen != 0 {
				t.Errorf("the service saw the request %d times, want 0", seen)
			}
			if resp.StatusCode != http.StatusRequestEntityTooLarge || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("got %d (Content-Type %q) %s, want the router's JSON 413", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			if method == http.MethodHead {
				return // no body in an answer to HEAD
			}
			var msg struct{ Error string }
			if err := json.Unmarshal(body, &msg); err != nil || msg.Error != http10BodyRefused {
				t.Errorf("body %s, want the error %q", body, http10BodyRefused)
			}
		})
	}
}

// http10BodyRefused is haproxy-errors/413.http's error.
const http10BodyRefused = "Payload too large: an HTTP/1.0 GET, HEAD or DELETE request must not have a body"

// countingBackend answers 200 with JSON to everything, and counts the
// requests of each test case (its X-Case header).
type countingBackend struct {
	socket string
	requestsByCase
}

func startCountingBackend(t *testing.T) *countingBackend {
	t.Helper()
	b := &countingBackend{}
	b.socket, _ = serveBackend(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if c := r.Header.Get("X-Case"); c != "" {
			b.add(c)
		}
		answerHealthy(w)
	})
	return b
}
