package loadgen

import (
	"context"
	"math"
	"testing"
	"time"
)

// The open loop's schedules, without a clock: the due offsets of the first
// n requests.
func dueOffsets(t *testing.T, rate float64, arrivals Arrivals, seed uint64, n int) []time.Duration {
	t.Helper()
	clock := newArrivalClock(rate, arrivals, seed)
	out := make([]time.Duration, n)
	for i := range out {
		var index int64
		index, out[i] = clock.next()
		if index != int64(i) {
			t.Fatalf("arrivalClock.next gave index %d for request %d", index, i)
		}
	}
	return out
}

func TestArrivalClockEvenIsExactlyOneOverTheRate(t *testing.T) {
	tests := []struct {
		rate float64
		i    int
		want time.Duration
	}{
		{rate: 1000, i: 0, want: 0},
		{rate: 1000, i: 1, want: time.Millisecond},
		{rate: 1000, i: 9999, want: 9999 * time.Millisecond},
		{rate: 3, i: 3, want: time.Second},        // no rounding builds up
		{rate: 0.25, i: 2, want: 8 * time.Second}, // slower than one a second
	}
	for _, tt := range tests {
		got := dueOffsets(t, tt.rate, ArrivalsEven, 1, tt.i+1)[tt.i]
		if got != tt.want {
			t.Errorf("rate %g, request %d: due at %v, want %v", tt.rate, tt.i, got, tt.want)
		}
	}
}

// Poisson arrivals keep the mean rate, but their gaps spread as an
// exponential distribution's do: standard deviation equal to the mean, and
// about 1/e of the gaps longer than the mean (even gaps: none).
func TestArrivalClockPoissonGaps(t *testing.T) {
	const rate, n = 1000.0, 20000
	mean := float64(time.Second) / rate
	due := dueOffsets(t, rate, ArrivalsPoisson, 42, n)
	if due[0] != 0 {
		t.Errorf("first request due at %v, want 0", due[0])
	}
	var sum, sumSq float64
	longer := 0
	for i := 1; i < n; i++ {
		gap := float64(due[i] - due[i-1])
		if gap < 0 {
			t.Fatalf("request %d due before request %d", i, i-1)
		}
		sum += gap
		sumSq += gap * gap
		if gap > mean {
			longer++
		}
	}
	gaps := float64(n - 1)
	gotMean := sum / gaps
	sd := math.Sqrt(sumSq/gaps - gotMean*gotMean)
	// With 20,000 gaps the sample mean is within 2 % of the true one with
	// overwhelming odds (its standard error is 0.7 %); the seed is fixed.
	if math.Abs(gotMean-mean) > 0.02*mean {
		t.Errorf("mean gap %.0f ns, want %.0f ± 2 %%", gotMean, mean)
	}
	if math.Abs(sd-mean) > 0.05*mean {
		t.Errorf("gaps' standard deviation %.0f ns, want about the mean, %.0f ± 5 %%", sd, mean)
	}
	if frac := float64(longer) / gaps; math.Abs(frac-1/math.E) > 0.02 {
		t.Errorf("%.3f of the gaps longer than the mean, want about 1/e = %.3f", frac, 1/math.E)
	}
}

func TestArrivalClockPoissonFollowsTheSeed(t *testing.T) {
	a := dueOffsets(t, 500, ArrivalsPoisson, 7, 100)
	b := dueOffsets(t, 500, ArrivalsPoisson, 7, 100)
	c := dueOffsets(t, 500, ArrivalsPoisson, 8, 100)
	same, differs := true, false
	for i := range a {
		same = same && a[i] == b[i]
		differs = differs || a[i] != c[i]
	}
	if !same {
		t.Error("two schedules with seed 7 differ; --seed must reproduce a run's arrivals")
	}
	if !differs {
		t.Error("seeds 7 and 8 gave the same schedule")
	}
}

