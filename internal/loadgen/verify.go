package loadgen

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Verification is what became of the accepted transactions.
type Verification struct {
	// Interrupted says the run was stopped (Ctrl-C) before verification
	// finished: the figures below are incomplete and no verdict.
	Interrupted bool `json:"interrupted,omitempty"`
	// Accepted is the number of transactions the API answered 200 for.
	Accepted int64 `json:"accepted"`
	// Checked is how many of them had their status looked up.
	Checked int64 `json:"checked"`
	// Processed, Failed, Queued, Missing and Unverified partition Checked by
	// the last status seen: processed and failed are final; queued at the
	// deadline means never processed; missing means the status lookup never
	// found it; unverified means the lookup itself kept failing (an error
	// status, a transport or Redis error: see Report.Errors), so nothing is
	// known of it.
	Processed  int64 `json:"processed"`
	Failed     int64 `json:"failed"`
	Queued     int64 `json:"queued"`
	Missing    int64 `json:"missing"`
	Unverified int64 `json:"unverified"`
	// MaybeQueued counts the 503s that said a transaction may be queued
	// (core-api, when Redis did not answer in time): with an id, or, for a
	// transaction sent with an Idempotency-Key, without one.
	// MaybeQueuedFound counts how many of them were queued all the same:
	// found by the status lookup after the load (queued, processed or
	// failed), or answered as a replay when sent again with the key.
	// Neither is an error of the run.
	MaybeQueued      int64 `json:"maybe_queued,omitempty"`
	MaybeQueuedFound int64 `json:"maybe_queued_found,omitempty"`
	// MaybeQueuedUnprocessed counts those found that were not processed:
	// failed, or still queued at the drain deadline. That is an error of
	// the run: queued is a promise to process, whatever the answer said.
	MaybeQueuedUnprocessed int64 `json:"maybe_queued_unprocessed,omitempty"`
	// MaybeQueuedUnverified counts those whose every lookup failed: it is
	// not known whether they were queued, so the run cannot pass.
	MaybeQueuedUnverified int64 `json:"maybe_queued_unverified,omitempty"`
	// MaybeQueuedFoundByID counts those of MaybeQueuedFound answered with
	// an id and found by its lookup: entries the stream got for
	// transactions not counted as accepted, which the stream's count must
	// not take for accepted ones (a keyed one found by its replay is
	// counted as accepted, its entry once). In the JSON so that Err gives
	// the same verdict on a report read back from it (bench/benchtool).
	MaybeQueuedFoundByID int64 `json:"maybe_queued_found_by_id,omitempty"`
	// DuplicateIDs counts accepted answers whose id an earlier accepted
	// answer of the run already had: two transactions under one id, which
	// one status record could not account for.
	DuplicateIDs int64 `json:"duplicate_ids,omitempty"`
	// DeadLettered counts the accepted transactions the connector
	// dead-lettered during the run (queue probe only): entries of the
	// dead-letter stream added since the start of the load that carry an
	// accepted transaction's id. Each is failed, and acked, so the group
	// drains: without it a run whose statuses were not all looked up passed
	// with them. DeadLetterUnread says the stream could not be read.
	DeadLettered     int64 `json:"dead_lettered,omitempty"`
	DeadLetterUnread bool  `json:"dead_letter_unread,omitempty"`

	// DrainMethod says how draining was observed: "queue" (consumer group lag
	// and pending both 0), "status" (every checked transaction left queued)
	// or "none".
	DrainMethod string `json:"drain_method"`
	// Drained is whether it happened before the drain timeout.
	Drained bool `json:"drained"`
	// DrainSeconds is the time from the last response of the load to drained.
	// By "status", drained is when the last checked transaction was final at
	// the latest: its answer plus its enqueue→processed time, else the lookup
	// that found it final.
	DrainSeconds float64 `json:"drain_s"`
	// GroupTaken is how many stream entries the consumer group took between
	// the start of the load and drained (queue method only), from the
	// group's entries-read: wrong after a Redis restart, which empties it.
	GroupTaken int64 `json:"group_taken"`
	// StreamAdded is how many entries reached the stream between the start
	// of the load and drained (queue method only): what vouches for a run
	// whose statuses are not checked.
	StreamAdded int64 `json:"stream_added"`
	// Via is where the statuses were looked up.
	Via Via `json:"via"`
	// VerifySeconds is how long the whole verification took.
	VerifySeconds float64 `json:"verify_s"`
	// ProcessedPerSec is processed transactions per second from the start of
	// the load until drained: the processed count when every accepted one was
	// checked, else StreamAdded when the queue was probed, else the sampled
	// processed count scaled to all accepted.
	ProcessedPerSec float64 `json:"processed_per_s"`

	e2e *latency
	// maybeQueuedNotLookedUp: transactions answered "may be queued" with
	// an id were not looked up (--verify none), so MaybeQueuedFound does
	// not count them.
	maybeQueuedNotLookedUp bool
}

