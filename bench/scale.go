package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// nameOnly is the backend's -name, the last path element of its process
// name ("backend i3" -> "i3").
func (b *backendProc) nameOnly() string { return b.name[strings.LastIndexByte(b.name, ' ')+1:] }

func stopAll(bs []*backendProc) {
	var wg sync.WaitGroup
	for _, b := range bs {
		if b != nil {
			wg.Go(func() { b.stop(5 * time.Second) })
		}
	}
	wg.Wait()
}

// snapshot is vmcp's resource use at one moment.
type snapshot struct {
	mem        memInfo
	goroutines int
	heapInuse  int64         // go_memstats_heap_inuse_bytes
	heapIdle   int64         // heap pages free but not yet returned to the OS
	sinceGC    time.Duration // since vmcp's last GC ended
	runtimeSys runtimeMem
	fds        int
	sockets    map[int]int // ESTABLISHED connections to each backend port
}

// runtimeMem is what the Go runtime holds besides the heap: span, GC and
// other metadata, which it never returns to the OS and which grows with
// the peak heap, and goroutine stacks.
type runtimeMem struct{ mspan, gc, other, stack int64 }

func (m runtimeMem) total() int64 { return m.mspan + m.gc + m.other + m.stack }

func (m runtimeMem) minus(b runtimeMem) runtimeMem {
	return runtimeMem{m.mspan - b.mspan, m.gc - b.gc, m.other - b.other, m.stack - b.stack}
}

func (m runtimeMem) signed() string {
	return fmt.Sprintf("%s / %s / %s / %s", fmtMiBSigned(m.mspan), fmtMiBSigned(m.gc), fmtMiBSigned(m.other), fmtMiBSigned(m.stack))
}

func takeSnapshot(ctx context.Context, v *vmcpProc, ports []int) (snapshot, error) {
	var s snapshot
	var err1, err2, err3, err4 error
	s.mem, err1 = readMem(v.pid())
	g, err2 := promGauges(ctx, v.metricsBase(), "go_goroutines", "go_memstats_heap_inuse_bytes", "go_memstats_mspan_sys_bytes",
		"go_memstats_gc_sys_bytes", "go_memstats_other_sys_bytes", "go_memstats_stack_inuse_bytes",
		"go_memstats_heap_idle_bytes", "go_memstats_heap_released_bytes", "go_memstats_last_gc_time_seconds")
	s.sinceGC = time.Since(time.Unix(0, int64(g["go_memstats_last_gc_time_seconds"]*1e9))).Round(100 * time.Millisecond)
	s.heapIdle = int64(g["go_memstats_heap_idle_bytes"] - g["go_memstats_heap_released_bytes"])
	s.goroutines, s.heapInuse = int(g["go_goroutines"]), int64(g["go_memstats_heap_inuse_bytes"])
	s.runtimeSys = runtimeMem{mspan: int64(g["go_memstats_mspan_sys_bytes"]), gc: int64(g["go_memstats_gc_sys_bytes"]),
		other: int64(g["go_memstats_other_sys_bytes"]), stack: int64(g["go_memstats_stack_inuse_bytes"])}
	s.fds, err3 = openFDs(v.pid())
	s.sockets, err4 = establishedTo(v.pid(), ports)
	for _, err := range []error{err1, err2, err3, err4} {
		if err != nil {
			return s, fmt.Errorf("reading vmcp's resources: %w", err)
		}
	}
	return s, nil
}

// socketPeak samples vmcp's sockets to each backend every interval until
// stopped, keeping the maximum per port.
type socketPeak struct {
	mu   sync.Mutex
	max  map[int]int
	stop context.CancelFunc
	done chan struct{}
}

