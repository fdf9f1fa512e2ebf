//go:build unix

package users

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestLoadRefusesWhatIsNotAFile: a USERS_FILE that is no regular file is
// refused at once, naming it. A named pipe with no writer blocked Load in
// open(2) for good, where SIGTERM could not end it (auth-api catches it).
func TestLoadRefusesWhatIsNotAFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "users.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	tests := []struct {
		name, path, want string
	}{
		{"a named pipe", fifo, "USERS_FILE " + fifo + " is not a regular file"},
		{"a directory", dir, "USERS_FILE " + dir + " is not a regular file"},
		{"a device", os.DevNull, "USERS_FILE " + os.DevNull + " is not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
