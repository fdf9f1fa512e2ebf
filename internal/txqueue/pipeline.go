package txqueue

import (
	"context"
	"sync"

	"github.com/redis/go-redis/v9"
)

// evalBatch runs script n times in one pipeline, with the keys and args that
// argsOf gives for each call, and returns one command per call. After a
// NOSCRIPT (Redis restarted and lost its script cache) it loads the script
// and runs again only the calls that got NOSCRIPT: in one pipeline some calls
// can run and others not, when a concurrent SCRIPT LOAD lands between them.
// A call that fails with no reply of its own (the connection could not be
// set up: a wrong password or database) gets the pipeline's error.
func evalBatch(ctx context.Context, rdb *redis.Client, script *redis.Script, n int, argsOf func(i int) ([]string, []any)) []*redis.Cmd {
	if n == 0 {
		return nil
	}
	cmds := make([]*redis.Cmd, n)
	todo := make([]int, n)
	for i := range todo {
		todo[i] = i
	}
	for attempt := 0; attempt < 2 && len(todo) > 0; attempt++ {
		pipe := rdb.Pipeline()
		for _, i := range todo {
			keys, args := argsOf(i)
			cmds[i] = script.EvalSha(ctx, pipe, keys, args...)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			for _, i := range todo {
				if cmds[i].Err() == nil && cmds[i].Val() == nil {
					cmds[i].SetErr(err)
				}
			}
		}
		var again []int
		for _, i := range todo {
			if redis.HasErrorPrefix(cmds[i].Err(), "NOSCRIPT") {
				again = append(again, i)
			}
		}
		if len(again) > 0 {
			_ = script.Load(ctx, rdb)
		}
		todo = again
	}
	return cmds
}

// scriptBatcher runs one script for many concurrent callers in shared
// pipelines (Redis's "auto-pipelining"): a caller that finds fewer than
// maxInFlight pipelines in flight sends its own call plus every call waiting
// at that moment; otherwise it waits, and the caller whose pipeline returns
// first hands the next pipeline to the first waiter. Under load, core-api's
// requests share round trips, Redis reads many commands per syscall, and
// no call waits for a timer: an idle queue sends each call at once.
type scriptBatcher struct {
	rdb         *redis.Client
	script      *redis.Script
	maxInFlight int

	mu       sync.Mutex
	waiting  []*batchedCall
	inFlight int
}

type batchedCall struct {
	keys []string
	args []any
	cmd  *redis.Cmd
	lead bool // woken to send the next pipeline, not because cmd is done
	wake chan struct{}
}

// run runs the script with keys and args, in a pipeline shared with other
// callers, and returns its command (reply or error). The pipeline runs on
// ctx without its cancellation: a call sent for others must not fail because
// one caller went away.
func (b *scriptBatcher) run(ctx context.Context, keys []string, args ...any) *redis.Cmd {
	call := &batchedCall{keys: keys, args: args, wake: make(chan struct{}, 1)}
	b.mu.Lock()
	if b.inFlight >= b.maxInFlight {
		b.waiting = append(b.waiting, call)
		b.mu.Unlock()
		<-call.wake
		if !call.lead {
			return call.cmd
		}
		// Chosen to lead (and taken off waiting) by a caller whose
		// pipeline returned; its slot is ours now.
		b.mu.Lock()
	} else {
		b.inFlight++
	}
	group := append([]*batchedCall{call}, b.waiting...)
	b.waiting = nil
	b.mu.Unlock()

	cmds := evalBatch(context.WithoutCancel(ctx), b.rdb, b.script, len(group), func(i int) ([]string, []any) {
		return group[i].keys, group[i].args
	})

	b.mu.Lock()
	var next *batchedCall
	if len(b.waiting) > 0 {
		next = b.waiting[0]
		b.waiting = b.waiting[1:]
		next.lead = true // inherits this pipeline's slot
	} else {
		b.inFlight--
	}
	b.mu.Unlock()
	for i, c := range group {
		c.cmd = cmds[i]
		if c != call {
			c.wake <- struct{}{}
		}
	}
	if next != nil {
		next.wake <- struct{}{}
	}
	return call.cmd
}
