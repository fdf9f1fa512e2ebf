package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acme-payments/platform/internal/stacktest"
	"github.com/acme-payments/platform/internal/txqueue"
)

// TestLedgerCopyOnAFullDisk: on a full disk, a round is printed only if its
// ledger line is written to CHARGE_LEDGER: every transaction ChargeRound
// answers charged is named by the copy, and a round that cannot be named
// is not printed, its charges failing with an error naming the file. Before
// the copy kept room ahead (D119), the rounds charged after the disk
// filled were printed and their ledger lines lost: a redelivery of such a
// round (its record in Redis lost, as when Redis shares the disk) charged
// it again. Once space is back, rounds are printed and named again. The
// disk is a real tmpfs (stacktest.SmallDisk), filled with a file.
func TestLedgerCopyOnAFullDisk(t *testing.T) {
	tests := []struct {
		name string
		// roundsBefore are charged before the disk fills (0: the copy is
		// opened on a full disk's last page).
		roundsBefore int
	}{
		{name: "disk filled after the copy was opened", roundsBefore: 0},
		{name: "disk filled after a round was charged", roundsBefore: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			disk := stacktest.SmallDisk(t, 4<<20)
			var logs bytes.Buffer
			own, err := openLedgerFile(filepath.Join(disk, "ledger.jsonl"), ledgerTail, slog.New(slog.NewJSONHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			defer own.Close()
			c := fullDiskCharger{t: t, own: own}
			for range tt.roundsBefore {
				c.chargeRound()
			}
			c.check("before the disk filled")
			if c.refused > 0 {
				t.Fatalf("%d rounds refused before the disk filled", c.refused)
			}
			free := stacktest.FillDisk(t, disk)
			// Enough rounds to use up any room kept ahead: 2,000 of 24
			// transactions need about 1.7 MB of ledger lines.
			for range 2000 {
				c.chargeRound()
			}
			c.check("on the full disk")
			if c.refused == 0 {
				t.Errorf("on the full disk: no round refused in %d, want the charges stopped once no ledger line can be written", c.rounds)
			}
			charged, refused := len(c.charged), c.refused
			t.Logf("on the full disk: %d transactions charged, %d rounds refused", charged, refused)
			if !strings.Contains(c.lastErr, own.path) || !strings.Contains(c.lastErr, "no space left on device") {
				t.Errorf("a refused round's error: got %q, want it to name %s and the full disk", c.lastErr, own.path)
			}
			if !strings.Contains(logs.String(), "no room on disk for the ledger copy") {
				t.Errorf("connector's log: got %s, want the full disk's warning", logs.String())
			}

			free()
			c.refused = 0
			for range 10 {
				c.chargeRound()
			}
			c.check("once space was back")
			if c.refused > 0 {
				t.Errorf("once space was back: %d of 10 rounds refused, want 0", c.refused)
			}
			if !strings.Contains(logs.String(), "has room on disk again") {
				t.Errorf("connector's log: got %s, want it to say the copy has room again", logs.String())
			}
		})
	}
}

// fullDiskCharger charges rounds of 24 transactions of its own through a
// ledger PSP that keeps its ledger lines only in own, and counts them.
type fullDiskCharger struct {
	t       *testing.T
	own     *ledgerFile
	rounds  int
	charged []txqueue.Message // answered charged: must be named by own
	refused int               // rounds whose every charge failed, nothing printed
	lastErr string
}

// chargeRound charges one new round, and checks that it was printed whole
// and answered charged, or not printed at all and answered failed.
func (c *fullDiskCharger) chargeRound() {
	t := c.t
	t.Helper()
	round := make([]txqueue.Message, 24)
	for i := range round {
		round[i] = txqueue.Message{ID: fmt.Sprintf("tx_%016x%016x", c.rounds, i), Transaction: txqueue.Transaction{UserID: 1, Amount: 100, Currency: "USD"}}
	}
	c.rounds++
	var out bytes.Buffer
	psp := ledgerPSP{linePSP: linePSP{w: &out}, own: c.own}
	errs := make([]error, len(round))
	psp.ChargeRound(context.Background(), round, errs)
	failed := 0
	for _, err := range errs {
		if err != nil {
			failed++
			c.lastErr = err.Error()
		}
	}
	switch {
	case failed == 0:
		c.charged = append(c.charged, round...)
	case failed == len(round) && out.Len() == 0:
		c.refused++
	default:
		t.Fatalf("round %d: %d of %d charges failed, %d bytes printed: want all charged, or none and nothing printed", c.rounds, failed, len(round), out.Len())
	}
}

// check fails t unless CHARGE_LEDGER names every transaction answered
// charged so far: a redelivery of any of them would find it made.
func (c *fullDiskCharger) check(when string) {
	t := c.t
	t.Helper()
	ids := make([]string, len(c.charged))
	for i, m := range c.charged {
		ids[i] = m.ID
	}
	made, err := ledgerPSP{own: c.own}.Made(context.Background(), ids)
	if err != nil {
		t.Fatalf("%s: Made: %v", when, err)
	}
	missing := 0
	for _, id := range ids {
		if !made[id] {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%s: %d of %d transactions charged are not named by CHARGE_LEDGER (a redelivery charges them again)", when, missing, len(ids))
	}
}
