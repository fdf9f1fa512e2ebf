package txqueue

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestClaimScriptTakesItsOwnRetryAsTheSameClaim: a claim sent again by the
// same consumer with the same now is the retry of a call whose answer was
// lost (Consumer.claimUntilRedisAnswers), and gets the first call's codes;
// a later claim of the same consumer (another now) still finds an earlier
// claim, which may have been charged.
func TestClaimScriptTakesItsOwnRetryAsTheSameClaim(t *testing.T) {
	_, rdb := startRedis(t)
	ctx := context.Background()
	msgs := readAsDeadConsumer(t, NewQueue(rdb, time.Hour), 3)
	cl := claimer{claimant: "me", lease: time.Minute, statusTTL: time.Hour, roundSize: 2, maxDeliveries: 5}
	now := time.Now().UnixNano()
	tests := []struct {
		name string
		now  int64
		want []claimCode
	}{
		{"the first call", now, []claimCode{claimCharge, claimCharge, claimCharge}},
		{"the same call again", now, []claimCode{claimCharge, claimCharge, claimCharge}},
		{"a later claim", now + 1, []claimCode{claimChargeUnknownRound, claimChargeUnknownRound, claimChargeRoundNeverStarted}},
	}
	for _, tt := range tests {
		got, err := cl.claim(ctx, rdb, tt.now, msgs)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("%s: got %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
}

// lostClaimAnswer is a go-redis hook that fails this client's first call
// of claimScript as a read that timed out: sent first when sent is set (it
// ran in Redis, its answer lost), or never sent.
type lostClaimAnswer struct {
	sent   bool
	failed atomic.Bool
}

func (h *lostClaimAnswer) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *lostClaimAnswer) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		args := cmd.Args()
		isClaim := len(args) > 1 && cmd.Name() == "evalsha" && args[1] == claimScript.Hash()
		if !isClaim || h.failed.Swap(true) {
			return next(ctx, cmd)
		}
		if h.sent {
			if err := next(ctx, cmd); err != nil {
				return err
			}
		}
		err := &net.OpError{Op: "read", Net: "unix", Err: os.ErrDeadlineExceeded}
		cmd.SetErr(err)
		return err
	}
}

func (h *lostClaimAnswer) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestConsumerRetriesAClaimRedisDidNotAnswer: the claim of a batch fails
// for want of Redis's answer, whether the call never went out or ran and
// its answer was lost. The consumer sends it again at once, and charges
// each transaction once, without the at-least-once warning of a claim
// found from before. Until then the batch was left pending for
// VisibilityTimeout (30 s here, longer than the test waits).
func TestConsumerRetriesAClaimRedisDidNotAnswer(t *testing.T) {
	tests := []struct {
		name string
		sent bool
	}{
		{"never sent", false},
		{"ran, its answer lost", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, rdb := startRedis(t)
			log, logs := testLogger(t)
			q := NewQueue(rdb, time.Hour)
			ids := enqueueN(t, q, 5)
			hook := &lostClaimAnswer{sent: tt.sent}
			rdbC := connectTo(t, srv)
			rdbC.AddHook(hook)
			psp := &recorder{}
			cfg := fastConfig("retrying")
			cfg.VisibilityTimeout = 30 * time.Second
			stop := runConsumer(t, rdbC, cfg, psp, log)
			for _, id := range ids {
				waitFor(t, id+" processed", statusIs(q, id, StatusProcessed))
			}
			stop()
			if !hook.failed.Load() {
				t.Fatal("the hook failed no claim")
			}
			for _, id := range ids {
				if got := psp.calls(id); got != 1 {
					t.Errorf("charges of %s: got %d, want 1", id, got)
				}
			}
			if n := pendingCount(t, rdb); n != 0 {
				t.Errorf("pending: got %d, want 0", n)
			}
			if !strings.Contains(logs.String(), `"msg":"claimed the batch after Redis came back"`) {
				t.Errorf("no log line of the claim's retry")
			}
			if strings.Contains(logs.String(), "at least once") {
				t.Errorf("an at-least-once warning for a claim of this consumer's own retry:\n%s", logs.String())
			}
		})
	}
}

