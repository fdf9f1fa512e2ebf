package users

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeBcrypt stands in for bcrypt.CompareHashAndPassword (DB.compare): it
// counts the comparisons under way, reports each one's password on entered
// as it starts, and holds those whose password starts with "hold" until
// release is closed. Every password matches.
type fakeBcrypt struct {
	entered chan string
	release chan struct{}

	mu       sync.Mutex
	inFlight int // comparisons under way
	most     int // the most ever under way at once
	calls    int
}

func newFakeBcrypt(t *testing.T, db *DB) *fakeBcrypt {
	t.Helper()
	f := &fakeBcrypt{entered: make(chan string, 64), release: make(chan struct{})}
	db.compare = f.compare
	return f
}

func (f *fakeBcrypt) compare(_, password []byte) error {
	f.mu.Lock()
	f.calls++
	f.inFlight++
	f.most = max(f.most, f.inFlight)
	f.mu.Unlock()
	f.entered <- string(password)
	if strings.HasPrefix(string(password), "hold") {
		<-f.release
	}
	f.mu.Lock()
	f.inFlight--
	f.mu.Unlock()
	return nil
}

// counts returns the comparisons under way, the most at once and the calls.
func (f *fakeBcrypt) counts() (inFlight, most, calls int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inFlight, f.most, f.calls
}

// watchedCtx closes asked the first time its Done is called: Authenticate
// asks for it only to wait for a bcrypt slot.
type watchedCtx struct {
	context.Context
	once  sync.Once
	asked chan struct{}
}

func watch(ctx context.Context) *watchedCtx {
	return &watchedCtx{Context: ctx, asked: make(chan struct{})}
}

func (c *watchedCtx) Done() <-chan struct{} {
	c.once.Do(func() { close(c.asked) })
	return c.Context.Done()
}

// limitUsers is a DB of a bcrypt user "b" and a plaintext one "p"
// (password "secret"), with at most slots bcrypt comparisons at once and
// waiting logins allowed to wait for one (LimitBcrypt: 0 for its default),
// and the fakeBcrypt that makes its comparisons (it takes any password).
func limitUsers(t *testing.T, slots, waiting int) (*DB, *fakeBcrypt) {
	t.Helper()
	db, err := Parse([]byte(fmt.Sprintf(`[
		{"id": 1, "username": "b", "password": %q, "enabled": true},
		{"id": 2, "username": "p", "password": "secret", "enabled": true}
	]`, validHash)), "test users")
	if err != nil {
		t.Fatal(err)
	}
	db.LimitBcrypt(slots, waiting)
	return db, newFakeBcrypt(t, db)
}

// holdSlots starts n logins of "b" that the fake holds, and returns once
// all n are comparing, with a function that lets them finish and checks
// that each succeeded.
func holdSlots(t *testing.T, db *DB, f *fakeBcrypt, n int) (finish func()) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := db.Authenticate(context.Background(), "b", fmt.Sprintf("hold-%d", i))
			errs <- err
		}()
	}
	for range n {
		<-f.entered
	}
	return func() {
		close(f.release)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("a held login: got %v, want it to succeed", err)
			}
		}
	}
}

