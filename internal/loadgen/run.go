package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	tokens "github.com/acme-payments/platform/internal/token"
)

// runner holds one run's shared state. Counters are atomics read by the
// progress line; histograms and error counts lock internally.
type runner struct {
	cfg       *Config
	c         *client
	merchants []*merchant

	tokenLat *latency
	txLat    *latency
	// txNotAcceptedLat: each try of a transaction that ended without a
	// 200 (another status, a transport error or time-out), from that
	// try's send.
	txNotAcceptedLat *latency
	errs             errorCounts

	tokensOK     atomic.Int64
	tokensBefore int64 // the merchants' logins before the load
	txSent       atomic.Int64
	txAccepted   atomic.Int64
	// keyedMaybeQueued counts the 503s "may be queued" to transactions
	// with an Idempotency-Key; keyedReplayed those of them whose key's
	// next try was answered as a replay: they had been queued.
	keyedMaybeQueued atomic.Int64
	keyedReplayed    atomic.Int64
	remaining        atomic.Int64 // closed loop with Count: requests left to start
	// lateStarts counts the open loop's requests that a worker took up
	// more than lateAfter after their due time; maxStartLag is the
	// largest such delay, ns: the schedule was not kept.
	lateStarts  atomic.Int64
	maxStartLag atomic.Int64
	start       time.Time // the start of the load
	// windowEnd is start plus --duration (zero with --count): the
	// duration's rates count the requests sent by then that succeeded
	// (txAcceptedInWindow, tokensInWindow), over the duration, so that a
	// request still in flight at its end, answered long after it while
	// the other workers had stopped, does not stretch the second count;
	// and an open loop's requests sent late, after it, are not in it.
	windowEnd          time.Time
	txAcceptedInWindow atomic.Int64
	tokensInWindow     atomic.Int64
	// window is the span of an open loop's schedule: its --duration, or
	// --count over --rate. Set by schedule before it closes its channel
	// when the schedule ran to its end; zero when the run was stopped
	// before that, and for a closed loop.
	window time.Duration
	// seed is the run's: Config.Seed, or drawn when that is 0. It seeds the
	// workers' amounts and currencies, Poisson arrivals and the
	// verification sample.
	seed uint64
	// keyPrefix starts the run's Idempotency-Keys (Config.IdempotencyKeys).
	// It is drawn for every run, whatever the seed: a run repeated with
	// --seed within core-api's IDEMPOTENCY_TTL (24 h by default) would
	// otherwise send the first run's keys, and be answered with the first
	// run's transactions.
	keyPrefix string
	// deadMark is the dead-letter stream's last entry before the load
	// (queue probe only): the run's dead letters come after it.
	deadMark string
}

// worker is one connection's loop state; nothing in it is shared.
type worker struct {
	id       int
	m        *merchant
	rng      *rand.Rand
	s        *session
	body     []byte
	key      []byte // the last Idempotency-Key
	keys     int64  // Idempotency-Keys made
	accepted []acceptedTx
	// maybeQueued are transactions answered with a 503 that says they may
	// be queued (Redis did not answer core-api in time), with their id.
	maybeQueued []acceptedTx
}

// acceptedTx is a transaction the API answered 200 with an id for (also kept
// for a 503 that says it may be queued: worker.maybeQueued).
type acceptedTx struct {
	id       txID
	merchant int32
	// answered is when the answer came, from the start of the load: the
	// transaction was created before it.
	answered time.Duration
}

