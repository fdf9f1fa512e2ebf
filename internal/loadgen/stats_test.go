package loadgen

import (
	"math"
	"testing"
	"time"
)

// TestPercentilesAtSmallCounts: a percentile p of n values is the smallest
// one that at least p% of them do not exceed, the ceil(p·n/100)-th in order
// (nearest rank). HdrHistogram-go rounds p·n/100 to the nearest rank
// instead, one rank low whenever its fraction is under a half: the p90 of 6
// values was the 5th (83% of them), the p99 of 60 the 59th (one of the 60,
// 1.7%, above it). The values here (1 to n µs) are exact in the histogram.
func TestPercentilesAtSmallCounts(t *testing.T) {
	tests := []struct {
		n                       int
		p50, p90, p99, p999, mx int // ranks, 1 = the smallest value
	}{
		{1, 1, 1, 1, 1, 1},
		{2, 1, 2, 2, 2, 2},
		{6, 3, 6, 6, 6, 6},
		{10, 5, 9, 10, 10, 10},
		{16, 8, 15, 16, 16, 16},
		{60, 30, 54, 60, 60, 60},
		{100, 50, 90, 99, 100, 100},
		{160, 80, 144, 159, 160, 160},
		{1600, 800, 1440, 1584, 1599, 1600},
		{2000, 1000, 1800, 1980, 1998, 2000},
	}
	for _, tt := range tests {
		l := newLatency()
		// In reverse: the order of recording must not matter.
		for i := tt.n; i >= 1; i-- {
			l.record(time.Duration(i) * time.Microsecond)
		}
		p := l.summary()
		got := []float64{p.P50, p.P90, p.P99, p.P999, p.Max}
		want := []int{tt.p50, tt.p90, tt.p99, tt.p999, tt.mx}
		for i, name := range []string{"p50", "p90", "p99", "p99.9", "max"} {
			if w := float64(want[i]) / 1000; math.Abs(got[i]-w) > 1e-9 {
				t.Errorf("n=%d %s: got %.3f ms, want %.3f ms (the %d-th of %d)", tt.n, name, got[i], w, want[i], tt.n)
			}
		}
		if p.Count != int64(tt.n) {
			t.Errorf("n=%d count: got %d", tt.n, p.Count)
		}
	}
}
