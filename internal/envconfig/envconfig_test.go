package envconfig

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

type serviceConfig struct {
	Server
	Queue
	Extra int `env:"EXTRA_NUMBER" envDefault:"7"`
}

func TestParseDefaults(t *testing.T) {
	var cfg serviceConfig
	if err := Parse(nil, &cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Server.Validate(); err != nil {
		t.Fatal(err)
	}
	want := serviceConfig{
		Server: Server{Host: "127.0.0.1", Port: 5000, LogLevel: "info", ShutdownGrace: 10 * time.Second, Level: slog.LevelInfo},
		Queue:  Queue{RedisURL: "redis://127.0.0.1:6379/0", StatusTTL: 168 * time.Hour},
		Extra:  7,
	}
	if cfg != want {
		t.Errorf("got %+v, want %+v", cfg, want)
	}
	if got := cfg.Addr(); got != "127.0.0.1:5000" {
		t.Errorf("Addr() = %q, want 127.0.0.1:5000", got)
	}
}

func TestErrorsNameTheVariable(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		want    []string
	}{
		{"port not a number", []string{"HTTP_PORT=five"}, []string{"HTTP_PORT"}},
		{"port out of range", []string{"HTTP_PORT=70000"}, []string{"HTTP_PORT"}},
		{"port just past the last", []string{"HTTP_PORT=65536"}, []string{"HTTP_PORT"}},
		{"negative port", []string{"HTTP_PORT=-1"}, []string{"HTTP_PORT"}},
		{"unknown log level", []string{"LOG_LEVEL=verbose"}, []string{"LOG_LEVEL"}},
		{"grace not a duration", []string{"SHUTDOWN_GRACE=soon"}, []string{"SHUTDOWN_GRACE"}},
		{"grace zero", []string{"SHUTDOWN_GRACE=0s"}, []string{"SHUTDOWN_GRACE"}},
		{"socket path too long", []string{"HTTP_SOCKET=/" + strings.Repeat("s", 120)}, []string{"HTTP_SOCKET"}},
		// 104 bytes: Linux would bind it (108 with the NUL), macOS would not (104).
		{"socket path one byte past macOS's limit", []string{"HTTP_SOCKET=/" + strings.Repeat("s", 103)}, []string{"HTTP_SOCKET", "104 bytes"}},
		{"status ttl too short", []string{"STATUS_TTL=10ms"}, []string{"STATUS_TTL"}},
		{"embedding struct's own field", []string{"EXTRA_NUMBER=x"}, []string{"EXTRA_NUMBER"}},
		{"two at once", []string{"HTTP_PORT=x", "STATUS_TTL=y"}, []string{"HTTP_PORT", "STATUS_TTL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg serviceConfig
			err := Parse(tt.environ, &cfg)
			if err == nil {
				err = cfg.Server.Validate()
			}
			if err == nil {
				err = cfg.Queue.Validate()
			}
			for _, want := range tt.want {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("got %v, want an error naming %s", err, want)
				}
			}
		})
	}
}

// TestParseErrorsSayWhatTheValueMustBe checks the words of a parse error
// and that it is a SettingError naming its variable.
func TestParseErrorsSayWhatTheValueMustBe(t *testing.T) {
	tests := []struct {
		environ []string
		want    string
	}{
		{[]string{"HTTP_PORT=five"}, `HTTP_PORT must be a whole number, got "five"`},
		{[]string{"EXTRA_NUMBER=99999999999999999999"}, `EXTRA_NUMBER is out of range for a whole number, got "99999999999999999999"`},
		{[]string{"SHUTDOWN_GRACE=soon"}, `SHUTDOWN_GRACE must be a duration such as 10s, got "soon"`},
		{[]string{"SHUTDOWN_GRACE=10x"}, `SHUTDOWN_GRACE must be a duration such as 10s, got "10x"`},
		{[]string{"SHUTDOWN_GRACE=9999999h"}, `SHUTDOWN_GRACE is out of range for a duration (at most 2562047h), got "9999999h"`},
		{[]string{"SHUTDOWN_GRACE=1h99999999999m"}, `SHUTDOWN_GRACE is out of range for a duration (at most 2562047h), got "1h99999999999m"`},
	}
	for _, tt := range tests {
		var cfg serviceConfig
		err := Parse(tt.environ, &cfg)
		if err == nil || err.Error() != tt.want {
			t.Errorf("%v: got %v, want %q", tt.environ, err, tt.want)
		}
		name, _, _ := strings.Cut(tt.environ[0], "=")
		if got := SettingsAtFault(err); len(got) != 1 || got[0] != name {
			t.Errorf("%v: settings at fault %q, want [%s]", tt.environ, got, name)
		}
	}
}

func TestSecret(t *testing.T) {
	tests := []struct {
		name     string
		environ  []string
		wantErr  string // "" for none
		wantWeak bool
	}{
		{"missing names JWT_SECRET", nil, "JWT_SECRET", false},
		{"empty names JWT_SECRET", []string{"JWT_SECRET="}, "JWT_SECRET", false},
		{"short is weak", []string{"JWT_SECRET=short"}, "", true},
		{"32 hex digits are weak: 128 bits", []string{"JWT_SECRET=" + strings.Repeat("0123456789abcdef", 2)}, "", true},
		{"64 hex digits are strong: 256 bits", []string{"JWT_SECRET=" + strings.Repeat("0123456789abcdef", 4)}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Secret
			if err := Parse(tt.environ, &s); err != nil {
				t.Fatal(err)
			}
			err := s.Validate()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || s.Weak != tt.wantWeak {
				t.Errorf("got weak %v, %v; want weak %v, nil", s.Weak, err, tt.wantWeak)
			}
		})
	}
}

// TestWarnIfWeak: the warning names JWT_SECRET, says what was estimated
// from which alphabet and how to make a good secret, and never holds the
// secret; a strong secret logs nothing.
func TestWarnIfWeak(t *testing.T) {
	tests := []struct {
		name   string
		secret string
		want   []string // in the log; nil for no line at all
	}{
		{"32 hex digits", "9f3ac2d17b4e80d5a6c1e2f3b4a59687",
			[]string{`"level":"WARN"`, "JWT_SECRET is weak: 32 hex digits at 4 bits each hold at most 128 bits of key", "HS256 needs 256 (RFC 7518, section 3.2)",
				"openssl rand -base64 32", `"alphabet":"hex digits"`, `"length":32`, `"estimated_bits":128`, `"min_bits":256`}},
		{"short", "hunter2!", []string{"JWT_SECRET is weak: 8 bytes at 8 bits each hold at most 64 bits of key", "openssl rand -base64 32"}},
		{"64 hex digits", strings.Repeat("9f3ac2d17b4e80d5", 4), nil},
		{"44 base64 characters", "n8pQ0zJ3vXo1yXr4gq0m3d2mJq3b7h1sO7mW1Qk3fZc=", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Secret
			if err := Parse([]string{"JWT_SECRET=" + tt.secret}, &s); err != nil {
				t.Fatal(err)
			}
			if err := s.Validate(); err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			s.WarnIfWeak(slog.New(slog.NewJSONHandler(&out, nil)))
			if tt.want == nil {
				if out.Len() != 0 {
					t.Errorf("got %s, want no warning", out.String())
				}
				return
			}
			for _, want := range tt.want {
				if !strings.Contains(out.String(), want) {
					t.Errorf("got %s, want %s in it", out.String(), want)
				}
			}
			if strings.Contains(out.String(), tt.secret) {
				t.Errorf("got %s: the secret itself is in the log", out.String())
			}
		})
	}
}
