// Package cliflag words the flag package's errors about a flag's value for
// people: the flag as --name, what its value must be and what it got,
// instead of `invalid value "abc" for flag -timeout: parse error`.
package cliflag

import (
	"flag"
	"fmt"
	"regexp"
	"time"
)

// invalidValue matches the flag package's error for a value that does not
// parse: `invalid value "x" for flag -name: ...`, or for a bool flag
// `invalid boolean value "x" for -name: ...`.
var invalidValue = regexp.MustCompile(`^invalid (?:boolean )?value (".*") for (?:flag )?-([^:\s]+): `)

// Explain returns err, from fs.Parse, reworded when it is about a value
// that does not parse: `--timeout must be a duration such as 30s, got
// "abc"`. Any other error (an unknown flag, flag.ErrHelp) is returned as
// it is.
func Explain(fs *flag.FlagSet, err error) error {
	m := invalidValue.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	f := fs.Lookup(m[2])
	if f == nil {
		return err
	}
	return fmt.Errorf("%s must be %s, got %s", Name(f.Name), want(f.Value), m[1])
}

// Name is how a flag is spelled in messages: -c for a one-letter flag,
// --name for the others.
func Name(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// want says what a value of v's kind looks like.
func want(v flag.Value) string {
	g, ok := v.(flag.Getter)
	if !ok {
		return "a valid value"
	}
	switch g.Get().(type) {
	case time.Duration:
		return "a duration such as 30s"
	case bool:
		return "true or false (or the flag alone, for true)"
	case int, int64:
		return "a whole number"
	case uint, uint64:
		return "a whole number, 0 or more"
	case float64:
		return "a number"
	}
	return "a valid value"
}
