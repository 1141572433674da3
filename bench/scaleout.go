package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SCALEOUT: the S16 load (16 sessions × calls echo calls) against the
// backend directly, through one vmcp replica, and through three replicas
// sharing one redis-server with each call of a session sent to the next
// replica in turn, as a load balancer without affinity would. Both vmcp
// runs use the same Redis store, so the replica count is the only
// difference. Every replica takes each session over during the warm-up.

const titleScaleOut = "Scale-out: round robin across 3 replicas vs 1 replica (store.type redis)"

func (r *runner) scaleOutScenario(ctx context.Context) error {
	const sessions, replicas = 16, 3
	calls := r.size.s16
	redisAddr, err := r.fleet.startRedis(ctx)
	if err != nil {
		return err
	}
	b, err := r.fleet.startExample(r.bins.example, "b0", 0)
	if err != nil {
		return err
	}
	defer b.stop(5 * time.Second)
	yaml := fmt.Sprintf("backends:\n  - name: b0\n    transport: streamable-http\n    url: %s\n    timeout: 30s\n"+
		"session:\n  maxSessions: 5000\n  maxSessionsPerIdentity: 0\nstore:\n  type: redis\n  redis: {address: %q, keyPrefix: \"vmcpbench:\"}\n", b.url, redisAddr)
	var reps []*vmcpProc
	for range replicas {
		v, err := r.fleet.startVMCPYAML(ctx, r.bins.vmcp, r.tmp, r.opts.logLevel, yaml)
		if err != nil {
			return err
		}
		defer v.stop(10 * time.Second)
		reps = append(reps, v)
	}
	if _, err := findTool(ctx, reps[0].url, "b0_echo", ""); err != nil {
		return fmt.Errorf("vmcp: %w", err)
	}
	redisPID := r.fleet.pidOf("redis")
	watch := func(vs []*vmcpProc) []watched {
		w := []watched{{"backend", b.pid()}, {"redis", redisPID}}
		for _, v := range vs {
			w = append(w, watched{"vmcp", v.pid()})
		}
		return w
	}
	warm := max(warmupFor(calls), replicas)
	direct := runLoad(ctx, loadSpec{url: b.url, tool: "echo", sessions: sessions, calls: calls, warmup: warm, watch: watch(nil)})
	var urls []string
	for _, v := range reps {
		urls = append(urls, v.url)
	}
	// One and three replicas alternate, round after round, as direct and
	// vmcp do in S1-S64, each going first every other round.
	rounds := make([]round, r.size.rounds)
	for i := range rounds {
		rd := &rounds[i]
		runOne := func() {
			rd.base = runSpread(ctx, spreadSpec{urls: urls[:1], tool: "b0_echo", sessions: sessions, calls: calls, warmup: warm, watch: watch(reps)})
		}
		runThree := func() {
			rd.test = runSpread(ctx, spreadSpec{urls: urls, tool: "b0_echo", sessions: sessions, calls: calls, warmup: warm, watch: watch(reps)})
		}
		if i%2 == 0 {
			runOne()
			runThree()
		} else {
			runThree()
			runOne()
		}
	}
	med := r.medianRound("SCALEOUT", "3 replicas ÷ 1 replica", rounds)
	one, three := med.base, med.test

	shape := fmt.Sprintf("%d × %d", sessions, calls)
	row := func(via string, l loadResult, vsOne string) []string {
		return []string{via, shape, fmt.Sprint(l.errors), fmt.Sprintf("%.0f", l.rate()), fmtRatio(ratio(l.rate(), direct.rate())), vsOne,
			fmtDur(l.p50), fmtDur(l.p99), fmtMicros(l.cpuPerCall("vmcp")), fmtMicros(l.cpuPerCall("redis")), fmtMicros(l.cpuPerCall("backend"))}
	}
	rt := ratio(three.rate(), one.rate())
	r.rep.table(titleScaleOut,
		[]string{"via", "sessions × calls", "errors", "calls/s", "÷ direct", "÷ 1 replica", "p50", "p99", "vmcp CPU/call (all replicas)", "redis CPU/call", "backend CPU/call"},
		[][]string{row("direct", direct, ""), row("1 replica", one, "1.00×"), row("3 replicas, round robin", three, fmtRatio(rt))},
		fmt.Sprintf("Each session initializes on one replica and sends call j to replica (i+j) mod 3, so every call after the first few lands on a "+
			"different replica than the one before; every replica takes every session over (resuming its backend session) during the warm-up. "+
			"All processes share this machine's %d cores, so three replicas add no CPU: the ratio shows what spreading a session costs.", runtime.NumCPU()))
	r.rep.check(rt >= 0.8 && three.errors == 0 && one.errors == 0, "SCALEOUT",
		"3 replicas round robin %.0f calls/s = %.3f× 1 replica (%.0f calls/s), errors %d and %d; target ≥ 0.80× with 0 errors",
		three.rate(), rt, one.rate(), three.errors, one.errors)
	r.noteErrSamples("SCALEOUT", labeled{"direct", direct}, labeled{"1 replica", one}, labeled{"3 replicas", three})
	return nil
}

