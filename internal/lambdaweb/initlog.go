package lambdaweb

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every
// Linux architecture Lambda runs (x86_64, arm64).
const clockTicks = 100

// LogInit logs the cold start's "init" line once initialization is done:
// init_ms is the time since the process started (the Go runtime and every
// package's initialization included; 10 ms resolution, from /proc), and
// main_ms the time since mainStart, main's first statement. Without /proc
// init_ms is left out.
func LogInit(ctx context.Context, log *slog.Logger, mainStart time.Time) {
	attrs := []slog.Attr{slog.Int64("main_ms", time.Since(mainStart).Milliseconds())}
	if up, err := processUptime(); err == nil {
		attrs = append(attrs, slog.Int64("init_ms", up.Milliseconds()))
	} else {
		attrs = append(attrs, slog.String("init_ms_unavailable", err.Error()))
	}
	log.LogAttrs(ctx, slog.LevelInfo, "init", attrs...)
}

// processUptime is how long ago this process started: the system's uptime
// minus the process's start time after boot.
func processUptime() (time.Duration, error) {
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, err
	}
	up, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0, err
	}
	return uptimeFrom(string(stat), string(up))
}

// uptimeFrom computes processUptime from the two files' contents.
func uptimeFrom(stat, uptime string) (time.Duration, error) {
	// The command name (field 2) may hold spaces and parentheses: count
	// fields from the last ')'. starttime is field 22, the 20th after it.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("/proc/self/stat: no command name")
	}
	fields := strings.Fields(stat[i+1:])
	if len(fields) < 20 {
		return 0, errors.New("/proc/self/stat: too few fields")
	}
	ticks, err := strconv.ParseInt(fields[19], 10, 64)
	if err != nil {
		return 0, err
	}
	f := strings.Fields(uptime)
	if len(f) == 0 {
		return 0, errors.New("/proc/uptime: empty")
	}
	secs, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0, err
	}
	d := time.Duration(secs*float64(time.Second)) - time.Duration(ticks)*time.Second/clockTicks
	return max(d, 0), nil
}
