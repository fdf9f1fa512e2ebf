package loadgen

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"
)

// Report is the outcome of one run; it is also the --json output.
type Report struct {
	Mode        Mode    `json:"mode"`
	Target      string  `json:"target"`
	Concurrency int     `json:"concurrency"`
	Merchants   int     `json:"merchants"`
	Rate        float64 `json:"rate,omitempty"`
	// Arrivals is how the open loop spaced its requests ("even" or
	// "poisson"); empty for a closed loop.
	Arrivals Arrivals `json:"arrivals,omitempty"`
	// Seed is the seed of the run's random amounts, currencies, Poisson
	// arrivals and verification sample: --seed, or the one drawn at random
	// when --seed was 0. Passed as --seed, it repeats the arrivals, each
	// worker's sequence of amounts and currencies, and which positions of
	// the accepted list are sampled (which transactions those are depends
	// on how many each worker sent, which varies in a closed loop).
	Seed uint64 `json:"seed"`
	// IdempotencyKeys: every transaction carried an Idempotency-Key.
	IdempotencyKeys bool `json:"idempotency_keys,omitempty"`
	// Elapsed is the load phase in seconds: first request sent to last
	// response received, or, for an open loop, the span of its schedule if
	// that is longer (--duration, or --count over --rate), so that a rate
	// run with few requests reports its rate. It is then more than the wall
	// clock's time: --rate 0.001 --count 1 reports 1000 s.
	Elapsed     float64 `json:"elapsed_s"`
	Interrupted bool    `json:"interrupted,omitempty"`
	// LateStarts counts an open loop's requests that a worker took up more
	// than 10 ms after their due time (every worker was busy, or the
	// generator short of CPU), and MaxStartLag is the largest such delay:
	// the schedule was not kept. Their latency counts the wait from the due
	// time, and the rate achieved is below Rate.
	LateStarts  int64   `json:"late_starts,omitempty"`
	MaxStartLag float64 `json:"max_start_lag_ms,omitempty"`

	// Tokens and TokensPerSec count the logins of the load phase; the
	// merchants' first logins, before the clock starts, are
	// TokensBeforeLoad, and re-logins while verifying count nowhere.
	// With --duration, TokensPerSec and AcceptedPerSec count the requests
	// sent within the duration that succeeded, over it: requests still in
	// flight at its end keep Elapsed open until their answer (a timeout: up
	// to --timeout) while the other workers have stopped.
	Tokens           int64   `json:"tokens"`
	TokensPerSec     float64 `json:"tokens_per_s"`
	TokensBeforeLoad int64   `json:"tokens_before_load,omitempty"`
	Sent             int64   `json:"tx_sent"`
	Accepted         int64   `json:"tx_accepted"`
	AcceptedPerSec   float64 `json:"tx_accepted_per_s"`

	// Latency holds "token", "tx" and "enqueue_to_processed" distributions,
	// of successes (a transaction's from its first try to its accepted
	// answer), and "tx_not_accepted": each try of a transaction that ended
	// without a 200 (another status, a transport error or time-out), from
	// that try's send, to show how fast the failures came.
	Latency map[string]Percentiles `json:"latency_ms"`
	// Errors counts failures by kind: "tx 503", "token 429", "tx timeout",
	// "status 404", ...
	Errors map[string]int64 `json:"errors"`

	Verification *Verification `json:"verification,omitempty"`

	// CPU is the CPU time of the watched process tree during the load.
	CPU *CPUUsage `json:"cpu,omitempty"`
}

// fillLoad sets the load phase's counts, rates and latencies.
func (r *runner) fillLoad(rep *Report) {
	rep.Tokens = r.tokensOK.Load()
	rep.TokensBeforeLoad = r.tokensBefore
	rep.Sent = r.txSent.Load()
	rep.Accepted = r.txAccepted.Load()
	rep.LateStarts = r.lateStarts.Load()
	rep.MaxStartLag = float64(r.maxStartLag.Load()) / float64(time.Millisecond)
	if d := r.cfg.Duration; d > 0 && rep.Elapsed > 0 {
		// The requests sent within the duration, over it (over less
		// when the run was stopped before its end).
		span := min(d.Seconds(), rep.Elapsed)
		rep.TokensPerSec = float64(r.tokensInWindow.Load()) / span
		rep.AcceptedPerSec = float64(r.txAcceptedInWindow.Load()) / span
	} else if rep.Elapsed > 0 {
		rep.TokensPerSec = float64(rep.Tokens) / rep.Elapsed
		rep.AcceptedPerSec = float64(rep.Accepted) / rep.Elapsed
	}
	rep.Latency = map[string]Percentiles{
		"token":           r.tokenLat.summary(),
		"tx":              r.txLat.summary(),
		"tx_not_accepted": r.txNotAcceptedLat.summary(),
	}
}

