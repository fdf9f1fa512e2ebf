package txqueue

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acme-payments/platform/internal/logging"
	"github.com/acme-payments/platform/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// startRedis starts a private redis-server and returns it with a client made
// by Connect, closed at cleanup.
func startRedis(t *testing.T) (*redistest.Server, *redis.Client) {
	t.Helper()
	srv := redistest.Start(t)
	return srv, connectTo(t, srv)
}

// startQueue is startRedis with a Queue on the client that keeps status
// records for an hour, as most consumer tests start.
func startQueue(t *testing.T) (*redistest.Server, *redis.Client, *Queue) {
	t.Helper()
	srv, rdb := startRedis(t)
	return srv, rdb, NewQueue(rdb, time.Hour)
}

// connectTo returns a client of srv made by Connect, closed by t.Cleanup.
func connectTo(t *testing.T, srv *redistest.Server) *redis.Client {
	t.Helper()
	rdb, err := Connect(context.Background(), srv.URL)
	if err != nil {
		t.Fatalf("Connect(%s): %v", srv.URL, err)
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testLogger returns a JSON logger whose output is shown only if t fails.
func testLogger(t *testing.T) (*slog.Logger, *syncBuffer) {
	t.Helper()
	buf := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", buf.String())
		}
	})
	return logging.New(buf, "txqueue-test", slog.LevelDebug), buf
}

func TestConnect(t *testing.T) {
	tests := []struct {
		name     string
		url      string
		wantErr  string
		wantPool int
	}{
		{"empty", "", "REDIS_URL is empty", 0},
		{"bad scheme", "http://127.0.0.1:6379", `REDIS_URL: redis: invalid URL scheme "http": want`, 0},
		{"bad db", "redis://127.0.0.1:6379/x", "REDIS_URL: redis: invalid database number", 0},
		{"unparsable hides password", "redis://user:s3cret@[::1", "REDIS_URL: ", 0},
		{"no scheme", "garbage", `REDIS_URL: redis: invalid URL scheme "": want redis://host:port/db, rediss://host:port/db or unix:///path?db=N`, 0},
		{"port out of range", "redis://user:s3cret@127.0.0.1:99999/0", "REDIS_URL: port 99999 is not a port number (1-65535)", 0},
		{"port 0", "redis://127.0.0.1:0/0", "REDIS_URL: port 0 is not a port number (1-65535)", 0},
		{"tcp", "redis://127.0.0.1:6379/0", "", poolSize},
		{"tls", "rediss://127.0.0.1:6380/1", "", poolSize},
		{"unix", "unix:///tmp/redis.sock?db=2", "", poolSize},
		{"pool size from the URL", "unix:///tmp/redis.sock?db=2&pool_size=5", "", 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			rdb, err := Connect(ctx, tt.url)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("got error %v, want nil", err)
				}
				if got := rdb.Options().PoolSize; got != tt.wantPool {
					t.Errorf("pool size: got %d, want %d", got, tt.wantPool)
				}
				rdb.Close()
				return
			}
			if err == nil {
				rdb.Close()
				t.Fatalf("got nil error, want %q", tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Errorf("got error %q, want prefix %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q leaks the password", err)
			}
		})
	}
}

