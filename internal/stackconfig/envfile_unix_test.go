//go:build unix

package stackconfig

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestReadEnvFileRefusesWhatIsNotAFile: a settings file that is a symlink
// to nothing is no absent file (its overrides were meant), and one that is
// no regular file is refused at once: a named pipe with no writer blocked
// the launcher in open(2) for good, Ctrl-C included (it catches SIGINT).
func TestReadEnvFileRefusesWhatIsNotAFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.env")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	dangling := filepath.Join(dir, "dangling.env")
	if err := os.Symlink(filepath.Join(dir, "gone.env"), dangling); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, want string
	}{
		{"a named pipe", fifo, fifo + " is not a regular file (a named pipe)"},
		{"a directory", dir, dir + " is not a regular file (a directory)"},
		{"a symlink to nothing", dangling, dangling + " is a symlink to " + filepath.Join(dir, "gone.env") + ", which does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadEnvFile(tt.path, true)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
