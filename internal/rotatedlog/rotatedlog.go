// Package rotatedlog finds the pieces of a log that process-compose has
// rotated. With log_configuration.rotation in process-compose.yaml (the
// stack's, since RELIABILITY.md D81) process-compose writes a process's log
// through lumberjack, in v1.64.1 and in current releases: once the file
// would pass max_size_mb it is renamed to
// <name>-<local time as 2006-01-02T15-04-05.000>.log beside it, and a new
// file starts at the old path. `stack logs` prints the pieces before the
// log, `stack up`'s report of a process that is not ready reads the newest
// one when the log is short, and psp-connector reads its ledger lines back
// from the newest one (CHARGE_LOG).
package rotatedlog

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// TimeLayout is the time in a piece's name (lumberjack's backupTimeFormat).
const TimeLayout = "2006-01-02T15-04-05.000"

// PieceName is the name lumberjack gives the log at path when it rotates it
// at t (in t's location: lumberjack uses local time unless told otherwise).
func PieceName(path string, t time.Time) string {
	dir, file := filepath.Split(path)
	return filepath.Join(dir, strings.TrimSuffix(file, ".log")+"-"+t.Format(TimeLayout)+".log")
}

// Pieces returns the earlier pieces of the log at path, oldest first: the
// regular files beside it named as PieceName names them. The names sort by
// time (but for the hour a clock set back for daylight saving repeats;
// PieceBefore goes by the pieces' modification times for that).
// A directory that cannot be read has none.
func Pieces(path string) []string {
	dir, file := filepath.Split(path)
	prefix := strings.TrimSuffix(file, ".log") + "-"
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var pieces []string
	for _, e := range entries {
		rest, isPiece := strings.CutPrefix(e.Name(), prefix)
		stamp, isLog := strings.CutSuffix(rest, ".log")
		if !isPiece || !isLog || !e.Type().IsRegular() {
			continue
		}
		if _, err := time.Parse(TimeLayout, stamp); err == nil {
			pieces = append(pieces, filepath.Join(dir, e.Name()))
		}
	}
	slices.Sort(pieces)
	return pieces
}

// Between returns the log's pieces, oldest first, that came after the file
// before (all of them when before is nil, or is no piece: a new `stack up`
// deleted it) and before the file next, one opened at path (all of them
// when next is nil or is no piece; when next was rotated since it was
// opened, its piece and those after it are left out: next is read as it
// is, and the newer ones after it).
func Between(path string, before, next os.FileInfo) []string {
	pieces := Pieces(path)
	is := func(piece string, file os.FileInfo) bool {
		if file == nil {
			return false
		}
		st, err := os.Stat(piece)
		return err == nil && os.SameFile(st, file)
	}
	for i, piece := range pieces {
		if is(piece, before) {
			pieces = pieces[i+1:]
			break
		}
	}
	for i, piece := range pieces {
		if is(piece, next) {
			return pieces[:i]
		}
	}
	return pieces
}

// PieceBefore returns the piece that holds the lines written just before
// those of opened, a file opened at path (os.File.Stat's answer), or "" if
// there is none. That is the newest piece, unless opened has itself been
// rotated since it was opened (then it is a piece too, and the one before it
// is the answer). A nil opened (no file at path: lumberjack renames the log
// before it creates the new one) gets the newest piece.
//
// Newest by modification time (a piece's last write, just before its
// rotation), then by name: unlike the name, which is in local time, it does
// not go back with a clock set back for daylight saving, so in the hour that
// repeats the piece rotated last is still found (the last of Between,
// ordered by name, can be an hour older then).
func PieceBefore(path string, opened os.FileInfo) string {
	type piece struct {
		name  string
		mtime time.Time
	}
	var pieces []piece // by name, as Pieces gives them
	at := -1           // opened's place among them
	for _, name := range Pieces(path) {
		st, err := os.Stat(name)
		if err != nil {
			continue // gone since (`stack up` deletes them)
		}
		if opened != nil && os.SameFile(st, opened) {
			at = len(pieces)
		}
		pieces = append(pieces, piece{name, st.ModTime()})
	}
	if at >= 0 {
		// opened is a piece: only those written before it are candidates.
		cut := pieces[at]
		pieces = slices.DeleteFunc(pieces, func(p piece) bool {
			return p.mtime.After(cut.mtime) || p.mtime.Equal(cut.mtime) && p.name >= cut.name
		})
	}
	best := ""
	var bestAt time.Time
	for _, p := range pieces { // by name: a tie of times goes to the later name
		if best == "" || !p.mtime.Before(bestAt) {
			best, bestAt = p.name, p.mtime
		}
	}
	return best
}