// Run drives the load described by cfg, then verifies it, and returns the
// report. The error is for runs that could not be carried out (bad config,
// nothing reachable); lost transactions are in the report (see Report.Err).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &runner{
		cfg:      &cfg,
		c:        newClient(&cfg, cfg.Concurrency),
		tokenLat: newLatency(),
		txLat:    newLatency(),

		txNotAcceptedLat: newLatency(),
	}
	defer r.c.close()
	for i := 0; i < cfg.Merchants; i++ {
		u := i % len(cfg.Users)
		r.merchants = append(r.merchants, &merchant{
			user:    u,
			login:   loginBody(cfg.Users[u], cfg.Password),
			refresh: cfg.TokenRefresh,
		})
	}

	var before QueueState
	if cfg.Queue != nil && cfg.Mode == ModeTransactions {
		var err error
		if before, err = cfg.Queue.State(ctx); err != nil {
			return nil, fmt.Errorf("--redis-url: read the queue before the load: %w (--redis-url none verifies through the status endpoint instead)", err)
		}
		if r.deadMark, err = cfg.Queue.deadLetterMark(ctx); err != nil {
			return nil, fmt.Errorf("--redis-url: read the dead-letter stream before the load: %w (--redis-url none verifies through the status endpoint instead)", err)
		}
	}

	// Log every merchant in before the clock starts, so that a wrong
	// password or an unreachable router fails fast and the first second of
	// the load is not all logins.
	if cfg.Mode == ModeTransactions {
		s := r.c.session()
		defer s.close()
		for _, m := range r.merchants {
			if _, err := m.get(ctx, r, s); err != nil {
				return nil, fmt.Errorf("log in as %q at %s: %w", cfg.Users[m.user], cfg.TokenURL, err)
			}
			if m.tok.disabled {
				return nil, fmt.Errorf("--users: %q is not enabled for transactions (its token says so); every transaction of it would get 403", cfg.Users[m.user])
			}
		}
		// Tokens and their latencies count the load phase only; these
		// logins are reported apart.
		r.tokensBefore = r.tokensOK.Swap(0)
		r.tokenLat = newLatency()
	}

	if cfg.IdempotencyKeys {
		r.keyPrefix = "loadgen-" + strconv.FormatUint(rand.Uint64(), 36) + "-"
	}
	workers := make([]*worker, cfg.Concurrency)
	r.seed = cfg.Seed
	if r.seed == 0 {
		r.seed = drawSeed()
	}
	for i := range workers {
		workers[i] = &worker{
			id:  i,
			m:   r.merchants[i%len(r.merchants)],
			rng: rand.New(rand.NewPCG(r.seed, uint64(i))),
			s:   r.c.session(),
		}
		defer workers[i].s.close()
	}

	var cpuBefore cpuSnapshot
	if cfg.WatchPID > 0 {
		var err error
		if cpuBefore, err = takeCPUSnapshot(cfg.WatchPID); err != nil {
			return nil, fmt.Errorf("--watch-pid: %w", err) // before the load, not after it
		}
	}
	start := time.Now()
	r.start = start
	if cfg.Duration > 0 {
		r.windowEnd = start.Add(cfg.Duration)
	}
	progressDone := r.startProgress(ctx, start)
	var wg sync.WaitGroup
	if cfg.Rate > 0 {
		due := make(chan time.Time, 4*cfg.Concurrency)
		go r.schedule(ctx, start, due)
		for _, w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for t := range due {
					r.one(ctx, w, t)
				}
			}()
		}
	} else {
		end := start.Add(cfg.Duration)
		r.remaining.Store(cfg.Count)
		for _, w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					now := time.Now()
					if cfg.Duration > 0 && !now.Before(end) {
						return
					}
					if cfg.Count > 0 && r.remaining.Add(-1) < 0 {
						return
					}
					r.one(ctx, w, now)
				}
			}()
		}
	}
	wg.Wait()
	loadEnd := time.Now()
	var cpu *CPUUsage
	if cfg.WatchPID > 0 {
		// The watched process may have gone during the load: the report
		// goes on without CPU figures, and says why.
		if after, err := takeCPUSnapshot(cfg.WatchPID); err == nil {
			cpu = usage(cpuBefore, after)
		} else {
			r.errs.add("watch-pid: gone during the load")
		}
	}
	progressDone()

	// The load's figures are taken now; verification's own logins and
	// lookups must not count in them.
	rep := &Report{
		Mode:            cfg.Mode,
		Concurrency:     cfg.Concurrency,
		Merchants:       cfg.Merchants,
		Rate:            cfg.Rate,
		Arrivals:        arrivalsOf(cfg),
		Seed:            r.seed,
		IdempotencyKeys: cfg.IdempotencyKeys,
		Target:          cfg.TxURL,
		Elapsed:         max(loadEnd.Sub(start), r.window).Seconds(),
		Interrupted:     ctx.Err() != nil,
		CPU:             cpu,
	}
	if cfg.Mode == ModeTokens {
		rep.Target = cfg.TokenURL
	}
	r.fillLoad(rep)
	// Merged into lists of their final size: grown by append, a long run's
	// list, the largest thing it holds, would be copied again and again.
	var nAccepted, nMaybeQueued int
	for _, w := range workers {
		nAccepted += len(w.accepted)
		nMaybeQueued += len(w.maybeQueued)
	}
	accepted, maybeQueued := make([]acceptedTx, 0, nAccepted), make([]acceptedTx, 0, nMaybeQueued)
	for _, w := range workers {
		accepted = append(accepted, w.accepted...)
		maybeQueued = append(maybeQueued, w.maybeQueued...)
		w.accepted, w.maybeQueued = nil, nil
	}
	if cfg.Mode == ModeTransactions && ctx.Err() == nil {
		v := r.verify(ctx, accepted, start, loadEnd, before)
		// Counted whatever --verify; looked up unless it is none.
		v.MaybeQueued = int64(len(maybeQueued))
		if len(maybeQueued) > 0 && ctx.Err() == nil && cfg.Verify != VerifyNone {
			_, v.MaybeQueuedFound, v.MaybeQueuedUnprocessed, v.MaybeQueuedUnverified = r.lookUpMaybeQueued(ctx, maybeQueued, loadEnd.Add(cfg.DrainTimeout))
			v.MaybeQueuedFoundByID = v.MaybeQueuedFound
		} else if len(maybeQueued) > 0 {
			v.maybeQueuedNotLookedUp = true
		}
		v.MaybeQueued += r.keyedMaybeQueued.Load()
		v.MaybeQueuedFound += r.keyedReplayed.Load()
		if ctx.Err() != nil { // stopped while verifying
			v.Interrupted, rep.Interrupted = true, true
		}
		rep.Verification = &v
		rep.Latency["enqueue_to_processed"] = v.e2e.summary()
	}
	rep.Errors = r.errs.snapshot()
	return rep, nil
}

