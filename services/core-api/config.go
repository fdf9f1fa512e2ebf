package main

import (
	"github.com/acme-payments/platform/internal/envconfig"
)

// config is core-api's whole configuration, read from the environment.
type config struct {
	envconfig.Server
	envconfig.Queue
	envconfig.Secret
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
	return c.Queue.Validate()
}
