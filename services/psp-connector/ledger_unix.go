//go:build unix

package main

import (
	"os"
	"syscall"
)

// removed reports whether the file st describes has no name left.
func removed(st os.FileInfo) bool {
	s, ok := st.Sys().(*syscall.Stat_t)
	return ok && s.Nlink == 0
}
