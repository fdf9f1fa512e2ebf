package txqueue

import (
	"context"
	"errors"
	"fmt"
	stdlog "log"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Client timeouts: short, so that a Redis outage turns into a quick error
// (a JSON 503, a failed health check) instead of a hung request.
const (
	dialTimeout = 1 * time.Second
	ioTimeout   = 1 * time.Second
	poolTimeout = 1 * time.Second
)

// poolSize is the connection pool's size unless REDIS_URL's pool_size says
// otherwise: one connection per request core-api may have in flight at the
// expected concurrency (64 merchants' connections), instead of go-redis's
// 10 per CPU. With appendfsync always every enqueue waits for an fsync that
// Redis shares among the commands it has read, so more connections in flight
// means more transactions per fsync. Connections are opened lazily.
const poolSize = 64

// ParseURL is redis.ParseURL with errors that do not repeat the URL's user
// name or password, that say which schemes there are, and that refuse a TCP
// port out of range at once (go-redis takes redis://host:99999 and fails
// only at each dial, with no word of the URL). The user name and password
// are taken to be everything between the scheme and the last '@', as a
// person means them: net/url ends the host at the first '/', '?' or '#', so
// a password holding one of them unescaped (base64 has '/') was read as
// host, port, path or query, and the error quoted a piece of it.
func ParseURL(redisURL string) (*redis.Options, error) {
	opts, err := parseURL(redisURL)
	if err == nil {
		return opts, nil
	}
	if stripped, ok := withoutUserinfo(redisURL); ok {
		// The error is the stripped URL's, which holds no credentials.
		if _, serr := parseURL(stripped); serr != nil {
			return nil, serr
		}
		return nil, errors.New("the user name or password (before the last '@') is not valid in a URL: percent-encode each '/', '?', '#', '%', '[', ']' or space in it ('/' is %2F)")
	}
	return nil, err
}

// parseURL is redis.ParseURL with the errors ParseURL describes, for a URL
// that may still hold credentials only when it parses.
func parseURL(redisURL string) (*redis.Options, error) {
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if strings.HasPrefix(err.Error(), "redis: invalid URL scheme") {
			// Only the scheme (letters, digits, '+', '-', '.'): never the
			// rest, which may hold a password.
			scheme := ""
			if u, perr := url.Parse(redisURL); perr == nil {
				scheme = u.Scheme
			}
			err = fmt.Errorf("redis: invalid URL scheme %q: want redis://host:port/db, rediss://host:port/db or unix:///path?db=N", scheme)
		}
		return nil, err
	}
	if opts.Network == "tcp" {
		_, port, _ := net.SplitHostPort(opts.Addr)
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("port %s is not a port number (1-65535)", port)
		}
	}
	return opts, nil
}

// withoutUserinfo returns redisURL without what may be its user name and
// password: everything from after "scheme:" and its slashes to the last '@'
// (false when there is no '@' after them).
func withoutUserinfo(redisURL string) (string, bool) {
	at := strings.LastIndex(redisURL, "@")
	if at < 0 {
		return redisURL, false
	}
	start := 0
	if scheme, rest, ok := strings.Cut(redisURL, ":"); ok {
		start = len(scheme) + 1 + len(rest) - len(strings.TrimLeft(rest, "/"))
	}
	if start > at {
		return redisURL, false
	}
	return redisURL[:start] + redisURL[at+1:], true
}

// Connect builds a client for redisURL (redis://, rediss:// or
// unix:///path?db=N, parsed by redis.ParseURL; options given in the URL's
// query win over the defaults here). It does not require Redis to be up, since
// services must tolerate Redis appearing later: connections are made lazily,
// and the scripts are preloaded only if Redis answers within ctx.
//
// Client-side retries are disabled: a timed-out EVALSHA may already have run,
// and re-sending it could queue a transaction twice.
func Connect(ctx context.Context, redisURL string) (*redis.Client, error) {
	if redisURL == "" {
		return nil, errors.New("REDIS_URL is empty")
	}
	opts, err := ParseURL(redisURL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = dialTimeout
	}
	if opts.ReadTimeout == 0 {
		opts.ReadTimeout = ioTimeout
	}
	if opts.WriteTimeout == 0 {
		opts.WriteTimeout = ioTimeout
	}
	if opts.PoolSize == 0 {
		opts.PoolSize = poolSize
	}
	if opts.PoolTimeout == 0 {
		opts.PoolTimeout = poolTimeout
	}
	if opts.MaxRetries == 0 {
		opts.MaxRetries = -1
	}
	if opts.DialerRetries == 0 {
		opts.DialerRetries = 1
	}
	// Context deadlines (the health check's 500 ms, the connector's shutdown
	// grace) bound Redis calls too.
	opts.ContextTimeoutEnabled = true
	// A self-hosted Redis has no maintenance notifications; asking costs a
	// round trip per connection.
	opts.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	rdb := redis.NewClient(opts)
	loadScripts(ctx, rdb)
	return rdb, nil
}

// loadScripts preloads every script so that the first EVALSHA, and the
// pipelined ones that cannot fall back to EVAL, find them. Errors are ignored:
// Redis may not be up yet, and callers recover from NOSCRIPT.
func loadScripts(ctx context.Context, rdb redis.Scripter) {
	for _, s := range allScripts {
		if err := s.Load(ctx, rdb).Err(); err != nil {
			return
		}
	}
}

// RouteClientLogs sends go-redis's own log lines (such as "failed to dial",
// repeated while Redis is down) to log at debug level, instead of plain text
// on stderr: the services already log each failure where it matters. It sets
// process-wide state, so only a service's run should call it.
//
// go-redis reads its logger without synchronisation, from any goroutine that
// dials (a pool keeps dialling in the background after its caller gave up),
// so the logger is installed once, at init, before any client exists, and
// this only swaps where it writes. Calling redis.SetLogger here raced with
// the dials of clients made earlier in the same process (go test -race, with
// a service's run called once per test).
func RouteClientLogs(log *slog.Logger) {
	routedLog.Store(log)
}

// routedLog is where clientLogger writes; nil until RouteClientLogs.
var routedLog atomic.Pointer[slog.Logger]

func init() { redis.SetLogger(clientLogger{}) }

// defaultClientLog writes as go-redis's default logger does.
var defaultClientLog = stdlog.New(os.Stderr, "redis: ", stdlog.LstdFlags|stdlog.Lshortfile)

type clientLogger struct{}

func (clientLogger) Printf(ctx context.Context, format string, v ...any) {
	if log := routedLog.Load(); log != nil {
		log.DebugContext(ctx, "redis client", "detail", fmt.Sprintf(format, v...))
		return
	}
	_ = defaultClientLog.Output(2, fmt.Sprintf(format, v...))
}
