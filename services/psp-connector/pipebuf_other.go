//go:build !linux

package main

// pipeBuf is PIPE_BUF: a write of at most this many bytes to a pipe
// (process-compose reads the connector's output from one) is all or
// nothing. Elsewhere (macOS, the BSDs) it is 512, POSIX's least.
const pipeBuf = 512
