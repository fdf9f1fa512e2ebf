// Command benchtool holds the measurements of bench/run.sh that a shell does
// badly: the stack's cold start to both routes answering 200, timed with a
// millisecond poll, the resident memory of every process of a running stack,
// read from /proc, and the summary tables of one run's results.
package main

import (
	"context"
	"fmt"
	"os"
)

func main() {
	if err := run(context.Background(), os.Args, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "benchtool:", err)
		os.Exit(1)
	}
}
