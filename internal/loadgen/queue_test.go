package loadgen

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/acme-payments/platform/internal/redistest"
)

func TestQueueProbe(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	stream, group := t.Name(), "g"
	if err := rdb.XGroupCreateMkStream(ctx, stream, group, "$").Err(); err != nil {
		t.Fatal(err)
	}
	q, err := NewQueueProbe(srv.URL, stream, group)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })

	var ids []string
	for i := 0; i < 3; i++ {
		id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"n", "1"}}).Result()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	read := func(n int64) {
		t.Helper()
		if err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "c", Streams: []string{stream, ">"}, Count: n}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name    string
		do      func()
		lag     int64
		pending int64
	}{
		{"three added", func() {}, 3, 0},
		{"two delivered", func() { read(2) }, 1, 2},
		{"two acked", func() { rdb.XAck(ctx, stream, group, ids[0], ids[1]) }, 1, 0},
		{"last delivered", func() { read(1) }, 0, 1},
		{"all acked", func() { rdb.XAck(ctx, stream, group, ids[2]) }, 0, 0},
		// After an XDEL Redis cannot compute the lag any more (nil); the
		// probe then compares the last delivered id with the stream's.
		{"deleted, then one more added", func() {
			rdb.XDel(ctx, stream, ids[0])
			rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"n", "1"}})
		}, 1, 0},
		{"deleted, caught up", func() {
			read(1)
			p, _ := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: stream, Group: group, Start: "-", End: "+", Count: 10}).Result()
			for _, e := range p {
				rdb.XAck(ctx, stream, group, e.ID)
			}
		}, 0, 0},
	}
	for _, s := range steps {
		s.do()
		got, err := q.State(ctx)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got.Lag != s.lag || got.Pending != s.pending {
			t.Errorf("%s: got lag %d pending %d, want lag %d pending %d", s.name, got.Lag, got.Pending, s.lag, s.pending)
		}
		if got.Drained() != (s.lag == 0 && s.pending == 0) {
			t.Errorf("%s: Drained() = %v", s.name, got.Drained())
		}
	}

	// After a restart Redis's own lag is wrong (the AOF replays reads as
	// XCLAIM, which does not count entries read); the probe must still see
	// the group as drained.
	// The entries-read counter is saved by an AOF rewrite; entries read after
	// it are replayed as XCLAIM and not counted.
	if err := rdb.BgRewriteAOF(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		info, _ := rdb.Info(ctx, "persistence").Result()
		if strings.Contains(info, "aof_rewrite_in_progress:0") && strings.Contains(info, "aof_rewrite_scheduled:0") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := 0; i < 5; i++ {
		rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"n", "1"}})
	}
	read(5)
	p, _ := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: stream, Group: group, Start: "-", End: "+", Count: 10}).Result()
	for _, e := range p {
		rdb.XAck(ctx, stream, group, e.ID)
	}
	srv.Restart(t)
	redisLag := func() int64 {
		t.Helper()
		g, err := rdb.XInfoGroups(ctx, stream).Result()
		if err != nil || len(g) != 1 {
			t.Fatalf("XINFO GROUPS: %v %v", g, err)
		}
		return g[0].Lag
	}
	t.Logf("Redis's own lag after the restart: %d", redisLag())
	got, err := q.State(ctx)
	if err != nil || !got.Drained() || got.Lag != 0 {
		t.Errorf("after restart: got %+v, %v, want drained with lag 0 (Redis says lag %d)", got, err, redisLag())
	}

	if _, err := (&QueueProbe{rdb: q.rdb, stream: stream, group: "nope"}).State(ctx); err == nil {
		t.Errorf("unknown group: got nil error, want one")
	}
}

// A Redis that accepts connections and never answers holds the probe no
// longer than its context: the progress line gives it 200 ms, and Ctrl-C
// must cut a read in flight. Without ContextTimeoutEnabled go-redis waited
// its own 3 s read timeout, with retries (5.0 s here).
func TestQueueProbeHonoursItsContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	q, err := NewQueueProbe("redis://"+ln.Addr().String(), "s", "g")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err = q.State(ctx)
	if took := time.Since(began); err == nil || took > time.Second {
		t.Errorf("State against a silent Redis with a 200 ms context: %v after %v, want an error within 1 s", err, took)
	}
}
