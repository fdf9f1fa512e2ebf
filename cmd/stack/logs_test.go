package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acme-payments/platform/internal/rotatedlog"
	"github.com/acme-payments/platform/internal/stackconfig"
	"github.com/acme-payments/platform/internal/stacktest"
)

// TestLogsPrintsRotatedPiecesFirst: past max_size_mb process-compose
// renames a process's log to <name>-<time>.log and starts a new one, so
// `stack logs` prints those pieces, oldest first, before the file itself,
// and with -f too. Files that only look like pieces are left out.
func TestLogsPrintsRotatedPiecesFirst(t *testing.T) {
	t.Chdir(fakeCheckout(t))
	state := shortStateDir(t)
	environ := []string{"STACK_STATE_DIR=" + state}
	logDir := filepath.Join(state, "logs")
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"core-api-2026-12-07T06-16-51.886.log": "second piece\n",
		"core-api-2026-12-07T05-59-59.999.log": "first piece\n",
		"core-api.log":                         "current\n",
		"core-api-old.log":                     "not a piece: no time in its name\n",
		"core-api-2026-12-07.log":              "not a piece: a date only\n",
		"auth-api-2026-12-07T06-00-00.000.log": "auth-api's piece\n",
		"auth-api.log":                         "auth-api's current\n",
	} {
		if err := os.WriteFile(filepath.Join(logDir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(logDir, "core-api-2026-12-07T04-00-00.000.log"), 0o700); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"one process", []string{"logs", "core-api"}, "first piece\nsecond piece\ncurrent\n"},
		{"every process", []string{"logs"}, "core-api      | first piece\ncore-api      | second piece\ncore-api      | current\n" +
			"auth-api      | auth-api's piece\nauth-api      | auth-api's current\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if err := run(context.Background(), append([]string{"stack"}, tt.args...), environ, nil, &stdout, &stderr); err != nil {
				t.Fatalf("%v\n%s", err, stderr.String())
			}
			if stdout.String() != tt.want {
				t.Errorf("stack %s:\ngot  %q\nwant %q", strings.Join(tt.args, " "), stdout.String(), tt.want)
			}
		})
	}

	t.Run("following", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		// A file, not a buffer: logs -f writes it while the test reads it.
		out, err := os.Create(filepath.Join(t.TempDir(), "stdout"))
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, []string{"stack", "logs", "-f", "core-api"}, environ, nil, out, &bytes.Buffer{})
		}()
		want := "first piece\nsecond piece\ncurrent\n"
		printed := func() string { b, _ := os.ReadFile(out.Name()); return string(b) }
		deadline := time.Now().Add(5 * time.Second)
		for printed() != want && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := printed(); got != want {
			t.Errorf("stack logs -f core-api: got %q, want %q", got, want)
		}
	})
}

// TestLogsReadsALogRotatedWhileItIsPrinted: a rotation between the look at
// the pieces and the open of the log would leave the log's lines out of
// `stack logs` (read neither as a piece nor as the log, whose new file they
// are not in). The log is opened first: rotated after that, it is printed
// once, after the older pieces, and the new file is left for the next look.
func TestLogsReadsALogRotatedWhileItIsPrinted(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "core-api.log")
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("core-api-2026-12-07T06-00-00.000.log", "first piece\n")
	write("core-api.log", "current\n")
	afterLogOpened = func() { // process-compose rotates the log, and writes on
		if err := os.Rename(path, filepath.Join(dir, "core-api-2026-12-07T07-00-00.000.log")); err != nil {
			t.Error(err)
		}
		write("core-api.log", "after the look\n")
	}
	t.Cleanup(func() { afterLogOpened = func() {} })
	var b bytes.Buffer
	copied, err := copyWholeLog(&b, path, "")
	if err != nil || !copied {
		t.Fatalf("copyWholeLog: %v, %v", copied, err)
	}
	if want := "first piece\ncurrent\n"; b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

