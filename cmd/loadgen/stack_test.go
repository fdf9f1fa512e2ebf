package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acme-payments/platform/internal/loadgen"
	"github.com/acme-payments/platform/internal/redistest"
	"github.com/acme-payments/platform/internal/stacktest"
	"github.com/acme-payments/platform/internal/txqueue"
	"github.com/redis/go-redis/v9"
)

// TestAgainstRealStack is the load generator's smoke test on the real
// stack (launcher, process-compose, HAProxy, Redis and the three services,
// built from this checkout): a few seconds of each mode, asserting only
// correctness (every accepted transaction processed, no errors), never
// timing. It skips without redis-server, haproxy or process-compose, and
// fails under CI=true.
func TestAgainstRealStack(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the whole stack takes seconds to build and start")
	}
	redistest.RequireBinary(t, "redis-server")
	stacktest.Binary(t, "haproxy", "apt-get install haproxy, or nix develop")
	pc := stacktest.ProcessCompose(t)
	root := stacktest.RepoRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	bin := stacktest.BuildBinaries(t, ctx)
	// Unix socket paths are limited to ~100 bytes; t.TempDir() can be longer.
	tmp := stacktest.ShortTempDir(t, "loadgen-stack-")
	state := filepath.Join(tmp, "state")

	ports := stacktest.FreePorts(t, 5)
	vars := map[string]string{
		"STACK_SHARE_DIR":    root,
		"STACK_STATE_DIR":    state,
		"PLATFORM_PORT":      strconv.Itoa(ports[0]),
		"HAPROXY_STATS_PORT": strconv.Itoa(ports[1]),
		"AUTH_API_PORT":      strconv.Itoa(ports[2]),
		"CORE_API_PORT":      strconv.Itoa(ports[3]),
		"PSP_CONNECTOR_PORT": strconv.Itoa(ports[4]),
		"AUTH_RATE_LIMIT":    "1000000",
		"SHUTDOWN_GRACE":     "5s",
	}
	// The launcher finds process-compose on PATH; pc is named process-compose.
	env := []string{"PATH=" + bin + string(filepath.ListSeparator) + filepath.Dir(pc) +
		string(filepath.ListSeparator) + os.Getenv("PATH")}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, ours := vars[k]; ours || k == "PATH" || k == "JWT_SECRET" || k == "REDIS_URL" || strings.HasPrefix(k, "PC_") {
			continue
		}
		env = append(env, kv)
	}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	stack := func(args ...string) error {
		// Not ctx: `stack down` runs in a cleanup, after ctx may be done.
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(cctx, filepath.Join(bin, "stack"), args...)
		cmd.Dir, cmd.Env = tmp, env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if err != nil {
			t.Logf("stack %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return err
	}
	if err := stack("up", "--detach", "--wait", "--timeout", "60s"); err != nil {
		_ = stack("down")
		t.Fatalf("stack up failed")
	}
	t.Cleanup(func() { _ = stack("down") })
	pid, err := os.ReadFile(filepath.Join(state, "process-compose.pid"))
	if err != nil {
		t.Fatal(err)
	}

	base := []string{"loadgen", "--json", "--quiet", "--target", "http://127.0.0.1:" + vars["PLATFORM_PORT"],
		"--redis-url", "unix://" + filepath.Join(state, "redis", "redis.sock"),
		"--watch-pid", strings.TrimSpace(string(pid)), "-c", "16", "--drain-timeout", "20s"}
	profile := filepath.Join(t.TempDir(), "loadgen.pprof")
	tests := []struct {
		name string
		args []string
		mode loadgen.Mode
	}{
		{"closed loop, statuses from Redis", []string{"--duration", "2s"}, loadgen.ModeTransactions},
		{"open loop, statuses from the API", []string{"--rate", "300", "--count", "300", "--verify-via", "http"}, loadgen.ModeTransactions},
		{"open loop, idempotency keys", []string{"--rate", "300", "--count", "300", "--idempotency-keys"}, loadgen.ModeTransactions},
		{"tokens, with a CPU profile", []string{"--mode", "token", "--duration", "1s", "--cpuprofile", profile}, loadgen.ModeTokens},
	}
	// Idempotency records in the stack's Redis: one per keyed transaction
	// accepted, none for the others.
	rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: filepath.Join(state, "redis", "redis.sock")})
	t.Cleanup(func() { rdb.Close() })
	idempotencyRecords := func(t *testing.T) int {
		t.Helper()
		n := 0
		iter := rdb.Scan(ctx, 0, txqueue.IdempotencyKeys, 1000).Iterator()
		for iter.Next(ctx) {
			n++
		}
		if err := iter.Err(); err != nil {
			t.Fatalf("scan the stack's Redis for idempotency records: %v", err)
		}
		return n
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recordsBefore := idempotencyRecords(t)
			var out, errOut bytes.Buffer
			err := run(ctx, append(append([]string{}, base...), tt.args...), nil, &out, &errOut)
			if err != nil {
				t.Fatalf("loadgen: %v\n%s\n%s", err, out.String(), errOut.String())
			}
			if slices.Contains(tt.args, profile) {
				// pprof writes a gzipped protobuf, and only at the end.
				if b, err := os.ReadFile(profile); err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
					t.Errorf("--cpuprofile %s: got %d bytes (%v), want a gzipped profile", profile, len(b), err)
				}
			}
			var rep loadgen.Report
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				t.Fatalf("report: %v\n%s", err, out.String())
			}
			if len(rep.Errors) != 0 {
				t.Errorf("errors: got %v, want none", rep.Errors)
			}
			keyed := slices.Contains(tt.args, "--idempotency-keys")
			if rep.IdempotencyKeys != keyed {
				t.Errorf("report's idempotency_keys: got %v, want %v", rep.IdempotencyKeys, keyed)
			}
			want := 0
			if keyed {
				want = int(rep.Accepted)
			}
			if got := idempotencyRecords(t) - recordsBefore; got != want {
				t.Errorf("idempotency records: %d new in the stack's Redis, want %d", got, want)
			}
			if rep.CPU == nil || rep.CPU.Processes["core-api"] == 0 && tt.mode == loadgen.ModeTransactions {
				t.Errorf("cpu: got %+v, want core-api's share", rep.CPU)
			}
			if tt.mode == loadgen.ModeTokens {
				if rep.Tokens == 0 {
					t.Errorf("tokens: got 0, want > 0")
				}
				return
			}
			v := rep.Verification
			if rep.Accepted == 0 || v == nil {
				t.Fatalf("accepted %d, verification %+v: want transactions, verified", rep.Accepted, v)
			}
			if v.Checked != rep.Accepted || v.Processed != rep.Accepted || v.Lost() != 0 || v.Failed != 0 || !v.Drained {
				t.Errorf("got %+v, want all %d accepted checked and processed, none lost, drained", *v, rep.Accepted)
			}
			if got := rep.Latency["enqueue_to_processed"].Count; got != rep.Accepted {
				t.Errorf("enqueue_to_processed samples: got %d, want %d", got, rep.Accepted)
			}
		})
	}

	// A profile lost to a full disk is an error, not a silent empty file.
	t.Run("tokens, a CPU profile on a full disk", func(t *testing.T) {
		if _, err := os.Stat("/dev/full"); err != nil {
			t.Skipf("no /dev/full to stand for a full disk: %v", err)
		}
		var out, errOut bytes.Buffer
		err := run(ctx, append(append([]string{}, base...), "--mode", "token", "--duration", "300ms", "--cpuprofile", "/dev/full"), nil, &out, &errOut)
		if err == nil || !strings.HasPrefix(err.Error(), "--cpuprofile: ") || !strings.Contains(err.Error(), "no space left on device") {
			t.Errorf("got %v, want --cpuprofile: ... no space left on device", err)
		}
	})
}
