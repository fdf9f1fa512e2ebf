package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acme-payments/platform/internal/rotatedlog"
	"github.com/acme-payments/platform/internal/txqueue"
)

// newLedgerCopy opens a CHARGE_LEDGER in t's temporary directory that
// starts a new file past limit bytes, logging to the returned buffer, and a
// ledger PSP that prints to out and keeps its ledger lines only there.
func newLedgerCopy(t *testing.T, limit int64, out *bytes.Buffer) (ledgerPSP, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	own, err := openLedgerFile(filepath.Join(t.TempDir(), "ledger.jsonl"), limit, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { own.Close() })
	return ledgerPSP{linePSP: linePSP{w: out}, own: own}, &logs
}

// checkMade asks psp which of round's transactions it made, and compares
// with want, in round's order.
func checkMade(t *testing.T, psp ledgerPSP, round []txqueue.Message, want ...bool) {
	t.Helper()
	ids := make([]string, len(round))
	for i, m := range round {
		ids[i] = m.ID
	}
	got, err := psp.Made(context.Background(), ids)
	if err != nil {
		t.Fatalf("Made: %v", err)
	}
	for i, id := range ids {
		if got[id] != want[i] {
			t.Errorf("Made(%s): got %v, want %v", id, got[id], want[i])
		}
	}
}

// TestLedgerCopyNamesWhatWentOutWhole: the copy (CHARGE_LEDGER) names the
// transactions whose lines were printed, in one line per round, and not
// those whose lines a failed Write did not print: what CHARGE_LOG's ledger
// line would have said, kept where nothing truncates it.
func TestLedgerCopyNamesWhatWentOutWhole(t *testing.T) {
	round := testRound()
	var out bytes.Buffer
	psp, _ := newLedgerCopy(t, ledgerTail, &out)
	errs := make([]error, 2)
	psp.ChargeRound(context.Background(), round[:2], errs)
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("ChargeRound: %v", errs)
	}
	// A Write that prints nothing charges nothing, and names nothing.
	failing := ledgerPSP{linePSP: linePSP{w: failingWriter{err: os.ErrClosed}}, own: psp.own}
	failing.ChargeRound(context.Background(), round[2:3], errs[:1])
	if errs[0] == nil {
		t.Fatal("ChargeRound on a failing Write: got no error")
	}
	b, err := os.ReadFile(psp.own.path)
	if err != nil {
		t.Fatal(err)
	}
	checkLedgerLine(t, string(b), round[:2]...)
	checkMade(t, psp, round, true, true, false)
}

// TestLedgerCopyStartsANewFilePastItsLimit: past its limit the copy becomes
// CHARGE_LEDGER.1, replacing the one before, and a new one starts; Made
// reads both, so what the last limit bytes named is still found, and the
// copy never holds much more than twice its limit.
func TestLedgerCopyStartsANewFilePastItsLimit(t *testing.T) {
	round := testRound()
	var out bytes.Buffer
	psp, _ := newLedgerCopy(t, ledgerTail, &out)
	errs := make([]error, 1)
	charge := func(i int) {
		t.Helper()
		psp.ChargeRound(context.Background(), round[i:i+1], errs)
		if errs[0] != nil {
			t.Fatal(errs[0])
		}
	}
	charge(0)
	st, err := os.Stat(psp.own.path)
	if err != nil {
		t.Fatal(err)
	}
	// Two rounds of one fill a file: a line is some 140 bytes, and the
	// lines' times differ in length by at most 9 (RFC 3339, trailing zeros
	// of the nanoseconds dropped).
	lineLen := st.Size()
	psp.own.limit = lineLen + 20
	if _, err := os.Stat(psp.own.previous()); err == nil {
		t.Fatal("a new file after one round, want one after two")
	}
	charge(1) // fills the file: it becomes .1
	charge(2)
	checkMade(t, psp, round, true, true, true)
	charge(0) // the second file fills: it replaces .1, with rounds 0 and 1 in it
	checkMade(t, psp, round, true, false, true)
	for _, path := range []string{psp.own.path, psp.own.previous()} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 2*lineLen+20 {
			t.Errorf("%s holds %d bytes, want at most its limit and a line (%d)", path, st.Size(), 2*lineLen+20)
		}
	}
}

