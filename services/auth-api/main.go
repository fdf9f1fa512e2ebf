// Command auth-api exchanges a username and password for a signed token
// valid for 30 seconds (POST /token), as the platform's contract describes.
// It is configured by environment variables; see README.md.
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
		fmt.Fprintln(os.Stderr, "auth-api:", err)
		os.Exit(1)
	}
}
