// Package envconfig reads a service's configuration from its environment with
// caarlos0/env, and holds the settings services share (where to listen, how
// to log, how long to drain, which Redis, the JWT secret). Every error it returns names the
// environment variable at fault.
package envconfig

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/caarlos0/env/v10"

	"github.com/acme-payments/platform/internal/logging"
	"github.com/acme-payments/platform/internal/token"
)

// Parse fills cfg, a pointer to a struct with `env` tags (embedded structs
// such as Server included), from environ's KEY=value pairs. Parse errors name
// the variable, not the Go field; validation is the caller's next step.
func Parse(environ []string, cfg any) error {
	return ParseValues(env.ToMap(environ), cfg)
}

// ParseValues is Parse for settings already merged into a map (say, from
// files and the environment).
func ParseValues(values map[string]string, cfg any) error {
	if err := env.ParseWithOptions(cfg, env.Options{Environment: values}); err != nil {
		return nameEnvVars(reflect.TypeOf(cfg).Elem(), values, err)
	}
	return nil
}

// Server is what every service needs to serve HTTP and log.
type Server struct {
	Host string `env:"HTTP_HOST" envDefault:"127.0.0.1"`
	Port int    `env:"HTTP_PORT" envDefault:"5000"`
	// Socket, when set, is a unix socket path served as well as Host:Port;
	// the stack puts HAProxy's way in there (no TCP stack on that hop).
	Socket        string        `env:"HTTP_SOCKET"`
	LogLevel      string        `env:"LOG_LEVEL" envDefault:"info"`
	ShutdownGrace time.Duration `env:"SHUTDOWN_GRACE" envDefault:"10s"`

	// Level is LogLevel parsed by Validate.
	Level slog.Level `env:"-"`
}

// Validate checks each field and fills Level.
func (s *Server) Validate() error {
	if s.Host == "" {
		return errors.New("HTTP_HOST must not be empty (use 0.0.0.0 to listen on every interface)")
	}
	if s.Port < 0 || s.Port > 65535 {
		return fmt.Errorf("HTTP_PORT must be a port number (0-65535; 0 picks a free one), got %d", s.Port)
	}
	if n := len(s.Socket); n > maxSocketPath {
		return fmt.Errorf("HTTP_SOCKET %q is %d bytes, over the OS limit of %d for a unix socket path; choose a shorter path", s.Socket, n, maxSocketPath)
	}
	level, err := logging.ParseLevel(s.LogLevel)
	if err != nil {
		return fmt.Errorf("LOG_LEVEL: %w", err)
	}
	s.Level = level
	if s.ShutdownGrace <= 0 {
		return fmt.Errorf("SHUTDOWN_GRACE must be a positive duration such as 10s, got %s", s.ShutdownGrace)
	}
	return nil
}

// maxSocketPath is the longest unix socket path every supported OS accepts
// (sun_path is 108 bytes on Linux, 104 on macOS, including the NUL).
const maxSocketPath = 103

