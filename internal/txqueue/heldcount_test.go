package txqueue

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestReclaimsOfAHeldClaimAreNoDeliveries: connector a, with a
// VisibilityTimeout of 5 s, charges a batch of 4 in rounds of 1, each charge
// taking 300 ms, well within its lease; connector b runs beside it with
// 200 ms (D104's setting: another stack on the same Redis, or a
// VISIBILITY_TIMEOUT rolled out one connector at a time). b reclaims a's
// unstarted rounds each time they are idle for its 200 ms and leaves them
// pending, a's claim holding. The PSP declines the last round's
// transaction every time. It must be charged MaxDeliveries times (a once,
// then b) before it is dead-lettered: b's reclaims while a held it could
// charge nothing. Before, each of them raised the entry's delivery count,
// so b dead-lettered it at its first reclaim after a's failed charge, a
// transaction the PSP was asked about once.
func TestReclaimsOfAHeldClaimAreNoDeliveries(t *testing.T) {
	_, rdb, q := startQueue(t)
	ctx := context.Background()
	log, logs := testLogger(t)
	ids := enqueueN(t, q, 4)
	target := ids[len(ids)-1]
	declined := errors.New("declined")
	decline := func(m Message) error {
		if m.ID == target {
			return declined
		}
		return nil
	}

	a := &recorder{fail: decline}
	stopA := runSlowLongLeaseConsumer(t, rdb, a, ids, 300*time.Millisecond, log)
	b := &recorder{fail: decline}
	cfgB := fastConfig("b") // VisibilityTimeout 200 ms, MaxDeliveries 3
	stopB := runConsumer(t, rdb, cfgB, b, log)
	waitForProcessed(t, q, ids[:len(ids)-1]...)
	waitFor(t, "the declined transaction failed", statusIs(q, target, StatusFailed))
	waitForNothingPending(t, rdb)
	stopA()
	stopB()

	checkChargedOnceByEither(t, a, b, ids[:len(ids)-1]...)
	if !hasLogLine(logs.String(), map[string]string{"msg": "another consumer is charging it; entry left pending",
		"transaction_id": target}) {
		t.Errorf("b never found the declined transaction held by a: the test did not set up what it checks")
	}
	if got, want := a.calls(target)+b.calls(target), cfgB.MaxDeliveries; got != want {
		t.Errorf("PSP attempts of the declined transaction before its dead letter: got %d (a %d, b %d), want MaxDeliveries %d",
			got, a.calls(target), b.calls(target), want)
	}
	dead, err := rdb.XRange(ctx, DeadLetterStream, "-", "+").Result()
	if err != nil || len(dead) != 1 {
		t.Fatalf("dead letters: got %v (err %v), want 1", dead, err)
	}
	if got, want := dead[0].Values["reason"], "PSP step failed: declined"; got != want {
		t.Errorf("dead letter's reason: got %v, want %q", got, want)
	}
	if got, want := dead[0].Values["deliveries"], "3"; got != want {
		t.Errorf("dead letter's deliveries: got %v, want %s", got, want)
	}
}

// TestUncountTakesBackOneDeliveryWhileTheCountIsTheOneSeen: uncountScript
// lowers an entry's delivery count by one only while it is the count the
// reclaim saw, so a call sent twice takes back one delivery, one that a
// reclaim counted since is left alone, and so are a first delivery and an
// acknowledged entry; the entry keeps its consumer and its idle time.
func TestUncountTakesBackOneDeliveryWhileTheCountIsTheOneSeen(t *testing.T) {
	_, rdb := startRedis(t)
	ctx := context.Background()
	if err := rdb.XGroupCreateMkStream(ctx, Stream, Group, "0").Err(); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range 3 {
		id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: Stream, Values: []any{"id", "tx"}}).Result()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: Group, Consumer: "a", Streams: []string{Stream, ">"}}).Err(); err != nil {
		t.Fatal(err)
	}
	// b reclaims the first two: count 2 each.
	for _, id := range ids[:2] {
		if err := rdb.XClaim(ctx, &redis.XClaimArgs{Stream: Stream, Group: Group, Consumer: "b", Messages: []string{id}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// c reclaims the second once more since b saw 2: count 3.
	if err := rdb.XClaim(ctx, &redis.XClaimArgs{Stream: Stream, Group: Group, Consumer: "c", Messages: []string{ids[1]}}).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	uncount := func(args ...any) int64 {
		t.Helper()
		n, err := uncountScript.Run(ctx, rdb, []string{Stream}, append([]any{Group}, args...)...).Int64()
		if err != nil {
			t.Fatalf("uncount: %v", err)
		}
		return n
	}
	if got := uncount(ids[0], 2, ids[1], 2, ids[2], 1); got != 1 {
		t.Errorf("first call: lowered %d counts, want 1", got)
	}
	if got := uncount(ids[0], 2); got != 0 {
		t.Errorf("the same call again: lowered %d counts, want 0", got)
	}
	want := map[string]struct {
		consumer string
		count    int64
	}{ids[0]: {"b", 1}, ids[1]: {"c", 3}, ids[2]: {"a", 1}}
	pending, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: Stream, Group: Group, Start: "-", End: "+", Count: 10}).Result()
	if err != nil || len(pending) != 3 {
		t.Fatalf("XPENDING: %v, %v", pending, err)
	}
	for _, p := range pending {
		w := want[p.ID]
		if p.Consumer != w.consumer || p.RetryCount != w.count {
			t.Errorf("%s: consumer %s, count %d; want %s, %d", p.ID, p.Consumer, p.RetryCount, w.consumer, w.count)
		}
		if p.Idle < 50*time.Millisecond {
			t.Errorf("%s: idle %s, want its idle time kept (at least 50ms)", p.ID, p.Idle)
		}
	}
	if err := rdb.XAck(ctx, Stream, Group, ids[1]).Err(); err != nil {
		t.Fatal(err)
	}
	if got := uncount(ids[1], 3); got != 0 {
		t.Errorf("an acknowledged entry: lowered %d counts, want 0", got)
	}
	if n, err := rdb.XPending(ctx, Stream, Group).Result(); err != nil || n.Count != 2 {
		t.Errorf("pending after the acknowledged one's call: %+v, %v; want 2", n, err)
	}
}
