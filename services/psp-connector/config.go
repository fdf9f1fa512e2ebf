package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"strconv"
	"time"

	"github.com/caarlos0/env/v10"

	"github.com/acme-payments/platform/internal/logging"
)

// config is psp-connector's whole configuration, read from the environment.
type config struct {
	Host              string        `env:"HTTP_HOST" envDefault:"127.0.0.1"`
	Port              int           `env:"HTTP_PORT" envDefault:"5000"`
	RedisURL          string        `env:"REDIS_URL" envDefault:"redis://127.0.0.1:6379/0"`
	ConsumerName      string        `env:"CONSUMER_NAME"`
	VisibilityTimeout time.Duration `env:"VISIBILITY_TIMEOUT" envDefault:"30s"`
	ClaimInterval     time.Duration `env:"CLAIM_INTERVAL" envDefault:"5s"`
	MaxDeliveries     int           `env:"MAX_DELIVERIES" envDefault:"5"`
	BatchSize         int           `env:"BATCH_SIZE" envDefault:"64"`
	StatusTTL         time.Duration `env:"STATUS_TTL" envDefault:"168h"`
	LogLevel          string        `env:"LOG_LEVEL" envDefault:"info"`
	ShutdownGrace     time.Duration `env:"SHUTDOWN_GRACE" envDefault:"10s"`

	level slog.Level // parsed LogLevel
}

// maxBatchSize bounds BATCH_SIZE: one batch is one pipeline and one XACK.
const maxBatchSize = 10_000

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
	var err error
	if c.Host == "" {
		return errors.New("HTTP_HOST must not be empty (use 0.0.0.0 to listen on every interface)")
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("HTTP_PORT must be a port number (0-65535; 0 picks a free one), got %d", c.Port)
	}
	if c.RedisURL == "" {
		return errors.New("REDIS_URL must not be empty (default redis://127.0.0.1:6379/0)")
	}
	if c.ConsumerName == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "psp-connector"
		}
		c.ConsumerName = host + "-" + strconv.Itoa(os.Getpid())
	}
	if c.VisibilityTimeout <= 0 {
		return fmt.Errorf("VISIBILITY_TIMEOUT must be a positive duration such as 30s, got %s", c.VisibilityTimeout)
	}
	if c.ClaimInterval <= 0 {
		return fmt.Errorf("CLAIM_INTERVAL must be a positive duration such as 5s, got %s", c.ClaimInterval)
	}
	if c.MaxDeliveries < 1 {
		return fmt.Errorf("MAX_DELIVERIES must be at least 1, got %d", c.MaxDeliveries)
	}
	if c.BatchSize < 1 || c.BatchSize > maxBatchSize {
		return fmt.Errorf("BATCH_SIZE must be between 1 and %d, got %d", maxBatchSize, c.BatchSize)
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
