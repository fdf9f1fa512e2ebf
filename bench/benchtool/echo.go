package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/acme-payments/platform/internal/httpx"
)

// echo serves a trivial stand-in of the platform's API (fixed JSON answers,
// nothing stored), so that bench/run.sh can measure the load generator and
// HAProxy alone: the ceiling any real service is compared with. The token
// expires in 2100 so the generator never refreshes it.
func echo(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("echo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	socket := fs.String("socket", "", "also listen on this unix socket path, as the stack's services do for HAProxy")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var n atomic.Int64
	const tok = `{"token":"eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjQxMDI0NDQ4MDB9.c2ln"}`
	token := func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, tok)
	}
	tx := func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		b := make([]byte, 0, 128)
		b = append(b, `{"id":"tx_`...)
		b = strconv.AppendInt(b, n.Add(1), 16)
		b = append(b, `","user_id":1,"amount":100,"currency":"USD","status":"queued"}`...)
		_, _ = w.Write(b)
	}
	mux := http.NewServeMux()
	for _, p := range []string{"POST /token", "POST /auth/token"} {
		mux.HandleFunc(p, token)
	}
	for _, p := range []string{"POST /transaction", "POST /transaction/transaction"} {
		mux.HandleFunc(p, tx)
	}
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"status":"pass","checks":{}}`)
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "benchtool echo: listening on %s\n", ln.Addr())
	lns := []net.Listener{ln}
	if *socket != "" {
		uln, err := net.Listen("unix", *socket)
		if err != nil {
			ln.Close()
			return err
		}
		fmt.Fprintf(stderr, "benchtool echo: listening on %s too\n", *socket)
		lns = append(lns, uln)
	}
	// The services' serve-and-drain helper; its log lines are not wanted here.
	quiet := slog.New(slog.DiscardHandler)
	return httpx.ServeListeners(ctx, httpx.NewServer(mux, quiet), lns, 2*time.Second, quiet)
}
