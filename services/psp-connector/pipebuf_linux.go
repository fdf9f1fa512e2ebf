package main

// pipeBuf is PIPE_BUF: a write of at most this many bytes to a pipe
// (process-compose reads the connector's output from one) is all or
// nothing. Linux's is 4,096.
const pipeBuf = 4096
