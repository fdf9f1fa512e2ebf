package txqueue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acme-payments/platform/internal/logging"
	"github.com/redis/go-redis/v9"
)

// Message is one delivery of a queued transaction to the consumer.
type Message struct {
	Transaction
	// ID is the transaction id returned to the client.
	ID string
	// StreamID is the entry's id in Stream.
	StreamID string
	// EnqueuedAt is when core-api queued it.
	EnqueuedAt time.Time
	// Deliveries counts deliveries of the entry, this one included.
	Deliveries int64

	// claim is what the claim script answered for this delivery.
	claim claimCode
	// round is the charging round the claim stored for it: its place among
	// the batch's chargeable transactions, divided by the round size.
	round int
}

// PSP makes one transaction with the payment service provider. The consumer
// claims the transaction, calls Charge, and records it processed at once, so
// a redelivered message whose charge was recorded is never charged again; an
// error releases the claim and leaves the entry pending for redelivery (or the
// dead-letter stream after MaxDeliveries).
type PSP interface {
	Charge(ctx context.Context, m Message) error
}

// RoundPSP is a PSP that can also charge a whole round at once (the line PSP
// prints a round's lines in one write, or as few as PIPE_BUF allows). The consumer uses ChargeRound when
// its PSP has it; errs[i] is round[i]'s outcome.
type RoundPSP interface {
	PSP
	ChargeRound(ctx context.Context, round []Message, errs []error)
}

// LedgerPSP is a PSP that can say which transactions it has already made:
// the lookup by idempotency key of a real PSP. The consumer asks it about
// every transaction an earlier delivery may have charged (the round in hand
// when that delivery's consumer stopped, before its record), and records
// the ones it made as processed instead of charging them again. Without it,
// or when the lookup fails, those are charged again: at least once. A lookup
// that fails once ctx, Run's work, is done (the stop's grace nearly over)
// charges nothing: the whole batch is left pending (D77).
type LedgerPSP interface {
	PSP
	// Made answers, for each of ids, whether the PSP made that transaction;
	// an id it does not know is false. It should end when ctx is done, with
	// an error. With an error it may still answer: an id it answers true
	// was made (found in a part of its records it could read) and is not
	// charged again; the others are (nil: all of them).
	Made(ctx context.Context, ids []string) (map[string]bool, error)
}

// PSPFunc adapts a function to PSP.
type PSPFunc func(ctx context.Context, m Message) error

// Charge calls f.
func (f PSPFunc) Charge(ctx context.Context, m Message) error { return f(ctx, m) }

// ConsumerConfig tunes a Consumer; zero values take the defaults in brackets.
type ConsumerConfig struct {
	// Name is this consumer's name in Group; it should be unique among
	// the running connectors. Two of one name share their pending entries
	// in Group, but not their claims: each claim names the Consumer that
	// took it (Consumer.claimant), so neither takes the other's for its
	// own. [hostname-pid is the connector's choice; required here]
	Name string
	// BatchSize is XREADGROUP's and XAUTOCLAIM's COUNT, and how many
	// transactions one claim call claims. [DefaultBatchSize]
	BatchSize int
	// Block is how long one XREADGROUP waits for new entries; it bounds how
	// long a shutdown waits for the read in flight. [1s]
	Block time.Duration
	// VisibilityTimeout is how long an entry may stay pending (delivered,
	// not acked) before another consumer reclaims it. [30s]
	VisibilityTimeout time.Duration
	// ClaimInterval is how often XAUTOCLAIM, and the trim of acknowledged
	// entries, run, besides at start. [5s]
	ClaimInterval time.Duration
	// MaxDeliveries is how many deliveries an entry gets before it goes to
	// the dead-letter stream. [5]
	MaxDeliveries int
	// StatusTTL is the expiry of status records the consumer has to recreate. [168h]
	StatusTTL time.Duration
	// ShutdownGrace is how long Run may take after ctx is done: the batch
	// in hand starts no round after ShutdownGrace less finishReserve, and
	// the calls that finish a round (its record, the batch's acks) end
	// with it too. [10s]
	ShutdownGrace time.Duration
	// Chargers is how many transactions of a batch are charged at once, in a
	// round recorded by one script call before the next round starts (see
	// chargeAll): a crash can repeat at most one round, and bigger rounds
	// mean fewer round trips per charge. [DefaultChargers]
	Chargers int
	// Gone reports whether the consumer of that name in Group has stopped
	// for good (psp-connector: a consumer named for a process of this
	// host that no longer exists). Run removes such consumers from Group
	// once nothing is pending for them, at start and after each reclaim
	// pass (not after a stop), so that the group does not list every
	// connector that ever ran. Nil: only this consumer leaves, at its
	// stop. [nil]
	Gone func(name string) bool
	// StallAfter is how long Run may go without starting a step (a read,
	// a reclaim page, a round of charges, an attempt at a record or at
	// the group) before LiveCheck fails: the loop is stuck, and the
	// process needs a restart. [VisibilityTimeout, at least minStallAfter]
	StallAfter time.Duration
}

// minStallAfter bounds StallAfter's default from below: each step's Redis
// calls are bounded by ioTimeout (twice that for a record or a batch's
// acks), and the read by Block more (its own deadline: go-redis alone
// would give it 10 s more), so a loop that is only slow (Redis answering
// late or holding writes, a retry's backoff) starts a step well within it.
const minStallAfter = 10 * time.Second

// DefaultChargers is ConsumerConfig.Chargers's default, and psp-connector's
// CHARGE_CONCURRENCY's. The connector's rounds are one record round trip
// each, one after the other, so under a saturating load the round size
// bounds how fast it drains: rounds of 24 drained after the load in a median
// of 0.35 s against 0.79 s for rounds of 16, in 7 alternated pairs
// (BENCHMARKS.md, "Rounds of 24"). A round of 24 with the longest lines
// still leaves in one write under Linux's PIPE_BUF; a larger one leaves in
// several, each with its own ledger line (psp-connector's psp.go).
const DefaultChargers = 24

// DefaultBatchSize is ConsumerConfig.BatchSize's default, and psp-connector's
// BATCH_SIZE's: six rounds of DefaultChargers. A batch costs two round trips
// (the read, the claim) before its rounds, so a larger one moves more
// transactions per round trip: under loads accepted at 8,000-11,000 tx/s
// batches of 144 drained after the load in 0.03-0.07 s in 10 runs of 10,
// batches of 64 missed the 1 s in 2 of 6 (BENCHMARKS.md, "Batches of 144").
// The claim call's hold on Redis grows with it (about 0.7-1.3 ms for 144
// against 0.3-0.6 ms for 64), its cost per transaction does not.
const DefaultBatchSize = 6 * DefaultChargers

func (c *ConsumerConfig) setDefaults() {
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.Block <= 0 {
		c.Block = time.Second
	}
	if c.VisibilityTimeout <= 0 {
		c.VisibilityTimeout = 30 * time.Second
	}
	if c.ClaimInterval <= 0 {
		c.ClaimInterval = 5 * time.Second
	}
	if c.MaxDeliveries <= 0 {
		c.MaxDeliveries = 5
	}
	if c.StatusTTL <= 0 {
		c.StatusTTL = 168 * time.Hour
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = 10 * time.Second
	}
	if c.StallAfter <= 0 {
		c.StallAfter = max(c.VisibilityTimeout, minStallAfter)
	}
	if c.Chargers <= 0 {
		c.Chargers = DefaultChargers
	}
}

// Consumer reads Stream as one member of Group and hands each transaction to
// a PSP, acknowledging only after success.
type Consumer struct {
	rdb *redis.Client
	cfg ConsumerConfig
	psp PSP
	log *slog.Logger
	// claimant is who this Consumer is in the claims it writes
	// (charging_by): its Name and a random suffix of its own. A claim must
	// name the Consumer, not the name: with two connectors started under
	// one CONSUMER_NAME, one whose lease ran out (a pause, a record
	// retried past it) took the claims the other had made since on the
	// rest of its batch for its own, and charged them too.
	claimant string
	// scripts are the scripts in the dialect of c's Redis: those of 7.0
	// and later until ensureGroup has asked it (scriptsFor).
	scripts atomic.Pointer[consumerScripts]

	consuming atomic.Bool // the group is in place and Run reads from it
	running   atomic.Bool // Run has started and not returned: LiveCheck watches its steps
	// stepAt is when Run last started a step (see stepping), for
	// LiveCheck: nanoseconds since created, on the monotonic clock, so
	// that a step of the wall clock is not taken for a stuck loop.
	stepAt  atomic.Int64
	created time.Time

	// Run's goroutine only: transactions charged and recorded since
	// progressSince, for the next progress line (logProgress).
	processed     int64
	progressSince time.Time
}