// spreadSpec is a closed-loop run whose sessions send each call to the
// next of several vmcp replicas.
type spreadSpec struct {
	urls     []string
	tool     string
	sessions int
	calls    int
	warmup   int
	watch    []watched
}

// runSpread runs spec like runLoad does, with session i initialized on
// replica i mod n and its call j sent to replica (i+j) mod n.
func runSpread(ctx context.Context, spec spreadSpec) loadResult {
	n := len(spec.urls)
	clients := make([]*mcpClient, n)
	for k, u := range spec.urls {
		clients[k] = newMCPClient(u, spec.sessions)
		defer clients[k].Close()
	}
	var errs errLog
	texts := &counter{}
	// handles[i][k] is session i as sent to replica k.
	handles := make([][]*mcpSession, spec.sessions)
	idx := make([]int, spec.sessions)
	for i := range idx {
		idx[i] = i
	}
	bounded(idx, 16, func(i int) {
		s, _, err := clients[i%n].initialize(ctx)
		if err != nil {
			errs.add(0, err)
			return
		}
		hs := make([]*mcpSession, n)
		for k := range n {
			hs[k] = &mcpSession{c: clients[k], id: s.id, buf: make([]byte, 0, 512)}
		}
		hs[i%n] = s
		handles[i] = hs
	})
	var open []int
	for i, hs := range handles {
		if hs == nil {
			errs.add(spec.calls, fmt.Errorf("session not opened, %d calls not made", spec.calls))
			continue
		}
		open = append(open, i)
	}
	each := func(fn func(i int)) {
		var wg sync.WaitGroup
		for _, i := range open {
			wg.Go(func() { fn(i) })
		}
		wg.Wait()
	}
	each(func(i int) {
		for j := range spec.warmup {
			if err := handles[i][(i+j)%n].echo(ctx, spec.tool, texts.text()); err != nil {
				errs.add(0, fmt.Errorf("warm-up: %w", err))
				return
			}
		}
	})

	before := sampleCPU(spec.watch)
	lat := make([][]time.Duration, spec.sessions)
	start := time.Now()
	each(func(i int) {
		lat[i] = timedCalls(ctx, spec.calls, &errs, func(j int) error {
			return handles[i][(i+spec.warmup+j)%n].echo(ctx, spec.tool, texts.text())
		})
	})
	wall := time.Since(start)
	after := sampleCPU(spec.watch)

	var first []*mcpSession
	for _, i := range open {
		first = append(first, handles[i][(i+1)%n]) // DELETE through another replica than the creator when there is one
	}
	closeSessions(ctx, first, 16, &errs)
	return summarize(spec.sessions*spec.calls, &errs, wall, lat, before, after)
}

// startRedis runs redis-server on a free loopback port, without
// persistence, and returns its address once it answers PING.
func (f *fleet) startRedis(ctx context.Context) (string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("redis-server not found on PATH (apt-get install redis-server): %w", err)
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	p, err := f.start("redis", []string{bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "warning"}, nil, nil)
	if err != nil {
		return "", err
	}
	deadline := time.Now().Add(10 * time.Second)
	for redisPing(addr) != nil {
		if p.exited() {
			return "", fmt.Errorf("redis-server exited: %s", p.stderr.String())
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.stop(time.Second)
			return "", errors.New("redis-server did not answer PING within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return addr, nil
}

func redisPing(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// pidOf returns the PID of the running child named name, or 0.
func (f *fleet) pidOf(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.procs {
		if p.name == name && !p.exited() {
			return p.pid()
		}
	}
	return 0
}

// startVMCPYAML writes a config to dir and serves it on a free loopback
// port, returning once /readyz answers 200 (within 20 s).
func (f *fleet) startVMCPYAML(ctx context.Context, bin, dir, logLevel, yaml string) (*vmcpProc, error) {
	file, err := os.CreateTemp(dir, "vmcp-*.yaml")
	if err != nil {
		return nil, err
	}
	_, err = file.WriteString(yaml)
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("writing vmcp config: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	p, err := f.start("vmcp", []string{bin, "serve", "--config", file.Name(), "--listen", addr, "--log-level", logLevel}, f.vmcpEnv, nil)
	if err != nil {
		return nil, err
	}
	v := &vmcpProc{proc: p, base: "http://" + addr, url: "http://" + addr + "/mcp", cfg: file.Name()}
	if err := v.waitReady(ctx, 20*time.Second); err != nil {
		p.stop(time.Second)
		return nil, fmt.Errorf("vmcp: %w\n%s", err, p.stderr.String())
	}
	return v, nil
}
