package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acme-payments/platform/internal/rotatedlog"
)

// TestLedgerPSPMadeReadsLedgerTailBytesAcrossARotation: Made reads the last
// ledgerTail bytes of CHARGE_LOG and its newest piece together, not of each:
// the piece's share is what the log left of it. A round printed just before
// the rotation, at the piece's end, is read; one farther back than the
// share is not. Read whole, a piece would double the lookup's time (1.9 s
// measured for the tails), and the lookup stops at its context's end.
func TestLedgerPSPMadeReadsLedgerTailBytesAcrossARotation(t *testing.T) {
	round := testRound()
	path := filepath.Join(t.TempDir(), "psp-connector.log")
	print := func(f *os.File, i int) { t.Helper(); printRound(t, f, round[i:i+1]) }
	// The piece: round 0, then 16 kB of other lines, then round 2 at its
	// end.
	out := openLog(t, path)
	print(out, 0)
	if _, err := out.WriteString(strings.Repeat(strings.Repeat("x", 63)+"\n", 256)); err != nil {
		t.Fatal(err)
	}
	print(out, 2)
	if err := os.Rename(path, rotatedlog.PieceName(path, time.Date(2026, 12, 7, 9, 0, 0, 0, time.Local))); err != nil {
		t.Fatal(err)
	}
	// The log: ledgerTail less 4 kB (NUL bytes, a sparse file), then round
	// 1: it leaves the piece a share of under 4 kB, round 2's lines but not
	// round 0's, 16 kB before them.
	out = openLog(t, path)
	if err := os.Truncate(path, ledgerTail-4<<10); err != nil {
		t.Fatal(err)
	}
	if _, err := out.WriteString("\n"); err != nil {
		t.Fatal(err)
	}
	print(out, 1)
	checkMade(t, ledgerPSP{log: path}, round, false, true, true)
}