// schedule sends the due time of every request of an open-loop run. Due
// times come from the request's index (and, for Poisson arrivals, the gaps
// drawn before it), never from when the previous one was sent, so a slow
// server makes requests late (measured) rather than fewer.
//
// When the schedule ends by itself it sets r.window: n requests at a rate
// span n gaps, not the n-1 up to the last one's due time, and a rate
// figure divided by the shorter time would be a gap high (10 requests at
// 1/s over 10 s answered within 9.1 s are 1.1/s). With --count the span is
// n/rate for Poisson arrivals too: the due time of a request n+1 that is
// never sent would make the mean rate reported n/(n-1) times too high.
func (r *runner) schedule(ctx context.Context, start time.Time, due chan<- time.Time) {
	defer close(due)
	cfg := r.cfg
	arrivals := newArrivalClock(cfg.Rate, cfg.Arrivals, r.seed)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		i, offset := arrivals.next()
		switch {
		case cfg.Duration > 0 && offset >= cfg.Duration:
			r.window = cfg.Duration
			return
		case cfg.Count > 0 && i >= cfg.Count:
			r.window = time.Duration(float64(cfg.Count) * float64(time.Second) / cfg.Rate)
			return
		}
		t := start.Add(offset)
		if d := time.Until(t); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		}
		select {
		case due <- t:
		case <-ctx.Done():
			return
		}
	}
}