// TestLedgerCopyStartsOnANewLine: a copy cut in the middle of a line (a kill
// during its write, a full disk) gets the next ledger line on a line of its
// own, whether the cut was in an earlier run or in this one; glued to the
// cut line, it would not parse, and would name nothing.
func TestLedgerCopyStartsOnANewLine(t *testing.T) {
	round := testRound()
	cut := appendLedgerLine(nil, round[:1], time.Now())
	cut = cut[:len(cut)/2]

	t.Run("cut by an earlier run", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ledger.jsonl")
		if err := os.WriteFile(path, cut, 0o600); err != nil {
			t.Fatal(err)
		}
		own, err := openLedgerFile(path, ledgerTail, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer own.Close()
		psp := ledgerPSP{linePSP: linePSP{w: &bytes.Buffer{}}, own: own}
		psp.ChargeRound(context.Background(), round[1:2], make([]error, 1))
		checkMade(t, psp, round, false, true, false)
	})

	t.Run("a write of this run failed, then one succeeded", func(t *testing.T) {
		var out bytes.Buffer
		psp, logs := newLedgerCopy(t, ledgerTail, &out)
		// The file swapped for one that refuses writes, then back.
		good := psp.own.f
		bad, err := os.Open(psp.own.path) // read-only: every Write fails
		if err != nil {
			t.Fatal(err)
		}
		defer bad.Close()
		psp.own.f = bad
		errs := make([]error, 1)
		psp.ChargeRound(context.Background(), round[0:1], errs)
		psp.ChargeRound(context.Background(), round[1:2], errs)
		if errs[0] != nil {
			t.Fatalf("a failed copy failed the charge: %v", errs[0])
		}
		if strings.Count(out.String(), "==> Making transaction") != 2 {
			t.Errorf("the rounds were not printed:\n%s", out.String())
		}
		if n := strings.Count(logs.String(), "could not write the ledger copy (CHARGE_LEDGER)"); n != 1 {
			t.Errorf("got %d warnings for two failed writes, want 1:\n%s", n, logs.String())
		}
		if _, err := good.Write(cut); err != nil { // as a short write leaves it
			t.Fatal(err)
		}
		psp.own.f = good
		psp.ChargeRound(context.Background(), round[2:3], errs)
		if !strings.Contains(logs.String(), "the ledger copy (CHARGE_LEDGER) is written again") {
			t.Errorf("no line saying the copy is written again:\n%s", logs.String())
		}
		checkMade(t, psp, round, false, false, true)
	})
}

// TestLedgerPSPMadeNamesTheFileItCannotRead: an unreadable source fails the
// lookup (what no other source names is then charged again, at least
// once), with an error naming its variable; a missing previous copy is no
// error (there is none before the first new file).
func TestLedgerPSPMadeNamesTheFileItCannotRead(t *testing.T) {
	round := testRound()
	var out bytes.Buffer
	psp, _ := newLedgerCopy(t, ledgerTail, &out)
	psp.ChargeRound(context.Background(), round[:1], make([]error, 1))
	checkMade(t, psp, round, true, false, false)

	withLog := psp
	withLog.log = filepath.Join(t.TempDir(), "none.log")
	if _, err := withLog.Made(context.Background(), []string{round[0].ID}); err == nil || !strings.Contains(err.Error(), "CHARGE_LOG") {
		t.Errorf("Made with CHARGE_LOG missing: got %v, want an error naming CHARGE_LOG", err)
	}
	if err := os.Remove(psp.own.path); err != nil {
		t.Fatal(err)
	}
	if _, err := psp.Made(context.Background(), []string{round[0].ID}); err == nil || !strings.Contains(err.Error(), "CHARGE_LEDGER") {
		t.Errorf("Made with CHARGE_LEDGER removed: got %v, want an error naming CHARGE_LEDGER", err)
	}
}

