package txqueue

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestDurabilityProblems: a real Redis, its settings changed with CONFIG
// SET, says what would lose a transaction answered 200 (everysec too: a
// kill -9 of Redis loses what it answered while an fsync ran, D6); the
// stack's settings (redistest's: appendonly yes, appendfsync always, no
// maxmemory) say nothing.
func TestDurabilityProblems(t *testing.T) {
	tests := []struct {
		name string
		set  []string // CONFIG SET name value, pairs
		want []string // a substring of each problem, in order; none: nothing wrong
	}{
		{"the stack's settings", nil, nil},
		// everysec answers before the AOF is written whenever an fsync is
		// still running (D6: kill -9 of Redis lost 2 of 3 acknowledged
		// enqueues, idempotency records with them, in 3 runs of 5 here).
		{"everysec", []string{"appendfsync", "everysec"}, []string{"appendfsync is everysec"}},
		{"no AOF", []string{"appendonly", "no"}, []string{`appendonly is "no"`}},
		{"AOF left to the kernel", []string{"appendfsync", "no"}, []string{"appendfsync is no"}},
		// Redis's own redis.conf: while a child saves or rewrites, "the
		// durability of Redis is the same as appendfsync no".
		{"no fsync during a rewrite", []string{"no-appendfsync-on-rewrite", "yes"}, []string{"no-appendfsync-on-rewrite is yes"}},
		{"an evicting policy without maxmemory evicts nothing", []string{"maxmemory-policy", "allkeys-lru"}, nil},
		{"an evicting policy with maxmemory", []string{"maxmemory", "1000000000", "maxmemory-policy", "volatile-ttl"},
			[]string{`maxmemory-policy is "volatile-ttl" with maxmemory 1000000000`}},
		{"noeviction with maxmemory", []string{"maxmemory", "1000000000", "maxmemory-policy", "noeviction"}, nil},
		{"both", []string{"appendonly", "no", "maxmemory", "1000000000", "maxmemory-policy", "allkeys-lru"},
			[]string{`appendonly is "no"`, `maxmemory-policy is "allkeys-lru"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rdb := startRedis(t)
			ctx := context.Background()
			for i := 0; i+1 < len(tt.set); i += 2 {
				if err := rdb.ConfigSet(ctx, tt.set[i], tt.set[i+1]).Err(); err != nil {
					t.Fatalf("CONFIG SET %s %s: %v", tt.set[i], tt.set[i+1], err)
				}
			}
			_, got, err := DurabilityProblems(ctx, rdb)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d problems %q, want %d (%q)", len(got), got, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %d: got %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}

// TestWarnIfNotDurable: once Redis answers, one warning per problem, or
// one line saying its settings keep what it answers. Started while Redis is
// down (killed here), it waits for it.
func TestWarnIfNotDurable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	t.Run("a Redis without AOF", func(t *testing.T) {
		_, rdb := startRedis(t)
		if err := rdb.ConfigSet(ctx, "appendonly", "no").Err(); err != nil {
			t.Fatal(err)
		}
		log, buf := testLogger(t)
		WarnIfNotDurable(ctx, rdb, log)
		if n := strings.Count(buf.String(), "redis may lose transactions answered 200"); n != 1 || !strings.Contains(buf.String(), "appendonly") {
			t.Errorf("got %d warnings, want 1 naming appendonly:\n%s", n, buf.String())
		}
	})

	t.Run("a Redis that refuses CONFIG", func(t *testing.T) {
		srv, admin := startRedis(t)
		if err := admin.Do(ctx, "ACL", "SETUSER", "app", "on", ">app-password", "~*", "&*", "+@all", "-config").Err(); err != nil {
			t.Fatal(err)
		}
		rdb, err := Connect(ctx, "unix://app:app-password@"+srv.Socket)
		if err != nil {
			t.Fatal(err)
		}
		defer rdb.Close()
		log, buf := testLogger(t)
		WarnIfNotDurable(ctx, rdb, log)
		if !strings.Contains(buf.String(), "could not read redis's persistence settings") || !strings.Contains(buf.String(), "NOPERM") {
			t.Errorf("want one line saying the settings could not be read (NOPERM):\n%s", buf.String())
		}
	})

	t.Run("a Redis that is down at first", func(t *testing.T) {
		srv, rdb := startRedis(t)
		log, buf := testLogger(t)
		srv.Kill()
		done := make(chan struct{})
		go func() {
			WarnIfNotDurable(ctx, rdb, log)
			close(done)
		}()
		time.Sleep(1500 * time.Millisecond) // two tries, at least one of them on a Redis that is down
		select {
		case <-done:
			t.Fatalf("returned while Redis was down:\n%s", buf.String())
		default:
		}
		srv.Restart(t)
		select {
		case <-done:
		case <-ctx.Done():
			t.Fatal("did not return within 20 s of Redis's restart")
		}
		if n := strings.Count(buf.String(), "redis keeps what it answers"); n != 1 || strings.Contains(buf.String(), "may lose") {
			t.Errorf("got %d lines saying Redis keeps what it answers, want 1 and no warning:\n%s", n, buf.String())
		}
	})
}

// TestGoWarnIfNotDurableStops: its stop ends the check while Redis is still
// down, with ctx not done (a service's run returning with an error), and
// nothing is logged after it returns.
func TestGoWarnIfNotDurableStops(t *testing.T) {
	srv, rdb := startRedis(t)
	log, buf := testLogger(t)
	srv.Kill()
	stop := GoWarnIfNotDurable(context.Background(), rdb, log)
	time.Sleep(100 * time.Millisecond) // its first try, on a Redis that is down
	stopped := make(chan struct{})
	go func() {
		stop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("stop did not return within 10 s")
	}
	if got := buf.String(); got != "" {
		t.Errorf("logged while Redis was down, want nothing:\n%s", got)
	}
}
