// Package token is the platform's one token contract: auth-api issues HS256
// JWTs valid for 30 seconds with the claims user_id, username, enabled, exp and
// iat, and core-api verifies them with the same rules and error texts.
package token

import (
	"errors"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TTL is how long an issued token is valid.
const TTL = 30 * time.Second

// MaxSkew is the clock skew accepted between the issuing and the verifying
// host for nbf and iat in the future, and for a lifetime: tokens that expire
// more than TTL+MaxSkew after now, or after their iat, are rejected. exp gets
// no leeway: a token is expired once the clock's whole second is past its
// exp, as python-jose decided for the original services, so a token issued
// at second s is accepted until the end of second s+30 (Expired).
const MaxSkew = 5 * time.Second

// Expired reports whether a token with expiry exp is expired at now: when
// now's whole second is after exp's (python-jose: exp < now, in seconds).
func Expired(exp, now time.Time) bool { return now.Unix() > exp.Unix() }

// MinSecretBytes is the shortest JWT_SECRET that does not draw a warning.
const MinSecretBytes = 32

// Claims are the verified contents of a token.
type Claims struct {
	UserID    int64
	Username  string
	Enabled   bool
	ExpiresAt time.Time
}

// CheckSecret reports whether secret is usable as JWT_SECRET: an error when it
// is empty, and weak when it is shorter than MinSecretBytes (the service still
// starts, but should log a warning).
func CheckSecret(secret string) (weak bool, err error) {
	if secret == "" {
		return false, errors.New("JWT_SECRET is required: set it to the HS256 secret shared by auth-api and core-api (at least 32 random bytes)")
	}
	return len(secret) < MinSecretBytes, nil
}

// Issuer signs tokens for authenticated users. It is safe for concurrent
// use.
type Issuer struct {
	secret []byte
	now    func() time.Time

	// A token's claims are in whole seconds, so every token for one user in
	// one second is the same string: issued keeps those of the current
	// second, and a merchant's repeat login in that second costs a map
	// lookup instead of JSON, base64 and HMAC (BENCHMARKS.md, figure 4).
	mu       sync.Mutex
	issuedIn int64 // the second (Unix) the tokens in issued were issued in
	issued   map[issuedFor]string
}

// issuedFor is what an issued token says besides its times.
type issuedFor struct {
	userID   int64
	username string
	enabled  bool
}

// maxIssued bounds the tokens kept for one second.
const maxIssued = 1024

// NewIssuer returns an Issuer signing with secret; now is the clock (nil means
// time.Now).
func NewIssuer(secret []byte, now func() time.Time) *Issuer {
	if now == nil {
		now = time.Now
	}
	return &Issuer{secret: append([]byte(nil), secret...), now: now, issued: make(map[issuedFor]string)}
}

// issuedClaims is the wire form of an issued token's payload, in the order
// user_id, username, enabled, exp, iat.
type issuedClaims struct {
	UserID   int64  `json:"user_id"`
	Username string `json:"username"`
	Enabled  bool   `json:"enabled"`
	jwt.RegisteredClaims
}

// Issue returns a signed HS256 token for the user that expires TTL from now
// (exp and iat in whole seconds since the epoch).
func (i *Issuer) Issue(userID int64, username string, enabled bool) (string, error) {
	now := i.now()
	sec, key := now.Unix(), issuedFor{userID, username, enabled}
	i.mu.Lock()
	raw, ok := i.issued[key]
	ok = ok && i.issuedIn == sec
	i.mu.Unlock()
	if ok {
		return raw, nil
	}
	raw, err := i.sign(now, key)
	if err != nil {
		return "", err
	}
	i.mu.Lock()
	if i.issuedIn != sec || len(i.issued) >= maxIssued {
		clear(i.issued)
		i.issuedIn = sec
	}
	i.issued[key] = raw
	i.mu.Unlock()
	return raw, nil
}

// sign builds and signs the token Issue returns.
func (i *Issuer) sign(now time.Time, k issuedFor) (string, error) {
	c := issuedClaims{
		UserID:   k.userID,
		Username: k.username,
		Enabled:  k.enabled,
		RegisteredClaims: jwt.RegisteredClaims{
			ExpiresAt: jwt.NewNumericDate(now.Add(TTL)),
			IssuedAt:  jwt.NewNumericDate(now),
		},
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(i.secret)
}