// drawSeed draws a run's seed when --seed is 0: nonzero and under 2^53,
// so that it comes back exactly from the report's JSON through readers that
// hold numbers as float64 (jq, JavaScript, Go's any), and --seed repeats
// the run.
func drawSeed() uint64 {
	return rand.Uint64()>>11 | 1
}

// arrivalsOf is how the run's requests were spaced, for the report: empty
// for a closed loop, which has no schedule.
func arrivalsOf(cfg Config) Arrivals {
	if cfg.Rate == 0 {
		return ""
	}
	return cfg.Arrivals
}

// arrivalClock gives each request of an open loop its due time, as an
// offset from the start: the first at 0, then 1/Rate apart (ArrivalsEven),
// or with exponentially distributed gaps of mean 1/Rate (ArrivalsPoisson).
type arrivalClock struct {
	perReq float64    // mean gap, ns
	rng    *rand.Rand // the Poisson gaps; nil for even arrivals
	i      int64      // requests given so far
	at     float64    // the last offset given, ns (Poisson)
}

func newArrivalClock(rate float64, arrivals Arrivals, seed uint64) *arrivalClock {
	a := &arrivalClock{perReq: float64(time.Second) / rate}
	if arrivals == ArrivalsPoisson {
		// Its own stream: the workers' amounts use streams 0..c-1.
		a.rng = rand.New(rand.NewPCG(seed, math.MaxUint64))
	}
	return a
}

// next returns the index of the next request, counting from 0, and its due
// offset.
func (a *arrivalClock) next() (int64, time.Duration) {
	i := a.i
	a.i++
	if a.rng == nil {
		// From the index, not a running sum: no rounding error builds up.
		return i, time.Duration(float64(i) * a.perReq)
	}
	if i > 0 {
		a.at += a.rng.ExpFloat64() * a.perReq
	}
	return i, time.Duration(a.at)
}

// one sends one request that was due at due: a login in a token-only run,
// else a transaction, tried again with its key while a retry may mend it.
func (r *runner) one(ctx context.Context, w *worker, due time.Time) {
	if ctx.Err() != nil {
		// Interrupted: the due times still buffered were never sent, and
		// must not count as sent or as cut in flight.
		return
	}
	if r.cfg.Rate > 0 {
		r.noteStart(time.Since(due))
	}
	if r.cfg.Mode == ModeTokens {
		r.oneToken(ctx, w, due)
		return
	}
	t := txTry{due: due, backoff: 50 * time.Millisecond}
	t.amount, t.currency = w.drawTx(r.cfg)
	if r.keyPrefix != "" {
		t.key = w.nextKey(r.keyPrefix)
	}
	for r.tryTx(ctx, w, &t) {
		t.attempt++
	}
}

// lateAfter is how late after its due time an open loop's request may be
// taken up by a worker before it counts as late (Report.LateStarts): more
// than a timer's and a busy scheduler's jitter.
const lateAfter = 10 * time.Millisecond

// noteStart counts an open loop's request taken up late, and keeps the
// largest such lag. A request on time costs nothing more than the test.
func (r *runner) noteStart(lag time.Duration) {
	if lag <= lateAfter {
		return
	}
	r.lateStarts.Add(1)
	for {
		m := r.maxStartLag.Load()
		if int64(lag) <= m || r.maxStartLag.CompareAndSwap(m, int64(lag)) {
			return
		}
	}
}

// txTry is one transaction across its tries.
type txTry struct {
	amount   int64
	currency string
	key      string // its Idempotency-Key, or ""
	attempt  int    // the try under way, from 0
	backoff  time.Duration
	// due is when the transaction was due (open loop) or first sent (closed
	// loop); sent is when its first try went out.
	due, sent time.Time
	// hadMaybeQueued: a try was answered "may be queued".
	hadMaybeQueued bool
}

