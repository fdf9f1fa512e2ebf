// Package txrequest decodes and validates POST /transaction bodies for
// core-api, in the contract's order: blank token, amount and currency first,
// then the currency format, then the amount's range and the token's type.
package txrequest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/acme-payments/platform/internal/httpx"
)

// MaxAmount is the largest amount accepted, in the currency's minor units.
const MaxAmount = 1_000_000_000

// maxAmountDigits is len("1000000000"): longer digit strings (leading zeros
// aside) are always above MaxAmount.
const maxAmountDigits = 10

// Transaction is a decoded, validated POST /transaction body. Token is the
// body's token, or the bearer token when the body's is blank; it is not yet
// verified.
type Transaction struct {
	Token    string
	Amount   int64
	Currency string
}

// Client-facing error texts.
const (
	msgTokenBlank     = "Token is blank"
	msgAmountBlank    = "Amount is blank"
	msgCurrencyBlank  = "Currency is blank"
	msgCurrencyCode   = "Invalid currency code"
	msgAmountInvalid  = "Amount must be a positive integer (a JSON number or a string of digits)"
	msgAmountTooLarge = "Amount must not exceed 1000000000"
	msgTokenType      = "Token must be a string"
	msgDuplicate      = "Field given twice: " // and its name
)

// Decode parses body, a JSON object {"token", "amount", "currency"}, and
// validates it; bearer (see BearerToken) stands in for a blank body token.
// Keys match exactly, as in the original Python service; one of the three
// given twice is refused. Blank means what
// Python's "not value" meant: missing, null, "", 0, false, [] or {}; amount
// "0" is blank too. Currency is a JSON string of three ASCII capitals; any
// other (a number, an array...) is the contract's "Invalid currency code".
// Amount is an integer in 1..MaxAmount, as a JSON number without fraction or
// exponent, or as a string of ASCII digits. Every failure
// is an *httpx.DecodeError with status 422, for a body that is not a JSON
// object (as the contract has it for malformed JSON) as for the fields.
func Decode(body []byte, bearer string) (Transaction, error) {
	if !json.Valid(body) || firstByte(body) != '{' {
		return Transaction{}, notAnObject(body)
	}
	// A field given twice is refused: Python's json (the original's) took
	// the last value, and a client log, proxy or fraud check that reads the
	// first would see another amount than the one charged.
	var token, amount, currency json.RawMessage
	for key, val := range objectFields(body) {
		var field *json.RawMessage
		var name string
		switch {
		case keyIs(key, "token"):
			field, name = &token, "token"
		case keyIs(key, "amount"):
			field, name = &amount, "amount"
		case keyIs(key, "currency"):
			field, name = &currency, "currency"
		default:
			continue
		}
		if *field != nil {
			return Transaction{}, invalid(msgDuplicate + name)
		}
		*field = val
	}

	tokenBlank := httpx.Falsy(token)
	if tokenBlank && bearer == "" {
		return Transaction{}, invalid(msgTokenBlank)
	}
	if httpx.Falsy(amount) || isZeroString(amount) {
		return Transaction{}, invalid(msgAmountBlank)
	}
	if httpx.Falsy(currency) {
		return Transaction{}, invalid(msgCurrencyBlank)
	}

	// A currency that is not a JSON string is not three capital letters
	// either: the contract's text, whatever the type (840, USD's numeric
	// code, included).
	var tx Transaction
	cur, ok := jsonString(currency)
	if !ok || !isCurrencyCode(cur) {
		return Transaction{}, invalid(msgCurrencyCode)
	}
	tx.Currency = cur

	n, msg := parseAmount(amount)
	if msg != "" {
		return Transaction{}, invalid(msg)
	}
	tx.Amount = n

	if tokenBlank {
		tx.Token = bearer
	} else if tx.Token, ok = jsonString(token); !ok {
		return Transaction{}, invalid(msgTokenType)
	}
	return tx, nil
}

// BearerToken returns the token of an "Authorization: Bearer <token>" header
// value (scheme case-insensitive, surrounding spaces trimmed), or "".
func BearerToken(authorization string) string {
	const scheme = "bearer "
	if len(authorization) < len(scheme) || !strings.EqualFold(authorization[:len(scheme)], scheme) {
		return ""
	}
	return strings.TrimSpace(authorization[len(scheme):])
}

// notAnObject explains why body, which is not a valid JSON object, was
// refused, in the shared decoder's words.
func notAnObject(body []byte) error {
	var discard map[string]json.RawMessage
	if err := httpx.DecodeJSONBytes(body, &discard); err != nil {
		return err
	}
	// The shared decoder trims Unicode white space that JSON does not allow.
	return &httpx.DecodeError{Status: http.StatusUnprocessableEntity, Msg: "Request body is not valid JSON"}
}

func invalid(msg string) error {
	return &httpx.DecodeError{Status: http.StatusUnprocessableEntity, Msg: msg}
}

// isZeroString reports whether raw is a JSON string of one or more "0"s,
// which int() in the original turned into a blank 0.
func isZeroString(raw json.RawMessage) bool {
	s, ok := jsonString(raw)
	return ok && s != "" && strings.Trim(s, "0") == ""
}

// jsonString returns raw's value when raw is a JSON string.
func jsonString(raw json.RawMessage) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	for _, b := range inner {
		if b == '\\' || b < 0x20 || b >= 0x80 {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return "", false
			}
			return s, true
		}
	}
	return string(inner), true
}

// isCurrencyCode reports whether s is exactly three ASCII capitals.
func isCurrencyCode(s string) bool {
	return len(s) == 3 && isUpper(s[0]) && isUpper(s[1]) && isUpper(s[2])
}

func isUpper(b byte) bool { return b >= 'A' && b <= 'Z' }

// parseAmount accepts a non-blank amount: a JSON integer or a digit string in
// 1..MaxAmount. It returns the client-facing message when it does not.
func parseAmount(raw json.RawMessage) (int64, string) {
	if raw[0] != '"' {
		return parseDigits(raw)
	}
	if !bytes.ContainsRune(raw, '\\') {
		return parseDigits(raw[1 : len(raw)-1])
	}
	s, ok := jsonString(raw)
	if !ok {
		return 0, msgAmountInvalid
	}
	return parseDigits([]byte(s))
}

// parseDigits parses one or more ASCII digits (leading zeros allowed) as an
// amount in 1..MaxAmount, without overflowing on long inputs.
func parseDigits(s []byte) (int64, string) {
	if len(s) == 0 {
		return 0, msgAmountInvalid
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, msgAmountInvalid
		}
	}
	s = bytes.TrimLeft(s, "0")
	if len(s) > maxAmountDigits {
		return 0, msgAmountTooLarge
	}
	var n int64
	for i := 0; i < len(s); i++ {
		n = n*10 + int64(s[i]-'0')
	}
	switch {
	case n == 0:
		return 0, msgAmountBlank // all zeros; Decode reports these as blank first
	case n > MaxAmount:
		return 0, msgAmountTooLarge
	}
	return n, ""
}
