package main

import (
	"context"
	"errors"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/acme-payments/platform/internal/httpx"
	"github.com/acme-payments/platform/internal/logging"
	"github.com/acme-payments/platform/internal/token"
	"github.com/acme-payments/platform/internal/users"
)

// run starts auth-api with the given environment and serves until ctx is
// done or SIGINT/SIGTERM arrives, then drains in-flight requests; bcrypt
// logins waiting for a slot are answered 503 at once then.
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
	log := logging.New(stdout, "auth-api", cfg.Level)
	log.Info("starting", "version", version)
	cfg.WarnIfWeak(log)
	db, err := users.Load(cfg.UsersFile)
	if err != nil {
		return err
	}
	source := cfg.UsersFile
	if source == "" {
		source = users.ReferenceSource
	}
	db.LimitBcrypt(cfg.BcryptConcurrency, cfg.BcryptMaxWaiting)
	// Once the drain begins, a bcrypt login waiting for a slot is answered
	// 503 at once instead of holding the drain (RELIABILITY.md D73).
	context.AfterFunc(ctx, db.StopWaiting)
	log.Info("users loaded", "source", source, "count", db.Len(), "bcrypt_concurrency", db.BcryptLimit(), "bcrypt_max_waiting", db.BcryptWaitingLimit())
	for _, w := range db.Warnings() {
		log.Warn(w)
	}

	issuer := token.NewIssuer([]byte(cfg.JWTSecret), nil)
	direct := newFailureLimit(cfg.DirectLoginFailureLimit, cfg.DirectLoginFailureWindow, time.Now)
	srv := httpx.NewServer(newHandler(log, db, issuer, direct), log)
	return httpx.Serve(ctx, srv, cfg.Addr(), cfg.Socket, cfg.ShutdownGrace, log)
}
