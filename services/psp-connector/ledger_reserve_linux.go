package main

import (
	"errors"
	"os"
	"syscall"
)

// fallocKeepSize is FALLOC_FL_KEEP_SIZE: allocate without changing the
// file's size, so that readers and O_APPEND still see the file end where
// its last line ends.
const fallocKeepSize = 1

// allocateAhead allocates n bytes of f from off on without changing its
// size. A file system without fallocate answers errors.ErrUnsupported.
func allocateAhead(f *os.File, off, n int64) error {
	err := syscall.Fallocate(int(f.Fd()), fallocKeepSize, off, n)
	if errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) {
		return errors.ErrUnsupported
	}
	return err
}

// spaceOf answers f's size, and how many bytes of it are allocated on
// disk (with those allocated past its end), with one fstat.
func spaceOf(f *os.File) (size, allocated int64, err error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return 0, 0, err
	}
	return st.Size, st.Blocks * 512, nil
}

// noSpace reports whether err says the disk (or the user's quota) is full.
func noSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
