package main

import (
	"context"
	"errors"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/acme-payments/platform/internal/httpx"
	"github.com/acme-payments/platform/internal/logging"
	"github.com/acme-payments/platform/internal/token"
	"github.com/acme-payments/platform/internal/txqueue"
)

// run starts core-api with the given environment and serves until ctx is
// done or SIGINT/SIGTERM arrives, then drains in-flight requests. Redis need
// not be up yet: requests that need it get a 503 until it is.
func run(ctx context.Context, args, environ []string, stdout io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// From the first signal on, a second one has its default effect: a
	// second Ctrl-C stops the process at once instead of waiting out the drain.
	context.AfterFunc(ctx, stop)

	if len(args) > 1 {
		return errors.New("takes no arguments; it is configured by environment variables (see README.md)")
	}
	cfg, err := parseConfig(environ)
	if err != nil {
		return err
	}
	log := logging.New(stdout, "core-api", cfg.Level)
	log.Info("starting", "version", version)
	cfg.WarnIfWeak(log)
	txqueue.RouteClientLogs(log)
	rdb, err := txqueue.Connect(ctx, cfg.RedisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	// A REDIS_URL of another Redis may not keep what it answers: say so
	// once it answers (the stack's own Redis does). Stopped before rdb
	// closes, whatever run returns.
	defer txqueue.GoWarnIfNotDurable(ctx, rdb, log)()
	// Transactions queued where no connector shows itself alive (a
	// psp-connector given another database, say) are answered 200 and
	// never charged: warn, once a minute, after a grace.
	defer txqueue.GoWarnIfNoConsumer(ctx, rdb, log)()

	queue := txqueue.NewQueue(rdb, cfg.StatusTTL)
	queue.SetIdempotencyTTL(cfg.IdempotencyTTL)
	tokens := token.NewVerifier([]byte(cfg.JWTSecret), nil)
	srv := httpx.NewServer(newHandler(log, rdb, queue, tokens), log)
	return httpx.Serve(ctx, srv, cfg.Addr(), cfg.Socket, cfg.ShutdownGrace, log)
}
