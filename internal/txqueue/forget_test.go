package txqueue

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// groupConsumers lists the names of Group's consumers, sorted.
func groupConsumers(t *testing.T, rdb *redis.Client) []string {
	t.Helper()
	consumers, err := rdb.XInfoConsumers(context.Background(), Stream, Group).Result()
	if err != nil {
		t.Fatalf("XINFO CONSUMERS: %v", err)
	}
	names := make([]string, len(consumers))
	for i, k := range consumers {
		names[i] = k.Name
	}
	slices.Sort(names)
	return names
}

// groupWithConsumers creates Group with consumers of two kinds: holding,
// which read one transaction and stopped without acknowledging it (one
// entry pending for it), and idle, which never read anything.
func groupWithConsumers(t *testing.T, q *Queue, holding string, idle ...string) {
	t.Helper()
	ctx := context.Background()
	if err := q.rdb.XGroupCreateMkStream(ctx, Stream, Group, "0").Err(); err != nil {
		t.Fatalf("XGROUP CREATE: %v", err)
	}
	enqueueN(t, q, 1)
	got, err := q.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: Group, Consumer: holding, Streams: []string{Stream, ">"}, Count: 1, Block: -1,
	}).Result()
	if err != nil || len(got) != 1 || len(got[0].Messages) != 1 {
		t.Fatalf("XREADGROUP as %s: got %v, %v; want 1 entry", holding, got, err)
	}
	for _, name := range idle {
		if err := q.rdb.XGroupCreateConsumer(ctx, Stream, Group, name).Err(); err != nil {
			t.Fatalf("XGROUP CREATECONSUMER %s: %v", name, err)
		}
	}
}

// TestForgetScriptKeepsAConsumerWithEntriesPending: forgetScript removes a
// consumer only while nothing is pending for it, since XGROUP DELCONSUMER
// would drop its pending entries, which no reclaim could then find.
func TestForgetScriptKeepsAConsumerWithEntriesPending(t *testing.T) {
	_, rdb := startRedis(t)
	ctx := context.Background()
	groupWithConsumers(t, NewQueue(rdb, time.Hour), "holding", "idle")

	got, err := forgetScript.Run(ctx, rdb, []string{Stream}, Group, "holding", "idle", "never-there").Int64Slice()
	if err != nil {
		t.Fatalf("forgetScript: %v", err)
	}
	if want := []int64{0, 1, 1}; !slices.Equal(got, want) {
		t.Errorf("forgetScript for holding, idle, never-there: got %v, want %v", got, want)
	}
	if names := groupConsumers(t, rdb); !slices.Equal(names, []string{"holding"}) {
		t.Errorf("consumers after: got %q, want only holding", names)
	}
	if n := pendingCount(t, rdb); n != 1 {
		t.Errorf("pending after: got %d, want holding's 1", n)
	}
}

// TestConsumerLeavesTheGroupAtItsStop: a consumer that stops with nothing
// pending for it leaves Group, since the next start joins under a new name
// (psp-connector's hostname-pid); one that stops with entries pending stays,
// so that they can still be reclaimed.
func TestConsumerLeavesTheGroupAtItsStop(t *testing.T) {
	tests := []struct {
		name      string
		failAll   bool // every charge fails: the entries stay pending
		wantNames []string
		wantLog   string
	}{
		{"nothing pending", false, []string{}, "left the consumer group: nothing pending for it"},
		{"entries pending", true, []string{"stopping"}, "stays in the consumer group: entries are pending for it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rdb := startRedis(t)
			log, logs := testLogger(t)
			q := NewQueue(rdb, time.Hour)
			ids := enqueueN(t, q, 5)
			psp := &recorder{}
			if tt.failAll {
				psp.fail = func(Message) error { return errors.New("the PSP is down") }
			}
			cfg := fastConfig("stopping")
			cfg.MaxDeliveries = 1000 // nothing is dead-lettered in the test's time
			stop := runConsumer(t, rdb, cfg, psp, log)
			if tt.failAll {
				waitFor(t, "a failed charge of each", func() bool { return psp.total() >= len(ids) })
			} else {
				for _, id := range ids {
					waitFor(t, id+" processed", statusIs(q, id, StatusProcessed))
				}
			}
			stop()
			if names := groupConsumers(t, rdb); !slices.Equal(names, tt.wantNames) {
				t.Errorf("consumers after the stop: got %q, want %q", names, tt.wantNames)
			}
			if !hasLogLine(logs.String(), map[string]string{"msg": tt.wantLog, "consumer": "stopping"}) {
				t.Errorf("no log line %q", tt.wantLog)
			}
		})
	}
}

