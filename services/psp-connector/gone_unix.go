//go:build unix

package main

import (
	"errors"
	"strconv"
	"strings"
	"syscall"
)

// goneFromThisHost returns the consumer group's test for a stopped
// connector, for one named by the default CONSUMER_NAME, host-pid: a
// consumer named host-N, for this host and a process N other than self, has
// stopped for good when no process N exists (kill(N, 0) answers ESRCH).
// Any other name, another host's or one set by CONSUMER_NAME, is never
// judged gone, nor is one whose pid now belongs to another process. A
// second machine of the same hostname on the same Redis may see its live
// connector removed while nothing is pending for it: that loses nothing,
// since Redis adds it back at its next read (txqueue's forgetScript).
func goneFromThisHost(host string, self int) func(name string) bool {
	prefix := host + "-"
	return func(name string) bool {
		digits, ok := strings.CutPrefix(name, prefix)
		if !ok {
			return false
		}
		pid, err := strconv.Atoi(digits)
		if err != nil || pid <= 0 || pid == self || strconv.Itoa(pid) != digits {
			return false
		}
		return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
	}
}
