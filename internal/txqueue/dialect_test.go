package txqueue

import (
	"context"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestAConsumerOnARedisThatCannotCompileAShebangChargesEveryTransaction:
// D105 started every consumer script with "#!lua flags=allow-oom", which a
// Redis before 7.0 cannot compile ("Error compiling script ... unexpected
// symbol near '#'"): there every claim failed and nothing was charged, while
// core-api went on answering 200 (a review of the day's changes). A Redis
// that cannot compile the probe's shebang now gets the scripts without one.
// No Redis before 7.0 runs here: the probe stands in for it with a script
// that no Redis compiles, so that the real 7.0 answers "Error compiling
// script" as 6.2 does, and the consumer then runs the scripts without a
// shebang against it.
func TestAConsumerOnARedisThatCannotCompileAShebangChargesEveryTransaction(t *testing.T) {
	probe := scriptsProbe
	scriptsProbe = redis.NewScript(whenFull + "\nreturn (")
	t.Cleanup(func() { scriptsProbe = probe })

	srv, admin, q := startQueue(t)
	log, logs := testLogger(t)
	ids := enqueueN(t, q, 40)
	psp := &recorder{}
	cfg := fastConfig("old-redis")
	cfg.BatchSize, cfg.Chargers = 64, 16
	stop := runConsumer(t, connectTo(t, srv), cfg, psp, log)
	waitForProcessed(t, q, ids...)
	waitForNothingPending(t, admin)
	stop()
	checkChargedOnce(t, psp, ids...)
	if !strings.Contains(logs.String(), "redis is older than 7.0") {
		t.Errorf("no line saying the scripts run without flags; logs:\n%s", logs.String())
	}
}

// TestScriptsForARedis7AllowOOM: Redis 7.0 and later compile the shebang,
// and get the scripts that run past maxmemory (D105).
func TestScriptsForARedis7AllowOOM(t *testing.T) {
	_, rdb := startRedis(t)
	if got, err := scriptsFor(context.Background(), rdb); err != nil || got != scriptsWithAllowOOM {
		t.Errorf("got the scripts without flags for Redis 7 (or %v), want scriptsWithAllowOOM", err)
	}
	for _, s := range []*redis.Script{scriptsBeforeRedis7.claim, scriptsBeforeRedis7.record, scriptsBeforeRedis7.release,
		scriptsBeforeRedis7.deadLetter, scriptsBeforeRedis7.trim, scriptsBeforeRedis7.forget, scriptsBeforeRedis7.uncount} {
		if err := s.Load(context.Background(), rdb).Err(); err != nil {
			t.Errorf("a script without flags does not compile: %v", err)
		}
	}
}

// lostProbeAnswer is a go-redis hook that fails this client's first call of
// scriptsProbe as a read that timed out, never sent: Redis did not answer
// (a restart, a pause, a slow fsync) just after the group was in place.
type lostProbeAnswer struct{ failed atomic.Bool }

func (h *lostProbeAnswer) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *lostProbeAnswer) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		args := cmd.Args()
		if len(args) > 1 && cmd.Name() == "evalsha" && args[1] == scriptsProbe.Hash() && !h.failed.Swap(true) {
			err := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}

func (h *lostProbeAnswer) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestAConsumerAsksAgainWhichScriptsItsRedisRuns: the consumer asks its
// Redis once whether it compiles a shebang (scriptsFor). When that one
// question got no answer, it took Redis for 7.0 or later; on a Redis before
// 7.0 every claim then failed to compile, for as long as the connector ran:
// nothing charged, every entry left pending, /health passing. It now asks
// again until Redis answers. A Redis before 7.0 is stood in for as in
// TestAConsumerOnARedisThatCannotCompileAShebangChargesEveryTransaction, its
// scripts with a shebang too: a probe and scripts that no Redis compiles.
func TestAConsumerAsksAgainWhichScriptsItsRedisRuns(t *testing.T) {
	probe, withFlags := scriptsProbe, scriptsWithAllowOOM
	uncompilable := func() *redis.Script { return redis.NewScript(whenFull + "\nreturn (") }
	scriptsProbe = uncompilable()
	scriptsWithAllowOOM = &consumerScripts{uncompilable(), uncompilable(), uncompilable(), uncompilable(),
		uncompilable(), uncompilable(), uncompilable()}
	t.Cleanup(func() { scriptsProbe, scriptsWithAllowOOM = probe, withFlags })

	srv, admin, q := startQueue(t)
	log, logs := testLogger(t)
	ids := enqueueN(t, q, 3)
	rdb := connectTo(t, srv)
	lost := &lostProbeAnswer{}
	rdb.AddHook(lost)
	psp := &recorder{}
	stop := runConsumer(t, rdb, fastConfig("old-redis"), psp, log)
	waitForProcessed(t, q, ids...)
	waitForNothingPending(t, admin)
	stop()
	if !lost.failed.Load() {
		t.Fatal("the probe's first answer was not lost: the test did not test")
	}
	checkChargedOnce(t, psp, ids...)
	if !strings.Contains(logs.String(), "redis is older than 7.0") {
		t.Errorf("no line saying the scripts run without flags; logs:\n%s", logs.String())
	}
}