// Lost is the number of checked transactions that were accepted but never
// processed (still queued, or unknown to the status endpoint).
func (v *Verification) Lost() int64 { return v.Queued + v.Missing }

type txState uint8

const (
	stateUnknown txState = iota
	stateQueued
	stateMissing
	stateProcessed
	stateFailed
)

// verify waits for the backlog to drain and looks up the accepted
// transactions' statuses, within cfg.DrainTimeout of loadEnd.
func (r *runner) verify(ctx context.Context, accepted []acceptedTx, start, loadEnd time.Time, before QueueState) Verification {
	cfg := r.cfg
	began := time.Now()
	v := Verification{Accepted: int64(len(accepted)), DrainMethod: "none", Via: cfg.VerifyVia, e2e: newLatency()}
	// The sample is drawn first, from the accepted list in the order of the
	// answers (Report.Seed), and copied out of it.
	check := accepted
	if cfg.Verify == VerifyNone {
		check = nil
	} else if cfg.Verify == VerifySample && cfg.VerifySample < len(accepted) {
		check = sample(accepted, cfg.VerifySample, r.seed)
	}
	// Then the list is sorted by id, in place: duplicates are neighbours,
	// and the dead letters' ids are looked up by binary search, with no set
	// of them all.
	slices.SortFunc(accepted, func(a, b acceptedTx) int { return compareTxIDs(a.id, b.id) })
	v.DuplicateIDs = duplicateIDs(accepted)
	deadline := loadEnd.Add(cfg.DrainTimeout)
	drainedAt := time.Time{}

	if cfg.Queue != nil {
		v.DrainMethod = "queue"
		probeFailed := false
		for {
			s, err := cfg.Queue.State(ctx)
			if err != nil && ctx.Err() == nil {
				// Once: it is retried every 2 ms until the drain timeout,
				// and one cause would otherwise count thousands of times.
				if !probeFailed {
					r.errs.add("queue probe")
				}
				probeFailed = true
			} else if s.Drained() {
				drainedAt = time.Now()
				v.Drained = true
				v.GroupTaken = s.EntriesRead - before.EntriesRead
				v.StreamAdded = s.EntriesAdded - before.EntriesAdded
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				break
			}
			sleepCtx(ctx, 2*time.Millisecond)
		}
	}

	if cfg.Queue != nil && ctx.Err() == nil {
		// Dead-lettered entries are acked: the group drains, and the stream
		// got their entries. Only their status, or the dead-letter stream,
		// tells them from processed ones.
		ofThisRun := func(id string) bool {
			_, found := slices.BinarySearchFunc(accepted, parseTxID(id), func(tx acceptedTx, id txID) int { return compareTxIDs(tx.id, id) })
			return found
		}
		n, err := cfg.Queue.deadLettered(ctx, r.deadMark, ofThisRun)
		if err != nil && ctx.Err() == nil {
			r.errs.add("dead-letter stream read")
			v.DeadLetterUnread = true
		}
		v.DeadLettered = n
	}

	v.Checked = int64(len(check))
	if len(check) > 0 {
		states, finalBy := r.checkStatuses(ctx, check, deadline, v.e2e, false)
		for _, s := range states {
			switch s {
			case stateProcessed:
				v.Processed++
			case stateFailed:
				v.Failed++
			case stateQueued:
				v.Queued++
			case stateMissing:
				v.Missing++
			default:
				v.Unverified++
			}
		}
		if cfg.Queue == nil {
			v.DrainMethod = "status"
			if v.Queued == 0 && v.Missing == 0 && v.Unverified == 0 {
				v.Drained = true
				drainedAt = finalBy
				if drainedAt.Before(loadEnd) {
					drainedAt = loadEnd
				}
			}
		}
	}
	if v.Drained {
		v.DrainSeconds = drainedAt.Sub(loadEnd).Seconds()
		// Not less than the schedule's span: the queue may drain before
		// an open loop's schedule ends.
		window := max(drainedAt.Sub(start), r.window).Seconds()
		switch {
		case v.Checked == v.Accepted:
			v.ProcessedPerSec = float64(v.Processed) / window
		case v.DrainMethod == "queue":
			v.ProcessedPerSec = float64(v.StreamAdded) / window
		case v.Checked > 0:
			v.ProcessedPerSec = float64(v.Processed) * float64(v.Accepted) / float64(v.Checked) / window
		}
	}
	v.VerifySeconds = time.Since(began).Seconds()
	return v
}

