package main

import (
	"time"

	"github.com/acme-payments/platform/internal/envconfig"
)

// config is core-api's whole configuration, read from the environment.
type config struct {
	envconfig.Server
	envconfig.Queue
	envconfig.Secret
	// IdempotencyTTL is how long an Idempotency-Key is remembered from its
	// first request.
	IdempotencyTTL time.Duration `env:"IDEMPOTENCY_TTL" envDefault:"24h"`
}

// parseConfig reads environ (KEY=value pairs) into a validated config. Every
// error names the environment variable at fault.
func parseConfig(environ []string) (config, error) {
	var cfg config
	if err := envconfig.Parse(environ, &cfg); err != nil {
		return cfg, err
	}
	return cfg, cfg.validate()
}

// validate checks each rule in turn and fills the derived fields.
func (c *config) validate() error {
	if err := c.Secret.Validate(); err != nil {
		return err
	}
	if err := c.Server.Validate(); err != nil {
		return err
	}
	if err := c.Queue.Validate(); err != nil {
		return err
	}
	if c.IdempotencyTTL < time.Second {
		return envconfig.Invalid("IDEMPOTENCY_TTL", "must be a duration of at least 1s such as 24h, got %s", c.IdempotencyTTL)
	}
	return nil
}
