package stackconfig

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acme-payments/platform/internal/token"
)

func stateConfig(t *testing.T) Config {
	t.Helper()
	return Config{StateDir: filepath.Join(t.TempDir(), "state")}
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestEnsureJWTSecretGeneratesOnce(t *testing.T) {
	c := stateConfig(t)
	first, src, err := c.EnsureJWTSecret()
	if err != nil {
		t.Fatal(err)
	}
	if src != SecretGenerated {
		t.Errorf("first call: got source %q, want %q", src, SecretGenerated)
	}
	raw, err := hex.DecodeString(first)
	if err != nil || len(raw) != 32 {
		t.Errorf("secret: got %q, want 32 random bytes in hex", first)
	}
	if got := mode(t, c.SecretFile()); got != 0o600 {
		t.Errorf("secret file mode: got %o, want 600", got)
	}
	if got := mode(t, filepath.Dir(c.SecretFile())); got != 0o700 {
		t.Errorf("secret dir mode: got %o, want 700", got)
	}

	again, src, err := c.EnsureJWTSecret()
	if err != nil {
		t.Fatal(err)
	}
	if again != first || src != SecretFile {
		t.Errorf("second call: got %q from %q, want the same secret from the file", again, src)
	}
	other, _, err := stateConfig(t).EnsureJWTSecret()
	if err != nil {
		t.Fatal(err)
	}
	if other == first {
		t.Errorf("another state dir: got the same secret, want a fresh random one")
	}
}

func TestEnsureJWTSecretExplicitWins(t *testing.T) {
	c := stateConfig(t)
	if _, _, err := c.EnsureJWTSecret(); err != nil {
		t.Fatal(err)
	}
	c.JWTSecret = "explicit-secret-explicit-secret-explicit"
	got, src, err := c.EnsureJWTSecret()
	if err != nil {
		t.Fatal(err)
	}
	if got != c.JWTSecret || src != SecretExplicit {
		t.Errorf("got %q from %q, want the explicit JWT_SECRET", got, src)
	}

	fresh := stateConfig(t)
	fresh.JWTSecret = "explicit-secret-explicit-secret-explicit"
	if _, _, err := fresh.EnsureJWTSecret(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(fresh.SecretFile()); !os.IsNotExist(err) {
		t.Errorf("explicit JWT_SECRET: got a secret file written (%v), want none", err)
	}
}

func TestEnsureJWTSecretTightensLooseFile(t *testing.T) {
	// Readable by others, by the group only, or writable by the group.
	for _, loose := range []os.FileMode{0o644, 0o640, 0o620} {
		t.Run(fmt.Sprintf("%o", loose), func(t *testing.T) {
			c := stateConfig(t)
			secret, _, err := c.EnsureJWTSecret()
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(c.SecretFile(), loose); err != nil {
				t.Fatal(err)
			}
			got, _, err := c.EnsureJWTSecret()
			if err != nil {
				t.Fatal(err)
			}
			if got != secret {
				t.Errorf("got a different secret after chmod, want the file's")
			}
			if m := mode(t, c.SecretFile()); m != 0o600 {
				t.Errorf("mode after a %o file: got %o, want 600", loose, m)
			}
		})
	}
}

// TestGeneratedSecretDrawsNoWarning: the secret the launcher generates,
// 64 hex digits, holds the 256 bits the services ask of JWT_SECRET
// (token.CheckSecret), so a stack started with it logs no weak-secret
// warning.
func TestGeneratedSecretDrawsNoWarning(t *testing.T) {
	for i := range 8 {
		secret, _, err := stateConfig(t).EnsureJWTSecret()
		if err != nil {
			t.Fatal(err)
		}
		weak, err := token.CheckSecret(secret)
		if est := token.EstimateSecret(secret); weak || err != nil {
			t.Errorf("generated secret %d: got weak=%v, %v (%d %s, %d bits), want a strong one", i, weak, err, est.Length, est.Alphabet, est.Bits)
		}
	}
}

func TestEnsureJWTSecretRefusesShortFile(t *testing.T) {
	c := stateConfig(t)
	writeFile(t, c.SecretFile(), "short\n")
	_, _, err := c.EnsureJWTSecret()
	if err == nil || !strings.Contains(err.Error(), "shorter than 32") {
		t.Errorf("got %v, want an error about a short secret", err)
	}
}

func TestPrepareStateDir(t *testing.T) {
	c := stateConfig(t)
	if err := os.MkdirAll(c.StateDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := c.PrepareStateDir(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{c.StateDir, c.LogDir(), c.BinDir(), filepath.Dir(c.RedisSocket())} {
		if m := mode(t, d); m != 0o700 {
			t.Errorf("%s: got mode %o, want 700", d, m)
		}
	}
}

// TestRefusesAnotherUsersStateDir: a state dir, or a secret file, that
// another user made in advance (under /tmp, say) is theirs to change; with a
// secrets/jwt_secret of their own in it they would know the signing key
// (RELIABILITY.md D54). As root, the chmod to 0700 succeeded and the planted
// key was used.
func TestRefusesAnotherUsersStateDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to make files another user owns")
	}
	const other = 65534
	planted := "another-users-key-that-they-know-0123456789"

	t.Run("state dir", func(t *testing.T) {
		c := stateConfig(t)
		writeFile(t, c.SecretFile(), planted+"\n")
		for _, p := range []string{c.StateDir, filepath.Dir(c.SecretFile()), c.SecretFile()} {
			if err := os.Lchown(p, other, other); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(c.StateDir, 0o777); err != nil {
			t.Fatal(err)
		}
		err := c.PrepareStateDir()
		if err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
			t.Fatalf("PrepareStateDir: got %v, want a refusal naming the owner", err)
		}
		if m := mode(t, c.StateDir); m != 0o777 {
			t.Errorf("the refused dir's mode changed to %o", m)
		}
		if secret, _, err := c.EnsureJWTSecret(); err == nil || secret == planted {
			t.Errorf("EnsureJWTSecret: got %q, %v; want a refusal", secret, err)
		}
	})

	t.Run("symlinked state dir", func(t *testing.T) {
		c := stateConfig(t)
		target := filepath.Join(t.TempDir(), "theirs")
		if err := os.Mkdir(target, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(target, other, other); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, c.StateDir); err != nil {
			t.Fatal(err)
		}
		if err := c.PrepareStateDir(); err == nil {
			t.Fatal("PrepareStateDir accepted a symlink to another user's directory")
		}
	})

	t.Run("another user's symlink to this user's directory", func(t *testing.T) {
		c := stateConfig(t)
		target := filepath.Join(t.TempDir(), "mine")
		if err := os.Mkdir(target, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, c.StateDir); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(c.StateDir, other, other); err != nil {
			t.Fatal(err)
		}
		if err := c.PrepareStateDir(); err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
			t.Fatalf("PrepareStateDir through a symlink another user owns: got %v, want a refusal naming the owner", err)
		}
	})

	t.Run("secret file", func(t *testing.T) {
		c := stateConfig(t)
		if err := c.PrepareStateDir(); err != nil {
			t.Fatal(err)
		}
		writeFile(t, c.SecretFile(), planted+"\n")
		if err := os.Chown(c.SecretFile(), other, other); err != nil {
			t.Fatal(err)
		}
		if secret, _, err := c.EnsureJWTSecret(); err == nil || secret == planted {
			t.Errorf("EnsureJWTSecret: got %q, %v; want a refusal", secret, err)
		}
	})
}

// TestWarnsOfSecretSettingsOthersCanRead: a JWT_SECRET in a stack.local.env
// written with the usual umask (0644) handed the signing key to every local
// user, who could then sign a token for any user, without a word from `up`
// (the generated secret file is kept at 0600). Each row writes the file
// with its mode (and group), loads the settings as the launcher does, and
// wants a warning naming the file and the setting, never the value.
func TestWarnsOfSecretSettingsOthersCanRead(t *testing.T) {
	const secret = "7f3c9a1e5b2d8f4a6c0e9b7d5a3f1c8e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a"
	const nogroup = 65534 // Debian's nogroup: no member at all
	tests := []struct {
		name    string
		file    string // stack.local.env
		mode    os.FileMode
		gid     int // chown the file to this group first; -1: leave it
		environ []string
		want    string // in the one warning; "" for none
	}{
		{"JWT_SECRET, mode 0644", "JWT_SECRET=" + secret + "\n", 0o644, -1, nil, "is readable by every user (mode 0644), and sets JWT_SECRET"},
		{"JWT_SECRET, mode 0604", "JWT_SECRET=" + secret + "\n", 0o604, -1, nil, "is readable by every user (mode 0604)"},
		{"JWT_SECRET, mode 0600", "JWT_SECRET=" + secret + "\n", 0o600, -1, nil, ""},
		{"JWT_SECRET, mode 0640, this user's group", "JWT_SECRET=" + secret + "\n", 0o640, os.Getegid(), nil, ""},
		{"JWT_SECRET, mode 0640, group of others", "JWT_SECRET=" + secret + "\n", 0o640, nogroup, nil, "is readable by its group"},
		{"JWT_SECRET in the environment wins", "JWT_SECRET=" + secret + "\n", 0o644, -1, []string{"JWT_SECRET=" + secret}, ""},
		{"REDIS_URL with a password", "REDIS_URL=redis://:" + secret + "@127.0.0.1:6379/0\n", 0o644, -1, nil, "and sets a REDIS_URL with a password"},
		{"REDIS_URL without one", "REDIS_URL=redis://127.0.0.1:6379/0\n", 0o644, -1, nil, ""},
		{"no secret", "LOG_LEVEL=debug\n", 0o644, -1, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.gid == nogroup && os.Geteuid() != 0 {
				t.Skip("needs root, to give the file to a group of others")
			}
			l := checkout(t, "")
			local := l.LocalFile("")
			writeFile(t, local, tt.file)
			if tt.gid != -1 {
				if err := os.Chown(local, -1, tt.gid); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(local, tt.mode); err != nil {
				t.Fatal(err)
			}
			cfg, err := Load(l, l.Checkout, tt.environ)
			if err != nil {
				t.Fatal(err)
			}
			got := cfg.SecretSettingsOthersCanRead()
			switch {
			case tt.want == "" && len(got) != 0:
				t.Errorf("got warnings %q, want none", got)
			case tt.want != "" && (len(got) != 1 || !strings.Contains(got[0], tt.want) || !strings.Contains(got[0], local)):
				t.Errorf("got warnings %q, want one naming %s and containing %q", got, local, tt.want)
			}
			for _, w := range got {
				if strings.Contains(w, secret[:16]) {
					t.Errorf("the warning shows the secret: %q", w)
				}
			}
		})
	}
}
