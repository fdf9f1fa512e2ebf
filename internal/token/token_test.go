package token

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var (
	testSecret = []byte("0123456789abcdef0123456789abcdef")
	testNow    = time.Unix(1_700_000_000, 0)
)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// signRaw builds a token from literal header and payload JSON, signed with
// HMAC-SHA256 under secret whatever the header says.
func signRaw(t testing.TB, header, payload string, secret []byte) string {
	t.Helper()
	in := b64(header) + "." + b64(payload)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// payload returns claims JSON around now with fields overridden (a nil value
// removes the field).
func payload(t testing.TB, over map[string]any) string {
	t.Helper()
	c := map[string]any{
		"user_id":  1,
		"username": "alice",
		"enabled":  true,
		"exp":      testNow.Add(TTL).Unix(),
		"iat":      testNow.Unix(),
	}
	for k, v := range over {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const hs256 = `{"alg":"HS256","typ":"JWT"}`

func TestIssueThenVerify(t *testing.T) {
	iss := NewIssuer(testSecret, fixedClock(testNow))
	tests := []struct {
		id       int64
		username string
		enabled  bool
	}{
		{1, "alice", true},
		{3, "charlie", false},
		{42, "zoë \"quoted\"", true},
		// The users file takes any positive int64 id.
		{1_000_000_000_000_000_000, "nineteen digits", true},
		{math.MaxInt64, "max int64", true},
	}
	for _, tt := range tests {
		t.Run(tt.username, func(t *testing.T) {
			raw, err := iss.Issue(tt.id, tt.username, tt.enabled)
			if err != nil {
				t.Fatal(err)
			}
			for _, at := range []time.Time{testNow, testNow.Add(TTL - time.Second), testNow.Add(TTL + 999*time.Millisecond), testNow.Add(-MaxSkew)} {
				got, err := NewVerifier(testSecret, fixedClock(at)).Verify(raw)
				if err != nil {
					t.Fatalf("at %v: got error %v, want none", at.Sub(testNow), err)
				}
				want := Claims{UserID: tt.id, Username: tt.username, Enabled: tt.enabled, ExpiresAt: testNow.Add(TTL)}
				if got != want {
					t.Errorf("got %+v, want %+v", got, want)
				}
			}
			// 30 s, to the end of exp's second, and not a second more.
			if _, err := NewVerifier(testSecret, fixedClock(testNow.Add(TTL+time.Second))).Verify(raw); !errors.Is(err, ErrExpired) {
				t.Errorf("a second after exp's second: got %v, want %v", err, ErrExpired)
			}
		})
	}
}

func TestIssuedPayload(t *testing.T) {
	raw, err := NewIssuer(testSecret, fixedClock(testNow.Add(700*time.Millisecond))).Issue(1, "alice", true)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("got %d segments, want 3", len(parts))
	}
	h, _ := base64.RawURLEncoding.DecodeString(parts[0])
	p, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if got, want := string(h), `{"alg":"HS256","typ":"JWT"}`; got != want {
		t.Errorf("header: got %s, want %s", got, want)
	}
	if got, want := string(p), `{"user_id":1,"username":"alice","enabled":true,"exp":1700000030,"iat":1700000000}`; got != want {
		t.Errorf("payload: got %s, want %s", got, want)
	}
}

func TestVerifyRejects(t *testing.T) {
	valid := signRaw(t, hs256, payload(t, nil), testSecret)
	parts := strings.Split(valid, ".")
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rs256, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"user_id": 1, "username": "alice", "enabled": true, "exp": testNow.Add(TTL).Unix(),
	}).SignedString(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	hs384 := func() string {
		in := b64(`{"alg":"HS384","typ":"JWT"}`) + "." + b64(payload(t, nil))
		m := hmac.New(sha512.New384, testSecret)
		m.Write([]byte(in))
		return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}()
	tamperedPayload := b64(payload(t, map[string]any{"user_id": 2})) // becky's id under alice's signature
	flipLast := func(s string) string {
		c := s[len(s)-2]
		if c == 'A' {
			c = 'B'
		} else {
			c = 'A'
		}
		return s[:len(s)-2] + string(c) + s[len(s)-1:]
	}

	tests := []struct {
		name string
		raw  string
		want *Error
	}{
		{"empty", "", ErrNotEnoughSegments},
		{"one segment", "abc", ErrNotEnoughSegments},
		{"two segments", parts[0] + "." + parts[1], ErrNotEnoughSegments},
		{"four segments", valid + ".x", ErrTooManySegments},
		{"header not base64", "!!!." + parts[1] + "." + parts[2], ErrHeaderPadding},
		{"header padded", parts[0] + "=." + parts[1] + "." + parts[2], ErrHeaderPadding},
		{"header not JSON", b64("nope") + "." + parts[1] + "." + parts[2], ErrHeaderString},
		{"header an array", b64("[1]") + "." + parts[1] + "." + parts[2], ErrHeaderString},
		{"payload not base64", parts[0] + ".***." + parts[2], ErrPayloadPadding},
		{"payload not JSON", signRaw(t, hs256, "nope", testSecret), ErrPayloadString},
		{"payload an array", signRaw(t, hs256, "[1,2]", testSecret), ErrPayloadString},
		{"payload a string", signRaw(t, hs256, `"x"`, testSecret), ErrPayloadString},
		{"signature not base64", parts[0] + "." + parts[1] + ".@@", ErrCryptoPadding},
		{"no alg", signRaw(t, `{"typ":"JWT"}`, payload(t, nil), testSecret), ErrNoAlgorithm},
		{"alg empty", signRaw(t, `{"alg":""}`, payload(t, nil), testSecret), ErrNoAlgorithm},
		{"alg a number", signRaw(t, `{"alg":256}`, payload(t, nil), testSecret), ErrNoAlgorithm},
		{"alg none unsigned", b64(`{"alg":"none","typ":"JWT"}`) + "." + parts[1] + ".", ErrAlgNotAllowed},
		{"alg none signed", signRaw(t, `{"alg":"none"}`, payload(t, nil), testSecret), ErrAlgNotAllowed},
		{"alg HS384", hs384, ErrAlgNotAllowed},
		{"alg RS256", rs256, ErrAlgNotAllowed},
		{"alg RS256 header, HMAC signature", signRaw(t, `{"alg":"RS256"}`, payload(t, nil), testSecret), ErrAlgNotAllowed},
		{"alg unknown", signRaw(t, `{"alg":"XX999"}`, payload(t, nil), testSecret), ErrAlgNotAllowed},
		{"other secret", signRaw(t, hs256, payload(t, nil), []byte("another secret, 32 bytes long!!")), ErrSignature},
		{"empty signature", parts[0] + "." + parts[1] + ".", ErrSignature},
		{"tampered payload", parts[0] + "." + tamperedPayload + "." + parts[2], ErrSignature},
		{"tampered signature", parts[0] + "." + parts[1] + "." + flipLast(parts[2]), ErrSignature},
		{"expired", signRaw(t, hs256, payload(t, map[string]any{"exp": testNow.Add(-MaxSkew - time.Second).Unix(), "iat": testNow.Add(-time.Minute).Unix()}), testSecret), ErrExpired},
		{"expired a second ago (no leeway on exp)", signRaw(t, hs256, payload(t, map[string]any{"exp": testNow.Add(-time.Second).Unix(), "iat": testNow.Add(-TTL - time.Second).Unix()}), testSecret), ErrExpired},
		{"no exp", signRaw(t, hs256, payload(t, map[string]any{"exp": nil}), testSecret), ErrMissingExp},
		{"exp null", signRaw(t, hs256, `{"user_id":1,"username":"a","enabled":true,"exp":null}`, testSecret), ErrExpType},
		{"exp a string", signRaw(t, hs256, payload(t, map[string]any{"exp": "soon"}), testSecret), ErrExpType},
		{"exp a digit string", signRaw(t, hs256, payload(t, map[string]any{"exp": "1700000030"}), testSecret), ErrExpType},
		{"exp a bool", signRaw(t, hs256, payload(t, map[string]any{"exp": true}), testSecret), ErrExpType},
		{"exp huge", signRaw(t, hs256, payload(t, map[string]any{"exp": 1e300}), testSecret), ErrTooFarAhead},
		{"exp huge integer", signRaw(t, hs256, `{"user_id":1,"username":"a","enabled":true,"exp":99999999999999999999999}`, testSecret), ErrTooFarAhead},
		{"exp hugely negative", signRaw(t, hs256, payload(t, map[string]any{"exp": -1e300}), testSecret), ErrExpired},
		{"exp far future", signRaw(t, hs256, payload(t, map[string]any{"exp": testNow.Add(time.Hour).Unix(), "iat": nil}), testSecret), ErrTooFarAhead},
		{"exp just past TTL+skew", signRaw(t, hs256, payload(t, map[string]any{"exp": testNow.Add(TTL + MaxSkew + time.Second).Unix(), "iat": nil}), testSecret), ErrTooFarAhead},
		{"lifetime too long", signRaw(t, hs256, payload(t, map[string]any{"iat": testNow.Add(-time.Hour).Unix()}), testSecret), ErrLifetime},
		{"lifetime just past TTL+skew", signRaw(t, hs256, payload(t, map[string]any{"iat": testNow.Add(-MaxSkew - time.Second).Unix()}), testSecret), ErrLifetime},
		{"iat in the future", signRaw(t, hs256, payload(t, map[string]any{"iat": testNow.Add(MaxSkew + time.Second).Unix()}), testSecret), ErrIssuedInFuture},
		{"iat a string", signRaw(t, hs256, payload(t, map[string]any{"iat": "now"}), testSecret), ErrIatType},
		{"iat and exp strings", signRaw(t, hs256, payload(t, map[string]any{"iat": "now", "exp": "later"}), testSecret), ErrIatType},
		{"nbf in the future", signRaw(t, hs256, payload(t, map[string]any{"nbf": testNow.Add(MaxSkew + time.Second).Unix()}), testSecret), ErrNotYetValid},
		{"nbf a string", signRaw(t, hs256, payload(t, map[string]any{"nbf": "x"}), testSecret), ErrNbfType},
		{"no user_id", signRaw(t, hs256, payload(t, map[string]any{"user_id": nil}), testSecret), ErrMissingUserID},
		{"user_id a string", signRaw(t, hs256, payload(t, map[string]any{"user_id": "1"}), testSecret), ErrUserIDType},
		{"user_id a float", signRaw(t, hs256, payload(t, map[string]any{"user_id": 1.5}), testSecret), ErrUserIDType},
		{"user_id with exponent", signRaw(t, hs256, `{"user_id":1e0,"username":"a","enabled":true,"exp":1700000030}`, testSecret), ErrUserIDType},
		{"user_id null", signRaw(t, hs256, `{"user_id":null,"username":"a","enabled":true,"exp":1700000030}`, testSecret), ErrUserIDType},
		{"user_id a bool", signRaw(t, hs256, payload(t, map[string]any{"user_id": true}), testSecret), ErrUserIDType},
		{"user_id an object", signRaw(t, hs256, payload(t, map[string]any{"user_id": map[string]int{"a": 1}}), testSecret), ErrUserIDType},
		{"user_id zero", signRaw(t, hs256, payload(t, map[string]any{"user_id": 0}), testSecret), ErrUserIDRange},
		{"user_id negative", signRaw(t, hs256, payload(t, map[string]any{"user_id": -1}), testSecret), ErrUserIDRange},
		{"user_id beyond int64", signRaw(t, hs256, `{"user_id":9223372036854775808,"username":"a","enabled":true,"exp":1700000030}`, testSecret), ErrUserIDRange},
		{"no username", signRaw(t, hs256, payload(t, map[string]any{"username": nil}), testSecret), ErrMissingUsername},
		{"username a number", signRaw(t, hs256, payload(t, map[string]any{"username": 7}), testSecret), ErrUsernameType},
		{"username null", signRaw(t, hs256, `{"user_id":1,"username":null,"enabled":true,"exp":1700000030}`, testSecret), ErrUsernameType},
		{"no enabled", signRaw(t, hs256, payload(t, map[string]any{"enabled": nil}), testSecret), ErrMissingEnabled},
		{"enabled a string", signRaw(t, hs256, payload(t, map[string]any{"enabled": "true"}), testSecret), ErrEnabledType},
		{"enabled a number", signRaw(t, hs256, payload(t, map[string]any{"enabled": 1}), testSecret), ErrEnabledType},
		{"enabled null", signRaw(t, hs256, `{"user_id":1,"username":"a","enabled":null,"exp":1700000030}`, testSecret), ErrEnabledType},
	}
	v := NewVerifier(testSecret, fixedClock(testNow))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Verify(tt.raw)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got claims %+v, error %v; want error %q", got, err, tt.want)
			}
			if got != (Claims{}) {
				t.Errorf("got claims %+v with the error, want zero claims", got)
			}
		})
	}
}

