package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunUsageErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		environ []string
		want    string // substring of the error; "" for none
	}{
		{"help", []string{"-h"}, nil, ""},
		{"unknown flag", []string{"--nope"}, nil, "flag provided but not defined"},
		{"stray argument", []string{"extra"}, nil, "unexpected arguments"},
		{"bad port", nil, []string{"PLATFORM_PORT=99999"}, "PLATFORM_PORT"},
		{"bad mode", []string{"--mode", "both", "--redis-url", "none"}, nil, "--mode"},
		{"duration and count", []string{"--duration", "1s", "--count", "5", "--redis-url", "none"}, nil, "--duration, --count"},
		{"bad currency", []string{"--currencies", "usd", "--redis-url", "none"}, nil, "--currencies"},
		{"target without a scheme", []string{"--target", "127.0.0.1:8080", "--redis-url", "none"}, nil, "--target"},
		{"rate not a number", []string{"--rate", "NaN", "--count", "5", "--redis-url", "none"}, nil, "--rate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(context.Background(), append([]string{"loadgen"}, tt.args...), tt.environ, &out, &errOut)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("got %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestStackRedisURL(t *testing.T) {
	dir, err := os.MkdirTemp("", "loadgen-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.MkdirAll(filepath.Join(dir, "redis"), 0o700); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "redis", "redis.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	empty := t.TempDir()

	tests := []struct {
		name string
		flag string
		env  environment
		want string
	}{
		{"flag wins", "redis://h:1/0", environment{RedisURL: "redis://e:2/0", StackStateDir: dir}, "redis://h:1/0"},
		{"none disables", "none", environment{RedisURL: "redis://e:2/0"}, ""},
		{"REDIS_URL next", "", environment{RedisURL: "redis://e:2/0", StackStateDir: dir}, "redis://e:2/0"},
		{"stack socket", "", environment{StackStateDir: dir}, "unix://" + sock},
		{"no stack", "", environment{StackStateDir: empty}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := stackRedisURL(tt.flag, tt.env); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
