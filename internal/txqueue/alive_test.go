package txqueue

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// testAliveTiming is the connector's refresh and core-api's check, made
// short: a grace of 1 s, ten times the latest a connector starts in the
// rows that must not warn.
var testAliveTiming = aliveTiming{
	every: 50 * time.Millisecond, ttl: 150 * time.Millisecond,
	checkEvery: 50 * time.Millisecond, grace: time.Second, warnEvery: time.Hour,
}

// noConsumerWarning is the start of WarnIfNoConsumer's warning.
const noConsumerWarning = "no psp-connector consumes this redis database"

// TestWarnIfNoConsumer: core-api warns when transactions wait in its
// database and no connector has shown itself alive there for the grace,
// as when psp-connector's REDIS_URL names another database (…/1 against
// …/0), and not on a first start: nothing queued yet, or a connector
// started after core-api, within the grace. A real Redis, both databases
// on one server.
func TestWarnIfNoConsumer(t *testing.T) {
	tests := []struct {
		name        string
		queued      int           // transactions core-api queues in database 0
		delivered   int           // of them, read by a connector that left (not acknowledged)
		acked       int           // of them, read and acknowledged
		connectorDB int           // the database the connector refreshes its key in; -1: no connector
		startAfter  time.Duration // when the connector starts, after core-api
		full        bool          // Redis at its maxmemory once the connector runs
		wantWarning bool
	}{
		{"connector on another database", 1, 0, 0, 1, 0, false, true},
		{"no connector at all", 3, 0, 0, -1, 0, false, true},
		{"connector on the same database", 1, 0, 0, 0, 0, false, false},
		{"first start: nothing queued, no connector yet", 0, 0, 0, -1, 0, false, false},
		{"first start: connector started after core-api, within the grace", 1, 0, 0, 0, 100 * time.Millisecond, false, false},
		{"connector gone, everything acknowledged", 2, 0, 2, -1, 0, false, false},
		{"connector gone, one entry delivered and not acknowledged", 2, 1, 1, -1, 0, false, true},
		{"connector gone, one entry not delivered yet", 2, 0, 1, -1, 0, false, true},
		{"connector on the same database, Redis at its maxmemory", 1, 0, 0, 0, 0, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, admin := startRedis(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			q := NewQueue(admin, time.Hour)
			for range tt.queued {
				if _, err := q.Enqueue(ctx, Transaction{UserID: 1, Amount: 100, Currency: "USD"}, ""); err != nil {
					t.Fatal(err)
				}
			}
			if tt.delivered+tt.acked > 0 {
				readAndAck(t, admin, tt.delivered, tt.acked)
			}

			log, buf := testLogger(t)
			done := make(chan struct{})
			go func() {
				defer close(done)
				warnIfNoConsumer(ctx, admin, log, testAliveTiming)
			}()
			defer func() { cancel(); <-done }()
			if tt.connectorDB >= 0 {
				time.Sleep(tt.startAfter)
				connector, err := Connect(ctx, srv.URL+"?db="+string(rune('0'+tt.connectorDB)))
				if err != nil {
					t.Fatal(err)
				}
				defer connector.Close()
				go keepConsumerAlive(ctx, connector, "connector-"+t.Name(), testAliveTiming)
				if tt.full {
					waitFor(t, "the connector's key", func() bool { return admin.Exists(ctx, ConsumerAliveKey).Val() == 1 })
					fillRedis(t, admin)
				}
			}

			if tt.wantWarning {
				waitFor(t, "the warning", func() bool { return strings.Contains(buf.String(), noConsumerWarning) })
				time.Sleep(5 * testAliveTiming.checkEvery) // more checks: no second warning within warnEvery
			} else {
				time.Sleep(2 * testAliveTiming.grace)
			}
			warnings := noConsumerWarnings(t, buf.String())
			if tt.wantWarning && len(warnings) != 1 || !tt.wantWarning && len(warnings) != 0 {
				t.Fatalf("got %d warnings, want %v (once):\n%s", len(warnings), tt.wantWarning, buf.String())
			}
			if !tt.wantWarning {
				return
			}
			w := warnings[0]
			if w["level"] != "WARN" || !strings.Contains(fmt.Sprint(w["msg"]), "REDIS_URL") || w["redis_db"] != float64(0) {
				t.Errorf("got %v, want a warning naming REDIS_URL and redis_db 0", w)
			}
			if got, _ := w["transactions_waiting"].(float64); got < 1 {
				t.Errorf("got transactions_waiting %v, want at least 1", w["transactions_waiting"])
			}
		})
	}
}

// TestWarnIfNoConsumerRepeatsAndClears: the warning comes again every
// warnEvery while no connector shows itself, and once one does, an info
// line says so and the warnings stop.
func TestWarnIfNoConsumerRepeatsAndClears(t *testing.T) {
	_, rdb := startRedis(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := NewQueue(rdb, time.Hour).Enqueue(ctx, Transaction{UserID: 1, Amount: 100, Currency: "USD"}, ""); err != nil {
		t.Fatal(err)
	}
	tm := testAliveTiming
	tm.grace, tm.warnEvery = 200*time.Millisecond, 300*time.Millisecond
	log, buf := testLogger(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		warnIfNoConsumer(ctx, rdb, log, tm)
	}()
	defer func() { cancel(); <-done }()

	waitFor(t, "a second warning", func() bool { return strings.Count(buf.String(), noConsumerWarning) >= 2 })
	go keepConsumerAlive(ctx, rdb, "connector", tm)
	const again = "a psp-connector consumes this redis database again"
	waitFor(t, "the all-clear", func() bool { return strings.Contains(buf.String(), again) })
	before := strings.Count(buf.String(), noConsumerWarning)
	time.Sleep(3 * tm.warnEvery)
	if after := strings.Count(buf.String(), noConsumerWarning); after != before {
		t.Errorf("got %d warnings after the connector came, want none", after-before)
	}
	if n := strings.Count(buf.String(), again); n != 1 {
		t.Errorf("got %d all-clear lines, want 1", n)
	}
}

// readAndAck reads delivered+acked entries of Stream as a connector that
// then left would have, and acknowledges the last acked of them.
func readAndAck(t *testing.T, rdb *redis.Client, delivered, acked int) {
	t.Helper()
	ctx := context.Background()
	if err := rdb.XGroupCreateMkStream(ctx, Stream, Group, "0").Err(); err != nil {
		t.Fatal(err)
	}
	got, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: Group, Consumer: "gone", Streams: []string{Stream, ">"}, Count: int64(delivered + acked), Block: -1,
	}).Result()
	if err != nil || len(got) != 1 || len(got[0].Messages) != delivered+acked {
		t.Fatalf("XREADGROUP: got %v, %v", got, err)
	}
	for _, m := range got[0].Messages[delivered:] {
		if err := rdb.XAck(ctx, Stream, Group, m.ID).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// noConsumerWarnings returns the warnings of WarnIfNoConsumer in logs.
func noConsumerWarnings(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(logs, "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && strings.HasPrefix(fmt.Sprint(rec["msg"]), noConsumerWarning) {
			out = append(out, rec)
		}
	}
	return out
}