func watchSockets(ctx context.Context, pid int, ports []int, every time.Duration) *socketPeak {
	ctx, cancel := context.WithCancel(ctx)
	p := &socketPeak{max: map[int]int{}, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if m, err := establishedTo(pid, ports); err == nil {
				p.mu.Lock()
				for k, n := range m {
					p.max[k] = max(p.max[k], n)
				}
				p.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return p
}

// result stops the sampler and returns the peak per port.
func (p *socketPeak) result() map[int]int {
	p.stop()
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.max
}

// scaleScenario holds many sessions over 10 backends at once, calls
// through all of them, deletes them and checks what vmcp gives back.
func (r *runner) scaleScenario(ctx context.Context) error {
	const nb, conc = 10, 32
	n, calls := r.size.scaleSessions, r.size.scaleCalls
	bs, err := r.fleet.startExamples(r.bins.example, "s", nb, 0)
	defer stopAll(bs)
	if err != nil {
		return err
	}
	cfg := &vmcpConfig{maxSessions: max(5000, 2*n), initConcurrency: r.opts.initConcurrency, pprof: r.opts.heapprofile != ""}
	ports := make([]int, nb)
	for i, b := range bs {
		cfg.add(b.nameOnly(), b.url)
		ports[i] = b.port
	}
	v, err := r.fleet.startVMCP(ctx, r.bins.vmcp, r.tmp, r.opts.logLevel, cfg)
	if err != nil {
		return err
	}
	defer v.stop(10 * time.Second)
	tool := func(k int) string { return fmt.Sprintf("s%d_echo", k) }
	if _, err := findTool(ctx, v.url, tool(nb-1), ""); err != nil {
		return fmt.Errorf("vmcp: %w", err)
	}

	// Warm up (a few sessions through every backend), then take the baseline.
	var warmErrs errLog
	scaleCalls(ctx, v.url, 10, nb, nb, conc, tool, &warmErrs, nil)
	sleepCtx(ctx, time.Second)
	base, err := takeSnapshot(ctx, v, ports)
	if err != nil {
		return err
	}
	// With -heapprofile-vmcp, the profiles' forced GCs also tell live
	// memory from garbage a quiet process has not collected yet: the
	// heap in use is read again right after each.
	var baseGC, afterGC int64
	if r.opts.heapprofile != "" {
		baseGC = r.heapAfterGC(ctx, v, r.opts.heapprofile+".base")
	}

	peak := watchSockets(ctx, v.pid(), ports, 200*time.Millisecond)
	var errs errLog
	var open snapshot
	var openErr error
	var usePeak map[int]int
	st := scaleCalls(ctx, v.url, n, nb, calls, conc, tool, &errs, func() {
		open, openErr = takeSnapshot(ctx, v, ports)
		if r.opts.heapprofile != "" { // also with every session open, after the snapshot
			if err := fetchPprof(ctx, v.admin, "heap?gc=1", 15*time.Second, r.opts.heapprofile+".open"); err != nil {
				r.rep.note("heap profile with all sessions open: %v", err)
			}
		}
		usePeak = peak.result()
		peak = watchSockets(ctx, v.pid(), ports, 200*time.Millisecond)
	})
	deletePeak := peak.result()
	if openErr != nil {
		return openErr
	}
	after, err := takeSnapshot(ctx, v, ports)
	if err != nil {
		return err
	}
	sleepCtx(ctx, r.opts.settle)
	settled, err := takeSnapshot(ctx, v, ports)
	if err != nil {
		return err
	}
	// A second, identical burst tells a leak from memory the Go runtime
	// keeps once it has grown (span structures, GC metadata, thread stacks
	// sized by the peak): a leak grows again, kept memory is reused.
	var errs2 errLog
	scaleCalls(ctx, v.url, n, nb, calls, conc, tool, &errs2, nil)
	sleepCtx(ctx, r.opts.settle)
	again, err := takeSnapshot(ctx, v, ports)
	if err != nil {
		return err
	}
	if r.opts.heapprofile != "" {
		if afterGC = r.heapAfterGC(ctx, v, r.opts.heapprofile); afterGC > 0 {
			fmt.Fprintf(r.log, "bench: wrote vmcp heap profile to %s (go tool pprof -sample_index=inuse_space -top %s; -diff_base %s.base)\n",
				r.opts.heapprofile, r.opts.heapprofile, r.opts.heapprofile)
		}
	}

	worst := 0
	perBackend := func(m map[int]int) string {
		out := make([]string, nb)
		for i, p := range ports {
			worst = max(worst, m[p])
			out[i] = fmt.Sprintf("s%d %d", i, m[p])
		}
		return strings.Join(out, ", ")
	}
	rssRatio := ratio(float64(settled.mem.RSS), float64(base.mem.RSS))
	r.figure("SCALE peak RSS", float64(after.mem.Peak)/(1<<20))
	r.figure("SCALE RSS after", rssRatio)
	rows := [][]string{
		{"sessions × backends, calls per session", fmt.Sprintf("%d × %d, %d", n, nb, calls)},
		{"errors (initialize, calls, DELETE): first / second burst", fmt.Sprintf("%d / %d", errs.count(), errs2.count())},
		{"sessions opened / time", fmt.Sprintf("%d in %s (%d at a time, %.0f/s)", st.opened, fmtDur(st.openTime), conc, float64(st.opened)/st.openTime.Seconds())},
		{"calls (all sessions at once) / time", fmt.Sprintf("%d in %s (%.0f calls/s)", st.calls, fmtDur(st.callTime), float64(st.calls)/st.callTime.Seconds())},
		{"sessions deleted / time", fmt.Sprintf("%d in %s", st.opened, fmtDur(st.closeTime))},
		{"vmcp RSS baseline", fmtMiB(base.mem.RSS)},
		{"vmcp RSS with all sessions open", fmtMiB(open.mem.RSS)},
		{"vmcp peak RSS (VmHWM)", fmtMiB(after.mem.Peak)},
		{fmt.Sprintf("vmcp RSS %v after the last DELETE", r.opts.settle), fmt.Sprintf("%s (%s baseline)", fmtMiB(settled.mem.RSS), fmtRatio(rssRatio))},
		{"ESTABLISHED sockets vmcp→backend, peak per backend while opening and calling", perBackend(usePeak)},
		{"ESTABLISHED sockets vmcp→backend, peak per backend while deleting", perBackend(deletePeak)},
		{"ESTABLISHED sockets vmcp→backend, all sessions open", fmt.Sprint(sum(open.sockets))},
		{fmt.Sprintf("ESTABLISHED sockets vmcp→backend, %v after", r.opts.settle), fmt.Sprint(sum(settled.sockets))},
		{"vmcp Go heap in use: baseline / open / after", fmt.Sprintf("%s / %s / %s", fmtMiB(base.heapInuse), fmtMiB(open.heapInuse), fmtMiB(settled.heapInuse))},
		{"vmcp Go runtime metadata and stacks (mspan, GC, other, stack bytes): baseline / open / after", fmt.Sprintf("%s / %s / %s", fmtMiB(base.runtimeSys.total()), fmtMiB(open.runtimeSys.total()), fmtMiB(settled.runtimeSys.total()))},
		{"of those, mspan / GC / other / stacks: open − baseline; after − baseline", fmt.Sprintf("%s; %s", open.runtimeSys.minus(base.runtimeSys).signed(), settled.runtimeSys.minus(base.runtimeSys).signed())},
		{"vmcp RSS of the binary's pages / Go heap free, not yet returned: baseline; open; after", fmt.Sprintf("%s / %s; %s / %s; %s / %s",
			fmtMiB(base.mem.File), fmtMiB(base.heapIdle), fmtMiB(open.mem.File), fmtMiB(open.heapIdle), fmtMiB(settled.mem.File), fmtMiB(settled.heapIdle))},
		{"vmcp's last GC, before the snapshot: baseline / open / after", fmt.Sprintf("%v / %v / %v", base.sinceGC, open.sinceGC, settled.sinceGC)},
		{"vmcp goroutines: baseline / open / after", fmt.Sprintf("%d / %d / %d", base.goroutines, open.goroutines, settled.goroutines)},
		{"vmcp open fds: baseline / open / after", fmt.Sprintf("%d / %d / %d", base.fds, open.fds, settled.fds)},
		{fmt.Sprintf("after a second, identical burst and %v: vmcp RSS / Go heap / runtime metadata and stacks / goroutines / fds", r.opts.settle),
			fmt.Sprintf("%s (%s the first burst's) / %s / %s / %d / %d", fmtMiB(again.mem.RSS), fmtRatio(ratio(float64(again.mem.RSS), float64(settled.mem.RSS))),
				fmtMiB(again.heapInuse), fmtMiB(again.runtimeSys.total()), again.goroutines, again.fds)},
	}
	if baseGC > 0 && afterGC > 0 {
		rows = append(rows, []string{"vmcp Go heap in use right after a forced GC (-heapprofile-vmcp): baseline / after the second burst",
			fmt.Sprintf("%s / %s (%s)", fmtMiB(baseGC), fmtMiB(afterGC), fmtMiBSigned(afterGC-baseGC))})
	}
	r.rep.table("SCALE: many concurrent sessions over 10 backends", []string{"figure", "value"}, rows,
		fmt.Sprintf("Sessions open %d at a time and are held open together; then every session makes %d echo calls, all sessions at once, "+
			"call j of session i going to backend (i+j) mod %d; then all are deleted. The baseline is taken after a warm-up of 10 sessions. "+
			"A second burst, the same as the first, then shows whether what stays after the first is reused or grows again. "+
			"Sockets are read from /proc/PID/fd and /proc/PID/net/tcp every 200 ms.", conc, calls, nb))
	for _, e := range slices.Concat(warmErrs.samples, errs.samples, errs2.samples) {
		r.rep.note("SCALE error: %s", e)
	}
	r.rep.check(errs.count()+errs2.count() == 0 && st.opened == n, "SCALE errors", "%d errors (two bursts), %d of %d sessions opened in the first; target 0 errors",
		errs.count()+errs2.count(), st.opened, n)
	r.rep.check(worst > 0 && worst <= r.opts.pool, "SCALE sockets", "at most %d ESTABLISHED sockets from vmcp to one backend; target ≤ pool size %d", worst, r.opts.pool)
	// The Go runtime never returns its span, GC and other metadata, which
	// grows with the peak heap: say how much of the difference that is.
	live := ""
	if baseGC > 0 && afterGC > 0 {
		live = fmt.Sprintf(" (right after a forced GC: %s)", fmtMiBSigned(afterGC-baseGC))
	}
	r.rep.check(rssRatio > 0 && rssRatio <= 1.10, "SCALE RSS", "RSS %v after the last DELETE %s vs baseline %s (%s); target ≤ 1.10×; "+
		"of the %s more, Go heap in use %s%s and runtime metadata and stacks %s",
		r.opts.settle, fmtMiB(settled.mem.RSS), fmtMiB(base.mem.RSS), fmtRatio(rssRatio),
		fmtMiB(settled.mem.RSS-base.mem.RSS), fmtMiBSigned(settled.heapInuse-base.heapInuse), live, fmtMiBSigned(settled.runtimeSys.total()-base.runtimeSys.total()))
	return nil
}

// scaleStats is what scaleCalls did.
type scaleStats struct {
	opened, calls                 int
	openTime, callTime, closeTime time.Duration
}

// scaleCalls opens n sessions (conc at a time), then has every session make
// calls echo calls at once, spreading them over nb backends, then calls
// whileOpen (if set) and deletes every session. Failures go to errs.
func scaleCalls(ctx context.Context, url string, n, nb, calls, conc int, tool func(int) string, errs *errLog, whileOpen func()) scaleStats {
	var st scaleStats
	c := newMCPClient(url, n)
	defer c.Close()
	texts := &counter{}
	t := time.Now()
	sessions := openSessions(ctx, c, n, conc, errs)
	st.openTime = time.Since(t)
	for _, s := range sessions {
		if s == nil {
			errs.add(1, errors.New("session not opened"))
		} else {
			st.opened++
		}
	}
	t = time.Now()
	var wg sync.WaitGroup
	for i, s := range sessions {
		if s == nil {
			continue
		}
		wg.Go(func() {
			for j := range calls {
				if err := s.echo(ctx, tool((i+j)%nb), texts.text()); err != nil {
					errs.add(1, err)
				}
			}
		})
		st.calls += calls
	}
	wg.Wait()
	st.callTime = time.Since(t)
	if whileOpen != nil {
		whileOpen()
	}
	t = time.Now()
	closeSessions(ctx, sessions, conc, errs)
	st.closeTime = time.Since(t)
	return st
}

func sum(m map[int]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// sleepCtx sleeps for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// heapAfterGC saves vmcp's heap profile to path (the profile handler runs a
// GC first) and returns the Go heap in use right after, or 0 after noting
// why it could not.
func (r *runner) heapAfterGC(ctx context.Context, v *vmcpProc, path string) int64 {
	if err := fetchPprof(ctx, v.admin, "heap?gc=1", 15*time.Second, path); err != nil {
		r.rep.note("heap profile %s: %v", path, err)
		return 0
	}
	g, err := promGauges(ctx, v.metricsBase(), "go_memstats_heap_inuse_bytes")
	if err != nil {
		r.rep.note("heap in use after %s: %v", path, err)
		return 0
	}
	return int64(g["go_memstats_heap_inuse_bytes"])
}
