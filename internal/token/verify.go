package token

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Error is a token rejection. Its message says why, is safe to show the
// client, and is what core-api answers with a 422.
type Error struct{ msg string }

// Error returns the client-facing text, such as "Signature has expired.".
func (e *Error) Error() string { return e.msg }

// The rejections Verify returns. Where the original Python service (python-jose
// 3.3) answered, the text is python-jose's, trailing period included; where it
// crashed, the text is new.
var (
	ErrNotEnoughSegments = &Error{"Not enough segments"}                             // fewer than three dot-separated parts
	ErrTooManySegments   = &Error{"Too many segments"}                               // more than three parts
	ErrHeaderPadding     = &Error{"Invalid header padding"}                          // header is not base64url
	ErrHeaderString      = &Error{"Invalid header string: must be a json object"}    // header is not a JSON object
	ErrPayloadPadding    = &Error{"Invalid payload padding"}                         // payload is not base64url
	ErrPayloadString     = &Error{"Invalid payload string: must be a json object"}   // payload is not a JSON object
	ErrCryptoPadding     = &Error{"Invalid crypto padding"}                          // signature is not base64url (CR or LF in it included)
	ErrNoAlgorithm       = &Error{"No algorithm was specified in the JWS header."}   // header has no alg
	ErrAlgNotAllowed     = &Error{"The specified alg value is not allowed"}          // alg is not HS256 (none, HS384, RS256, ...)
	ErrSignature         = &Error{"Signature verification failed."}                  // wrong secret or tampered token
	ErrExpired           = &Error{"Signature has expired."}                          // exp is past (Expired; no leeway)
	ErrNotYetValid       = &Error{"The token is not yet valid (nbf)"}                // nbf is in the future (beyond MaxSkew)
	ErrIssuedInFuture    = &Error{"The token is not yet valid (iat)"}                // iat is in the future (beyond MaxSkew)
	ErrExpType           = &Error{"Expiration Time claim (exp) must be an integer."} // exp is not a number
	ErrNbfType           = &Error{"Not Before claim (nbf) must be an integer."}      // nbf is not a number
	ErrIatType           = &Error{"Issued At claim (iat) must be an integer."}       // iat is not a number
	ErrMissingExp        = &Error{"Token is missing the exp claim"}                  // no exp at all
	ErrTooFarAhead       = &Error{"Token expires too far in the future"}             // exp - now > TTL + MaxSkew
	ErrLifetime          = &Error{"Token lifetime is longer than 30 seconds"}        // exp - iat > TTL + MaxSkew
	ErrMissingUserID     = &Error{"Token is missing the user_id claim"}              // no user_id
	ErrUserIDType        = &Error{"Token claim user_id must be an integer"}          // user_id is not an integral JSON number
	ErrUserIDRange       = &Error{"Token claim user_id must be a positive integer"}  // user_id <= 0
	ErrMissingUsername   = &Error{"Token is missing the username claim"}             // no username
	ErrUsernameType      = &Error{"Token claim username must be a string"}           // username is not a string
	ErrMissingEnabled    = &Error{"Token is missing the enabled claim"}              // no enabled
	ErrEnabledType       = &Error{"Token claim enabled must be a boolean"}           // enabled is not true/false
	ErrInvalid           = &Error{"Invalid token"}                                   // anything else
)

// Verifier checks tokens issued by an Issuer with the same secret. It is safe
// for concurrent use.
type Verifier struct {
	now    func() time.Time
	parser *jwt.Parser
	key    jwt.Keyfunc
	secret []byte // the key, for explain's own signature check

	// verified remembers tokens that passed the full check (merchants reuse
	// one token for up to 30 s), so a repeat costs a map lookup instead of
	// base64, JSON and HMAC. Only tokens this Verifier accepted get in, so it
	// holds nothing an attacker can choose without the secret.
	mu       sync.Mutex
	verified map[string]verifiedToken
}

// verifiedToken is a token that passed the full check at time at.
type verifiedToken struct {
	claims Claims
	at     time.Time
}

// maxVerified bounds the verified-token cache (about 300 bytes an entry).
const maxVerified = 1024