// tryTx sends one try of t and counts its outcome; it reports whether to
// send t again.
func (r *runner) tryTx(ctx context.Context, w *worker, t *txTry) bool {
	tok, err := w.m.get(ctx, r, w.s)
	if err != nil {
		if !isCanceled(ctx, err) {
			r.errs.add("tx skipped: no token")
			if t.attempt > 0 && t.key != "" {
				r.errs.add(errKeyedUnresolved) // an earlier try may have been queued
			}
			sleepCtx(ctx, 50*time.Millisecond)
		}
		return false
	}
	body := w.txBody(r.cfg, tok, t.amount, t.currency)
	hdr := reqHeaders{idempotencyKey: t.key}
	if r.cfg.Bearer {
		hdr.bearer = tok
	}
	if t.attempt == 0 {
		t.sent = time.Now()
		if r.cfg.Rate == 0 {
			// Closed loop: the clock starts with the request, after any
			// login. Open loop: it started when the request was due,
			// waiting for a token included, so that no delay goes
			// unmeasured (coordinated omission).
			t.due = t.sent
		}
	}
	tried := time.Now()
	resp, err := w.s.do(ctx, http.MethodPost, &r.c.tx, "", body, hdr)
	done := time.Now()
	r.txSent.Add(1)
	if err != nil {
		if isCanceled(ctx, err) {
			// Cut by Ctrl-C in flight: the API may have queued it.
			r.errs.add("tx interrupted in flight")
			return false
		}
		r.errs.add("tx " + transportKind(err))
		r.txNotAcceptedLat.record(done.Sub(tried))
		return r.retryKeyed(ctx, t)
	}
	if resp.status != http.StatusOK {
		r.txNotAcceptedLat.record(done.Sub(tried))
	}
	return r.settleTx(ctx, w, t, resp, tok, done)
}

// settleTx counts the answer to a try of t, answered at done, and keeps
// an accepted transaction (or one that may be queued, with its id) for the
// verification; it reports whether to send t again.
func (r *runner) settleTx(ctx context.Context, w *worker, t *txTry, resp h1resp, tok string, done time.Time) bool {
	// A 200 carries the transaction's id; so does core-api's 503 that says
	// the transaction may be queued (Redis did not answer it in time), when
	// the request had no Idempotency-Key.
	var out struct {
		ID string `json:"id"`
	}
	hasID := json.Unmarshal(w.s.buf.Bytes(), &out) == nil && out.ID != ""
	tx := acceptedTx{id: parseTxID(out.ID), merchant: int32(w.id % len(r.merchants)), answered: done.Sub(r.start)}
	switch {
	case resp.status == http.StatusServiceUnavailable && hasID:
		r.errs.add(errTxMaybeQueued)
		w.maybeQueued = append(w.maybeQueued, tx)
	case resp.status == http.StatusServiceUnavailable && t.key != "" && bytes.Contains(w.s.buf.Bytes(), mayBeQueued):
		// With a key, core-api gives no id: the same request sent again
		// with the key answers with whichever transaction was stored, as a
		// merchant would learn it.
		r.errs.add(errTxMaybeQueued)
		r.keyedMaybeQueued.Add(1)
		t.hadMaybeQueued = true
		return r.retryKeyed(ctx, t)
	case resp.status != http.StatusOK:
		r.errs.add(statusKey("tx", resp.status))
		if resp.status == http.StatusUnauthorized || resp.status == http.StatusUnprocessableEntity {
			// Most likely the token expired in flight; the next request
			// logs in again.
			w.m.invalidate(tok)
		}
		if resp.status >= 500 || resp.status == http.StatusTooManyRequests {
			return r.retryKeyed(ctx, t)
		}
		if t.attempt > 0 && resp.status == http.StatusUnprocessableEntity && bytes.Contains(w.s.buf.Bytes(), tokenExpired) {
			// The token expired during the back-off: the next try logs in
			// again (invalidated above), and its answer, a replay or a new
			// transaction, says whether an earlier try was queued.
			return r.retryKeyed(ctx, t)
		}
		if t.attempt > 0 && t.key != "" {
			// An earlier try may have been queued (it was retried), and
			// this answer ends the transaction: its fate is unknown, as
			// when the retries are used up.
			r.errs.add(errKeyedUnresolved)
		}
	case !hasID:
		r.errs.add(errTxWithoutID)
	default:
		if t.hadMaybeQueued && resp.replayed {
			r.keyedReplayed.Add(1) // a "may be queued" try was stored after all
		}
		r.txLat.record(done.Sub(earliest(t.due, t.sent)))
		r.txAccepted.Add(1)
		if r.inWindow(t.sent) {
			r.txAcceptedInWindow.Add(1)
		}
		w.accepted = append(w.accepted, tx)
	}
	return false
}