// Err is nil when the run kept every promise: it got work done (a token or
// an accepted transaction), every checked accepted transaction was
// processed, none failed, and the backlog drained within the drain timeout.
// Otherwise it says what went wrong.
func (rep *Report) Err() error {
	v := rep.Verification
	switch {
	case v != nil && v.Interrupted:
		return errors.New("interrupted while verifying: the figures are incomplete, not a verdict")
	case rep.Interrupted:
		return errors.New("interrupted before verification")
	case rep.Mode == ModeTokens && rep.Tokens == 0:
		return errors.New("no token was issued (see errors)")
	case rep.Mode == ModeTransactions && rep.Accepted == 0:
		return errors.New("no transaction was accepted (see errors)")
	case v == nil:
		return nil
	}
	var errs []error
	if n := v.Lost(); n > 0 {
		var expiry string
		if v.Missing > 0 {
			// A run longer than STATUS_TTL finds its first records gone.
			expiry = "; a record is kept for STATUS_TTL from its transaction's enqueue (1h in the local stack's stack.env), so one not found was never queued or had expired"
		}
		errs = append(errs, fmt.Errorf("%d of %d checked accepted transactions were never processed (%d still queued, %d not found)%s",
			n, v.Checked, v.Queued, v.Missing, expiry))
	}
	if v.Failed > 0 {
		errs = append(errs, fmt.Errorf("%d of %d checked transactions failed", v.Failed, v.Checked))
	}
	if v.Unverified > 0 {
		errs = append(errs, fmt.Errorf("%d of %d checked transactions could not be looked up (see errors): not known to be processed", v.Unverified, v.Checked))
	}
	if v.MaybeQueuedUnprocessed > 0 {
		errs = append(errs, fmt.Errorf("%d of the %d transactions answered 503 \"may be queued\" and found queued were not processed (failed, or still queued)",
			v.MaybeQueuedUnprocessed, v.MaybeQueuedFound))
	}
	if v.MaybeQueuedUnverified > 0 {
		errs = append(errs, fmt.Errorf("%d transactions answered 503 \"may be queued\" could not be looked up (see errors): not known whether they were queued", v.MaybeQueuedUnverified))
	}
	if n := rep.Errors[errTxWithoutID]; n > 0 {
		errs = append(errs, fmt.Errorf("%d answers of 200 carried no transaction id: accepted, and never checked", n))
	}
	if v.DeadLettered > 0 && v.Checked < v.Accepted {
		// With every status checked they are among the failed already.
		errs = append(errs, fmt.Errorf("%d of %d accepted transactions were dead-lettered (failed) by the connector (statuses checked: %d)",
			v.DeadLettered, v.Accepted, v.Checked))
	}
	if v.DeadLetterUnread && v.Checked < v.Accepted {
		errs = append(errs, errors.New("the dead-letter stream could not be read (see errors): the transactions not looked up are not known to be processed"))
	}
	if v.DuplicateIDs > 0 {
		errs = append(errs, fmt.Errorf("%d accepted answers repeated an id of an earlier one", v.DuplicateIDs))
	}
	if v.DrainMethod != "none" && !v.Drained {
		errs = append(errs, errors.New("the backlog did not drain within the drain timeout"))
	}
	if want := v.Accepted + v.MaybeQueuedFoundByID; v.Checked < v.Accepted && v.Drained && v.DrainMethod == "queue" && v.StreamAdded < want {
		// With statuses not checked, or only a sample of them, the probe
		// vouches for the rest, and fewer entries reached its stream than
		// were accepted, plus those answered "may be queued" that were
		// found queued all the same: without them, as many of those as
		// accepted ones were lost hid the loss. (Not the group's count,
		// which a Redis restart leaves too low.)
		also := ""
		if v.MaybeQueuedFoundByID > 0 {
			also = fmt.Sprintf(" and the %d answered \"may be queued\" found queued", v.MaybeQueuedFoundByID)
		}
		errs = append(errs, fmt.Errorf("the queue probe's stream got %d entries during the run, fewer than the %d accepted%s (statuses checked: %d): transactions were lost, or the probe watches another stream or Redis",
			v.StreamAdded, v.Accepted, also, v.Checked))
	}
	return errors.Join(errs...)
}

