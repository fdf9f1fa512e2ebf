package txqueue

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/acme-payments/platform/internal/httpx"
)

// fillRedis makes Redis refuse what adds data, as a Redis past its
// maxmemory with the stack's noeviction policy does, until the test ends.
func fillRedis(t *testing.T, admin *redis.Client) {
	t.Helper()
	ctx := context.Background()
	if err := admin.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	if err := admin.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.ConfigSet(context.Background(), "maxmemory", "0") })
}

// fullAfterRead is a hook that fills Redis (fillRedis) right after the
// first XREADGROUP that delivers entries: between a batch's read and its
// claim, as a busy stack reaches its ceiling.
type fullAfterRead struct {
	t     *testing.T
	admin *redis.Client
	done  atomic.Bool
}

func (h *fullAfterRead) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *fullAfterRead) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *fullAfterRead) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if xr, ok := cmd.(*redis.XStreamSliceCmd); ok && cmd.Name() == "xreadgroup" && err == nil &&
			len(xr.Val()) > 0 && len(xr.Val()[0].Messages) > 0 && !h.done.Swap(true) {
			fillRedis(h.t, h.admin)
		}
		return err
	}
}

// TestConsumerChargesTheBacklogWhileRedisIsFull: a Redis at its maxmemory
// (noeviction) refuses new transactions, and that is all it may refuse.
// What it had accepted is still charged, each once, and recorded processed.
// Before, the consumer stopped: started against a full Redis it waited
// for its XGROUP CREATE (refused, though the group was there), and one
// already running charged its first round, had that round's record
// refused, and held it, retrying, until memory came back (only as records
// expire, STATUS_TTL later), the rest of the backlog waiting behind it.
func TestConsumerChargesTheBacklogWhileRedisIsFull(t *testing.T) {
	tests := []struct {
		name string
		// full fills Redis: at once, or through a hook on the consumer's
		// client.
		full func(t *testing.T, admin, rdb *redis.Client)
	}{
		{"the connector starts when Redis is full", func(t *testing.T, admin, _ *redis.Client) {
			fillRedis(t, admin)
		}},
		{"Redis fills between a batch's read and its claim", func(t *testing.T, admin, rdb *redis.Client) {
			rdb.AddHook(&fullAfterRead{t: t, admin: admin})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, admin, q := startQueue(t)
			log, _ := testLogger(t)
			ctx := context.Background()
			if err := admin.XGroupCreateMkStream(ctx, Stream, Group, "0").Err(); err != nil {
				t.Fatal(err)
			}
			ids := enqueueN(t, q, 40)
			rdb := connectTo(t, srv)
			tt.full(t, admin, rdb)

			psp := &recorder{}
			cfg := fastConfig("c")
			cfg.BatchSize, cfg.Chargers = 64, 16 // rounds of 16: the first round's record is refused
			stop := runConsumer(t, rdb, cfg, psp, log)
			waitForProcessed(t, q, ids...)
			waitForNothingPending(t, admin)
			stop()
			checkChargedOnce(t, psp, ids...)

			// The intake is what stops: a new transaction is refused,
			// and nothing is queued.
			_, err := q.Enqueue(ctx, Transaction{UserID: 1, Amount: 5, Currency: "USD", RequestID: "r"}, "")
			if err == nil || !strings.Contains(err.Error(), "OOM") || mayHaveRun(err) {
				t.Errorf("Enqueue while Redis is full: got %v, want Redis's OOM answer (nothing queued)", err)
			}
			if n, err := admin.XInfoStream(ctx, Stream).Result(); err != nil || n.EntriesAdded != int64(len(ids)) {
				t.Errorf("entries added to the stream: got %+v, %v; want %d", n, err, len(ids))
			}
		})
	}
}

// TestRedisChecksAtTheCeiling: a full Redis fails core-api's check (it
// refuses new transactions) but not psp-connector's, which still charges
// what was accepted (before, both said "redis refuses writes"); a Redis
// that refuses every write (too few replicas, here) fails both.
func TestRedisChecksAtTheCeiling(t *testing.T) {
	tests := []struct {
		name         string
		refuse       func(t *testing.T, admin *redis.Client)
		wantCore     error
		wantConsumer error
	}{
		{"full", fillRedis, errRedisRefusesWrites, nil},
		{"refusing every write", func(t *testing.T, admin *redis.Client) {
			if err := admin.ConfigSet(context.Background(), "min-replicas-to-write", "1").Err(); err != nil {
				t.Fatal(err)
			}
		}, errRedisRefusesWrites, errRedisRefusesWrites},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rdb := startRedis(t)
			log, _ := testLogger(t)
			ctx := context.Background()
			for _, check := range []httpx.Check{RedisCheck(log, rdb), ConsumerRedisCheck(log, rdb)} {
				if err := check.Run(ctx); err != nil {
					t.Fatalf("before: got %v, want nil", err)
				}
			}
			tt.refuse(t, rdb)
			if err := RedisCheck(log, rdb).Run(ctx); !errors.Is(err, tt.wantCore) {
				t.Errorf("RedisCheck: got %v, want %v", err, tt.wantCore)
			}
			if err := ConsumerRedisCheck(log, rdb).Run(ctx); !errors.Is(err, tt.wantConsumer) {
				t.Errorf("ConsumerRedisCheck: got %v, want %v", err, tt.wantConsumer)
			}
		})
	}
}
