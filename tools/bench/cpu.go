package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// cpuSnapshot is the CPU time used so far by each party of a run.
type cpuSnapshot struct {
	gateway  procUsage
	postgres map[int]time.Duration // by pid, every process named postgres
	bench    time.Duration         // this process: subscribers, writers, floor
	busy     time.Duration         // the whole machine, all cores, not idle
}

// cpuUsage is the CPU time each party used between two snapshots.
type cpuUsage struct {
	gateway, postgres, bench, machine time.Duration
}

// other is the busy time of the machine not used by the gateway, Postgres
// or the bench: other processes and kernel threads.
func (u cpuUsage) other() time.Duration {
	return max(u.machine-u.gateway-u.postgres-u.bench, 0)
}

// snapshotCPU reads the CPU times; gw may be nil (no gateway running).
func snapshotCPU(gw gateway) (cpuSnapshot, bool, error) {
	var s cpuSnapshot
	measured := false
	if gw != nil {
		var err error
		if s.gateway, measured, err = gw.usage(); err != nil {
			return s, false, err
		}
	}
	self, err := readProcUsage(os.Getpid())
	if err != nil {
		return s, false, err
	}
	s.bench = self.cpu
	if s.postgres, err = postgresCPU(); err != nil {
		return s, false, err
	}
	if s.busy, err = machineBusy(); err != nil {
		return s, false, err
	}
	return s, measured, nil
}

func (s cpuSnapshot) since(prev cpuSnapshot) cpuUsage {
	var pg time.Duration
	for pid, cpu := range s.postgres {
		pg += cpu - prev.postgres[pid]
	}
	return cpuUsage{
		gateway:  s.gateway.cpu - prev.gateway.cpu,
		postgres: pg,
		bench:    s.bench - prev.bench,
		machine:  s.busy - prev.busy,
	}
}

// postgresCPU reads the CPU time of every running process named postgres
// (the server and its backends), by pid. Backends that exit between two
// snapshots are missed; the benchmark's connections live through a run.
func postgresCPU() (map[int]time.Duration, error) {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return nil, err
	}
	byPID := make(map[int]time.Duration)
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil || !bytes.Contains(b, []byte("(postgres)")) {
			continue // gone, or not Postgres
		}
		cpu, err := parseStatCPU(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(path)))
		byPID[pid] = cpu
	}
	return byPID, nil
}

// parseStatCPU reads utime + stime from the contents of /proc/pid/stat.
func parseStatCPU(stat []byte) (time.Duration, error) {
	// Fields after the command name (which may hold spaces) start at ") ".
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected stat %q", stat)
	}
	fields := strings.Fields(string(stat[i+1:]))
	// utime and stime are fields 14 and 15; fields[0] is field 3.
	if len(fields) < 13 {
		return 0, fmt.Errorf("unexpected stat %q", stat)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unexpected stat %q", stat)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// machineBusy is the CPU time of all cores that was not idle, from /proc/stat.
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, fmt.Errorf("unexpected /proc/stat line %q", line)
	}
	var busy int64
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("unexpected /proc/stat line %q", line)
		}
		// user nice system idle iowait irq softirq steal guest guest_nice:
		// idle and iowait are not busy; guest time is already in user.
		if i != 3 && i != 4 && i < 8 {
			busy += n
		}
	}
	return time.Duration(busy) * time.Second / clockTicks, nil
}

// backgroundLoad measures how busy the machine is before the benchmark
// does anything, in cores (1 = one core fully busy).
func backgroundLoad(ctx context.Context, quick bool) (float64, error) {
	d := time.Second
	if quick {
		d = 200 * time.Millisecond
	}
	b0, err := machineBusy()
	if err != nil {
		return 0, err
	}
	start := time.Now()
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(d): // the measurement window
	}
	b1, err := machineBusy()
	if err != nil {
		return 0, err
	}
	return (b1 - b0).Seconds() / time.Since(start).Seconds(), nil
}
