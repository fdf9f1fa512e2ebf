package rotatedlog

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// writeLogDir makes dir's files, each holding its own name.
func writeLogDir(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, name := range names {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(name+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPiecesAreTheLogsTimedNamesOldestFirst(t *testing.T) {
	dir := t.TempDir()
	writeLogDir(t, dir,
		"core-api-2026-12-07T06-16-51.886.log",
		"core-api-2026-12-07T05-59-59.999.log",
		"core-api.log",
		"core-api-old.log",                     // no time in its name
		"core-api-2026-12-07.log",              // a date only
		"core-api-2026-12-07T06-16-51.886.txt", // not a .log
		"auth-api-2026-12-07T06-00-00.000.log", // another log's
	)
	if err := os.Mkdir(filepath.Join(dir, "core-api-2026-12-07T04-00-00.000.log"), 0o700); err != nil {
		t.Fatal(err)
	}
	got := Pieces(filepath.Join(dir, "core-api.log"))
	want := []string{
		filepath.Join(dir, "core-api-2026-12-07T05-59-59.999.log"),
		filepath.Join(dir, "core-api-2026-12-07T06-16-51.886.log"),
	}
	if !slices.Equal(got, want) {
		t.Errorf("Pieces: got %q, want %q", got, want)
	}
	if got := Pieces(filepath.Join(dir, "missing", "core-api.log")); got != nil {
		t.Errorf("Pieces in a directory that is not there: got %q, want none", got)
	}
}

func TestPieceNameIsWhatPiecesFinds(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "psp-connector.log")
	name := PieceName(path, time.Date(2026, 12, 7, 9, 5, 3, 42e6, time.Local))
	if want := filepath.Join(dir, "psp-connector-2026-12-07T09-05-03.042.log"); name != want {
		t.Fatalf("PieceName: got %q, want %q", name, want)
	}
	writeLogDir(t, dir, filepath.Base(name))
	if got := Pieces(path); !slices.Equal(got, []string{name}) {
		t.Errorf("Pieces: got %q, want %q", got, []string{name})
	}
}

// TestPieceBeforeTheOpenedLog: the lines written just before those of an
// open log are in the newest piece, or, when the open log has been rotated
// since, in the piece before it.
func TestPieceBeforeTheOpenedLog(t *testing.T) {
	stamp := time.Date(2026, 12, 7, 9, 0, 0, 0, time.Local)
	tests := []struct {
		name string
		// rotationsBefore and rotationsAfter are how many times the log is
		// rotated before and after it is opened.
		rotationsBefore, rotationsAfter int
		// want is the index of the piece PieceBefore should name, in the
		// order they were made, or -1 for none.
		want int
	}{
		{"never rotated", 0, 0, -1},
		{"rotated once before the open", 1, 0, 0},
		{"rotated three times before the open", 3, 0, 2},
		{"rotated once, after the open", 0, 1, -1},
		{"rotated twice before and once after the open", 2, 1, 1},
		{"rotated once before and twice after the open", 1, 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "psp-connector.log")
			var pieces []string
			rotate := func() {
				t.Helper()
				stamp = stamp.Add(time.Second)
				piece := PieceName(path, stamp)
				if err := os.Rename(path, piece); err != nil {
					t.Fatal(err)
				}
				pieces = append(pieces, piece)
				writeLogDir(t, filepath.Dir(path), filepath.Base(path))
			}
			writeLogDir(t, filepath.Dir(path), filepath.Base(path))
			for range tt.rotationsBefore {
				rotate()
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			opened, err := f.Stat()
			if err != nil {
				t.Fatal(err)
			}
			for range tt.rotationsAfter {
				rotate()
			}
			want := ""
			if tt.want >= 0 {
				want = pieces[tt.want]
			}
			if got := PieceBefore(path, opened); got != want {
				t.Errorf("PieceBefore: got %q, want %q (pieces, oldest first: %q)", got, want, pieces)
			}
		})
	}
}

// TestPieceBeforeAcrossAClockSetBack: a piece's name is lumberjack's local
// time, so in the hour a clock set back for daylight saving repeats, a
// newer piece can be named before an older one (01:10 the second time
// round, after 01:50 the first). The piece that holds the lines written
// just before the opened log is the one written last (its modification
// time, which daylight saving does not move), not the one named last.
func TestPieceBeforeAcrossAClockSetBack(t *testing.T) {
	at := time.Date(2026, 10, 25, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		// pieces in the order they were made: the time in each name
		// (minutes past 01:00); their modification times follow that order.
		pieces []int
		// openedPiece is the index of the piece the opened log became
		// (rotated after it was opened), or -1: the log is still at path.
		openedPiece int
		want        int // index of the piece PieceBefore should name, -1 for none
	}{
		{"the log at path: the newest piece is named before the one before it", []int{50, 10}, -1, 1},
		{"the log at path: three pieces across the set-back", []int{40, 50, 5}, -1, 2},
		{"the opened log rotated since, into a piece named before the one before it", []int{50, 20}, 1, 0},
		{"the opened log rotated since, and a newer piece named between", []int{50, 10, 30}, 1, 0},
		{"in order: as before", []int{10, 20, 30}, -1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "psp-connector.log")
			var pieces []string
			var opened os.FileInfo
			for i, minute := range tt.pieces {
				piece := PieceName(path, time.Date(2026, 10, 25, 1, minute, 0, 0, time.Local))
				writeLogDir(t, dir, filepath.Base(piece))
				mtime := at.Add(time.Duration(i) * 20 * time.Minute)
				if err := os.Chtimes(piece, mtime, mtime); err != nil {
					t.Fatal(err)
				}
				pieces = append(pieces, piece)
				if i == tt.openedPiece {
					st, err := os.Stat(piece)
					if err != nil {
						t.Fatal(err)
					}
					opened = st
				}
			}
			if tt.openedPiece < 0 {
				writeLogDir(t, dir, filepath.Base(path))
				st, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				opened = st
			}
			want := ""
			if tt.want >= 0 {
				want = pieces[tt.want]
			}
			if got := PieceBefore(path, opened); got != want {
				t.Errorf("PieceBefore: got %q, want %q (pieces, oldest first: %q)", got, want, pieces)
			}
		})
	}
}