// TestParseURLErrorsDoNotQuoteThePassword: a password with a character a
// URL must escape ('/', '?', '#', '%': base64 has '/') ends the host early
// in net/url, and the error that followed quoted a piece of it ("invalid
// port \":Xk9pQ\" after host"), on the terminal and in the service's log at
// each restart. No piece of 3 characters of the password may appear; the
// error says to percent-encode, or is what the URL without its credentials
// gets.
func TestParseURLErrorsDoNotQuoteThePassword(t *testing.T) {
	const encode = "percent-encode"
	tests := []struct {
		name, url, password, want string
	}{
		{"slash", "redis://:Xk9pQ/z8wRt7YhUe2Lm@127.0.0.1:6379/0", "Xk9pQ/z8wRt7YhUe2Lm", encode},
		{"slash, user name", "redis://app:Xk9pQ/z8wRt7YhUe2Lm@127.0.0.1:6379/0", "Xk9pQ/z8wRt7YhUe2Lm", encode},
		{"slash after digits", "redis://:4711/z8wRt7YhUe2Lm@127.0.0.1:6379/0", "4711/z8wRt7YhUe2Lm", encode},
		{"question mark after digits", "redis://:4711?z8wRt7YhUe2Lm@127.0.0.1:6379/0", "4711?z8wRt7YhUe2Lm", encode},
		{"hash", "redis://:Xk9pQ#z8wRt7YhUe2Lm@127.0.0.1:6379/0", "Xk9pQ#z8wRt7YhUe2Lm", encode},
		{"percent", "redis://:Xk9%pQz8wRt7YhUe2Lm@127.0.0.1:6379/0", "Xk9%pQz8wRt7YhUe2Lm", encode},
		{"tls", "rediss://:Xk9pQ/z8wRt7YhUe2Lm@127.0.0.1:6380/0", "Xk9pQ/z8wRt7YhUe2Lm", encode},
		{"unix", "unix://app:Xk9pQ/z8wRt7YhUe2Lm@/tmp/redis.sock?db=1", "Xk9pQ/z8wRt7YhUe2Lm", encode},
		{"one slash", "redis:/:Xk9pQz8wRt7YhUe2Lm@127.0.0.1:6379", "Xk9pQz8wRt7YhUe2Lm", "redis: invalid database number"},
		{"bad db, good password", "redis://:Xk9pQz8wRt7YhUe2Lm@127.0.0.1:6379/x", "Xk9pQz8wRt7YhUe2Lm", `redis: invalid database number: "x"`},
		{"bad port, password with slash", "redis://:Xk9pQ/z8wRt7YhUe2Lm@127.0.0.1:99999/0", "Xk9pQ/z8wRt7YhUe2Lm", "port 99999 is not a port number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseURL(tt.url)
			if err == nil {
				t.Fatalf("got nil error, want one containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %q, want it to contain %q", err, tt.want)
			}
			for i := 0; i+3 <= len(tt.password); i++ {
				if piece := tt.password[i : i+3]; strings.Contains(err.Error(), piece) {
					t.Errorf("got error %q, which quotes %q of the password", err, piece)
					break
				}
			}
		})
	}
}

func TestEnqueueWritesStreamAndStatus(t *testing.T) {
	_, rdb := startRedis(t)
	ctx := context.Background()
	q := NewQueue(rdb, time.Hour)
	before := time.Now()
	res, err := q.Enqueue(ctx, Transaction{UserID: 1, Amount: 100, Currency: "USD", RequestID: "req-1"}, "")
	if err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	if !ValidID(res.ID) || res.Replayed {
		t.Fatalf("got %+v, want a fresh valid id", res)
	}

	entries, err := rdb.XRange(ctx, Stream, "-", "+").Result()
	if err != nil || len(entries) != 1 {
		t.Fatalf("XRANGE: got %d entries (err %v), want 1", len(entries), err)
	}
	want := map[string]string{"id": res.ID, "user_id": "1", "amount": "100", "currency": "USD", "request_id": "req-1"}
	for k, v := range want {
		if got := entries[0].Values[k]; got != v {
			t.Errorf("stream field %s: got %v, want %v", k, got, v)
		}
	}
	if _, ok := entries[0].Values["enqueued_at"]; !ok {
		t.Errorf("stream entry has no enqueued_at: %v", entries[0].Values)
	}

	rec, err := q.Status(ctx, res.ID)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if rec.ID != res.ID || rec.UserID != 1 || rec.Amount != 100 || rec.Currency != "USD" || rec.Status != StatusQueued {
		t.Errorf("got %+v, want id %s, user 1, 100 USD, queued", rec, res.ID)
	}
	if rec.CreatedAt.Before(before.Add(-time.Second)) || !rec.UpdatedAt.Equal(rec.CreatedAt) || rec.ProcessedAt != nil {
		t.Errorf("got created_at %v updated_at %v processed_at %v, want created now, updated = created, no processed_at",
			rec.CreatedAt, rec.UpdatedAt, rec.ProcessedAt)
	}
	ttl, err := rdb.PTTL(ctx, StatusKey(res.ID)).Result()
	if err != nil || ttl <= 0 || ttl > time.Hour {
		t.Errorf("status TTL: got %v (err %v), want in (0, 1h]", ttl, err)
	}
}

