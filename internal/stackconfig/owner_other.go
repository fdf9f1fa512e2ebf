//go:build !unix

package stackconfig

import "os"

// checkOwner has no owner to compare here.
func checkOwner(string, os.FileInfo) error { return nil }

// checkParent has no owner or mode bits to judge here.
func checkParent(string, os.FileInfo) error { return nil }

// lookupDirs has no directory here that checkParent would judge.
func lookupDirs(string) ([]string, error) { return nil, nil }

// readableByOthers has no owner or mode bits to judge here.
func readableByOthers(os.FileInfo) string { return "" }

// checkChangers has no owner or mode bits to judge here.
func checkChangers(string, os.FileInfo) error { return nil }
