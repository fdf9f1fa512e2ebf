package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/acme-payments/platform/internal/httpx"
	"github.com/acme-payments/platform/internal/redistest"
	"github.com/acme-payments/platform/internal/token"
	"github.com/acme-payments/platform/internal/txqueue"
)

// TestVerifiedTokensDoNotHoldTheirRequest: the verifier remembers up to
// 1,024 tokens it accepted (about 300 bytes each), expired ones included
// until the cache is full. A token read from ?token= or from an
// Authorization header is a piece of a string net/http made of the request
// line or the header's value; remembered as it is, it kept that whole
// string alive, padded by the client up to the server's 64 KB header limit,
// so one user's tokens, one a second, held about 64 MB.
func TestVerifiedTokensDoNotHoldTheirRequest(t *testing.T) {
	srv := redistest.Start(t)
	rdb, err := txqueue.Connect(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	log := slog.New(slog.DiscardHandler) // a log line with the pad would be held too
	h := newHandler(log, rdb, txqueue.NewQueue(rdb, time.Hour), token.NewVerifier(testSecret, nil))
	ts := httptest.NewUnstartedServer(h)
	ts.Config = httpx.NewServer(h, log) // core-api's own limits: 64 KB of headers
	ts.Start()
	t.Cleanup(ts.Close)

	const tokens, padding = 200, 48 << 10
	pad := strings.Repeat("x", padding)
	tests := []struct {
		name string
		req  func(raw string) *http.Request
	}{
		{"query", func(raw string) *http.Request {
			r, _ := http.NewRequest(http.MethodGet, ts.URL+"/transactions/tx_00000000000000000000000000000000?token="+raw+"&pad="+pad, nil)
			return r
		}},
		{"bearer", func(raw string) *http.Request {
			r, _ := http.NewRequest(http.MethodGet, ts.URL+"/transactions/tx_00000000000000000000000000000000", nil)
			r.Header.Set("Authorization", "Bearer"+strings.Repeat(" ", padding)+raw)
			return r
		}},
	}
	user := int64(0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := heapInUse()
			for range tokens {
				user++ // a new token each time, as a new second's would be
				raw, err := token.NewIssuer(testSecret, nil).Issue(user, "alice", true)
				if err != nil {
					t.Fatal(err)
				}
				res, err := http.DefaultClient.Do(tt.req(raw))
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusNotFound { // the token passed
					t.Fatalf("got %d %s, want 404", res.StatusCode, body)
				}
			}
			http.DefaultClient.CloseIdleConnections()
			grown := heapInUse() - before
			t.Logf("%d tokens remembered: the heap grew by %s", tokens, mib(grown))
			if max := int64(tokens * 4 << 10); grown > max {
				t.Errorf("%d tokens, each sent with %d bytes of padding, remembered: the heap grew by %s, want at most %s",
					tokens, padding, mib(grown), mib(max))
			}
		})
	}
}

// heapInUse is the live heap, after a collection.
func heapInUse() int64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