// The open loop's scheduler follows Config.Arrivals. Its start is an hour
// ago, so every request is already due and nothing waits on the clock.
func TestScheduleFollowsArrivals(t *testing.T) {
	tests := []struct {
		arrivals Arrivals
		distinct int // at least this many different gaps among the 499
	}{
		{ArrivalsEven, 0},
		{ArrivalsPoisson, 400},
	}
	for _, tt := range tests {
		t.Run(string(tt.arrivals), func(t *testing.T) {
			cfg := testConfig("http://127.0.0.1:8080")
			cfg.Rate, cfg.Count, cfg.Duration, cfg.Arrivals = 1000, 500, 0, tt.arrivals
			r := &runner{cfg: &cfg, seed: 42}
			due := make(chan time.Time, cfg.Count)
			start := time.Now().Add(-time.Hour)
			r.schedule(t.Context(), start, due)
			var times []time.Time
			for d := range due {
				times = append(times, d)
			}
			if len(times) != int(cfg.Count) {
				t.Fatalf("%d due times, want %d", len(times), cfg.Count)
			}
			gaps := map[time.Duration]bool{}
			for i := 1; i < len(times); i++ {
				gaps[times[i].Sub(times[i-1])] = true
			}
			switch {
			case tt.distinct == 0 && len(gaps) > 1:
				// Whole nanoseconds: 1 ms apart exactly at 1,000/s.
				t.Errorf("even arrivals: %d different gaps, want one (1 ms)", len(gaps))
			case len(gaps) < tt.distinct:
				t.Errorf("%s arrivals: %d different gaps among %d, want at least %d", tt.arrivals, len(gaps), len(times)-1, tt.distinct)
			}
		})
	}
}

// The schedule's window is what an open loop's rates are divided by: n
// requests at a rate span n gaps, n/rate, or the whole --duration. Every request is already due (the
// start is an hour ago), so nothing waits on the clock.
func TestScheduleWindow(t *testing.T) {
	tests := []struct {
		name     string
		count    int64
		duration time.Duration
		arrivals Arrivals
		want     time.Duration
		sent     int // 0: not checked (Poisson's depends on the draws)
	}{
		{name: "even count", count: 10, arrivals: ArrivalsEven, want: 10 * time.Millisecond, sent: 10},
		{name: "even duration", duration: 25 * time.Millisecond, arrivals: ArrivalsEven, want: 25 * time.Millisecond, sent: 25},
		// Not the due time of an eleventh request, whose mean is 10 ms
		// but whose draws are mostly less (TestSchedulePoissonCountRate).
		{name: "poisson count", count: 10, arrivals: ArrivalsPoisson, want: 10 * time.Millisecond, sent: 10},
		{name: "poisson duration", duration: 25 * time.Millisecond, arrivals: ArrivalsPoisson, want: 25 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig("http://127.0.0.1:8080")
			cfg.Rate, cfg.Count, cfg.Duration, cfg.Arrivals = 1000, tt.count, tt.duration, tt.arrivals
			r := &runner{cfg: &cfg, seed: 42}
			due := make(chan time.Time, 1000)
			r.schedule(t.Context(), time.Now().Add(-time.Hour), due)
			sent := len(due)
			if tt.sent > 0 && sent != tt.sent {
				t.Errorf("%d requests scheduled, want %d", sent, tt.sent)
			}
			if r.window != tt.want {
				t.Errorf("window %v, want %v", r.window, tt.want)
			}
		})
	}
}

// An interrupted schedule sets no window: the run's elapsed time is then
// the wall clock's, up to the interruption.
func TestScheduleWindowInterrupted(t *testing.T) {
	cfg := testConfig("http://127.0.0.1:8080")
	cfg.Rate, cfg.Count, cfg.Duration = 1, 0, time.Hour
	r := &runner{cfg: &cfg, seed: 42}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	due := make(chan time.Time, 10)
	r.schedule(ctx, time.Now(), due)
	if r.window != 0 {
		t.Errorf("window %v after an interruption, want 0", r.window)
	}
}

// A count-bound Poisson run's rate, over many seeds, is not biased high:
// with answers in no time it is n over the longer of the schedule's window
// and the last request's due time. Dividing by the due time of a request
// n+1 instead, as until 2026-12-06, gave 10/9 of the rate on average for
// n = 10 (1.11); n/rate gives at most the rate.
func TestSchedulePoissonCountRate(t *testing.T) {
	const n, rate, seeds = 10, 1000.0, 2000
	var sum float64
	for seed := uint64(1); seed <= seeds; seed++ {
		cfg := testConfig("http://127.0.0.1:8080")
		cfg.Rate, cfg.Count, cfg.Duration, cfg.Arrivals = rate, n, 0, ArrivalsPoisson
		r := &runner{cfg: &cfg, seed: seed}
		due := make(chan time.Time, n)
		start := time.Now().Add(-time.Hour)
		r.schedule(t.Context(), start, due)
		var last time.Duration
		for d := range due {
			last = d.Sub(start)
		}
		sum += n / max(last, r.window).Seconds()
	}
	if mean := sum / seeds; mean > rate*1.01 || mean < rate*0.85 {
		t.Errorf("mean rate over %d seeds %.0f/s for --rate %.0f --count %d, want at most the rate and not far below", seeds, mean, rate, n)
	}
}
