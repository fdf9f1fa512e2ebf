package txqueue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
)

// DurabilityProblems reads the Redis settings that decide whether a
// transaction answered 200 survives (settings, by name), and says what is
// wrong with them, one sentence each (none: nothing). The stack's own Redis has them right
// (process-compose.yaml); a REDIS_URL pointing elsewhere may not:
//   - appendonly must be yes: without the AOF a Redis restart loses every
//     queued transaction;
//   - appendfsync must be always: under no the kernel decides when the AOF
//     reaches the disk, and a host crash loses what was answered; under
//     everysec Redis postpones even the AOF's write(2) while a background
//     fsync runs, and answers anyway, so a kill -9 of Redis alone loses
//     what it answered meanwhile (RELIABILITY.md D6), with the
//     Idempotency-Key records written with it, so that nothing tells the
//     client, who holds a 200, to send it again;
//   - no-appendfsync-on-rewrite must be no: yes skips the fsync while a
//     child rewrites the AOF (or saves), when Redis's durability "is the
//     same as appendfsync no" (redis.conf), whatever appendfsync says;
//   - with a maxmemory, maxmemory-policy must be noeviction: any other
//     policy may evict status records (they expire) and Idempotency-Key
//     records, so that a keyed retry queues twice, and allkeys-* the stream
//     itself.
//
// An error means the settings could not be read: Redis is down, or refuses
// CONFIG (a managed Redis may; see IsRedisRefusal).
func DurabilityProblems(ctx context.Context, rdb *redis.Client) (settings map[string]string, problems []string, err error) {
	pipe := rdb.Pipeline()
	names := []string{"appendonly", "appendfsync", "no-appendfsync-on-rewrite", "maxmemory", "maxmemory-policy"}
	cmds := make([]*redis.MapStringStringCmd, len(names))
	for i, name := range names {
		cmds[i] = pipe.ConfigGet(ctx, name)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, nil, err
	}
	got := map[string]string{}
	for i, name := range names {
		got[name] = cmds[i].Val()[name]
	}
	// A setting CONFIG GET did not answer (a proxy in front of Redis, say)
	// is not judged.
	if got["appendonly"] != "" && got["appendonly"] != "yes" {
		problems = append(problems, fmt.Sprintf("appendonly is %q, not yes: a Redis restart loses every queued transaction, each answered 200", got["appendonly"]))
	} else if got["appendfsync"] == "no" {
		problems = append(problems, "appendfsync is no: the kernel decides when the AOF reaches the disk, so a host crash loses transactions answered 200 (always, the stack's default, does not)")
	} else if got["appendfsync"] == "everysec" {
		problems = append(problems, "appendfsync is everysec: Redis answers before it writes the AOF while a background fsync runs, so a kill -9 of Redis (or a host crash) loses transactions answered 200, their Idempotency-Key records with them (always, the stack's default, does not)")
	}
	if got["appendonly"] != "no" && got["appendfsync"] != "no" && got["no-appendfsync-on-rewrite"] == "yes" {
		problems = append(problems, "no-appendfsync-on-rewrite is yes: Redis skips the fsync while it rewrites the AOF, so a host crash then loses transactions answered 200 (no, the default, does not)")
	}
	if mm, policy := got["maxmemory"], got["maxmemory-policy"]; mm != "" && mm != "0" && policy != "" && policy != "noeviction" {
		problems = append(problems, fmt.Sprintf("maxmemory-policy is %q with maxmemory %s, not noeviction: Redis may evict status and Idempotency-Key records (a keyed retry then queues twice), or with allkeys-* the queue itself", got["maxmemory-policy"], got["maxmemory"]))
	}
	return got, problems, nil
}

// IsRedisRefusal reports whether err is Redis's own error reply (an unknown
// or forbidden command, say), not a failure to reach it.
func IsRedisRefusal(err error) bool {
	var reply redis.Error
	return errors.As(err, &reply)
}

// WarnIfNotDurable logs, once Redis answers, each of its DurabilityProblems
// as a warning, or that its settings keep what it answers. Redis need not
// be up when it starts: it asks again every second until Redis answers or
// ctx ends. A Redis that refuses CONFIG is logged once, at info, and not
// asked again. Run it in its own goroutine (GoWarnIfNotDurable).
func WarnIfNotDurable(ctx context.Context, rdb *redis.Client, log *slog.Logger) {
	for {
		askCtx, cancel := context.WithTimeout(ctx, time.Second)
		settings, problems, err := DurabilityProblems(askCtx, rdb)
		cancel()
		switch {
		case err == nil && len(problems) == 0:
			log.Info("redis keeps what it answers", "appendonly", settings["appendonly"],
				"appendfsync", settings["appendfsync"], "maxmemory", settings["maxmemory"], "maxmemory_policy", settings["maxmemory-policy"])
			return
		case err == nil:
			for _, p := range problems {
				log.Warn("redis may lose transactions answered 200", "setting", p)
			}
			return
		case IsRedisRefusal(err):
			log.Info("could not read redis's persistence settings; not checked", "error", err.Error())
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// GoWarnIfNotDurable runs WarnIfNotDurable in its own goroutine and returns
// a function that stops it and waits for it to return. A service defers
// that after its defer of rdb.Close, so that the check ends before the
// client closes, also when run returns with an error before ctx ends: then
// it would ask a closed client every second, and could log after run had
// returned.
func GoWarnIfNotDurable(ctx context.Context, rdb *redis.Client, log *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		WarnIfNotDurable(ctx, rdb, log)
	}()
	return func() {
		cancel()
		<-done
	}
}
