package httpx

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestWriteError(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteError(rec, http.StatusTeapot, `say "why"`)
	if rec.Code != http.StatusTeapot {
		t.Errorf("got status %d, want %d", rec.Code, http.StatusTeapot)
	}
	if got := rec.Header().Get("Content-Type"); got != "application/json" {
		t.Errorf("got Content-Type %q, want application/json", got)
	}
	if got, want := rec.Body.String(), `{"error":"say \"why\""}`+"\n"; got != want {
		t.Errorf("got body %q, want %q", got, want)
	}
}

func TestDecodeJSONBytes(t *testing.T) {
	type target struct {
		Name  string `json:"name"`
		Count int    `json:"count"`
	}
	tests := []struct {
		name       string
		body       string
		wantStatus int // 0: success
		want       target
	}{
		{"object", `{"name":"a","count":2}`, 0, target{"a", 2}},
		{"surrounding white space", " \n{\"name\":\"a\"}\t\n", 0, target{Name: "a"}},
		{"unknown fields ignored", `{"name":"a","x":[1]}`, 0, target{Name: "a"}},
		{"empty", ``, http.StatusUnprocessableEntity, target{}},
		{"white space only", " \r\n", http.StatusUnprocessableEntity, target{}},
		{"non-JSON space before the object", "\u00a0{\"name\":\"a\"}", http.StatusUnprocessableEntity, target{}},
		{"array", `[1]`, http.StatusUnprocessableEntity, target{}},
		{"string", `"x"`, http.StatusUnprocessableEntity, target{}},
		{"null", `null`, http.StatusUnprocessableEntity, target{}},
		{"not JSON", `name=a`, http.StatusUnprocessableEntity, target{}},
		{"truncated", `{"name":`, http.StatusUnprocessableEntity, target{}},
		{"two objects", `{}{}`, http.StatusUnprocessableEntity, target{}},
		{"wrong field type", `{"count":"two"}`, http.StatusUnprocessableEntity, target{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got target
			err := DecodeJSONBytes([]byte(tt.body), &got)
			if tt.wantStatus == 0 {
				if err != nil || got != tt.want {
					t.Fatalf("got %+v, %v; want %+v, nil", got, err, tt.want)
				}
				return
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("got %v, want a *DecodeError", err)
			}
			if de.Status != tt.wantStatus || de.Msg == "" || de.Error() != de.Msg {
				t.Errorf("got status %d message %q, want status %d and a message", de.Status, de.Msg, tt.wantStatus)
			}
		})
	}
}

func TestDecodeJSONBytesNamesMistypedField(t *testing.T) {
	var dst struct {
		Count int `json:"count"`
	}
	err := DecodeJSONBytes([]byte(`{"count":true}`), &dst)
	if err == nil || !strings.Contains(err.Error(), `"count"`) {
		t.Fatalf("got %v, want an error naming \"count\"", err)
	}
}

func TestReadJSONBodyThenDecodeBodyTooLarge(t *testing.T) {
	tests := []struct {
		name       string
		size       int
		wantStatus int
	}{
		{"at the cap", MaxBodyBytes, http.StatusUnprocessableEntity}, // valid size, but not JSON
		{"over the cap", MaxBodyBytes + 1, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(strings.Repeat("a", tt.size)))
			r.Header.Set("Content-Type", "application/json")
			r.Body = http.MaxBytesReader(rec, r.Body, MaxBodyBytes)
			var dst map[string]any
			body, err := ReadJSONBody(r)
			if err == nil {
				err = DecodeJSONBytes(body, &dst)
			}
			var de *DecodeError
			if !errors.As(err, &de) || de.Status != tt.wantStatus {
				t.Fatalf("got %v, want a *DecodeError with status %d", err, tt.wantStatus)
			}
		})
	}
}

func TestReadJSONBodyContentType(t *testing.T) {
	tests := []struct {
		contentType string
		wantStatus  int // 0: accepted
	}{
		{"application/json", 0},
		{"application/json; charset=utf-8", 0},
		{"Application/JSON", 0},
		{"application/merge-patch+json", 0},
		{"", http.StatusUnsupportedMediaType},
		{"text/plain", http.StatusUnsupportedMediaType},
		{"application/x-www-form-urlencoded", http.StatusUnsupportedMediaType},
		{"application/jsonx", http.StatusUnsupportedMediaType},
		{"text/x+json", http.StatusUnsupportedMediaType}, // +json counts only under application/
		{"application/json; =broken", http.StatusUnsupportedMediaType},
	}
	for _, tt := range tests {
		t.Run(tt.contentType, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{}`))
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			body, err := ReadJSONBody(r)
			if tt.wantStatus == 0 {
				if err != nil || string(body) != `{}` {
					t.Fatalf("got %q, %v; want the body", body, err)
				}
				return
			}
			var de *DecodeError
			if !errors.As(err, &de) || de.Status != tt.wantStatus {
				t.Fatalf("got %v, want a *DecodeError with status %d", err, tt.wantStatus)
			}
		})
	}
}

// TestFalsy: the original services' "not value" on a JSON field, which
// auth-api's and core-api's blank checks both use.
func TestFalsy(t *testing.T) {
	tests := []struct {
		raw  string // "" stands for an absent field
		want bool
	}{
		{"", true}, {"null", true}, {"false", true}, {`""`, true}, {"[]", true}, {"{}", true},
		{"[ ]", true}, {"{\n}", true}, {"0", true}, {"-0", true}, {"0.0", true}, {"0e5", true}, {"-0.000E+9", true},
		{"true", false}, {`" "`, false}, {`"0"`, false}, {"[0]", false}, {`{"a":0}`, false},
		{"1", false}, {"0.5", false}, {"-0.01", false}, {"100", false},
		// Python's float: 1e-400 underflows to 0.0, so it is blank; the
		// smallest denormal and an overflow to infinity are not.
		{"1e-400", true}, {"0.1e-330", true}, {"-1e-999", true}, {"2e-324", true},
		{"4.9e-324", false}, {"3e-324", false}, {"1e400", false}, {"1.5e-10", false}, {"10e-1", false},
	}
	for _, tt := range tests {
		var raw json.RawMessage
		if tt.raw != "" {
			raw = json.RawMessage(tt.raw)
		}
		if got := Falsy(raw); got != tt.want {
			t.Errorf("Falsy(%q) = %v, want %v", tt.raw, got, tt.want)
		}
	}
}