// NewVerifier returns a Verifier for secret; now is the clock (nil means
// time.Now).
func NewVerifier(secret []byte, now func() time.Time) *Verifier {
	if now == nil {
		now = time.Now
	}
	secret = append([]byte(nil), secret...)
	var key any = secret // boxed once, so the key func does not allocate
	return &Verifier{
		now:    now,
		secret: secret,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(MaxSkew), // for nbf and iat; exp is checked without it (Expired)
			jwt.WithTimeFunc(now),
			jwt.WithStrictDecoding(),
		),
		key:      func(*jwt.Token) (any, error) { return key, nil },
		verified: make(map[string]verifiedToken),
	}
}

// Verify checks raw's segments, algorithm (HS256 only), signature, exp
// (required, no leeway: Expired), nbf and iat (each with MaxSkew leeway), its
// lifetime (at most TTL+MaxSkew from now and from iat) and the types of
// user_id (positive integer), username (string) and enabled (bool). Every
// rejection is an *Error.
func (v *Verifier) Verify(raw string) (Claims, error) {
	switch n := strings.Count(raw, "."); {
	case n < 2:
		return Claims{}, ErrNotEnoughSegments
	case n > 2:
		return Claims{}, ErrTooManySegments
	}
	if c, ok := v.cached(raw); ok {
		return c, nil
	}
	// Go's base64 decoder skips CR and LF, so a valid token with line breaks
	// in its signature would verify: endless distinct strings, each cached
	// under its whole length. (In the header or payload they already fail
	// the signature, which covers those segments as sent.) Checked after
	// the cache, which never holds such a token, so a cached one is not
	// scanned on every request.
	if strings.ContainsAny(raw[strings.LastIndexByte(raw, '.')+1:], "\r\n") {
		return Claims{}, ErrCryptoPadding
	}
	var c wireClaims
	tok, err := v.parser.ParseWithClaims(raw, &c, v.key)
	if err != nil {
		return Claims{}, v.explain(raw, tok, err)
	}

	now := v.now()
	exp := c.exp.Time
	if Expired(exp, now) { // the parser allowed MaxSkew, for nbf's and iat's sake
		return Claims{}, ErrExpired
	}
	if exp.Sub(now) > TTL+MaxSkew {
		return Claims{}, ErrTooFarAhead
	}
	if c.Iat != nil && exp.Sub(c.iat.Time) > TTL+MaxSkew {
		return Claims{}, ErrLifetime
	}

	out := Claims{ExpiresAt: exp}
	if out.UserID, err = parseUserID(c.UserID); err != nil {
		return Claims{}, err
	}
	if out.Username, err = parseUsername(c.Username); err != nil {
		return Claims{}, err
	}
	if out.Enabled, err = parseEnabled(c.Enabled); err != nil {
		return Claims{}, err
	}
	v.remember(raw, out, now)
	return out, nil
}

// cached returns raw's claims when raw passed the full check at a time at or
// before now and has not expired. Every time check of Verify that passed at
// that time still passes until exp (nbf, iat and the lifetime only get
// easier as time goes on), so the answer is the one the full check would
// give; outside that window (expired, or a clock that went back) the full
// check runs again. "Went back" is the wall clock's, which the full check
// reads: time.Now's monotonic reading, which Before would compare when both
// times had one, goes on through a step back, and a token issued before a
// step back of an hour stayed valid for that hour (RELIABILITY.md D88).
func (v *Verifier) cached(raw string) (Claims, bool) {
	v.mu.Lock()
	e, ok := v.verified[raw]
	v.mu.Unlock()
	if !ok {
		return Claims{}, false
	}
	now := v.now().Round(0) // the wall clock alone
	if now.Before(e.at) || Expired(e.claims.ExpiresAt, now) {
		return Claims{}, false
	}
	return e.claims, true
}