// NewConsumer returns a consumer named cfg.Name (which must not be empty).
func NewConsumer(rdb *redis.Client, cfg ConsumerConfig, psp PSP, log *slog.Logger) (*Consumer, error) {
	if cfg.Name == "" {
		return nil, errors.New("consumer name is empty")
	}
	cfg.setDefaults()
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	c := &Consumer{rdb: rdb, cfg: cfg, psp: psp, log: log, claimant: cfg.Name + "#" + hex.EncodeToString(b[:]),
		created: time.Now()}
	c.scripts.Store(scriptsWithAllowOOM)
	return c, nil
}

// Backoff bounds for retrying while Redis is unreachable.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// maxClaimPages bounds one reclaim pass (BatchSize entries per page), so that
// a huge backlog of abandoned entries cannot starve new ones.
const maxClaimPages = 16

// Run consumes until ctx is done: it ensures the group (retrying while Redis
// is not up), reclaims abandoned entries and trims acknowledged ones at start
// and every ClaimInterval, and reads new ones in batches. When ctx is done it stops reading, lets the
// batch in hand finish within ShutdownGrace, leaves everything else pending
// for the next start, and returns nil. It returns an error only for a state
// retrying cannot fix (Stream is not a stream).
func (c *Consumer) Run(ctx context.Context) error {
	// work outlives ctx by ShutdownGrace less finishReserve, so the batch
	// in hand can finish; the calls that finish a round already charged
	// (finishing) have until ShutdownGrace is over. Before, they had their
	// own timeouts on top of it, and with Redis answering late a drain
	// outlasted ShutdownGrace by 1.3 s (TestConsumerDrainEndsWithinShutdownGrace).
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	end := new(atomic.Pointer[time.Time])
	// over ends with ShutdownGrace: a record of charges in hand is retried
	// until then, past work's end (recordUntilRedisAnswers).
	over, cancelOver := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelOver()
	work = context.WithValue(work, graceEndKey{}, &graceEnd{at: end, over: over})
	stop := context.AfterFunc(ctx, func() {
		// With the monotonic clock's reading: a wall clock stepped during
		// the drain moves no deadline.
		at := time.Now().Add(c.cfg.ShutdownGrace)
		end.Store(&at)
		time.AfterFunc(c.cfg.ShutdownGrace-finishReserve(c.cfg.ShutdownGrace), cancelWork)
		time.AfterFunc(c.cfg.ShutdownGrace, cancelOver)
	})
	defer stop()

	// Watched from here, not only once consuming: a loop stuck while it
	// waits for the group (a warning's write that blocks) is stuck too.
	c.stepping()
	c.running.Store(true)
	defer c.running.Store(false)
	// ensureGroup also returns nil when ctx ended first: then nothing was
	// consumed, and nothing may say so.
	if err := c.ensureGroup(ctx); err != nil || ctx.Err() != nil {
		return err
	}
	c.stepping()
	c.consuming.Store(true)
	defer c.consuming.Store(false)
	c.log.Info("consuming", "stream", Stream, "group", Group, "consumer", c.cfg.Name,
		"batch_size", c.cfg.BatchSize, "visibility_timeout", c.cfg.VisibilityTimeout.String(),
		"max_deliveries", c.cfg.MaxDeliveries, "round_size", c.cfg.Chargers)

	backoff := minBackoff
	nextClaim := time.Now()
	c.progressSince = nextClaim
	for ctx.Err() == nil {
		c.stepping()
		if !time.Now().Before(nextClaim) {
			c.logProgress()
			c.reclaim(ctx, work)
			c.trim(work)
			c.forgetGone(ctx, work)
			nextClaim = time.Now().Add(c.cfg.ClaimInterval)
		}
		if ctx.Err() != nil {
			// Stopped during the reclaim pass: read no more. The read
			// has a deadline of its own, and taken after the stop it
			// outlasted a short grace (2.7 s for 2 s, with Redis
			// holding writes; TestConsumerStoppedDuringReclaimEndsWithinShutdownGrace).
			continue
		}
		block := min(c.cfg.Block, time.Until(nextClaim))
		if block < time.Millisecond {
			block = time.Millisecond // BLOCK 0 would wait forever
		}
		// The read is a step of its own, after the reclaim and the trim,
		// and it is given block plus ioTimeout: go-redis's own bound on a
		// blocking command is Block plus 10 s, so a Redis that holds the
		// read unanswered (writes paused; stopped) kept the loop from
		// starting a step for longer than minStallAfter (Connect's client
		// obeys context deadlines).
		c.stepping()
		readCtx, cancelRead := context.WithTimeout(work, block+ioTimeout)
		streams, err := c.rdb.XReadGroup(readCtx, &redis.XReadGroupArgs{
			Group: Group, Consumer: c.cfg.Name, Streams: []string{Stream, ">"},
			Count: int64(c.cfg.BatchSize), Block: block,
		}).Result()
		cancelRead()
		if err == nil || errors.Is(err, redis.Nil) {
			if backoff > minBackoff {
				c.log.Info("reading from stream again")
				backoff = minBackoff
			}
		}
		switch {
		case errors.Is(err, redis.Nil):
			continue
		case err != nil && strings.HasPrefix(err.Error(), "NOGROUP"):
			// Redis lost its data (restarted without persistence): start over.
			c.log.Warn("consumer group is gone; recreating it", "error", err.Error())
			if err := c.ensureGroup(ctx); err != nil {
				return err
			}
			continue
		case err != nil:
			if ctx.Err() != nil {
				continue
			}
			c.log.Warn("read from stream failed; retrying", "error", err.Error(), "retry_in", backoff.String())
			sleep(ctx, backoff)
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		for _, s := range streams {
			c.handle(work, s.Messages, nil)
		}
	}
	c.logProgress()
	c.leave(work)
	c.log.Info("consumer stopped; unread entries stay queued, unacked ones pending")
	return nil
}

// leave removes this consumer from Group at its stop when nothing is pending
// for it (forgetScript): the next start joins under a name of its own
// (psp-connector's is hostname-pid). One that stops with entries pending
// stays, and those are reclaimed after VisibilityTimeout; then forgetGone,
// in the connector that reclaimed them, removes it. Like the calls that
// finish a batch, it is not cut short when work ends, only when
// ShutdownGrace is over.
func (c *Consumer) leave(work context.Context) {
	ctx, cancel := finishing(work, ioTimeout, 0)
	defer cancel()
	res, err := c.script().forget.Run(ctx, c.rdb, []string{Stream}, Group, c.cfg.Name).Int64Slice()
	switch {
	case err != nil:
		c.log.Warn("could not leave the consumer group; it stays listed", "group", Group,
			"consumer", c.cfg.Name, "error", err.Error())
	case len(res) == 1 && res[0] == 1:
		c.log.Info("left the consumer group: nothing pending for it", "group", Group, "consumer", c.cfg.Name)
	default:
		c.log.Info("stays in the consumer group: entries are pending for it", "group", Group,
			"consumer", c.cfg.Name)
	}
}

// maxForget bounds how many consumers one forgetGone call removes, and so
// Redis's time in one forgetScript call; the next pass removes more.
const maxForget = 100

// forgetGone removes from Group the consumers that cfg.Gone says have
// stopped for good and that have nothing pending (forgetScript checks that
// again, atomically). One with entries pending stays until a reclaim has
// taken them over. Errors are logged and ignored: the next pass tries again.
// Nothing is done once ctx, Run's, is done (a stop during the reclaim pass):
// what is left of ShutdownGrace is for this consumer's own leave, and a
// running connector's next pass, or the next start, removes the others.
// Before, with Redis holding writes, the listing and the script after a stop
// took what was left of a 2 s grace, and the leave was cut short at its end.
func (c *Consumer) forgetGone(ctx, work context.Context) {
	if c.cfg.Gone == nil || ctx.Err() != nil {
		return
	}
	c.stepping()
	consumers, err := c.rdb.XInfoConsumers(work, Stream, Group).Result()
	if err != nil {
		if !strings.HasPrefix(err.Error(), "NOGROUP") && work.Err() == nil {
			c.log.Warn("listing the group's consumers failed", "error", err.Error())
		}
		return
	}
	var gone []any
	for _, k := range consumers {
		if len(gone) < maxForget && k.Pending == 0 && k.Name != c.cfg.Name && c.cfg.Gone(k.Name) {
			gone = append(gone, k.Name)
		}
	}
	if len(gone) == 0 || ctx.Err() != nil {
		return
	}
	res, err := c.script().forget.Run(work, c.rdb, []string{Stream}, append([]any{Group}, gone...)...).Int64Slice()
	if err != nil {
		c.log.Warn("removing stopped consumers from the group failed", "error", err.Error())
		return
	}
	var removed []any
	for i, r := range res {
		if r == 1 && i < len(gone) {
			removed = append(removed, gone[i])
		}
	}
	if len(removed) > 0 {
		c.log.Info("removed stopped consumers from the group", "group", Group, "consumers", removed)
	}
}

// graceEndKey is the key, in Run's work context, of its *graceEnd.
type graceEndKey struct{}

// graceEnd is when ShutdownGrace is over: at, nil until Run's ctx is done
// (see finishing); over, a context that ends then.
type graceEnd struct {
	at   *atomic.Pointer[time.Time]
	over context.Context
}

// untilGraceEnd returns the context that ends when ShutdownGrace is over,
// for a step that finishes what was charged and may outlast ctx, Run's
// work (which ends finishReserve earlier); ctx itself outside Run.
func untilGraceEnd(ctx context.Context) context.Context {
	if g, ok := ctx.Value(graceEndKey{}).(*graceEnd); ok {
		return g.over
	}
	return ctx
}

// finishing returns the context, with timeout d, for a Redis call that
// finishes what was charged (a round's record, the batch's acks and
// releases): it is not cut short when ctx, Run's work, ends, since the
// charge already happened, but it ends when ShutdownGrace is over. A
// deadline, not a cancel: the client bounds a call already sent only by
// its context's deadline. A call sent before the stop keeps its d. It has
// least at the least, however near (or past) the grace's end: for the
// first record of a round charged in hand, which is worth the overrun when
// the PSP step itself outlasted the grace (nothing bounds it).
func finishing(ctx context.Context, d, least time.Duration) (context.Context, context.CancelFunc) {
	now := time.Now()
	deadline := now.Add(d)
	if g, ok := ctx.Value(graceEndKey{}).(*graceEnd); ok {
		if at := g.at.Load(); at != nil && at.Before(deadline) {
			deadline = *at
		}
	}
	if floor := now.Add(least); deadline.Before(floor) {
		deadline = floor
	}
	return context.WithDeadline(context.WithoutCancel(ctx), deadline)
}

// finishReserve is the part of ShutdownGrace kept for finishing what the
// batch in hand charged: a record attempt in flight and the acks after it
// (2*ioTimeout each), or half of a shorter grace.
func finishReserve(grace time.Duration) time.Duration {
	return min(4*ioTimeout, grace/2)
}

// stepping notes that Run starts a step now: LiveCheck fails once none has
// started for StallAfter.
func (c *Consumer) stepping() { c.stepAt.Store(int64(time.Since(c.created))) }

// stalled returns how long Run has gone without starting a step, when that
// is longer than StallAfter while it runs (waiting for the group, or
// consuming); otherwise 0.
func (c *Consumer) stalled() time.Duration {
	if !c.running.Load() {
		return 0
	}
	if d := time.Since(c.created) - time.Duration(c.stepAt.Load()); d > c.cfg.StallAfter {
		return d
	}
	return 0
}

// logProgress logs, at info, how many transactions were charged and recorded
// since its last call, when there were any: the connector's heartbeat, once
// per ClaimInterval under load (each transaction's own "processed" line is at
// debug: at thousands a second, a line each costs more CPU than the charge).
func (c *Consumer) logProgress() {
	now := time.Now()
	if c.processed > 0 {
		c.log.Info("progress", "processed", c.processed, "seconds", now.Sub(c.progressSince).Round(time.Millisecond).Seconds())
	}
	c.processed, c.progressSince = 0, now
}

// ensureGroup creates Group on Stream (and the stream), from the first entry
// so nothing queued before the first start is skipped. It retries with
// backoff while Redis is unreachable, and returns nil when ctx ends first.
func (c *Consumer) ensureGroup(ctx context.Context) error {
	backoff := minBackoff
	for {
		c.stepping()
		err := c.rdb.XGroupCreateMkStream(ctx, Stream, Group, "0").Err()
		// Past its maxmemory, Redis refuses XGROUP CREATE before it looks
		// for the group: one that is there already is all Run needs.
		if err == nil || strings.HasPrefix(err.Error(), "BUSYGROUP") ||
			strings.HasPrefix(err.Error(), "OOM") && c.groupExists(ctx) {
			c.useScriptsFor(ctx)
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
		if strings.HasPrefix(err.Error(), "WRONGTYPE") {
			return fmt.Errorf("create consumer group %s on %s: %w", Group, Stream, err)
		}
		c.log.Warn("cannot create consumer group yet; retrying", "error", err.Error(), "retry_in", backoff.String())
		sleep(ctx, backoff)
		backoff = min(2*backoff, maxBackoff)
	}
}

// script returns c's scripts (scriptsFor).
func (c *Consumer) script() *consumerScripts { return c.scripts.Load() }

// useScriptsFor asks c's Redis which scripts it runs (scriptsFor), again
// while Redis does not answer, and says so when it is older than 7.0. Taken
// for 7.0 on a question that got no answer (Redis restarting, paused, slow
// just after the group was in place), a Redis before 7.0 failed every claim
// to compile, for as long as the connector ran, and nothing was charged.
// When ctx ends first, c keeps the scripts it has.
func (c *Consumer) useScriptsFor(ctx context.Context) {
	backoff := minBackoff
	for {
		c.stepping()
		s, err := scriptsFor(ctx, c.rdb)
		if err == nil {
			if s == scriptsBeforeRedis7 {
				c.log.Warn("redis is older than 7.0: the consumer's scripts run without flags, so past its maxmemory a round's record waits for room (RELIABILITY.md D105)")
			}
			c.scripts.Store(s)
			return
		}
		if ctx.Err() != nil {
			return
		}
		c.log.Warn("cannot ask redis which scripts it runs yet; retrying", "error", err.Error(), "retry_in", backoff.String())
		sleep(ctx, backoff)
		backoff = min(2*backoff, maxBackoff)
	}
}

// scriptsProbe is the script scriptsFor asks Redis to compile: one with
// whenFull's shebang, which writes nothing.
var scriptsProbe = writableWhenFullScript

// scriptsFor returns the consumer's scripts for rdb's Redis: those of
// scriptsBeforeRedis7 when it cannot compile a script's shebang (before
// 7.0), else scriptsWithAllowOOM; or an error when Redis did not answer
// (redisDidNotAnswer), which tells nothing about its version.
func scriptsFor(ctx context.Context, rdb *redis.Client) (*consumerScripts, error) {
	err := scriptsProbe.Run(ctx, rdb, nil).Err()
	switch {
	case err != nil && strings.Contains(err.Error(), "Error compiling script"):
		return scriptsBeforeRedis7, nil
	case err != nil && redisDidNotAnswer(err):
		return nil, err
	}
	return scriptsWithAllowOOM, nil
}

// groupExists reports whether Stream has Group (false also when that cannot
// be read).
func (c *Consumer) groupExists(ctx context.Context) bool {
	groups, err := c.rdb.XInfoGroups(ctx, Stream).Result()
	return err == nil && slices.ContainsFunc(groups, func(g redis.XInfoGroup) bool { return g.Name == Group })
}

// reclaim takes over entries pending longer than VisibilityTimeout (their
// consumer crashed, or their PSP step failed) and handles them like new ones,
// with their delivery counts from XPENDING.
func (c *Consumer) reclaim(ctx, work context.Context) {
	start := "0-0"
	for page := 0; page < maxClaimPages && ctx.Err() == nil; page++ {
		c.stepping()
		msgs, next, err := c.rdb.XAutoClaim(work, &redis.XAutoClaimArgs{
			Stream: Stream, Group: Group, Consumer: c.cfg.Name,
			MinIdle: c.cfg.VisibilityTimeout, Start: start, Count: int64(c.cfg.BatchSize),
		}).Result()
		if err != nil {
			if !strings.HasPrefix(err.Error(), "NOGROUP") {
				c.log.Warn("reclaim failed", "error", err.Error())
			}
			return
		}
		if len(msgs) > 0 {
			c.log.Info("reclaimed pending entries", "count", len(msgs))
			c.handle(work, msgs, c.deliveryCounts(work, msgs))
		}
		if next == "0-0" || next == "" {
			return
		}
		start = next
	}
}

// trim removes acknowledged entries from Stream (trimScript), so that the
// stream's memory, and Redis's AOF replay at a restart, stay bounded by what
// is still queued or pending instead of growing with every transaction ever
// accepted. Errors are logged and ignored: the next pass tries again.
func (c *Consumer) trim(ctx context.Context) {
	n, err := c.script().trim.Run(ctx, c.rdb, []string{Stream}).Int64()
	if err != nil {
		c.log.Warn("trimming acknowledged entries failed", "error", err.Error())
		return
	}
	if n > 0 {
		c.log.Debug("trimmed acknowledged entries", "stream", Stream, "count", n)
	}
}

// deliveryCounts asks XPENDING, in one pipeline, how often each of msgs, just
// reclaimed by XAUTOCLAIM, has been delivered. An entry it cannot tell about
// (XPENDING failed) counts as delivered twice: the least a reclaimed entry
// has (its first delivery, and XAUTOCLAIM's). Never as a first delivery,
// which would hide that an earlier delivery may have charged it (the claim
// of one whose record expired, claimScript), and never more, so that a
// Redis hiccup dead-letters nothing by mistake.
func (c *Consumer) deliveryCounts(ctx context.Context, msgs []redis.XMessage) map[string]int64 {
	pipe := c.rdb.Pipeline()
	cmds := make([]*redis.XPendingExtCmd, len(msgs))
	for i, m := range msgs {
		cmds[i] = pipe.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: Stream, Group: Group, Start: m.ID, End: m.ID, Count: 1,
		})
	}
	_, _ = pipe.Exec(ctx)
	counts := make(map[string]int64, len(msgs))
	var unknown []string
	var unknownErr error
	for i, m := range msgs {
		counts[m.ID] = minReclaimedDeliveries
		p, err := cmds[i].Result()
		switch {
		case err != nil:
			unknown, unknownErr = append(unknown, m.ID), err
		case len(p) == 1 && p[0].RetryCount > minReclaimedDeliveries:
			counts[m.ID] = p[0].RetryCount
		}
	}
	if len(unknown) > 0 {
		c.log.Warn("could not read the delivery counts of reclaimed entries; counting them as delivered twice",
			"count", len(unknown), "stream_ids", unknown, "error", unknownErr.Error())
	}
	return counts
}

