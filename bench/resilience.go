package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// BREAKER: initialize latency through vmcp over 5 backends, all healthy,
// then with one of them hung (SIGSTOP: the kernel still accepts its
// connections, nothing answers) once its circuit breaker has opened. The
// target is that the hung backend costs new sessions (almost) nothing.
//
// SOAK: sessions churn through vmcp for about two minutes (initialize,
// calls to every backend including a stdio child, DELETE, or abandonment
// to idle expiry), then vmcp's goroutines, open fds and children must be
// back at their baseline. It is opt-in: -scenarios SOAK.

const breakerInitTimeout = time.Second

func (r *runner) breakerScenario(ctx context.Context) error {
	const nb = 5
	bs, err := r.fleet.startExamples(r.bins.example, "k", nb, 0)
	defer stopAll(bs)
	if err != nil {
		return err
	}
	var y strings.Builder
	y.WriteString("backends:\n")
	for _, b := range bs {
		fmt.Fprintf(&y, "  - name: %s\n    transport: streamable-http\n    url: %s\n    timeout: 30s\n", b.nameOnly(), b.url)
	}
	fmt.Fprintf(&y, "session:\n  maxSessions: 5000\n  maxSessionsPerIdentity: 0\n  backendInitTimeout: %s\n", breakerInitTimeout)
	v, err := r.fleet.startVMCPYAML(ctx, r.bins.vmcp, r.tmp, r.opts.logLevel, y.String())
	if err != nil {
		return err
	}
	defer v.stop(10 * time.Second)
	n := 2 * r.size.initSamples
	watch := []watched{{"vmcp", v.pid()}}
	c := newMCPClient(v.url, 1)
	defer c.Close()

	measureInit(ctx, n, nil, openOne(c)) // warm-up: pools, code paths, the backends' own start
	healthy := measureInit(ctx, n, watch, openOne(c))

	hung := bs[nb-1]
	if err := syscall.Kill(hung.pid(), syscall.SIGSTOP); err != nil {
		return fmt.Errorf("stopping %s: %w", hung.name, err)
	}
	// Let it go before stopAll sends SIGTERM, or the stop would wait its
	// whole grace period.
	defer syscall.Kill(hung.pid(), syscall.SIGCONT)

	// Sessions pay the init timeout until the breaker opens.
	var opening []time.Duration
	var errs errLog
	for len(opening) < 20 {
		st, err := backendHealth(ctx, v.base, hung.nameOnly())
		if err != nil {
			return err
		}
		if st == "open" {
			break
		}
		s, took, err := c.initialize(ctx)
		if err != nil {
			errs.add(1, err)
			continue
		}
		opening = append(opening, took)
		if err := s.close(ctx); err != nil {
			errs.add(1, err)
		}
	}
	ready := httpStatus(ctx, v.base+"/readyz")
	open := measureInit(ctx, n, watch, openOne(c))
	after, err := backendHealth(ctx, v.base, hung.nameOnly())
	if err != nil {
		return err
	}

	var openingMean time.Duration
	for _, d := range opening {
		openingMean += d / time.Duration(len(opening))
	}
	rt := ratio(float64(open.p50), float64(healthy.p50))
	row := func(phase string, res initResult, rt string) []string {
		return []string{phase, fmt.Sprint(res.samples), fmt.Sprint(res.errors), fmtDur(res.p50), fmtDur(res.mean), fmtDur(res.p99), rt, fmtDur(res.cpu["vmcp"])}
	}
	rows := [][]string{
		row("5 healthy backends", healthy, "–"),
		{fmt.Sprintf("k4 hung, until its breaker opened (%d sessions)", len(opening)), fmt.Sprint(len(opening)), fmt.Sprint(errs.count()), "–", fmtDur(openingMean), "–", fmtRatio(ratio(float64(openingMean), float64(healthy.p50))), "–"},
		row("k4 hung, breaker open", open, fmtRatio(rt)),
	}
	r.rep.table("BREAKER: initialize latency with one of 5 backends hung", []string{"phase", "samples", "errors", "p50", "mean", "p99", "p50 ÷ healthy p50", "vmcp CPU/session"}, rows,
		fmt.Sprintf("Sequential sessions, each deleted after its initialize. The hung backend is SIGSTOPped: connections are accepted, nothing answers. "+
			"backendInitTimeout %s; breaker defaults (5 failures, 10 s cooldown). /readyz with the breaker open: HTTP %d. k4's breaker after the measurement: %s.",
			breakerInitTimeout, ready, after))
	for _, e := range append(errs.samples, append(healthy.errSamples, open.errSamples...)...) {
		r.rep.note("BREAKER error: %s", e)
	}
	r.rep.check(rt > 0 && rt <= 1.2 && healthy.errors == 0 && open.errors == 0 && after == "open", "BREAKER",
		"initialize p50 with one hung backend (breaker open) %s = %.3f× the all-healthy p50 %s; target ≤ 1.20×", fmtDur(open.p50), rt, fmtDur(healthy.p50))
	return nil
}

