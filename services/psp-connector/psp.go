package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"time"

	"github.com/acme-payments/platform/internal/rotatedlog"
	"github.com/acme-payments/platform/internal/txqueue"
)

// linePSP is the platform's PSP: like the original service, it "makes the
// transaction" by printing the contract's line, exactly. Whole lines only
// ever go out in one Write, so that they never interleave with log lines on
// the same stdout.
type linePSP struct{ w io.Writer }

// Charge prints "==> Making transaction with PSP: User ID: 1, Amount: 100, Currency: USD",
// and its ledger line, in one Write.
func (p linePSP) Charge(ctx context.Context, m txqueue.Message) error {
	var errs [1]error
	p.ChargeRound(ctx, []txqueue.Message{m}, errs[:])
	return errs[0]
}

// ChargeRound prints the lines of a whole round in one Write (txqueue.RoundPSP):
// one syscall instead of one per line, and the round's lines leave together,
// right before the connector records them, which keeps the window in which a
// crash repeats charges to that one syscall. A failed Write fails the charges
// whose lines it did not write whole; those it wrote (a short write, as on a
// full disk) are charged, and recorded as such.
//
// The same Write ends with the round's ledger line, a JSON log line naming
// its transactions (chargedMsg): whoever reads the output can tell which
// transaction each contract line was, and a ledgerPSP reading it back knows
// which transactions were made. Written last, it is in the output only if
// every line before it is.
//
// A Write stays within pipeBuf, so that a kill cannot cut it (ledgerPSP): a
// round too long for that (more than 29 transactions with the longest lines;
// the default, txqueue.DefaultChargers, is 24) goes out in several Writes,
// each with the ledger line of its own lines. A kill between two of them
// leaves the later ones unprinted, and so charged once, by whoever takes the
// round over. After a failed Write nothing more is written.
func (p linePSP) ChargeRound(_ context.Context, round []txqueue.Message, errs []error) {
	now := time.Now()
	var err error
	for len(round) > 0 {
		buf, lines, n := appendPart(make([]byte, 0, pipeBuf), round, now)
		if err == nil {
			var wrote int
			wrote, err = p.w.Write(buf)
			end := 0 // where line i ends in buf
			for i := range n {
				errs[i] = nil
				if err != nil {
					end += bytes.IndexByte(buf[end:lines], '\n') + 1
					if end > wrote {
						errs[i] = err
					}
				}
			}
		} else {
			for i := range n {
				errs[i] = err
			}
		}
		round, errs = round[n:], errs[n:]
	}
}

// appendPart appends to b the contract lines of as many transactions of
// round as fit in pipeBuf with their ledger line (at least one), then that
// ledger line. It returns the buffer, where the ledger line starts, and how
// many transactions it holds.
func appendPart(b []byte, round []txqueue.Message, now time.Time) (buf []byte, lines, n int) {
	ledger := len(appendLedgerLine(nil, nil, now)) // the ledger line without ids
	for n < len(round) {
		before := len(b)
		b = appendLine(b, round[n])
		ledger += len(round[n].ID) + len(`"",`)
		if n > 0 && len(b)+ledger > pipeBuf {
			b = b[:before]
			break
		}
		n++
	}
	lines = len(b)
	return appendLedgerLine(b, round[:n], now), lines, n
}

// appendLine appends m's contract line, newline included, to b.
func appendLine(b []byte, m txqueue.Message) []byte {
	b = append(b, "==> Making transaction with PSP: User ID: "...)
	b = strconv.AppendInt(b, m.UserID, 10)
	b = append(b, ", Amount: "...)
	b = strconv.AppendInt(b, m.Amount, 10)
	b = append(b, ", Currency: "...)
	b = append(b, m.Currency...)
	return append(b, '\n')
}

// chargedMsg is the msg of a round's ledger line.
const chargedMsg = "charged with the PSP"