// minReclaimedDeliveries is the fewest deliveries an entry XAUTOCLAIM
// reclaimed can have had, this one included.
const minReclaimedDeliveries = 2

// deadLetter is an entry on its way to DeadLetterStream.
type deadLetter struct {
	entry      redis.XMessage
	id         string // transaction id; "" when the entry has none usable
	requestID  string
	deliveries int64
	reason     string // for the dead-letter entry and the log
	public     string // for the status record, which its owner can read
	// maybeCharged: an earlier delivery may have charged it (its claim
	// was maybeCharged), so the dead letter leaves its status as it was,
	// never failed, for a person to settle with the PSP.
	maybeCharged bool
}

// handle processes one batch: poison entries go to the dead-letter stream;
// the rest are claimed (one script call), then charged, recorded and acked
// round by round by chargeAll; entries an earlier delivery already processed
// are acked together (one XACK). Entries over MaxDeliveries go to the
// dead-letter stream only when the claim finds that nothing can have charged
// them (see claimScript).
func (c *Consumer) handle(ctx context.Context, entries []redis.XMessage, counts map[string]int64) {
	now := time.Now().UnixNano()
	var good []Message
	var dead []deadLetter
	for _, e := range entries {
		m, err := decodeMessage(e)
		m.Deliveries = 1
		if n, ok := counts[e.ID]; ok && n > 0 {
			m.Deliveries = n
		}
		if err != nil {
			dead = append(dead, deadLetter{entry: e, id: m.ID, requestID: m.RequestID, deliveries: m.Deliveries,
				reason: "undecodable message: " + err.Error(), public: "Transaction could not be processed"})
			continue
		}
		// Over MaxDeliveries too: the claim tells whether it may have been
		// charged, and dead-letters only what cannot have been.
		good = append(good, m)
	}

	var acks []string
	claims, err := c.claimUntilRedisAnswers(ctx, now, good)
	if err != nil {
		c.log.Warn("claim failed; entries left pending", "count", len(good), "transaction_ids", txIDs(good), "error", err.Error())
		good = nil
	}
	var charge []Message
	var neverCharged []string // claimed by an earlier delivery, whose consumer stopped before their round
	var held []Message        // reclaimed, and found held by another consumer's claim
	for i, m := range good {
		mctx := logging.WithRequestID(ctx, m.RequestID)
		m.claim = claims[i]
		switch claims[i] {
		case claimDone, claimFailed:
			// Processed (or dead-lettered) by an earlier delivery whose ack was lost.
			acks = append(acks, m.StreamID)
			c.log.InfoContext(mctx, "duplicate delivery skipped", "transaction_id", m.ID,
				"stream_id", m.StreamID, "deliveries", m.Deliveries)
		case claimBusy:
			c.log.InfoContext(mctx, "another consumer is charging it; entry left pending",
				"transaction_id", m.ID, "stream_id", m.StreamID)
			if counts != nil {
				held = append(held, m)
			}
		case claimChargeUnknownRound, claimChargeRecordExpired:
			// The earlier delivery's round in hand (or, its record expired,
			// any earlier delivery): a crash between its charges and its
			// record repeats them, unless the PSP says it made them
			// (madeBefore).
			charge = appendChargeable(charge, m, c.cfg.Chargers)
		case claimChargeRoundNeverStarted:
			neverCharged = append(neverCharged, m.ID)
			charge = appendChargeable(charge, m, c.cfg.Chargers)
		case claimCharge:
			charge = appendChargeable(charge, m, c.cfg.Chargers)
		case claimDeadLetter:
			dead = append(dead, deadLetter{entry: entryOf(m), id: m.ID, requestID: m.RequestID, deliveries: m.Deliveries,
				reason: fmt.Sprintf("delivered %d times without success", m.Deliveries-1),
				public: "Transaction could not be processed"})
		default:
			// A script this consumer does not know answered: charge nothing
			// on a guess; a redelivery claims it again.
			c.log.ErrorContext(mctx, "claim script answered an unknown code; entry left pending",
				"transaction_id", m.ID, "stream_id", m.StreamID, "code", int64(claims[i]))
		}
	}
	// At once, before the charges: until then another reclaim could read
	// the raised count.
	c.uncount(ctx, held)
	if len(neverCharged) > 0 {
		c.log.Info("claimed before, but their round had not started when that consumer stopped; charging",
			"count", len(neverCharged), "transaction_ids", neverCharged)
	}
	charge = c.madeBefore(ctx, charge)
	release, chargeDead := c.chargeAll(ctx, charge, time.Unix(0, now))
	dead = append(dead, chargeDead...)

	// Acks and the rest must land even when the batch's time (ctx) is
	// over, until ShutdownGrace is: the PSP step already happened (or, for
	// acks, an earlier delivery's did).
	done, cancel := finishing(ctx, 2*ioTimeout, 0)
	defer cancel()
	if len(acks) > 0 {
		if err := c.rdb.XAck(done, Stream, Group, acks...).Err(); err != nil {
			c.log.Warn("ack failed; entries will be redelivered and skipped as duplicates",
				"count", len(acks), "error", err.Error())
		}
	}
	// The releases and the dead letters are sent side by side, each in its
	// own pipeline: they share done's time, and one after the other, the
	// releases of a stop's unstarted rounds (up to a batch less a round)
	// took the dead letters' time when Redis answered late
	// (TestConsumerStoppedBetweenRoundsDeadLettersBesideTheRelease). A
	// transaction in both ends dead-lettered either way.
	var wg sync.WaitGroup
	if len(release) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.release(done, release)
		}()
	}
	if len(dead) > 0 {
		c.deadLetter(done, dead, now)
	}
	wg.Wait()
}