func TestStatusNotFound(t *testing.T) {
	_, rdb := startRedis(t)
	q := NewQueue(rdb, time.Hour)
	for _, id := range []string{"", "tx_", "tx_0123", "tx_0123456789abcdef0123456789ABCDEF", "../etc", newID()} {
		t.Run(id, func(t *testing.T) {
			_, err := q.Status(context.Background(), id)
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("got %v, want ErrNotFound", err)
			}
		})
	}
}

func TestEnqueueIdempotencyKey(t *testing.T) {
	_, rdb := startRedis(t)
	ctx := context.Background()
	q := NewQueue(rdb, time.Hour)
	first, err := q.Enqueue(ctx, Transaction{UserID: 1, Amount: 100, Currency: "USD"}, "key-1")
	if err != nil {
		t.Fatalf("first Enqueue: %v", err)
	}
	tests := []struct {
		name     string
		tx       Transaction
		key      string
		wantErr  error
		wantSame bool // same id as first, replayed
		wantXLen int64
	}{
		{"same key and body replays", Transaction{UserID: 1, Amount: 100, Currency: "USD", RequestID: "other"}, "key-1", nil, true, 1},
		{"same key other amount conflicts", Transaction{UserID: 1, Amount: 101, Currency: "USD"}, "key-1", ErrIdempotencyConflict, false, 1},
		{"same key other currency conflicts", Transaction{UserID: 1, Amount: 100, Currency: "EUR"}, "key-1", ErrIdempotencyConflict, false, 1},
		{"same key other user is independent", Transaction{UserID: 2, Amount: 100, Currency: "USD"}, "key-1", nil, false, 2},
		{"other key queues", Transaction{UserID: 1, Amount: 100, Currency: "USD"}, "key-2", nil, false, 3},
		{"no key always queues", Transaction{UserID: 1, Amount: 100, Currency: "USD"}, "", nil, false, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := q.Enqueue(ctx, tt.tx, tt.key)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			}
			if err == nil {
				if same := got.ID == first.ID; same != tt.wantSame || got.Replayed != tt.wantSame {
					t.Errorf("got %+v (first %s), want same/replayed = %v", got, first.ID, tt.wantSame)
				}
			}
			if n, err := rdb.XLen(ctx, Stream).Result(); err != nil || n != tt.wantXLen {
				t.Errorf("XLEN: got %d (err %v), want %d", n, err, tt.wantXLen)
			}
		})
	}
	ttl, err := rdb.PTTL(ctx, IdempotencyKey(1, "key-1")).Result()
	if err != nil || ttl <= DefaultIdempotencyTTL-time.Minute || ttl > DefaultIdempotencyTTL {
		t.Errorf("idempotency TTL: got %v (err %v), want about %v", ttl, err, DefaultIdempotencyTTL)
	}
}