// retryKeyed waits before the next try of a keyed transaction whose try
// failed in a way a retry may mend (a 5xx, a 429, a transport error): it
// reports whether to try again, and counts the transaction once as
// unresolved when its retries are used up. An unkeyed one is not retried.
func (r *runner) retryKeyed(ctx context.Context, t *txTry) bool {
	if t.key == "" || ctx.Err() != nil {
		return false
	}
	if t.attempt >= keyedRetries {
		r.errs.add(errKeyedUnresolved)
		return false
	}
	sleepCtx(ctx, t.backoff)
	t.backoff *= 2
	return ctx.Err() == nil
}

// errTxMaybeQueued counts core-api's 503s that say the transaction may be
// queued, with an id or (keyed) without one.
const errTxMaybeQueued = "tx 503 (may be queued)"

// errTxWithoutID counts 200 answers without a transaction id: accepted,
// and never to be checked, so an error of the run.
const errTxWithoutID = "tx 200 without id"

// keyedRetries bounds how many times a transaction with an
// Idempotency-Key is sent again with its key after a try that a retry may
// mend: a 503 "may be queued", another 5xx, a 429, a transport error
// (after 50, 100, 200 and 400 ms).
const keyedRetries = 4

// errKeyedUnresolved counts the keyed transactions whose retries were used
// up, or whose retry got an answer that ends them (a 4xx other than 429)
// after a try that may have been queued: whether one of their tries was
// queued is not known.
const errKeyedUnresolved = "tx with Idempotency-Key unresolved: retries used up"

// tokenExpired is in the error text of core-api's 422 for an expired token.
var tokenExpired = []byte(tokens.ErrExpired.Error())

// mayBeQueued is in the error text of core-api's 503 for a transaction
// Redis did not answer in time (RELIABILITY.md D46).
var mayBeQueued = []byte("may be queued")

// oneToken is one request of a token-only run.
func (r *runner) oneToken(ctx context.Context, w *worker, due time.Time) {
	sent := time.Now()
	_, err := w.s.fetchToken(ctx, w.m.login)
	done := time.Now()
	if err != nil {
		if !isCanceled(ctx, err) {
			r.errs.add(errKey("token", err))
		}
		return
	}
	r.tokenLat.record(done.Sub(earliest(due, sent)))
	r.tokensOK.Add(1)
	if r.inWindow(sent) {
		r.tokensInWindow.Add(1)
	}
}

// inWindow reports whether a request sent at sent went out within a
// --duration run's duration (never before the load: windowEnd is set at
// its start).
func (r *runner) inWindow(sent time.Time) bool {
	return !r.windowEnd.IsZero() && sent.Before(r.windowEnd)
}