// uncount takes back the deliveries this reclaim counted for msgs, which
// the claim found held by another consumer (uncountScript): those
// deliveries charged nothing, and counted they dead-lettered an entry after
// fewer PSP steps than MaxDeliveries (RELIABILITY.md D134). One call for
// all of them; when it fails, their counts stay one higher.
func (c *Consumer) uncount(ctx context.Context, msgs []Message) {
	if len(msgs) == 0 {
		return
	}
	args := make([]any, 0, 1+2*len(msgs))
	args = append(args, Group)
	for _, m := range msgs {
		args = append(args, m.StreamID, m.Deliveries)
	}
	if err := c.script().uncount.Run(ctx, c.rdb, []string{Stream}, args...).Err(); err != nil {
		c.log.Warn("could not take back the deliveries of entries another consumer holds; their delivery counts stay one higher",
			"count", len(msgs), "error", err.Error())
	}
}

// release releases the claims of msgs (releaseScript), one script each,
// pipelined: their PSP step failed, or their round never started.
func (c *Consumer) release(ctx context.Context, msgs []Message) {
	now := time.Now().UnixNano()
	res := evalBatch(ctx, c.rdb, c.script().release, len(msgs), func(i int) ([]string, []any) {
		return []string{StatusKey(msgs[i].ID)}, []any{c.claimant, now}
	})
	for i, r := range res {
		if err := r.Err(); err != nil {
			// The claim stays; a redelivery charges again after saying so.
			c.log.WarnContext(logging.WithRequestID(ctx, msgs[i].RequestID), "could not release the claim; its next delivery may charge it with the at-least-once warning",
				"transaction_id", msgs[i].ID, "stream_id", msgs[i].StreamID, "error", err.Error())
		}
	}
}