// backendHealth reads one backend's breaker state from vmcp's /status.
func backendHealth(ctx context.Context, base, name string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/status", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("GET /status: %w", err)
	}
	defer resp.Body.Close()
	var st struct {
		Gateway struct {
			Backends []struct {
				Name   string `json:"name"`
				Health struct {
					State string `json:"state"`
				} `json:"health"`
			} `json:"backends"`
		} `json:"gateway"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return "", fmt.Errorf("GET /status: %w", err)
	}
	for _, b := range st.Gateway.Backends {
		if b.Name == name {
			return b.Health.State, nil
		}
	}
	return "", fmt.Errorf("/status lists no backend %q", name)
}

func httpStatus(ctx context.Context, url string) int {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// soak sizes: sessions spread evenly over the duration.
func (r *runner) soakSize() (sessions int, over time.Duration) {
	if r.opts.quick {
		return 100, 10 * time.Second
	}
	return 1000, 100 * time.Second
}

func (r *runner) soakScenario(ctx context.Context) error {
	const conc, abandonEvery, idle = 32, 10, 3 * time.Second
	sessions, over := r.soakSize()
	bs, err := r.fleet.startExamples(r.bins.example, "w", 2, 0)
	defer stopAll(bs)
	if err != nil {
		return err
	}
	var y strings.Builder
	y.WriteString("backends:\n")
	fmt.Fprintf(&y, "  - name: w0\n    transport: streamable-http\n    url: %s\n    timeout: 30s\n    keepalive: {interval: 1s}\n", bs[0].url)
	fmt.Fprintf(&y, "  - name: w1\n    transport: streamable-http\n    url: %s\n    timeout: 30s\n", bs[1].url)
	fmt.Fprintf(&y, "  - name: st\n    transport: stdio\n    command: [%q, -transport, stdio, -name, st]\n    timeout: 30s\n", r.bins.example)
	fmt.Fprintf(&y, "session:\n  maxSessions: 5000\n  maxSessionsPerIdentity: 0\n  idleTimeout: %s\n", idle)
	v, err := r.fleet.startVMCPYAML(ctx, r.bins.vmcp, r.tmp, r.opts.logLevel, y.String())
	if err != nil {
		return err
	}
	defer v.stop(10 * time.Second)

	// Warm up with the same concurrency as the churn, so that connection
	// pools are as large before as after, then take the baseline.
	var warmErrs errLog
	churn(ctx, v.url, conc, conc, 0, 0, &warmErrs)
	if err := waitSessions(ctx, v.base, 0, 30*time.Second); err != nil {
		return err
	}
	// Longer than vmcp's idle timeout for pooled backend connections
	// (10 s), so that neither snapshot counts idle sockets.
	const settle = 15 * time.Second
	sleepCtx(ctx, settle)
	base, err := soakSnapshot(ctx, v)
	if err != nil {
		return err
	}

	var errs errLog
	start := time.Now()
	st := churn(ctx, v.url, sessions, conc, over/time.Duration(sessions), abandonEvery, &errs)
	took := time.Since(start)
	expired := waitSessions(ctx, v.base, 0, 30*time.Second)
	sleepCtx(ctx, settle)
	after, err := soakSnapshot(ctx, v)
	if err != nil {
		return err
	}

	gSlack, fSlack := max(base.goroutines/20, 10), max(base.fds/20, 10)
	rows := [][]string{
		{"sessions (DELETEd / abandoned to idle expiry)", fmt.Sprintf("%d (%d / %d) in %s, %d at a time", st.opened, st.opened-st.abandoned, st.abandoned, fmtDur(took), conc)},
		{"initialize p50 / max", fmt.Sprintf("%s / %s", fmtDur(st.initP50), fmtDur(st.initMax))},
		{"calls (echo on w0, w1, st; counter on st)", fmt.Sprint(st.calls)},
		{"errors", fmt.Sprint(errs.count())},
		{"vmcp goroutines: baseline / after", fmt.Sprintf("%d / %d", base.goroutines, after.goroutines)},
		{"vmcp open fds: baseline / after", fmt.Sprintf("%d / %d", base.fds, after.fds)},
		{"vmcp child processes: baseline / after", fmt.Sprintf("%d / %d", base.children, after.children)},
		{"vmcp RSS: baseline / after", fmt.Sprintf("%s / %s", fmtMiB(base.rss), fmtMiB(after.rss))},
	}
	r.rep.table("SOAK: sessions churning over 2 HTTP backends and a stdio backend", []string{"figure", "value"}, rows,
		fmt.Sprintf("Every %d-th session is abandoned without DELETE and expires after idleTimeout %s; w0 has keepalive every 1 s. "+
			"Baseline and after are each taken once no session is left and %s more have passed, the baseline after a warm-up of %d sessions. "+
			"Targets allow max(5%%, 10) for goroutines and fds: idle pooled connections come and go.", abandonEvery, idle, settle, conc))
	for _, e := range append(warmErrs.samples, errs.samples...) {
		r.rep.note("SOAK error: %s", e)
	}
	if expired != nil {
		r.rep.note("SOAK: %v", expired)
	}
	r.rep.check(errs.count() == 0 && st.opened == sessions && expired == nil, "SOAK errors", "%d errors, %d of %d sessions; target 0 errors and every session ended", errs.count(), st.opened, sessions)
	r.rep.check(after.goroutines <= base.goroutines+gSlack && after.fds <= base.fds+fSlack && after.children == base.children, "SOAK leaks",
		"goroutines %d → %d, fds %d → %d, children %d → %d; target back to baseline (+%d goroutines, +%d fds)",
		base.goroutines, after.goroutines, base.fds, after.fds, base.children, after.children, gSlack, fSlack)
	return nil
}

type soakStats struct {
	opened, abandoned, calls int
	initP50, initMax         time.Duration
}

// churn runs n sessions, at most conc at once, starting one every gap:
// each initializes, calls every backend, and is deleted, except every
// abandonEvery-th (when > 0), which is left to expire.
func churn(ctx context.Context, url string, n, conc int, gap time.Duration, abandonEvery int, errs *errLog) soakStats {
	c := newMCPClient(url, conc)
	defer c.Close()
	var st soakStats
	var mu sync.Mutex
	var inits []time.Duration
	texts := &counter{}
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	next := time.Now()
	for i := range n {
		if gap > 0 {
			sleepCtx(ctx, time.Until(next))
			next = next.Add(gap)
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			errs.add(1, ctx.Err())
			wg.Wait()
			return st
		}
		wg.Go(func() {
			defer func() { <-sem }()
			s, took, err := c.initialize(ctx)
			mu.Lock()
			inits = append(inits, took)
			mu.Unlock()
			if err != nil {
				errs.add(1, err)
				return
			}
			calls := 0
			for _, tool := range []string{"w0_echo", "w1_echo", "st_echo"} {
				calls++
				if err := s.echo(ctx, tool, texts.text()); err != nil {
					errs.add(1, err)
				}
			}
			calls++
			if _, err := s.call(ctx, "tools/call", []byte(`{"name":"st_counter","arguments":{}}`)); err != nil {
				errs.add(1, err)
			}
			abandon := abandonEvery > 0 && i%abandonEvery == abandonEvery-1
			if !abandon {
				if err := s.close(ctx); err != nil {
					errs.add(1, err)
				}
			}
			mu.Lock()
			st.opened++
			st.calls += calls
			if abandon {
				st.abandoned++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(inits)
	st.initP50, st.initMax = percentile(inits, 0.5), percentile(inits, 1)
	return st
}

// waitSessions waits until vmcp's /status counts want sessions.
func waitSessions(ctx context.Context, base string, want int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	last := -1
	for time.Now().Before(deadline) && ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/status", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			var st struct {
				Sessions int `json:"sessions"`
			}
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if err == nil {
				if last = st.Sessions; last == want {
					return nil
				}
			}
		}
		sleepCtx(ctx, 100*time.Millisecond)
	}
	return fmt.Errorf("%d sessions still live after %v, want %d", last, limit, want)
}

type soakSnap struct {
	goroutines, fds, children int
	rss                       int64
}

func soakSnapshot(ctx context.Context, v *vmcpProc) (soakSnap, error) {
	var s soakSnap
	g, err1 := promGauges(ctx, v.metricsBase(), "go_goroutines")
	s.goroutines = int(g["go_goroutines"])
	var err2, err3 error
	s.fds, err2 = openFDs(v.pid())
	mem, err3 := readMem(v.pid())
	s.rss = mem.RSS
	s.children = childCount(v.pid())
	if err := errors.Join(err1, err2, err3); err != nil {
		return s, fmt.Errorf("reading vmcp's resources: %w", err)
	}
	return s, nil
}

// childCount counts pid's child processes over all its threads.
func childCount(pid int) int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	n := 0
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err == nil {
			n += len(strings.Fields(string(b)))
		}
	}
	return n
}