// TestBcryptComparisonsAreBounded: n logins of a bcrypt user at once run at
// most k comparisons at once (LimitBcrypt); the rest wait for a slot, and
// every one of them gets its turn. No timing: each login is seen either
// asking for a slot (watchedCtx) or comparing (fakeBcrypt), and the fake
// holds every comparison until all have been seen.
func TestBcryptComparisonsAreBounded(t *testing.T) {
	tests := []struct{ k, n int }{
		{1, 4},
		{2, 6},
		{3, 10},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d slots, %d logins", tt.k, tt.n), func(t *testing.T) {
			db, f := limitUsers(t, tt.k, 0)
			asked := make(chan int, tt.n)
			stop := make(chan struct{})
			defer close(stop)
			var wg sync.WaitGroup
			errs := make([]error, tt.n)
			returned := make(chan int, tt.n)
			for i := range tt.n {
				ctx := watch(context.Background())
				go func() {
					select {
					case <-ctx.asked:
						asked <- i
					case <-stop:
					}
				}()
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = db.Authenticate(ctx, "b", fmt.Sprintf("hold-%d", i))
					returned <- i
				}()
			}
			// Wait until every login has been seen and the first k compare
			// (without a bound: all n compare, and each is seen comparing).
			seen := make(map[int]bool)
			entered := 0
			for len(seen) < tt.n || entered < tt.k {
				select {
				case i := <-asked:
					seen[i] = true
				case pw := <-f.entered:
					entered++
					var i int
					if _, err := fmt.Sscanf(pw, "hold-%d", &i); err != nil {
						t.Fatal(err)
					}
					seen[i] = true
				case i := <-returned:
					t.Fatalf("login %d returned (%v) while every comparison was held: it neither waited for a slot nor compared", i, errs[i])
				}
			}
			if inFlight, _, _ := f.counts(); inFlight != tt.k {
				t.Errorf("with %d logins under way: got %d comparisons at once, want %d", tt.n, inFlight, tt.k)
			}
			close(f.release)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("login %d: got %v, want it to succeed once its turn came", i, err)
				}
			}
			if _, most, calls := f.counts(); most != tt.k || calls != tt.n {
				t.Errorf("got at most %d comparisons at once and %d in all, want %d and %d", most, calls, tt.k, tt.n)
			}
		})
	}
}

// TestCancelledWaiterDoesNotCompare: a login waiting for a bcrypt slot
// whose context ends (the client went away, the server is closing) returns
// ErrNotChecked, wrapping the context's error, at once and without a
// comparison.
func TestCancelledWaiterDoesNotCompare(t *testing.T) {
	for _, k := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d slots", k), func(t *testing.T) {
			db, f := limitUsers(t, k, 0)
			finish := holdSlots(t, db, f, k)
			defer finish()

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			wctx := watch(ctx)
			done := make(chan error, 1)
			go func() {
				_, err := db.Authenticate(wctx, "b", "waiter")
				done <- err
			}()
			select {
			case <-wctx.asked: // waiting for a slot
				cancel()
			case pw := <-f.entered:
				t.Errorf("the login compared (%q) with all %d slots taken", pw, k)
			case err := <-done:
				t.Fatalf("the login returned (%v) with all %d slots taken, before its context ended: it did not wait", err, k)
			}
			err := <-done
			if !errors.Is(err, ErrNotChecked) || !errors.Is(err, context.Canceled) {
				t.Errorf("got %v, want ErrNotChecked wrapping context.Canceled", err)
			}
			if _, _, calls := f.counts(); calls != k {
				t.Errorf("got %d comparisons, want only the %d held ones", calls, k)
			}
		})
	}
}