// claimer is who claims batches for the PSP step, with what lease, and in
// rounds of which size: claimScript's arguments that do not change between
// batches.
type claimer struct {
	claimant      string           // the Consumer's claimant: its name and a suffix of its own
	lease         time.Duration    // how long another consumer must wait before it may charge a claimed transaction
	statusTTL     time.Duration    // the expiry of a status record the claim recreates, and the least a claimed one keeps
	roundSize     int              // the consumer's ConsumerConfig.Chargers
	maxDeliveries int              // over it, a message never charged is dead-lettered; 0: no limit
	scripts       *consumerScripts // the Consumer's (nil: scriptsWithAllowOOM)
}

// scriptSet returns cl's scripts.
func (cl claimer) scriptSet() *consumerScripts {
	if cl.scripts == nil {
		return scriptsWithAllowOOM
	}
	return cl.scripts
}

// claimer returns this consumer's claimer: its claimant, VisibilityTimeout
// as the lease, StatusTTL, Chargers as the round size and MaxDeliveries.
func (c *Consumer) claimer() claimer {
	return claimer{claimant: c.claimant, lease: c.cfg.VisibilityTimeout, statusTTL: c.cfg.StatusTTL,
		roundSize: c.cfg.Chargers, maxDeliveries: c.cfg.MaxDeliveries, scripts: c.script()}
}

// claim runs claimScript for msgs in one call and returns one claim code per
// message (see claimScript), or an error for the whole batch.
func (cl claimer) claim(ctx context.Context, rdb *redis.Client, now int64, msgs []Message) ([]claimCode, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	keys := make([]string, len(msgs))
	args := make([]any, 0, 6+5*len(msgs))
	args = append(args, now, cl.statusTTL.Milliseconds(), cl.claimant, cl.lease.Nanoseconds(), cl.roundSize, cl.maxDeliveries)
	for i, m := range msgs {
		keys[i] = StatusKey(m.ID)
		args = append(args, m.UserID, m.Amount, m.Currency, m.EnqueuedAt.UnixNano(), max(m.Deliveries, 1))
	}
	codes, err := cl.scriptSet().claim.Run(ctx, rdb, keys, args...).Int64Slice()
	if err != nil {
		return nil, err
	}
	if len(codes) != len(msgs) {
		return nil, fmt.Errorf("claim script: got %d codes for %d transactions", len(codes), len(msgs))
	}
	claims := make([]claimCode, len(codes))
	for i, code := range codes {
		claims[i] = claimCode(code)
	}
	return claims, nil
}

