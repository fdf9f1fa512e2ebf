// Package token is the platform's one token contract: auth-api issues HS256
// JWTs valid for 30 seconds with the claims user_id, username, enabled, exp and
// iat, and core-api verifies them with the same rules and error texts.
package token

import (
	"errors"
	"fmt"
	"strings"
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

// Claims are the verified contents of a token.
type Claims struct {
	UserID    int64
	Username  string
	Enabled   bool
	ExpiresAt time.Time
}

// MinSecretBits is the key strength, in bits, below which JWT_SECRET draws
// a warning: HS256 wants a key of at least its hash's 256 bits (RFC 7518,
// section 3.2). 32 random bytes, written as 64 hex digits or 43 base64
// characters (44 with padding), just reach it.
const MinSecretBits = 256

// SecretStrength is an estimate of the key strength of a JWT_SECRET, made
// from the alphabet it is written in (EstimateSecret). It never holds the
// secret.
type SecretStrength struct {
	Alphabet    string // "hex digits", "base64 characters" or "bytes"
	Length      int    // characters counted: bytes, base64 padding left out
	BitsPerChar int    // 4, 6 or 8
	Bits        int    // Length × BitsPerChar
}

// Weak reports whether the estimate is under MinSecretBits.
func (s SecretStrength) Weak() bool { return s.Bits < MinSecretBits }

// Shortfall says why a weak secret is weak, and how to make a good one, for
// the services' warning and the launcher's alike; never the secret.
func (s SecretStrength) Shortfall() string {
	return fmt.Sprintf("%d %s at %d bits each hold at most %d bits of key, and HS256 needs %d (RFC 7518, section 3.2); "+
		"make one with `openssl rand -base64 32` (32 random bytes) and give auth-api and core-api the same",
		s.Length, s.Alphabet, s.BitsPerChar, s.Bits, MinSecretBits)
}

// EstimateSecret estimates how many bits of key secret can hold from the
// alphabet it uses: 4 per character when it is all hex digits, 6 when it is
// all base64 or base64url characters (trailing "=" padding not counted), 8
// per byte otherwise. It is an upper bound, reached only by characters
// chosen at random: it cannot tell a password or a repeated character from
// random ones, so a long one passes. It catches the common mistake, a
// random key too short for its encoding: 32 hex digits are 128 bits, not
// 256.
func EstimateSecret(secret string) SecretStrength {
	unpadded := strings.TrimRight(secret, "=")
	switch {
	case only(secret, hexDigits):
		return newStrength("hex digits", len(secret), 4)
	case only(unpadded, base64Chars) && len(secret)-len(unpadded) <= 2:
		return newStrength("base64 characters", len(unpadded), 6)
	}
	return newStrength("bytes", len(secret), 8)
}

// hexDigits and base64Chars are the alphabets EstimateSecret knows;
// base64Chars holds both the standard and the URL-safe alphabet.
const (
	hexDigits   = "0123456789abcdefABCDEF"
	base64Chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_"
)

// only reports whether every character of s is in alphabet.
func only(s, alphabet string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return !strings.ContainsRune(alphabet, r) })
}

func newStrength(alphabet string, n, bitsPerChar int) SecretStrength {
	return SecretStrength{Alphabet: alphabet, Length: n, BitsPerChar: bitsPerChar, Bits: n * bitsPerChar}
}

// CheckSecret reports whether secret is usable as JWT_SECRET: an error when it
// is empty, and weak when EstimateSecret puts it under MinSecretBits (the
// service still starts, but should log a warning).
func CheckSecret(secret string) (weak bool, err error) {
	if secret == "" {
		return false, errors.New("JWT_SECRET is required: set it to the HS256 secret shared by auth-api and core-api (at least 32 random bytes)")
	}
	return EstimateSecret(secret).Weak(), nil
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