// appendLedgerLine appends the ledger line of round, in the shape of the
// connector's other log lines (slog's JSON, at info):
//
//	{"time":"…","level":"INFO","msg":"charged with the PSP","service":"psp-connector","transaction_ids":["tx_…",…]}
//
// Transaction ids are tx_ and 32 hex digits (txqueue.ValidID), so they need
// no escaping.
func appendLedgerLine(b []byte, round []txqueue.Message, now time.Time) []byte {
	b = append(b, `{"time":"`...)
	b = now.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":"`+chargedMsg+`","service":"psp-connector","transaction_ids":[`...)
	for i, m := range round {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, m.ID...)
		b = append(b, '"')
	}
	return append(b, "]}\n"...)
}

// ledgerPSP is linePSP with its ledger lines read back (txqueue.LedgerPSP),
// from one source or both:
//
//   - log (CHARGE_LOG): the file the connector's standard output goes to (in
//     the stack, its log file). Contract lines and the ledger line naming
//     them leave in one Write of at most pipeBuf bytes
//     (linePSP.ChargeRound), and a write to a pipe of at most PIPE_BUF bytes
//     is all or nothing, so a transaction named in the file had its contract
//     line printed, even if the connector was killed right after. But the
//     file is not the connector's: `stack up` starts it afresh, process-compose
//     renames it when it rotates it (the piece before the file read is read
//     too: readChargeLog), and without its log rotation settings
//     it truncates it when it starts the connector itself (a stop and start
//     through its API or TUI).
//   - own (CHARGE_LEDGER): a file of the connector's own, to which each
//     round's ledger line is appended right after the round was printed, and
//     which nothing else truncates. A kill between the two leaves the round
//     in the log only; a truncated log, in this file only. Both at once,
//     both are needed to charge a round twice.
//
// A transaction named in either was printed.
type ledgerPSP struct {
	linePSP
	log string      // CHARGE_LOG, "" for none
	own *ledgerFile // CHARGE_LEDGER, nil for none
}

// Charge charges m alone, as a round of one.
func (p ledgerPSP) Charge(ctx context.Context, m txqueue.Message) error {
	var errs [1]error
	p.ChargeRound(ctx, []txqueue.Message{m}, errs[:])
	return errs[0]
}

// ChargeRound prints the round (linePSP.ChargeRound), then appends to
// CHARGE_LEDGER the ledger line of those of its transactions whose lines went
// out whole. A round whose ledger line has no room on disk in CHARGE_LEDGER
// (ledgerFile.reserve: a full disk) is not printed, and each of its charges
// fails with an error naming the file: a printed round that no ledger
// names is charged again at a redelivery.
func (p ledgerPSP) ChargeRound(ctx context.Context, round []txqueue.Message, errs []error) {
	if p.own != nil {
		if err := p.own.reserve(roundLineSize(len(round))); err != nil {
			for i := range round {
				errs[i] = err
			}
			return
		}
	}
	p.linePSP.ChargeRound(ctx, round, errs)
	if p.own != nil {
		p.own.record(round, errs)
	}
}

// ledgerTail bounds how much of the end of each file Made reads: a round in
// hand when its connector stopped is near the end, a visibility timeout ago.
const ledgerTail = 64 << 20

// Made answers which of ids a ledger line in the last ledgerTail bytes of
// CHARGE_LOG (and of its newest rotated piece, readChargeLog), or of
// CHARGE_LEDGER and its previous file, names. A transaction named in one
// source was printed, whatever the other says, so every source is read
// even when one of them fails: a source that cannot be read is an error,
// naming it, returned with what the others named (txqueue.LedgerPSP), and
// only the transactions no source named are charged again, at least once.
// Reading up to three such tails can take seconds (1.9 s measured), so Made
// stops when ctx is done, with ctx's error: the consumer then leaves the
// batch pending, uncharged.
func (p ledgerPSP) Made(ctx context.Context, ids []string) (map[string]bool, error) {
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = false
	}
	var errs []error
	if p.log != "" {
		if err := readChargeLog(ctx, p.log, want); err != nil {
			errs = append(errs, fmt.Errorf("CHARGE_LOG %s: %w", p.log, err))
		}
	}
	if p.own != nil && ctx.Err() == nil {
		// The current file first, then the previous one (which may be
		// gone, or never was): a connector sharing the file that starts a
		// new one in between has moved what was read first to where it is
		// read next. The other way round, the lines of the file moved
		// (the newest) would be in neither read.
		if err := readLedgerLines(ctx, p.own.open, p.own.path, want); err != nil {
			errs = append(errs, fmt.Errorf("CHARGE_LEDGER %s: %w", p.own.path, err))
		}
		err := readLedgerLines(ctx, p.own.open, p.own.previous(), want)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("CHARGE_LEDGER %s: %w", p.own.previous(), err))
		}
	}
	return want, errors.Join(errs...)
}