func TestVerifyAccepts(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    Claims
	}{
		{"python-style token without iat", `{"user_id":1,"username":"alice","enabled":true,"exp":1700000030}`,
			Claims{UserID: 1, Username: "alice", Enabled: true, ExpiresAt: time.Unix(1700000030, 0)}},
		{"fractional exp", `{"user_id":2,"username":"becky","enabled":true,"exp":1700000030.5}`,
			Claims{UserID: 2, Username: "becky", Enabled: true, ExpiresAt: time.Unix(1700000030, 5e8)}},
		{"escaped username", `{"user_id":3,"username":"ch\u0061rlie","enabled":false,"exp":1700000030}`,
			Claims{UserID: 3, Username: "charlie", Enabled: false, ExpiresAt: time.Unix(1700000030, 0)}},
		{"extra claims ignored", `{"user_id":1,"username":"a","enabled":true,"exp":1700000030,"sub":5,"aud":[1]}`,
			Claims{UserID: 1, Username: "a", Enabled: true, ExpiresAt: time.Unix(1700000030, 0)}},
		{"exp is this second (python-jose accepts it)", `{"user_id":1,"username":"a","enabled":true,"exp":1700000000}`,
			Claims{UserID: 1, Username: "a", Enabled: true, ExpiresAt: time.Unix(1700000000, 0)}},
		{"nbf within skew", `{"user_id":1,"username":"a","enabled":true,"exp":1700000030,"nbf":1700000004}`,
			Claims{UserID: 1, Username: "a", Enabled: true, ExpiresAt: time.Unix(1700000030, 0)}},
		{"lifetime exactly TTL+skew", `{"user_id":1,"username":"a","enabled":true,"exp":1700000030,"iat":1699999995}`,
			Claims{UserID: 1, Username: "a", Enabled: true, ExpiresAt: time.Unix(1700000030, 0)}},
	}
	v := NewVerifier(testSecret, fixedClock(testNow))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Verify(signRaw(t, hs256, tt.payload, testSecret))
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestCheckSecret: a secret is weak when the alphabet it is written in
// cannot hold 256 bits of key at its length (4 bits a hex digit, 6 a base64
// character, 8 any other byte), whatever its number of characters.
func TestCheckSecret(t *testing.T) {
	// key stands for 32 random bytes (fixed, so that the test is the same on
	// every run; its row checks that they are not all base64 characters).
	key := sha256.Sum256([]byte("TestCheckSecret"))
	hex64 := fmt.Sprintf("%x", key[:])
	std := base64.StdEncoding.EncodeToString(key[:])
	tests := []struct {
		name         string
		secret       string
		wantWeak     bool
		wantAlphabet string
		wantBits     int
	}{
		{"32 hex chars: 16 bytes", hex64[:32], true, "hex digits", 128},
		{"32 hex chars, upper case", strings.ToUpper(hex64[:32]), true, "hex digits", 128},
		{"63 hex chars", hex64[:63], true, "hex digits", 252},
		{"64 hex chars: 32 bytes, as the launcher makes them", hex64, false, "hex digits", 256},
		{"44 base64 chars from 32 random bytes (openssl rand -base64 32)", std, false, "base64 characters", 258},
		{"43 base64url chars from 32 random bytes, unpadded", base64.RawURLEncoding.EncodeToString(key[:]), false, "base64 characters", 258},
		{"42 base64 chars", std[:42], true, "base64 characters", 252},
		{"32 random bytes as raw bytes", string(key[:]), false, "bytes", 256},
		{"31 random bytes as raw bytes", string(key[:31]), true, "bytes", 248},
		{"short", "short", true, "base64 characters", 30},
		{"32 letters: the old rule's minimum", strings.Repeat("x", 32), true, "base64 characters", 192},
		{"three = of padding is no base64", std[:40] + "===", false, "bytes", 344},
		{"= inside is no base64", std[:20] + "=" + std[20:40], false, "bytes", 328},
		{"32 bytes with a space", "correct horse battery staple 123", false, "bytes", 256},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			weak, err := CheckSecret(tt.secret)
			if err != nil || weak != tt.wantWeak {
				t.Errorf("CheckSecret: got weak=%v err=%v, want weak=%v err=nil", weak, err, tt.wantWeak)
			}
			got := EstimateSecret(tt.secret)
			if got.Alphabet != tt.wantAlphabet || got.Bits != tt.wantBits || got.Weak() != tt.wantWeak {
				t.Errorf("EstimateSecret: got %+v (weak %v), want %d bits of %s (weak %v)", got, got.Weak(), tt.wantBits, tt.wantAlphabet, tt.wantWeak)
			}
		})
	}
	if _, err := CheckSecret(""); err == nil || !strings.Contains(err.Error(), "JWT_SECRET is required") {
		t.Errorf("empty: got %v, want the error naming JWT_SECRET", err)
	}
}

