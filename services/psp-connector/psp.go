package main

import (
	"bytes"
	"context"
	"io"
	"strconv"

	"github.com/acme-payments/platform/internal/txqueue"
)

// linePSP is the platform's PSP: like the original service, it "makes the
// transaction" by printing the contract's line, exactly. Whole lines only
// ever go out in one Write, so that they never interleave with log lines on
// the same stdout.
type linePSP struct{ w io.Writer }

// Charge prints "==> Making transaction with PSP: User ID: 1, Amount: 100, Currency: USD".
func (p linePSP) Charge(_ context.Context, m txqueue.Message) error {
	var buf [128]byte
	_, err := p.w.Write(appendLine(buf[:0], m))
	return err
}

// ChargeRound prints the lines of a whole round in one Write (txqueue.RoundPSP):
// one syscall instead of one per line, and the round's lines leave together,
// right before the connector records them, which keeps the window in which a
// crash repeats charges to that one syscall. A failed Write fails the charges
// whose lines it did not write whole; those it wrote (a short write, as on a
// full disk) are charged, and recorded as such.
func (p linePSP) ChargeRound(_ context.Context, round []txqueue.Message, errs []error) {
	buf := make([]byte, 0, 96*len(round))
	for _, m := range round {
		buf = appendLine(buf, m)
	}
	n, err := p.w.Write(buf)
	end := 0 // where line i ends in buf
	for i := range round {
		errs[i] = nil
		if err != nil {
			end += bytes.IndexByte(buf[end:], '\n') + 1
			if end > n {
				errs[i] = err
			}
		}
	}
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
