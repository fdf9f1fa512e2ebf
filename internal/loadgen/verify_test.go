package loadgen

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme-payments/platform/internal/loadgen/fakerouter"
)

// fakeWithStatus serves the fake router with its status endpoint replaced
// by status, on a loopback httptest server; newConns counts the
// connections clients made to it.
func fakeWithStatus(t *testing.T, opts fakerouter.Options, status http.HandlerFunc) (srv *httptest.Server, newConns *atomic.Int64) {
	t.Helper()
	f := fakerouter.New(opts)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /auth/token", f.Token)
	mux.HandleFunc("POST /transaction/transaction", f.Transaction)
	if status == nil {
		status = f.Status
	}
	mux.HandleFunc("GET /transaction/transactions/{id}", status)
	srv = httptest.NewUnstartedServer(mux)
	newConns = new(atomic.Int64)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			newConns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, newConns
}

// A status endpoint that never answers costs about one request timeout
// past the drain deadline, not one per transaction: before, 20 lookups two
// at a time with a 250 ms timeout took 2.5 s, and the defaults (32 at a
// time, 10 s) would take hours for a long run.
func TestVerificationGivesUpOnASilentStatusEndpoint(t *testing.T) {
	srv, _ := fakeWithStatus(t, fakerouter.Options{}, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	cfg := testConfig(srv.URL)
	cfg.Count, cfg.Concurrency = 20, 2
	cfg.RequestTimeout, cfg.DrainTimeout = 250*time.Millisecond, 100*time.Millisecond
	rep, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	v := rep.Verification
	if v.VerifySeconds > 1.5 {
		t.Errorf("verification took %.2f s with a 250 ms request timeout and a 100 ms drain timeout", v.VerifySeconds)
	}
	if v.Unverified != 20 || rep.Err() == nil {
		t.Errorf("unverified %d of 20, Err %v: want all unverified, and the run failed", v.Unverified, rep.Err())
	}
	if got := rep.Errors["status timeout"] + rep.Errors["status not looked up: lookups failing past the drain timeout"]; got != 20 {
		t.Errorf("errors %v: want the 20 transactions counted once each", rep.Errors)
	}
}

// A transaction whose lookups fail round after round counts once in the
// errors, as the report says (unverified: "see errors"): before, once per
// 20 ms round (280 errors for 20 transactions).
func TestVerificationCountsAFailingLookupOncePerTransaction(t *testing.T) {
	_, srv := fakerouter.Start(t, fakerouter.Options{StatusDown: true})
	cfg := testConfig(srv.URL)
	cfg.Count = 20
	cfg.VerifyVia = ViaHTTP
	cfg.DrainTimeout = 300 * time.Millisecond
	rep, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if n, u := rep.Errors["status 503"], rep.Verification.Unverified; n != 20 || u != 20 {
		t.Errorf(`errors["status 503"] %d, unverified %d: want 20 and 20`, n, u)
	}
}

// The lookups' connections last the whole verification: a transaction that
// stays queued is looked up every 20 ms until the drain timeout, and each
// round dialled a new connection per worker (355 in 1 s for 8 workers).
func TestVerificationKeepsItsConnections(t *testing.T) {
	srv, newConns := fakeWithStatus(t, fakerouter.Options{LoseEvery: 1}, nil)
	cfg := testConfig(srv.URL)
	cfg.Count = 40
	cfg.DrainTimeout = time.Second
	rep, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Verification.Queued != 40 {
		t.Fatalf("queued %d, want all 40 (the fake loses every one)", rep.Verification.Queued)
	}
	// The load's 8 connections, a login's, and the lookups' 8.
	if n := newConns.Load(); n > int64(3*cfg.Concurrency) {
		t.Errorf("%d connections to the router for %d workers", n, cfg.Concurrency)
	}
}
