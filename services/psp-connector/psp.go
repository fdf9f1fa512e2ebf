package main

import (
	"context"
	"io"
	"strconv"

	"github.com/acme-payments/platform/internal/txqueue"
)

// linePSP is the platform's PSP: like the original service, it "makes the
// transaction" by printing the contract's line, exactly, with one Write per
// line so that lines never interleave with log lines on the same stdout.
type linePSP struct{ w io.Writer }

// Charge prints "==> Making transaction with PSP: User ID: 1, Amount: 100, Currency: USD".
func (p linePSP) Charge(_ context.Context, m txqueue.Message) error {
	var buf [128]byte
	b := append(buf[:0], "==> Making transaction with PSP: User ID: "...)
	b = strconv.AppendInt(b, m.UserID, 10)
	b = append(b, ", Amount: "...)
	b = strconv.AppendInt(b, m.Amount, 10)
	b = append(b, ", Currency: "...)
	b = append(b, m.Currency...)
	b = append(b, '\n')
	_, err := p.w.Write(b)
	return err
}
