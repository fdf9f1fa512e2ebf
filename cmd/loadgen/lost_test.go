package main

import (
	"bytes"
	"context"
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
