package main

import (
	"github.com/acme-payments/platform/internal/envconfig"
)

// config is auth-api's whole configuration, read from the environment.
type config struct {
	envconfig.Server
	envconfig.Secret
	UsersFile string `env:"USERS_FILE"`
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
	return c.Server.Validate()
}
