package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
)

// processComposeErrMax is how much of process-compose's standard error
// `up --detach` keeps in logs/process-compose.err. process-compose writes
// there what it cannot write elsewhere: on a full disk, one line of about
// 100 bytes (`zerolog: could not write event: …`) for every log line it
// loses, for as long as the stack has traffic, which took back freed space
// within seconds and kept Redis down (RELIABILITY.md D122). Its other
// lines are a few at start and stop.
const processComposeErrMax = 256 << 10

// cappedLogNoteRoom is the room kept below the cap for the relay's own two
// lines: where it stopped keeping lines, and how many it dropped.
const cappedLogNoteRoom = 512

// cappedLog is the internal command `stack capped-log --max BYTES FILE`,
// which `up --detach` gives process-compose's standard error to (a pipe on
// its standard input): it appends the lines it reads to FILE until FILE
// would hold more than BYTES, then reads on and drops the rest, counting
// them, until the pipe's end (process-compose has exited). It never stops
// reading: a process-compose whose stderr pipe is full would block in its
// logging, and one whose reader is gone would be killed by SIGPIPE at its
// next line. So it ignores SIGINT, SIGTERM and SIGHUP (process-compose's
// own end closes the pipe), and a write that fails (a full disk) drops
// that line only: the next is tried again.
func cappedLog(args []string, stdin io.Reader) error {
	signal.Ignore(os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	if len(args) != 3 || args[0] != "--max" {
		return errors.New("usage: stack capped-log --max BYTES FILE")
	}
	max, err := strconv.ParseInt(args[1], 10, 64)
	if err != nil || max <= cappedLogNoteRoom {
		return fmt.Errorf("capped-log: --max %q: want a number of bytes above %d", args[1], cappedLogNoteRoom)
	}
	f, err := os.OpenFile(args[2], os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		// Drained all the same: process-compose must not block on it.
		_, _ = io.Copy(io.Discard, stdin)
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		_, _ = io.Copy(io.Discard, stdin)
		return err
	}
	return copyCapped(f, stdin, st.Size(), max, args[2])
}

// copyCapped appends src's lines to dst, which holds size bytes already,
// while dst stays within max bytes (less cappedLogNoteRoom); past that it
// says so once and drops each line, and at src's end says how many it
// dropped (name is the file's name in those notes). A line dst refuses (a
// full disk) is dropped and counted; the next is written as usual. It reads
// src to its end whatever happens, and returns only src's own error.
func copyCapped(dst io.Writer, src io.Reader, size, max int64, name string) error {
	r := bufio.NewReaderSize(src, 64<<10)
	var droppedLines, droppedBytes, failedLines int64
	full := false
	write := func(b []byte) bool {
		n, err := dst.Write(b)
		size += int64(n)
		return err == nil
	}
	for {
		line, err := r.ReadSlice('\n')
		if len(line) > 0 {
			switch {
			case !full && size+int64(len(line)) <= max-cappedLogNoteRoom:
				if !write(line) {
					failedLines++
				}
			default:
				if !full {
					full = true
					write(fmt.Appendf(nil, "stack: %s has reached %d bytes; the lines after this one are dropped and counted\n", name, size))
				}
				droppedLines++
				droppedBytes += int64(len(line))
			}
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			err = nil
		}
		if droppedLines > 0 || failedLines > 0 {
			write(fmt.Appendf(nil, "stack: %d lines (%d bytes) dropped past the cap of %d bytes, %d more not written (the file refused them)\n",
				droppedLines, droppedBytes, max, failedLines))
		}
		return err
	}
}
