//go:build !linux

package main

import (
	"errors"
	"os"
)

// allocateAhead cannot allocate without changing the size here: the
// ledger copy goes on without room kept ahead (ledgerFile.reserve).
func allocateAhead(*os.File, int64, int64) error { return errors.ErrUnsupported }

// spaceOf is not asked for where allocateAhead cannot allocate.
func spaceOf(*os.File) (size, allocated int64, err error) { return 0, 0, errors.ErrUnsupported }

// noSpace is not asked for where allocateAhead cannot allocate.
func noSpace(error) bool { return false }
