package main

import (
	"strings"
	"testing"
	"time"
)

// TestValidateClaimInterval: CLAIM_INTERVAL under 100ms is refused, naming
// the variable and the bound. At 1ms the connector ran a reclaim pass, a
// trim and a progress line on every loop (836 progress lines in 2 s of
// load), and reclaimed nothing sooner: an entry is reclaimable only after
// VISIBILITY_TIMEOUT, at least 1s.
func TestValidateClaimInterval(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		want    time.Duration // the interval accepted, when wantErr is ""
		wantErr string
	}{
		{"unset: the default", nil, 5 * time.Second, ""},
		{"the bound itself", []string{"CLAIM_INTERVAL=100ms"}, 100 * time.Millisecond, ""},
		{"one second", []string{"CLAIM_INTERVAL=1s"}, time.Second, ""},
		{"just under the bound", []string{"CLAIM_INTERVAL=99ms"}, 0, "CLAIM_INTERVAL must be at least 100ms, such as 5s"},
		{"one millisecond", []string{"CLAIM_INTERVAL=1ms"}, 0, "CLAIM_INTERVAL must be at least 100ms, such as 5s"},
		{"zero", []string{"CLAIM_INTERVAL=0s"}, 0, "CLAIM_INTERVAL must be at least 100ms"},
		{"negative", []string{"CLAIM_INTERVAL=-1s"}, 0, "CLAIM_INTERVAL must be at least 100ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfig(tt.environ)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("got error %v, want CLAIM_INTERVAL %s accepted", err, tt.want)
			case tt.wantErr == "" && cfg.ClaimInterval != tt.want:
				t.Errorf("got CLAIM_INTERVAL %s, want %s", cfg.ClaimInterval, tt.want)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("got %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
