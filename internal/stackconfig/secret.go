package stackconfig

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// SecretSource says where the JWT secret in use came from.
type SecretSource string

// Where a JWT secret can come from.
const (
	SecretExplicit  SecretSource = "JWT_SECRET"
	SecretFile      SecretSource = "file"
	SecretGenerated SecretSource = "generated"
)

// SecretFile is where the generated JWT secret is kept: mode 0600 in a 0700
// directory of the state dir.
func (c Config) SecretFile() string { return filepath.Join(c.StateDir, "secrets", "jwt_secret") }

// EnsureJWTSecret returns the secret auth-api and core-api share. An explicit
// JWT_SECRET wins (and nothing is written); otherwise the secret file is read,
// or created on first use with 32 random bytes, hex-encoded. A secret file that
// group or others can read is tightened to 0600. The secret is never logged.
func (c Config) EnsureJWTSecret() (string, SecretSource, error) {
	if c.JWTSecret != "" {
		return c.JWTSecret, SecretExplicit, nil
	}
	path := c.SecretFile()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", "", fmt.Errorf("create secret directory: %w", err)
	}
	// Another user's directory or file could hold a key they know.
	if err := checkOwnerOf(filepath.Dir(path), os.Lstat); err != nil {
		return "", "", fmt.Errorf("secret directory: %w", err)
	}
	if err := os.Chmod(filepath.Dir(path), 0o700); err != nil {
		return "", "", fmt.Errorf("restrict secret directory: %w", err)
	}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		secret := strings.TrimSpace(string(b))
		if len(secret) < 32 {
			return "", "", fmt.Errorf("%s holds a secret shorter than 32 characters; delete it to generate a new one (tokens issued with it stop working)", path)
		}
		st, err := os.Stat(path)
		if err != nil {
			return "", "", err
		}
		if err := checkOwner(path, st); err != nil {
			return "", "", fmt.Errorf("JWT secret: %w", err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(path, 0o600); err != nil {
				return "", "", fmt.Errorf("restrict %s to mode 0600: %w", path, err)
			}
		}
		return secret, SecretFile, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", "", fmt.Errorf("read JWT secret: %w", err)
	}

	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", "", fmt.Errorf("generate JWT secret: %w", err)
	}
	secret := hex.EncodeToString(raw)
	// Write to a private temporary file, then link it into place: a
	// concurrent first start keeps whichever secret landed first.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".jwt_secret-*")
	if err != nil {
		return "", "", fmt.Errorf("write JWT secret: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", "", fmt.Errorf("write JWT secret: %w", err)
	}
	if _, err := tmp.WriteString(secret + "\n"); err != nil {
		tmp.Close()
		return "", "", fmt.Errorf("write JWT secret: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", "", fmt.Errorf("write JWT secret: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", "", fmt.Errorf("write JWT secret: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return c.EnsureJWTSecret()
		}
		return "", "", fmt.Errorf("write JWT secret: %w", err)
	}
	return secret, SecretGenerated, nil
}

// SecretSettingsOthersCanRead warns, for each setting that holds a secret
// (JWT_SECRET; a REDIS_URL with a user name or password, an '@' in it) and
// was set in a settings file that another user may read (stack.local.env
// written with the usual umask is mode 0644), that they can read it: with
// JWT_SECRET they can sign a token for any user. Settings from the
// environment are not judged (another user cannot read a process's
// environment). The warnings name the file and the setting, never the value.
func (c Config) SecretSettingsOthersCanRead() []string {
	var warnings []string
	for _, key := range []string{"JWT_SECRET", "REDIS_URL"} {
		src, val := c.Sources[key], c.Values[key]
		if src == "" || src == FromEnvironment || val == "" || (key == "REDIS_URL" && !strings.Contains(val, "@")) {
			continue
		}
		fi, err := os.Stat(src)
		if err != nil {
			continue
		}
		if who := readableByOthers(fi); who != "" {
			what := "JWT_SECRET: whoever reads it can sign a token for any user"
			if key == "REDIS_URL" {
				what = "a REDIS_URL with a password: whoever reads it can use that Redis"
			}
			warnings = append(warnings, fmt.Sprintf("%s %s, and sets %s; `chmod 600 %s` (or set %s in the environment)", src, who, what, src, key))
		}
	}
	return warnings
}
