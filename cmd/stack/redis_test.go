package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/acme-payments/platform/internal/redistest"
	"github.com/acme-payments/platform/internal/stackconfig"
	"github.com/acme-payments/platform/internal/stacktest"
)

// composeRedisProcess returns process-compose.yaml's `redis:` process, as
// it is there (two spaces in, under processes:).
func composeRedisProcess(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(t), stackconfig.ComposeFileName))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "\n  redis:\n")
	if !ok {
		t.Fatalf("%s has no redis process", stackconfig.ComposeFileName)
	}
	block := []string{"  redis:"}
	for _, line := range strings.Split(after, "\n") {
		if strings.TrimSpace(line) != "" && !strings.HasPrefix(line, "    ") {
			break // the next process, or the end of processes:
		}
		block = append(block, line)
	}
	return strings.Join(block, "\n") + "\n"
}

// staleRewriteFiles lists what an AOF rewrite left in Redis's dir.
func staleRewriteFiles(t *testing.T, dir string) []string {
	t.Helper()
	found, err := filepath.Glob(filepath.Join(dir, "temp-rewriteaof-*.aof"))
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestStackRedisRemovesWhatAKilledRewriteLeft: a Redis killed (kill -9, the
// OOM killer, the watchdog's SIGKILL) while its child rewrote the AOF leaves
// the child's file in its dir, temp-rewriteaof-<pid>.aof cut short or, when
// the child finished, the whole temp-rewriteaof-bg-<pid>.aof, and the next
// Redis never removes it, nor does `stack up`. Each such kill left one more,
// up to the size of the data set (12,073,257 bytes for 83,400 records). The stack's
// own Redis process (process-compose.yaml's, run by the real process-compose
// and restarted by it) is killed in the middle of a slowed rewrite: once the
// next Redis answers, no such file is left, and the data is all there.
func TestStackRedisRemovesWhatAKilledRewriteLeft(t *testing.T) {
	redistest.RequireBinary(t, "redis-server")
	pc := stacktest.ProcessCompose(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin := stacktest.BuildBinaries(t, ctx)

	state := stacktest.ShortTempDir(t, "rdb")
	redisDir := filepath.Join(state, "redis")
	if err := os.MkdirAll(filepath.Join(state, "logs"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(redisDir, 0o700); err != nil {
		t.Fatal(err)
	}
	compose := "version: \"0.5\"\nprocesses:\n" + composeRedisProcess(t)
	if err := os.WriteFile(filepath.Join(state, "pc.yaml"), []byte(compose), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(pc, "up", "--tui=false", "--no-server", "--disable-dotenv",
		"--config", filepath.Join(state, "pc.yaml"), "--log-file", filepath.Join(state, "pc.log"))
	cmd.Dir = state
	cmd.Env = append(os.Environ(), "STACK_STATE_DIR="+state, "STACK_LAUNCHER="+filepath.Join(bin, "stack"),
		"REDIS_APPENDFSYNC=always", "REDIS_MAXMEMORY=1073741824", "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: filepath.Join(redisDir, "redis.sock"),
		MaxRetries: -1, DialTimeout: time.Second})
	defer rdb.Close()
	waitPid := func(not int) int {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			info, err := rdb.Info(ctx, "server", "persistence").Result()
			if err != nil || !strings.Contains(info, "loading:0") {
				continue
			}
			var pid int
			for _, l := range strings.Split(info, "\r\n") {
				if v, ok := strings.CutPrefix(l, "process_id:"); ok {
					_, _ = fmt.Sscan(v, &pid)
				}
			}
			if pid != 0 && pid != not {
				return pid
			}
		}
		b, _ := os.ReadFile(filepath.Join(state, "logs", "redis.log"))
		t.Fatalf("no Redis answered within 30 s; its log:\n%s", b)
		return 0
	}
	pid := waitPid(0)
	// REDIS_MAXMEMORY is the ceiling, past which Redis evicts nothing.
	for name, want := range map[string]string{"maxmemory": "1073741824", "maxmemory-policy": "noeviction"} {
		if got := rdb.ConfigGet(ctx, name).Val()[name]; got != want {
			t.Errorf("the stack's Redis: got %s %q, want %q", name, got, want)
		}
	}

	const keys = 20000
	pipe := rdb.Pipeline()
	for i := range keys {
		pipe.Set(ctx, fmt.Sprintf("transaction:%06d", i), strings.Repeat("x", 100), 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	// 1 ms a key: the rewrite takes 20 s, and is killed well before.
	if err := rdb.ConfigSet(ctx, "rdb-key-save-delay", "1000").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.BgRewriteAOF(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); len(staleRewriteFiles(t, redisDir)) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the rewrite made no temp-rewriteaof file within 10 s")
		}
	}
	left := staleRewriteFiles(t, redisDir)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitPid(pid) // process-compose's restart, 1 s later
	// The killed Redis's child, slowed, is gone by now or goes at once;
	// give it a moment.
	time.Sleep(500 * time.Millisecond)
	if got := staleRewriteFiles(t, redisDir); len(got) > 0 {
		var sizes []string
		for _, f := range got {
			if st, err := os.Stat(f); err == nil {
				sizes = append(sizes, fmt.Sprintf("%s (%d bytes)", filepath.Base(f), st.Size()))
			}
		}
		t.Errorf("after a kill -9 in the middle of a rewrite (%v) and the restart: got %v left in %s, want none", left, sizes, redisDir)
	}
	if n, err := rdb.DBSize(ctx).Result(); err != nil || n != keys {
		t.Errorf("after the restart: DBSIZE %d (%v), want the %d keys written before the kill", n, err, keys)
	}
}

// TestRemoveStaleRewrites: both names a rewrite's child gives its file go,
// with a line each on the Redis log; the AOF itself, other files and a
// symlink of the same name stay.
func TestRemoveStaleRewrites(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("temp-rewriteaof-4324.aof", "cut short")
	write("temp-rewriteaof-bg-20588.aof", "whole")
	write("appendonlydir/appendonly.aof.6.base.rdb", "the AOF")
	write("appendonlydir/appendonly.aof.manifest", "its manifest")
	write("rewriteaof-1.aof", "not Redis's name")
	outside := filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(outside, []byte("not Redis's"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "temp-rewriteaof-7.aof")); err != nil {
		t.Fatal(err)
	}

	var log strings.Builder
	removeStaleRewrites(dir, &log)
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"temp-rewriteaof-4324.aof", false},
		{"temp-rewriteaof-bg-20588.aof", false},
		{"appendonlydir/appendonly.aof.6.base.rdb", true},
		{"appendonlydir/appendonly.aof.manifest", true},
		{"rewriteaof-1.aof", true},
		{"temp-rewriteaof-7.aof", true},
	} {
		_, err := os.Lstat(filepath.Join(dir, tc.name))
		if got := err == nil; got != tc.want {
			t.Errorf("%s there afterwards: got %v, want %v", tc.name, got, tc.want)
		}
	}
	for _, want := range []string{
		"stack: removed temp-rewriteaof-4324.aof (9 bytes), left by an AOF rewrite of a Redis killed in the middle of it\n",
		"stack: removed temp-rewriteaof-bg-20588.aof (5 bytes)",
	} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log: got %q, want it to say %q", log.String(), want)
		}
	}
	if _, err := os.Stat(outside); err != nil {
		t.Errorf("the symlink's target: %v, want it left", err)
	}
}

// TestRedisDir: the --dir of redis-server's arguments, the last one given.
func TestRedisDir(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--port", "0", "--dir", "/s/redis", "--appendonly", "yes"}, "/s/redis"},
		{[]string{"--dir", "/a", "--dir", "/b"}, "/b"},
		{[]string{"--port", "0"}, ""},
		{[]string{"--dir"}, ""},
	} {
		if got := redisDir(tc.args); got != tc.want {
			t.Errorf("redisDir(%q): got %q, want %q", tc.args, got, tc.want)
		}
	}
}
