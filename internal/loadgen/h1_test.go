package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// cannedServer answers every request on a connection with the next of
// replies, verbatim, and closes the connection after the last one.
func cannedServer(t *testing.T, replies ...string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for _, reply := range replies {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					if _, err := io.WriteString(c, reply); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestH1ConnResponses(t *testing.T) {
	tests := []struct {
		name    string
		reply   string
		status  int
		body    string
		keep    bool
		retry   time.Duration
		wantErr bool
		replay  bool // Idempotent-Replayed: true
	}{
		{"content length", "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{\"a\":1}", 200, `{"a":1}`, true, 0, false, false},
		{"chunked with extension and trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\n{\"a\r\n4\r\n\":1}\r\n0\r\nX-T: 1\r\n\r\n", 200, `{"a":1}`, true, 0, false, false},
		{"connection close", "HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nRetry-After: 2\r\nContent-Length: 2\r\n\r\n{}", 429, `{}`, false, 2 * time.Second, false, false},
		{"replayed", "HTTP/1.1 200 OK\r\nIdempotent-Replayed: true\r\nContent-Length: 2\r\n\r\n{}", 200, `{}`, true, 0, false, true},
		{"body to EOF", "HTTP/1.1 200 OK\r\n\r\nhello", 200, "hello", false, 0, false, false},
		{"http/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, "ok", false, 0, false, false},
		{"no content", "HTTP/1.1 204 No Content\r\n\r\n", 204, "", true, 0, false, false},
		{"garbage", "SSH-2.0-OpenSSH\r\n\r\n", 0, "", false, 0, true, false},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", 0, "", false, 0, true, false},
		{"truncated body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 0, "", false, 0, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := cannedServer(t, tt.reply)
			h := &h1conn{addr: addr, timeout: 2 * time.Second}
			t.Cleanup(h.close)
			var out bytes.Buffer
			resp, err := h.do(context.Background(), "POST", addr, "/x", []byte(`{}`), reqHeaders{bearer: "tok"}, &out)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err: got %v, want error=%v", err, tt.wantErr)
			}
			if err != nil {
				if h.c != nil {
					t.Errorf("connection kept after an error")
				}
				return
			}
			if resp.status != tt.status || out.String() != tt.body || resp.retryAfter != tt.retry || resp.replayed != tt.replay {
				t.Errorf("got %d %q retry %v replayed %v, want %d %q retry %v replayed %v",
					resp.status, out.String(), resp.retryAfter, resp.replayed, tt.status, tt.body, tt.retry, tt.replay)
			}
			if kept := h.c != nil; kept != tt.keep {
				t.Errorf("keep-alive: got %v, want %v", kept, tt.keep)
			}
		})
	}
}

func TestH1ConnReusesOneConnection(t *testing.T) {
	var conns atomic.Int64
	var got atomic.Value
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(r.Method + " " + r.URL.RequestURI() + " " + r.Host + " " + r.Header.Get("Authorization") + " " + r.Header.Get("Idempotency-Key") + " " + r.Header.Get("Content-Type") + " " + string(b))
		if r.URL.Query().Get("big") != "" {
			// Large enough for net/http to switch to chunked encoding.
			_, _ = w.Write(bytes.Repeat([]byte("x"), 10000))
			return
		}
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")

	h := &h1conn{addr: addr, timeout: 2 * time.Second}
	t.Cleanup(h.close)
	var out bytes.Buffer
	for i := 0; i < 50; i++ {
		path := "/p?i=1"
		if i%10 == 0 {
			path = "/p?big=1"
		}
		resp, err := h.do(context.Background(), "POST", "example.test", path, []byte(`{"a":1}`), reqHeaders{bearer: "T", idempotencyKey: "K-1"}, &out)
		if err != nil || resp.status != 200 {
			t.Fatalf("request %d: %v %d", i, err, resp.status)
		}
		if path == "/p?big=1" && out.Len() != 10000 {
			t.Fatalf("chunked body: got %d bytes, want 10000", out.Len())
		}
	}
	if want := `POST /p?i=1 example.test Bearer T K-1 application/json {"a":1}`; got.Load() != want {
		t.Errorf("server saw %q, want %q", got.Load(), want)
	}
	if _, err := h.do(context.Background(), "GET", "example.test", "/g", nil, reqHeaders{}, &out); err != nil || out.String() != `{"ok":true}` {
		t.Errorf("GET: %v %q", err, out.String())
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("connections: got %d, want 1", n)
	}
}

func TestH1ConnCanceled(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-block
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(block) })
	addr := strings.TrimPrefix(srv.URL, "http://")
	ctx, cancel := context.WithCancel(context.Background())
	h := &h1conn{addr: addr, timeout: time.Minute}
	t.Cleanup(h.close)
	time.AfterFunc(50*time.Millisecond, cancel)
	var out bytes.Buffer
	// Unblocked by the cancel, not by the minute's timeout: context.Canceled.
	_, err := h.do(ctx, "GET", addr, "/", nil, reqHeaders{}, &out)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

// A server may close a keep-alive connection while it is idle (HAProxy after
// 10 s), silently or after an unasked answer such as a 408. The next request
// must go on a new connection, not fail on the closed one (open loops
// slower than a request per worker per keep-alive timeout failed most of
// their requests so) nor take the unasked answer for its own.
func TestH1ConnServerClosedIdleConnection(t *testing.T) {
	for _, farewell := range []string{"", "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		closed := make(chan struct{}, 2)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				// One answer per connection, kept alive, then closed as
				// if idle too long.
				br := bufio.NewReader(c)
				if req, err := http.ReadRequest(br); err == nil {
					_, _ = io.Copy(io.Discard, req.Body)
					_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
					time.Sleep(10 * time.Millisecond) // idle, then closed
					_, _ = io.WriteString(c, farewell)
				}
				c.Close()
				closed <- struct{}{}
			}
		}()
		h := &h1conn{addr: ln.Addr().String(), timeout: 5 * time.Second}
		var out bytes.Buffer
		for i := 0; i < 2; i++ {
			resp, err := h.do(context.Background(), "POST", "x", "/t", []byte(`{}`), reqHeaders{}, &out)
			if err != nil || resp.status != 200 {
				t.Errorf("farewell %q, request %d: got %d, %v; want 200 on a new connection", farewell, i, resp.status, err)
			}
			if i == 0 {
				<-closed
				time.Sleep(5 * time.Millisecond) // longer than idleCheckAfter
			}
		}
		h.close()
	}
}