// lookUpMaybeQueued looks up the transactions answered "may be queued",
// after the load's own verification, until each is final or not found (one
// not found then was never queued: a call Redis had not read when core-api
// gave up runs within the drain's time, long over), or the deadline passes;
// a deadline already past still gives them a second of lookups. It returns
// how many there are, how many were found (queued at some point), how many
// of those were not processed (failed, or still queued at the deadline: a
// promise broken, whatever the client was told), and how many could not be
// looked up at all.
func (r *runner) lookUpMaybeQueued(ctx context.Context, txs []acceptedTx, deadline time.Time) (n, found, unprocessed, unverified int64) {
	if soon := time.Now().Add(time.Second); deadline.Before(soon) {
		deadline = soon
	}
	states, _ := r.checkStatuses(ctx, txs, deadline, nil, true) // their latencies are not the load's
	for _, s := range states {
		switch s {
		case stateProcessed:
			found++
		case stateFailed, stateQueued:
			found++
			unprocessed++
		case stateUnknown:
			unverified++
		}
	}
	return int64(len(txs)), found, unprocessed, unverified
}

// duplicateIDs counts the accepted transactions, sorted by id, whose id
// another one before it has.
func duplicateIDs(accepted []acceptedTx) int64 {
	var n int64
	for i := 1; i < len(accepted); i++ {
		if accepted[i].id == accepted[i-1].id {
			n++
		}
	}
	return n
}

