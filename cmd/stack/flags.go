package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// errHelpShown ends a command that printed the help because of -h/--help;
// run returns nil for it (exit status 0).
var errHelpShown = errors.New("help shown")

// flagSet is a command's flag set. It prints nothing itself: parseFlags
// reports a bad flag once, and -h with the launcher's own help (which spells
// flags --like-this), not the flag package's.
func (l *launcher) flagSet(cmd string) *flag.FlagSet {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseFlags parses a command's arguments: flags only. -h/--help prints the
// help to stdout (errHelpShown); a bad flag or any argument is exit status 2,
// naming it.
func (l *launcher) parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		l.usage(l.stdout, nil)
		return errHelpShown
	case err != nil:
		return &exitError{code: 2, err: fmt.Errorf("%s: %w (stack --help lists the flags)", fs.Name(), err)}
	case fs.NArg() > 0:
		return &exitError{code: 2, err: fmt.Errorf("%s takes no arguments, got %q", fs.Name(), fs.Args())}
	}
	return nil
}
