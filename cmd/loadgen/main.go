// Command loadgen drives the platform's merchant flow through the router and
// reports throughput, latency percentiles and whether every accepted
// transaction was processed. See internal/loadgen and BENCHMARKS.md.
package main

import (
	"context"
	"fmt"
	"os"
)

func main() {
	if err := run(context.Background(), os.Args, os.Environ(), os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}
