package main

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/acme-payments/platform/internal/envconfig"
)

func TestParseConfigDefaults(t *testing.T) {
	cfg, err := parseConfig([]string{"JWT_SECRET=" + string(testSecret)})
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		Server: envconfig.Server{
			Host: "127.0.0.1", Port: 5000, LogLevel: "info", ShutdownGrace: 10 * time.Second, Level: slog.LevelInfo,
		},
		Secret: envconfig.Secret{JWTSecret: string(testSecret)},
		// Without HTTP_SOCKET the TCP port is the only way in: no limit.
		DirectLoginFailureLimit:  0,
		DirectLoginFailureWindow: 10 * time.Second,
	}
	if cfg != want {
		t.Errorf("got %+v, want %+v", cfg, want)
	}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		check   func(config) bool
		wantErr []string // substrings of the error; nil for success
	}{
		{"everything set", []string{"JWT_SECRET=" + string(testSecret), "HTTP_HOST=0.0.0.0", "HTTP_PORT=5001",
			"USERS_FILE=/etc/users.json", "LOG_LEVEL=debug", "SHUTDOWN_GRACE=3s"},
			func(c config) bool {
				return c.Host == "0.0.0.0" && c.Port == 5001 && c.UsersFile == "/etc/users.json" &&
					c.Level == slog.LevelDebug && c.ShutdownGrace == 3*time.Second && !c.Weak
			}, nil},
		{"weak secret accepted, flagged", []string{"JWT_SECRET=short"}, func(c config) bool { return c.Weak }, nil},
		{"32 hex digits are weak: 128 bits", []string{"JWT_SECRET=" + string(testSecret[:32])}, func(c config) bool { return c.Weak }, nil},
		{"64 hex digits are not: 256 bits", []string{"JWT_SECRET=" + string(testSecret)}, func(c config) bool { return !c.Weak }, nil},
		{"port 0 allowed", []string{"JWT_SECRET=x", "HTTP_PORT=0"}, func(c config) bool { return c.Port == 0 }, nil},
		{"JWT_SECRET missing", nil, nil, []string{"JWT_SECRET is required"}},
		{"JWT_SECRET empty", []string{"JWT_SECRET="}, nil, []string{"JWT_SECRET is required"}},
		{"HTTP_PORT negative", []string{"JWT_SECRET=x", "HTTP_PORT=-1"}, nil, []string{"HTTP_PORT"}},
		{"HTTP_PORT text", []string{"JWT_SECRET=x", "HTTP_PORT=five"}, nil, []string{"HTTP_PORT"}},
		{"HTTP_HOST empty", []string{"JWT_SECRET=x", "HTTP_HOST="}, func(c config) bool { return c.Host == "127.0.0.1" }, nil},
		{"LOG_LEVEL bad", []string{"JWT_SECRET=x", "LOG_LEVEL=verbose"}, nil, []string{"LOG_LEVEL"}},
		{"SHUTDOWN_GRACE negative", []string{"JWT_SECRET=x", "SHUTDOWN_GRACE=-1s"}, nil, []string{"SHUTDOWN_GRACE"}},
		{"BCRYPT_CONCURRENCY unset: the default", []string{"JWT_SECRET=x"}, func(c config) bool { return c.BcryptConcurrency == 0 }, nil},
		{"BCRYPT_CONCURRENCY set", []string{"JWT_SECRET=x", "BCRYPT_CONCURRENCY=3"}, func(c config) bool { return c.BcryptConcurrency == 3 }, nil},
		{"BCRYPT_CONCURRENCY negative", []string{"JWT_SECRET=x", "BCRYPT_CONCURRENCY=-1"}, nil, []string{"BCRYPT_CONCURRENCY must be", "got -1"}},
		{"BCRYPT_CONCURRENCY text", []string{"JWT_SECRET=x", "BCRYPT_CONCURRENCY=two"}, nil, []string{"BCRYPT_CONCURRENCY must be a whole number"}},
		{"BCRYPT_MAX_WAITING unset: the default", []string{"JWT_SECRET=x"}, func(c config) bool { return c.BcryptMaxWaiting == 0 }, nil},
		{"BCRYPT_MAX_WAITING set", []string{"JWT_SECRET=x", "BCRYPT_MAX_WAITING=40"}, func(c config) bool { return c.BcryptMaxWaiting == 40 }, nil},
		{"BCRYPT_MAX_WAITING negative", []string{"JWT_SECRET=x", "BCRYPT_MAX_WAITING=-1"}, nil, []string{"BCRYPT_MAX_WAITING must be", "got -1"}},
		{"BCRYPT_MAX_WAITING text", []string{"JWT_SECRET=x", "BCRYPT_MAX_WAITING=many"}, nil, []string{"BCRYPT_MAX_WAITING must be a whole number"}},
		{"DIRECT_LOGIN_FAILURE_LIMIT set", []string{"JWT_SECRET=x", "DIRECT_LOGIN_FAILURE_LIMIT=5", "DIRECT_LOGIN_FAILURE_WINDOW=1m"},
			func(c config) bool {
				return c.DirectLoginFailureLimit == 5 && c.DirectLoginFailureWindow == time.Minute
			}, nil},
		{"DIRECT_LOGIN_FAILURE_LIMIT 0: no limit", []string{"JWT_SECRET=x", "DIRECT_LOGIN_FAILURE_LIMIT=0"}, func(c config) bool { return c.DirectLoginFailureLimit == 0 }, nil},
		{"DIRECT_LOGIN_FAILURE_LIMIT unset, HTTP_SOCKET set: 20", []string{"JWT_SECRET=x", "HTTP_SOCKET=/tmp/a.sock"}, func(c config) bool { return c.DirectLoginFailureLimit == 20 }, nil},
		{"DIRECT_LOGIN_FAILURE_LIMIT empty, HTTP_SOCKET set: 20", []string{"JWT_SECRET=x", "HTTP_SOCKET=/tmp/a.sock", "DIRECT_LOGIN_FAILURE_LIMIT="}, func(c config) bool { return c.DirectLoginFailureLimit == 20 }, nil},
		{"DIRECT_LOGIN_FAILURE_LIMIT 0, HTTP_SOCKET set: no limit", []string{"JWT_SECRET=x", "HTTP_SOCKET=/tmp/a.sock", "DIRECT_LOGIN_FAILURE_LIMIT=0"}, func(c config) bool { return c.DirectLoginFailureLimit == 0 }, nil},
		{"DIRECT_LOGIN_FAILURE_LIMIT empty, no HTTP_SOCKET: no limit", []string{"JWT_SECRET=x", "DIRECT_LOGIN_FAILURE_LIMIT="}, func(c config) bool { return c.DirectLoginFailureLimit == 0 }, nil},
		{"DIRECT_LOGIN_FAILURE_LIMIT set, no HTTP_SOCKET: applies", []string{"JWT_SECRET=x", "DIRECT_LOGIN_FAILURE_LIMIT=20"}, func(c config) bool { return c.DirectLoginFailureLimit == 20 }, nil},
		{"DIRECT_LOGIN_FAILURE_LIMIT negative", []string{"JWT_SECRET=x", "DIRECT_LOGIN_FAILURE_LIMIT=-1"}, nil, []string{"DIRECT_LOGIN_FAILURE_LIMIT must be", "got -1"}},
		{"DIRECT_LOGIN_FAILURE_LIMIT text", []string{"JWT_SECRET=x", "DIRECT_LOGIN_FAILURE_LIMIT=lots"}, nil, []string{"DIRECT_LOGIN_FAILURE_LIMIT must be a whole number"}},
		{"DIRECT_LOGIN_FAILURE_WINDOW under 1s", []string{"JWT_SECRET=x", "DIRECT_LOGIN_FAILURE_WINDOW=500ms"}, nil, []string{"DIRECT_LOGIN_FAILURE_WINDOW must be a whole number of seconds", "got 500ms"}},
		{"DIRECT_LOGIN_FAILURE_WINDOW not whole seconds", []string{"JWT_SECRET=x", "DIRECT_LOGIN_FAILURE_WINDOW=1.5s"}, nil, []string{"DIRECT_LOGIN_FAILURE_WINDOW must be a whole number of seconds", "got 1.5s"}},
		{"DIRECT_LOGIN_FAILURE_WINDOW negative", []string{"JWT_SECRET=x", "DIRECT_LOGIN_FAILURE_WINDOW=-10s"}, nil, []string{"DIRECT_LOGIN_FAILURE_WINDOW must be", "got -10s"}},
		{"DIRECT_LOGIN_FAILURE_WINDOW text", []string{"JWT_SECRET=x", "DIRECT_LOGIN_FAILURE_WINDOW=soon"}, nil, []string{"DIRECT_LOGIN_FAILURE_WINDOW must be"}},
		{"two bad values, both named", []string{"JWT_SECRET=x", "HTTP_PORT=x", "SHUTDOWN_GRACE=y"}, nil, []string{"HTTP_PORT", "SHUTDOWN_GRACE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfig(tt.environ)
			if tt.wantErr != nil {
				for _, want := range tt.wantErr {
					if err == nil || !strings.Contains(err.Error(), want) {
						t.Errorf("got %v, want an error containing %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v, want none", err)
			}
			if !tt.check(cfg) {
				t.Errorf("got %+v", cfg)
			}
		})
	}
}
