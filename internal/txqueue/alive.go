package txqueue

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// How a connector shows itself alive, and how core-api judges that none is.
const (
	// ConsumerAliveEvery is how often a connector refreshes
	// ConsumerAliveKey.
	ConsumerAliveEvery = 5 * time.Second
	// ConsumerAliveTTL is the key's expiry: three refreshes, so that two
	// missed ones (Redis answering late, a restart) do not let it lapse.
	ConsumerAliveTTL = 3 * ConsumerAliveEvery
	// NoConsumerGrace is how long core-api sees transactions in the stream
	// and no ConsumerAliveKey before it warns: more than the key's expiry,
	// so that a connector started after core-api (a first start), or
	// restarted, refreshes it first.
	NoConsumerGrace = 30 * time.Second
	// NoConsumerWarnEvery is how often the warning is repeated while no
	// connector shows itself.
	NoConsumerWarnEvery = time.Minute
	// noConsumerCheckEvery is how often core-api looks.
	noConsumerCheckEvery = 5 * time.Second
)

// aliveTiming is the schedule of KeepConsumerAlive and WarnIfNoConsumer;
// tests shorten it.
type aliveTiming struct {
	every, ttl                   time.Duration // the connector's refresh
	checkEvery, grace, warnEvery time.Duration // core-api's check
}

var defaultAliveTiming = aliveTiming{
	every: ConsumerAliveEvery, ttl: ConsumerAliveTTL,
	checkEvery: noConsumerCheckEvery, grace: NoConsumerGrace, warnEvery: NoConsumerWarnEvery,
}

// GoKeepConsumerAlive sets ConsumerAliveKey to name, with ConsumerAliveTTL,
// now and every ConsumerAliveEvery, in its own goroutine, until ctx ends or
// the returned function is called (which waits for it). Redis down is
// waited out: the next refresh tries again. It is set past Redis's
// maxmemory too (aliveScript), since the connector still charges what is
// queued then; on a Redis before 7.0, which refuses SET there, only its
// expiry is renewed (PEXPIRE is allowed).
func GoKeepConsumerAlive(ctx context.Context, rdb *redis.Client, name string) (stop func()) {
	return goUntilStopped(ctx, func(ctx context.Context) { keepConsumerAlive(ctx, rdb, name, defaultAliveTiming) })
}

// aliveScript sets ConsumerAliveKey (KEYS[1]) to ARGV[1] for ARGV[2] ms,
// past Redis's maxmemory too (whenFull), as the connector's own scripts run
// there.
var aliveScript = redis.NewScript(whenFull + `
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`)

