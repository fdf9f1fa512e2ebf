package txqueue

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestRouteClientLogsWhileAClientDials: a service's run routes go-redis's
// log lines while clients made earlier in the process may still be dialling
// in the background (go test runs a service's run once per test, next to
// the tests' own clients). Under -race this must not race.
func TestRouteClientLogsWhileAClientDials(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: filepath.Join(t.TempDir(), "none.sock"),
		DialerRetries: 1, MaxRetries: -1})
	defer rdb.Close()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() { // each failed dial is logged by go-redis
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			_ = rdb.Ping(ctx).Err()
			cancel()
		}
	}()
	for range 20 {
		RouteClientLogs(slog.New(slog.NewTextHandler(io.Discard, nil)))
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
}
