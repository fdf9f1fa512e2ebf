package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/acme-payments/platform/internal/stacktest"
)

// refusingWriter fails every write as a full disk does, writing nothing.
type refusingWriter struct{}

func (refusingWriter) Write([]byte) (int, error) { return 0, syscall.ENOSPC }

// refusingOnce fails its first write as a full disk does, then takes the
// rest into buf.
type refusingOnce struct {
	buf     bytes.Buffer
	refused bool
}

func (w *refusingOnce) Write(b []byte) (int, error) {
	if !w.refused {
		w.refused = true
		return 0, syscall.ENOSPC
	}
	return w.buf.Write(b)
}

// TestCopyCappedKeepsTheFirstLinesAndCountsTheRest: capped-log keeps lines
// while the file stays within its cap, then drops and counts the rest, and
// a line the file refuses (a full disk) costs that line only.
func TestCopyCappedKeepsTheFirstLinesAndCountsTheRest(t *testing.T) {
	line := strings.Repeat("x", 99) + "\n" // 100 bytes
	tests := []struct {
		name      string
		lines     int
		size, max int64
		wantKept  int
		wantNotes []string
	}{
		{"under the cap", 5, 0, 2000, 5, nil},
		{"past the cap", 50, 0, 2000, 14, []string{"has reached 1400 bytes", "36 lines (3600 bytes) dropped past the cap of 2000 bytes, 0 more not written"}},
		{"a file already near its cap", 5, 1400, 2000, 0, []string{"5 lines (500 bytes) dropped"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dst bytes.Buffer
			src := strings.NewReader(strings.Repeat(line, tt.lines))
			if err := copyCapped(&dst, src, tt.size, tt.max, "the.err"); err != nil {
				t.Fatal(err)
			}
			got := dst.String()
			if kept := strings.Count(got, line); kept != tt.wantKept {
				t.Errorf("kept %d lines, want %d", kept, tt.wantKept)
			}
			if tt.size+int64(len(got)) > tt.max {
				t.Errorf("the file would hold %d bytes, over its cap of %d", tt.size+int64(len(got)), tt.max)
			}
			for _, note := range tt.wantNotes {
				if !strings.Contains(got, note) {
					t.Errorf("output %q does not say %q", got, note)
				}
			}
			if tt.wantNotes == nil && strings.Contains(got, "stack:") {
				t.Errorf("output %q has a note, want none under the cap", got)
			}
		})
	}

	t.Run("a full disk", func(t *testing.T) {
		if err := copyCapped(refusingWriter{}, strings.NewReader(strings.Repeat(line, 3)), 0, 2000, "the.err"); err != nil {
			t.Errorf("a file that refuses every line: got %v, want the input read to its end without error", err)
		}
		w := &refusingOnce{}
		if err := copyCapped(w, strings.NewReader(strings.Repeat(line, 3)), 0, 2000, "the.err"); err != nil {
			t.Fatal(err)
		}
		if kept := strings.Count(w.buf.String(), line); kept != 2 {
			t.Errorf("after one refused line: kept %d lines, want the 2 after it", kept)
		}
		if !strings.Contains(w.buf.String(), "1 more not written") {
			t.Errorf("output %q does not count the refused line", w.buf.String())
		}
	})
}