// TestEnqueueRemembersAKeyForTheIdempotencyTTL: SetIdempotencyTTL sets the
// key's expiry; within it a repeat is a replay, after it the key is free
// again (a request with other parameters is queued, not a conflict).
func TestEnqueueRemembersAKeyForTheIdempotencyTTL(t *testing.T) {
	_, rdb := startRedis(t)
	ctx := context.Background()
	const ttl = 1500 * time.Millisecond
	q := NewQueue(rdb, time.Hour)
	q.SetIdempotencyTTL(ttl)
	tx := Transaction{UserID: 1, Amount: 100, Currency: "USD"}
	first, err := q.Enqueue(ctx, tx, "key-1")
	if err != nil {
		t.Fatalf("first Enqueue: %v", err)
	}
	got, err := rdb.PTTL(ctx, IdempotencyKey(1, "key-1")).Result()
	if err != nil || got <= ttl-500*time.Millisecond || got > ttl {
		t.Fatalf("the key's PTTL: got %v (err %v), want just under %v", got, err, ttl)
	}
	if again, err := q.Enqueue(ctx, tx, "key-1"); err != nil || again.ID != first.ID || !again.Replayed {
		t.Fatalf("a repeat within the TTL: got %+v, %v; want a replay of %s", again, err, first.ID)
	}
	// Redis expires the key on access once its time is up: wait for it,
	// bounded.
	deadline := time.Now().Add(10 * time.Second)
	for rdb.Exists(ctx, IdempotencyKey(1, "key-1")).Val() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the key still exists 10 s after its %v TTL", ttl)
		}
		time.Sleep(50 * time.Millisecond)
	}
	other := Transaction{UserID: 1, Amount: 101, Currency: "USD"}
	after, err := q.Enqueue(ctx, other, "key-1")
	if err != nil || after.ID == first.ID || after.Replayed {
		t.Fatalf("the key reused after the TTL with another amount: got %+v, %v; want a new transaction", after, err)
	}
	if n := rdb.XLen(ctx, Stream).Val(); n != 2 {
		t.Errorf("XLEN: got %d, want 2 (the first and the one after the TTL)", n)
	}
}

func TestEnqueueFailsFastWhenRedisIsDown(t *testing.T) {
	srv, rdb := startRedis(t)
	srv.Kill()
	q := NewQueue(rdb, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := q.Enqueue(ctx, Transaction{UserID: 1, Amount: 1, Currency: "USD"}, ""); err == nil {
		t.Fatal("got nil error with Redis down, want an error")
	}
	if _, err := q.Status(ctx, newID()); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("Status with Redis down: got %v, want a connection error", err)
	}
	// Redis down means no connection: nothing was sent, so nothing queued.
	if _, err := q.Enqueue(ctx, Transaction{UserID: 1, Amount: 1, Currency: "USD"}, ""); errors.Is(err, ErrOutcomeUnknown) {
		t.Errorf("with Redis down: got %v, want an error that says nothing was queued", err)
	}
}

// TestEnqueueTimeoutMayStillQueue: an enqueue that times out while Redis is
// busy fails with ErrOutcomeUnknown and the id the transaction gets, and
// Redis does run it once it is free: the transaction is queued although the
// call failed. An error without ErrOutcomeUnknown must mean nothing queued,
// so a client may only be told "try again" then.
func TestEnqueueTimeoutMayStillQueue(t *testing.T) {
	srv := redistest.Start(t)
	rdb := connectTo(t, srv)
	q := NewQueue(rdb, time.Hour)
	// A client whose calls give up after 200 ms, as core-api's after 1 s.
	impatient, err := Connect(context.Background(), srv.URL+"?read_timeout=200ms")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { impatient.Close() })
	ctx := context.Background()
	if err := enqueueScript.Load(ctx, impatient).Err(); err != nil {
		t.Fatal(err)
	}

	wait := srv.Busy(t, 1500*time.Millisecond)
	res, err := NewQueue(impatient, time.Hour).Enqueue(ctx, Transaction{UserID: 1, Amount: 5, Currency: "USD"}, "")
	if !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("Enqueue while Redis is busy: got %v, want ErrOutcomeUnknown", err)
	}
	if !ValidID(res.ID) {
		t.Fatalf("Enqueue with ErrOutcomeUnknown: got id %q, want the transaction's id", res.ID)
	}
	wait()
	var rec Record
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if rec, err = q.Status(ctx, res.ID); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || rec.Status != StatusQueued {
		t.Fatalf("after Redis was free again: Status(%s) = %+v, %v; want it queued (Redis ran the call the client gave up on)", res.ID, rec, err)
	}
	if n := rdb.XLen(ctx, Stream).Val(); n != 1 {
		t.Errorf("stream length %d, want 1", n)
	}
}