// chargeAll charges msgs in rounds of up to cfg.Chargers transactions: a
// round's charges run side by side, and as soon as the last one returns, one
// script call records all of the round's successful charges; the next round
// starts only once that record is answered. So a crash can repeat only the
// charges of the round being recorded (at most cfg.Chargers), and only if it
// lands between the round's charges and its record call, a window as short
// as the round's slowest charge (microseconds for the line PSP), never a
// round trip. The record call also acknowledges the round's entries. When
// the record fails (Redis is down or restarting), the
// round's charges stay in hand and the record is retried until Redis answers,
// with no new charge meanwhile: a Redis outage repeats no charge. Only when
// ShutdownGrace is over first are they given up, left pending for an
// at-least-once redelivery; no round starts once ctx has ended
// (ShutdownGrace less finishReserve), the rest left pending, uncharged, and
// released. It returns the messages to release (their PSP step failed, or
// their round never started), and those that failed their last delivery.
func (c *Consumer) chargeAll(ctx context.Context, msgs []Message, leased time.Time) (release []Message, dead []deadLetter) {
	errs := make([]error, c.cfg.Chargers)
	rest := msgs
	// The claim stored each message's round (Message.round), and a claim
	// after a crash takes the lowest stored round left unrecorded for the
	// one in hand. So a round must never mix stored rounds, also when some
	// of them are not charged here (found in the PSP's ledger, or lost to
	// another consumer at a lease renewal): rounds are cut where the stored
	// round changes.
	for len(rest) > 0 {
		c.stepping()
		if ctx.Err() != nil {
			// The rounds of rest never started: their claims are released
			// (handle), so that the next delivery charges them as first
			// charges. Left claimed, the next claim took the first of
			// those rounds for this consumer's round in hand and charged
			// it with the at-least-once warning, though nothing had
			// charged it (TestConsumerStoppedBetweenRoundsReleasesTheUnstartedOnes).
			// The other stops below (a failed renewal, a record given
			// up) leave their rest claimed: Redis was failing.
			c.log.WarnContext(ctx, "shutdown's grace is nearly over; the rest of the batch is left pending, uncharged",
				"count", len(rest))
			release = append(release, rest...)
			break
		}
		// A round starts only with at least half of the lease left. The
		// record of the round before renews it when due (below), but a
		// record retried until Redis answered (recordUntilRedisAnswers),
		// or slow, or a pause of the process, can take longer than what
		// was left: another consumer may have taken the rest over
		// meanwhile. Then renew it first, keeping only what is still ours.
		if time.Since(leased) > c.cfg.VisibilityTimeout/2 {
			ren := c.newRecordCall(nil, nil, rest)
			owned, err := c.runRecord(ctx, ren, 0)
			if err != nil {
				c.log.WarnContext(ctx, "could not renew the lease on the rest of the batch; left pending, uncharged",
					"count", len(rest), "error", err.Error())
				break
			}
			leased = time.Unix(0, ren.args[0].(int64))
			if rest = c.stillOurs(ctx, rest, owned); len(rest) == 0 {
				break
			}
		}
		n := 1
		for n < len(rest) && rest[n].round == rest[0].round {
			n++
		}
		round := rest[:n]
		rest = rest[len(round):]
		// The record of the whole round is built before its charges, so
		// that in the usual case (every charge succeeded) it leaves at once:
		// a crash between the charges and the record's send repeats the
		// round. Built after the charges, the record made that window's
		// p50 18–20 µs instead of 12–16 µs (BenchmarkChargeToRecordWindow,
		// RELIABILITY.md). A round with a failed charge, or one that renews
		// the lease (below, rare), builds its record after the charges.
		whole := c.newRecordCall(round, nil, nil)
		c.chargeRound(ctx, round, errs)
		// Once half of the lease is gone, the record renews it on the rest
		// of the batch. So every round starts with at least half of it left,
		// and another consumer can take over (and charge again) what this
		// one has yet to charge only if a single round outlasts half of
		// VISIBILITY_TIMEOUT. Renewing costs Redis about 5 µs per
		// transaction (BenchmarkRecordRound), which a batch that ends well
		// within its lease, the usual case, does not pay.
		renew := len(rest) > 0 && time.Since(leased) > c.cfg.VisibilityTimeout/2
		var renewing []Message
		if renew {
			renewing = rest
		}
		charged := make([]Message, 0, len(round))
		var failed []Message
		var notStarted int
		var notStartedErr error
		for i, m := range round {
			switch err := errs[i]; {
			case errors.Is(err, ErrChargeNotStarted):
				// Not charged, nor refused by the PSP: released as a
				// stop's unstarted round is, neither marked psp_failed
				// nor dead-lettered, whatever its delivery count.
				notStarted++
				notStartedErr = err
				release = append(release, m)
			case err != nil:
				c.log.WarnContext(logging.WithRequestID(ctx, m.RequestID), "PSP step failed", "transaction_id", m.ID,
					"stream_id", m.StreamID, "deliveries", m.Deliveries, "error", err.Error())
				failed = append(failed, m)
				release = append(release, m)
				if m.Deliveries >= int64(c.cfg.MaxDeliveries) {
					dead = append(dead, failedLastDelivery(m, err))
				}
			default:
				charged = append(charged, m)
			}
		}
		if notStarted == len(round) {
			// Nothing to record: what kept this round from starting (a
			// full disk) keeps the next ones too, so the rest is released
			// with it, for the next delivery.
			c.log.WarnContext(ctx, "charges not started; the round and the rest of the batch are left pending for their next delivery",
				"count", notStarted+len(rest), "error", notStartedErr.Error())
			release = append(release, rest...)
			break
		}
		rec := whole
		if len(charged) < len(round) || renew {
			rec = c.newRecordCall(charged, failed, renewing)
		}
		rec.args[0] = time.Now().UnixNano() // processed when charged, not when built
		// A PSP step that ended near or past ShutdownGrace's end still
		// gets one attempt at its record (ioTimeout): the drain has
		// outlasted the grace by the PSP's doing, and a charge left
		// unrecorded is looked up, or charged again, at its redelivery.
		var least time.Duration
		if len(charged) > 0 {
			least = ioTimeout
		}
		owned, err := c.runRecord(ctx, rec, least)
		if err != nil {
			owned, err = c.recordUntilRedisAnswers(ctx, charged, rec, err)
		}
		if err != nil {
			// Said as it will be: with a ledger, the redelivery asks it
			// first (madeBefore), and the stack's connector has one.
			msg := "could not record the charge before shutdown; entry left pending, a redelivery charges again"
			if _, ok := c.psp.(LedgerPSP); ok {
				msg = "could not record the charge before shutdown; entry left pending, a redelivery asks the PSP's ledger before charging it again"
			}
			for _, m := range charged {
				c.log.ErrorContext(logging.WithRequestID(ctx, m.RequestID), msg,
					"transaction_id", m.ID, "stream_id", m.StreamID, "error", err.Error())
			}
			if len(rest) > 0 {
				c.log.WarnContext(ctx, "the rest of the batch is left pending, uncharged", "count", len(rest))
			}
			break
		}
		c.processed += int64(len(charged))
		if c.log.Enabled(ctx, slog.LevelDebug) {
			now := time.Now()
			for _, m := range charged {
				c.log.DebugContext(logging.WithRequestID(ctx, m.RequestID), "processed", "transaction_id", m.ID,
					"user_id", m.UserID, "amount", m.Amount, "currency", m.Currency, "stream_id", m.StreamID,
					"deliveries", m.Deliveries, "queue_ms", float64(now.Sub(m.EnqueuedAt).Microseconds())/1000)
			}
		}
		if notStarted > 0 {
			// Some of the round did not start (recorded above: the rest
			// of it): the rest of the batch is released, as above.
			c.log.WarnContext(ctx, "charges not started; the round and the rest of the batch are left pending for their next delivery",
				"count", notStarted+len(rest), "error", notStartedErr.Error())
			release = append(release, rest...)
			break
		}
		if renew {
			leased = time.Unix(0, rec.args[0].(int64))
			rest = c.stillOurs(ctx, rest, owned)
		}
	}
	return release, dead
}

// failedLastDelivery is the dead letter of m, whose PSP step failed with
// err on its last delivery (MaxDeliveries). One an earlier delivery may have
// charged (maybeCharged) is not marked failed, since a failed status must
// mean the money did not move, but it is not charged again either: charged
// again on every VisibilityTimeout while its PSP declined, it was retried
// for good. Its dead letter says that it may have been charged, and its
// status stays as it was (queued) for a person to settle with the PSP.
func failedLastDelivery(m Message, err error) deadLetter {
	d := deadLetter{entry: entryOf(m), id: m.ID, requestID: m.RequestID, deliveries: m.Deliveries,
		reason: "PSP step failed: " + err.Error(), public: "Transaction could not be processed"}
	if m.maybeCharged() {
		d.maybeCharged, d.public = true, ""
		d.reason += "; " + maybeChargedReason
	}
	return d
}

// maybeChargedReason ends the reason of a dead letter that may have been
// charged.
const maybeChargedReason = "an earlier delivery may have charged it (its round was in hand when its connector stopped, or its status record expired), so its status is not set to failed: check with the PSP whether it was charged"

// stillOurs keeps the messages of rest that the record call's lease renewal
// found still claimed by this consumer (owned[i] == 1). The others were taken
// over by another consumer while an earlier round was in hand (or their
// record expired): they are left pending, for whoever claims them.
func (c *Consumer) stillOurs(ctx context.Context, rest []Message, owned []int64) []Message {
	if len(owned) != len(rest) {
		c.log.WarnContext(ctx, "lease renewal answered for the wrong number of transactions; leaving them pending",
			"want", len(rest), "got", len(owned))
		return nil
	}
	kept := rest[:0:0]
	var lost []string
	for i, m := range rest {
		if owned[i] == 1 {
			kept = append(kept, m)
		} else {
			lost = append(lost, m.ID)
		}
	}
	if len(lost) > 0 {
		c.log.WarnContext(ctx, "no longer claimed by this consumer (another took them over while the batch was in hand, or their records expired); leaving them pending",
			"count", len(lost), "transaction_ids", lost)
	}
	return kept
}

// maybeCharged reports whether an earlier delivery may have charged m (its
// claim found the round in hand of a stopped consumer, or an expired
// record): then it is looked up in the PSP's ledger before a charge, and a
// failed charge never marks it failed (on its last delivery its dead letter
// keeps its status: failedLastDelivery).
func (m Message) maybeCharged() bool {
	return m.claim == claimChargeUnknownRound || m.claim == claimChargeRecordExpired
}

// appendChargeable appends m to charge, the batch's chargeable transactions
// in the claim's order, with the round the claim stored for it (claimScript:
// its place among them divided by the round size).
func appendChargeable(charge []Message, m Message, roundSize int) []Message {
	m.round = len(charge) / roundSize
	return append(charge, m)
}

