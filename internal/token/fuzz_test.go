package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// allErrors lists every rejection Verify may return.
var allErrors = []*Error{
	ErrNotEnoughSegments, ErrTooManySegments, ErrHeaderPadding, ErrHeaderString, ErrPayloadPadding,
	ErrPayloadString, ErrCryptoPadding, ErrNoAlgorithm, ErrAlgNotAllowed, ErrSignature, ErrExpired,
	ErrNotYetValid, ErrIssuedInFuture, ErrExpType, ErrNbfType, ErrIatType, ErrMissingExp, ErrTooFarAhead,
	ErrLifetime, ErrMissingUserID, ErrUserIDType, ErrUserIDRange, ErrMissingUsername, ErrUsernameType,
	ErrMissingEnabled, ErrEnabledType, ErrInvalid,
}

// FuzzVerify checks Verify's invariants on arbitrary token strings, with the
// secret and clock of the seed corpus (testdata/fuzz/FuzzVerify holds valid
// tokens for them): it never panics; rejections are one of the known *Error
// values; an accepted token has three segments, an HS256 header, a correct
// HMAC-SHA256 signature (checked independently), a positive user_id and an
// expiry not past (Expired) and at most TTL+MaxSkew from now.
func FuzzVerify(f *testing.F) {
	iss := NewIssuer(testSecret, fixedClock(testNow))
	valid, err := iss.Issue(1, "alice", true)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add("")
	v := NewVerifier(testSecret, fixedClock(testNow))
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := v.Verify(raw)
		if err != nil {
			var te *Error
			if !errors.As(err, &te) || te.Error() == "" {
				t.Fatalf("got %T %v, want a *token.Error", err, err)
			}
			known := false
			for _, e := range allErrors {
				known = known || te == e
			}
			if !known {
				t.Fatalf("got unlisted rejection %q", te)
			}
			if c != (Claims{}) {
				t.Fatalf("got claims %+v with error %v", c, err)
			}
			return
		}
		parts := strings.Split(raw, ".")
		if len(parts) != 3 {
			t.Fatalf("accepted %d segments", len(parts))
		}
		header, err := base64.RawURLEncoding.DecodeString(parts[0])
		if err != nil {
			t.Fatalf("accepted an undecodable header: %v", err)
		}
		var h map[string]any
		if err := json.Unmarshal(header, &h); err != nil || h["alg"] != "HS256" {
			t.Fatalf("accepted header %s", header)
		}
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil {
			t.Fatalf("accepted an undecodable signature: %v", err)
		}
		m := hmac.New(sha256.New, testSecret)
		m.Write([]byte(parts[0] + "." + parts[1]))
		if !hmac.Equal(sig, m.Sum(nil)) {
			t.Fatal("accepted a token whose HMAC-SHA256 does not match")
		}
		if c.UserID <= 0 {
			t.Fatalf("accepted user_id %d", c.UserID)
		}
		if d := c.ExpiresAt.Sub(testNow); Expired(c.ExpiresAt, testNow) || d > TTL+MaxSkew {
			t.Fatalf("accepted a token expiring %v from now", d)
		}
	})
}
