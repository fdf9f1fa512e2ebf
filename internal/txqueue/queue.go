// Package txqueue is the platform's transaction queue on Redis Streams: core-api
// enqueues (idempotently, in one atomic script), psp-connector consumes with a
// consumer group (ack after the PSP step, reclaim after a visibility timeout,
// dead-letter after repeated failures, trim of acknowledged entries), and both
// read and write the per-transaction status record. It is the only package
// that knows Redis names.
package txqueue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNotFound means there is no status record for the id (never existed,
// expired after the status TTL, or the id is malformed).
var ErrNotFound = errors.New("transaction not found")

// ErrIdempotencyConflict means the Idempotency-Key was already used, within
// the queue's idempotency TTL, by the same user for a request with a different amount or
// currency.
var ErrIdempotencyConflict = errors.New("idempotency key already used for a different request")

// ErrOutcomeUnknown is in Enqueue's error when the enqueue was sent but no
// reply came back (a timeout, or the connection lost in the middle of the
// call): the transaction may be queued, already or once Redis reads the call.
// An Enqueue error without it means nothing was queued.
var ErrOutcomeUnknown = errors.New("sent, but Redis did not answer: the transaction may be queued")

// MaxIdempotencyKeyLen bounds an Idempotency-Key (Stripe's limit).
const MaxIdempotencyKeyLen = 255

// Transaction is what core-api queues: who pays, how much, in which currency,
// and the request id that follows it into the connector's logs.
type Transaction struct {
	UserID    int64
	Amount    int64
	Currency  string
	RequestID string
}

// fingerprint identifies a request for idempotency: the parameters that
// matter, not the raw body, whose token changes every 30 seconds.
func (tx Transaction) fingerprint() string {
	return "amount=" + strconv.FormatInt(tx.Amount, 10) + "&currency=" + tx.Currency
}

// Enqueued is the outcome of Enqueue: the transaction id, and whether this was
// an Idempotency-Key replay of an earlier request (nothing new was queued).
type Enqueued struct {
	ID       string
	Replayed bool
}

// Record is a transaction's status record, kept for the status TTL.
type Record struct {
	ID          string     `json:"id"`
	UserID      int64      `json:"user_id"`
	Amount      int64      `json:"amount"`
	Currency    string     `json:"currency"`
	Status      string     `json:"status"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	ProcessedAt *time.Time `json:"processed_at,omitempty"`
	FailedAt    *time.Time `json:"failed_at,omitempty"`
	Error       string     `json:"error,omitempty"`
}

// Queue appends transactions to Stream and reads status records.
type Queue struct {
	rdb            *redis.Client
	statusTTL      time.Duration
	idempotencyTTL time.Duration
	now            func() time.Time
	enqueue        *scriptBatcher
}

// enqueuePipelines is how many enqueue pipelines may be in flight at once;
// concurrent Enqueue calls beyond that share the next one.
const enqueuePipelines = 4

// NewQueue returns a Queue on rdb whose status records expire after statusTTL
// and whose Idempotency-Keys after DefaultIdempotencyTTL.
func NewQueue(rdb *redis.Client, statusTTL time.Duration) *Queue {
	return &Queue{rdb: rdb, statusTTL: statusTTL, idempotencyTTL: DefaultIdempotencyTTL, now: time.Now,
		enqueue: &scriptBatcher{rdb: rdb, script: enqueueScript, maxInFlight: enqueuePipelines}}
}

// SetIdempotencyTTL sets how long Enqueue remembers an Idempotency-Key from
// its first use (core-api's IDEMPOTENCY_TTL); call it before the first
// Enqueue. A key already stored keeps the expiry it was given.
func (q *Queue) SetIdempotencyTTL(ttl time.Duration) { q.idempotencyTTL = ttl }

// Enqueue queues tx under a new id and returns once XADD succeeded, so an
// accepted transaction is stored. With a non-empty idempotencyKey, a repeat of
// the same user, key and parameters within the idempotency TTL returns the first id
// with Replayed set and queues nothing; different parameters give
// ErrIdempotencyConflict. All of it is one script, sent in a pipeline shared
// with concurrent calls (scriptBatcher). On an error that wraps
// ErrOutcomeUnknown, the result's ID is the id the transaction has if it was
// queued (with an idempotencyKey, an earlier request's may be stored instead).
func (q *Queue) Enqueue(ctx context.Context, tx Transaction, idempotencyKey string) (Enqueued, error) {
	id := newID()
	keys := []string{Stream, StatusKey(id)}
	if idempotencyKey != "" {
		keys = append(keys, IdempotencyKey(tx.UserID, idempotencyKey))
	}
	res, err := q.enqueue.run(ctx, keys,
		id, tx.UserID, tx.Amount, tx.Currency, tx.RequestID, q.now().UnixNano(),
		q.statusTTL.Milliseconds(), tx.fingerprint(), q.idempotencyTTL.Milliseconds(),
	).Slice()
	if err != nil {
		if mayHaveRun(err) {
			return Enqueued{ID: id}, fmt.Errorf("enqueue transaction %s: %w: %w", id, ErrOutcomeUnknown, err)
		}
		return Enqueued{}, fmt.Errorf("enqueue transaction %s: %w", id, err)
	}
	if len(res) != 2 {
		return Enqueued{}, fmt.Errorf("enqueue transaction %s: unexpected script reply %v", id, res)
	}
	code, _ := res[0].(int64)
	got, _ := res[1].(string)
	switch code {
	case 0:
		return Enqueued{ID: got}, nil
	case 1:
		return Enqueued{ID: got, Replayed: true}, nil
	case 2:
		return Enqueued{}, ErrIdempotencyConflict
	}
	return Enqueued{}, fmt.Errorf("enqueue transaction %s: unexpected script reply %v", id, res)
}

// mayHaveRun reports whether a call that failed with err may still have run
// in Redis. It did not when Redis answered (with an error), or when no
// connection could be had (a failed dial, a full pool, a closed client);
// otherwise the call may have been sent, and Redis may run it even after the
// client gave up on it (a busy Redis reads it later).
func mayHaveRun(err error) bool {
	var answered redis.Error
	var op *net.OpError
	switch {
	case errors.As(err, &answered):
		return false
	case errors.Is(err, redis.ErrPoolTimeout), errors.Is(err, redis.ErrClosed):
		return false
	case errors.As(err, &op) && op.Op == "dial":
		return false
	}
	return true
}

// Status returns the status record of transaction id, or ErrNotFound.
func (q *Queue) Status(ctx context.Context, id string) (Record, error) {
	if !ValidID(id) {
		return Record{}, ErrNotFound
	}
	m, err := q.rdb.HGetAll(ctx, StatusKey(id)).Result()
	if err != nil {
		return Record{}, fmt.Errorf("read status of transaction %s: %w", id, err)
	}
	if len(m) == 0 || m["user_id"] == "" || m["status"] == "" {
		return Record{}, ErrNotFound
	}
	rec := Record{ID: id, Status: m["status"], Currency: m["currency"], Error: m["error"]}
	rec.UserID, _ = strconv.ParseInt(m["user_id"], 10, 64)
	rec.Amount, _ = strconv.ParseInt(m["amount"], 10, 64)
	rec.CreatedAt = unixNano(m["created_at"])
	rec.UpdatedAt = unixNano(m["updated_at"])
	if v, ok := m["processed_at"]; ok && rec.Status == StatusProcessed {
		t := unixNano(v)
		rec.ProcessedAt = &t
	}
	if v, ok := m["failed_at"]; ok && rec.Status == StatusFailed {
		t := unixNano(v)
		rec.FailedAt = &t
	}
	return rec, nil
}

// unixNano parses a stored timestamp (decimal unix nanoseconds) as UTC; junk
// gives the zero time.
func unixNano(s string) time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// idPrefix starts every transaction id.
const idPrefix = "tx_"

// newID returns a fresh transaction id: "tx_" and 128 random bits in hex.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return idPrefix + hex.EncodeToString(b[:])
}

// ValidID reports whether id has the shape newID gives ("tx_" and 32
// lowercase hex digits), so that no other input reaches a Redis key.
func ValidID(id string) bool {
	if len(id) != len(idPrefix)+32 || id[:len(idPrefix)] != idPrefix {
		return false
	}
	for i := len(idPrefix); i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ValidIdempotencyKey reports whether key is usable as an Idempotency-Key:
// 1 to MaxIdempotencyKeyLen bytes of printable ASCII.
func ValidIdempotencyKey(key string) bool {
	if key == "" || len(key) > MaxIdempotencyKeyLen {
		return false
	}
	for i := 0; i < len(key); i++ {
		if key[i] < ' ' || key[i] > '~' {
			return false
		}
	}
	return true
}
