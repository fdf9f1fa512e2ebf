package main

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/acme-payments/platform/internal/httpx"
)

// FuzzDecodeTokenRequest checks decodeTokenRequest's invariants on arbitrary
// bodies: it never panics; failures are *httpx.DecodeError with a 4xx status
// and a message; successes carry, for each of username and password, either
// a non-empty string equal to the body's as the standard decoder reads it, or
// the flag that the body's is not a string.
func FuzzDecodeTokenRequest(f *testing.F) {
	f.Add([]byte(`{"username":"alice","password":"password"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeTokenRequest(body)
		if err != nil {
			var de *httpx.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("got %T %v, want *httpx.DecodeError", err, err)
			}
			if de.Status < 400 || de.Status > 499 || de.Msg == "" {
				t.Fatalf("got status %d message %q, want a 4xx with a message", de.Status, de.Msg)
			}
			if req.Password != "" {
				t.Fatal("returned a password with an error")
			}
			return
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("accepted a body the standard decoder rejects: %v", err)
		}
		for _, f := range []struct {
			name      string
			got       string
			notString bool
		}{{"username", req.Username, req.UsernameNotString}, {"password", req.Password, req.PasswordNotString}} {
			s, isString := m[f.name].(string)
			switch {
			case f.notString && (isString || m[f.name] == nil || f.got != ""):
				t.Fatalf("got %+v: %s flagged not a string, the body says %#v", req, f.name, m[f.name])
			case !f.notString && (f.got == "" || !isString || s != f.got):
				t.Fatalf("got %+v: %s %q, the body says %#v", req, f.name, f.got, m[f.name])
			}
		}
	})
}
