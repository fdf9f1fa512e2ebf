//go:build unix

package main

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestParseConfigRefusesAChargeLogThatIsNoFile: CHARGE_LOG is read back
// after a crash, so it must be a regular file. A named pipe with no writer
// blocked the check at start in open(2) for good, where SIGTERM could not
// end it (the connector catches it).
func TestParseConfigRefusesAChargeLogThatIsNoFile(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "psp-connector.log")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	tests := []struct {
		name    string
		environ []string
		want    string
	}{
		{"a named pipe", []string{"CHARGE_LOG=" + fifo}, `CHARGE_LOG "` + fifo + `" is not a regular file`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig(tt.environ)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
