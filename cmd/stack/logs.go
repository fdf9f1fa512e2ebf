package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/acme-payments/platform/internal/rotatedlog"
)

// logs prints one process's log (or every process's) since the last up:
// process-compose keeps one file per process in the state dir's logs/ and
// appends to it across restarts, and past its max_size_mb renames it to a
// piece of its own (rotatedlog.Pieces), printed first. With -f it keeps
// following until Ctrl-C, starting over when a new up deletes the file.
func (l *launcher) logs(ctx context.Context, args []string) error {
	follow := false
	var names []string
	for _, a := range args {
		switch a {
		case "-f", "--follow", "-follow":
			follow = true
		case "-h", "--help", "-help":
			l.usage(l.stdout, nil)
			return nil
		default:
			if strings.HasPrefix(a, "-") {
				// Worded as the flag package words it for the other commands.
				name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
				if hasValue && (name == "f" || name == "follow") {
					return badFlag("logs", fmt.Errorf("%s takes no value, got %q", strings.SplitN(a, "=", 2)[0], a))
				}
				return badFlag("logs", fmt.Errorf("flag provided but not defined: -%s", name))
			}
			if !slices.Contains(processNames, a) {
				return &exitError{code: 2, err: fmt.Errorf("logs: no process %q; the processes are %s", a, strings.Join(processNames, ", "))}
			}
			names = append(names, a)
		}
	}
	if len(names) > 1 {
		return &exitError{code: 2, err: errors.New("logs: name one process, or none for all")}
	}
	if err := l.checkStateDir(l.cfg.LogDir()); err != nil {
		return err
	}
	// Every process's log: each line after its process's name, as in
	// process-compose's own output (not tail's "==> name <==" headers,
	// which psp-connector's contract lines look like).
	prefixed := len(names) == 0
	if prefixed {
		names = processNames
	}
	prefixOf := func(name string) string {
		if prefixed {
			return fmt.Sprintf("%-14s| ", name)
		}
		return ""
	}

	if !follow {
		found := 0
		for _, name := range names {
			copied, err := copyWholeLog(l.stdout, l.cfg.LogFile(name), prefixOf(name))
			if err != nil {
				return err
			}
			if copied {
				found++
			}
		}
		if found == 0 {
			return fmt.Errorf("no log for %s in %s (has the stack been started?)", strings.Join(names, ", "), l.rel(l.cfg.LogDir()))
		}
		return nil
	}
	if _, err := os.Stat(l.cfg.LogDir()); err != nil {
		fmt.Fprintf(l.stderr, "stack: no logs in %s yet; waiting for them (Ctrl-C stops)\n", l.rel(l.cfg.LogDir()))
	}

	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, name := range names {
		prefix := prefixOf(name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			followLog(ctx, l.cfg.LogFile(name), func(line string) {
				mu.Lock()
				defer mu.Unlock()
				fmt.Fprintf(l.stdout, "%s%s\n", prefix, line)
			})
		}()
	}
	wg.Wait()
	return nil
}

// copyWholeLog writes the log at path to w, its rotated pieces first, and
// reports whether there was any. It opens the log before it lists the
// pieces, so that a rotation in between leaves none out: the file it opened
// is a piece by then, printed last, and what was written after it (the new
// log, and any piece newer than it) is left for the next look.
func copyWholeLog(w io.Writer, path, prefix string) (bool, error) {
	cur, err := os.Open(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	var opened os.FileInfo
	if cur != nil {
		defer cur.Close()
		if opened, err = cur.Stat(); err != nil {
			return false, err
		}
	}
	afterLogOpened()
	copied := false
	for _, piece := range rotatedlog.Between(path, nil, opened) {
		if err := copyLog(w, piece, prefix); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return copied, err
		}
		copied = true
	}
	if cur == nil {
		return copied, nil
	}
	return true, copyLines(w, cur, prefix)
}

// afterLogOpened runs between copyWholeLog's open of the log and its list
// of the pieces: a test rotates the log there.
var afterLogOpened = func() {}

// copyLog writes the file at path to w (copyLines).
func copyLog(w io.Writer, path, prefix string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return copyLines(w, f, prefix)
}

// copyLines writes what is left of f to w, each line after prefix, leaving
// out empty lines (see isBlank).
func copyLines(w io.Writer, f *os.File, prefix string) error {
	rd := bufio.NewReader(f)
	for {
		line, err := rd.ReadString('\n')
		if line = strings.TrimSuffix(line, "\n"); !isBlank(line) {
			if _, werr := io.WriteString(w, prefix+line+"\n"); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// followLog emits every complete line of path, then each new one, until ctx
// ends, the log's rotated pieces (rotatedlog.Pieces) first; it waits for a
// missing file, rereads a truncated one from the start, and moves to a new
// file at path once it has read the old one to its end: after a rotation,
// by way of every piece rotated since, however many rotations came between
// two looks (a follower that went straight to the new file left out the
// pieces in between), or a new one after a `stack up`, which deletes the
// old logs.
func followLog(ctx context.Context, path string, emit func(string)) {
	var f *os.File
	var opened os.FileInfo
	var before os.FileInfo // the file read up to a rotation or a new up
	first := true
	var rd *bufio.Reader
	var offset int64
	var partial strings.Builder
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	readLines := func() {
		for {
			chunk, err := rd.ReadString('\n')
			offset += int64(len(chunk))
			if err != nil {
				partial.WriteString(chunk)
				return
			}
			partial.WriteString(strings.TrimSuffix(chunk, "\n"))
			if !isBlank(partial.String()) {
				emit(partial.String())
			}
			partial.Reset()
		}
	}
	for {
		if f == nil {
			if file, err := os.Open(path); err == nil {
				if opened, err = file.Stat(); err != nil {
					file.Close()
				} else {
					if first || before != nil {
						emitPiecesBetween(path, before, opened, emit)
					}
					f, rd, offset, first, before = file, bufio.NewReader(file), 0, false, nil
					partial.Reset()
				}
			}
		}
		if f != nil {
			st, err := os.Stat(path)
			truncated := err == nil && os.SameFile(st, opened) && st.Size() < offset
			replaced := err == nil && !os.SameFile(st, opened)
			if !truncated {
				readLines() // a replaced file's last lines too
			}
			if truncated || replaced {
				if replaced {
					before = opened
				}
				f.Close()
				f = nil
				continue
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// emitPiecesBetween emits the lines of rotatedlog.Between(path, before, next).
func emitPiecesBetween(path string, before, next os.FileInfo, emit func(string)) {
	for _, piece := range rotatedlog.Between(path, before, next) {
		_ = copyLog(emitWriter(emit), piece, "") // gone meanwhile: nothing to print
	}
}

// emitWriter passes each line copyLog writes to emit.
type emitWriter func(string)

func (e emitWriter) Write(b []byte) (int, error) {
	e(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

// isBlank reports an empty log line. No process of the stack logs one:
// process-compose writes two into a process's log when the process exits
// (seen around every restart with v1.64.1), which only break the log up.
func isBlank(line string) bool { return strings.TrimRight(line, "\r") == "" }