// remember caches a token that passed the full check at time at. When the
// cache is full it drops the expired entries, or else all of them. raw is
// copied: a token from ?token= or an Authorization header is a piece of the
// request line or header value net/http read, and kept as it is it held all
// of it, up to the 64 KB header limit an entry (RELIABILITY.md D89).
func (v *Verifier) remember(raw string, c Claims, at time.Time) {
	raw = strings.Clone(raw)
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.verified) >= maxVerified {
		for k, e := range v.verified {
			if Expired(e.claims.ExpiresAt, at) {
				delete(v.verified, k)
			}
		}
		if len(v.verified) >= maxVerified {
			clear(v.verified)
		}
	}
	v.verified[raw] = verifiedToken{claims: c, at: at}
}

// explain maps a golang-jwt error for raw to the rejection the client sees,
// in python-jose's order: segments, header, payload encoding, signature
// encoding, alg, signature, payload JSON, then claims (iat, nbf, exp).
// golang-jwt parses the payload's JSON, and looks the alg up, before it
// decodes the signature; python-jose verifies the signature first, so a
// forged token with a payload that is not a JSON object is a bad signature.
func (v *Verifier) explain(raw string, tok *jwt.Token, err error) *Error {
	var te *Error
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		msg := err.Error()
		switch {
		case strings.Contains(msg, "base64 decode header"):
			return ErrHeaderPadding
		case strings.Contains(msg, "JSON decode header"):
			return ErrHeaderString
		case strings.Contains(msg, "base64 decode claim"):
			return ErrPayloadPadding
		case strings.Contains(msg, "JSON decode claim"):
			if e := v.signatureError(raw, tok); e != nil {
				return e
			}
			return ErrPayloadString
		case strings.Contains(msg, "base64 decode signature"):
			return ErrCryptoPadding
		case strings.Contains(msg, "number of segments"):
			return ErrNotEnoughSegments
		}
		return ErrInvalid
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		if _, err := v.parser.DecodeSegment(raw[strings.LastIndexByte(raw, '.')+1:]); err != nil {
			return ErrCryptoPadding
		}
		return algError(tok)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		if tok != nil && tok.Method != nil && tok.Method.Alg() != jwt.SigningMethodHS256.Alg() {
			return ErrAlgNotAllowed
		}
		return ErrSignature
	case errors.As(err, &te):
		// A claim of the wrong type, reported by a wireClaims getter; prefer
		// python-jose's order (iat, nbf, exp) when several are wrong.
		for _, e := range []*Error{ErrIatType, ErrNbfType, ErrExpType} {
			if errors.Is(err, e) {
				return e
			}
		}
		return te
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return ErrIssuedInFuture
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return ErrNotYetValid
	case errors.Is(err, jwt.ErrTokenExpired):
		return ErrExpired
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return ErrMissingExp
	}
	return ErrInvalid
}

// algError is the rejection of tok's alg, which is not HS256: none at all
// (or not a string), or another one.
func algError(tok *jwt.Token) *Error {
	if tok != nil {
		if alg, _ := tok.Header["alg"].(string); alg != "" {
			return ErrAlgNotAllowed
		}
	}
	return ErrNoAlgorithm
}

// signatureError checks what python-jose checks before the payload's JSON,
// for raw (three segments, header and payload decoded into tok): the
// signature's encoding, the alg and the signature. It returns the first
// rejection, or nil when all of them pass.
func (v *Verifier) signatureError(raw string, tok *jwt.Token) *Error {
	if tok == nil {
		return ErrInvalid
	}
	dot := strings.LastIndexByte(raw, '.')
	sig, err := v.parser.DecodeSegment(raw[dot+1:])
	if err != nil {
		return ErrCryptoPadding
	}
	if alg, _ := tok.Header["alg"].(string); alg != jwt.SigningMethodHS256.Alg() {
		return algError(tok)
	}
	if jwt.SigningMethodHS256.Verify(raw[:dot], sig, v.secret) != nil {
		return ErrSignature
	}
	return nil
}

