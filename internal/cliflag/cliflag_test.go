package cliflag

import (
	"errors"
	"flag"
	"io"
	"testing"
	"time"
)

func TestExplain(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"duration", []string{"--timeout", "abc"}, `--timeout must be a duration such as 30s, got "abc"`},
		{"duration after =", []string{"-timeout=10"}, `--timeout must be a duration such as 30s, got "10"`},
		{"int, one letter", []string{"-c", "x"}, `-c must be a whole number, got "x"`},
		{"uint negative", []string{"--seed", "-1"}, `--seed must be a whole number, 0 or more, got "-1"`},
		{"float", []string{"--rate", "fast"}, `--rate must be a number, got "fast"`},
		{"bool", []string{"--json=maybe"}, `--json must be true or false (or the flag alone, for true), got "maybe"`},
		{"a quote in the value", []string{"--timeout", `a"b`}, `--timeout must be a duration such as 30s, got "a\"b"`},
		{"unknown flag, as it was", []string{"--nope"}, "flag provided but not defined: -nope"},
		{"no value, as it was", []string{"--timeout"}, "flag needs an argument: -timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			fs.Duration("timeout", time.Second, "")
			fs.Int("c", 1, "")
			fs.Uint64("seed", 0, "")
			fs.Float64("rate", 0, "")
			fs.Bool("json", false, "")
			err := fs.Parse(tt.args)
			if err == nil {
				t.Fatal("got no error from Parse")
			}
			if got := Explain(fs, err).Error(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	if err := Explain(flag.NewFlagSet("t", flag.ContinueOnError), flag.ErrHelp); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("flag.ErrHelp: got %v, want it as it was", err)
	}
}
