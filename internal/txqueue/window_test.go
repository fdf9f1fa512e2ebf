package txqueue

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/acme-payments/platform/internal/logging"
	"github.com/acme-payments/platform/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// BenchmarkChargeToRecordWindow measures the window in which a kill -9 of
// the connector repeats a round of charges: from the moment a round's one
// write to the PSP (a pipe, like the connector's stdout) returns to the
// moment the round's record starts its write to Redis. It reports the
// window's p50 and p90 over b.N rounds of 16, with a real Redis; ns/op is
// the time per round.
func BenchmarkChargeToRecordWindow(b *testing.B) {
	srv := redistest.Start(b)
	marks := &windowMarks{}
	opts, err := redis.ParseURL(srv.URL)
	if err != nil {
		b.Fatal(err)
	}
	opts.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &markingConn{Conn: conn, marks: marks}, nil
	}
	rdb := redis.NewClient(opts)
	b.Cleanup(func() { rdb.Close() })

	q := NewQueue(rdb, time.Hour)
	var last string
	for i := range 16 * b.N {
		res, err := q.Enqueue(context.Background(), Transaction{UserID: 1, Amount: int64(1 + i), Currency: "USD"}, "")
		if err != nil {
			b.Fatal(err)
		}
		last = res.ID
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { pr.Close(); pw.Close() })
	go func() { _, _ = io.Copy(io.Discard, pr) }() // until the cleanup closes pr

	cfg := ConsumerConfig{Name: "window", BatchSize: 64, Chargers: 16, Block: 100 * time.Millisecond}
	c, err := NewConsumer(rdb, cfg, pipePSP{w: pw, marks: marks}, logging.New(io.Discard, "window-bench", slog.LevelInfo))
	if err != nil {
		b.Fatal(err)
	}
	marks.reset()
	b.ResetTimer()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	deadline := time.Now().Add(time.Minute)
	for {
		rec, err := q.Status(context.Background(), last)
		if err == nil && rec.Status == StatusProcessed {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("transaction %s not processed within a minute (%+v, %v)", last, rec, err)
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	windows := marks.windows()
	if len(windows) == 0 {
		b.Fatal("no round was charged and then recorded")
	}
	slices.Sort(windows)
	b.ReportMetric(float64(windows[len(windows)/2].Nanoseconds())/1000, "p50-window-µs")
	b.ReportMetric(float64(windows[len(windows)*9/10].Nanoseconds())/1000, "p90-window-µs")
}

// windowMarks records, in order, when a round's charge returned (charged)
// and when a write to Redis began (sent).
type windowMarks struct {
	mu    sync.Mutex
	at    []time.Time
	sends []bool
}

func (m *windowMarks) mark(sent bool) {
	now := time.Now()
	m.mu.Lock()
	m.at, m.sends = append(m.at, now), append(m.sends, sent)
	m.mu.Unlock()
}

func (m *windowMarks) reset() {
	m.mu.Lock()
	m.at, m.sends = nil, nil
	m.mu.Unlock()
}

// windows returns, for each charge, the time to the next write to Redis.
func (m *windowMarks) windows() []time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []time.Duration
	for i := range m.at {
		if m.sends[i] {
			continue
		}
		if j := slices.Index(m.sends[i+1:], true); j >= 0 {
			out = append(out, m.at[i+1+j].Sub(m.at[i]))
		}
	}
	return out
}

// markingConn marks the start of every write to Redis. It keeps
// SyscallConn, so that go-redis still checks a pooled connection's health
// with a syscall before it uses it, as it does on a plain connection.
type markingConn struct {
	net.Conn
	marks *windowMarks
}

func (c *markingConn) Write(p []byte) (int, error) {
	c.marks.mark(true)
	return c.Conn.Write(p)
}

func (c *markingConn) SyscallConn() (syscall.RawConn, error) {
	return c.Conn.(syscall.Conn).SyscallConn()
}

// pipePSP writes a round's contract lines to w in one write, like the
// connector's line PSP, and marks when that write returned.
type pipePSP struct {
	w     io.Writer
	marks *windowMarks
}

func (p pipePSP) Charge(ctx context.Context, m Message) error {
	errs := []error{nil}
	p.ChargeRound(ctx, []Message{m}, errs)
	return errs[0]
}

func (p pipePSP) ChargeRound(_ context.Context, round []Message, errs []error) {
	buf := make([]byte, 0, 80*len(round))
	for range round {
		buf = append(buf, "==> Making transaction with PSP: User ID: 1, Amount: 100, Currency: USD\n"...)
	}
	_, err := p.w.Write(buf)
	p.marks.mark(false)
	for i := range round {
		errs[i] = err
	}
}

// BenchmarkRecordRound measures one round's record call (16 transactions,
// as CHARGE_CONCURRENCY's default) against a real Redis, without and with
// the renewal of the lease on a next round of 16: the cost of the renewal
// per round is the difference. The same keys are recorded again each time
// (their entries are acknowledged after the first), and the next round's
// entries stay pending and claimed by this consumer, as in a long batch.
func BenchmarkRecordRound(b *testing.B) {
	for _, tc := range []struct {
		fsync string
		renew bool
	}{{"always", false}, {"always", true}, {"no", false}, {"no", true}} {
		b.Run(map[bool]string{false: "record", true: "record+renew-next"}[tc.renew]+"/appendfsync-"+tc.fsync, func(b *testing.B) {
			renew := tc.renew
			srv := redistest.StartAppendfsync(b, tc.fsync)
			rdb, err := Connect(context.Background(), srv.URL)
			if err != nil {
				b.Fatal(err)
			}
			defer rdb.Close()
			ctx := context.Background()
			q := NewQueue(rdb, time.Hour)
			batch := readAsDeadConsumer(b, q, 32)
			claimAsDeadConsumer(b, rdb, batch, time.Hour)
			var next []Message
			if renew {
				next = batch[16:]
			}
			rec := newRecordCall("dead", "dead", time.Hour, batch[:16], nil, next)
			b.ResetTimer()
			for range b.N {
				rec.args[0] = time.Now().UnixNano()
				if err := recordScript.Run(ctx, rdb, rec.keys, rec.args...).Err(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
