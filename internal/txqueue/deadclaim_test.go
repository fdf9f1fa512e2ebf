package txqueue

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestADeclinedTransactionInADeadConnectorsUnstartedRoundIsDeadLettered: a
// transaction the PSP declined (psp_failed), delivered again to a connector
// that claimed it in a later round of its batch and was killed in an earlier
// one, is over MaxDeliveries when a survivor reclaims the batch. The claim
// finds that its round never started, so nothing charged it since the
// decline: it must be dead-lettered, status failed, not charged again.
// Before, the dead connector's claim stayed on the record (the claim does
// not write one for an entry it dead-letters), and the dead-letter script
// took it for a claim another connector made since (D108): it left the
// entry pending, and so at every reclaim, each VISIBILITY_TIMEOUT, until
// the record expired (STATUS_TTL), after which it was charged again with
// the at-least-once warning.
func TestADeclinedTransactionInADeadConnectorsUnstartedRoundIsDeadLettered(t *testing.T) {
	tests := []struct {
		name string
		// deadClaimant is who the killed connector was in its claims: a
		// claimant of today's format (name#16 hex digits, D101), or the
		// bare name a connector from before D101 wrote.
		deadClaimant string
	}{
		{name: "claimed by a connector of this version", deadClaimant: "dead#0123456789abcdef"},
		{name: "claimed by a connector from before D101 (the bare name)", deadClaimant: "dead"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, rdb, q := startQueue(t)
			ctx := context.Background()

			// The dead connector read a batch of two (one delivery each).
			batch := readAsDeadConsumer(t, q, 2)
			first, target := batch[0].ID, batch[1].ID
			// An earlier claim of the target failed at the PSP and was
			// released (psp_failed), as a connector's record does.
			x := claimer{claimant: "x#1", lease: time.Millisecond, statusTTL: time.Hour, roundSize: 1}
			if _, err := x.claim(ctx, rdb, time.Now().UnixNano(), batch[1:]); err != nil {
				t.Fatal(err)
			}
			rec := newRecordCall("dead", "x#1", time.Hour, nil, batch[1:], nil)
			if err := recordScript.Run(ctx, rdb, rec.keys, rec.args...).Err(); err != nil {
				t.Fatal(err)
			}
			// Then the dead connector claimed both, one a round, and was
			// killed in round 0: the target's round 1 never started.
			dead := claimer{claimant: tt.deadClaimant, lease: time.Millisecond, statusTTL: time.Hour, roundSize: 1}
			codes, err := dead.claim(ctx, rdb, time.Now().UnixNano(), batch)
			if err != nil || len(codes) != 2 || codes[0] != claimCharge || codes[1] != claimCharge {
				t.Fatalf("the dead connector's claim: got %v, %v; want [%d %d]", codes, err, claimCharge, claimCharge)
			}
			if tt.deadClaimant == "dead" {
				// A connector from before D104 stored no lease.
				for _, m := range batch {
					if err := rdb.HDel(ctx, StatusKey(m.ID), "charging_lease").Err(); err != nil {
						t.Fatal(err)
					}
				}
			}

			cfg := fastConfig("survivor")
			cfg.MaxDeliveries = 1 // its reclaim is the target's second delivery
			psp := &recorder{}
			logs, logBuf := testLogger(t)
			time.Sleep(cfg.VisibilityTimeout) // the dead batch is idle for the survivor's reclaim
			stop := runConsumer(t, connectTo(t, srv), cfg, psp, logs)
			waitFor(t, "the survivor to reclaim the dead batch", func() bool { return psp.calls(first) > 0 })
			// Five more reclaims: before, each left the target pending.
			time.Sleep(5 * (cfg.VisibilityTimeout + cfg.ClaimInterval))
			stop()

			if n, err := rdb.XLen(ctx, DeadLetterStream).Result(); err != nil || n != 1 {
				t.Errorf("dead letters: got %d, %v; want 1 (the declined transaction)", n, err)
			}
			checkStatus(t, q, target, StatusFailed)
			if got := psp.calls(target); got != 0 {
				t.Errorf("the survivor's charges of the declined transaction: got %d, want 0 (its round never started)", got)
			}
			if got := pendingCount(t, rdb); got != 0 {
				t.Errorf("entries pending after the survivor stopped: got %d, want 0", got)
			}
			if n := strings.Count(logBuf.String(), "not dead-lettered: another consumer claimed it since"); n != 0 {
				t.Errorf("'not dead-lettered ... left pending' lines: got %d, want 0 (the claim on it was the dead connector's)", n)
			}
			// The dead connector's round in hand may have been charged:
			// charged again (no ledger here), never failed.
			checkStatus(t, q, first, StatusProcessed)
		})
	}
}