// TestOnlyBcryptComparisonsWait: unknown users, plaintext users and
// passwords too long for bcrypt never take a slot, so they are answered
// even with every slot taken and their context over; a bcrypt user whose
// context has ended is not compared, even with a slot free.
func TestOnlyBcryptComparisonsWait(t *testing.T) {
	long := strings.Repeat("x", maxBcryptPassword+1)
	tests := []struct {
		username, password string
		want               User
		wantErr            error
	}{
		{"p", "secret", User{2, "p", true}, nil},
		{"p", "wrong", User{}, ErrInvalidPassword},
		{"nobody", "secret", User{}, ErrNotFound},
		{"b", long, User{}, ErrInvalidPassword},
		{"b", "password", User{}, ErrNotChecked},
	}
	for _, held := range []bool{true, false} {
		name := "a slot free"
		if held {
			name = "every slot taken"
		}
		t.Run(name, func(t *testing.T) {
			db, f := limitUsers(t, 1, 0)
			held0 := 0
			if held {
				held0 = 1
				defer holdSlots(t, db, f, 1)()
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			for _, tt := range tests {
				t.Run(tt.username+"/"+tt.password[:min(len(tt.password), 8)], func(t *testing.T) {
					got, err := db.Authenticate(ctx, tt.username, tt.password)
					if !errors.Is(err, tt.wantErr) || got != tt.want {
						t.Errorf("got %+v, %v; want %+v, %v", got, err, tt.want, tt.wantErr)
					}
				})
			}
			if _, _, calls := f.counts(); calls != held0 {
				t.Errorf("got %d comparisons, want %d (the held ones)", calls, held0)
			}
		})
	}
}

// TestLimitBcrypt: the default leaves one of GOMAXPROCS's cores to the
// other requests, and takes one when there is only one; by default
// DefaultWaitingPerSlot logins may wait per slot.
func TestLimitBcrypt(t *testing.T) {
	def := max(1, runtime.GOMAXPROCS(0)-1)
	tests := []struct{ slots, waiting, wantSlots, wantWaiting int }{
		{0, 0, def, DefaultWaitingPerSlot * def},
		{-1, -1, def, DefaultWaitingPerSlot * def},
		{1, 0, 1, DefaultWaitingPerSlot},
		{5, 0, 5, 5 * DefaultWaitingPerSlot},
		{0, 7, def, 7},
		{2, 1, 2, 1},
	}
	for _, tt := range tests {
		db, err := Load("")
		if err != nil {
			t.Fatal(err)
		}
		if got, gotWaiting := db.BcryptLimit(), db.BcryptWaitingLimit(); got != def || gotWaiting != DefaultWaitingPerSlot*def {
			t.Errorf("by default: got %d slots and %d waiting, want GOMAXPROCS - 1 (at least 1), %d, and %d", got, gotWaiting, def, DefaultWaitingPerSlot*def)
		}
		db.LimitBcrypt(tt.slots, tt.waiting)
		if got, gotWaiting := db.BcryptLimit(), db.BcryptWaitingLimit(); got != tt.wantSlots || gotWaiting != tt.wantWaiting {
			t.Errorf("LimitBcrypt(%d, %d): got %d slots and %d waiting, want %d and %d", tt.slots, tt.waiting, got, gotWaiting, tt.wantSlots, tt.wantWaiting)
		}
	}
}

// TestClientGoneEndsTheWait: with net/http, a login's context is its
// request's, which ends when the client closes the connection; a login
// waiting for a slot then returns ErrNotChecked without comparing. The
// client closes only once the login is waiting (watchedCtx), and the test
// waits for the handler's result: no timing.
func TestClientGoneEndsTheWait(t *testing.T) {
	db, f := limitUsers(t, 1, 0)
	defer holdSlots(t, db, f, 1)()

	waiting := make(chan struct{})
	result := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := watch(r.Context())
		go func() {
			<-ctx.asked
			close(waiting)
		}()
		_, err := db.Authenticate(ctx, "b", "gone")
		result <- err
	}))
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, "POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-waiting:
	case pw := <-f.entered:
		t.Fatalf("the login compared (%q) with the only slot taken", pw)
	case err := <-result:
		t.Fatalf("the login returned (%v) with the only slot taken, before its client went away: it did not wait", err)
	}
	conn.Close()
	if err := <-result; !errors.Is(err, ErrNotChecked) || !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want ErrNotChecked wrapping context.Canceled", err)
	}
	if _, _, calls := f.counts(); calls != 1 {
		t.Errorf("got %d comparisons, want only the held one", calls)
	}
}

// fillWaiting starts n logins of "b" that wait for a slot (all slots held
// by holdSlots), and returns once each is seen waiting (watchedCtx), with
// their results: each ends when a slot frees, or when its cancel is called.
func fillWaiting(t *testing.T, db *DB, f *fakeBcrypt, n int) (results []chan error, cancels []context.CancelFunc) {
	t.Helper()
	for i := range n {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		wctx := watch(ctx)
		done := make(chan error, 1)
		go func() {
			_, err := db.Authenticate(wctx, "b", fmt.Sprintf("wait-%d", i))
			done <- err
		}()
		select {
		case <-wctx.asked:
		case pw := <-f.entered:
			t.Fatalf("waiting login %d compared (%q) with every slot held", i, pw)
		case err := <-done:
			t.Fatalf("waiting login %d returned (%v) with every slot held and %d waiting before it: it was refused, want it to wait", i, err, i)
		}
		results = append(results, done)
		cancels = append(cancels, cancel)
	}
	return results, cancels
}

