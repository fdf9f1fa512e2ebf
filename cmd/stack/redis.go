package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// redisServer is the internal command `stack redis-server ARGS...`, which
// process-compose.yaml starts Redis with: it removes from Redis's --dir what
// an AOF rewrite of an earlier Redis left there, then becomes redis-server
// with ARGS (exec: the same pid, which process-compose and the watchdog
// follow, and the same process name).
//
// A rewrite's child writes temp-rewriteaof-<pid>.aof and renames it
// temp-rewriteaof-bg-<pid>.aof once done, for its parent to move into
// appendonlydir. Redis removes the file of a child it stops itself (a
// shutdown), but a Redis killed in the middle (kill -9, the OOM killer, the
// watchdog's SIGKILL, a host crash) leaves it, up to the size of the data
// set, and no later Redis looks at it: one more file for every such kill
// (RELIABILITY.md D100). Nothing reads them: Redis loads only what
// appendonlydir's manifest names, and no other Redis uses the dir (up's lock,
// D30), so the next Redis's start is when to remove them.
func redisServer(args, environ []string, stdout io.Writer) error {
	if dir := redisDir(args); dir != "" {
		removeStaleRewrites(dir, stdout)
	}
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return err
	}
	return syscall.Exec(path, append([]string{"redis-server"}, args...), environ)
}

// redisDir is the value of --dir in redis-server's arguments ("" without one).
func redisDir(args []string) string {
	dir := ""
	for i, a := range args {
		if a == "--dir" && i+1 < len(args) {
			dir = args[i+1]
		}
	}
	return dir
}

// staleRewritePattern matches a rewrite child's file in Redis's dir, cut
// short (temp-rewriteaof-<pid>.aof) or whole (temp-rewriteaof-bg-<pid>.aof).
const staleRewritePattern = "temp-rewriteaof-*.aof"

// removeStaleRewrites removes the rewrite files in dir, saying so on w (the
// Redis log), each with its size. A file it cannot remove is said too; Redis
// starts either way.
func removeStaleRewrites(dir string, w io.Writer) {
	found, _ := filepath.Glob(filepath.Join(dir, staleRewritePattern))
	for _, f := range found {
		st, err := os.Lstat(f)
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(w, "stack: could not remove %s, left by an AOF rewrite of a Redis killed in the middle of it: %v\n", f, err)
			continue
		}
		fmt.Fprintf(w, "stack: removed %s (%d bytes), left by an AOF rewrite of a Redis killed in the middle of it\n",
			strings.TrimPrefix(f, dir+string(filepath.Separator)), st.Size())
	}
}