// TestConsumerForgetsGoneConsumersOnceNothingIsPendingForThem: the group
// holds consumers that ConsumerConfig.Gone judges gone, one of them with an
// entry pending (a connector killed with a batch in hand), and one that is
// not gone. The running consumer removes the idle gone one, reclaims and
// charges the held entry, then removes its holder too, and keeps the one
// that is not gone.
func TestConsumerForgetsGoneConsumersOnceNothingIsPendingForThem(t *testing.T) {
	_, rdb := startRedis(t)
	log, logs := testLogger(t)
	groupWithConsumers(t, NewQueue(rdb, time.Hour), "gone-holding", "gone-idle", "running-idle")

	psp := &recorder{}
	cfg := fastConfig("survivor")
	cfg.VisibilityTimeout = time.Second // gone-holding's entry stays its own for a few passes
	cfg.Gone = func(name string) bool { return strings.HasPrefix(name, "gone-") }
	stop := runConsumer(t, rdb, cfg, psp, log)
	waitFor(t, "gone-idle removed", func() bool {
		return !slices.Contains(groupConsumers(t, rdb), "gone-idle")
	})
	if names := groupConsumers(t, rdb); !slices.Contains(names, "gone-holding") {
		t.Errorf("consumers before the reclaim: got %q, want gone-holding kept for its pending entry", names)
	}
	want := []string{"running-idle", "survivor"}
	waitFor(t, "only running-idle and survivor left", func() bool {
		return slices.Equal(groupConsumers(t, rdb), want)
	})
	if psp.total() != 1 {
		t.Errorf("charges: got %d, want gone-holding's entry charged once", psp.total())
	}
	if n := pendingCount(t, rdb); n != 0 {
		t.Errorf("pending: got %d, want 0", n)
	}
	stop()
	if !strings.Contains(logs.String(), `"msg":"removed stopped consumers from the group"`) {
		t.Errorf("no log line for the removal")
	}
}

