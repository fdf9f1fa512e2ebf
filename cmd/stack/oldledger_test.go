package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acme-payments/platform/internal/stackconfig"
	"github.com/acme-payments/platform/internal/stacktest"
)

// TestUpKeepsTheLedgerLinesOfAConnectorFromBeforeTheLedgerCopy: a state dir
// of a stack from before D64 has no ledger copy (ledger/psp-connector.jsonl),
// so its connector's ledger lines, what it charged, are only in
// logs/psp-connector.log, which `up` deletes. Upgraded with a round printed
// and not recorded (the connector killed, then `stack down`, `git pull`,
// `stack up`), the new connector found the round in neither and charged it
// again. `up` now copies that log's ledger lines into the ledger copy when
// there is none, and leaves a ledger copy that exists alone.
func TestUpKeepsTheLedgerLinesOfAConnectorFromBeforeTheLedgerCopy(t *testing.T) {
	const (
		round1 = `{"time":"2026-12-06T10:00:00.1Z","level":"INFO","msg":"charged with the PSP","service":"psp-connector","transaction_ids":["tx_00000000000000000000000000000001","tx_00000000000000000000000000000002"]}` + "\n"
		round2 = `{"time":"2026-12-06T10:00:00.2Z","level":"INFO","msg":"charged with the PSP","service":"psp-connector","transaction_ids":["tx_00000000000000000000000000000003"]}` + "\n"
		other  = `{"time":"2026-12-06T10:00:00.3Z","level":"INFO","msg":"progress","service":"psp-connector","processed":3}` + "\n"
		line   = "==> Making transaction with PSP: User ID: 1, Amount: 100, Currency: USD\n"
		// The last line, cut by a kill in the middle of its write.
		cut = `{"time":"2026-12-06T10:00:00.4Z","level":"INFO","msg":"charged with the PSP","service":"psp-connector","transaction_ids":["tx_0000`
	)
	tests := []struct {
		name       string
		log        string // logs/psp-connector.log; "" for none
		ledger     string // ledger/psp-connector.jsonl; "" for none
		wantLedger string // "" for no ledger file after up
	}{
		{name: "a state dir from before the ledger copy: the log's ledger lines are kept",
			log:        line + line + round1 + other + line + round2 + line + cut,
			wantLedger: round1 + round2},
		{name: "a ledger copy exists: it is left as it is", log: line + round1 + line + round2,
			ledger: round2, wantLedger: round2},
		{name: "no log: no ledger copy is made", wantLedger: ""},
		{name: "a log without ledger lines: no ledger copy is made", log: line + other, wantLedger: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(fakeCheckout(t))
			state := shortStateDir(t)
			cfg := stackconfig.Config{StateDir: state}
			for _, d := range []string{cfg.LogDir(), filepath.Dir(cfg.LedgerFile())} {
				if err := os.MkdirAll(d, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			if tt.log != "" {
				if err := os.WriteFile(cfg.LogFile("psp-connector"), []byte(tt.log), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tt.ledger != "" {
				if err := os.WriteFile(cfg.LedgerFile(), []byte(tt.ledger), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var stderr bytes.Buffer
			l := &launcher{cfg: cfg, stderr: &stderr}
			if err := l.clearRunFiles(); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(cfg.LedgerFile())
			switch {
			case tt.wantLedger == "" && !os.IsNotExist(err):
				t.Fatalf("ledger copy after up: got %q, %v; want none", got, err)
			case tt.wantLedger == "":
				return
			case err != nil:
				t.Fatalf("ledger copy after up: %v; want %q", err, tt.wantLedger)
			case string(got) != tt.wantLedger:
				t.Errorf("ledger copy after up:\ngot  %q\nwant %q", got, tt.wantLedger)
			}
			if fi, err := os.Stat(cfg.LedgerFile()); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("ledger copy's mode: got %v, %v; want 0600", fi.Mode(), err)
			}
			if kept := strings.Contains(stderr.String(), "kept the ledger lines"); kept != (tt.ledger == "") {
				t.Errorf("up's word of the kept lines: got %q", stderr.String())
			}
		})
	}
}

// TestUpKeepsTheLedgerLinesOfAnOlderConnectorThroughAFullDisk: `up` on a
// state dir from before the ledger copy, on a disk that fills while up
// copies the log's ledger lines, fails, and must leave no ledger copy that
// a later up could take for a whole one: that up leaves a ledger copy that
// exists alone and deletes the log, so the lines the first copy had no room
// for would be lost, and a round among them charged again. A disk with a
// few kB free passes up's check of the room (checkFreeSpace counts the logs
// it deletes as free) whenever the log is large.
func TestUpKeepsTheLedgerLinesOfAnOlderConnectorThroughAFullDisk(t *testing.T) {
	t.Chdir(fakeCheckout(t))
	disk := stacktest.SmallDisk(t, 1<<20)
	cfg := stackconfig.Config{StateDir: filepath.Join(disk, "st")}
	for _, d := range []string{cfg.LogDir(), filepath.Dir(cfg.LedgerFile())} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	var log, want strings.Builder
	for i := range 1000 {
		round := fmt.Sprintf(`{"time":"2026-12-06T10:00:00.1Z","level":"INFO","msg":"charged with the PSP","service":"psp-connector","transaction_ids":["tx_%032d"]}`+"\n", i)
		log.WriteString("==> Making transaction with PSP: User ID: 1, Amount: 100, Currency: USD\n" + round)
		want.WriteString(round)
	}
	if err := os.WriteFile(cfg.LogFile("psp-connector"), []byte(log.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	// 16 kB left free: the copy's first lines fit, the rest do not.
	pad := filepath.Join(disk, "pad")
	if err := os.WriteFile(pad, make([]byte, 16<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	free := stacktest.FillDisk(t, disk)
	if err := os.Remove(pad); err != nil {
		t.Fatal(err)
	}

	var stderr bytes.Buffer
	l := &launcher{cfg: cfg, stderr: &stderr}
	if err := l.clearRunFiles(); err == nil || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("up on a full disk: got %v, want an error saying there is no space left", err)
	}
	if got, err := os.ReadFile(cfg.LedgerFile()); !os.IsNotExist(err) {
		t.Errorf("after the failed copy: a ledger copy of %d bytes (of %d), %v; want none, so that the next up copies again", len(got), want.Len(), err)
	}

	free()
	stderr.Reset()
	if err := l.clearRunFiles(); err != nil {
		t.Fatalf("up with room again: %v", err)
	}
	got, err := os.ReadFile(cfg.LedgerFile())
	if err != nil || string(got) != want.String() {
		t.Errorf("ledger copy after up with room again: %d bytes, %v; want the log's %d bytes of ledger lines", len(got), err, want.Len())
	}
	if fi, err := os.Stat(cfg.LogFile("psp-connector")); err != nil || fi.Size() != 0 {
		t.Errorf("psp-connector's log after up: %v, %v; want a new, empty one", fi, err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(cfg.LedgerFile())); len(entries) != 1 {
		t.Errorf("ledger dir after up: %d entries, want only the ledger copy", len(entries))
	}
}
