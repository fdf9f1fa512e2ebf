package main

import (
	"fmt"
	"strings"
	"time"

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
	// DirectLoginFailureLimit is how many failed logins (401, 404) one
	// username may have on the TCP port within DirectLoginFailureWindow
	// before its logins there get a 429 until the window passes
	// (failureLimit); 0 turns the limit off. The unix socket, HAProxy's way
	// in, is never limited by it: the router limits per address. Unset, it
	// is 20 with HTTP_SOCKET set, and 0 without: then the TCP port is the
	// only way in, a router's too (the contract's HTTP_PORT), where a limit
	// per username would let anyone lock a user out (parseConfig).
	DirectLoginFailureLimit  int           `env:"DIRECT_LOGIN_FAILURE_LIMIT"`
	DirectLoginFailureWindow time.Duration `env:"DIRECT_LOGIN_FAILURE_WINDOW" envDefault:"10s"`
}

// parseConfig reads environ (KEY=value pairs) into a validated config. Every
// error names the environment variable at fault.
func parseConfig(environ []string) (config, error) {
	var cfg config
	if err := envconfig.Parse(environ, &cfg); err != nil {
		return cfg, err
	}
	if !isSet(environ, "DIRECT_LOGIN_FAILURE_LIMIT") && cfg.Socket != "" {
		cfg.DirectLoginFailureLimit = defaultDirectLoginFailureLimit
	}
	return cfg, cfg.validate()
}

// defaultDirectLoginFailureLimit is DIRECT_LOGIN_FAILURE_LIMIT when it is
// unset and HTTP_SOCKET is set (config).
const defaultDirectLoginFailureLimit = 20

// isSet says whether environ sets name to something not empty (an empty
// value is unset, as for every variable: envconfig).
func isSet(environ []string, name string) bool {
	set := false
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			set = v != "" // the last one wins
		}
	}
	return set
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
	if c.DirectLoginFailureLimit < 0 {
		return fmt.Errorf("DIRECT_LOGIN_FAILURE_LIMIT must be how many failed logins one username may have on the TCP port per DIRECT_LOGIN_FAILURE_WINDOW, 1 or more (0: no limit; unset: %d with HTTP_SOCKET set, 0 without), got %d", defaultDirectLoginFailureLimit, c.DirectLoginFailureLimit)
	}
	if c.DirectLoginFailureWindow < time.Second || c.DirectLoginFailureWindow%time.Second != 0 {
		return fmt.Errorf("DIRECT_LOGIN_FAILURE_WINDOW must be a whole number of seconds, 1s or more (unset: 10s), got %s", c.DirectLoginFailureWindow)
	}
	return nil
}
