package stackconfig

import (
	"os"
	"path/filepath"
	"testing"
)

// TestAutoRedisMaxMemoryHeedsTheCgroupLimit: REDIS_MAXMEMORY=auto is half of
// what the stack may use, the machine's memory or its cgroup's memory limit
// (a container's, a systemd unit's MemoryMax), whichever is less. With
// MemTotal alone, a container limited to 1 GiB on a 24 GiB host gave Redis a
// ceiling of 12 GiB: the kernel's OOM killer ended it long before it reached
// it, instead of Redis refusing new transactions at its ceiling, and each
// restart replayed an AOF as large. Each row is a file tree standing for /
// (proc/meminfo, proc/self/cgroup and the cgroup file system).
func TestAutoRedisMaxMemoryHeedsTheCgroupLimit(t *testing.T) {
	const memTotal = "MemTotal:       25165824 kB\nMemFree:        1000 kB\n" // 24 GiB
	tests := []struct {
		name  string
		files map[string]string
		want  int64
	}{
		{"no cgroup files", map[string]string{"proc/meminfo": memTotal}, 24 << 30},
		{"cgroup v2 container (its own cgroup as /)", map[string]string{
			"proc/meminfo":              memTotal,
			"proc/self/cgroup":          "0::/\n",
			"sys/fs/cgroup/memory.max":  "1073741824\n",
			"sys/fs/cgroup/cgroup.type": "domain\n",
		}, 1 << 30},
		{"cgroup v2 unit with MemoryMax, the limit on a parent", map[string]string{
			"proc/meminfo":                                                memTotal,
			"proc/self/cgroup":                                            "0::/system.slice/build.slice/job.scope\n",
			"sys/fs/cgroup/system.slice/memory.max":                       "max\n",
			"sys/fs/cgroup/system.slice/build.slice/memory.max":           "2147483648\n",
			"sys/fs/cgroup/system.slice/build.slice/job.scope/memory.max": "max\n",
		}, 2 << 30},
		{"cgroup v2 without a limit", map[string]string{
			"proc/meminfo":                        memTotal,
			"proc/self/cgroup":                    "0::/user.slice/user-1000.slice/session-2.scope\n",
			"sys/fs/cgroup/user.slice/memory.max": "max\n",
			"sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope/memory.max": "max\n",
		}, 24 << 30},
		{"cgroup v2 limit above MemTotal", map[string]string{
			"proc/meminfo":             memTotal,
			"proc/self/cgroup":         "0::/\n",
			"sys/fs/cgroup/memory.max": "68719476736\n",
		}, 24 << 30},
		{"cgroup v1 container (host path, own cgroup mounted as /)", map[string]string{
			"proc/meminfo":     memTotal,
			"proc/self/cgroup": "12:pids:/docker/abc\n4:memory:/docker/abc\n0::/docker/abc\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "536870912\n",
		}, 512 << 20},
		{"cgroup v1 without a limit", map[string]string{
			"proc/meminfo":     memTotal,
			"proc/self/cgroup": "4:memory:/process_api/f2\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes":                "9223372036854771712\n",
			"sys/fs/cgroup/memory/process_api/f2/memory.limit_in_bytes": "9223372036854771712\n",
		}, 24 << 30},
		{"no meminfo", map[string]string{
			"proc/self/cgroup":         "0::/\n",
			"sys/fs/cgroup/memory.max": "1073741824\n",
		}, 1 << 30},
		{"nothing to read", map[string]string{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for name, content := range tt.files {
				p := filepath.Join(root, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got := availableMemory(root); got != tt.want {
				t.Errorf("availableMemory: got %d, want %d", got, tt.want)
			}
		})
	}
}
