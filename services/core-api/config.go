package main

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	"github.com/caarlos0/env/v10"

	"github.com/acme-payments/platform/internal/logging"
	"github.com/acme-payments/platform/internal/token"
)

// config is core-api's whole configuration, read from the environment.
type config struct {
	Host          string        `env:"HTTP_HOST" envDefault:"127.0.0.1"`
	Port          int           `env:"HTTP_PORT" envDefault:"5000"`
	RedisURL      string        `env:"REDIS_URL" envDefault:"redis://127.0.0.1:6379/0"`
	JWTSecret     string        `env:"JWT_SECRET"`
	StatusTTL     time.Duration `env:"STATUS_TTL" envDefault:"168h"`
	LogLevel      string        `env:"LOG_LEVEL" envDefault:"info"`
	ShutdownGrace time.Duration `env:"SHUTDOWN_GRACE" envDefault:"10s"`

	level      slog.Level // parsed LogLevel
	weakSecret bool       // JWTSecret is shorter than token.MinSecretBytes
}

// parseConfig reads environ (KEY=value pairs) into a validated config. Every
// error names the environment variable at fault.
func parseConfig(environ []string) (config, error) {
	var cfg config
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: env.ToMap(environ)}); err != nil {
		return cfg, nameEnvVars(err)
	}
	return cfg, cfg.validate()
}

// validate checks each rule in turn and fills the derived fields.
func (c *config) validate() error {
	weak, err := token.CheckSecret(c.JWTSecret)
	if err != nil {
		return err
	}
	c.weakSecret = weak
	if c.Host == "" {
		return errors.New("HTTP_HOST must not be empty (use 0.0.0.0 to listen on every interface)")
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("HTTP_PORT must be a port number (0-65535; 0 picks a free one), got %d", c.Port)
	}
	if c.RedisURL == "" {
		return errors.New("REDIS_URL must not be empty (default redis://127.0.0.1:6379/0)")
	}
	if c.StatusTTL < time.Second {
		return fmt.Errorf("STATUS_TTL must be a duration of at least 1s such as 168h, got %s", c.StatusTTL)
	}
	if c.level, err = logging.ParseLevel(c.LogLevel); err != nil {
		return fmt.Errorf("LOG_LEVEL: %w", err)
	}
	if c.ShutdownGrace <= 0 {
		return fmt.Errorf("SHUTDOWN_GRACE must be a positive duration such as 10s, got %s", c.ShutdownGrace)
	}
	return nil
}

// nameEnvVars rewrites the env library's parse errors, which name Go struct
// fields, so that they name the environment variable instead.
func nameEnvVars(err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	errs := make([]error, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if f, ok := reflect.TypeOf(config{}).FieldByName(pe.Name); ok {
				e = fmt.Errorf("%s: invalid %s: %w", f.Tag.Get("env"), pe.Type, pe.Err)
			}
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}
