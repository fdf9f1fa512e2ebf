package loadgen

import (
	"context"
	"testing"

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

	if _, err := (&QueueProbe{rdb: q.rdb, stream: stream, group: "nope"}).State(ctx); err == nil {
		t.Errorf("unknown group: got nil error, want one")
	}
}
