package main

import (
	"os"
	"testing"
)

// TestMain lets this test binary stand in for the launcher where `up`
// starts the launcher's own binary (os.Executable) with an internal
// command: `up --detach` starts `capped-log` for process-compose's standard
// error, and a test binary run with those arguments would run the tests.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "capped-log" {
		main()
		return
	}
	os.Exit(m.Run())
}
