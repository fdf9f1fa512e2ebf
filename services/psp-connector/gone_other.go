//go:build !unix

package main

// goneFromThisHost cannot tell here whether a process exists: nil, so that
// only a connector's own stop removes it from the consumer group.
func goneFromThisHost(string, int) func(name string) bool { return nil }
