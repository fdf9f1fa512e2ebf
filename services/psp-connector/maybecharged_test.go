package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/acme-payments/platform/internal/redistest"
	"github.com/acme-payments/platform/internal/servicetest"
	"github.com/acme-payments/platform/internal/txqueue"
)

// hangBeforeWrite is a PSP whose round never reaches its write: it freezes
// its connector's Redis (hook) and waits for release, as a connector
// SIGSTOPped, or killed, with a round claimed and not yet printed.
type hangBeforeWrite struct {
	hook   *redisFreeze
	inHand chan struct{} // closed when the round is in hand
	once   sync.Once
}

func (p *hangBeforeWrite) Charge(ctx context.Context, m txqueue.Message) error {
	errs := make([]error, 1)
	p.ChargeRound(ctx, []txqueue.Message{m}, errs)
	return errs[0]
}

func (p *hangBeforeWrite) ChargeRound(_ context.Context, round []txqueue.Message, errs []error) {
	p.hook.on.Store(true)
	p.once.Do(func() { close(p.inHand) })
	<-p.hook.release
	for i := range round {
		errs[i] = syscall.EIO
	}
}

// writesCounter counts Writes and fails each with err: a connector's
// standard output on a full disk (ENOSPC), where the line PSP declines
// every charge.
type writesCounter struct {
	n   atomic.Int64
	err error
}

func (w *writesCounter) Write([]byte) (int, error) {
	w.n.Add(1)
	return 0, w.err
}

// TestARoundInHandTheLedgerDoesNotNameIsNotRetriedForGood: a connector
// claims a transaction and stops before printing it (its round in hand).
// The connector that takes it over reads the ledger back as the stack's
// does (CHARGE_LOG and CHARGE_LEDGER), which does not name it, or has no
// ledger, and charges it again with the at-least-once warning; its output
// fails every write (a full disk: the line PSP declines every charge). The
// transaction may have been charged as far as the connector can know (the
// ledger cannot see a round another connector printed to its own files,
// nor one older than the tail it reads): it must never read failed (D24,
// D40). Nor may it be charged again for good: on its last delivery it is
// dead-lettered, saying it may have been charged, its status left queued.
// Before (D114), with the ledger as without it, it was charged again after
// every VisibilityTimeout: 77 charges in 15 s, never dead-lettered.
func TestARoundInHandTheLedgerDoesNotNameIsNotRetriedForGood(t *testing.T) {
	for _, tt := range []struct {
		name          string
		ledger        bool // CHARGE_LOG and CHARGE_LEDGER, as the stack sets them
		maxDeliveries int
	}{
		{"CHARGE_LOG and CHARGE_LEDGER, MAX_DELIVERIES 2", true, 2},
		{"CHARGE_LOG and CHARGE_LEDGER, MAX_DELIVERIES 5", true, 5},
		{"no ledger, MAX_DELIVERIES 2", false, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := redistest.Start(t)
			rdb := srv.Client(t)
			ctx := context.Background()
			q := txqueue.NewQueue(rdb, time.Hour)
			res, err := q.Enqueue(ctx, txqueue.Transaction{UserID: 1, Amount: 100, Currency: "USD"}, "")
			if err != nil {
				t.Fatal(err)
			}
			id := res.ID

			logs := &servicetest.Buffer{}
			log := slog.New(slog.NewJSONHandler(logs, nil))
			cfg := txqueue.ConsumerConfig{Name: "first", BatchSize: 16, Block: 100 * time.Millisecond,
				VisibilityTimeout: 200 * time.Millisecond, ClaimInterval: 50 * time.Millisecond,
				MaxDeliveries: tt.maxDeliveries, StatusTTL: time.Hour, ShutdownGrace: time.Second, Chargers: 16}
			startFrozenFirst(t, srv, "had no round in hand", func(rdb *redis.Client, freeze *redisFreeze) (func() error, <-chan struct{}) {
				first := &hangBeforeWrite{hook: freeze, inHand: make(chan struct{})}
				return startConsumerWith(t, rdb, cfg, first, log), first.inHand
			})

			out := &writesCounter{err: syscall.ENOSPC}
			var psp txqueue.PSP = linePSP{w: out}
			if tt.ledger {
				dir := t.TempDir()
				logPath := filepath.Join(dir, "psp-connector.log")
				f := openLog(t, logPath) // CHARGE_LOG: the log file, without the round
				if _, err := f.WriteString(`{"level":"INFO","msg":"consuming","service":"psp-connector"}` + "\n"); err != nil {
					t.Fatal(err)
				}
				own, err := openLedgerFile(filepath.Join(dir, "ledger.jsonl"), ledgerTail, log)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { own.Close() })
				psp = ledgerPSP{linePSP: linePSP{w: out}, log: logPath, own: own}
			}
			cfg.Name = "second"
			start := time.Now()
			stopSecond := startConsumerWith(t, rdb, cfg, psp, log)
			// Bounded: 15 s, or the first dead letter and a second more.
			for time.Since(start) < 15*time.Second {
				if n, err := rdb.XLen(ctx, txqueue.DeadLetterStream).Result(); err == nil && n > 0 {
					time.Sleep(time.Second)
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			elapsed := time.Since(start)
			if err := stopSecond(); err != nil {
				t.Fatalf("second connector: %v", err)
			}

			rec, err := q.Status(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			dead, err := rdb.XRange(ctx, txqueue.DeadLetterStream, "-", "+").Result()
			if err != nil {
				t.Fatal(err)
			}
			pending, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: txqueue.Stream, Group: txqueue.Group,
				Start: "-", End: "+", Count: 10}).Result()
			if err != nil {
				t.Fatal(err)
			}
			warned := strings.Count(logs.String(), `"msg":"claimed before without a recorded charge; charging (at least once)"`)
			t.Logf("in %.1f s: %d charges (writes), %d at-least-once warnings, status %s, %d dead letters, %d pending %v",
				elapsed.Seconds(), out.n.Load(), warned, rec.Status, len(dead), len(pending), pending)
			if rec.Status != txqueue.StatusQueued {
				t.Errorf("status: got %s, want %s (never failed: an earlier delivery may have charged it)", rec.Status, txqueue.StatusQueued)
			}
			if want := int64(tt.maxDeliveries - 1); out.n.Load() != want || int64(warned) != want {
				t.Errorf("charges: got %d, with %d at-least-once warnings; want %d of each (deliveries 2 to %d)",
					out.n.Load(), warned, want, tt.maxDeliveries)
			}
			if len(dead) != 1 || len(pending) != 0 {
				t.Fatalf("got %d dead letters and %d entries pending; want 1 and 0", len(dead), len(pending))
			}
			if v := dead[0].Values; v["entry.id"] != id || v["maybe_charged"] != "1" {
				t.Errorf("dead letter: got %v, want the transaction's entry with maybe_charged 1", v)
			}
			for _, line := range []string{"could not ask the PSP which transactions it made", "the PSP made these before their consumer stopped"} {
				if strings.Contains(logs.String(), line) {
					t.Errorf("the ledger lookup said %q; want it to have read the files and found nothing", line)
				}
			}
		})
	}
}