// tryLogin starts one login of "b" with every slot held and says how it
// went: it waited for a slot (waited; it is left waiting), or it returned
// err at once; one that compares fails the test.
func tryLogin(t *testing.T, db *DB, f *fakeBcrypt, password string) (waited bool, err error) {
	t.Helper()
	wctx := watch(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := db.Authenticate(wctx, "b", password)
		done <- err
	}()
	select {
	case err := <-done:
		return false, err
	case <-wctx.asked:
		return true, nil
	case pw := <-f.entered:
		t.Fatalf("login %q compared (%q) with every slot held", password, pw)
	}
	return false, nil
}

// checkOthersNeverWait checks that the logins that never wait for a bcrypt
// slot (a plaintext user, an unknown one, a password bcrypt would not look
// at) are answered as ever, when (a phrase for the errors) every place is
// taken or waits are over.
func checkOthersNeverWait(t *testing.T, db *DB, when string) {
	t.Helper()
	for _, other := range []struct {
		username, password string
		want               error
	}{
		{"p", "secret", nil},
		{"p", "wrong", ErrInvalidPassword},
		{"nobody", "secret", ErrNotFound},
		{"b", strings.Repeat("x", maxBcryptPassword+1), ErrInvalidPassword},
	} {
		if _, err := db.Authenticate(context.Background(), other.username, other.password); !errors.Is(err, other.want) || (other.want == nil) != (err == nil) {
			t.Errorf("%s %s: got %v, want %v", other.username, when, err, other.want)
		}
	}
}

// TestWaitingLoginsAreBounded: with n slots and m logins allowed to wait
// (LimitBcrypt), n logins comparing and m waiting, the next bcrypt login is
// refused at once with ErrTooManyWaiting (auth-api's 503): it neither waits
// nor compares. Plaintext and unknown users, and passwords too long for
// bcrypt, are answered as ever. Once the held comparisons end, all n+m are
// checked, and the next login compares again. No timing: each login is seen
// comparing (fakeBcrypt), waiting (watchedCtx) or returned.
func TestWaitingLoginsAreBounded(t *testing.T) {
	tests := []struct{ n, m int }{
		{1, 1},
		{1, 4},
		{2, 3},
		{3, 6},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d slots, %d waiting", tt.n, tt.m), func(t *testing.T) {
			db, f := limitUsers(t, tt.n, tt.m)
			finish := holdSlots(t, db, f, tt.n)
			waiting, _ := fillWaiting(t, db, f, tt.m)

			waited, err := tryLogin(t, db, f, "one too many")
			if waited {
				t.Fatalf("login %d of %d slots and %d waiting: it waits, want it refused at once", tt.n+tt.m+1, tt.n, tt.m)
			}
			if !errors.Is(err, ErrTooManyWaiting) || !errors.Is(err, ErrNotChecked) {
				t.Errorf("login %d: got %v, want ErrTooManyWaiting (an ErrNotChecked)", tt.n+tt.m+1, err)
			}
			checkOthersNeverWait(t, db, "with every place taken")

			finish() // the held logins succeed...
			for i, done := range waiting {
				if err := <-done; err != nil { // ...and so do the waiting ones
					t.Errorf("waiting login %d: got %v, want it checked once its turn came", i, err)
				}
			}
			if _, most, calls := f.counts(); most != tt.n || calls != tt.n+tt.m {
				t.Errorf("got at most %d comparisons at once and %d in all, want %d and %d (the refused login not compared)", most, calls, tt.n, tt.n+tt.m)
			}
			if _, err := db.Authenticate(context.Background(), "b", "after"); err != nil {
				t.Errorf("a login after the others ended: got %v, want it checked", err)
			}
		})
	}
}

