package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// watched is a process whose CPU and resident memory the load test
// measures from /proc over the window.
type watched struct {
	name        string
	pid         int
	first, last procSample
	rss         []float64 // MB, one per sample
	peak        float64   // MB
	cpuPct      float64   // of one core, over the window
}

type procSample struct {
	rssKB int64
	ticks int64 // utime + stime
	at    time.Time
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

func (w *watched) begin() (err error) {
	w.first, err = readProc(w.pid)
	return err
}

func (w *watched) sample() {
	s, err := readProc(w.pid)
	if err != nil {
		return
	}
	mb := float64(s.rssKB) / 1024
	w.rss = append(w.rss, mb)
	w.peak = max(w.peak, mb)
	w.last = s
}

func (w *watched) end() error {
	s, err := readProc(w.pid)
	if err != nil {
		return fmt.Errorf("%s: %w", w.name, err)
	}
	w.last = s
	w.cpuPct = float64(s.ticks-w.first.ticks) / clockTicks / s.at.Sub(w.first.at).Seconds() * 100
	return nil
}

// readProc reads VmRSS from /proc/PID/status and utime+stime from
// /proc/PID/stat.
func readProc(pid int) (procSample, error) {
	s := procSample{at: time.Now()}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	sc := bufio.NewScanner(bytes.NewReader(st))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			if f := strings.Fields(v); len(f) > 0 {
				s.rssKB, _ = strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	s.ticks, err = parseStatTicks(stat)
	return s, err
}

// parseStatTicks returns utime+stime (fields 14 and 15) of a
// /proc/PID/stat line; the command name in parentheses may hold spaces.
func parseStatTicks(stat []byte) (int64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 > len(stat) {
		return 0, fmt.Errorf("proc stat: no command name")
	}
	f := strings.Fields(string(stat[i+2:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("proc stat: %d fields after the name", len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("proc stat: utime %q stime %q", f[11], f[12])
	}
	return ut + st, nil
}