// latencyKinds are the report's latency distributions, in the order the
// text report prints them (one without a count is left out).
var latencyKinds = []string{"token", "tx", "tx_not_accepted", "enqueue_to_processed"}

// LatencyKinds returns the keys of Report.Latency, in the order the text
// report prints them, for readers of the report that print them too
// (bench/benchtool's summary).
func LatencyKinds() []string { return slices.Clone(latencyKinds) }

// WriteText writes the report for people.
func (rep *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	loop := "closed loop"
	if rep.Rate > 0 {
		loop = fmt.Sprintf("open loop at %g/s (%s arrivals)", rep.Rate, rep.Arrivals)
	}
	keys := ""
	if rep.IdempotencyKeys {
		keys = ", idempotency keys"
	}
	fmt.Fprintf(&b, "mode %s, %s, concurrency %d, merchants %d, target %s, seed %d%s\n", rep.Mode, loop, rep.Concurrency, rep.Merchants, rep.Target, rep.Seed, keys)
	before := ""
	if rep.TokensBeforeLoad > 0 {
		before = fmt.Sprintf("; %d before the load", rep.TokensBeforeLoad)
	}
	fmt.Fprintf(&b, "load  %.2fs  tokens %d (%.0f/s%s)  tx sent %d  accepted %d (%.0f/s)\n",
		rep.Elapsed, rep.Tokens, rep.TokensPerSec, before, rep.Sent, rep.Accepted, rep.AcceptedPerSec)
	if rep.LateStarts > 0 {
		fmt.Fprintf(&b, "behind schedule: %d requests started more than 10 ms after their due time (at most %.1f ms): every worker (-c) was busy, or the generator short of CPU; their latency counts the wait\n",
			rep.LateStarts, rep.MaxStartLag)
	}
	if v := rep.Verification; v != nil {
		fmt.Fprintf(&b, "verify  checked %d of %d  processed %d  failed %d  queued %d  missing %d  unverified %d  (%s, %.1fs)\n",
			v.Checked, v.Accepted, v.Processed, v.Failed, v.Queued, v.Missing, v.Unverified, v.Via, v.VerifySeconds)
		if v.MaybeQueued > 0 {
			unprocessed := ""
			if v.MaybeQueuedUnprocessed > 0 {
				unprocessed = fmt.Sprintf(", and %d of those not processed", v.MaybeQueuedUnprocessed)
			}
			if v.maybeQueuedNotLookedUp {
				unprocessed += "; those with an id not looked up (--verify none)"
			}
			fmt.Fprintf(&b, "maybe queued  %d answered 503 \"may be queued\"; %d of them were queued all the same (looked up by id, or replayed for their Idempotency-Key)%s\n",
				v.MaybeQueued, v.MaybeQueuedFound, unprocessed)
		}
		if v.Drained {
			fmt.Fprintf(&b, "drain  (%s) drained %.3fs after the load  processed %.0f/s", v.DrainMethod, v.DrainSeconds, v.ProcessedPerSec)
			if v.DrainMethod == "queue" {
				fmt.Fprintf(&b, "  stream got %d", v.StreamAdded)
			}
			b.WriteString("\n")
			if v.DeadLettered > 0 {
				fmt.Fprintf(&b, "dead-lettered  %d accepted transactions of this run are in the dead-letter stream (failed)\n", v.DeadLettered)
			}
		} else if v.DrainMethod != "none" {
			fmt.Fprintf(&b, "drain  (%s) NOT drained within the drain timeout\n", v.DrainMethod)
		}
	}
	fmt.Fprintf(&b, "latency ms %-22s %8s %8s %8s %8s %8s %8s %9s\n", "", "p50", "p90", "p99", "p99.9", "max", "mean", "count")
	for _, k := range latencyKinds {
		p, ok := rep.Latency[k]
		if !ok || p.Count == 0 {
			continue
		}
		fmt.Fprintf(&b, "           %-22s %8.3f %8.3f %8.3f %8.3f %8.3f %8.3f %9d\n", k, p.P50, p.P90, p.P99, p.P999, p.Max, p.Mean, p.Count)
	}
	for _, k := range latencyKinds {
		if p := rep.Latency[k]; p.Clamped > 0 {
			fmt.Fprintf(&b, "           %s: %d above 10 min, counted as 10 min (max and top percentiles are floors)\n", k, p.Clamped)
		}
	}
	if c := rep.CPU; c != nil {
		n := rep.Accepted
		if rep.Mode == ModeTokens {
			n = rep.Tokens
		}
		b.WriteString(c.line(n))
	}
	if len(rep.Errors) == 0 {
		b.WriteString("errors none\n")
	} else {
		b.WriteString("errors")
		for _, k := range sortedKeys(rep.Errors) {
			fmt.Fprintf(&b, "  %s: %d", k, rep.Errors[k])
		}
		b.WriteString("\n")
	}
	switch verdict, why := rep.Verdict(); verdict {
	case VerdictFail:
		fmt.Fprintf(&b, "FAIL: %s\n", why)
	case VerdictPass:
		if why != "" {
			fmt.Fprintf(&b, "OK: %s\n", why)
		}
	case VerdictNotVerified:
		fmt.Fprintf(&b, "NOT VERIFIED: %s\n", why)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// The run's verdicts, as Verdict and the --json output's "verdict" give them.
const (
	VerdictPass        = "pass"
	VerdictFail        = "fail"
	VerdictNotVerified = "not verified"
)

// Verdict is the run's outcome and why, one line: VerdictFail with Err's
// reasons (the command then exits 1); VerdictPass with what was checked
// ("" when nothing was to be, as for tokens); or VerdictNotVerified when
// nothing could be: the run was interrupted, or --verify none and no queue
// probe. With a probe and not every status checked (--verify none or
// sample), a stream that got fewer entries than were accepted, plus those
// answered "may be queued" found queued by their ids, fails the run (Err).
func (rep *Report) Verdict() (verdict, why string) {
	if rep.Interrupted || rep.Verification != nil && rep.Verification.Interrupted {
		// Stopped: no verdict either way (Err says why, and the command
		// exits 1).
		return VerdictNotVerified, rep.Err().Error()
	}
	if err := rep.Err(); err != nil {
		return VerdictFail, strings.ReplaceAll(err.Error(), "\n", "; ")
	}
	switch v := rep.Verification; {
	case v == nil:
		return VerdictPass, ""
	case v.Checked > 0:
		return VerdictPass, "every checked accepted transaction was processed"
	case v.Drained:
		return VerdictPass, "the backlog drained (statuses not checked)"
	}
	return VerdictNotVerified, "--verify=none and no queue probe"
}

// line formats the CPU usage, largest first, with µs per request.
func (c *CPUUsage) line(requests int64) string {
	per := func(s float64) string {
		if requests == 0 {
			return ""
		}
		return fmt.Sprintf(" (%.0f µs/req)", s/float64(requests)*1e6)
	}
	names := make([]string, 0, len(c.Processes))
	var stack float64
	for k, v := range c.Processes {
		names = append(names, k)
		stack += v
	}
	sort.Slice(names, func(i, j int) bool { return c.Processes[names[i]] > c.Processes[names[j]] })
	var b strings.Builder
	b.WriteString("cpu s  ")
	for _, k := range names {
		fmt.Fprintf(&b, "%s %.2f%s  ", k, c.Processes[k], per(c.Processes[k]))
	}
	fmt.Fprintf(&b, "loadgen %.2f%s  other %.2f  (machine busy %.2f of %.2f)\n",
		c.Generator, per(c.Generator), max(c.MachineBusy-stack-c.Generator, 0), c.MachineBusy, c.MachineAvailable)
	return b.String()
}