// TestConcurrentEnqueuesSharePipelines: many concurrent Enqueue calls share
// pipelines (fewer connection checkouts than calls), and each still gets its
// own transaction, stored once; a lone call goes at once, in its own.
func TestConcurrentEnqueuesSharePipelines(t *testing.T) {
	_, rdb := startRedis(t)
	ctx := context.Background()
	q := NewQueue(rdb, time.Hour)
	checkouts := func() uint32 { s := rdb.PoolStats(); return s.Hits + s.Misses }

	before := checkouts()
	if _, err := q.Enqueue(ctx, Transaction{UserID: 1, Amount: 1, Currency: "USD"}, ""); err != nil {
		t.Fatal(err)
	}
	if got := checkouts() - before; got != 1 {
		t.Errorf("a lone Enqueue: got %d connection checkouts, want 1", got)
	}

	const callers, each = 64, 20
	before = checkouts()
	start := make(chan struct{})
	ids := make(chan string, callers*each)
	var wg sync.WaitGroup
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range each {
				res, err := q.Enqueue(ctx, Transaction{UserID: int64(1 + c%3), Amount: int64(1000*c + i + 1), Currency: "EUR"}, "")
				if err != nil {
					t.Errorf("Enqueue: %v", err)
					return
				}
				ids <- res.ID
			}
		}()
	}
	close(start)
	wg.Wait()
	close(ids)
	used := checkouts() - before
	// Every pipeline slot is back: a slot lost when the lead is handed on
	// would, after enqueuePipelines losses, leave every caller waiting.
	q.enqueue.mu.Lock()
	inFlight, waiting := q.enqueue.inFlight, len(q.enqueue.waiting)
	q.enqueue.mu.Unlock()
	if inFlight != 0 || waiting != 0 {
		t.Errorf("after the burst: %d pipelines in flight, %d calls waiting; want 0 and 0", inFlight, waiting)
	}
	seen := map[string]bool{}
	for id := range ids {
		if seen[id] {
			t.Errorf("id %s returned twice", id)
		}
		seen[id] = true
		if rec, err := q.Status(ctx, id); err != nil || rec.Status != StatusQueued {
			t.Errorf("status of %s: %+v %v", id, rec, err)
		}
	}
	if n, err := rdb.XLen(ctx, Stream).Result(); err != nil || n != callers*each+1 {
		t.Errorf("XLEN: got %d (%v), want %d", n, err, callers*each+1)
	}
	t.Logf("%d concurrent Enqueue calls used %d connection checkouts", callers*each, used)
	if used >= callers*each {
		t.Errorf("connection checkouts: got %d for %d concurrent calls, want fewer (shared pipelines)", used, callers*each)
	}
}

