package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. It
// is 100 on every Linux architecture Go supports.
const clockTicks = 100

// cpuTime returns a process's user and system CPU time, all threads
// included.
func cpuTime(pid int) (user, sys time.Duration, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) may hold spaces; fields are counted from
	// the closing parenthesis.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, errors.New("malformed /proc/PID/stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, 0, errors.New("short /proc/PID/stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("parsing /proc/PID/stat: %w", err)
	}
	return time.Duration(ut) * time.Second / clockTicks, time.Duration(st) * time.Second / clockTicks, nil
}

// selfCPU returns this process's user+system CPU time from getrusage, with
// microsecond resolution.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// memInfo is a process's resident memory from /proc/PID/status.
type memInfo struct {
	RSS  int64 // VmRSS, bytes
	Peak int64 // VmHWM, peak RSS since the process started, bytes
	File int64 // RssFile: pages of the binary and other files, bytes
}

func readMem(pid int) (memInfo, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memInfo{}, err
	}
	defer f.Close()
	var m memInfo
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch k {
		case "VmRSS":
			m.RSS = parseKB(v)
		case "VmHWM":
			m.Peak = parseKB(v)
		case "RssFile":
			m.File = parseKB(v)
		}
	}
	if m.RSS == 0 {
		return m, errors.New("no VmRSS in /proc/PID/status")
	}
	return m, sc.Err()
}

func parseKB(v string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
	return n << 10
}

// establishedTo counts the ESTABLISHED TCP connections owned by pid whose
// remote port is one of ports, per port. Sockets are matched to the process
// by inode, from /proc/PID/fd; connections come from /proc/PID/net/tcp{,6}.
//
// Each socket is counted once, by inode: the kernel produces
// /proc/net/tcp a page per read while connections come and go, so under
// churn one connection can appear twice in a single reading (an earlier
// version of this count reported 158 sockets to a backend while ss(8)
// never saw more than 65).
func establishedTo(pid int, ports []int) (map[int]int, error) {
	inodes, err := socketInodes(pid)
	if err != nil {
		return nil, err
	}
	want := make(map[int]bool, len(ports))
	for _, p := range ports {
		want[p] = true
	}
	seen := make(map[string]bool)
	out := make(map[int]int, len(ports))
	for _, name := range []string{"tcp", "tcp6"} {
		if err := scanTCP(fmt.Sprintf("/proc/%d/net/%s", pid, name), func(remPort int, state, inode string) {
			if state == "01" && want[remPort] && inodes[inode] && !seen[inode] {
				seen[inode] = true
				out[remPort]++
			}
		}); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	return out, nil
}

// openFDs counts a process's open file descriptors.
func openFDs(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents), err
}

func socketInodes(pid int) (map[string]bool, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	inodes := make(map[string]bool, len(ents))
	for _, e := range ents {
		l, err := os.Readlink(dir + "/" + e.Name())
		if err != nil {
			continue // closed meanwhile
		}
		if s, ok := strings.CutPrefix(l, "socket:["); ok {
			inodes[strings.TrimSuffix(s, "]")] = true
		}
	}
	return inodes, nil
}

// scanTCP calls fn for each connection in a /proc/net/tcp-format file.
func scanTCP(path string, fn func(remPort int, state, inode string)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		fs := strings.Fields(sc.Text())
		if len(fs) < 10 {
			continue
		}
		_, portHex, ok := strings.Cut(fs[2], ":")
		if !ok {
			continue
		}
		pb, err := hex.DecodeString(portHex)
		if err != nil || len(pb) != 2 {
			continue
		}
		fn(int(pb[0])<<8|int(pb[1]), fs[3], fs[9])
	}
	return sc.Err()
}

// promGauges reads the named unlabelled series from a Prometheus /metrics
// endpoint, such as go_goroutines. A missing series is an error.
func promGauges(ctx context.Context, base string, names ...string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: HTTP %d", resp.StatusCode)
	}
	out := make(map[string]float64, len(names))
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 8<<20))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || !slices.Contains(names, name) {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return nil, fmt.Errorf("/metrics %s: %w", name, err)
		}
		out[name] = f
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			return nil, fmt.Errorf("no %s in /metrics", n)
		}
	}
	return out, nil
}
