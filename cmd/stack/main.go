// Command stack runs the whole platform on one machine: Redis, auth-api,
// core-api and psp-connector behind HAProxy, supervised by process-compose,
// with all state under one directory. `stack --help` says which files and
// state directory it uses.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// version is stamped at link time (-X main.version=…; the Nix build does).
var version = "dev"

func main() {
	err := run(context.Background(), os.Args, os.Environ(), os.Stdin, os.Stdout, os.Stderr)
	if err == nil {
		return
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintln(os.Stderr, "stack:", msg)
	}
	os.Exit(code)
}

// exitError carries an exit status other than 1, and an optional message.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }
