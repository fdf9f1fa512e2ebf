package txqueue

import (
	"strconv"
	"time"
)

// Every Redis name the platform uses is defined here and nowhere else.
const (
	// Stream is the stream core-api appends transactions to. The consumer
	// trims it to what is still undelivered or pending (acknowledged entries
	// go; see trimScript); the status records are the lasting history.
	Stream = "transactions"
	// Group is the consumer group psp-connector reads Stream with.
	Group = "psp-connector"
	// DeadLetterStream receives entries that could not be decoded or failed
	// MaxDeliveries times, with the reason; it is never trimmed either.
	DeadLetterStream = Stream + deadLetterSuffix
	// DefaultIdempotencyTTL is how long an Idempotency-Key is remembered
	// unless Queue.SetIdempotencyTTL says otherwise (core-api's
	// IDEMPOTENCY_TTL; Stripe's 24 h).
	DefaultIdempotencyTTL = 24 * time.Hour
	// ConsumerAliveKey is the key every running psp-connector refreshes
	// (KeepConsumerAlive), with the name of the last one to do so: core-api
	// reads it to tell that some connector consumes the database it queues
	// in (WarnIfNoConsumer).
	ConsumerAliveKey = Group + ":alive"
)

// deadLetterSuffix ends a dead-letter stream's name: the name of the stream
// its entries came from, then this.
const deadLetterSuffix = ":dead"

// DeadLetterStreamOf names the dead-letter stream of stream:
// DeadLetterStream for Stream. Tools that read a stream of another name (the
// load generator's -stream) find its dead letters here.
func DeadLetterStreamOf(stream string) string { return stream + deadLetterSuffix }

// statusPrefix and idempotencyPrefix start the per-transaction and per-key names.
const (
	statusPrefix      = "transaction:"
	idempotencyPrefix = "idempotency:"
)

// StatusKey names the hash holding transaction id's status record; the hash
// is also the connector's "processed" marker (field status, processed_at).
func StatusKey(id string) string { return statusPrefix + id }

// IdempotencyKey names the record of an Idempotency-Key; keys are scoped per
// user, so two merchants can use the same key.
func IdempotencyKey(userID int64, key string) string {
	return idempotencyPrefix + strconv.FormatInt(userID, 10) + ":" + key
}

// IdempotencyKeys matches the name of every idempotency record (SCAN MATCH).
const IdempotencyKeys = idempotencyPrefix + "*"

// Fields of a stream entry.
const (
	fieldID         = "id"
	fieldUserID     = "user_id"
	fieldAmount     = "amount"
	fieldCurrency   = "currency"
	fieldRequestID  = "request_id"
	fieldEnqueuedAt = "enqueued_at"
)

// Statuses of a transaction's record.
const (
	StatusQueued    = "queued"
	StatusProcessed = "processed"
	StatusFailed    = "failed"
)
