package loadgen

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/acme-payments/platform/internal/txqueue"
)

// Default names of the transaction stream and the connector's consumer group.
const (
	DefaultStream = txqueue.Stream
	DefaultGroup  = txqueue.Group
)

// QueueProbe reads a consumer group's progress on a Redis stream: how many
// entries it has not been given yet (lag) and how many it holds unacknowledged
// (pending). Both zero means the connector has caught up.
type QueueProbe struct {
	rdb    *redis.Client
	stream string
	group  string
	// dead is the connector's dead-letter stream of stream
	// (txqueue.DeadLetterStreamOf).
	dead string
	q    *txqueue.Queue
}

// QueueState is one reading of the group.
type QueueState struct {
	// Lag is the number of stream entries not yet delivered to the group:
	// 0 when the group's last delivered id is the stream's last id, else
	// what Redis reports, or -1 when Redis cannot tell.
	Lag int64
	// CaughtUp is whether the group's last delivered id is the stream's last
	// generated id, i.e. every entry was delivered.
	CaughtUp bool
	// Pending is the number delivered but not yet acknowledged.
	Pending int64
	// EntriesRead is the group's logical read counter; its growth over one
	// run is how many entries the group took (too few after a Redis restart:
	// see Drained).
	EntriesRead int64
	// EntriesAdded is the stream's count of entries ever added; its growth
	// over one run is how many entries reached the stream. An AOF replay
	// repeats the XADDs, and a rewrite keeps the count (XSETID ENTRIESADDED).
	EntriesAdded int64
}

// Drained reports whether the group has taken and acknowledged everything.
// It compares ids rather than trusting Redis's lag, which is wrong after a
// restart: the AOF replays consumption as XCLAIM ... LASTID, which moves the
// last delivered id but not the entries-read counter the lag is computed from.
func (s QueueState) Drained() bool { return s.CaughtUp && s.Pending == 0 }

// NewQueueProbe returns a probe of group on stream over the Redis at url
// (redis://, rediss:// or unix://). Close it when done.
func NewQueueProbe(url, stream, group string) (*QueueProbe, error) {
	opts, err := txqueue.ParseURL(url) // its errors do not repeat the URL's password
	if err != nil {
		return nil, err
	}
	opts.PoolSize = 32 // status lookups run in parallel
	// Context deadlines (the progress line's 200 ms, Ctrl-C) bound every
	// call, and a Redis that does not answer costs seconds, not minutes:
	// the probe is polled again anyway.
	opts.ContextTimeoutEnabled = true
	opts.DialTimeout = time.Second
	opts.ReadTimeout = 2 * time.Second
	opts.WriteTimeout = 2 * time.Second
	opts.MaxRetries = -1
	rdb := redis.NewClient(opts)
	return &QueueProbe{rdb: rdb, stream: stream, group: group, dead: txqueue.DeadLetterStreamOf(stream), q: txqueue.NewQueue(rdb, 0)}, nil
}

// Close releases the probe's connections.
func (q *QueueProbe) Close() error { return q.rdb.Close() }

// State reads the group (XINFO GROUPS) and the stream's last id (XINFO
// STREAM) in one pipeline.
func (q *QueueProbe) State(ctx context.Context) (QueueState, error) {
	var groups *redis.XInfoGroupsCmd
	var stream *redis.XInfoStreamCmd
	_, err := q.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		groups = p.XInfoGroups(ctx, q.stream)
		stream = p.XInfoStream(ctx, q.stream)
		return nil
	})
	if err != nil {
		return QueueState{}, fmt.Errorf("XINFO GROUPS/STREAM %s: %w", q.stream, err)
	}
	for _, g := range groups.Val() {
		if g.Name != q.group {
			continue
		}
		s := QueueState{Lag: g.Lag, Pending: g.Pending, EntriesRead: g.EntriesRead, EntriesAdded: stream.Val().EntriesAdded}
		if stream.Val().LastGeneratedID == g.LastDeliveredID {
			s.CaughtUp, s.Lag = true, 0
		} else if s.Lag == 0 {
			s.Lag = -1 // Redis's counter is stale (see Drained)
		}
		return s, nil
	}
	return QueueState{}, fmt.Errorf("stream %s has no consumer group %s (is the connector running?)", q.stream, q.group)
}

// lookup reads transaction id's status record straight from Redis, the way
// the status endpoint does, without the HTTP round trip.
func (q *QueueProbe) lookup(ctx context.Context, id string) (txState, time.Duration, bool, error) {
	rec, err := q.q.Status(ctx, id)
	if errors.Is(err, txqueue.ErrNotFound) {
		return stateMissing, 0, false, nil
	}
	if err != nil {
		return stateUnknown, 0, false, err
	}
	switch rec.Status {
	case txqueue.StatusProcessed:
		if rec.ProcessedAt == nil || rec.CreatedAt.IsZero() {
			return stateProcessed, 0, false, nil
		}
		return stateProcessed, max(rec.ProcessedAt.Sub(rec.CreatedAt), 0), true, nil
	case txqueue.StatusFailed:
		return stateFailed, 0, false, nil
	case txqueue.StatusQueued:
		return stateQueued, 0, false, nil
	}
	return stateUnknown, 0, false, fmt.Errorf("transaction %s: unknown status %q", id, rec.Status)
}

// deadLetterMark is the id of the dead-letter stream's last entry, "0-0"
// when it has none (or does not exist): deadLettered reads the entries after
// it.
func (q *QueueProbe) deadLetterMark(ctx context.Context) (string, error) {
	last, err := q.rdb.XRevRangeN(ctx, q.dead, "+", "-", 1).Result()
	if err != nil {
		return "", fmt.Errorf("XREVRANGE %s: %w", q.dead, err)
	}
	if len(last) == 0 {
		return "0-0", nil
	}
	return last[0].ID, nil
}

// deadLettered counts the entries of the dead-letter stream after mark whose
// transaction id ofThisRun accepts: not another client's.
// The connector copies the transaction's entry into its dead letter, each
// field's name prefixed "entry." (txqueue's entryFields): the id is in
// "entry.id".
func (q *QueueProbe) deadLettered(ctx context.Context, mark string, ofThisRun func(id string) bool) (int64, error) {
	var n int64
	for {
		page, err := q.rdb.XRangeN(ctx, q.dead, "("+mark, "+", 1000).Result()
		if err != nil {
			return n, fmt.Errorf("XRANGE %s: %w", q.dead, err)
		}
		for _, e := range page {
			if id, _ := e.Values["entry.id"].(string); id != "" {
				if ofThisRun(id) {
					n++
				}
			}
			mark = e.ID
		}
		if len(page) < 1000 {
			return n, nil
		}
	}
}