// BenchmarkChargeRound: the cost of the ledger copy, a second write per
// round. A round of the default 24 printed to a file (the stack's stdout is
// a pipe to process-compose, which writes a file), with and without
// CHARGE_LEDGER; compare the two in one run.
func BenchmarkChargeRound(b *testing.B) {
	round := make([]txqueue.Message, txqueue.DefaultChargers)
	for i := range round {
		round[i] = txqueue.Message{ID: fmt.Sprintf("tx_%032x", i), Transaction: txqueue.Transaction{UserID: int64(i + 1), Amount: 100, Currency: "USD"}}
	}
	for _, copy := range []bool{false, true} {
		b.Run(fmt.Sprintf("CHARGE_LEDGER=%v", copy), func(b *testing.B) {
			out, err := os.Create(filepath.Join(b.TempDir(), "psp-connector.log"))
			if err != nil {
				b.Fatal(err)
			}
			defer out.Close()
			psp := ledgerPSP{linePSP: linePSP{w: out}, log: out.Name()}
			if copy {
				own, err := openLedgerFile(filepath.Join(b.TempDir(), "ledger.jsonl"), ledgerTail, slog.New(slog.DiscardHandler))
				if err != nil {
					b.Fatal(err)
				}
				defer own.Close()
				psp.own = own
			}
			errs := make([]error, len(round))
			b.ReportAllocs()
			for b.Loop() {
				psp.ChargeRound(context.Background(), round, errs)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(round)), "ns/tx")
		})
	}
}

// rounds returns n rounds of one transaction each, with ids of their own.
func rounds(n int) []txqueue.Message {
	round := make([]txqueue.Message, n)
	for i := range round {
		round[i] = txqueue.Message{ID: fmt.Sprintf("tx_%032x", 0x100+i), Transaction: txqueue.Transaction{UserID: 1, Amount: int64(100 + i), Currency: "USD"}}
	}
	return round
}

// TestLedgerCopySharedByTwoConnectors: two connectors append to one
// CHARGE_LEDGER, one of them busier. When the busy one starts a new file,
// the other one's open file has become CHARGE_LEDGER.1, and the busy one's
// next new file replaces it: the quiet one must move on to the new file
// before that, not go on writing where its lines end up in no file, and a
// round in hand is not found. Whether it writes between the busy one's new
// files or is idle through two of them (or the file is removed), its last
// round is found.
func TestLedgerCopySharedByTwoConnectors(t *testing.T) {
	const busy, quiet = 0, 1
	tests := []struct {
		name   string
		lines  int64 // the lines that fill a file
		writes []int // which connector charges each round, in turn
		remove int   // remove the file before this round (0: never)
	}{
		{"the quiet one writes between the busy one's new files", 2, []int{busy, busy, quiet, busy, busy, quiet}, 0},
		{"the quiet one idle through two new files", 2, []int{busy, busy, busy, busy, quiet}, 0},
		{"the file removed", 4, []int{busy, quiet, quiet}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs := rounds(len(tt.writes))
			path := filepath.Join(t.TempDir(), "ledger.jsonl")
			var logs bytes.Buffer
			var psps []ledgerPSP
			for range 2 {
				own, err := openLedgerFile(path, ledgerTail, slog.New(slog.NewJSONHandler(&logs, nil)))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { own.Close() })
				psps = append(psps, ledgerPSP{linePSP: linePSP{w: &bytes.Buffer{}}, own: own})
			}
			// The lines' times differ in length by at most 9
			// (TestLedgerCopyStartsANewFilePastItsLimit).
			line := int64(len(appendLedgerLine(nil, msgs[:1], time.Now())))
			for _, psp := range psps {
				psp.own.limit = (tt.lines-1)*line + 20
			}
			for i, who := range tt.writes {
				if tt.remove > 0 && i == tt.remove {
					if err := os.Remove(path); err != nil {
						t.Fatal(err)
					}
				}
				errs := make([]error, 1)
				psps[who].ChargeRound(context.Background(), msgs[i:i+1], errs)
				if errs[0] != nil {
					t.Fatal(errs[0])
				}
			}
			last := len(msgs) - 1
			for _, psp := range psps {
				checkMade(t, psp, msgs[last:], true)
			}
			if logs.Len() > 0 {
				t.Errorf("warnings:\n%s", logs.String())
			}
		})
	}
}

// TestLedgerPSPMadeWhileAnotherConnectorStartsANewFile: a connector sharing
// CHARGE_LEDGER starts a new file while Made reads (between its opens of
// the current file and the previous one). The current file's lines, the
// newest, are then in the previous file: Made must still find them, as it
// does when it reads the current file first.
func TestLedgerPSPMadeWhileAnotherConnectorStartsANewFile(t *testing.T) {
	msgs := rounds(2)
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	mine, other := openSharedLedger(t, path), openSharedLedger(t, path)
	mine.ChargeRound(context.Background(), msgs[:1], make([]error, 1)) // the round in hand
	other.own.limit = 1                                                // its next round starts a new file

	opens := 0
	mine.own.open = func(name string) (*os.File, error) {
		f, err := os.Open(name)
		if opens++; opens == 1 {
			other.ChargeRound(context.Background(), msgs[1:], make([]error, 1))
			if _, err := os.Stat(other.own.previous()); err != nil {
				t.Fatalf("the other connector started no new file: %v", err)
			}
		}
		return f, err
	}
	checkMade(t, mine, msgs, true, true)
}

