package txqueue

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme-payments/platform/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// splitPipeline is a go-redis hook that sends the first pipeline of two or
// more commands in two parts and runs between runs what a concurrent
// client could do at that moment.
type splitPipeline struct {
	done    atomic.Bool
	between func(ctx context.Context)
}

func (h *splitPipeline) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *splitPipeline) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *splitPipeline) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) < 2 || h.done.Swap(true) {
			return next(ctx, cmds)
		}
		_ = next(ctx, cmds[:1])
		h.between(ctx)
		return next(ctx, cmds[1:])
	}
}

// TestEvalBatchRerunsOnlyTheCallsThatGotNOSCRIPT: after Redis lost its
// script cache (a restart), a pipeline's first call can get NOSCRIPT while a
// later one runs, because another client's SCRIPT LOAD landed between them.
// evalBatch must rerun only the first. The script counts its runs per key,
// so a call run twice shows.
func TestEvalBatchRerunsOnlyTheCallsThatGotNOSCRIPT(t *testing.T) {
	srv, rdb := startRedis(t)
	other := connectTo(t, srv)
	ctx := context.Background()
	counter := redis.NewScript(`return redis.call('INCR', KEYS[1])`)
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	rdb.AddHook(&splitPipeline{between: func(ctx context.Context) { _ = counter.Load(ctx, other).Err() }})

	const calls = 3
	cmds := evalBatch(ctx, rdb, counter, calls, func(i int) ([]string, []any) {
		return []string{"test:runs:" + strconv.Itoa(i)}, nil
	})
	for i, c := range cmds {
		if got, err := c.Int64(); err != nil || got != 1 {
			t.Errorf("call %d: got %d, %v; want its first run (1)", i, got, err)
		}
		if runs, _ := rdb.Get(ctx, "test:runs:"+strconv.Itoa(i)).Int64(); runs != 1 {
			t.Errorf("call %d ran %d times, want once", i, runs)
		}
	}
}

// TestEvalBatchReportsAConnectionThatCannotBeSetUp: a wrong database (or
// password) fails while the connection is set up, before any command has a
// reply of its own; each call must carry that error, not an empty reply.
func TestEvalBatchReportsAConnectionThatCannotBeSetUp(t *testing.T) {
	srv := redistest.Start(t)
	opts, err := redis.ParseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	opts.DB = 99 // Redis has 16
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	cmds := evalBatch(context.Background(), rdb, enqueueScript, 2, func(i int) ([]string, []any) {
		return []string{Stream, StatusKey(newID())}, nil
	})
	for i, c := range cmds {
		if err := c.Err(); err == nil || !strings.Contains(err.Error(), "DB index is out of range") {
			t.Errorf("call %d: got error %v (reply %v), want Redis's ERR about the database", i, err, c.Val())
		}
	}
}

// TestEnqueueScriptRunTwiceQueuesOnce: ids are random, so the same id twice
// can only be the same call run again; it must queue one entry and answer
// "queued" both times (with an idempotency key too, where the second run
// must not look like a client's replay).
func TestEnqueueScriptRunTwiceQueuesOnce(t *testing.T) {
	for _, key := range []string{"", "key-1"} {
		t.Run("idempotency key "+strconv.Quote(key), func(t *testing.T) {
			_, rdb := startRedis(t)
			ctx := context.Background()
			id := newID()
			keys := []string{Stream, StatusKey(id)}
			if key != "" {
				keys = append(keys, IdempotencyKey(1, key))
			}
			for run := 1; run <= 2; run++ {
				got, err := enqueueScript.Run(ctx, rdb, keys, id, 1, 100, "USD", "req-1", time.Now().UnixNano(),
					time.Hour.Milliseconds(), "fp", DefaultIdempotencyTTL.Milliseconds()).Slice()
				if err != nil || len(got) != 2 || got[0] != int64(0) || got[1] != id {
					t.Errorf("run %d: got %v, %v; want [0 %s] (queued)", run, got, err, id)
				}
			}
			if n := rdb.XLen(ctx, Stream).Val(); n != 1 {
				t.Errorf("stream length: got %d, want 1", n)
			}
		})
	}
}
