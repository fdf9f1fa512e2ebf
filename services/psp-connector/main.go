// Command psp-connector takes transactions off the platform's Redis stream
// and makes each one with the payment service provider, printing the
// contract's line once per transaction. It serves GET /health on HTTP_PORT
// when that is set, and is configured by environment variables; see README.md.
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
		fmt.Fprintln(os.Stderr, "psp-connector:", err)
		os.Exit(1)
	}
}