// TestLedgerCopyNewFileStartedByTwoConnectorsAtOnce: two connectors
// sharing CHARGE_LEDGER both find it full and both start a new file, the
// second one's look at the file (still its own) before the first one's
// move, and its move after the first one's new file. Moved by both, that
// new file would replace CHARGE_LEDGER.1, the full file with the newest
// rounds, and the first connector would go on writing to it where the
// next new file replaces it. Only one of them may move the file.
func TestLedgerCopyNewFileStartedByTwoConnectorsAtOnce(t *testing.T) {
	msgs := rounds(4)
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	first, second := openSharedLedger(t, path), openSharedLedger(t, path)
	charge := func(psp ledgerPSP, i int) {
		t.Helper()
		errs := make([]error, 1)
		psp.ChargeRound(context.Background(), msgs[i:i+1], errs)
		if errs[0] != nil {
			t.Fatal(errs[0])
		}
	}
	charge(first, 0)
	charge(second, 1) // the round in hand: the newest line of the full file
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	first.own.limit, second.own.limit = st.Size(), st.Size() // full

	renames := 0
	second.own.rename = func(from, to string) error {
		if renames++; renames == 1 {
			// The second connector has looked, and is about to move the
			// file: the first one starts its new file now.
			charge(first, 2)
		}
		return os.Rename(from, to)
	}
	if _, _, err := second.own.rotate(); err != nil {
		t.Fatal(err)
	}
	second.own.rename = os.Rename
	charge(first, 3)
	checkMade(t, second, msgs, true, true, true, true)
}

// TestLedgerCopyWarnsOnceWhenItCannotStartANewFile: a copy past its limit
// that cannot become CHARGE_LEDGER.1 (a directory is in the way) is written
// on, with one warning, not one a round: at thousands of transactions a
// second, a warning a round would flood the log, which is CHARGE_LOG,
// pushing its ledger lines out of the part Made reads. Once the way is
// clear, the new file starts.
func TestLedgerCopyWarnsOnceWhenItCannotStartANewFile(t *testing.T) {
	msgs := rounds(5)
	var out bytes.Buffer
	psp, logs := newLedgerCopy(t, 1, &out) // a new file after every round
	if err := os.MkdirAll(filepath.Join(psp.own.previous(), "in-the-way"), 0o700); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		psp.ChargeRound(context.Background(), msgs[i:i+1], make([]error, 1))
	}
	const warning = "could not start a new ledger copy (CHARGE_LEDGER)"
	if n := strings.Count(logs.String(), warning); n != 1 {
		t.Errorf("got %d warnings %q for 4 rounds, want 1:\n%s", n, warning, logs.String())
	}
	b, err := os.ReadFile(psp.own.path)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs[:4] {
		if !strings.Contains(string(b), m.ID) {
			t.Errorf("%s is not in the copy written on:\n%s", m.ID, b)
		}
	}

	if err := os.RemoveAll(psp.own.previous()); err != nil {
		t.Fatal(err)
	}
	psp.ChargeRound(context.Background(), msgs[4:5], make([]error, 1))
	if st, err := os.Stat(psp.own.previous()); err != nil || !st.Mode().IsRegular() {
		t.Errorf("no new file once the way was clear: %v", err)
	}
	if !strings.Contains(logs.String(), "started a new ledger copy (CHARGE_LEDGER) again") {
		t.Errorf("no line saying a new file started again:\n%s", logs.String())
	}
	checkMade(t, psp, msgs[4:], true)
}

