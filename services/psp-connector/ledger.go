package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/acme-payments/platform/internal/txqueue"
)

// ledgerFile is the connector's own copy of its ledger lines (CHARGE_LEDGER):
// appended to (O_APPEND) after each round is printed, never truncated. When
// it grows past limit, it becomes path.1 (replacing the one before) and a new
// one starts, so that it holds at most about twice limit on disk, and its
// last limit bytes are always in the two files (Made reads the last
// ledgerTail bytes of each; a round in hand is a visibility timeout old).
type ledgerFile struct {
	path  string
	limit int64
	log   *slog.Logger
	// rename and open are os.Rename, for rotate's move, and os.Open, for
	// Made's reads; tests wrap them, to act in between.
	rename func(oldpath, newpath string) error
	open   func(name string) (*os.File, error)

	mu      sync.Mutex
	f       *os.File
	torn    bool // the last write may have left part of a line: start on a new one
	failing bool // a write failed and was logged; the next success is logged too
	stuck   bool // a new file could not be started, and that was logged
	// noRoom: the room kept ahead could not be grown (a full disk), and
	// that was logged; cannotKeep: the file system cannot keep room ahead
	// (no fallocate), and that was logged.
	noRoom, cannotKeep bool
}

// ledgerRoom is how much room past its end the ledger copy keeps allocated
// on disk (fallocate, the file's size unchanged), grown again once less
// than half of it is left: about 1,000 rounds of 24 transactions. A round
// is printed only once its ledger line has room (reserve), so that a full
// disk stops the charges instead of leaving charges no ledger names.
const ledgerRoom = 1 << 20

// openLedgerFile opens (creating it, mode 0600) the ledger file at path, to
// append to. A file that does not end in a newline (a write cut by a kill
// or a full disk) gets the next line on a line of its own.
func openLedgerFile(path string, limit int64, log *slog.Logger) (*ledgerFile, error) {
	f, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	l := &ledgerFile{path: path, limit: limit, log: log, rename: os.Rename, open: os.Open, f: f}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err != nil && !errors.Is(err, io.EOF) {
			f.Close()
			return nil, err
		}
		l.torn = last[0] != '\n'
	}
	return l, nil
}

// openAppend opens path to append to, creating it with mode 0600; it is
// opened for reading too, so that openLedgerFile can look at its last byte.
func openAppend(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
}

// previous is the path of the file before the current one.
func (l *ledgerFile) previous() string { return l.path + ".1" }

// roundLineSize bounds the size of the ledger line record writes for a
// round of n transactions: a newline after a torn line, the line without
// ids, and each id with its quotes and comma.
func roundLineSize(n int) int64 {
	return int64(1+ledgerLineBase) + int64(n)*int64(len(`"tx_00000000000000000000000000000000",`))
}

// ledgerLineBase bounds the size of a ledger line without ids: its time
// is RFC 3339 with nanoseconds, at most 35 bytes.
var ledgerLineBase = len(appendLedgerLine(nil, nil, time.Date(2026, 12, 31, 23, 59, 59, 999999999, time.FixedZone("", -(9*3600+30*60)))))

// reserve makes sure that the file record will write a round's ledger line
// to has room allocated on disk for need more bytes, so that the write
// cannot fail for want of space once the round is printed. It keeps
// ledgerRoom bytes allocated past the file's end, and grows that when half
// of it is used. On a full disk it goes on while what is left holds need
// bytes (warning once), and then answers an error naming the file: the
// round must not be printed. Other errors are left to the write (which
// logs its failure, and costs the copy that line). Where the file system
// cannot allocate ahead, it goes on without (warning once): a write can
// then fail after the round was printed, as before this room was kept. The
// room is as good as the file system's fallocate: on one that copies on
// write (btrfs) a write into it may still need room of its own.
func (l *ledgerFile) reserve(need int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cannotKeep {
		return nil
	}
	// The file record writes to, unless it starts a new one first: record
	// starts one after the write that fills this one, so the next round's
	// reserve is in the new one; only a file removed, or moved by another
	// connector sharing it, makes record write to a new file without room.
	size, allocated, err := spaceOf(l.f)
	if err != nil {
		return nil // left to the write, as other errors below
	}
	left := allocated - size
	if left >= ledgerRoom/2 {
		return nil
	}
	err = allocateAhead(l.f, size, ledgerRoom)
	switch {
	case err == nil:
		if l.noRoom {
			l.noRoom = false
			l.log.Info("the ledger copy (CHARGE_LEDGER) has room on disk again", "path", l.path)
		}
		return nil
	case errors.Is(err, errors.ErrUnsupported):
		l.cannotKeep = true
		l.log.Warn("the ledger copy's file system cannot allocate room ahead (fallocate); on a full disk a round can be printed and its ledger line in CHARGE_LEDGER lost",
			"path", l.path)
		return nil
	case !noSpace(err):
		// Not a full disk (a file that refuses writes, say): the write
		// fails too, is logged, and costs the copy that line, as before.
		return nil
	}
	if !l.noRoom {
		l.noRoom = true
		l.log.Warn("no room on disk for the ledger copy (CHARGE_LEDGER) to grow; charging on in the room kept ahead, and no more once it is used up, until there is room again",
			"path", l.path, "room_left_bytes", left, "error", err.Error())
	}
	if left >= need {
		return nil
	}
	return fmt.Errorf("%w: no room on disk for the round's ledger line in CHARGE_LEDGER %s (%d bytes left of the room kept ahead, %d needed): %w",
		txqueue.ErrChargeNotStarted, l.path, left, need, err)
}

