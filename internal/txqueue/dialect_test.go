package txqueue

import (
	"context"
	"strings"
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
	if got := scriptsFor(context.Background(), rdb); got != scriptsWithAllowOOM {
		t.Errorf("got the scripts without flags for Redis 7, want scriptsWithAllowOOM")
	}
	for _, s := range []*redis.Script{scriptsBeforeRedis7.claim, scriptsBeforeRedis7.record, scriptsBeforeRedis7.release,
		scriptsBeforeRedis7.deadLetter, scriptsBeforeRedis7.trim, scriptsBeforeRedis7.forget} {
		if err := s.Load(context.Background(), rdb).Err(); err != nil {
			t.Errorf("a script without flags does not compile: %v", err)
		}
	}
}