// Addr is the host:port to listen on.
func (s Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Queue is what the services on the transaction queue need: the Redis to use
// and how long transaction status records live.
type Queue struct {
	RedisURL  string        `env:"REDIS_URL" envDefault:"redis://127.0.0.1:6379/0"`
	StatusTTL time.Duration `env:"STATUS_TTL" envDefault:"168h"`
}

// Validate checks each field.
func (q Queue) Validate() error {
	if q.RedisURL == "" {
		return errors.New("REDIS_URL must not be empty (default redis://127.0.0.1:6379/0)")
	}
	if q.StatusTTL < time.Second {
		return fmt.Errorf("STATUS_TTL must be a duration of at least 1s such as 168h, got %s", q.StatusTTL)
	}
	return nil
}

// Secret is JWT_SECRET, the HS256 key that auth-api and core-api share.
type Secret struct {
	JWTSecret string `env:"JWT_SECRET"`

	// Weak is set by Validate when token.EstimateSecret puts JWTSecret
	// under token.MinSecretBits: the service starts, with a warning.
	Weak bool `env:"-"`
}

// Validate fails when JWT_SECRET is missing (naming it) and fills Weak.
func (s *Secret) Validate() error {
	weak, err := token.CheckSecret(s.JWTSecret)
	s.Weak = weak
	return err
}

// WarnIfWeak logs, once at start, that the secret is too weak for HS256:
// what was estimated from which alphabet, and how to make a good one. It
// logs the secret's length and alphabet, never the secret.
func (s Secret) WarnIfWeak(log *slog.Logger) {
	if !s.Weak {
		return
	}
	est := token.EstimateSecret(s.JWTSecret)
	log.Warn("JWT_SECRET is weak: "+est.Shortfall(),
		"alphabet", est.Alphabet, "length", est.Length, "estimated_bits", est.Bits, "min_bits", token.MinSecretBits)
}

// nameEnvVars rewrites the env library's parse errors, which name Go struct
// fields, so that each names the environment variable, what it must be and
// the value it got, as in `HTTP_PORT must be a whole number, got "five"`
// (the library's error stays underneath, for errors.Is and As).
func nameEnvVars(t reflect.Type, values map[string]string, err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	errs := make([]error, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if name := envName(t, pe.Name); name != "" {
				msg := fmt.Sprintf("%s must be %s, got %q", name, want(pe.Type), values[name])
				switch {
				case errors.Is(pe.Err, strconv.ErrRange):
					msg = fmt.Sprintf("%s is out of range for %s, got %q", name, want(pe.Type), values[name])
				case pe.Type == durationType && durationShape.MatchString(values[name]):
					// Well formed, so too long: time.ParseDuration's error
					// does not tell that from a typo.
					msg = fmt.Sprintf("%s is out of range for a duration (at most %dh), got %q", name, int64(math.MaxInt64/int64(time.Hour)), values[name])
				}
				e = &SettingError{Vars: []string{name}, Msg: msg, Err: e}
			}
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// SettingError is an error about the value of the variables in Vars, the
// one at fault first: callers can say where each value came from (a file,
// the environment). Its message starts with that variable's name.
type SettingError struct {
	Vars []string
	Msg  string
	Err  error // what lies underneath (the env library's error), or nil
}

func (e *SettingError) Error() string { return e.Msg }
func (e *SettingError) Unwrap() error { return e.Err }

// Invalid is a SettingError about name: "<name> <what is wrong>", the rest
// made by fmt.Sprintf as in Invalid("PLATFORM_PORT", "must be at most %d", n).
func Invalid(name, format string, args ...any) error {
	return &SettingError{Vars: []string{name}, Msg: name + " " + fmt.Sprintf(format, args...)}
}

// SettingsAtFault lists the variables of every SettingError in err's tree
// (errors.Join and %w included), each once, in the order found.
func SettingsAtFault(err error) []string {
	var vars []string
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case *SettingError:
			for _, v := range e.Vars {
				if !slices.Contains(vars, v) {
					vars = append(vars, v)
				}
			}
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner)
			}
		case interface{ Unwrap() error }:
			walk(e.Unwrap())
		}
	}
	walk(err)
	return vars
}

var (
	durationType = reflect.TypeOf(time.Duration(0))
	// durationShape matches what time.ParseDuration takes, numbers with
	// units, whatever their size.
	durationShape = regexp.MustCompile(`^[-+]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$`)
)

// want says what a value of type t looks like.
func want(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration such as 10s"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "a whole number"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a number"
	case t.Kind() == reflect.Bool:
		return "true or false"
	}
	return "a valid " + t.String()
}

// envName finds the env tag of the field called field in t or in the structs
// t embeds.
func envName(t reflect.Type, field string) string {
	if f, ok := t.FieldByName(field); ok {
		return f.Tag.Get("env")
	}
	return ""
}