// TestAcknowledgedBurstSurvivesRedisKill: every Enqueue that returned
// survives kill -9, also in a burst that starts after an idle second, the
// case where appendfsync everysec loses acknowledged writes: the burst's first
// write starts a background fsync, and Redis postpones writing the rest (up
// to 2 s) while that fsync runs, though it has already answered them. With
// everysec this test failed every time on the development machine (XLEN 1 of
// 3 after the restart, 10 runs out of 10; 5 of 8 on 2026-12-04, with CI
// running alongside: it depends on the first fsync still running), so
// everysec is not in the table.
//
// The two policies that keep the promise for kill -9 of Redis: always (the
// stack's default: Redis writes and fsyncs before it answers, so a machine
// crash loses nothing either) and no (Redis write(2)s before it answers and
// never postpones that write; the page cache outlives the process, not a
// machine crash).
func TestAcknowledgedBurstSurvivesRedisKill(t *testing.T) {
	for _, policy := range []string{"always", "no"} {
		t.Run("appendfsync "+policy, func(t *testing.T) {
			t.Parallel()
			srv := redistest.StartAppendfsync(t, policy)
			rdb := connectTo(t, srv)
			ctx := context.Background()
			q := NewQueue(rdb, time.Hour)
			time.Sleep(1100 * time.Millisecond) // idle: the next write starts an everysec fsync
			const burst = 3
			ids := enqueueN(t, q, burst)
			srv.Restart(t) // kill -9, then start on the same data

			if n, err := rdb.XLen(ctx, Stream).Result(); err != nil || n != burst {
				t.Errorf("after kill -9: XLEN got %d (err %v), want %d: acknowledged enqueues were lost", n, err, burst)
			}
			for _, id := range ids {
				if rec, err := q.Status(ctx, id); err != nil || rec.Status != StatusQueued {
					t.Errorf("after kill -9, %s: got %+v, %v; want the queued record", id, rec, err)
				}
			}
		})
	}
}

// TestAcknowledgedSurvivesRedisKill checks that an Enqueue that returned is
// durable across kill -9, and that its Idempotency-Key record is too.
func TestAcknowledgedSurvivesRedisKill(t *testing.T) {
	srv, rdb := startRedis(t)
	ctx := context.Background()
	q := NewQueue(rdb, time.Hour)
	res, err := q.Enqueue(ctx, Transaction{UserID: 2, Amount: 7, Currency: "EUR"}, "k")
	if err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	srv.Restart(t)

	rec, err := q.Status(ctx, res.ID)
	if err != nil || rec.Status != StatusQueued || rec.Amount != 7 {
		t.Fatalf("after kill -9: got %+v, %v; want the queued record", rec, err)
	}
	if n, err := rdb.XLen(ctx, Stream).Result(); err != nil || n != 1 {
		t.Fatalf("after kill -9: XLEN got %d (err %v), want 1", n, err)
	}
	again, err := q.Enqueue(ctx, Transaction{UserID: 2, Amount: 7, Currency: "EUR"}, "k")
	if err != nil || again.ID != res.ID || !again.Replayed {
		t.Fatalf("replay after kill -9: got %+v, %v; want %s replayed", again, err, res.ID)
	}
}

func TestValidIdempotencyKey(t *testing.T) {
	tests := []struct {
		key  string
		want bool
	}{
		{"", false},
		{"a", true},
		{"order-42 retry", true},
		{strings.Repeat("k", MaxIdempotencyKeyLen), true},
		{strings.Repeat("k", MaxIdempotencyKeyLen+1), false},
		{"tab\there", false},
		{"caf\u00e9", false},
	}
	for _, tt := range tests {
		if got := ValidIdempotencyKey(tt.key); got != tt.want {
			t.Errorf("ValidIdempotencyKey(%q): got %v, want %v", tt.key, got, tt.want)
		}
	}
}

func BenchmarkEnqueue(b *testing.B) {
	srv := redistest.Start(b)
	rdb, err := Connect(context.Background(), srv.URL)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rdb.Close() })
	q := NewQueue(rdb, time.Hour)
	tx := Transaction{UserID: 1, Amount: 100, Currency: "USD", RequestID: "0123456789abcdef0123456789abcdef"}
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if _, err := q.Enqueue(ctx, tx, ""); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := q.Enqueue(ctx, tx, ""); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("parallel_idempotency_key", func(b *testing.B) {
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				key := "bench-" + strconv.FormatInt(n.Add(1), 10)
				if _, err := q.Enqueue(ctx, tx, key); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