// TestProcessComposeAfterAFullDisk: a process logs a few lines, the disk (a
// real tmpfs, stacktest.SmallDisk) fills, it logs on, the space is freed,
// and it logs 30,000 lines more, under the stack's own log settings.
//
// D122: process-compose v1.64.1 wrote, for each line it failed to write,
// about 100 bytes (`zerolog: could not write event: …`) to its standard
// error, logs/process-compose.err, on the same disk, even once space was
// back. A stack with traffic took back the freed space within seconds that
// way, and Redis stayed down. process-compose.err must stay within its cap.
//
// D126: upstream's log writer, a bufio.Writer, keeps its first write error,
// so after one `no space left on device` the process's log got no line
// again. With nix/process-compose-logs-survive-a-full-disk.sh (which
// tools/build-process-compose and the flake apply) the log must go on: every
// line written once the space is back, after a line saying how many were
// lost, and those lost plus those kept of the lines written on the full disk
// must be all of them. A process-compose without the edit skips that part
// (fails under CI=true, whose process-compose is built with it, unless the
// flake's check says it could not rebuild it: STACK_TEST_PROCESS_COMPOSE_UNEDITED).
//
// The tmpfs leaves room for the launcher's copy of itself in bin/ (the test
// binary, over 13 MB under -race), which up's check after the build counts.
func TestProcessComposeAfterAFullDisk(t *testing.T) {
	pc := stacktest.ProcessCompose(t)
	edit := filepath.Join(stacktest.RepoRoot(t), "nix", "process-compose-logs-survive-a-full-disk.sh")
	editOut, editErr := exec.Command("bash", edit, "--check", pc).CombinedOutput()
	disk := stacktest.SmallDisk(t, 64<<20)
	state := filepath.Join(disk, "st")
	marks := t.TempDir()
	script := filepath.Join(marks, "chatter.sh")
	// A line; once the disk is full (the mark file full), 3,000 lines (about
	// 150 kB), more than the page of the log's end that tmpfs has already
	// given, 4 kB here and at most 64 kB on kernels with larger pages; once
	// the space is back (freed), 30,000 lines at once.
	if err := os.WriteFile(script, []byte(`#!/bin/sh
m=$1
echo "the first line"
: > "$m/started"
i=0
while [ ! -e "$m/full" ] && [ $i -lt 3000 ]; do sleep 0.05; i=$((i+1)); done
i=0
while [ $i -lt 3000 ]; do echo "a line written on the full disk, number $i"; i=$((i+1)); done
: > "$m/written-on-full"
i=0
while [ ! -e "$m/freed" ] && [ $i -lt 3000 ]; do sleep 0.05; i=$((i+1)); done
i=0
while [ $i -lt 30000 ]; do echo "a line once the space is back, number $i"; i=$((i+1)); done
: > "$m/done"
exec sleep 600
`), 0o755); err != nil {
		t.Fatal(err)
	}
	root := fakeCheckout(t)
	compose := fmt.Sprintf(`version: "0.5"
processes:
  chatter:
    command: %q
    log_location: %q
    log_configuration:
      fields_order: ["message"]
      disable_json: true
      no_color: true
      no_metadata: true
      flush_each_line: true
      rotation:
        max_size_mb: 256
        max_backups: 4
`, "/bin/sh "+script+" "+marks, filepath.Join(state, "logs", "chatter.log"))
	upDetachedWith(t, root, compose, fakeTools(t, state, pc))
	waitForFile := func(name string, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			if _, err := os.Stat(filepath.Join(marks, name)); err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the chatter did not reach %q within %s", name, within)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitForFile("started", 30*time.Second)
	free := stacktest.FillDisk(t, disk)
	if err := os.WriteFile(filepath.Join(marks, "full"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	waitForFile("written-on-full", 30*time.Second)
	time.Sleep(500 * time.Millisecond) // process-compose writes its lines a moment after reading them
	free()
	var fs syscall.Statfs_t
	if err := syscall.Statfs(disk, &fs); err != nil {
		t.Fatal(err)
	}
	freed := int64(fs.Bavail) * fs.Bsize
	if err := os.WriteFile(filepath.Join(marks, "freed"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	waitForFile("done", 60*time.Second)

	// process-compose writes the lines it read a little later: wait until
	// process-compose.err stops growing (or is past its cap already).
	errPath := filepath.Join(state, "logs", "process-compose.err")
	var size int64 = -1
	for range 100 {
		time.Sleep(200 * time.Millisecond)
		st, err := os.Stat(errPath)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() == size || st.Size() > processComposeErrMax {
			size = st.Size()
			break
		}
		size = st.Size()
	}
	if err := syscall.Statfs(disk, &fs); err != nil {
		t.Fatal(err)
	}
	left := int64(fs.Bavail) * fs.Bsize
	b, err := os.ReadFile(errPath)
	if err != nil {
		t.Fatal(err)
	}
	var logSize int64
	if st, err := os.Stat(filepath.Join(state, "logs", "chatter.log")); err == nil {
		logSize = st.Size()
	}
	t.Logf("freed %d bytes; %d still free after 30,000 lines; chatter.log %d bytes; process-compose.err %d bytes, %d lines saying a log write failed",
		freed, left, logSize, size, bytes.Count(b, []byte("could not write event")))
	if !bytes.Contains(b, []byte("could not write event")) {
		// Should a process-compose log on after a full disk, the disk
		// stays free anyway: say so rather than pass on nothing tried.
		t.Logf("process-compose.err says no log write failed:\n%s", tail(errPath, 5))
	}
	if size > processComposeErrMax {
		t.Errorf("process-compose.err holds %d bytes, over its cap of %d: on a disk freed after being full it takes the space back (D122)", size, processComposeErrMax)
	}

	if editErr != nil && os.Getenv("STACK_TEST_PROCESS_COMPOSE_UNEDITED") == "1" {
		t.Skipf("%s does not carry the edit that keeps its logs going after a full disk, and the flake's check says it could not rebuild it (STACK_TEST_PROCESS_COMPOSE_UNEDITED=1: not a buildGoModule package, the offline stand-in's); skipping D126's half", pc)
	}
	if editErr != nil {
		stacktest.Missing(t, "%s does not carry the edit that keeps its logs going after a full disk (%v: %s), so the rest of this test, D126, cannot pass: build it with tools/build-process-compose", pc, editErr, bytes.TrimSpace(editOut))
	}
	chatterLog, err := os.ReadFile(filepath.Join(state, "logs", "chatter.log"))
	if err != nil {
		t.Fatal(err)
	}
	checkLogAfterAFullDisk(t, string(chatterLog), 3000, 30000)
}

// checkLogAfterAFullDisk checks the chatter's log (TestProcessComposeAfterAFullDisk,
// D126): all the lines written once the space was back, in order, after a
// notice of the lines lost, which with the lines kept of those written on the
// full disk make them all.
func checkLogAfterAFullDisk(t *testing.T, log string, onFull, afterFreed int) {
	t.Helper()
	lines := strings.Split(log, "\n")
	keptOnFull, lost, notices, next := 0, 0, 0, 0
	for _, line := range lines {
		switch {
		case strings.HasPrefix(line, "a line written on the full disk, number "):
			if next > 0 {
				t.Errorf("a line of the full disk after the space was back: %q", line)
			}
			keptOnFull++
		case strings.HasPrefix(line, "process-compose: lines of this log lost here: "):
			notices++
			var n int
			if _, err := fmt.Sscanf(strings.TrimPrefix(line, "process-compose: lines of this log lost here: "), "%d", &n); err != nil {
				t.Errorf("notice %q: %v", line, err)
			}
			lost = max(lost, n) // a write cut short repeats the notice, counting on
			if !strings.Contains(line, "no space left on device") {
				t.Errorf("notice %q does not say why", line)
			}
		case strings.HasPrefix(line, "a line once the space is back, number "):
			if want := fmt.Sprintf("a line once the space is back, number %d", next); line != want {
				t.Fatalf("line %d after the space was back: got %q, want %q", next, line, want)
			}
			next++
		}
	}
	t.Logf("chatter.log: %d of the %d lines written on the full disk kept, %d lost by %d notice(s); %d of %d lines written once the space was back",
		keptOnFull, onFull, lost, notices, next, afterFreed)
	if next != afterFreed {
		t.Errorf("the log holds %d of the %d lines written once the space was back: it stopped at the full disk (D126)", next, afterFreed)
	}
	if notices == 0 {
		t.Errorf("no line in the log says that lines were lost to the full disk")
	}
	if keptOnFull+lost != onFull {
		t.Errorf("of the %d lines written on the full disk, %d kept and %d counted lost: %d unaccounted for", onFull, keptOnFull, lost, onFull-keptOnFull-lost)
	}
}