// TestProcessComposeRotatesTheLogIntoPiecesLogsReads runs the real
// process-compose with process-compose.yaml's own log_configuration, its
// max_size_mb lowered to 1, on a process that prints 1.8 MB: the log is
// rotated into pieces rotatedlog.Pieces finds, and together they hold every
// line once, in order. It also checks that the log is appended to, not
// truncated, when the process starts again (the reason for the rotation
// block: process-compose truncates a log without it, and a stop and start
// through its API or TUI lost the process's earlier lines).
func TestProcessComposeRotatesTheLogIntoPiecesLogsReads(t *testing.T) {
	bin := stacktest.ProcessCompose(t)
	logConfig := composeLogConfiguration(t)
	const lowered = "max_size_mb: 1"
	if !strings.Contains(logConfig, "max_size_mb: ") {
		t.Fatalf("process-compose.yaml's log_configuration has no rotation.max_size_mb:\n%s", logConfig)
	}
	logConfig = replaceLineWith(logConfig, "max_size_mb: ", lowered)

	dir := t.TempDir()
	logPath := filepath.Join(dir, "logs", "core-api.log")
	const lines = 40000 // 2.4 MB: two pieces of 1 MB and the rest
	compose := fmt.Sprintf(`version: "0.5"
processes:
  core-api:
    command: "seq -f 'line %%06.0f of a log long enough to be rotated twice at 1 MB' 1 %d"
    availability:
      restart: "no"
    log_location: %q
    log_configuration:
%s`, lines, logPath, logConfig)
	upOnce := func() {
		t.Helper()
		composeUpOnce(t, bin, dir, compose, 60*time.Second)
	}
	readAll := func() (pieces []string, text string) {
		t.Helper()
		var b bytes.Buffer
		pieces = rotatedlog.Pieces(logPath)
		for _, p := range append(pieces, logPath) {
			if err := copyLog(&b, p, ""); err != nil {
				t.Fatal(err)
			}
		}
		return pieces, b.String()
	}
	wantLines := func(runs int) string {
		var b strings.Builder
		for range runs {
			for i := 1; i <= lines; i++ {
				fmt.Fprintf(&b, "line %06d of a log long enough to be rotated twice at 1 MB\n", i)
			}
		}
		return b.String()
	}

	upOnce()
	pieces, got := readAll()
	if len(pieces) != 2 {
		t.Errorf("after %d lines of %d bytes with max_size_mb 1: %d pieces %v, want 2", lines, len("line 000001 of a log long enough to be rotated twice at 1 MB\n"), len(pieces), pieces)
	}
	if got != wantLines(1) {
		t.Fatalf("the pieces and the log hold %d lines, want the %d printed once each, in order", strings.Count(got, "\n"), lines)
	}

	// The process started again by process-compose (as after a stop and
	// start through its API): appended to.
	upOnce()
	if _, got = readAll(); got != wantLines(2) {
		t.Fatalf("after the process's second start: %d lines, want both runs' %d (the log appended to, not truncated)", strings.Count(got, "\n"), 2*lines)
	}
}