// madeBefore returns charge without the transactions that an earlier
// delivery may have charged and that the PSP says it made (LedgerPSP): those
// are recorded processed and acknowledged, not charged again. The others an
// earlier delivery may have charged are charged again, each with the
// at-least-once warning. A failed lookup charges again those it did not
// answer made (all of them when it answered nothing), unless ctx is done by
// then (the stop's grace nearly over, when chargeAll would start
// no round anyway): then, as after a failed record, the whole batch is left
// pending, uncharged, to be looked up in full on its next delivery. A failed
// record leaves the whole batch pending, uncharged, so that the made ones
// are looked up again on their next delivery and no later round of the
// batch is taken for one that never started.
func (c *Consumer) madeBefore(ctx context.Context, charge []Message) []Message {
	var maybe []string
	for _, m := range charge {
		if m.maybeCharged() {
			maybe = append(maybe, m.ID)
		}
	}
	if len(maybe) == 0 {
		return charge
	}
	var made map[string]bool
	if ledger, ok := c.psp.(LedgerPSP); ok {
		var err error
		made, err = ledger.Made(ctx, maybe)
		switch {
		case err != nil && ctx.Err() != nil:
			// The stop's grace is nearly over: chargeAll would start no
			// round of the batch anyway, so none is charged again on a
			// lookup cut short. The batch stays pending, to be looked up
			// in full on its next delivery.
			c.log.Warn("shutdown's grace ended while asking the PSP which transactions it made; the batch is left pending, uncharged",
				"count", len(maybe), "transaction_ids", maybe, "batch", len(charge), "error", err.Error())
			return nil
		case err != nil:
			// What it found made was made: only the others are charged
			// again. Charging again what one of its sources named made
			// the lookup's failure a sure duplicate.
			var unknown []string
			for _, id := range maybe {
				if !made[id] {
					unknown = append(unknown, id)
				}
			}
			if len(unknown) > 0 {
				c.log.Warn("could not ask the PSP which transactions it made; charging them again (at least once)",
					"count", len(unknown), "transaction_ids", unknown, "error", err.Error())
			} else {
				c.log.Warn("could not read all of the PSP's records of what it made, but it named every transaction asked about",
					"count", len(maybe), "error", err.Error())
			}
		}
	}
	var again, recorded []Message
	for _, m := range charge {
		mctx := logging.WithRequestID(ctx, m.RequestID)
		switch {
		case !m.maybeCharged():
			again = append(again, m)
		case made[m.ID]:
			recorded = append(recorded, m)
		case m.claim == claimChargeRecordExpired:
			c.log.WarnContext(mctx, "delivered before, and its status record expired; charging (at least once)",
				"transaction_id", m.ID, "stream_id", m.StreamID, "deliveries", m.Deliveries)
			again = append(again, m)
		default:
			c.log.InfoContext(mctx, "claimed before without a recorded charge; charging (at least once)",
				"transaction_id", m.ID, "stream_id", m.StreamID, "deliveries", m.Deliveries)
			again = append(again, m)
		}
	}
	if len(recorded) == 0 {
		return again
	}
	ids := txIDs(recorded)
	if _, err := c.runRecord(ctx, c.newRecordCall(recorded, nil, nil), 0); err != nil {
		// Left claimed, they would be the lowest unrecorded round of this
		// claim, so that a claim after a crash during a later round of
		// this batch would take that later round, charged, for one that
		// never started, and charge it again unlooked-up. So charge
		// nothing of the batch: all of it stays pending, its rounds as
		// claimed, none of them started.
		c.log.Warn("the PSP made these before their consumer stopped; recording them failed, so the batch is left pending, uncharged",
			"count", len(recorded), "transaction_ids", ids, "batch", len(charge), "error", err.Error())
		return nil
	}
	c.log.Info("the PSP made these before their consumer stopped; recorded processed, not charged again",
		"count", len(recorded), "transaction_ids", ids)
	return again
}

// chargeRound runs the PSP step for every message of round, in one call for
// a RoundPSP and otherwise side by side, and returns when all are done, with
// each outcome in errs[i].
func (c *Consumer) chargeRound(ctx context.Context, round []Message, errs []error) {
	if rp, ok := c.psp.(RoundPSP); ok {
		rp.ChargeRound(ctx, round, errs[:len(round)])
		return
	}
	if len(round) == 1 {
		errs[0] = c.psp.Charge(ctx, round[0])
		return
	}
	var wg sync.WaitGroup
	for i, m := range round {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.psp.Charge(ctx, m)
		}()
	}
	wg.Wait()
}

// recordUntilRedisAnswers retries rec, the record of charged msgs, whose
// first attempt failed with err, with backoff until it succeeds (the lease
// renewal's answer, nil) or ShutdownGrace is over (the last error): not
// only until ctx, Run's work, ends, finishReserve earlier, since the charges
// already happened, and a Redis back within the grace records them. The
// charges stay in hand meanwhile, so that a Redis outage or restart never
// makes a redelivery charge them again. An attempt in flight still ends
// within ShutdownGrace (runRecord).
func (c *Consumer) recordUntilRedisAnswers(ctx context.Context, msgs []Message, rec recordCall, err error) ([]int64, error) {
	ids := txIDs(msgs)
	c.log.Warn("could not record the charges; keeping them in hand and retrying until Redis answers",
		"count", len(msgs), "transaction_ids", ids, "error", err.Error())
	start := time.Now()
	var owned []int64
	attempts, err := c.retryUntilRedisAnswers(untilGraceEnd(ctx), err, func() error {
		rec.args[0] = time.Now().UnixNano()
		var rerr error
		owned, rerr = c.runRecord(ctx, rec, 0)
		return rerr
	}, func(error) bool { return true })
	if err != nil {
		return nil, err
	}
	c.log.Info("recorded the charges after Redis came back", "count", len(msgs), "transaction_ids", ids,
		"attempts", attempts, "waited_ms", time.Since(start).Milliseconds())
	return owned, nil
}

// retryUntilRedisAnswers calls try again, after a backoff from minBackoff
// doubling to maxRecordBackoff, each attempt a step of Run's, since its
// first call failed with err: until try succeeds, fails with an error that
// retry rejects, or ctx ends. It returns the attempts made, the first
// call's included, and try's last error (err when ctx ended before any
// retry). The record of charges in hand retries every error until
// ShutdownGrace is over; a claim, only those Redis did not answer, until
// the batch's time ends.
func (c *Consumer) retryUntilRedisAnswers(ctx context.Context, err error, try func() error, retry func(error) bool) (int, error) {
	backoff := minBackoff
	for attempt := 2; ; attempt++ {
		sleep(ctx, backoff)
		if ctx.Err() != nil {
			return attempt - 1, err
		}
		c.stepping()
		if err = try(); err == nil || !retry(err) {
			return attempt, err
		}
		backoff = min(2*backoff, maxRecordBackoff)
	}
}

// claimUntilRedisAnswers claims msgs (claimer.claim) and, while Redis does
// not answer (down, restarting, or holding writes), sends the same claim
// again, with the same now, until it does or ctx, the batch's time, ends.
// Nothing has been charged yet, so a retry is safe, and the claim script
// takes a retry whose first call ran after all (the client gave up on its
// answer) as that same claim. Before, a claim that failed left the batch
// pending until VisibilityTimeout, 30 s by default: after Redis held writes
// for 4.5 s, one batch of 41 was processed 33 s after it was queued.
// An error Redis answered with (a script's) is not retried. A claim that
// succeeds late keeps its first call's now, so its lease may be more than
// half gone, or over, by then: chargeAll renews it before the first round,
// keeping only what is still this consumer's (the renewal and another
// consumer's claim are both scripts, one after the other in Redis), so a
// batch another consumer took over during a long outage is not charged
// here too.
func (c *Consumer) claimUntilRedisAnswers(ctx context.Context, now int64, msgs []Message) ([]claimCode, error) {
	claims, err := c.claimer().claim(ctx, c.rdb, now, msgs)
	if err == nil || !redisDidNotAnswer(err) || ctx.Err() != nil {
		return claims, err
	}
	c.log.Warn("could not claim the batch; retrying until Redis answers", "count", len(msgs),
		"transaction_ids", txIDs(msgs), "error", err.Error())
	start := time.Now()
	attempts, err := c.retryUntilRedisAnswers(ctx, err, func() error {
		var cerr error
		claims, cerr = c.claimer().claim(ctx, c.rdb, now, msgs)
		return cerr
	}, redisDidNotAnswer)
	if err != nil {
		return nil, err
	}
	c.log.Info("claimed the batch after Redis came back", "count", len(msgs),
		"attempts", attempts, "waited_ms", time.Since(start).Milliseconds())
	return claims, nil
}

// redisDidNotAnswer reports whether a call failed for want of Redis's
// answer (no connection, a time-out, a connection closed under it), or with
// one of the errors Redis gives while it cannot serve yet (LOADING, BUSY,
// MASTERDOWN, TRYAGAIN), rather than with an error of the call itself (a
// script's, or an answer this code cannot read).
func redisDidNotAnswer(err error) bool {
	var answered redis.Error
	var netErr net.Error
	switch {
	case errors.As(err, &answered):
		// The error's code is its first word: BUSYGROUP and BUSYKEY are
		// answers to the call itself, not BUSY.
		code, _, _ := strings.Cut(answered.Error(), " ")
		return slices.Contains([]string{"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN"}, code)
	case errors.Is(err, redis.ErrClosed):
		return false // this client was closed: nothing will answer
	case errors.As(err, &netErr), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, redis.ErrPoolTimeout):
		return true
	}
	return false
}

