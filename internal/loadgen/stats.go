package loadgen

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds: 1 µs to 10 min, three significant digits.
const (
	histMin    = 1
	histMax    = int64(10 * time.Minute / time.Microsecond)
	histDigits = 3
)

// latency is an HdrHistogram of microseconds that many workers record into.
type latency struct {
	mu      sync.Mutex
	h       *hdrhistogram.Histogram
	clamped int64 // values above histMax, recorded as histMax
}

func newLatency() *latency {
	return &latency{h: hdrhistogram.New(histMin, histMax, histDigits)}
}

// record adds one duration; values outside the range are clamped so that
// nothing is dropped, and those above it are counted (Percentiles.Clamped).
func (l *latency) record(d time.Duration) {
	us := d.Microseconds()
	over := us > histMax
	us = min(max(us, histMin), histMax)
	l.mu.Lock()
	_ = l.h.RecordValue(us)
	if over {
		l.clamped++
	}
	l.mu.Unlock()
}

// Percentiles summarises one latency distribution in milliseconds.
type Percentiles struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p99_9_ms"`
	Max   float64 `json:"max_ms"`
	// Clamped counts values above the histogram's 10 minutes, recorded as
	// 10 minutes: when it is not 0, Max and the top percentiles are floors.
	Clamped int64 `json:"clamped,omitempty"`
}

func (l *latency) summary() Percentiles {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.h.TotalCount() == 0 {
		return Percentiles{}
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	v := nearestRanks(l.h, []int64{500, 900, 990, 999})
	return Percentiles{
		Count:   l.h.TotalCount(),
		Mean:    l.h.Mean() / 1000,
		P50:     ms(v[0]),
		P90:     ms(v[1]),
		P99:     ms(v[2]),
		P999:    ms(v[3]),
		Max:     ms(l.h.Max()),
		Clamped: l.clamped,
	}
}

// nearestRanks returns h's percentiles given in thousandths (990: p99),
// ascending: each the value of rank ceil(p·n/1000) among h's n values, the
// smallest that at least p‰ of them do not exceed (as HdrHistogram's
// highest equivalent value, like its Max). HdrHistogram-go's own
// ValueAtPercentile rounds p·n to the nearest rank instead, one rank low
// whenever its fraction is under a half: the p90 of 6 values was the 5th,
// the p99 of 60 the 59th, with one of the 60 above it
// (TestPercentilesAtSmallCounts). h must not be empty.
func nearestRanks(h *hdrhistogram.Histogram, perMille []int64) []int64 {
	n := h.TotalCount()
	out := make([]int64, len(perMille))
	next, seen := 0, int64(0)
	for _, bar := range h.Distribution() {
		seen += bar.Count
		for next < len(out) && seen >= max((perMille[next]*n+999)/1000, 1) {
			out[next] = bar.To
			next++
		}
		if next == len(out) {
			break
		}
	}
	return out
}

// errorCounts counts failures by a short key such as "tx 422" or
// "token timeout".
type errorCounts struct {
	mu sync.Mutex
	m  map[string]int64
	n  atomic.Int64
}

func (e *errorCounts) add(key string) { e.addN(key, 1) }

// addN counts n errors of one kind.
func (e *errorCounts) addN(key string, n int64) {
	e.n.Add(n)
	e.mu.Lock()
	if e.m == nil {
		e.m = make(map[string]int64)
	}
	e.m[key] += n
	e.mu.Unlock()
}

func (e *errorCounts) snapshot() map[string]int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]int64, len(e.m))
	for k, v := range e.m {
		out[k] = v
	}
	return out
}

// transportKind names a transport error briefly enough to be a report key.
func transportKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no local port"
	}
	if s := err.Error(); len(s) >= 3 && s[len(s)-3:] == "EOF" {
		return "EOF"
	}
	return "transport"
}

func statusKey(what string, status int) string { return fmt.Sprintf("%s %d", what, status) }

// sortedKeys returns m's keys in order, for stable text output.
func sortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
