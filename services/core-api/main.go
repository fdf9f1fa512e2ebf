// Command core-api accepts transactions (POST /transaction) from holders of a
// valid token, queues them on Redis for psp-connector, and reports their
// status (GET /transactions/{id}), as the platform's contract describes. It is
// configured by environment variables; see README.md.
package main

import (
	"context"
	"fmt"
	"os"
)

// version is stamped at link time (-X main.version=…; the Nix build does).
var version = "dev"

func main() {
	if err := run(context.Background(), os.Args, os.Environ(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "core-api:", err)
		os.Exit(1)
	}
}