// txIDs returns the transaction ids of msgs, for a log line about all of them.
func txIDs(msgs []Message) []string {
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	return ids
}

// maxRecordBackoff caps the wait between record attempts lower than
// maxBackoff: the charges in hand block the connector until they are recorded.
const maxRecordBackoff = 500 * time.Millisecond

// recordCall is one call of recordScript: it marks a round's charged
// messages processed (at args[0], unix ns) and acknowledges their entries,
// releases its failed ones, and renews this consumer's lease on those given
// (the rest of the batch, when half the lease is gone).
type recordCall struct {
	keys []string
	args []any
}

func (c *Consumer) newRecordCall(charged, failed, renew []Message) recordCall {
	return newRecordCall(c.cfg.Name, c.claimant, c.cfg.StatusTTL, charged, failed, renew)
}

// newRecordCall builds the record of a round: charged become processed,
// failed are released, and the lease on renew is renewed, with their status
// records' expiry (recordScript), for consumer (its name in Group) and
// claimant (who it is in the claims).
func newRecordCall(consumer, claimant string, statusTTL time.Duration, charged, failed, renew []Message) recordCall {
	keys := make([]string, 1, 1+len(charged)+len(failed)+len(renew))
	keys[0] = Stream
	args := make([]any, 0, 7+len(charged)+len(renew))
	args = append(args, time.Now().UnixNano(), Group, consumer, len(charged), len(failed), claimant,
		statusTTL.Milliseconds())
	for _, m := range charged {
		keys = append(keys, StatusKey(m.ID))
		args = append(args, m.StreamID)
	}
	for _, m := range failed {
		keys = append(keys, StatusKey(m.ID))
	}
	for _, m := range renew {
		keys = append(keys, StatusKey(m.ID))
		args = append(args, m.StreamID)
	}
	return recordCall{keys: keys, args: args}
}

// runRecord sends rec and returns the lease renewal's answer, one flag per
// renewed message (1: still this consumer's). Once a message is charged,
// recording it must not be cut short when ctx ends, only when
// ShutdownGrace is over (finishing, with least at the least): the side
// effect already happened.
func (c *Consumer) runRecord(ctx context.Context, rec recordCall, least time.Duration) ([]int64, error) {
	ctx, cancel := finishing(ctx, 2*ioTimeout, least)
	defer cancel()
	return c.script().record.Run(ctx, c.rdb, rec.keys, rec.args...).Int64Slice()
}

// deadLetter moves entries to DeadLetterStream, one script each, pipelined.
func (c *Consumer) deadLetter(ctx context.Context, dead []deadLetter, now int64) {
	res := evalBatch(ctx, c.rdb, c.script().deadLetter, len(dead), func(i int) ([]string, []any) {
		d := dead[i]
		keys := []string{Stream, DeadLetterStream}
		if d.id != "" {
			keys = append(keys, StatusKey(d.id))
		}
		keep := 0
		if d.maybeCharged {
			keep = 1
		}
		args := []any{Group, d.entry.ID, now, d.public, c.cfg.StatusTTL.Milliseconds(), c.claimant, keep,
			"stream_id", d.entry.ID, "reason", d.reason, "deliveries", d.deliveries,
			"consumer", c.cfg.Name, "dead_at", now}
		if d.maybeCharged {
			args = append(args, "maybe_charged", 1)
		}
		return keys, append(args, entryFields(d.entry)...)
	})
	for i, d := range dead {
		dctx := logging.WithRequestID(ctx, d.requestID)
		n, err := res[i].Int64()
		switch {
		case err != nil:
			c.log.ErrorContext(dctx, "dead-lettering failed; entry left pending", "transaction_id", d.id,
				"stream_id", d.entry.ID, "reason", d.reason, "error", err.Error())
		case n == 2:
			c.log.WarnContext(dctx, "not dead-lettered: another consumer claimed it since, and may have charged it; left pending",
				"transaction_id", d.id, "stream_id", d.entry.ID, "reason", d.reason)
		case n == 1 && d.maybeCharged:
			c.log.ErrorContext(dctx, "dead-lettered, status not set to failed: it may have been charged; a person must check with the PSP",
				"transaction_id", d.id, "stream_id", d.entry.ID, "dead_letter_stream", DeadLetterStream,
				"deliveries", d.deliveries, "reason", d.reason)
		case n == 1:
			c.log.ErrorContext(dctx, "dead-lettered", "transaction_id", d.id, "stream_id", d.entry.ID,
				"dead_letter_stream", DeadLetterStream, "deliveries", d.deliveries, "reason", d.reason)
		}
	}
}

// decodeMessage parses a stream entry. On error the returned Message still
// carries the transaction and request ids when they were usable, so the
// status record can say failed.
func decodeMessage(e redis.XMessage) (Message, error) {
	m := Message{StreamID: e.ID}
	str := func(k string) string { s, _ := e.Values[k].(string); return s }
	if id := str(fieldID); ValidID(id) {
		m.ID = id
	} else {
		return m, fmt.Errorf("field %s: invalid transaction id %q", fieldID, truncate(id, 64))
	}
	m.RequestID = truncate(str(fieldRequestID), 128)
	var err error
	if m.UserID, err = strconv.ParseInt(str(fieldUserID), 10, 64); err != nil || m.UserID <= 0 {
		return m, fmt.Errorf("field %s: not a positive integer", fieldUserID)
	}
	if m.Amount, err = strconv.ParseInt(str(fieldAmount), 10, 64); err != nil || m.Amount <= 0 {
		return m, fmt.Errorf("field %s: not a positive integer", fieldAmount)
	}
	if m.Currency = str(fieldCurrency); !validCurrency(m.Currency) {
		return m, fmt.Errorf("field %s: not three capital letters", fieldCurrency)
	}
	ns, err := strconv.ParseInt(str(fieldEnqueuedAt), 10, 64)
	if err != nil || ns <= 0 {
		return m, fmt.Errorf("field %s: not a unix-ns timestamp", fieldEnqueuedAt)
	}
	m.EnqueuedAt = time.Unix(0, ns)
	return m, nil
}

func validCurrency(s string) bool {
	return len(s) == 3 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z' && s[2] >= 'A' && s[2] <= 'Z'
}

// entryOf rebuilds the stream entry of a decoded message, for dead-lettering.
func entryOf(m Message) redis.XMessage {
	return redis.XMessage{ID: m.StreamID, Values: map[string]any{
		fieldID: m.ID, fieldUserID: strconv.FormatInt(m.UserID, 10), fieldAmount: strconv.FormatInt(m.Amount, 10),
		fieldCurrency: m.Currency, fieldRequestID: m.RequestID,
		fieldEnqueuedAt: strconv.FormatInt(m.EnqueuedAt.UnixNano(), 10),
	}}
}

// Bounds on what a dead-letter entry copies from a (possibly hostile) entry.
const (
	maxDeadFields   = 32
	maxDeadValueLen = 1024
)

// entryFields flattens an entry's fields, sorted and bounded, prefixed "entry."
// so they cannot be mistaken for the dead-letter metadata.
func entryFields(e redis.XMessage) []any {
	names := make([]string, 0, len(e.Values))
	for k := range e.Values {
		names = append(names, k)
	}
	sort.Strings(names)
	if len(names) > maxDeadFields {
		names = names[:maxDeadFields]
	}
	out := make([]any, 0, 2*len(names))
	for _, k := range names {
		v, _ := e.Values[k].(string)
		out = append(out, "entry."+truncate(k, 64), truncate(v, maxDeadValueLen))
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// ErrChargeNotStarted, wrapped in a PSP step's error, says that the charge
// was not attempted at all, for a reason of the connector's own that should
// pass (the psp-connector's ledger copy without room on a full disk): the
// transaction is released for its next delivery, as at a stop, and neither
// marked psp_failed nor dead-lettered. Any other error is a failed PSP step,
// which counts towards MaxDeliveries.
var ErrChargeNotStarted = errors.New("charge not started")
