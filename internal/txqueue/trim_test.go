package txqueue

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// streamIDs lists the ids left in Stream.
func streamIDs(t *testing.T, rdb *redis.Client) []string {
	t.Helper()
	entries, err := rdb.XRange(context.Background(), Stream, "-", "+").Result()
	if err != nil {
		t.Fatalf("XRANGE: %v", err)
	}
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = e.ID
	}
	return ids
}

// trimOnce runs the consumer's trim and returns how many entries it removed.
func trimOnce(t *testing.T, rdb *redis.Client) int64 {
	t.Helper()
	n, err := trimScript.Run(context.Background(), rdb, []string{Stream}).Int64()
	if err != nil {
		t.Fatalf("trim: %v", err)
	}
	return n
}

// TestTrimKeepsUndeliveredAndPending builds a stream whose entries are
// acknowledged, pending or never delivered, in one or two groups, and checks
// that the trim removes exactly the entries every group has acknowledged.
func TestTrimKeepsUndeliveredAndPending(t *testing.T) {
	tests := []struct {
		name string
		// read is how many of the 10 entries Group reads; ack lists the
		// (1-based) entries it acknowledges.
		read int
		ack  []int
		// otherRead, when > 0, is how many entries a second group reads (and
		// acknowledges); -1 means no second group.
		otherRead int
		wantLeft  []int // 1-based entries left after the trim
	}{
		{name: "nothing delivered", read: 0, otherRead: -1, wantLeft: []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{name: "delivered, nothing acked", read: 6, otherRead: -1, wantLeft: []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{name: "oldest pending bounds the trim", read: 6, ack: []int{1, 2, 3, 5}, otherRead: -1, wantLeft: []int{4, 5, 6, 7, 8, 9, 10}},
		{name: "all delivered acked: undelivered stay", read: 6, ack: []int{1, 2, 3, 4, 5, 6}, otherRead: -1, wantLeft: []int{7, 8, 9, 10}},
		{name: "everything acked", read: 10, ack: []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, otherRead: -1, wantLeft: []int{}},
		{name: "a second group that is behind", read: 10, ack: []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, otherRead: 3, wantLeft: []int{4, 5, 6, 7, 8, 9, 10}},
		{name: "a second group that read nothing", read: 10, ack: []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, otherRead: 0, wantLeft: []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rdb := startRedis(t)
			ctx := context.Background()
			if err := rdb.XGroupCreateMkStream(ctx, Stream, Group, "0").Err(); err != nil {
				t.Fatalf("XGROUP CREATE: %v", err)
			}
			if tt.otherRead >= 0 {
				if err := rdb.XGroupCreate(ctx, Stream, "other", "0").Err(); err != nil {
					t.Fatalf("XGROUP CREATE other: %v", err)
				}
			}
			ids := make([]string, 10)
			for i := range ids {
				id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: Stream, Values: []string{"n", strconv.Itoa(i + 1)}}).Result()
				if err != nil {
					t.Fatalf("XADD: %v", err)
				}
				ids[i] = id
			}
			read := func(group string, n int) {
				if n == 0 {
					return
				}
				if err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "c",
					Streams: []string{Stream, ">"}, Count: int64(n), Block: -1}).Err(); err != nil {
					t.Fatalf("XREADGROUP %s: %v", group, err)
				}
			}
			read(Group, tt.read)
			for _, n := range tt.ack {
				if err := rdb.XAck(ctx, Stream, Group, ids[n-1]).Err(); err != nil {
					t.Fatalf("XACK: %v", err)
				}
			}
			if tt.otherRead > 0 {
				read("other", tt.otherRead)
				if err := rdb.XAck(ctx, Stream, "other", ids[:tt.otherRead]...).Err(); err != nil {
					t.Fatalf("XACK other: %v", err)
				}
			}
			pendingBefore := pendingCount(t, rdb)

			removed := trimOnce(t, rdb)
			want := make([]string, len(tt.wantLeft))
			for i, n := range tt.wantLeft {
				want[i] = ids[n-1]
			}
			if got := streamIDs(t, rdb); !slices.Equal(got, want) {
				t.Errorf("left: got %v, want %v", got, want)
			}
			if removed != int64(10-len(tt.wantLeft)) {
				t.Errorf("removed: got %d, want %d", removed, 10-len(tt.wantLeft))
			}
			if got := pendingCount(t, rdb); got != pendingBefore {
				t.Errorf("pending after the trim: got %d, want %d", got, pendingBefore)
			}
			// A second pass changes nothing, and what was undelivered is
			// still delivered, in order.
			if n := trimOnce(t, rdb); n != 0 {
				t.Errorf("second trim: removed %d, want 0", n)
			}
			if tt.read < 10 {
				got, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: Group, Consumer: "c",
					Streams: []string{Stream, ">"}, Count: 100, Block: -1}).Result()
				if err != nil || len(got) != 1 || len(got[0].Messages) != 10-tt.read || got[0].Messages[0].ID != ids[tt.read] {
					t.Errorf("undelivered after the trim: got %v (err %v), want %d entries from %s", got, err, 10-tt.read, ids[tt.read])
				}
			}
		})
	}
}

// TestTrimWithoutStreamOrGroup: the trim never creates the stream and never
// touches a stream no group reads.
func TestTrimWithoutStreamOrGroup(t *testing.T) {
	_, rdb := startRedis(t)
	ctx := context.Background()
	if n := trimOnce(t, rdb); n != 0 {
		t.Errorf("no stream: removed %d, want 0", n)
	}
	if n, _ := rdb.Exists(ctx, Stream).Result(); n != 0 {
		t.Errorf("the trim created %s", Stream)
	}
	if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: Stream, Values: []string{"n", "1"}}).Err(); err != nil {
		t.Fatalf("XADD: %v", err)
	}
	if n := trimOnce(t, rdb); n != 0 {
		t.Errorf("no group: removed %d, want 0", n)
	}
}

// TestConsumerTrimsProcessedEntries: a running consumer trims what it has
// processed, so the stream ends empty while every status record stays.
func TestConsumerTrimsProcessedEntries(t *testing.T) {
	_, rdb := startRedis(t)
	log, _ := testLogger(t)
	q := NewQueue(rdb, time.Hour)
	ids := enqueueN(t, q, 40)
	psp := &recorder{}
	runConsumer(t, rdb, fastConfig("c1"), psp, log)
	for _, id := range ids {
		waitFor(t, id+" processed", statusIs(q, id, StatusProcessed))
	}
	waitFor(t, "the stream trimmed", func() bool {
		n, err := rdb.XLen(context.Background(), Stream).Result()
		return err == nil && n == 0
	})
	more := enqueueN(t, q, 5)
	for _, id := range more {
		waitFor(t, id+" processed", statusIs(q, id, StatusProcessed))
	}
	if got := psp.total(); got != 45 {
		t.Errorf("charges: got %d, want 45", got)
	}
}
