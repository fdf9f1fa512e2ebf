package main

import (
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/acme-payments/platform/internal/users"
)

// failureLimit is the login limit of auth-api's own TCP port: after max
// failed logins (a wrong password, or no such user) for one username within
// window of the first, every POST /token for that username on that port is
// refused until the window has passed, the right password too, or the
// refusal would tell which password is right. The logins of a username being
// checked count too, until they are answered, so that logins sent together
// get no more password checks than the limit (a bcrypt user's 40 at once all
// were compared, each let through before any of them had failed): a login
// that comes while the username's failures and logins under way reach max is
// refused as well, for a second (Retry-After: 1), since those under way may
// yet succeed. The router's limit, per client address, does not reach that
// port (the services' ports serve the whole API, for the direct benchmark
// and fault tests); requests on the unix socket, HAProxy's way in, are never
// limited here, since a limit per username there would let anyone lock a
// user out. Unknown usernames share one count (key). A nil *failureLimit
// limits nothing.
type failureLimit struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu     sync.Mutex
	counts map[string]failures
	swept  time.Time // when counts was last cleared of windows that passed
}

// failures is one username's count in the window that began at since, and
// its logins admitted and not yet answered.
type failures struct {
	since    time.Time
	n        int
	checking int
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

// admit returns how long req's username stays refused, or 0 when its login
// may be checked: then it counts as under way until done is called, once.
// A username is refused while its key has had max failures in a window that
// has not passed yet, or (for a second) while its failures and its logins
// under way reach max. While its key has no failure, it reads no clock.
func (l *failureLimit) admit(db *users.DB, req tokenRequest) time.Duration {
	k := key(db, req)
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.counts[k]
	if f.n > 0 {
		now := l.now()
		l.sweep(now)
		if now.Sub(f.since) >= l.window {
			f.n = 0
		} else if f.n >= l.max {
			return f.since.Add(l.window).Sub(now)
		}
	}
	if f.n+f.checking >= l.max {
		return time.Second
	}
	f.checking++
	l.counts[k] = f
	return 0
}

// done ends a login admitted (admit returned 0), counting it when it failed.
func (l *failureLimit) done(db *users.DB, req tokenRequest, failed bool) {
	k := key(db, req)
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.counts[k]
	f.checking--
	if failed {
		now := l.now()
		if f.n == 0 || now.Sub(f.since) >= l.window {
			f.since, f.n = now, 0
		}
		f.n++
		l.counts[k] = f
		l.sweep(now)
		return
	}
	if f.n == 0 && f.checking == 0 {
		delete(l.counts, k)
		return
	}
	l.counts[k] = f
}

// sweep drops, once a window, the counts whose window has passed and that
// have no login under way, at a failure or at a login of a username with
// failures counted: the table holds at most one count per user plus one
// (key), and none once a window has passed since the last failure and a
// login of that username has come. l.mu is held.
func (l *failureLimit) sweep(now time.Time) {
	if now.Sub(l.swept) < l.window {
		return
	}
	for k, f := range l.counts {
		if f.checking == 0 && now.Sub(f.since) >= l.window {
			delete(l.counts, k)
		}
	}
	l.swept = now
}

// message is the 429's error, in the words of the router's.
func (l *failureLimit) message() string {
	return fmt.Sprintf("Too many failed logins: the limit is %d per %d seconds for one username on auth-api's own port", l.max, int(l.window/time.Second))
}

// retryAfter is wait in whole seconds, rounded up, at least 1.
func retryAfter(wait time.Duration) string {
	return fmt.Sprint(max(int64((wait+time.Second-1)/time.Second), 1))
}