func TestNilClockUsesTimeNow(t *testing.T) {
	raw, err := NewIssuer(testSecret, nil).Issue(1, "alice", true)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewVerifier(testSecret, nil).Verify(raw)
	if err != nil {
		t.Fatalf("got %v, want a fresh token to verify", err)
	}
	if d := time.Until(c.ExpiresAt); d <= 0 || d > TTL {
		t.Errorf("got expiry in %v, want within (0, %v]", d, TTL)
	}
}

func TestSecretIsCopied(t *testing.T) {
	secret := append([]byte(nil), testSecret...)
	iss := NewIssuer(secret, fixedClock(testNow))
	v := NewVerifier(secret, fixedClock(testNow))
	secret[0] ^= 0xff
	raw, err := iss.Issue(1, "alice", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(raw); err != nil {
		t.Fatalf("got %v after the caller changed its slice, want none", err)
	}
}

func BenchmarkVerify(b *testing.B) {
	raw, err := NewIssuer(testSecret, fixedClock(testNow)).Issue(1, "alice", true)
	if err != nil {
		b.Fatal(err)
	}
	v := NewVerifier(testSecret, fixedClock(testNow))
	// full: the first sight of a token; repeat: the same token again, from
	// the verified-token cache (merchants reuse a token for up to 30 s).
	for _, name := range []string{"full", "repeat"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if name == "full" {
					clear(v.verified)
				}
				if _, err := v.Verify(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkIssue(b *testing.B) {
	// sign: every token signed (a new second each time); repeat: the same
	// user again within one second, from the issued-token cache.
	for _, name := range []string{"sign", "repeat"} {
		b.Run(name, func(b *testing.B) {
			at := testNow
			iss := NewIssuer(testSecret, func() time.Time { return at })
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if name == "sign" {
					at = at.Add(time.Second)
				}
				if _, err := iss.Issue(1, "alice", true); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestIssueCacheGivesTheSignedToken issues tokens while the clock moves and
// compares each with the one a fresh Issuer signs at that time: the
// issued-token cache must give exactly that token, never one of another
// user, another enabled flag or another second.
func TestIssueCacheGivesTheSignedToken(t *testing.T) {
	at := testNow
	clock := func() time.Time { return at }
	iss := NewIssuer(testSecret, clock)
	type user struct {
		id      int64
		name    string
		enabled bool
	}
	alice, becky, aliceDisabled := user{1, "alice", true}, user{2, "becky", true}, user{1, "alice", false}
	steps := []struct {
		name string
		at   time.Duration // clock, from testNow
		user user
	}{
		{"first token", 0, alice},
		{"same second, from the cache", 900 * time.Millisecond, alice},
		{"another user, same second", 900 * time.Millisecond, becky},
		{"same user, not enabled any more", 900 * time.Millisecond, aliceDisabled},
		{"next second: signed again", time.Second, alice},
		{"clock back a second", 0, alice},
		{"back to the second before", time.Second, becky},
	}
	seen := map[string]string{}
	for _, st := range steps {
		at = testNow.Add(st.at)
		got, err := iss.Issue(st.user.id, st.user.name, st.user.enabled)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		want, err := NewIssuer(testSecret, clock).Issue(st.user.id, st.user.name, st.user.enabled)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("%s: got %s, want %s", st.name, got, want)
		}
		who := fmt.Sprintf("%v at %d", st.user, at.Unix())
		if prev, ok := seen[got]; ok && prev != who {
			t.Fatalf("%s: the token of %s was given to %s", st.name, prev, who)
		}
		seen[got] = who
	}
	// More users in one second than the cache keeps: still each one's token.
	at = testNow.Add(time.Hour)
	for id := int64(1); id <= maxIssued+10; id++ {
		got, err := iss.Issue(id, "u", true)
		if err != nil {
			t.Fatal(err)
		}
		if c, err := NewVerifier(testSecret, clock).Verify(got); err != nil || c.UserID != id {
			t.Fatalf("user %d: got claims %+v, %v", id, c, err)
		}
	}
}

// TestVerifyCacheGivesTheFullCheckAnswer verifies one token again and again
// while the clock moves: a remembered token must get exactly the answer the
// full check gives at that time.
func TestVerifyCacheGivesTheFullCheckAnswer(t *testing.T) {
	raw := signRaw(t, hs256, payload(t, map[string]any{"nbf": testNow.Add(2 * time.Second).Unix()}), testSecret)
	tests := []struct {
		name    string
		at      time.Duration // clock, from testNow
		wantErr error
	}{
		{"first check, nbf within skew", 0, nil},
		{"again, from the cache", time.Second, nil},
		{"clock went back beyond the skew", -10 * time.Second, ErrIssuedInFuture},
		{"just before exp", TTL - time.Millisecond, nil},
		{"in exp's second: the full check accepts", TTL + 999*time.Millisecond, nil},
		{"exp's second is over", TTL + time.Second, ErrExpired},
		{"expired beyond skew", TTL + MaxSkew + time.Second, ErrExpired},
	}
	now := testNow
	v := NewVerifier(testSecret, func() time.Time { return now })
	fresh := NewVerifier(testSecret, func() time.Time { return now })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now = testNow.Add(tt.at)
			got, err := v.Verify(raw)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			}
			// A verifier that has never seen the token agrees.
			fresh.verified = map[string]verifiedToken{}
			want, wantErr := fresh.Verify(raw)
			if got != want || !errors.Is(err, wantErr) {
				t.Errorf("got %+v, %v; want the full check's %+v, %v", got, err, want, wantErr)
			}
		})
	}
}

// TestVerifyCacheIsBounded: many distinct valid tokens never grow the cache
// past maxVerified.
func TestVerifyCacheIsBounded(t *testing.T) {
	v := NewVerifier(testSecret, fixedClock(testNow))
	for i := range maxVerified + 10 {
		raw := signRaw(t, hs256, payload(t, map[string]any{"user_id": i + 1}), testSecret)
		if _, err := v.Verify(raw); err != nil {
			t.Fatalf("token %d: got %v, want none", i, err)
		}
		if n := len(v.verified); n > maxVerified {
			t.Fatalf("after %d tokens: got %d cached, want at most %d", i+1, n, maxVerified)
		}
	}
}

// TestVerifyCacheOnlyHoldsAccepted: rejected tokens are never remembered.
func TestVerifyCacheOnlyHoldsAccepted(t *testing.T) {
	v := NewVerifier(testSecret, fixedClock(testNow))
	for _, raw := range []string{
		signRaw(t, hs256, payload(t, nil), []byte("another secret, 32 bytes long!!!")),
		signRaw(t, hs256, payload(t, map[string]any{"enabled": "yes"}), testSecret),
		"a.b",
	} {
		if _, err := v.Verify(raw); err == nil {
			t.Fatalf("%s: got no error, want a rejection", raw)
		}
	}
	if n := len(v.verified); n != 0 {
		t.Errorf("got %d cached after rejections, want 0", n)
	}
}

// TestVerifyChecksTheSignatureBeforeThePayload: python-jose, whose texts
// Verify gives, decodes the signature, checks the alg and verifies the
// signature before it parses the payload's JSON (jws.verify, then
// json.loads in jwt.decode). A forged or tampered token whose payload is not
// a JSON object is a bad signature, not a payload the service read.
func TestVerifyChecksTheSignatureBeforeThePayload(t *testing.T) {
	other := []byte("another secret, 32 bytes long!!")
	valid := signRaw(t, hs256, payload(t, nil), testSecret)
	sig := valid[strings.LastIndexByte(valid, '.')+1:]
	unsigned := func(header, payload, sig string) string { return b64(header) + "." + b64(payload) + "." + sig }
	tests := []struct {
		name string
		raw  string
		want *Error
	}{
		{"payload not JSON, other secret", signRaw(t, hs256, "nope", other), ErrSignature},
		{"payload an array, other secret", signRaw(t, hs256, "[1,2]", other), ErrSignature},
		{"payload not JSON, another token's signature", unsigned(hs256, "nope", sig), ErrSignature},
		{"payload not JSON, empty signature", unsigned(hs256, "nope", ""), ErrSignature},
		{"payload not JSON, alg none", unsigned(`{"alg":"none"}`, "nope", ""), ErrAlgNotAllowed},
		{"payload not JSON, alg HS384", signRaw(t, `{"alg":"HS384"}`, "nope", testSecret), ErrAlgNotAllowed},
		{"payload not JSON, no alg", signRaw(t, `{"typ":"JWT"}`, "nope", testSecret), ErrNoAlgorithm},
		{"payload not JSON, signature not base64", unsigned(hs256, "nope", "@@"), ErrCryptoPadding},
		{"alg unknown, signature not base64", unsigned(`{"alg":"XX999"}`, payload(t, nil), "@@"), ErrCryptoPadding},
		{"no alg, signature not base64", unsigned(`{"typ":"JWT"}`, payload(t, nil), "@@"), ErrCryptoPadding},
		{"payload not JSON, signed with the secret", signRaw(t, hs256, "nope", testSecret), ErrPayloadString},
		{"payload a string, signed with the secret", signRaw(t, hs256, `"x"`, testSecret), ErrPayloadString},
	}
	v := NewVerifier(testSecret, fixedClock(testNow))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := v.Verify(tt.raw); !errors.Is(err, tt.want) {
				t.Errorf("got error %v, want %q", err, tt.want)
			}
		})
	}
}

