package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// watched is a process whose CPU time a load run charges to its calls.
type watched struct {
	label string
	pid   int
}

// loadSpec describes one closed-loop run: sessions concurrent sessions, each
// making calls sequential echo calls through tool.
type loadSpec struct {
	url      string
	tool     string
	sessions int
	calls    int
	warmup   int       // untimed calls per session before measuring
	listen   bool      // open each session's standalone GET stream
	tokens   []string  // bearer tokens, session i sending tokens[i%len]; none: no Authorization
	watch    []watched // CPU is sampled around the timed phase
	// during, if set, runs alongside the timed phase (the CPU profile).
	during func(ctx context.Context)
}

// loadResult is what one run measured.
type loadResult struct {
	calls, errors int
	wall          time.Duration
	p50, p99      time.Duration
	cpu           map[string]time.Duration // by watched label, plus "generator"
	errSamples    []string
}

func (r *loadResult) rate() float64 {
	if r.wall <= 0 {
		return 0
	}
	return float64(r.calls-r.errors) / r.wall.Seconds()
}

// cpuPerCall is label's CPU time per call in the timed phase.
func (r *loadResult) cpuPerCall(label string) time.Duration {
	if r.calls == 0 {
		return 0
	}
	return r.cpu[label] / time.Duration(r.calls)
}

// errLog collects error counts and the first few messages. Safe for
// concurrent use.
type errLog struct {
	mu      sync.Mutex
	n       int
	samples []string
}

func (e *errLog) add(n int, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.n += n
	if len(e.samples) < 5 {
		e.samples = append(e.samples, err.Error())
	}
}

func (e *errLog) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.n
}

// runLoad runs spec. Sessions are opened (and warmed up) before the clock
// starts and deleted after it stops, so the figures cover calls only.
func runLoad(ctx context.Context, spec loadSpec) loadResult {
	c := newMCPClient(spec.url, spec.sessions)
	c.listen = spec.listen
	for _, tok := range spec.tokens {
		c.auths = append(c.auths, "Bearer "+tok)
	}
	defer c.Close()
	var errs errLog
	texts := &counter{}

	sessions := openSessions(ctx, c, spec.sessions, 16, &errs)
	for _, s := range sessions {
		if s == nil {
			errs.add(spec.calls, fmt.Errorf("session not opened, %d calls not made", spec.calls))
		}
	}
	parallel(sessions, func(s *mcpSession) {
		for range spec.warmup {
			if err := s.echo(ctx, spec.tool, texts.text()); err != nil {
				errs.add(0, fmt.Errorf("warm-up: %w", err)) // reported, not counted as a timed error
				return
			}
		}
	})

	before := sampleCPU(spec.watch)
	var profDone chan struct{}
	pctx, stopProf := context.WithCancel(ctx)
	defer stopProf()
	if spec.during != nil {
		profDone = make(chan struct{})
		go func() { defer close(profDone); spec.during(pctx) }()
	}
	lat := make([][]time.Duration, len(sessions))
	start := time.Now()
	var wg sync.WaitGroup
	for i, s := range sessions {
		if s == nil {
			continue
		}
		wg.Go(func() {
			lat[i] = timedCalls(ctx, spec.calls, &errs, func(int) error { return s.echo(ctx, spec.tool, texts.text()) })
		})
	}
	wg.Wait()
	wall := time.Since(start)
	after := sampleCPU(spec.watch)
	if profDone != nil {
		<-profDone
	}

	closeSessions(ctx, sessions, 16, &errs)
	return summarize(spec.sessions*spec.calls, &errs, wall, lat, before, after)
}

// timedCalls makes n sequential calls, call(j) being the jth, and returns
// their latencies; each failed call, or each left unmade because ctx
// ended, counts in errs.
func timedCalls(ctx context.Context, n int, errs *errLog, call func(j int) error) []time.Duration {
	l := make([]time.Duration, 0, n)
	for j := range n {
		if ctx.Err() != nil {
			errs.add(1, ctx.Err())
			continue
		}
		t := time.Now()
		err := call(j)
		l = append(l, time.Since(t))
		if err != nil {
			errs.add(1, err)
		}
	}
	return l
}

// summarize is the loadResult of calls timed calls that took wall, with
// each session's latencies in lat and the watched CPU sampled before and
// after.
func summarize(calls int, errs *errLog, wall time.Duration, lat [][]time.Duration, before, after map[string]time.Duration) loadResult {
	all := slices.Concat(lat...)
	slices.Sort(all)
	res := loadResult{
		calls:      calls,
		errors:     errs.count(),
		wall:       wall,
		p50:        percentile(all, 0.50),
		p99:        percentile(all, 0.99),
		cpu:        map[string]time.Duration{},
		errSamples: errs.samples,
	}
	for k, v := range after {
		res.cpu[k] = v - before[k]
	}
	return res
}

// sampleCPU reads the CPU time of each watched process and of the
// generator itself. Processes with the same label are summed; label+sysSuffix
// holds the system (kernel) part of label's.
func sampleCPU(ws []watched) map[string]time.Duration {
	m := map[string]time.Duration{"generator": selfCPU()}
	for _, w := range ws {
		u, s, err := cpuTime(w.pid)
		if err == nil {
			m[w.label] += u + s
			m[w.label+sysSuffix] += s
		}
	}
	return m
}

// sysSuffix marks, in sampleCPU's map, a label's system CPU time.
const sysSuffix = " (system)"

// openSessions opens n sessions, at most conc at a time. A session that
// failed to open is nil in the result and its error is logged.
func openSessions(ctx context.Context, c *mcpClient, n, conc int, errs *errLog) []*mcpSession {
	out := make([]*mcpSession, n)
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	bounded(idx, conc, func(i int) {
		auth := c.auth
		if len(c.auths) > 0 {
			auth = c.auths[i%len(c.auths)]
		}
		s, _, err := c.initializeAs(ctx, auth)
		if err != nil {
			errs.add(0, err)
			return
		}
		out[i] = s
	})
	return out
}

// closeSessions deletes every open session, at most conc at a time. A failed
// DELETE counts as an error.
func closeSessions(ctx context.Context, sessions []*mcpSession, conc int, errs *errLog) {
	bounded(sessions, conc, func(s *mcpSession) {
		if s == nil {
			return
		}
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := s.close(dctx); err != nil {
			errs.add(1, err)
		}
	})
}

// parallel runs fn once per non-nil session, all at once.
func parallel(sessions []*mcpSession, fn func(*mcpSession)) {
	var wg sync.WaitGroup
	for _, s := range sessions {
		if s != nil {
			wg.Go(func() { fn(s) })
		}
	}
	wg.Wait()
}

// bounded runs fn for every item with at most conc running at once.
func bounded[T any](items []T, conc int, fn func(T)) {
	sem := make(chan struct{}, max(conc, 1))
	var wg sync.WaitGroup
	for _, it := range items {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			fn(it)
		})
	}
	wg.Wait()
}

// percentile returns the q-quantile of sorted durations (nearest rank).
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