// TestRedisDidNotAnswer: which failures the claim is sent again for.
func TestRedisDidNotAnswer(t *testing.T) {
	srv, rdb := startRedis(t)
	ctx := context.Background()
	closed := connectTo(t, srv)
	closed.Close()
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"a read that timed out", &net.OpError{Op: "read", Net: "unix", Err: os.ErrDeadlineExceeded}, true},
		{"the connection closed under the call", io.EOF, true},
		{"the call's deadline", context.DeadlineExceeded, true},
		{"Redis answered an error", rdb.Do(ctx, "NOSUCHCOMMAND").Err(), false},
		{"Redis answered a script's error", rdb.Eval(ctx, "return redis.error_reply('WRONGTYPE no')", nil).Err(), false},
		{"Redis busy running a script", rdb.Eval(ctx, "return redis.error_reply('BUSY Redis is busy running a script.')", nil).Err(), true},
		{"Redis still loading its data", rdb.Eval(ctx, "return redis.error_reply('LOADING Redis is loading the dataset in memory')", nil).Err(), true},
		{"Redis answered BUSYGROUP", xgroupCreateTwice(ctx, rdb), false},
		{"Redis answered BUSYKEY", rdb.Eval(ctx, "return redis.error_reply('BUSYKEY Target key name already exists.')", nil).Err(), false},
		{"an answer this code cannot read", errors.New("claim script: got 2 codes for 3 transactions"), false},
		{"this client closed", closed.Ping(ctx).Err(), false},
	}
	for _, tt := range tests {
		if tt.err == nil {
			t.Fatalf("%s: no error to judge", tt.name)
		}
		if got := redisDidNotAnswer(tt.err); got != tt.want {
			t.Errorf("%s (%v): got %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

// TestClaimScriptRetryKeepsTheMaybeChargedMark: the first call of a claim
// took over a stopped consumer's round in hand (2, maybe charged) and its
// next round (4, never started), and its answer was lost. The same call
// again still answers 2 for the round in hand, whose maybe_charged mark
// says an earlier delivery may have charged it (so it is looked up in the
// PSP's ledger, and a failed charge never dead-letters it), and 1 for the
// round that never started. A retry branch checked before the mark
// answered 1 for all, charging the round in hand as a first charge.
func TestClaimScriptRetryKeepsTheMaybeChargedMark(t *testing.T) {
	_, rdb := startRedis(t)
	ctx := context.Background()
	msgs := readAsDeadConsumer(t, NewQueue(rdb, time.Hour), 17)
	claimAsDeadConsumerAt(t, rdb, msgs, time.Millisecond, time.Now().Add(-time.Second)) // rounds of 16: 16 in hand, 1 not started
	cl := claimer{claimant: "me", lease: time.Millisecond, statusTTL: time.Hour, roundSize: 16}
	now := time.Now().UnixNano()
	want := append(slices.Repeat([]claimCode{claimChargeUnknownRound}, 16), claimChargeRoundNeverStarted)
	if got, err := cl.claim(ctx, rdb, now, msgs); err != nil || !slices.Equal(got, want) {
		t.Fatalf("the first call: got %v, %v; want %v", got, err, want)
	}
	want[16] = claimCharge
	if got, err := cl.claim(ctx, rdb, now, msgs); err != nil || !slices.Equal(got, want) {
		t.Errorf("the same call again: got %v, %v; want %v", got, err, want)
	}
}

// xgroupCreateTwice returns Redis's answer to creating a group that exists:
// BUSYGROUP, an error of the call, though it starts with BUSY.
func xgroupCreateTwice(ctx context.Context, rdb *redis.Client) error {
	rdb.XGroupCreateMkStream(ctx, "busygroup-test", "g", "$")
	return rdb.XGroupCreateMkStream(ctx, "busygroup-test", "g", "$").Err()
}
