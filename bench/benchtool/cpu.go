package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc (USER_HZ, 100 on Linux).
const userHZ = 100

// cpuFile is what `benchtool cpu` writes: CPU seconds spent during one
// command by each process of the stack, by the command itself, and by the
// whole machine (so that other load on a shared machine shows).
type cpuFile struct {
	WallS      float64            `json:"wall_s"`
	Processes  map[string]float64 `json:"processes_cpu_s"`
	CommandS   float64            `json:"command_cpu_s"`
	MachineS   float64            `json:"machine_busy_cpu_s"`
	MachineMax float64            `json:"machine_cpu_s_available"`
}

// cpu runs a command and records the CPU time every process under --pid
// used meanwhile.
func cpu(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cpu", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pid := fs.Int("pid", 0, "root process of the stack")
	out := fs.String("out", "", "write the CPU breakdown (JSON) to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *pid <= 0 || *out == "" || fs.NArg() == 0 {
		return errors.New("cpu needs --pid, --out and a command after --")
	}
	before, err := treeCPU(*pid)
	if err != nil {
		return err
	}
	busy0, total0, err := machineCPU()
	if err != nil {
		return err
	}
	start := time.Now()
	cmd := exec.Command(fs.Arg(0), fs.Args()[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	runErr := cmd.Run()
	wall := time.Since(start)
	after, err := treeCPU(*pid)
	if err != nil {
		return err
	}
	busy1, total1, err := machineCPU()
	if err != nil {
		return err
	}
	res := cpuFile{WallS: wall.Seconds(), Processes: map[string]float64{}}
	for k, v := range after {
		res.Processes[k.name] += float64(v-before[k]) / userHZ
	}
	if ps := cmd.ProcessState; ps != nil {
		res.CommandS = (ps.UserTime() + ps.SystemTime()).Seconds()
	}
	res.MachineS = float64(busy1-busy0) / userHZ
	res.MachineMax = float64(total1-total0) / userHZ
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return runErr
}

type procKey struct {
	pid  int
	name string
}

// treeCPU returns utime+stime (ticks) of root and its descendants.
func treeCPU(root int) (map[procKey]int64, error) {
	procs, err := tree(root)
	if err != nil {
		return nil, err
	}
	out := map[procKey]int64{}
	for _, p := range procs {
		t, err := procTicks(p.PID)
		if err != nil {
			continue
		}
		out[procKey{p.PID, p.Name}] = t
	}
	return out, nil
}

func procTicks(pid int) (int64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after ")" are fixed.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad times", pid)
	}
	return u + st, nil
}

// machineCPU returns the busy and total ticks of all CPUs from /proc/stat.
func machineCPU() (busy, total int64, err error) {
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
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, 0, err
		}
		// guest and guest_nice (i >= 8) are already counted in user and nice.
		if i >= 8 {
			continue
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total, nil
}

// cpuLine formats a breakdown, largest first.
func cpuLine(c *cpuFile) string {
	type kv struct {
		k string
		v float64
	}
	var kvs []kv
	var stack float64
	for k, v := range c.Processes {
		kvs = append(kvs, kv{k, v})
		stack += v
	}
	sort.Slice(kvs, func(i, j int) bool { return kvs[i].v > kvs[j].v })
	var parts []string
	for _, e := range kvs {
		parts = append(parts, fmt.Sprintf("%s %.2f", e.k, e.v))
	}
	other := c.MachineS - stack - c.CommandS
	return fmt.Sprintf("%s; loadgen %.2f; other processes %.2f (of %.2f CPU-s available in %.1f s)",
		strings.Join(parts, ", "), c.CommandS, max(other, 0), c.MachineMax, c.WallS)
}