// checkStatuses looks every transaction up, again and again while some are
// queued or not found (or, with missingFinal, only queued), until all are
// final or the deadline passes. At least one full round is always made,
// and past the deadline one more for the lookups that failed, unless every
// session's lookups keep failing past the deadline: then the rest are left
// unverified, so that a status endpoint that does not answer costs about
// one request timeout, not one per transaction. It returns
// each one's last state and a time by which every transaction found final
// was final: for a processed one with both timestamps, when its answer came
// plus its enqueue→processed time (it was created before the answer; the
// server's two timestamps are compared only with each other); otherwise
// when the lookup found it final. (The time a lookup last saw one still
// queued, used before, is a moment when the backlog had certainly not
// drained.) e2e, unless nil, gets the enqueue→processed latency of each
// processed one whose two timestamps are known. A transaction's failed
// lookups count once in the errors, with the first one's kind, however many
// rounds it fails in.
func (r *runner) checkStatuses(ctx context.Context, txs []acceptedTx, deadline time.Time, e2e *latency, missingFinal bool) ([]txState, time.Time) {
	states := make([]txState, len(txs))
	lookupFailed := make([]bool, len(txs))
	open := make([]int, len(txs))
	for i := range open {
		open[i] = i
	}
	finalBy := time.Time{}
	// One session per parallel lookup for all the rounds: a session per
	// round dialled again every 20 ms.
	sessions := make([]*session, min(r.cfg.Concurrency, 32))
	for p := range sessions {
		sessions[p] = r.c.session()
	}
	defer func() {
		for _, s := range sessions {
			s.close()
		}
	}()
	// abandon: past the deadline, the last lookups of every session (and at
	// least the last 3) failed. One failure among answers is a transient
	// error, not a status endpoint that stopped answering.
	var abandon atomic.Bool
	var failingInARow atomic.Int64
	giveUpAfter := int64(max(len(sessions), 3))
	lateRetry := false
	for round := 0; len(open) > 0 && ctx.Err() == nil && !abandon.Load(); round++ {
		if round > 0 {
			if time.Now().After(deadline) {
				// Past the deadline, one more round for the lookups that
				// failed (not for the queued or missing: their answer
				// stands).
				if lateRetry {
					break
				}
				lateRetry = true
				open = slices.DeleteFunc(open, func(i int) bool { return states[i] != stateUnknown })
				if len(open) == 0 {
					break
				}
			}
			sleepCtx(ctx, 20*time.Millisecond)
		}
		idx := make(chan int)
		var mu sync.Mutex
		var still []int
		var wg sync.WaitGroup
		for _, sess := range sessions {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range idx {
					s, d, ok, errKey := r.lookup(ctx, txs[i], sess)
					if ok && e2e != nil {
						e2e.record(d)
					}
					states[i] = s
					if errKey != "" {
						if !lookupFailed[i] {
							lookupFailed[i] = true
							r.errs.add(errKey)
						}
						if failingInARow.Add(1) >= giveUpAfter && time.Now().After(deadline) {
							abandon.Store(true)
						}
					} else {
						failingInARow.Store(0)
					}
					mu.Lock()
					switch {
					case s == stateMissing && missingFinal:
					case s == stateQueued, s == stateMissing, s == stateUnknown:
						still = append(still, i)
					default:
						by := time.Now()
						if ok {
							by = r.start.Add(txs[i].answered + d)
						}
						if by.After(finalBy) {
							finalBy = by
						}
					}
					mu.Unlock()
				}
			}()
		}
		sent := 0
		for _, i := range open {
			if abandon.Load() || ctx.Err() != nil {
				break
			}
			idx <- i
			sent++
		}
		close(idx)
		wg.Wait()
		if skipped := len(open) - sent; round == 0 && skipped > 0 && ctx.Err() == nil {
			// Never looked up: unverified. (Skipped in a later round, what
			// the round before saw stands.)
			r.errs.addN("status not looked up: lookups failing past the drain timeout", int64(skipped))
		}
		open = still
	}
	return states, finalBy
}

