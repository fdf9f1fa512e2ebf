// Package stacktest finds what the whole-stack tests need: the repository
// root, the launcher and services built from it, free ports, and a
// process-compose binary (from PATH, else built once by
// tools/build-process-compose into the user's cache directory). Like redistest, it
// skips a test when a tool cannot be had, and fails it when CI=true.
package stacktest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/acme-payments/platform/internal/stackconfig"
)

// RepoRoot returns the module root: the nearest directory at or above the
// test's working directory that holds go.mod.
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatalf("working directory: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatalf("no go.mod at or above the working directory")
		}
		dir = parent
	}
}

// Missing skips the test, or fails it when CI=true, saying what is missing
// and how to get it.
func Missing(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf(format+" (CI=true requires it)", args...)
	}
	tb.Skipf(format+"; skipping", args...)
}

// Binary returns the path of name on PATH, or skips (fails under CI=true)
// with a hint on how to install it.
func Binary(tb testing.TB, name, hint string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(tb, "%s is not on PATH (%s)", name, hint)
	}
	return p
}

// ProcessCompose returns a process-compose binary: the one on PATH, else one
// built by the repository's tools/build-process-compose (the version pinned in
// tools/go.mod, as the flake builds it), cached under the user's cache
// directory by the hash of the files it is built from.
func ProcessCompose(tb testing.TB) string {
	tb.Helper()
	if p, err := exec.LookPath("process-compose"); err == nil {
		return p
	}
	for _, name := range []string{"go", "bash"} {
		if _, err := exec.LookPath(name); err != nil {
			Missing(tb, "process-compose is not on PATH and %s is not there to build it", name)
		}
	}
	inputs := stackconfig.ProcessComposeBuild(RepoRoot(tb))
	script := inputs[0]
	h := sha256.New()
	for _, f := range inputs {
		b, err := os.ReadFile(f)
		if err != nil {
			Missing(tb, "process-compose is not on PATH and %v", err)
		}
		h.Write(b)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	// One directory per build, holding a binary named process-compose, so
	// that callers can put the directory on PATH.
	out := filepath.Join(cache, "acme-platform", "tools-"+hex.EncodeToString(h.Sum(nil)[:6]), "process-compose")
	if _, err := os.Stat(out); err == nil {
		return out
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		Missing(tb, "process-compose is not on PATH and %v", err)
	}
	tb.Logf("process-compose is not on PATH; building it with tools/build-process-compose into %s", out)
	// The script puts the binary in place at once: a concurrent test
	// package sees the whole binary or none.
	if b, err := exec.Command("bash", script, out).CombinedOutput(); err != nil {
		Missing(tb, "process-compose is not on PATH and tools/build-process-compose failed: %v\n%s", err, b)
	}
	return out
}

// BuildBinaries builds the launcher and the three services from this
// checkout into a temporary directory and returns it.
func BuildBinaries(tb testing.TB, ctx context.Context) string {
	tb.Helper()
	consultSources(tb)
	bin := tb.TempDir()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin+string(filepath.Separator),
		"./cmd/stack", "./services/auth-api", "./services/core-api", "./services/psp-connector")
	cmd.Dir = RepoRoot(tb)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// consultSources stats every file the binaries are built from and the stack
// reads (Go sources, go.mod, go.sum, vendor/modules.txt, process-compose.yaml,
// haproxy.cfg, haproxy-errors/, stack.env). `go build` and the stack read
// them in other processes, which go test's cache does not see: without
// this, `go test ./...` after an edit to cmd/stack or a service would replay
// the last result of the tests that run the stack instead of running them.
// go test records what the test process itself stats.
func consultSources(tb testing.TB) {
	tb.Helper()
	root := RepoRoot(tb)
	for _, f := range []string{"go.mod", "go.sum", filepath.Join("vendor", "modules.txt"), "process-compose.yaml", "haproxy.cfg", "stack.env"} {
		_, _ = os.Stat(filepath.Join(root, f))
	}
	for _, dir := range []string{"cmd", "services", "internal", "haproxy-errors"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && !strings.HasSuffix(path, "_test.go") {
				_, err = os.Stat(path)
			}
			return err
		})
		if err != nil {
			tb.Fatalf("stat the stack's sources: %v", err)
		}
	}
}

// FreePorts returns n distinct TCP ports that were free on 127.0.0.1, from
// below the kernel's ephemeral range (firstEphemeralPort): a port from that
// range, as port 0 would give, can be taken by a client connection of a test
// running beside this one between its check here and the stack's bind.
func FreePorts(tb testing.TB, n int) []int {
	tb.Helper()
	first, span := 10000, firstEphemeralPort()-10000
	if span < 1000 {
		first, span = 20000, 40000 // a range that starts low: any port will do
	}
	var ports []int
	var lns []net.Listener
	for try := 0; len(ports) < n; try++ {
		if try == 1000 {
			tb.Fatalf("find %d free ports from %d to %d: %d found in 1000 tries", n, first, first+span-1, len(ports))
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(first+rand.IntN(span))))
		if err != nil {
			continue // in use
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// firstEphemeralPort is the first port of the kernel's range for client
// connections (Linux: ip_local_port_range); 32768, Linux's default, where
// it cannot be read.
func firstEphemeralPort() int {
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if p, err := strconv.Atoi(f[0]); err == nil {
				return p
			}
		}
	}
	return 32768
}
