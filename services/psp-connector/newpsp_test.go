package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/acme-payments/platform/internal/logging"
)

// snakeCase is the house style's shape of a log key.
var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// TestNewPSPSaysWhichLedgerSourcesItReads: the start line that names the
// files the ledger lines are read back from carries their paths under
// snake_case keys, as every other log key is.
func TestNewPSPSaysWhichLedgerSourcesItReads(t *testing.T) {
	dir := t.TempDir()
	chargeLog, chargeLedger := filepath.Join(dir, "psp-connector.log"), filepath.Join(dir, "ledger")
	tests := []struct {
		name              string
		chargeLog, ledger string
	}{
		{"CHARGE_LOG only", chargeLog, ""},
		{"CHARGE_LEDGER only", "", chargeLedger},
		{"both", chargeLog, chargeLedger},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			log := logging.New(&out, "psp-connector", slog.LevelInfo)
			psp, err := newPSP(io.Discard, config{ChargeLog: tt.chargeLog, ChargeLedger: tt.ledger}, log)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := psp.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			})
			var rec map[string]any
			if err := json.Unmarshal(out.Bytes(), &rec); err != nil {
				t.Fatalf("log: got %q, want one JSON line: %v", out.String(), err)
			}
			if got := rec["msg"]; got != "reading the charges' ledger lines back" {
				t.Errorf("msg: got %q, want %q", got, "reading the charges' ledger lines back")
			}
			if got := rec["charge_log"]; got != tt.chargeLog {
				t.Errorf("charge_log: got %v, want %q", got, tt.chargeLog)
			}
			if got := rec["charge_ledger"]; got != tt.ledger {
				t.Errorf("charge_ledger: got %v, want %q", got, tt.ledger)
			}
			for k := range rec {
				if !snakeCase.MatchString(k) {
					t.Errorf("log key %q: got a key that is not snake_case, want snake_case (line %s)", k, out.String())
				}
			}
		})
	}
}