// TestLedgerCopyWarnsWhenItsDirectoryIsRemoved: a copy whose directory was
// removed (rm -rf of the stack's ledger/ while it runs) cannot be made
// again, and the lines written on go to a file no longer at any name, which
// Made never reads. The one warning says so, not that the copy is written
// on in the old file; once the directory is back, a new file starts and
// names the next round.
func TestLedgerCopyWarnsWhenItsDirectoryIsRemoved(t *testing.T) {
	msgs := rounds(4)
	var out bytes.Buffer
	psp, logs := newLedgerCopy(t, ledgerTail, &out)
	psp.ChargeRound(context.Background(), msgs[:1], make([]error, 1))
	dir := filepath.Dir(psp.own.path)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 3; i++ {
		psp.ChargeRound(context.Background(), msgs[i:i+1], make([]error, 1))
	}
	const warning = "the ledger copy (CHARGE_LEDGER) was removed"
	if n := strings.Count(logs.String(), warning); n != 1 {
		t.Errorf("got %d warnings %q for 2 rounds, want 1:\n%s", n, warning, logs.String())
	}
	if strings.Contains(logs.String(), "writing on in the old one") {
		t.Errorf("a warning says the copy is written on, but its file has no name left:\n%s", logs.String())
	}

	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	psp.ChargeRound(context.Background(), msgs[3:], make([]error, 1))
	if !strings.Contains(logs.String(), "started a new ledger copy (CHARGE_LEDGER) again") {
		t.Errorf("no line saying a new file started again:\n%s", logs.String())
	}
	checkMade(t, psp, msgs[3:], true)
}

// TestChargeLedgerMustNotBeChargeLog: CHARGE_LEDGER is refused when it is
// CHARGE_LOG by another name (relative, through a symlinked directory or a
// symlink, a hard link), or when its previous file (.1) would be: the copy
// would be truncated with the log, and starting its new file would move the
// log away from process-compose's path. Names that differ only in slashes
// were refused already; a file of its own beside the log is accepted.
func TestChargeLedgerMustNotBeChargeLog(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "psp-connector.log")
	if err := os.WriteFile(log, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(log, filepath.Join(dir, "log-symlink")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(log, filepath.Join(dir, "log-hardlink")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	tests := []struct {
		name        string
		log, ledger string
		refused     bool
	}{
		{"a file of its own", log, filepath.Join(dir, "ledger.jsonl"), false},
		{"a file of its own, relative", log, "ledger.jsonl", false},
		{"the same, with a double slash", log, dir + "//psp-connector.log", true},
		{"the same, relative", log, "psp-connector.log", true},
		{"the same, relative, the log not there yet", filepath.Join(dir, "new.log"), "./new.log", true},
		{"the same, through a symlinked directory", log, filepath.Join(link, "psp-connector.log"), true},
		{"a symlink to it", log, filepath.Join(dir, "log-symlink"), true},
		{"a hard link to it", log, filepath.Join(dir, "log-hardlink"), true},
		{"its .1 is the log", filepath.Join(dir, "x.1"), filepath.Join(link, "x"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig([]string{"CHARGE_LOG=" + tt.log, "CHARGE_LEDGER=" + tt.ledger})
			switch {
			case tt.refused && (err == nil || !strings.Contains(err.Error(), "CHARGE_LEDGER")):
				t.Errorf("got %v, want an error naming CHARGE_LEDGER", err)
			case !tt.refused && err != nil:
				t.Errorf("got %v, want no error", err)
			}
		})
	}
}

// openSharedLedger opens the CHARGE_LEDGER at path as one more connector
// sharing it does, closed when t ends: a ledger PSP whose own lines go only
// to the copy.
func openSharedLedger(t *testing.T, path string) ledgerPSP {
	t.Helper()
	own, err := openLedgerFile(path, ledgerTail, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { own.Close() })
	return ledgerPSP{linePSP: linePSP{w: &bytes.Buffer{}}, own: own}
}

// TestLedgerPSPMadeStopsWhenItsContextEnds: the lookup reads up to three
// 64 MiB tails (seconds, after a crash), and a stop must not wait for it:
// Made ends with its context's error, naming the file it was reading, and
// names nothing made (the consumer then leaves the batch pending). The log
// here holds 32 MiB of ledger lines, the transaction asked about in the last
// one; read in full, it is found.
func TestLedgerPSPMadeStopsWhenItsContextEnds(t *testing.T) {
	f, psp := newLedgerLog(t)
	round := make([]txqueue.Message, 24)
	for i := range round {
		round[i] = txqueue.Message{ID: fmt.Sprintf("tx_%032x", i+1), Transaction: txqueue.Transaction{UserID: 1, Amount: 1, Currency: "USD"}}
	}
	line := appendLedgerLine(nil, round, time.Now())
	full := bytes.Repeat(line, (32<<20)/len(line))
	if _, err := f.Write(full); err != nil {
		t.Fatal(err)
	}
	last := txqueue.Message{ID: fmt.Sprintf("tx_%032x", 1<<20)}
	if _, err := f.Write(appendLedgerLine(nil, []txqueue.Message{last}, time.Now())); err != nil {
		t.Fatal(err)
	}

	began := time.Now()
	made, err := psp.Made(context.Background(), []string{last.ID})
	if err != nil || !made[last.ID] {
		t.Fatalf("Made, read in full: got %v, %v; want %s made", made, err, last.ID)
	}
	t.Logf("read in full in %s", time.Since(began))

	tests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc) // made just before the lookup
		want error
	}{
		{"stopped before the lookup", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, context.Canceled},
		{"stopped 20 ms into the lookup", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 20*time.Millisecond)
		}, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := tt.ctx()
			defer cancel()
			began := time.Now()
			made, err := psp.Made(ctx, []string{last.ID})
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), "CHARGE_LOG") {
				t.Errorf("Made: got %v, %v; want an error naming CHARGE_LOG, with %v", made, err, tt.want)
			}
			t.Logf("returned in %s", time.Since(began))
		})
	}
}