// TestProcessComposeKeepsABoundedNumberOfLogPieces: a stack left up for days
// under load must not fill the disk with its logs. HAProxy's access log takes
// about 425 bytes a transaction and psp-connector's about 120 (measured on
// 150,000, RELIABILITY.md D99): at 4,000 tx/s that is 8 GB an hour, and
// without rotation.max_backups process-compose kept every 256 MB piece.
// With the stack's own &log block (max_size_mb lowered to 1) a process
// prints max_backups+4 MB: at most max_backups pieces are left, and those
// with the log hold the last lines printed, whole and in order.
func TestProcessComposeKeepsABoundedNumberOfLogPieces(t *testing.T) {
	bin := stacktest.ProcessCompose(t)
	logConfig := composeLogConfiguration(t)
	keep := 0
	for _, line := range strings.Split(logConfig, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "max_backups: "); ok {
			if _, err := fmt.Sscan(v, &keep); err != nil || keep < 1 {
				t.Fatalf("process-compose.yaml's rotation.max_backups is %q, want a number of pieces of at least 1 (0 keeps every piece)", v)
			}
		}
	}
	logConfig = replaceLineWith(logConfig, "max_size_mb: ", "max_size_mb: 1")

	dir := t.TempDir()
	logPath := filepath.Join(dir, "logs", "haproxy.log")
	const line = "line %08.0f of an access log that grows for as long as the stack is up\n"
	lineLen := len(fmt.Sprintf(line, 1.0))
	printed := ((max(keep, 8) + 4) << 20) / lineLen
	// The sleep lets lumberjack's cleanup, which runs in the background after
	// a rotation, finish before process-compose exits.
	compose := fmt.Sprintf(`version: "0.5"
processes:
  haproxy:
    command: "seq -f '%s' 1 %d; sleep 1"
    availability:
      restart: "no"
    log_location: %q
    log_configuration:
%s`, strings.TrimSuffix(line, "\n"), printed, logPath, logConfig)
	composeUpOnce(t, bin, dir, compose, 90*time.Second)

	pieces := rotatedlog.Pieces(logPath)
	var b bytes.Buffer
	for _, p := range append(pieces, logPath) {
		if err := copyLog(&b, p, ""); err != nil {
			t.Fatal(err)
		}
	}
	var total int64
	for _, p := range append(pieces, logPath) {
		if st, err := os.Stat(p); err == nil {
			total += st.Size()
		}
	}
	if keep == 0 {
		t.Fatalf("process-compose.yaml's rotation has no max_backups: after %.1f MB of log at max_size_mb 1, all %d pieces kept (%d bytes on disk); the logs grow without bound", float64(printed*lineLen)/(1<<20), len(pieces), total)
	}
	if len(pieces) > keep {
		t.Errorf("after %.1f MB of log at max_size_mb 1: %d pieces kept, want at most max_backups %d", float64(printed*lineLen)/(1<<20), len(pieces), keep)
	}
	if limit := int64(keep+1) << 20; total > limit {
		t.Errorf("the log and its pieces take %d bytes, want at most (max_backups+1) x max_size_mb = %d", total, limit)
	}
	got := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(got) < keep<<20/lineLen {
		t.Errorf("the pieces and the log hold %d lines, want at least the last %d MB's %d", len(got), keep, keep<<20/lineLen)
	}
	first := printed - len(got) + 1
	for i, l := range got {
		if want := fmt.Sprintf(strings.TrimSuffix(line, "\n"), float64(first+i)); l != want {
			t.Fatalf("line %d of what is kept: got %q, want %q (the last %d lines printed, in order)", i+1, l, want, len(got))
		}
	}
}

// composeUpOnce writes compose to dir/pc.yaml and runs the real
// process-compose (bin) on it in dir until every process has exited,
// without its API server or TUI, failing the test if it fails or takes
// longer than timeout.
func composeUpOnce(t *testing.T, bin, dir, compose string, timeout time.Duration) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "pc.yaml"), []byte(compose), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "up", "--tui=false", "--no-server", "--disable-dotenv",
		"--config", filepath.Join(dir, "pc.yaml"), "--log-file", filepath.Join(dir, "pc.log"))
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("process-compose up: %v\n%s", err, out)
	}
}

// composeLogConfiguration returns the body of process-compose.yaml's
// `log_configuration: &log` block, which every process shares, indented
// for a process's log_configuration key.
func composeLogConfiguration(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(t), stackconfig.ComposeFileName))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "log_configuration: &log\n")
	if !ok {
		t.Fatalf("%s has no `log_configuration: &log` block", stackconfig.ComposeFileName)
	}
	var block []string
	indent := -1
	for _, line := range strings.Split(after, "\n") {
		n := len(line) - len(strings.TrimLeft(line, " "))
		if indent < 0 {
			indent = n
		}
		if strings.TrimSpace(line) == "" || n < indent {
			break
		}
		block = append(block, "      "+line[indent:])
	}
	return strings.Join(block, "\n") + "\n"
}

