package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// oldLedgerTail is how much of the end of a connector's log
// keepLedgerLinesOfAnOlderConnector looks at: what psp-connector's ledger
// lookup reads of CHARGE_LOG (its ledgerTail).
const oldLedgerTail = 64 << 20

// chargedMarker is in every ledger line psp-connector prints (its
// chargedMsg); the connector parses the lines it reads back itself.
var chargedMarker = []byte(`"msg":"charged with the PSP"`)

// keepLedgerLinesOfAnOlderConnector copies, into the ledger copy
// (CHARGE_LEDGER), the ledger lines of psp-connector's log that `up` is
// about to delete, when the state dir has no ledger copy: a stack from
// before D64 (2026-12-06) had none, and its connector's ledger lines were
// only in logs/psp-connector.log. A connector killed with a round printed
// and not recorded, then `stack down`, `git pull` and `stack up`: the new
// connector takes the round over after VISIBILITY_TIMEOUT, looks it up in
// CHARGE_LOG (new, empty) and CHARGE_LEDGER (none), and charged it again
// (24 transactions charged twice in an upgrade from 29c2a6a;
// RELIABILITY.md, "Upgrading with transactions in flight"). Only whole
// lines of the log's last oldLedgerTail bytes are copied, which is what the
// lookup would have read of the log kept. A state dir that has a ledger
// copy is left alone: its connector writes each of its lines there itself.
func (l *launcher) keepLedgerLinesOfAnOlderConnector() error {
	ledger := l.cfg.LedgerFile()
	if _, err := os.Lstat(ledger); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	f, err := os.OpenFile(l.cfg.LogFile("psp-connector"), os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the ledger lines of psp-connector's last log: %w", err)
	}
	defer f.Close()
	var lines bytes.Buffer
	if err := ledgerLines(f, &lines); err != nil {
		return fmt.Errorf("read the ledger lines of psp-connector's last log: %w", err)
	}
	if lines.Len() == 0 {
		return nil
	}
	if err := writeWhole(ledger, lines.Bytes()); err != nil {
		return fmt.Errorf("keep the ledger lines of psp-connector's last log in %s (nothing was deleted; up copies them again next time): %w", ledger, err)
	}
	fmt.Fprintf(l.stderr, "stack: kept the ledger lines of psp-connector's last log in %s (a state dir from before the ledger copy: the next connector looks up there what the last one charged)\n", l.rel(ledger))
	return nil
}

// writeWhole makes path, which must not exist, hold data, whole or not at
// all: data goes to a file of its own next to path, synced, which is then
// renamed to path. Written in place, a copy cut short (a full disk: up then
// failed, or a kill) was left as path, and the next up, finding a ledger
// copy, left it as it was and deleted the log that held the rest
// (TestUpKeepsTheLedgerLinesOfAnOlderConnectorThroughAFullDisk). Up holds
// the state dir's lock, and the connector does not run, so nothing else
// makes path meanwhile.
func writeWhole(path string, data []byte) error {
	tmp := path + ".up-copy"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync() // the rename, on disk; failing, it is no worse than before
		_ = d.Close()
	}
	return nil
}

// ledgerLines appends to w the whole lines holding chargedMarker in the last
// oldLedgerTail bytes of f. A line longer than the reader's buffer is no
// ledger line of the connector's (those fit in a pipe's buffer) and is
// skipped; so is a last line without its newline, cut by a kill.
func ledgerLines(f *os.File, w *bytes.Buffer) error {
	if fi, err := f.Stat(); err == nil && fi.Size() > oldLedgerTail {
		if _, err := f.Seek(fi.Size()-oldLedgerTail, io.SeekStart); err != nil {
			return err
		}
	}
	rd := bufio.NewReaderSize(f, 64<<10)
	long := false // in a line longer than rd's buffer
	if fi, err := f.Stat(); err == nil && fi.Size() > oldLedgerTail {
		long = true // the seek's first line is only its end
	}
	for {
		line, err := rd.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = true
			continue
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if !long && bytes.Contains(line, chargedMarker) {
			w.Write(line)
		}
		long = false
	}
}