// TestLedgerPSPMadeReadsTheLogsRotatedPiece: process-compose rotates the
// connector's log (rotatedlog), so a round printed just before a rotation is
// in the newest piece, not in CHARGE_LOG. Made reads that piece when the log
// is shorter than the tail it reads, and a log rotated while Made reads it
// leaves nothing out of reach (rotatedlog.PieceBefore).
func TestLedgerPSPMadeReadsTheLogsRotatedPiece(t *testing.T) {
	stamp := time.Date(2026, 12, 7, 9, 0, 0, 0, time.Local)
	tests := []struct {
		name string
		// steps, in order: a round's index printed to the log, or -1 for a
		// rotation.
		steps []int
		// bigLog pads the log to ledgerTail bytes before Made (NUL bytes,
		// as a truncated log starts with; a sparse file): then the lines of
		// the piece are farther back than Made reads.
		bigLog bool
		want   []bool
	}{
		{"never rotated", []int{0, 1}, false, []bool{true, true, false}},
		{"rotated after the last round", []int{0, 1, -1}, false, []bool{true, true, false}},
		{"rotated between two rounds", []int{0, -1, 1}, false, []bool{true, true, false}},
		{"rotated twice: the older piece is not read", []int{0, -1, 1, -1, 2}, false, []bool{false, true, true}},
		{"a log as long as the tail read", []int{0, -1, 1}, true, []bool{false, true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			round := testRound()
			path := filepath.Join(t.TempDir(), "psp-connector.log")
			out := openLog(t, path)
			for _, step := range tt.steps {
				if step < 0 { // as lumberjack rotates: rename, then a new file
					stamp = stamp.Add(time.Second)
					if err := os.Rename(path, rotatedlog.PieceName(path, stamp)); err != nil {
						t.Fatal(err)
					}
					out = openLog(t, path)
					continue
				}
				printRound(t, out, round[step:step+1])
			}
			if tt.bigLog {
				if err := os.Truncate(path, ledgerTail); err != nil {
					t.Fatal(err)
				}
				if _, err := out.Write([]byte("\n")); err != nil {
					t.Fatal(err)
				}
				// The round printed after the rotation is now farther
				// back than Made reads: print it again, after the padding.
				printRound(t, out, round[1:2])
			}
			checkMade(t, ledgerPSP{log: path}, round, tt.want...)
		})
	}
}

// TestLedgerPSPMadeReadsThePieceWhileTheLogIsRenamed: lumberjack rotates a
// log by renaming it and then creating the new file, so for a moment there
// is no CHARGE_LOG at all, only the piece holding its lines. Made reads the
// piece then, rather than fail: a failure would charge the round again
// unless CHARGE_LEDGER holds it too. With no piece either, a missing
// CHARGE_LOG is still an error (TestLedgerPSPMadeNamesTheFileItCannotRead).
func TestLedgerPSPMadeReadsThePieceWhileTheLogIsRenamed(t *testing.T) {
	round := testRound()
	path := filepath.Join(t.TempDir(), "psp-connector.log")
	printRound(t, openLog(t, path), round[:1])
	if err := os.Rename(path, rotatedlog.PieceName(path, time.Date(2026, 12, 7, 9, 0, 0, 0, time.Local))); err != nil {
		t.Fatal(err)
	}
	checkMade(t, ledgerPSP{log: path}, round, true, false, false)
}

