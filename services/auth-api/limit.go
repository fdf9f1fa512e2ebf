package main

import (
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acme-payments/platform/internal/users"
)

// failureLimit is the login limit of auth-api's own TCP port: after max
// failed logins (a wrong password, or no such user) for one username within
// window of the first, every POST /token for that username on that port is
// refused until the window has passed, the right password too, or the
// refusal would tell which password is right. The router's limit, per client
// address, does not reach that port (the services' ports serve the whole API,
// for the direct benchmark and fault tests); requests on the unix socket,
// HAProxy's way in, are never limited here, since a limit per username there
// would let anyone lock a user out. Unknown usernames share one count (key).
// A nil *failureLimit limits nothing.
type failureLimit struct {
	max    int
	window time.Duration
	now    func() time.Time

	// tracked is len(counts), read without the lock: while it is 0 (no
	// failure on the port within a window), a login takes no lock.
	tracked atomic.Int64
	mu      sync.Mutex
	counts  map[string]failures
	swept   time.Time // when counts was last cleared of windows that passed
}

// failures is one username's count in the window that began at since.
type failures struct {
	since time.Time
	n     int
}

// newFailureLimit returns a limit of n failed logins per window, or nil
// (no limit) when n is 0. now is the clock (time.Now; tests pass their own).
func newFailureLimit(n int, window time.Duration, now func() time.Time) *failureLimit {
	if n == 0 {
		return nil
	}
	return &failureLimit{max: n, window: window, now: now, counts: make(map[string]failures)}
}

// appliesTo says whether r came on the TCP port (net/http's local address
// for its connection), the only one limited; false for a nil limit.
func (l *failureLimit) appliesTo(r *http.Request) bool {
	if l == nil {
		return false
	}
	_, tcp := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr)
	return tcp
}

// key is what a login's failures count under: the username when the users
// file has that user, and "" (no user's name: the file has none blank) for
// any other, so that the counts never outnumber the users by more than one,
// however many names a client makes up. Unknown names never log in, so
// refusing them all together locks no one out; and none of them can push a
// user's count out of a bounded table.
func key(db *users.DB, req tokenRequest) string {
	if req.UsernameNotString || !db.Exists(req.Username) {
		return ""
	}
	return req.Username
}

// refused returns how long req's username stays refused: 0 unless its key
// has had max failures in a window that has not passed yet. While no
// failure is counted it costs one atomic load.
func (l *failureLimit) refused(db *users.DB, req tokenRequest) time.Duration {
	if l.tracked.Load() == 0 {
		return 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	f, ok := l.counts[key(db, req)]
	if !ok || f.n < l.max {
		return 0
	}
	return max(f.since.Add(l.window).Sub(now), 0)
}

// fail counts a failed login of req's username.
func (l *failureLimit) fail(db *users.DB, req tokenRequest) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	k := key(db, req)
	f := l.counts[k]
	if f.n == 0 || now.Sub(f.since) >= l.window {
		f = failures{since: now}
	}
	f.n++
	l.counts[k] = f
	l.tracked.Store(int64(len(l.counts)))
}

// sweep drops, once a window, the counts whose window has passed, so that
// the table holds only usernames that failed within the last two windows,
// and goes back to empty (and logins to taking no lock) a window after the
// last failure. l.mu is held.
func (l *failureLimit) sweep(now time.Time) {
	if now.Sub(l.swept) < l.window {
		return
	}
	for k, f := range l.counts {
		if now.Sub(f.since) >= l.window {
			delete(l.counts, k)
		}
	}
	l.swept = now
	l.tracked.Store(int64(len(l.counts)))
}

// message is the 429's error, in the words of the router's.
func (l *failureLimit) message() string {
	return fmt.Sprintf("Too many failed logins: the limit is %d per %d seconds for one username on auth-api's own port", l.max, int(l.window/time.Second))
}

// retryAfter is wait in whole seconds, rounded up, at least 1.
func retryAfter(wait time.Duration) string {
	return fmt.Sprint(max(int64((wait+time.Second-1)/time.Second), 1))
}
