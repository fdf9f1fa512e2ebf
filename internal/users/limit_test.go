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
// asks for it only to wait for a bcrypt slot (or to take a free one).
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

// limitUsers is a DB of a bcrypt user "b" (the fake takes any password) and
// a plaintext one "p" (password "secret"), with at most k bcrypt
// comparisons at once.
func limitUsers(t *testing.T, k int) *DB {
	t.Helper()
	db, err := Parse([]byte(fmt.Sprintf(`[
		{"id": 1, "username": "b", "password": %q, "enabled": true},
		{"id": 2, "username": "p", "password": "secret", "enabled": true}
	]`, validHash)), "test users")
	if err != nil {
		t.Fatal(err)
	}
	db.LimitBcrypt(k)
	return db
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
			db := limitUsers(t, tt.k)
			f := newFakeBcrypt(t, db)
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
			db := limitUsers(t, k)
			f := newFakeBcrypt(t, db)
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
			db := limitUsers(t, 1)
			f := newFakeBcrypt(t, db)
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
// other requests, and takes one when there is only one.
func TestLimitBcrypt(t *testing.T) {
	def := max(1, runtime.GOMAXPROCS(0)-1)
	tests := []struct{ set, want int }{
		{0, def},
		{-1, def},
		{1, 1},
		{5, 5},
	}
	for _, tt := range tests {
		db, err := Load("")
		if err != nil {
			t.Fatal(err)
		}
		if got := db.BcryptLimit(); got != def {
			t.Errorf("by default: got %d, want GOMAXPROCS - 1 (at least 1), %d", got, def)
		}
		db.LimitBcrypt(tt.set)
		if got := db.BcryptLimit(); got != tt.want {
			t.Errorf("LimitBcrypt(%d): got %d, want %d", tt.set, got, tt.want)
		}
	}
}

// TestClientGoneEndsTheWait: with net/http, a login's context is its
// request's, which ends when the client closes the connection; a login
// waiting for a slot then returns ErrNotChecked without comparing. The
// client closes only once the login is waiting (watchedCtx), and the test
// waits for the handler's result: no timing.
func TestClientGoneEndsTheWait(t *testing.T) {
	db := limitUsers(t, 1)
	f := newFakeBcrypt(t, db)
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
