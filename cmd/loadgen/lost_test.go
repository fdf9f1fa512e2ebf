package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/acme-payments/platform/internal/loadgen/fakerouter"
)

// TestRunFailsWhenTransactionsAreLost: the command's promise, "exits
// non-zero when an accepted transaction was never processed". run's error is
// what main turns into exit status 1, and the report says FAIL. The router
// is a fake whose connector never processes one: every status stays
// "queued".
func TestRunFailsWhenTransactionsAreLost(t *testing.T) {
	_, srv := fakerouter.Start(t, fakerouter.Options{LoseEvery: 1})
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"loadgen", "--target", srv.URL, "--redis-url", "none",
		"-c", "1", "--count", "5", "--drain-timeout", "200ms", "--quiet"}, nil, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "5 of 5 checked accepted transactions were never processed") {
		t.Errorf("got error %v, want one saying the 5 accepted transactions were never processed", err)
	}
	if !strings.Contains(out.String(), "FAIL:") {
		t.Errorf("report does not say FAIL:\n%s", out.String())
	}
}

// TestJSONReportCarriesTheVerdict: --json is for machines, which should not
// have to rebuild the verdict from the counts: "verdict" and
// "verdict_reason" say what the text report's last line says, next to the
// report's fields.
func TestJSONReportCarriesTheVerdict(t *testing.T) {
	tests := []struct {
		name        string
		loseEvery   int64
		wantVerdict string
		wantReason  string
	}{
		{"every transaction processed", 0, "pass", "every checked accepted transaction was processed"},
		{"every transaction lost", 1, "fail", "5 of 5 checked accepted transactions were never processed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := fakerouter.Start(t, fakerouter.Options{LoseEvery: tt.loseEvery})
			var out, errOut bytes.Buffer
			err := run(context.Background(), []string{"loadgen", "--target", srv.URL, "--redis-url", "none",
				"-c", "1", "--count", "5", "--drain-timeout", "200ms", "--quiet", "--json"}, nil, &out, &errOut)
			if (err != nil) != (tt.wantVerdict == "fail") {
				t.Errorf("run: got %v, want an error only for a failed run", err)
			}
			var rep struct {
				Accepted int64  `json:"tx_accepted"`
				Verdict  string `json:"verdict"`
				Reason   string `json:"verdict_reason"`
			}
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				t.Fatalf("--json output: %v\n%s", err, out.String())
			}
			if rep.Accepted != 5 || rep.Verdict != tt.wantVerdict || !strings.Contains(rep.Reason, tt.wantReason) {
				t.Errorf("got tx_accepted %d, verdict %q (%q), want 5, %q (%q)", rep.Accepted, rep.Verdict, rep.Reason, tt.wantVerdict, tt.wantReason)
			}
		})
	}
}