// TestConsumerStoppedDuringItsReclaimPassRemovesNoOtherConsumer: a stop
// that lands in the reclaim pass (here in the charge of an entry reclaimed
// from a gone consumer) ends the pass there. The consumer still leaves the
// group itself, but it no longer looks for gone consumers after its stop:
// that is for the next pass of a running connector, or the next start. Before,
// it listed the group and ran the removal script after the stop, and with
// Redis holding writes those took what was left of a 2 s ShutdownGrace,
// so that its own leave was cut short at the grace's end.
func TestConsumerStoppedDuringItsReclaimPassRemovesNoOtherConsumer(t *testing.T) {
	_, rdb := startRedis(t)
	log, logs := testLogger(t)
	ctx := context.Background()
	groupWithConsumers(t, NewQueue(rdb, time.Hour), "gone-holding", "gone-idle")
	cfg := fastConfig("stopped-in-its-reclaim-pass")
	// The held entry is idle for VisibilityTimeout: the first pass reclaims it.
	time.Sleep(cfg.VisibilityTimeout + 50*time.Millisecond)
	var stopped atomic.Bool
	var askedAfterTheStop atomic.Int32
	cfg.Gone = func(name string) bool {
		if stopped.Load() {
			askedAfterTheStop.Add(1)
		}
		return strings.HasPrefix(name, "gone-")
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	psp := &recorder{}
	c, err := NewConsumer(rdb, cfg, PSPFunc(func(ctx context.Context, m Message) error {
		stopped.Store(true)
		cancel() // SIGTERM, in the charge of the reclaimed entry
		return psp.Charge(ctx, m)
	}), log)
	if err != nil {
		t.Fatal(err)
	}
	runUntilItsStop(t, c, runCtx, 15*time.Second)

	if psp.total() != 1 || pendingCount(t, rdb) != 0 {
		t.Fatalf("charges: got %d, pending %d; want the reclaimed entry charged and acknowledged", psp.total(), pendingCount(t, rdb))
	}
	if n := askedAfterTheStop.Load(); n != 0 {
		t.Errorf("Gone asked %d times after the stop, want 0: the stop looks for no gone consumer", n)
	}
	if names, want := groupConsumers(t, rdb), []string{"gone-holding", "gone-idle"}; !slices.Equal(names, want) {
		t.Errorf("consumers after the stop: got %q, want %q (the stopped one left; the gone ones are the next pass's)", names, want)
	}
	if !hasLogLine(logs.String(), map[string]string{"msg": "left the consumer group: nothing pending for it", "consumer": cfg.Name}) {
		t.Errorf("no log line of the stopped consumer leaving the group")
	}
}

// TestForgetScriptOnABlockedReaderLosesNothing: forgetScript removes a
// consumer that is in fact alive, blocked in XREADGROUP (a second machine
// of the same hostname), when nothing is pending for it. An entry queued
// then is still delivered to it, and pending under it: Redis adds the
// consumer back as it serves the read (7.0: blocked.c creates it; 7.2 and
// later run the command again), so no entry is delivered without a
// pending record.
func TestForgetScriptOnABlockedReaderLosesNothing(t *testing.T) {
	_, rdb := startRedis(t)
	ctx := context.Background()
	q := NewQueue(rdb, time.Hour)
	if err := rdb.XGroupCreateMkStream(ctx, Stream, Group, "0").Err(); err != nil {
		t.Fatalf("XGROUP CREATE: %v", err)
	}
	// Created first, so that it is listed on Redis 7.0 too, which adds a
	// reader only once it serves it.
	if err := rdb.XGroupCreateConsumer(ctx, Stream, Group, "alive").Err(); err != nil {
		t.Fatalf("XGROUP CREATECONSUMER: %v", err)
	}
	type read struct {
		streams []redis.XStream
		err     error
	}
	done := make(chan read, 1)
	go func() {
		s, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: Group, Consumer: "alive", Streams: []string{Stream, ">"}, Count: 10, Block: 10 * time.Second,
		}).Result()
		done <- read{s, err}
	}()
	waitFor(t, "the read blocked", func() bool {
		info, err := rdb.Info(ctx, "clients").Result()
		return err == nil && strings.Contains(info, "blocked_clients:1\r\n")
	})
	got, err := forgetScript.Run(ctx, rdb, []string{Stream}, Group, "alive").Int64Slice()
	if err != nil || !slices.Equal(got, []int64{1}) {
		t.Fatalf("forgetScript for the blocked reader: got %v, %v; want [1]", got, err)
	}
	if names := groupConsumers(t, rdb); len(names) != 0 {
		t.Fatalf("consumers after the removal: got %q, want none", names)
	}
	enqueueN(t, q, 1)
	r := <-done
	if r.err != nil || len(r.streams) != 1 || len(r.streams[0].Messages) != 1 {
		t.Fatalf("the blocked read: got %v, %v; want the entry queued after the removal", r.streams, r.err)
	}
	pending, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: Stream, Group: Group, Start: "-", End: "+", Count: 10}).Result()
	if err != nil || len(pending) != 1 || pending[0].Consumer != "alive" || pending[0].ID != r.streams[0].Messages[0].ID {
		t.Errorf("pending after the read: got %+v, %v; want the entry, under alive", pending, err)
	}
	if names := groupConsumers(t, rdb); !slices.Equal(names, []string{"alive"}) {
		t.Errorf("consumers after the read: got %q, want alive back", names)
	}
}
