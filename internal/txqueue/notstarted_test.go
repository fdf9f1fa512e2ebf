package txqueue

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// refusingPSP answers its first refusals charges of each transaction with
// refusal, and charges the ones after.
type refusingPSP struct {
	mu       sync.Mutex
	refusals int
	refusal  error
	calls    map[string]int
	made     map[string]int
}

func (p *refusingPSP) Charge(_ context.Context, m Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls[m.ID]++
	if p.calls[m.ID] <= p.refusals {
		return p.refusal
	}
	p.made[m.ID]++
	return nil
}

func (p *refusingPSP) counts(id string) (calls, made int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[id], p.made[id]
}

// TestAChargeNotStartedIsNotCountedAsAFailedPSPStep: psp-connector answers
// ErrChargeNotStarted for a round it does not print (its ledger copy has no
// room on a full disk). Such a transaction was not refused by the PSP: it
// must wait for its next delivery however many deliveries that takes, and
// then be charged once, never marked failed nor dead-lettered at
// MaxDeliveries as a failed PSP step is. Before, a full disk that outlasted
// MaxDeliveries deliveries (5 × VISIBILITY_TIMEOUT in the stack) turned
// transactions the PSP never saw into failed ones. The second row, a PSP
// that declines, is the rule this one must not follow.
func TestAChargeNotStartedIsNotCountedAsAFailedPSPStep(t *testing.T) {
	tests := []struct {
		name       string
		refusal    error
		wantStatus string
		wantMade   int
		wantDead   int
	}{
		{name: "not started, 4 times over MAX_DELIVERIES 2",
			refusal:    fmt.Errorf("%w: no room on disk for the round's ledger line", ErrChargeNotStarted),
			wantStatus: StatusProcessed, wantMade: 1, wantDead: 0},
		{name: "declined by the PSP, MAX_DELIVERIES 2",
			refusal:    errors.New("declined"),
			wantStatus: StatusFailed, wantMade: 0, wantDead: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rdb, q := startQueue(t)
			log, logs := testLogger(t)
			ctx := context.Background()
			id := enqueueN(t, q, 1)[0]
			psp := &refusingPSP{refusals: 4, refusal: tt.refusal, calls: map[string]int{}, made: map[string]int{}}
			cfg := fastConfig("connector")
			cfg.MaxDeliveries = 2
			start := time.Now()
			stop := runConsumer(t, rdb, cfg, psp, log)
			// Bounded: until nothing is pending, or 10 s (about 40
			// redeliveries of a VisibilityTimeout of 200 ms).
			for time.Since(start) < 10*time.Second {
				calls, made := psp.counts(id)
				if made > 0 || calls > 0 && rdb.XLen(ctx, DeadLetterStream).Val() > 0 {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			stop()

			calls, made := psp.counts(id)
			if made != tt.wantMade {
				t.Errorf("charges made in %.1f s (%d PSP steps): got %d, want %d", time.Since(start).Seconds(), calls, made, tt.wantMade)
			}
			checkStatus(t, q, id, tt.wantStatus)
			if n := rdb.XLen(ctx, DeadLetterStream).Val(); n != int64(tt.wantDead) {
				t.Errorf("dead letters: got %d, want %d", n, tt.wantDead)
			}
			if n := pendingCount(t, rdb); n != 0 {
				t.Errorf("entries pending: got %d, want 0", n)
			}
			if tt.wantMade > 0 && !hasLogLine(logs.String(), map[string]string{"level": "WARN",
				"msg": "charges not started; the round and the rest of the batch are left pending for their next delivery"}) {
				t.Errorf("no warning that the charges did not start:\n%s", logs.String())
			}
		})
	}
}