// login fetches a token for a merchant session, retrying refusals and
// transport errors with a short backoff (honouring Retry-After, capped) for
// up to five attempts. Every attempt is counted.
func (r *runner) login(ctx context.Context, body []byte, s *session) (token, error) {
	backoff := 50 * time.Millisecond
	var last error
	for attempt := 0; attempt < 5; attempt++ {
		sent := time.Now()
		tok, err := s.fetchToken(ctx, body)
		if err == nil {
			r.tokenLat.record(time.Since(sent))
			r.tokensOK.Add(1)
			if r.inWindow(sent) {
				r.tokensInWindow.Add(1)
			}
			return tok, nil
		}
		if isCanceled(ctx, err) {
			return token{}, err
		}
		r.errs.add(errKey("token", err))
		last = err
		var es *errStatus
		if errors.As(err, &es) {
			switch {
			case es.status == http.StatusTooManyRequests || es.status >= 500:
				if es.retryAfter > 0 {
					backoff = min(es.retryAfter, 2*time.Second)
				}
			default:
				return token{}, err // 401, 404, 422: retrying will not help
			}
		}
		sleepCtx(ctx, backoff)
		backoff = min(2*backoff, time.Second)
	}
	if err := ctx.Err(); err != nil {
		return token{}, err // stopped during the last wait: not a failed login
	}
	return token{}, last
}

func errKey(what string, err error) string {
	var es *errStatus
	if errors.As(err, &es) {
		return statusKey(what, es.status)
	}
	return what + " " + transportKind(err)
}

// drawTx draws a transaction's amount and currency.
func (w *worker) drawTx(cfg *Config) (amount int64, currency string) {
	amount = 1 + w.rng.Int64N(cfg.MaxAmount)
	return amount, cfg.Currencies[w.rng.IntN(len(cfg.Currencies))]
}

// txBody builds {"token":...,"amount":...,"currency":...} in the worker's
// buffer. Tokens are JWTs (base64url and dots), so no escaping is needed;
// anything else is marshalled properly.
func (w *worker) txBody(cfg *Config, tok string, amount int64, cur string) []byte {
	b := w.body[:0]
	b = append(b, '{')
	if !cfg.Bearer {
		if jwtSafe(tok) {
			b = append(b, `"token":"`...)
			b = append(b, tok...)
			b = append(b, `",`...)
		} else {
			q, _ := json.Marshal(tok)
			b = append(b, `"token":`...)
			b = append(b, q...)
			b = append(b, ',')
		}
	}
	b = append(b, `"amount":`...)
	b = strconv.AppendInt(b, amount, 10)
	b = append(b, `,"currency":"`...)
	b = append(b, cur...)
	b = append(b, `"}`...)
	w.body = b
	return b
}

// nextKey is the Idempotency-Key of the worker's next transaction: the
// run's prefix, the worker and its count, unique within the run.
func (w *worker) nextKey(prefix string) string {
	w.keys++
	b := append(w.key[:0], prefix...)
	b = strconv.AppendInt(b, int64(w.id), 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, w.keys, 10)
	w.key = b
	return string(b)
}

func jwtSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		base64url := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
		if !base64url && c != '.' {
			return false
		}
	}
	return true
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// startProgress prints one line per interval until the returned func is
// called.
func (r *runner) startProgress(ctx context.Context, start time.Time) (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(r.cfg.ProgressInterval)
		defer t.Stop()
		var lastTok, lastTx int64
		last := start
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case now := <-t.C:
				tok, tx := r.tokensOK.Load(), r.txAccepted.Load()
				dt := now.Sub(last).Seconds()
				line := fmt.Sprintf("%6.1fs  tokens %d (%.0f/s)  accepted %d (%.0f/s)  errors %d",
					now.Sub(start).Seconds(), tok, float64(tok-lastTok)/dt, tx, float64(tx-lastTx)/dt, r.errs.n.Load())
				if q := r.cfg.Queue; q != nil && r.cfg.Mode == ModeTransactions {
					qctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
					if s, err := q.State(qctx); err == nil {
						backlog := "?"
						if s.Lag >= 0 {
							backlog = strconv.FormatInt(s.Lag, 10)
						}
						line += fmt.Sprintf("  backlog %s pending %d", backlog, s.Pending)
					}
					cancel()
				}
				fmt.Fprintln(r.cfg.Progress, line)
				lastTok, lastTx, last = tok, tx, now
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
