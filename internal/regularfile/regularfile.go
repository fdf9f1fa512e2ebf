// Package regularfile refuses, before they are opened, the paths in the
// settings that must name a regular file but name something else: open(2)
// of a named pipe waits for a writer, for good, so a service or the
// launcher would hang at start, deaf to SIGTERM; a directory or a device
// is no file of settings, users or ledger lines either.
package regularfile

import (
	"io/fs"
	"os"
)

// Irregular says what path is when it exists and is not a regular file,
// following symlinks: "a directory", "a named pipe", "a socket", "a device",
// or its mode for anything else. It is "" for a regular file, and for a path
// that cannot be looked at (missing, say): opening it tells why.
func Irregular(path string) string {
	st, err := os.Stat(path)
	if err != nil || st.Mode().IsRegular() {
		return ""
	}
	return Kind(st.Mode())
}

// Kind names what a file of mode m that is not a regular one is.
func Kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "mode " + m.String()
}