func keepConsumerAlive(ctx context.Context, rdb *redis.Client, name string, tm aliveTiming) {
	tick := time.NewTicker(tm.every)
	defer tick.Stop()
	for {
		setCtx, cancel := context.WithTimeout(ctx, ioTimeout)
		err := aliveScript.Run(setCtx, rdb, []string{ConsumerAliveKey}, name, tm.ttl.Milliseconds()).Err()
		if err != nil && strings.Contains(err.Error(), "Error compiling script") {
			// A Redis before 7.0 knows no shebang: a SET, and at its
			// maxmemory, where SET is refused, the expiry renewed alone.
			err = rdb.Set(setCtx, ConsumerAliveKey, name, tm.ttl).Err()
			if err != nil && strings.HasPrefix(err.Error(), "OOM") {
				_ = rdb.PExpire(setCtx, ConsumerAliveKey, tm.ttl).Err()
			}
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// GoWarnIfNoConsumer watches, in its own goroutine until ctx ends or the
// returned function is called, for transactions queued in rdb's database
// while no connector consumes it: Stream holds entries and
// ConsumerAliveKey has been missing for NoConsumerGrace. Then it logs a
// warning naming REDIS_URL and the database, and again every
// NoConsumerWarnEvery while that lasts, and once more at info when a
// connector shows itself. It is what a connector given another database
// than core-api's (REDIS_URL …/1 against …/0) looks like: every
// transaction answered 200 and never charged. Nothing is queued on a first
// start before the first transaction, and a connector started after
// core-api refreshes the key within the grace, so neither warns. Redis not
// answering starts the grace again. It asks every 5 s, in one round trip
// while a connector is alive, off the enqueue path.
func GoWarnIfNoConsumer(ctx context.Context, rdb *redis.Client, log *slog.Logger) (stop func()) {
	return goUntilStopped(ctx, func(ctx context.Context) { warnIfNoConsumer(ctx, rdb, log, defaultAliveTiming) })
}

func warnIfNoConsumer(ctx context.Context, rdb *redis.Client, log *slog.Logger, tm aliveTiming) {
	tick := time.NewTicker(tm.checkEvery)
	defer tick.Stop()
	var missingSince, warnedAt time.Time // zero: the key is there, or Redis did not answer
	for {
		alive, waiting, err := consumerAlive(ctx, rdb)
		now := time.Now()
		switch {
		case err != nil || alive || waiting == 0:
			if alive && !warnedAt.IsZero() {
				log.Info("a psp-connector consumes this redis database again", "redis_addr", rdb.Options().Addr, "redis_db", rdb.Options().DB)
			}
			missingSince, warnedAt = time.Time{}, time.Time{}
		case missingSince.IsZero():
			missingSince = now
		case now.Sub(missingSince) >= tm.grace && (warnedAt.IsZero() || now.Sub(warnedAt) >= tm.warnEvery):
			warnedAt = now
			log.Warn("no psp-connector consumes this redis database: transactions are answered 200 and not charged; check that psp-connector runs, with the same REDIS_URL as core-api, database number included",
				"redis_addr", rdb.Options().Addr, "redis_db", rdb.Options().DB, "transactions_waiting", waiting,
				"no_connector_for", now.Sub(missingSince).Round(time.Second).String())
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// consumerAlive reports whether ConsumerAliveKey is there and, when it is
// not, how many transactions wait in Stream for a connector: all of its
// entries when Group is not there (no connector ever read this database),
// else those delivered and not acknowledged (pending) and those not yet
// delivered (lag). Where Redis cannot say the lag (before 7.0, or after a
// deletion) and nothing is pending, one entry after the group's last
// delivered one counts as 1: at least one waits. The connector's trim
// leaves acknowledged entries in the stream for up to CLAIM_INTERVAL, so
// they do not count.
func consumerAlive(ctx context.Context, rdb *redis.Client) (alive bool, waiting int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, ioTimeout)
	defer cancel()
	pipe := rdb.Pipeline()
	exists := pipe.Exists(ctx, ConsumerAliveKey)
	xlen := pipe.XLen(ctx, Stream)
	groups := pipe.XInfoGroups(ctx, Stream)
	_, _ = pipe.Exec(ctx) // each command's error is looked at below
	switch {
	case exists.Err() != nil:
		return false, 0, exists.Err()
	case exists.Val() == 1:
		return true, 0, nil
	case xlen.Err() != nil:
		return false, 0, xlen.Err()
	case xlen.Val() == 0:
		return false, 0, nil // no stream, or an empty one
	case groups.Err() != nil:
		return false, 0, groups.Err()
	}
	for _, g := range groups.Val() {
		if g.Name != Group {
			continue
		}
		if n := g.Pending + max(g.Lag, 0); n > 0 {
			return false, n, nil
		}
		next, err := rdb.XRangeN(ctx, Stream, "("+g.LastDeliveredID, "+", 1).Result()
		return false, int64(len(next)), err
	}
	return false, xlen.Val(), nil
}

// goUntilStopped runs f in its own goroutine and returns a function that
// ends f's context and waits for it to return: a service defers it after
// its defer of rdb.Close, so that f ends before the client closes.
func goUntilStopped(ctx context.Context, f func(ctx context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}
