package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/acme-payments/platform/internal/httpx"
	"github.com/acme-payments/platform/internal/logging"
	"github.com/acme-payments/platform/internal/txqueue"
)

// run starts the consumer with the given environment, and the HTTP server
// of GET /health and GET /live when HTTP_PORT is set, and runs until ctx is
// done or SIGINT/SIGTERM arrives. Then the consumer finishes the batch in hand
// (within SHUTDOWN_GRACE) and leaves the rest pending for the next start,
// and the health server drains.
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
	log := logging.New(stdout, "psp-connector", cfg.Level)
	log.Info("starting", "version", version)
	txqueue.RouteClientLogs(log)
	psp, err := newPSP(stdout, cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := psp.Close(); err != nil {
			log.Warn("could not close the ledger copy (CHARGE_LEDGER)", "error", err.Error())
		}
	}()
	rdb, err := txqueue.Connect(ctx, cfg.RedisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	// A REDIS_URL of another Redis may not keep what it answers: say so
	// once it answers (the stack's own Redis does). Stopped before rdb
	// closes, whatever run returns.
	defer txqueue.GoWarnIfNotDurable(ctx, rdb, log)()
	// Show core-api, in this database, that a connector consumes it: a
	// core-api queueing in another database warns (GoWarnIfNoConsumer).
	defer txqueue.GoKeepConsumerAlive(ctx, rdb, cfg.ConsumerName)()

	consumer, err := txqueue.NewConsumer(rdb, txqueue.ConsumerConfig{
		Name:              cfg.ConsumerName,
		BatchSize:         cfg.BatchSize,
		VisibilityTimeout: cfg.VisibilityTimeout,
		ClaimInterval:     cfg.ClaimInterval,
		MaxDeliveries:     cfg.MaxDeliveries,
		StatusTTL:         cfg.StatusTTL,
		ShutdownGrace:     cfg.ShutdownGrace,
		Chargers:          cfg.Chargers,
		Gone:              cfg.ConsumerGone,
	}, psp.PSP, log)
	if err != nil {
		return err
	}

	if !cfg.ServeHealth {
		log.Info("no health endpoint: set HTTP_PORT for GET /health")
		return stopped(log, consumer.Run(ctx))
	}
	// Listen first: a connector that cannot serve its health check exits
	// before it charges anything.
	lns, err := httpx.Listen(cfg.Addr(), cfg.Socket)
	if err != nil {
		return err
	}
	// The consumer and the health server run side by side; when either
	// stops with an error, the other is stopped too.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	consumed := make(chan error, 1)
	go func() {
		err := consumer.Run(ctx)
		cancel()
		consumed <- err
	}()
	// The health server's own lines ("ready", "shutting down", "stopped")
	// say server=health: it stops at the signal, while the consumer may
	// drain its batch for seconds more, and the connector's last line is
	// its own "stopped" (stopped).
	hlog := log.With("server", "health")
	srv := httpx.NewServer(newHandler(log, rdb, consumer), hlog)
	serveErr := httpx.ServeListeners(ctx, srv, lns, cfg.ShutdownGrace, hlog)
	cancel()
	return stopped(log, errors.Join(serveErr, <-consumed))
}

// stopped logs the connector's last line, "stopped", when err is nil (the
// consumer, and the health server when there is one, ended cleanly), and
// returns err.
func stopped(log *slog.Logger, err error) error {
	if err == nil {
		log.Info("stopped")
	}
	return err
}

// openedPSP is the PSP the consumer charges with, and what closes its
// files.
type openedPSP struct {
	txqueue.PSP
	Close func() error
}

// newPSP is the line PSP on stdout, reading its ledger lines back from
// CHARGE_LOG and CHARGE_LEDGER when either is set: then a round a killed
// connector printed but did not record is recorded, not printed again. It
// says at start which it reads.
func newPSP(stdout io.Writer, cfg config, log *slog.Logger) (openedPSP, error) {
	line := linePSP{w: stdout}
	if cfg.ChargeLog == "" && cfg.ChargeLedger == "" {
		log.Info("no CHARGE_LOG or CHARGE_LEDGER: a round printed but not recorded when the connector stopped is charged again (at least once)")
		return openedPSP{PSP: line, Close: func() error { return nil }}, nil
	}
	p := ledgerPSP{linePSP: line, log: cfg.ChargeLog}
	closeFile := func() error { return nil }
	if cfg.ChargeLedger != "" {
		own, err := openLedgerFile(cfg.ChargeLedger, ledgerTail, log)
		if err != nil {
			return openedPSP{}, fmt.Errorf("CHARGE_LEDGER %q cannot be opened to append the rounds' ledger lines: %w", cfg.ChargeLedger, err)
		}
		p.own, closeFile = own, own.Close
	}
	log.Info("reading the charges' ledger lines back", "charge_log", cfg.ChargeLog, "charge_ledger", cfg.ChargeLedger)
	return openedPSP{PSP: p, Close: closeFile}, nil
}