// TestLedgerPSPMadeTrustsWhatASourceItCouldReadNames: a transaction named
// by a ledger line in one source was printed, whatever the other source
// says. When the other one cannot be read, Made still answers it made (and
// says, with its error, which source failed, for those it found nowhere).
// Before, the first failure ended the lookup with no answer, so the
// consumer printed again a round CHARGE_LEDGER named: CHARGE_LOG removed
// (an operator freeing disk: process-compose's lumberjack writes on in the
// unlinked file until its next rotation, and there is no piece beside it),
// or CHARGE_LEDGER removed while CHARGE_LOG named the round.
func TestLedgerPSPMadeTrustsWhatASourceItCouldReadNames(t *testing.T) {
	tests := []struct {
		name    string
		remove  func(log, own string) string // removes one source, returns its variable
		wantErr string
	}{
		{"CHARGE_LOG removed, CHARGE_LEDGER names the round", func(log, _ string) string { return log }, "CHARGE_LOG"},
		{"CHARGE_LEDGER removed, CHARGE_LOG names the round", func(_, own string) string { return own }, "CHARGE_LEDGER"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			round := testRound()
			dir := t.TempDir()
			logPath := filepath.Join(dir, "psp-connector.log")
			out := openLog(t, logPath)
			own, err := openLedgerFile(filepath.Join(dir, "ledger.jsonl"), ledgerTail, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			defer own.Close()
			psp := ledgerPSP{linePSP: linePSP{w: out}, log: logPath, own: own}
			errs := make([]error, 1)
			psp.ChargeRound(context.Background(), round[:1], errs)
			if errs[0] != nil {
				t.Fatal(errs[0])
			}
			if err := os.Remove(tt.remove(logPath, own.path)); err != nil {
				t.Fatal(err)
			}
			ids := []string{round[0].ID, round[1].ID}
			got, err := psp.Made(context.Background(), ids)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Made's error: got %v, want one naming %s", err, tt.wantErr)
			}
			if !got[round[0].ID] || got[round[1].ID] {
				t.Errorf("Made: got %v, want %s made (named in the source still read), %s not", got, round[0].ID, round[1].ID)
			}
		})
	}
}

// TestLedgerPSPMadeReadsTheNewestPieceAcrossAClockSetBack: in the hour a
// clock set back for daylight saving repeats, the piece rotated last (its
// round just before the rotation) can be named before an older one.
// Made reads the piece written last; before, it read the one named last,
// an hour older, and missed the round.
func TestLedgerPSPMadeReadsTheNewestPieceAcrossAClockSetBack(t *testing.T) {
	round := testRound()
	path := filepath.Join(t.TempDir(), "psp-connector.log")
	at := time.Now().Add(-time.Hour)
	for i, step := range []struct {
		minute int // past 01:00, local time, in the piece's name
		round  int // the round printed into it, -1 for none
	}{{50, -1}, {10, 0}} {
		out := openLog(t, path)
		if step.round >= 0 {
			printRound(t, out, round[step.round:step.round+1])
		} else if _, err := out.WriteString("{\"msg\":\"an older line\"}\n"); err != nil {
			t.Fatal(err)
		}
		out.Close()
		mtime := at.Add(time.Duration(i) * 20 * time.Minute)
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path, rotatedlog.PieceName(path, time.Date(2026, 10, 25, 1, step.minute, 0, 0, time.Local))); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil { // the new log, empty so far
		t.Fatal(err)
	}
	checkMade(t, ledgerPSP{log: path}, round, true, false, false)
}

// openLog opens the log at path for appending, creating it, as
// process-compose writes a process's output there; it is closed when the
// test ends.
func openLog(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// printRound prints round's ledger lines to w, as the PSP step does,
// failing the test if a charge fails.
func printRound(t *testing.T, w io.Writer, round []txqueue.Message) {
	t.Helper()
	errs := make([]error, len(round))
	linePSP{w: w}.ChargeRound(context.Background(), round, errs)
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}
