package token

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// steppedTime returns a time that reads wall on the wall clock and mono's
// monotonic reading, as time.Now does after the host's clock was stepped
// (NTP, an operator's date -s): the monotonic clock went on, the wall clock
// jumped. Go offers no way to make one (Add moves both readings), so it is
// put together through time.Time's layout, and checked.
func steppedTime(t testing.TB, wall, mono time.Time) time.Time {
	t.Helper()
	type layout struct {
		wall uint64
		ext  int64 // the monotonic reading, when the wall field's top bit says there is one
		loc  *time.Location
	}
	if unsafe.Sizeof(time.Time{}) != unsafe.Sizeof(layout{}) {
		t.Fatal("time.Time's layout changed: the stepped clock cannot be built")
	}
	r := mono.Add(wall.Sub(mono.Round(0))) // wall's wall reading; both moved alike
	(*layout)(unsafe.Pointer(&r)).ext = (*layout)(unsafe.Pointer(&mono)).ext
	// String ends in "m=±<value>" when the time has a monotonic reading.
	if r.Sub(mono) != 0 || !r.Round(0).Equal(wall) || !strings.Contains(r.String(), " m=") {
		t.Fatalf("time.Time's layout changed: built %v from wall %v and monotonic %v", r, wall, mono)
	}
	return r
}

// TestVerifyCacheFollowsTheWallClock: core-api's clock is time.Now, whose
// readings carry a monotonic clock. The cache must still give the full
// check's answer after the wall clock is stepped, since the full check (exp,
// nbf, iat, the lifetime from now) reads the wall clock: in particular a
// token issued before a step back must not stay valid for the step's length.
func TestVerifyCacheFollowsTheWallClock(t *testing.T) {
	start := time.Now() // with a monotonic reading, as in core-api
	wall0 := start.Round(0).Truncate(time.Second)
	iss := NewIssuer(testSecret, func() time.Time { return wall0 })
	raw, err := iss.Issue(1, "alice", true)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		wall    time.Duration // the wall clock, from the token's issue
		mono    time.Duration // the time gone by (the monotonic clock), from the token's issue
		wantErr error
	}{
		{"stepped back within the skew", -2 * time.Second, time.Second, nil},
		{"stepped back beyond the skew", -10 * time.Second, time.Second, ErrIssuedInFuture},
		{"stepped back an hour", -time.Hour, time.Second, ErrIssuedInFuture},
		{"stepped back an hour, a minute after issue", -time.Hour + time.Minute, time.Minute, ErrIssuedInFuture},
		{"stepped forward past exp", TTL + time.Second, time.Second, ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The first check at issue; then time goes by (tt.mono) and
			// the wall clock is stepped.
			now := steppedTime(t, wall0, start)
			v := NewVerifier(testSecret, func() time.Time { return now })
			if _, err := v.Verify(raw); err != nil {
				t.Fatalf("at issue: got %v, want none", err)
			}
			now = steppedTime(t, wall0.Add(tt.wall), start.Add(tt.mono))
			got, err := v.Verify(raw)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("after the step: got claims %+v, error %v; want error %v", got, err, tt.wantErr)
			}
			// A verifier that has never seen the token agrees.
			want, wantErr := NewVerifier(testSecret, func() time.Time { return now }).Verify(raw)
			if got != want || !errors.Is(err, wantErr) {
				t.Errorf("got %+v, %v; want the full check's %+v, %v", got, err, want, wantErr)
			}
		})
	}
}
