package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/acme-payments/platform/internal/cliflag"
)

// errHelpShown ends a command that printed the help because of -h/--help;
// run returns nil for it (exit status 0).
var errHelpShown = errors.New("help shown")

// newFlagSet is a command's flag set. It prints nothing itself: parseFlags
// reports a bad flag once, and -h with the launcher's own help (which spells
// flags --like-this), not the flag package's.
func newFlagSet(cmd string) *flag.FlagSet {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseFlags parses a command's arguments: flags only. -h/--help prints the
// help to stdout (errHelpShown); a bad flag or any argument is exit status 2,
// naming it.
func (l *launcher) parseFlags(fs *flag.FlagSet, args []string) error {
	err := checkFlags(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		l.usage(l.stdout, nil)
		return errHelpShown
	}
	return err
}

// checkFlags parses args into fs and words what is wrong with them, for
// every command alike: flag.ErrHelp for -h/--help; exit status 2 for a bad
// flag or any argument.
func checkFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return err
	case err != nil:
		return badFlag(fs.Name(), cliflag.Explain(fs, err))
	case fs.NArg() > 0:
		return &exitError{code: 2, err: fmt.Errorf("%s takes no arguments, got %q", fs.Name(), fs.Args())}
	}
	return nil
}

// badFlag is the exit-status-2 error for a flag cmd does not take.
func badFlag(cmd string, err error) error {
	return &exitError{code: 2, err: fmt.Errorf("%s: %w (stack --help lists the flags)", cmd, err)}
}