// TestVerifyRejectsLineBreaksInTheSignature: Go's base64 decoder skips CR and
// LF anywhere in its input, so without a check of its own Verify accepted a
// valid token with line breaks in its signature segment, as many distinct
// strings as a client cared to make from one token, each remembered in the
// cache under its whole string (up to the 1 MiB body cap each).
func TestVerifyRejectsLineBreaksInTheSignature(t *testing.T) {
	valid := signRaw(t, hs256, payload(t, nil), testSecret)
	parts := strings.Split(valid, ".")
	head, sig := parts[0]+"."+parts[1]+".", parts[2]
	tests := []struct {
		name string
		raw  string
	}{
		{"LF inside", head + sig[:5] + "\n" + sig[5:]},
		{"CR inside", head + sig[:5] + "\r" + sig[5:]},
		{"CRLF at the end", head + sig + "\r\n"},
		{"LF first", head + "\n" + sig},
		{"half a MiB of CRLF", head + sig + strings.Repeat("\r\n", 1<<18)},
	}
	v := NewVerifier(testSecret, fixedClock(testNow))
	if _, err := v.Verify(valid); err != nil {
		t.Fatalf("the token itself: got %v, want none", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 2 { // the second time, a cache would answer
				got, err := v.Verify(tt.raw)
				if !errors.Is(err, ErrCryptoPadding) {
					t.Fatalf("got claims %+v, error %v; want error %q", got, err, ErrCryptoPadding)
				}
			}
		})
	}
	if n := len(v.verified); n != 1 {
		t.Errorf("got %d tokens cached, want 1 (the token itself)", n)
	}
}
