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
	// Processes maps a process name to CPU seconds (user + system). The
	// processes of the tree that exited during the load (a restarted
	// service's old instance, a readiness probe) are under ExitedName: their
	// CPU is read from the reaping parent's cutime and cstime.
	Processes map[string]float64 `json:"processes_cpu_s"`
	// Generator is this process's CPU seconds.
	Generator float64 `json:"generator_cpu_s"`
	// MachineBusy is the CPU seconds all CPUs were busy, by anyone.
	MachineBusy float64 `json:"machine_busy_cpu_s"`
	// MachineAvailable is the CPU seconds all CPUs had (wall time × CPUs).
	MachineAvailable float64 `json:"machine_available_cpu_s"`
}

// ExitedName is the key of CPUUsage.Processes for the CPU time of the
// watched tree's processes that exited during the load.
const ExitedName = "(exited)"

// userHZ is the unit of CPU times in /proc (USER_HZ, 100 on Linux).
const userHZ = 100

// cpuSnapshot is one reading of /proc.
type cpuSnapshot struct {
	procs       map[int]procTime
	self        int64
	busy, total int64
}

// procTime is one process's CPU: its own (ticks) and that of the children
// it reaped (childTicks). start (the start time in ticks since boot) tells a
// process from a later one that reuses its pid.
type procTime struct {
	name              string
	start             int64
	ticks, childTicks int64
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
		st, err := readStat(pid)
		if err != nil {
			continue
		}
		parent[pid] = st.ppid
		all[pid] = st.procTime
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
	if st, err := readStat(os.Getpid()); err == nil {
		s.self = st.ticks
	}
	s.busy, s.total, err = machineTicks()
	return s, err
}

// usage is the CPU time spent between a and b. A process of b that was not
// in a (or whose pid was another process's in a) started during the load:
// all of its time counts. A process of a that is gone from b counts through
// its parent: when a process is reaped its whole CPU time (its own and its
// reaped children's) is added to its parent's cutime and cstime, so the
// growth of the tree's childTicks, less what the gone processes had used
// before a, is the CPU of the processes that exited in between, including
// those that started and exited between a and b (readiness probes).
func usage(a, b cpuSnapshot) *CPUUsage {
	u := &CPUUsage{Processes: map[string]float64{}}
	var exited int64
	for pid, pt := range b.procs {
		before, ok := a.procs[pid]
		if !ok || before.start != pt.start {
			before = procTime{}
		}
		u.Processes[pt.name] += float64(pt.ticks-before.ticks) / userHZ
		exited += pt.childTicks - before.childTicks
	}
	for pid, pt := range a.procs {
		if now, ok := b.procs[pid]; !ok || now.start != pt.start {
			exited -= pt.ticks + pt.childTicks
		}
	}
	// Negative when a gone process was reaped outside the tree (orphaned):
	// its time is then not known.
	if exited > 0 {
		u.Processes[ExitedName] = float64(exited) / userHZ
	}
	u.Generator = float64(b.self-a.self) / userHZ
	u.MachineBusy = float64(b.busy-a.busy) / userHZ
	u.MachineAvailable = float64(b.total-a.total) / userHZ
	return u
}

// stat is the part of /proc/<pid>/stat that usage needs.
type stat struct {
	procTime
	ppid int
}

// readStat reads a process's name, parent, start time, utime+stime and
// cutime+cstime from /proc/<pid>/stat.
func readStat(pid int) (stat, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return stat{}, err
	}
	return parseStat(pid, string(b))
}

func parseStat(pid int, s string) (stat, error) {
	open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return stat{}, fmt.Errorf("/proc/%d/stat: no name", pid)
	}
	f := strings.Fields(s[closing+1:])
	// f[0] is field 3 (state): ppid is field 4, utime 14, stime 15, cutime
	// 16, cstime 17, starttime 22.
	if len(f) < 20 {
		return stat{}, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	var errs []error
	num := func(i int) int64 {
		n, err := strconv.ParseInt(f[i], 10, 64)
		errs = append(errs, err)
		return n
	}
	st := stat{ppid: int(num(1))}
	st.name = s[open+1 : closing]
	st.ticks = num(11) + num(12)
	st.childTicks = num(13) + num(14)
	st.start = num(19)
	if err := errors.Join(errs...); err != nil {
		return stat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return st, nil
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
