package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/acme-payments/platform/internal/httpx"
	"github.com/acme-payments/platform/internal/logging"
	"github.com/acme-payments/platform/internal/token"
	"github.com/acme-payments/platform/internal/txqueue"
	"github.com/acme-payments/platform/internal/txrequest"
)

// Headers of the Idempotency-Key protocol (Stripe's names).
const (
	idempotencyKeyHeader = "Idempotency-Key"
	replayedHeader       = "Idempotent-Replayed"
)

// transactionIDHeader names, in an answer to POST /transaction, the
// transaction it is about: the one queued (or replayed), or the one that may
// be queued (the 503 that gives its id). The body says it too; the header is
// for HAProxy's access log (haproxy.cfg), which logs it with the request id,
// so that one line maps a request to its transaction at any log level.
const transactionIDHeader = "X-Transaction-ID"

// transactionResponse is the body of a successful POST /transaction: the
// contract's user_id, amount and currency, plus the id and status.
type transactionResponse struct {
	ID       string `json:"id"`
	UserID   int64  `json:"user_id"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	Status   string `json:"status"`
}

// apiError is a failure with the status and text the client sees, and the
// reason logged.
type apiError struct {
	status int
	msg    string
	id     string // the transaction it is about, when the client needs it
}

// Client-facing failures beyond the contract's table.
var (
	errNotEnabled       = apiError{status: http.StatusForbidden, msg: "User not enabled for transactions"}
	errTokenBlank       = apiError{status: http.StatusUnprocessableEntity, msg: "Token is blank"}
	errBadIdemKey       = apiError{status: http.StatusBadRequest, msg: "Idempotency-Key must be 1 to 255 printable ASCII characters"}
	errTwoIdemKeys      = apiError{status: http.StatusBadRequest, msg: "Idempotency-Key must be given once"}
	errIdemConflict     = apiError{status: http.StatusUnprocessableEntity, msg: "Idempotency-Key was already used with a different request"}
	errNotFound         = apiError{status: http.StatusNotFound, msg: "Transaction not found"}
	errQueueUnavailable = apiError{status: http.StatusServiceUnavailable, msg: "Transaction queue is unavailable; try again"}
	// The enqueue was sent, but Redis did not answer in time: the
	// transaction may be queued, so "try again" could queue it twice.
	errMaybeQueuedKeyed = apiError{status: http.StatusServiceUnavailable, msg: "Transaction queue did not answer in time; the transaction may be queued: retry with the same Idempotency-Key"}
	errMaybeQueued      = apiError{status: http.StatusServiceUnavailable, msg: "Transaction queue did not answer in time; the transaction may be queued: look up its id before sending it again"}
)

// maybeQueued is an enqueue sent without a reply (txqueue.ErrOutcomeUnknown)
// for transaction id, sent with an Idempotency-Key or not.
type maybeQueued struct {
	id    string
	keyed bool
	err   error
}

func (m maybeQueued) Error() string { return m.err.Error() }
func (m maybeQueued) Unwrap() error { return m.err }

// failure is the one place that maps an error to the status and text the
// client sees: request decode errors carry their own, domain errors map to
// theirs, and anything else is the queue being unavailable.
func failure(err error) apiError {
	var de *httpx.DecodeError
	var ae apiError
	var mq maybeQueued
	switch {
	case errors.As(err, &mq):
		// With a key, the retry answers whichever id was stored; without
		// one, the id given is the one the transaction has if queued.
		if mq.keyed {
			return errMaybeQueuedKeyed
		}
		e := errMaybeQueued
		e.id = mq.id
		return e
	case errors.As(err, &de):
		return apiError{status: de.Status, msg: de.Msg}
	case errors.Is(err, txqueue.ErrIdempotencyConflict):
		return errIdemConflict
	case errors.Is(err, txqueue.ErrNotFound):
		return errNotFound
	case errors.As(err, &ae):
		return ae
	}
	return errQueueUnavailable
}

func (e apiError) Error() string { return e.msg }

// invalidToken is the contract's 422 for a rejected token, with the
// verifier's text as the reason.
func invalidToken(err error) apiError {
	return apiError{status: http.StatusUnprocessableEntity, msg: err.Error()}
}

// fail logs and answers err. Client errors log at info; the queue being
// unavailable logs the underlying Redis error at error level, unless the
// client went away first (its request's context ended the Redis call).
func fail(ctx context.Context, log *slog.Logger, w http.ResponseWriter, what string, err error) {
	ae := failure(err)
	body := httpx.ErrorBody{Error: ae.msg, ID: ae.id}
	if ae.id != "" {
		w.Header().Set(transactionIDHeader, ae.id)
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		log.InfoContext(ctx, what+" abandoned: the client went away", "error", err.Error())
		httpx.WriteErrorBody(w, ae.status, body)
		return
	}
	if ae.status >= http.StatusInternalServerError {
		log.ErrorContext(ctx, what+" failed", "status", ae.status, "error", err.Error())
	} else {
		log.InfoContext(ctx, what+" rejected", "status", ae.status, "reason", ae.msg)
	}
	httpx.WriteErrorBody(w, ae.status, body)
}

// handleCreateTransaction validates the body in the contract's order (blank
// fields, currency format, then the token: body field, or Authorization:
// Bearer when the field is blank), refuses users who are not enabled, and
// queues the transaction, answering only once it is stored. With an
// Idempotency-Key, a repeat of the same request within IDEMPOTENCY_TTL answers the first
// response (and Idempotent-Replayed: true) without queueing anything.
func handleCreateTransaction(log *slog.Logger, tokens *token.Verifier, queue *txqueue.Queue) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		body, err := httpx.ReadJSONBody(r)
		if err != nil {
			fail(ctx, log, w, "transaction", err)
			return
		}
		req, err := txrequest.Decode(body, txrequest.BearerToken(r.Header.Get("Authorization")))
		if err != nil {
			fail(ctx, log, w, "transaction", err)
			return
		}
		claims, err := tokens.Verify(req.Token)
		if err != nil {
			fail(ctx, log, w, "transaction", invalidToken(err))
			return
		}
		if !claims.Enabled {
			fail(ctx, log, w, "transaction", errNotEnabled)
			return
		}
		var key string
		switch keys := r.Header.Values(idempotencyKeyHeader); len(keys) {
		case 0:
		case 1:
			if key = keys[0]; !txqueue.ValidIdempotencyKey(key) {
				fail(ctx, log, w, "transaction", errBadIdemKey)
				return
			}
		default: // which one did the client mean?
			fail(ctx, log, w, "transaction", errTwoIdemKeys)
			return
		}
		tx := txqueue.Transaction{UserID: claims.UserID, Amount: req.Amount, Currency: req.Currency,
			RequestID: logging.RequestID(ctx)}
		// Once started, the enqueue finishes even if the client goes away, so
		// its outcome never depends on a disconnect; Redis timeouts bound it.
		res, err := queue.Enqueue(context.WithoutCancel(ctx), tx, key)
		if errors.Is(err, txqueue.ErrOutcomeUnknown) {
			err = maybeQueued{id: res.ID, keyed: key != "", err: err}
		}
		if err != nil {
			fail(ctx, log, w, "transaction", err)
			return
		}
		w.Header().Set(transactionIDHeader, res.ID)
		if res.Replayed {
			w.Header().Set(replayedHeader, "true")
		}
		log.DebugContext(ctx, "transaction queued", "transaction_id", res.ID, "user_id", tx.UserID,
			"amount", tx.Amount, "currency", tx.Currency, "replayed", res.Replayed)
		httpx.WriteJSON(w, http.StatusOK, transactionResponse{
			ID: res.ID, UserID: tx.UserID, Amount: tx.Amount, Currency: tx.Currency, Status: txqueue.StatusQueued,
		})
	})
}

// handleGetTransaction answers the status record of transaction {id} to its
// owner. The token comes from Authorization: Bearer or ?token=. Someone
// else's transaction is a 404, like an unknown one, so ids leak nothing.
func handleGetTransaction(log *slog.Logger, tokens *token.Verifier, queue *txqueue.Queue) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		raw := txrequest.BearerToken(r.Header.Get("Authorization"))
		if raw == "" {
			raw = r.URL.Query().Get("token")
		}
		if raw == "" {
			fail(ctx, log, w, "status", errTokenBlank)
			return
		}
		claims, err := tokens.Verify(raw)
		if err != nil {
			fail(ctx, log, w, "status", invalidToken(err))
			return
		}
		rec, err := queue.Status(ctx, r.PathValue("id"))
		if err == nil && rec.UserID != claims.UserID {
			err = txqueue.ErrNotFound
		}
		if err != nil {
			fail(ctx, log, w, "status", err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, rec)
	})
}