// lookup asks the status endpoint about one transaction with its merchant's
// token and returns, for a processed one, its enqueue→processed latency (ok
// says whether it was known), or, when the lookup failed, the kind of error
// for the report (not counted: checkStatuses counts it once per
// transaction).
func (r *runner) lookup(ctx context.Context, tx acceptedTx, s *session) (st txState, d time.Duration, ok bool, errKey string) {
	if r.cfg.VerifyVia == ViaRedis {
		st, d, ok, err := r.cfg.Queue.lookup(ctx, tx.id.String())
		if err != nil {
			if isCanceled(ctx, err) {
				return stateUnknown, 0, false, ""
			}
			return stateUnknown, 0, false, "status redis error"
		}
		return st, d, ok, ""
	}
	m := r.merchants[tx.merchant]
	tok, err := m.get(ctx, r, s)
	if err != nil {
		if isCanceled(ctx, err) {
			return stateUnknown, 0, false, ""
		}
		return stateUnknown, 0, false, "status skipped: no token"
	}
	resp, err := s.do(ctx, http.MethodGet, &r.c.status, tx.id.String(), nil, reqHeaders{bearer: tok})
	if err != nil {
		if isCanceled(ctx, err) {
			return stateUnknown, 0, false, ""
		}
		return stateUnknown, 0, false, "status " + transportKind(err)
	}
	switch status := resp.status; status {
	case http.StatusOK:
	case http.StatusNotFound:
		return stateMissing, 0, false, ""
	default:
		if status == http.StatusUnauthorized || status == http.StatusUnprocessableEntity {
			m.invalidate(tok)
		}
		return stateUnknown, 0, false, statusKey("status", status)
	}
	var body statusBody
	if err := json.Unmarshal(s.buf.Bytes(), &body); err != nil {
		return stateUnknown, 0, false, "status 200 undecodable"
	}
	switch body.Status {
	case "processed":
		d, ok = body.endToEnd()
		return stateProcessed, d, ok, ""
	case "failed":
		return stateFailed, 0, false, ""
	case "queued", "processing":
		return stateQueued, 0, false, ""
	}
	return stateUnknown, 0, false, "status 200 unknown state " + strconv.Quote(body.Status)
}

// statusBody is the part of GET /transactions/{id} used here. Times may be
// RFC 3339 strings or numbers (seconds, milliseconds, microseconds or
// nanoseconds since the epoch, told apart by magnitude).
type statusBody struct {
	Status      string          `json:"status"`
	CreatedAt   json.RawMessage `json:"created_at"`
	EnqueuedAt  json.RawMessage `json:"enqueued_at"`
	ProcessedAt json.RawMessage `json:"processed_at"`
	UpdatedAt   json.RawMessage `json:"updated_at"`
}

// endToEnd is processed_at (else updated_at) minus enqueued_at (else
// created_at).
func (b *statusBody) endToEnd() (time.Duration, bool) {
	from, ok := parseTime(b.EnqueuedAt)
	if !ok {
		if from, ok = parseTime(b.CreatedAt); !ok {
			return 0, false
		}
	}
	to, ok := parseTime(b.ProcessedAt)
	if !ok {
		if to, ok = parseTime(b.UpdatedAt); !ok {
			return 0, false
		}
	}
	d := to.Sub(from)
	if d < 0 {
		d = 0
	}
	return d, true
}

func parseTime(raw json.RawMessage) (time.Time, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, false
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil || s == "" {
			return time.Time{}, false
		}
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t, true
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return epoch(f), true
		}
		return time.Time{}, false
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return time.Time{}, false
	}
	return epoch(f), true
}

// epoch reads a number since the Unix epoch, its unit told by magnitude.
func epoch(f float64) time.Time {
	switch a := math.Abs(f); {
	case a >= 1e17:
		return time.Unix(0, int64(f))
	case a >= 1e14:
		return time.UnixMicro(int64(f))
	case a >= 1e11:
		return time.Unix(0, int64(f*1e6))
	default:
		return time.Unix(0, int64(f*1e9))
	}
}

// sample picks n of txs uniformly without replacement.
func sample(txs []acceptedTx, n int, seed uint64) []acceptedTx {
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	// A Fisher-Yates shuffle of the positions stopped after n, the positions
	// it moved kept in a map: not a copy of the whole list, a run's largest.
	moved := make(map[int]int, n)
	at := func(k int) int {
		if p, ok := moved[k]; ok {
			return p
		}
		return k
	}
	c := make([]acceptedTx, n)
	for i := range n {
		j := i + rng.IntN(len(txs)-i)
		// Position i is never read again: only j's swap need be kept.
		c[i], moved[j] = txs[at(j)], at(i)
	}
	return c
}