// readChargeLog marks true each id of want that a ledger line in the last
// ledgerTail bytes of CHARGE_LOG names, across a rotation: when the file
// read is shorter than that and process-compose has rotated the log
// (rotatedlog), the rest is read from the end of the piece before it, where
// a round printed just before the rotation is. The piece is found after the log is opened, so a
// rotation in between moves nothing out of reach: the file read is a piece
// by then, and the piece before it is read. lumberjack renames the log
// before it creates the new file, so a log missing while a piece is there
// was rotated just now: the newest piece is read in its place.
func readChargeLog(ctx context.Context, path string, want map[string]bool) error {
	tail := int64(ledgerTail) // what is left to read, the piece's share
	var opened os.FileInfo    // nil: the log missing, being rotated
	f, openErr := os.Open(path)
	switch {
	case errors.Is(openErr, fs.ErrNotExist):
	case openErr != nil:
		return openErr
	default:
		defer f.Close()
		var err error
		if opened, err = f.Stat(); err != nil {
			return err
		}
		if err := scanLedgerLines(ctx, f, ledgerTail, want); err != nil {
			return err
		}
		if opened.Size() >= ledgerTail {
			return nil
		}
		tail -= opened.Size()
	}
	piece := rotatedlog.PieceBefore(path, opened)
	if piece == "" {
		return openErr // nil, or the log missing with no piece: an error
	}
	pf, err := os.Open(piece)
	if errors.Is(err, fs.ErrNotExist) && opened != nil {
		// Gone since (`stack up` deletes the pieces): it held nothing of
		// a round in hand, as this connector's run began after it.
		return nil
	}
	if err == nil {
		defer pf.Close()
		err = scanLedgerLines(ctx, pf, tail, want)
	}
	if err != nil {
		return fmt.Errorf("its rotated piece %s: %w", piece, err)
	}
	return nil
}

// ledgerCheckEvery is how many lines readLedgerLines reads between two looks
// at its context: about 1 ms of ledger lines of 24 transactions (about
// 20 µs each to decode), far less of other lines.
const ledgerCheckEvery = 64

// readLedgerLines marks true each id of want that a ledger line in the last
// ledgerTail bytes of the file at path, opened with open, names. It stops
// with ctx's error once ctx is done.
func readLedgerLines(ctx context.Context, open func(string) (*os.File, error), path string, want map[string]bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return scanLedgerLines(ctx, f, ledgerTail, want)
}

// scanLedgerLines is readLedgerLines on a file opened already, reading its
// last tail bytes.
func scanLedgerLines(ctx context.Context, f *os.File, tail int64, want map[string]bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if fi, err := f.Stat(); err == nil && fi.Size() > tail {
		if _, err := f.Seek(fi.Size()-tail, io.SeekStart); err != nil {
			return err
		}
	}
	marker := []byte(`"msg":"` + chargedMsg + `"`)
	// A ledger line is at most pipeBuf bytes. A longer line (another
	// writer's, or the NUL bytes a truncated log starts with when its
	// writer goes on at its old offset) names nothing: it is skipped, not
	// an error, so that the ledger lines around it are still found.
	rd := bufio.NewReaderSize(f, 64<<10)
	long := false // in a line longer than rd's buffer
	for n := 1; ; n++ {
		if n%ledgerCheckEvery == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		line, err := rd.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = true
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if !long && bytes.Contains(line, marker) {
			var rec struct {
				Msg            string   `json:"msg"`
				TransactionIDs []string `json:"transaction_ids"`
			}
			if json.Unmarshal(line, &rec) == nil && rec.Msg == chargedMsg {
				for _, id := range rec.TransactionIDs {
					if _, ok := want[id]; ok {
						want[id] = true
					}
				}
			}
		}
		long = false
		if err != nil { // io.EOF
			return nil
		}
	}
}
