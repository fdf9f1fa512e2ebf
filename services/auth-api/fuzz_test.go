package main

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/acme-payments/platform/internal/httpx"
)

// FuzzDecodeTokenRequest checks decodeTokenRequest's invariants on arbitrary
// bodies: it never panics; failures are *httpx.DecodeError with a 4xx status
// and a message; successes carry non-empty username and password that equal
// the body's string fields as the standard decoder reads them.
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
		if req.Username == "" || req.Password == "" {
			t.Fatalf("accepted %+v with a blank field", req)
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("accepted a body the standard decoder rejects: %v", err)
		}
		if m["username"] != req.Username || m["password"] != req.Password {
			t.Fatalf("got %+v, the body says %v / %v", req, m["username"], m["password"])
		}
	})
}