// replaceLineWith replaces the text of the line of block holding key
// (keeping its indentation) with line.
func replaceLineWith(block, key, line string) string {
	lines := strings.Split(block, "\n")
	for i, l := range lines {
		if strings.Contains(l, key) {
			lines[i] = l[:len(l)-len(strings.TrimLeft(l, " "))] + line
		}
	}
	return strings.Join(lines, "\n")
}

// TestFollowLogPrintsThePiecesOfSeveralRotationsBetweenTwoLooks: a follower
// looks at the log every 100 ms; process-compose may rotate it more than
// once in between (at max_size_mb 1 it did, 6 of 28 pieces skipped, 62,910
// of 300,000 lines). The follower reads the file it had to its end, then
// every piece rotated since, then the new file.
func TestFollowLogPrintsThePiecesOfSeveralRotationsBetweenTwoLooks(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "core-api.log")
	if err := os.WriteFile(path, []byte("line 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	lines := followInBackground(t, path, 64)
	want := func(line string) {
		t.Helper()
		select {
		case got := <-lines:
			if got != line {
				t.Fatalf("got %q, want %q", got, line)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no line within 5 s, want %q (a piece left out)", line)
		}
	}
	want("line 1")
	// As lumberjack rotates: append, rename to a piece, start a new file.
	n := 1
	stamp := time.Date(2026, 12, 7, 7, 0, 0, 0, time.Local)
	rotate := func() {
		t.Helper()
		n++
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = fmt.Fprintf(f, "line %d\n", n)
		if err := errors.Join(err, f.Close()); err != nil {
			t.Fatal(err)
		}
		stamp = stamp.Add(time.Millisecond)
		if err := os.Rename(path, rotatedlog.PieceName(path, stamp)); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		for range 3 { // three rotations well within one look's 100 ms
			rotate()
		}
		for i := n - 2; i <= n; i++ {
			want(fmt.Sprintf("line %d", i))
		}
	}
	// And what follows in the newest file.
	if err := os.WriteFile(path, []byte("line 11\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	want("line 11")
	select {
	case l := <-lines:
		t.Fatalf("got %q more (printed twice?)", l)
	case <-time.After(300 * time.Millisecond):
	}
}

// TestUpStartsAnEmptyLogForEveryProcess: with log rotation, process-compose
// (lumberjack) makes a process's log at the process's first line, not at
// its start as it did before D81, so HAProxy, which prints nothing until
// its first request, had no log after `stack up --wait`, and `stack logs
// haproxy` failed with "has the stack been started?". `up` starts an empty
// one for each process, after deleting the last run's logs and pieces.
func TestUpStartsAnEmptyLogForEveryProcess(t *testing.T) {
	t.Chdir(fakeCheckout(t))
	state := shortStateDir(t)
	logDir := filepath.Join(state, "logs")
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"core-api.log", "core-api-2026-12-07T06-16-51.886.log", "process-compose.log"} {
		if err := os.WriteFile(filepath.Join(logDir, name), []byte("the last run's\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l := &launcher{cfg: stackconfig.Config{StateDir: state}}
	if err := l.clearRunFiles(); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(logDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if info.Size() != 0 || info.Mode() != 0o600 {
			t.Errorf("%s: %d bytes, mode %v; want an empty file of mode 0600", e.Name(), info.Size(), info.Mode())
		}
	}
	var want []string
	for _, p := range processNames {
		want = append(want, p+".log")
	}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("logs/ after up's clearing: %v, want %v", names, want)
	}
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"stack", "logs", "haproxy"}, []string{"STACK_STATE_DIR=" + state}, nil, &stdout, &stderr); err != nil || stdout.Len() != 0 {
		t.Errorf("stack logs haproxy before haproxy printed anything: %v, %q; want nothing printed and no error", err, stdout.String())
	}
}
