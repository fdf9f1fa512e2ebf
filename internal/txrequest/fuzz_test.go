package txrequest

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"strconv"
	"testing"

	"github.com/acme-payments/platform/internal/httpx"
)

var (
	currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)
	digitsRE   = regexp.MustCompile(`^[0-9]+$`)
	amountRE   = regexp.MustCompile(`^[1-9][0-9]{0,9}$`)
)

// FuzzDecode checks Decode's invariants on arbitrary bodies: it never
// panics; failures are *httpx.DecodeError with a 4xx status and a message;
// successes carry a token, an amount in 1..MaxAmount and a currency matching
// ^[A-Z]{3}$; and accepting agrees both ways with an independent check built
// on the standard decoder.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"token":"t","amount":100,"currency":"USD"}`), "")
	f.Add([]byte(`{"amount":"100","currency":"USD"}`), "bearer")
	f.Fuzz(func(t *testing.T, body []byte, bearer string) {
		tx, err := Decode(body, bearer)
		if want, ok := reference(body, bearer); ok && (err != nil || tx != want) {
			t.Fatalf("got %+v, %v; the standard decoder says %+v is valid", tx, err, want)
		}
		if err != nil {
			var de *httpx.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("got %T %v, want *httpx.DecodeError", err, err)
			}
			if de.Status < 400 || de.Status > 499 || de.Msg == "" {
				t.Fatalf("got status %d message %q, want a 4xx with a message", de.Status, de.Msg)
			}
			return
		}
		if tx.Amount < 1 || tx.Amount > MaxAmount {
			t.Fatalf("accepted amount %d, want 1..%d", tx.Amount, MaxAmount)
		}
		if !currencyRE.MatchString(tx.Currency) {
			t.Fatalf("accepted currency %q, want ^[A-Z]{3}$", tx.Currency)
		}
		if tx.Token == "" {
			t.Fatal("accepted an empty token")
		}

		// Independent oracle: the standard decoder, numbers kept exact.
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("accepted a body the standard decoder rejects: %v", err)
		}
		var amount string
		switch a := m["amount"].(type) {
		case json.Number:
			amount = a.String()
		case string:
			amount = a
		default:
			t.Fatalf("accepted amount of type %T", m["amount"])
		}
		if !digitsRE.MatchString(amount) {
			t.Fatalf("accepted amount %q, want digits only", amount)
		}
		if n, err := strconv.ParseInt(amount, 10, 64); err != nil || n != tx.Amount {
			t.Fatalf("got amount %d, the body says %q", tx.Amount, amount)
		}
		if m["currency"] != tx.Currency {
			t.Fatalf("got currency %q, the body says %v", tx.Currency, m["currency"])
		}
		if tok, ok := m["token"].(string); ok && tok != "" && tok != tx.Token {
			t.Fatalf("got token %q, the body says %q", tx.Token, tok)
		}
		if _, isString := m["token"].(string); !isString && tx.Token != bearer {
			t.Fatalf("got token %q without a body token, want the bearer %q", tx.Token, bearer)
		}
	})
}

// reference decodes body with the standard library and reports the
// transaction when it is plainly valid: a non-empty string token (or a bearer
// when the body's is missing, null or ""), an amount of digits without
// leading zeros in 1..MaxAmount, and a currency of three ASCII capitals.
func reference(body []byte, bearer string) (Transaction, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if dec.Decode(&m) != nil || dec.More() || !json.Valid(body) || givesAFieldTwice(body) {
		return Transaction{}, false
	}
	var tx Transaction
	switch tok := m["token"].(type) {
	case string:
		tx.Token = tok
	case nil:
	default:
		return Transaction{}, false
	}
	if tx.Token == "" {
		tx.Token = bearer
	}
	var amount string
	switch a := m["amount"].(type) {
	case json.Number:
		amount = a.String()
	case string:
		amount = a
	}
	n, err := strconv.ParseInt(amount, 10, 64)
	cur, _ := m["currency"].(string)
	if tx.Token == "" || !amountRE.MatchString(amount) || err != nil ||
		n > MaxAmount || !currencyRE.MatchString(cur) {
		return Transaction{}, false
	}
	tx.Amount, tx.Currency = n, cur
	return tx, true
}

// givesAFieldTwice reports whether the JSON object body (valid) has token,
// amount or currency more than once at its top level, read with the
// standard decoder's tokens.
func givesAFieldTwice(body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil { // {
		return false
	}
	seen := map[string]bool{}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return false
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return false
		}
		switch k, _ := key.(string); k {
		case "token", "amount", "currency":
			if seen[k] {
				return true
			}
			seen[k] = true
		}
	}
	return false
}
