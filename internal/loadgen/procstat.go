package loadgen

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// CPUUsage is the CPU time spent during the load phase (not the
// verification): by each process of the watched tree (summed by name), by the
// generator itself, and by the whole machine, so that other load on a shared
// machine is visible. Linux only (it reads /proc).
type CPUUsage struct {
	// Processes maps a process name to CPU seconds (user + system).
	Processes map[string]float64 `json:"processes_cpu_s"`
	// Generator is this process's CPU seconds.
	Generator float64 `json:"generator_cpu_s"`
	// MachineBusy is the CPU seconds all CPUs were busy, by anyone.
	MachineBusy float64 `json:"machine_busy_cpu_s"`
	// MachineAvailable is the CPU seconds all CPUs had (wall time × CPUs).
	MachineAvailable float64 `json:"machine_available_cpu_s"`
}

// userHZ is the unit of CPU times in /proc (USER_HZ, 100 on Linux).
const userHZ = 100

// cpuSnapshot is one reading of /proc.
type cpuSnapshot struct {
	procs       map[int]procTime
	self        int64
	busy, total int64
}

type procTime struct {
	name  string
	ticks int64
}

// takeCPUSnapshot reads the CPU ticks of root and its descendants, of this
// process, and of the machine.
func takeCPUSnapshot(root int) (cpuSnapshot, error) {
	s := cpuSnapshot{procs: map[int]procTime{}}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return s, err
	}
	parent := map[int]int{}
	all := map[int]procTime{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		name, ppid, ticks, err := readStat(pid)
		if err != nil {
			continue
		}
		parent[pid] = ppid
		all[pid] = procTime{name, ticks}
	}
	if _, ok := all[root]; !ok {
		return s, fmt.Errorf("no process %d", root)
	}
	for pid, pt := range all {
		for p := pid; p > 0; p = parent[p] {
			if p == root {
				s.procs[pid] = pt
				break
			}
			if _, ok := parent[p]; !ok {
				break
			}
		}
	}
	_, _, s.self, _ = readStat(os.Getpid())
	s.busy, s.total, err = machineTicks()
	return s, err
}

// usage is the CPU time spent between a and b.
func usage(a, b cpuSnapshot) *CPUUsage {
	u := &CPUUsage{Processes: map[string]float64{}}
	for pid, pt := range b.procs {
		u.Processes[pt.name] += float64(pt.ticks-a.procs[pid].ticks) / userHZ
	}
	u.Generator = float64(b.self-a.self) / userHZ
	u.MachineBusy = float64(b.busy-a.busy) / userHZ
	u.MachineAvailable = float64(b.total-a.total) / userHZ
	return u
}

// readStat reads a process's name, parent and utime+stime from
// /proc/<pid>/stat.
func readStat(pid int) (name string, ppid int, ticks int64, err error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return "", 0, 0, err
	}
	s := string(b)
	open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return "", 0, 0, fmt.Errorf("/proc/%d/stat: no name", pid)
	}
	name = s[open+1 : closing]
	f := strings.Fields(s[closing+1:])
	// f[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return "", 0, 0, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	ppid, err1 := strconv.Atoi(f[1])
	u, err2 := strconv.ParseInt(f[11], 10, 64)
	st, err3 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return "", 0, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return name, ppid, u + st, nil
}

// machineTicks returns the busy and total ticks of all CPUs (/proc/stat).
func machineTicks() (busy, total int64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, errors.New("/proc/stat: no cpu line")
	}
	for i, v := range f[1:] {
		if i >= 8 { // guest and guest_nice are already in user and nice
			break
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, 0, err
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total, nil
}