// TestWaiterThatLeavesFreesItsPlace: a waiting login whose context ends
// (its client went away) leaves the wait, and the next login may wait in
// its place instead of being refused.
func TestWaiterThatLeavesFreesItsPlace(t *testing.T) {
	db, f := limitUsers(t, 1, 2)
	defer holdSlots(t, db, f, 1)()
	waiting, cancels := fillWaiting(t, db, f, 2)

	if waited, err := tryLogin(t, db, f, "refused"); waited || !errors.Is(err, ErrTooManyWaiting) {
		t.Fatalf("with 1 comparing and 2 waiting: got waited=%v, %v; want ErrTooManyWaiting at once", waited, err)
	}
	cancels[0]()
	if err := <-waiting[0]; !errors.Is(err, ErrNotChecked) || !errors.Is(err, context.Canceled) {
		t.Fatalf("the waiter whose context ended: got %v, want ErrNotChecked wrapping context.Canceled", err)
	}
	if waited, err := tryLogin(t, db, f, "in its place"); !waited {
		t.Errorf("after a waiter left: got %v, want the next login to wait", err)
	}
}

// TestStopWaitingEndsTheWaits: once StopWaiting is called (auth-api: its
// drain has begun), every login waiting for a bcrypt slot returns
// ErrStopping (an ErrNotChecked: auth-api's 503) at once, without a
// comparison, and a bcrypt login that finds every slot taken is refused at
// once instead of waiting; the comparisons under way finish and succeed.
// Plaintext and unknown users, and passwords too long for bcrypt, are
// answered as ever, and a bcrypt login that finds a slot free is still
// compared. No timing: each login is seen comparing (fakeBcrypt), waiting
// (watchedCtx) or returned; a bound of 10 s only turns a login that keeps
// waiting into a failure.
func TestStopWaitingEndsTheWaits(t *testing.T) {
	tests := []struct{ n, m int }{
		{1, 1},
		{1, 4},
		{2, 3},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d slots, %d waiting", tt.n, tt.m), func(t *testing.T) {
			db, f := limitUsers(t, tt.n, tt.m+1)
			finish := holdSlots(t, db, f, tt.n)
			waiting, _ := fillWaiting(t, db, f, tt.m)

			db.StopWaiting()
			for i, done := range waiting {
				select {
				case err := <-done:
					if !errors.Is(err, ErrStopping) || !errors.Is(err, ErrNotChecked) {
						t.Errorf("waiting login %d after StopWaiting: got %v, want ErrStopping (an ErrNotChecked)", i, err)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("waiting login %d still waits 10 s after StopWaiting, for a slot held all along", i)
				}
			}
			// A place is free to wait in (m+1 may wait), but none waits now.
			if err := loginWithin(t, db, "after the stop"); !errors.Is(err, ErrStopping) {
				t.Errorf("a bcrypt login with every slot taken after StopWaiting: got %v, want ErrStopping at once", err)
			}
			checkOthersNeverWait(t, db, "after StopWaiting")
			if _, _, calls := f.counts(); calls != tt.n {
				t.Errorf("got %d comparisons, want only the %d held ones", calls, tt.n)
			}

			finish()         // the comparisons under way finish and succeed
			db.StopWaiting() // twice is harmless
			if _, err := db.Authenticate(context.Background(), "b", "a slot free"); err != nil {
				t.Errorf("a bcrypt login with a slot free after StopWaiting: got %v, want it compared", err)
			}
			if _, _, calls := f.counts(); calls != tt.n+1 {
				t.Errorf("got %d comparisons in all, want %d: the held ones and the last", calls, tt.n+1)
			}
		})
	}
}

// loginWithin runs a login of "b" and returns its error, failing the test
// when it has not returned within 10 s: it waits, for a slot held all along.
func loginWithin(t *testing.T, db *DB, password string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := db.Authenticate(context.Background(), "b", password)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("login %q still waits after 10 s", password)
	}
	return nil
}
