package main

import (
	"fmt"

	"github.com/acme-payments/platform/internal/envconfig"
	"github.com/acme-payments/platform/internal/users"
)

// config is auth-api's whole configuration, read from the environment.
type config struct {
	envconfig.Server
	envconfig.Secret
	UsersFile string `env:"USERS_FILE"`
	// BcryptConcurrency bounds the bcrypt comparisons under way at once
	// (users.DB.LimitBcrypt); 0, the default, means one fewer than
	// GOMAXPROCS (at least 1), so that a core is left to the other requests.
	BcryptConcurrency int `env:"BCRYPT_CONCURRENCY"`
	// BcryptMaxWaiting bounds the bcrypt logins waiting for a comparison
	// slot; one more is answered 503 at once (users.DB.LimitBcrypt). 0, the
	// default, means users.DefaultWaitingPerSlot (16) per slot: about what
	// the slots get through at the highest bcrypt cost allowed before
	// HAProxy's 15 s timeout cuts a waiting login off.
	BcryptMaxWaiting int `env:"BCRYPT_MAX_WAITING"`
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
	if c.BcryptConcurrency < 0 {
		return fmt.Errorf("BCRYPT_CONCURRENCY must be how many bcrypt comparisons may run at once, 1 or more (0 or unset: one fewer than GOMAXPROCS, at least 1), got %d", c.BcryptConcurrency)
	}
	if c.BcryptMaxWaiting < 0 {
		return fmt.Errorf("BCRYPT_MAX_WAITING must be how many bcrypt logins may wait for a comparison slot, 1 or more (0 or unset: %d per slot), got %d", users.DefaultWaitingPerSlot, c.BcryptMaxWaiting)
	}
	return nil
}
