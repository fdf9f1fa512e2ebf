package httpx

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestHandleHealth(t *testing.T) {
	pass := Check{Name: "redis", Run: func(context.Context) error { return nil }}
	fail := Check{Name: "redis", Run: func(context.Context) error { return errors.New("connection refused") }}
	hang := Check{Name: "slow", Run: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }}
	tests := []struct {
		name       string
		checks     []Check
		wantStatus int
		wantBody   string // exact, for check-free answers
		wantState  string
		wantChecks map[string]string // name → status
	}{
		{"no checks", nil, 200, `{"status":"pass","checks":{}}` + "\n", "pass", nil},
		{"passing check", []Check{pass}, 200, "", "pass", map[string]string{"redis": "pass"}},
		{"failing check", []Check{fail}, 503, "", "fail", map[string]string{"redis": "fail"}},
		{"hung check times out", []Check{hang, {Name: "other", Run: pass.Run}}, 503, "", "fail", map[string]string{"slow": "fail", "other": "pass"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			HandleHealth(tt.checks...).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health", nil))
			if rec.Code != tt.wantStatus {
				t.Errorf("got status %d, want %d", rec.Code, tt.wantStatus)
			}
			if tt.wantBody != "" && rec.Body.String() != tt.wantBody {
				t.Errorf("got %q, want %q", rec.Body.String(), tt.wantBody)
			}
			var got HealthResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if got.Status != tt.wantState {
				t.Errorf("got status %q, want %q", got.Status, tt.wantState)
			}
			for name, want := range tt.wantChecks {
				res := got.Checks[name]
				if len(res) != 1 || res[0].Status != want || res[0].Time == "" {
					t.Errorf("check %s: got %+v, want one result with status %q and a time", name, res, want)
				}
				if want == "fail" && res[0].Output == "" {
					t.Errorf("check %s: got no output for a failure", name)
				}
			}
		})
	}
}
