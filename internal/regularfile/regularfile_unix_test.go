//go:build unix

package regularfile

import (
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestIrregularNamesWhatAPathIs: each kind of file that is not a regular
// one is named; a regular file, a symlink to one and a missing path are "".
func TestIrregularNamesWhatAPathIs(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "settings.env")
	if err := os.WriteFile(regular, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(regular, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(dir, "s.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tests := []struct {
		name, path, want string
	}{
		{"a regular file", regular, ""},
		{"a symlink to a regular file", link, ""},
		{"a missing path", filepath.Join(dir, "missing"), ""},
		{"a directory", dir, "a directory"},
		{"a named pipe", fifo, "a named pipe"},
		{"a socket", socket, "a socket"},
		{"a device", os.DevNull, "a device"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Irregular(tt.path); got != tt.want {
				t.Errorf("Irregular(%s) = %q, want %q", tt.path, got, tt.want)
			}
		})
	}
}