// record appends the ledger line of round's transactions whose errs[i] is
// nil (their lines went out whole). A failed write is logged (once until a
// write succeeds again): it costs only the case of a truncated CHARGE_LOG
// (ledgerPSP).
func (l *ledgerFile) record(round []txqueue.Message, errs []error) {
	charged := round
	if slices.ContainsFunc(errs[:len(round)], func(err error) bool { return err != nil }) {
		charged = nil
		for i, m := range round {
			if errs[i] == nil {
				charged = append(charged, m)
			}
		}
	}
	if len(charged) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	// Before the write as well as after it: since this connector's last
	// round, another one sharing the file may have made it previous() (and
	// its next new file replaces that), or someone removed it. Written
	// there, the line would soon be in no file Made reads.
	size := l.startNewFileIfDue()
	b := make([]byte, 0, 160+len(charged)*40)
	if l.torn {
		b = append(b, '\n')
	}
	b = appendLedgerLine(b, charged, time.Now())
	n, err := l.f.Write(b)
	if err != nil {
		l.torn = true
		if !l.failing {
			l.failing = true
			l.log.Warn("could not write the ledger copy (CHARGE_LEDGER); until it works again, a round in hand when the connector stops is found only in CHARGE_LOG",
				"path", l.path, "error", err.Error())
		}
		return
	}
	l.torn = false
	if l.failing {
		l.failing = false
		l.log.Info("the ledger copy (CHARGE_LEDGER) is written again", "path", l.path)
	}
	if size+int64(n) >= l.limit {
		l.startNewFileIfDue()
	}
}

// startNewFileIfDue is rotate, with its failure logged once until a new
// file starts: it is tried again at every round, and a warning a round
// would flood the log (CHARGE_LOG). It returns the size of the file it
// leaves open (0 when unknown). A file that was removed, and cannot be made
// again (its directory is gone), is written on too, but no name leads to
// it: the warning says that the copy is lost until then, not kept.
func (l *ledgerFile) startNewFileIfDue() int64 {
	size, rotated, err := l.rotate()
	switch {
	case err != nil && !l.stuck:
		l.stuck = true
		if st, serr := l.f.Stat(); serr == nil && removed(st) {
			l.log.Warn("the ledger copy (CHARGE_LEDGER) was removed and cannot be made again; until it can (tried at each round), a round in hand when the connector stops is found only in CHARGE_LOG",
				"path", l.path, "error", err.Error())
			break
		}
		l.log.Warn("could not start a new ledger copy (CHARGE_LEDGER); writing on in the old one, and trying again at each round",
			"path", l.path, "error", err.Error())
	case rotated && l.stuck:
		l.stuck = false
		l.log.Info("started a new ledger copy (CHARGE_LEDGER) again", "path", l.path)
	}
	return size
}

// rotate starts a new file when the one this connector writes to holds
// limit bytes or more, or was removed, and says whether it did, with the
// size of the file it then writes to. The size is the file's own (one
// fstat a round), not a count of this connector's writes: another
// connector sharing the file writes to it too, and may have moved it to
// previous() already.
//
// The file is moved to previous() only while it is at path, and only
// under an flock of its directory, so that the look at path and the move
// are one step among connectors sharing the file: otherwise two of them
// could both find their file at path, and the second one move the first
// one's new file onto previous(), replacing the full one. The lock is not
// waited for: while another connector holds it, the file is written on
// where it is at path (that one moves it), and a file no longer at path is
// left. Then, and after a move, the file at path is opened, which needs no
// lock.
func (l *ledgerFile) rotate() (size int64, rotated bool, err error) {
	st, err := l.f.Stat()
	if err != nil {
		return 0, false, err
	}
	if st.Size() < l.limit && !removed(st) {
		return st.Size(), false, nil
	}
	if !removed(st) {
		unlock, err := lockDir(filepath.Dir(l.path))
		switch {
		case err == nil:
			defer unlock()
			if cur, err := os.Stat(l.path); err == nil && os.SameFile(cur, st) {
				if err := l.rename(l.path, l.previous()); err != nil {
					return st.Size(), false, err
				}
			}
		case errors.Is(err, errLockHeld):
			if cur, err := os.Stat(l.path); err == nil && os.SameFile(cur, st) {
				return st.Size(), false, nil
			}
		default:
			return st.Size(), false, err
		}
	}
	f, err := openAppend(l.path)
	if err != nil {
		return st.Size(), false, err
	}
	l.f.Close()
	l.f = f
	if st, err := f.Stat(); err == nil {
		size = st.Size()
	}
	return size, true, nil
}

// errLockHeld: another connector holds the lock lockDir asked for.
var errLockHeld = errors.New("another connector holds the lock")

// Close closes the file.
func (l *ledgerFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}
