package txqueue

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// xpendingCut is a go-redis hook that fails this client's XPENDING calls,
// without sending them: the delivery counts of a reclaim are unknown (a
// timeout, a dropped connection), while everything else reaches Redis.
type xpendingCut struct{}

func (xpendingCut) DialHook(next redis.DialHook) redis.DialHook { return next }

func (xpendingCut) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "xpending" {
			err := errors.New("i/o timeout (the test cut XPENDING)")
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}

func (xpendingCut) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			if cmd.Name() == "xpending" {
				err := errors.New("i/o timeout (the test cut XPENDING)")
				for _, c := range cmds {
					c.SetErr(err)
				}
				return err
			}
		}
		return next(ctx, cmds)
	}
}

// TestAFailedXPendingStillLooksUpWhatMayHaveBeenCharged: "dead" claimed and
// charged a transaction (its round in hand) and stopped before its record.
// The survivor reclaims it, and its XPENDING for the delivery counts fails.
// The PSP's ledger says it made the transaction: the survivor must ask the
// ledger and record it processed, not charge it again. With its record in
// place the claim tells from the record; with the record expired, only the
// delivery count says that an earlier delivery may have charged it, and a
// reclaimed entry has been delivered at least twice, whatever XPENDING
// answered.
func TestAFailedXPendingStillLooksUpWhatMayHaveBeenCharged(t *testing.T) {
	for _, expired := range []bool{false, true} {
		name := "record in place"
		if expired {
			name = "record expired"
		}
		t.Run(name, func(t *testing.T) {
			srv, rdb := startRedis(t)
			log, _ := testLogger(t)
			ctx := context.Background()
			q := NewQueue(rdb, time.Hour)
			batch := roundInHandOfDeadConsumer(t, q, 1) // charged; no record
			id := batch[0].ID
			if expired {
				if err := rdb.Del(ctx, StatusKey(id)).Err(); err != nil { // as if it expired
					t.Fatal(err)
				}
			}

			rdbS := connectTo(t, srv)
			rdbS.AddHook(xpendingCut{})
			survivor := &ledgerRecorder{made: map[string]bool{id: true}}
			cfg := survivorConfig()
			time.Sleep(cfg.VisibilityTimeout) // the entry idle for the survivor's XAUTOCLAIM
			stop := runConsumer(t, rdbS, cfg, survivor, log)
			waitFor(t, "nothing pending", func() bool { return pendingCount(t, rdb) == 0 })
			stop()

			if got := survivor.calls(id); got != 0 {
				t.Errorf("survivor's charges: got %d, want 0 (the ledger says dead made it)", got)
			}
			survivor.mu.Lock()
			asked := slices.Clone(survivor.asked)
			survivor.mu.Unlock()
			if !slices.Contains(asked, id) {
				t.Errorf("the ledger was asked about %v, want %s among them", asked, id)
			}
			if rec, err := q.Status(ctx, id); err != nil || rec.Status != StatusProcessed {
				t.Errorf("status: got %+v, %v; want processed", rec, err)
			}
		})
	}
}