// wireClaims receives a token's payload with every claim kept raw, so that
// their JSON types can be checked instead of coerced. It implements
// jwt.Claims for the parser's exp/nbf/iat validation.
type wireClaims struct {
	UserID   json.RawMessage `json:"user_id"`
	Username json.RawMessage `json:"username"`
	Enabled  json.RawMessage `json:"enabled"`
	Exp      json.RawMessage `json:"exp"`
	Nbf      json.RawMessage `json:"nbf"`
	Iat      json.RawMessage `json:"iat"`

	exp, nbf, iat jwt.NumericDate // parsed by the getters
}

func (c *wireClaims) GetExpirationTime() (*jwt.NumericDate, error) {
	return numericDate(c.Exp, &c.exp, ErrExpType)
}

func (c *wireClaims) GetNotBefore() (*jwt.NumericDate, error) {
	return numericDate(c.Nbf, &c.nbf, ErrNbfType)
}

func (c *wireClaims) GetIssuedAt() (*jwt.NumericDate, error) {
	return numericDate(c.Iat, &c.iat, ErrIatType)
}

func (c *wireClaims) GetIssuer() (string, error)             { return "", nil }
func (c *wireClaims) GetSubject() (string, error)            { return "", nil }
func (c *wireClaims) GetAudience() (jwt.ClaimStrings, error) { return nil, nil }

// maxSeconds bounds NumericDates (about year 5138) so that huge values cannot
// overflow time arithmetic; larger values are clamped and fail the lifetime check.
const maxSeconds = 1e11

// numericDate parses raw (absent: nil, nil) as a JSON number of seconds since
// the epoch into dst; anything else, null included, is typeErr.
func numericDate(raw json.RawMessage, dst *jwt.NumericDate, typeErr *Error) (*jwt.NumericDate, error) {
	if raw == nil {
		return nil, nil
	}
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return nil, typeErr
	}
	if n, ok := parseInteger(raw); ok {
		dst.Time = time.Unix(max(min(n, maxSeconds), -maxSeconds), 0)
		return dst, nil
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return nil, typeErr
	}
	f = math.Max(math.Min(f, maxSeconds), -maxSeconds)
	sec, frac := math.Modf(f)
	dst.Time = time.Unix(int64(sec), int64(frac*1e9))
	return dst, nil
}

// parseUserID accepts an integral JSON number (digits, no fraction or
// exponent) greater than zero.
func parseUserID(raw json.RawMessage) (int64, error) {
	if raw == nil {
		return 0, ErrMissingUserID
	}
	n, ok := parseInteger(raw)
	switch {
	case !ok && isDigits(bytes.TrimPrefix(raw, []byte("-"))):
		return 0, ErrUserIDRange // an integer, but beyond int64
	case !ok:
		return 0, ErrUserIDType
	case n <= 0:
		return 0, ErrUserIDRange
	}
	return n, nil
}

// parseInteger parses an optionally negative decimal integer without fraction
// or exponent that fits in an int64, without allocating.
func parseInteger(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if !isDigits(b) || len(b) > 19 { // 19 digits always fit in a uint64
		return 0, false
	}
	var n uint64
	for _, d := range b {
		n = n*10 + uint64(d-'0')
	}
	if n > math.MaxInt64 {
		return 0, false
	}
	if neg {
		return -int64(n), true
	}
	return int64(n), true
}

// isDigits reports whether b is one or more ASCII digits.
func isDigits(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, d := range b {
		if d < '0' || d > '9' {
			return false
		}
	}
	return true
}

// parseUsername accepts a JSON string.
func parseUsername(raw json.RawMessage) (string, error) {
	if raw == nil {
		return "", ErrMissingUsername
	}
	if len(raw) < 2 || raw[0] != '"' {
		return "", ErrUsernameType
	}
	// Fast path: plain ASCII without escapes is its own value.
	inner := raw[1 : len(raw)-1]
	plain := true
	for _, b := range inner {
		if b == '\\' || b == '"' || b < 0x20 || b >= 0x80 {
			plain = false
			break
		}
	}
	if plain {
		return string(inner), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", ErrUsernameType
	}
	return s, nil
}

// parseEnabled accepts true or false.
func parseEnabled(raw json.RawMessage) (bool, error) {
	switch string(raw) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	if raw == nil {
		return false, ErrMissingEnabled
	}
	return false, ErrEnabledType
}
