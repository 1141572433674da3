package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"
)

// sizes are the counts each scenario uses; -quick shrinks them.
type sizes struct {
	s1, s16, s64  int // calls per session
	initSamples   int
	scaleSessions int
	scaleCalls    int
	genCalls      int // per session, 16 sessions
	rounds        int // direct/vmcp rounds per throughput scenario
}

func sizesFor(quick bool) sizes {
	if quick {
		return sizes{s1: 200, s16: 50, s64: 20, initSamples: 5, scaleSessions: 100, scaleCalls: 5, genCalls: 50, rounds: 1}
	}
	return sizes{s1: 2000, s16: 500, s64: 200, initSamples: 20, scaleSessions: 1000, scaleCalls: 5, genCalls: 500, rounds: 5}
}

// runner carries one bench run: its options, processes and report.
type runner struct {
	opts  options
	log   io.Writer
	bins  binaries
	tmp   string
	fleet *fleet
	rep   *report
	size  sizes

	echo       *echoFixture          // shared by S1, S16, S64, CPU
	throughput map[string]loadResult // key "S16/vmcp" etc.
	tpRows     [][]string
	figures    map[string]float64 // for the comparison with the baseline; see figure
}

func (r *runner) scenario(ctx context.Context, id string) error {
	switch id {
	case "S1":
		return r.throughputScenario(ctx, "S1", 1, r.size.s1)
	case "S16":
		return r.throughputScenario(ctx, "S16", 16, r.size.s16)
	case "S64":
		return r.throughputScenario(ctx, "S64", 64, r.size.s64)
	case "CPU":
		return r.cpuScenario(ctx)
	case "GEN":
		return r.genScenario(ctx)
	case "INIT":
		return r.initScenario(ctx)
	case "SCALE":
		return r.scaleScenario(ctx)
	case "SCALEOUT":
		return r.scaleOutScenario(ctx)
	case "BREAKER":
		return r.breakerScenario(ctx)
	case "SOAK":
		return r.soakScenario(ctx)
	case "AUTH":
		return r.authScenario(ctx)
	case "TRACE":
		return r.traceScenario(ctx)
	case "MODERN":
		return r.modernScenario(ctx)
	}
	return fmt.Errorf("unknown scenario %q", id)
}

// echoFixture is one example backend and a vmcp in front of it, and, when
// it is installed, HAProxy in front of the same backend as a reference.
type echoFixture struct {
	backend *backendProc
	vmcp    *vmcpProc
	tool    string // the echo tool's name as vmcp exposes it
	haproxy *backendProc
	hpName  string // HAProxy's version and mode, for the tables
}

func (r *runner) echoFixture(ctx context.Context) (*echoFixture, error) {
	if r.echo != nil {
		return r.echo, nil
	}
	b, err := r.fleet.startExample(r.bins.example, "b0", 0)
	if err != nil {
		return nil, err
	}
	cfg := &vmcpConfig{maxSessions: 5000, initConcurrency: r.opts.initConcurrency, pprof: r.opts.cpuprofile != ""}
	cfg.add("b0", b.url)
	v, err := r.fleet.startVMCP(ctx, r.bins.vmcp, r.tmp, r.opts.logLevel, cfg)
	if err != nil {
		return nil, err
	}
	tool, err := findTool(ctx, v.url, "b0_echo", "")
	if err != nil {
		return nil, fmt.Errorf("vmcp: %w", err)
	}
	r.echo = &echoFixture{backend: b, vmcp: v, tool: tool}
	if g, err := promGauges(ctx, v.metricsBase(), "go_sched_gomaxprocs_threads"); err == nil {
		r.rep.info("vmcp's GOMAXPROCS, from its /metrics: %.0f", g["go_sched_gomaxprocs_threads"])
	}
	hp, version, err := r.startHAProxy(ctx, b.url)
	switch {
	case err != nil:
		r.rep.note("HAProxy did not start, so its rows are left out: %v", err)
	case hp == nil:
		r.rep.info("haproxy is not on PATH, so the HAProxy reference rows are left out (apt-get install haproxy adds them)")
	default:
		r.echo.haproxy, r.echo.hpName = hp, version+", HTTP mode, 1 thread"
	}
	return r.echo, nil
}

// findTool checks that a fresh session on url lists tool; token, if not
// empty, is sent as a bearer token.
func findTool(ctx context.Context, url, tool, token string) (string, error) {
	c := newMCPClient(url, 1)
	if token != "" {
		c.auth = "Bearer " + token
	}
	defer c.Close()
	s, _, err := c.initialize(ctx)
	if err != nil {
		return "", err
	}
	defer s.close(ctx)
	names, err := s.toolNames(ctx)
	if err != nil {
		return "", err
	}
	if !slices.Contains(names, tool) {
		return "", fmt.Errorf("tool %q not listed (got %q)", tool, names)
	}
	return tool, nil
}

func warmupFor(calls int) int { return min(max(calls/10, 5), 50) }

// throughputScenario runs sessions × calls echo calls against the backend
// directly, then through vmcp, and adds both to the throughput table.
func (r *runner) throughputScenario(ctx context.Context, id string, sessions, calls int) error {
	fx, err := r.echoFixture(ctx)
	if err != nil {
		return err
	}
	be := watched{"backend", fx.backend.pid()}
	// Direct and vmcp runs alternate, round after round, so that a slow
	// spell of a shared machine hits both sides alike.
	// HAProxy, if installed, runs in each round too: what a C proxy made
	// for this gets on the same machine at the same time.
	rounds := make([]round, r.size.rounds)
	var refs []round
	for i := range rounds {
		direct := runLoad(ctx, loadSpec{url: fx.backend.url, tool: "echo", sessions: sessions, calls: calls,
			warmup: warmupFor(calls), listen: r.opts.listen, watch: []watched{be}})
		via := runLoad(ctx, loadSpec{url: fx.vmcp.url, tool: fx.tool, sessions: sessions, calls: calls,
			warmup: warmupFor(calls), listen: r.opts.listen, watch: []watched{{"proxy", fx.vmcp.pid()}, be}})
		rounds[i] = round{base: direct, test: via}
		if fx.haproxy != nil && !r.opts.listen { // HAProxy would hold a GET stream's response
			hp := runLoad(ctx, loadSpec{url: fx.haproxy.url, tool: "echo", sessions: sessions, calls: calls,
				warmup: warmupFor(calls), watch: []watched{{"proxy", fx.haproxy.pid()}, be}})
			refs = append(refs, round{base: direct, test: hp})
		}
	}
	med := r.medianRound(id, "vmcp/direct", rounds)
	direct, via := med.base, med.test
	var ref *round
	if len(refs) > 0 {
		m := r.medianRound(id+" HAProxy", "HAProxy/direct", refs)
		ref = &m
	}
	r.recordThroughput(id, sessions, calls, direct, via, ref)

	if id == "S16" && r.opts.cpuprofile != "" {
		if err := r.profile(ctx, fx, sessions, via); err != nil {
			r.rep.note("CPU profile: %v", err)
		}
	}
	return nil
}

// recordThroughput adds id's rows to the throughput table and checks its
// target. ref, if not nil, is HAProxy's median round, shown for reference
// with its ratio to that round's direct run.
func (r *runner) recordThroughput(id string, sessions, calls int, direct, via loadResult, ref *round) {
	if r.throughput == nil {
		r.throughput = map[string]loadResult{}
	}
	r.throughput[id+"/direct"], r.throughput[id+"/vmcp"] = direct, via
	shape := fmt.Sprintf("%d × %d", sessions, calls)
	rt := ratio(via.rate(), direct.rate())
	row := func(mode string, l loadResult, rt string, proxyCPU string) []string {
		return []string{id, mode, shape, fmt.Sprint(l.errors), fmt.Sprintf("%.0f", l.rate()), rt,
			fmtDur(l.p50), fmtDur(l.p99), proxyCPU, fmtMicros(l.cpuPerCall("backend")), fmtMicros(l.cpuPerCall("generator")),
			fmtMicros(l.cpuPerCall("proxy") + l.cpuPerCall("backend") + l.cpuPerCall("generator"))}
	}
	r.tpRows = append(r.tpRows,
		row("direct", direct, "", "–"),
		row("vmcp", via, fmtRatio(rt), fmtMicros(via.cpuPerCall("proxy"))))
	r.figure(id, rt)
	if ref != nil {
		r.tpRows = append(r.tpRows, row("HAProxy (reference)", ref.test, fmtRatio(ref.ratio()), fmtMicros(ref.test.cpuPerCall("proxy"))))
		r.figure(id+" HAProxy", ref.ratio())
	}
	r.rep.check(rt >= 0.8 && direct.errors == 0 && via.errors == 0, id,
		"vmcp %.0f calls/s = %.3f× direct (%.0f calls/s), errors vmcp %d direct %d; target ≥ 0.80× with 0 errors",
		via.rate(), rt, direct.rate(), via.errors, direct.errors)
	r.noteErrSamples(id, labeled{"direct", direct}, labeled{"vmcp", via})
	r.setThroughputTable()
}

// labeled is a load run and the name it has in notes.
type labeled struct {
	label string
	res   loadResult
}

// noteErrSamples notes the errors sampled in each run, named by scenario
// id and label.
func (r *runner) noteErrSamples(id string, runs ...labeled) {
	for _, l := range runs {
		for _, e := range l.res.errSamples {
			r.rep.note("%s %s error: %s", id, l.label, e)
		}
	}
}

// round is one run of a baseline and of the side compared with it, such as
// the backend called directly and through vmcp.
type round struct {
	base, test loadResult
}

func (rd round) ratio() float64 { return ratio(rd.test.rate(), rd.base.rate()) }

// medianRound returns the round with the median ratio, which the tables
// show; see median.
func (r *runner) medianRound(id, what string, rounds []round) round {
	return median(r, id, what, rounds, round.ratio, func(rd round) string { return fmtRatio(rd.ratio()) },
		func(rd round) []loadResult { return []loadResult{rd.base, rd.test} })
}

// medianCPU returns the run with the median proxy CPU per call; see median.
func (r *runner) medianCPU(id string, runs []loadResult) loadResult {
	return median(r, id, "proxy CPU per call", runs, func(l loadResult) float64 { return float64(l.cpuPerCall("proxy")) },
		func(l loadResult) string { return fmtMicros(l.cpuPerCall("proxy")) },
		func(l loadResult) []loadResult { return []loadResult{l} })
}

// median sorts runs by key and returns the middle one. It notes every
// run's figure, formatted by show, and reports as problems the errors in
// the loads of the other runs: a 0-errors target covers every round.
func median[T any](r *runner, id, what string, runs []T, key func(T) float64, show func(T) string, loads func(T) []loadResult) T {
	slices.SortFunc(runs, func(a, b T) int { return cmp.Compare(key(a), key(b)) })
	mid := len(runs) / 2
	if len(runs) > 1 {
		var shown []string
		for _, x := range runs {
			shown = append(shown, show(x))
		}
		r.rep.info("%s: %s per round, sorted: %s; the table shows the median round", id, what, strings.Join(shown, ", "))
	}
	for i, x := range runs {
		if i == mid {
			continue
		}
		for _, l := range loads(x) {
			if l.errors > 0 {
				r.rep.note("%s: %d errors in a round the table does not show, e.g. %s", id, l.errors, strings.Join(l.errSamples[:min(1, len(l.errSamples))], ""))
			}
		}
	}
	return runs[mid]
}

// setThroughputTable sets the throughput table, which grows as S1, S16 and
// S64 run.
func (r *runner) setThroughputTable() {
	header := []string{"id", "via", "sessions × calls", "errors", "calls/s", "÷ direct", "p50", "p99",
		"proxy CPU/call", "backend CPU/call", "generator CPU/call", "all CPU/call"}
	r.rep.table(titleThroughput, header, r.tpRows,
		"CPU/call is the process's utime+stime over the timed calls ÷ calls (vmcp and backend from /proc/PID/stat, 10 ms ticks; generator from getrusage). "+
			"Sessions are opened and warmed up before the clock starts. When the machine's cores are the limit, vmcp/direct throughput "+
			"tends to direct's all-CPU/call ÷ vmcp's all-CPU/call. Rounds of direct and vmcp (and HAProxy, when installed) alternate; "+
			"vmcp's rows are the round with the median vmcp/direct, HAProxy's the round with its median HAProxy/direct, "+
			"its ratio taken against that round's direct run. HAProxy is a one-thread C reverse proxy in front of the same backend: "+
			"a reference for what any proxy gets here, not a target.")
}

const titleThroughput = "Throughput: echo calls, vmcp vs the backend called directly"

// cpuScenario reports vmcp's CPU per proxied call under S16's load, and
// beside it the null proxy's: a process that forwards the same HTTP calls
// to the same backend and does nothing else, the floor for any proxy on
// this machine. Their rounds alternate; each side's row is its round with
// the median CPU per call.
func (r *runner) cpuScenario(ctx context.Context) error {
	fx, err := r.echoFixture(ctx)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	// One P: with a spare P, Go's scheduler wakes a second thread around
	// socket waits, which costs more CPU per call; the floor is the
	// cheapest relay.
	np, err := r.fleet.startServer("null proxy", []string{exe}, []string{nullProxyEnv + "=" + fx.backend.url, "GOMAXPROCS=1"})
	if err != nil {
		return err
	}
	defer np.stop(5 * time.Second)
	hpx, err := r.fleet.startServer("net/http proxy", []string{exe}, []string{httpProxyEnv + "=" + fx.backend.url})
	if err != nil {
		return err
	}
	defer hpx.stop(5 * time.Second)
	type proxy struct {
		name, url, tool string
		pid             int
		runs            []loadResult
	}
	proxies := []*proxy{{name: "vmcp", url: fx.vmcp.url, tool: fx.tool, pid: fx.vmcp.pid()},
		{name: "null proxy", url: np.url, tool: "echo", pid: np.pid()},
		{name: "net/http proxy", url: hpx.url, tool: "echo", pid: hpx.pid()}}
	if hp := fx.haproxy; hp != nil {
		proxies = append(proxies, &proxy{name: fx.hpName, url: hp.url, tool: "echo", pid: hp.pid()})
	}
	be := watched{"backend", fx.backend.pid()}
	// Never with -standalone-get: the null proxy relays only messages with
	// a length, not a stream.
	for range r.size.rounds {
		for _, p := range proxies {
			p.runs = append(p.runs, runLoad(ctx, loadSpec{url: p.url, tool: p.tool, sessions: 16, calls: r.size.s16,
				warmup: warmupFor(r.size.s16), watch: []watched{{"proxy", p.pid}, be}}))
		}
	}
	var rows [][]string
	med := map[string]loadResult{}
	for _, p := range proxies {
		l := r.medianCPU("CPU "+p.name, p.runs)
		med[p.name] = l
		r.noteErrSamples("CPU", labeled{p.name, l})
		rows = append(rows, []string{p.name, fmt.Sprint(l.calls), fmt.Sprint(l.errors), fmt.Sprintf("%.0f", l.rate()),
			fmt.Sprintf("%.3f s", l.cpu["proxy"].Seconds()), fmtMicros(l.cpuPerCall("proxy")), fmtMicros(l.cpuPerCall("proxy" + sysSuffix)),
			fmtMicros(l.cpuPerCall("backend")), fmtMicros(l.cpuPerCall("generator")),
			fmt.Sprintf("%.2f", l.cpu["generator"].Seconds()/l.wall.Seconds())})
	}
	via, null := med["vmcp"], med["null proxy"]
	per, floor := via.cpuPerCall("proxy"), null.cpuPerCall("proxy")
	r.rep.table("CPU: vmcp CPU per proxied call, beside a null proxy's and HAProxy's", []string{"proxy", "calls (16 sessions)", "errors", "calls/s",
		"proxy utime+stime", "proxy per call", "of which in the kernel", "backend per call", "generator per call", "generator cores busy"}, rows,
		fmt.Sprintf("Rounds alternate between the proxies (%d each), all in front of the same backend; each row is the proxy's round with the median CPU per call. "+
			"The null proxy is a separate process that relays each HTTP/1.1 request to the backend and its response back, "+
			"byte for byte, on one backend connection per client connection, with GOMAXPROCS=1: the reads and writes any proxy must make, "+
			"and no MCP, sessions or JSON. The net/http proxy is the floor inside net/http's contract: an http.Server whose handler is httputil.ReverseProxy "+
			"over an http.Transport with vmcp's pool size and Go's default GOMAXPROCS, as vmcp runs, and no MCP either. HAProxy, when installed, runs as a one-thread HTTP reverse proxy with keep-alive to the backend. "+
			"\"Of which in the kernel\" is the proxy's stime: its system calls and the loopback network work they do. "+
			"vmcp per call ÷ null proxy per call: %s. "+
			"Generator cores busy is its CPU time ÷ wall time: well under the machine's core count means it was not the bottleneck.",
			r.size.rounds, fmtRatio(ratio(float64(per), float64(floor)))))
	r.figure("CPU vmcp", micros(per))
	r.figure("CPU null proxy", micros(floor))
	detail := fmt.Sprintf("vmcp %s per proxied call under S16 (%s of it in the kernel)", fmtMicros(per), fmtMicros(via.cpuPerCall("proxy"+sysSuffix)))
	pass := false
	if fx.haproxy != nil {
		hp := med[fx.hpName]
		h := hp.cpuPerCall("proxy")
		rt := ratio(float64(per), float64(h))
		r.figure("CPU HAProxy", micros(h))
		r.figure("CPU vmcp ÷ HAProxy", rt)
		pass = per > 0 && h > 0 && rt <= 1.5 && via.errors == 0 && hp.errors == 0
		detail += fmt.Sprintf(" = %s HAProxy's %s (%s in the kernel) in the same run; target ≤ 1.50×", fmtRatio(rt), fmtMicros(h), fmtMicros(hp.cpuPerCall("proxy"+sysSuffix)))
	} else {
		detail += "; target ≤ 1.50× HAProxy's in the same run, not judged: haproxy is not on PATH"
	}
	detail += fmt.Sprintf("; the null proxy, which only relays the same calls, %s (%s in the kernel)", fmtMicros(floor), fmtMicros(null.cpuPerCall("proxy"+sysSuffix)))
	nh := med["net/http proxy"]
	detail += fmt.Sprintf("; httputil.ReverseProxy on net/http %s (%s in the kernel)", fmtMicros(nh.cpuPerCall("proxy")), fmtMicros(nh.cpuPerCall("proxy"+sysSuffix)))
	r.rep.check(pass, "CPU", "%s", detail)
	return nil
}

// genScenario is the generator's ceiling: 16 sessions against the null
// server, which does almost nothing. It shows how many calls/s the
// generator can drive on this machine and what each costs it.
func (r *runner) genScenario(ctx context.Context) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	ns, err := r.fleet.startServer("null server", []string{exe}, []string{nullServerEnv + "=1"})
	if err != nil {
		return err
	}
	defer ns.stop(5 * time.Second)
	res := runLoad(ctx, loadSpec{url: ns.url, tool: "echo", sessions: 16, calls: r.size.genCalls,
		warmup: warmupFor(r.size.genCalls), watch: []watched{{"null", ns.pid()}}})
	best := 0.0
	for _, v := range r.throughput {
		best = max(best, v.rate())
	}
	rows := [][]string{{"16 × " + fmt.Sprint(r.size.genCalls), fmt.Sprint(res.errors), fmt.Sprintf("%.0f", res.rate()),
		fmtDur(res.p50), fmtDur(res.p99), fmtMicros(res.cpuPerCall("generator")), fmtMicros(res.cpuPerCall("null"))}}
	r.rep.table("GEN: load generator ceiling (null server)", []string{"sessions × calls", "errors", "calls/s", "p50", "p99",
		"generator CPU/call", "null server CPU/call"}, rows,
		"The null server is a separate process answering initialize and tools/call with fixed JSON and no SDK. "+
			"Its calls/s is what the generator can drive when the server costs almost nothing.")
	if best > 0 {
		r.rep.check(res.errors == 0 && res.rate() >= 2*best, "GEN (generator not the bottleneck)",
			"generator ceiling %.0f calls/s vs the fastest measured run %.0f calls/s (%s); want ≥ 2×", res.rate(), best, fmtRatio(ratio(res.rate(), best)))
	}
	return nil
}

// profile keeps an S16 load on vmcp while fetching a CPU profile from its
// /debug/pprof/profile, and saves it to -cpuprofile-vmcp. The measured S16
// figures come from the unprofiled run before it.
func (r *runner) profile(ctx context.Context, fx *echoFixture, sessions int, measured loadResult) error {
	secs := max(r.opts.profileSeconds, 1)
	// Enough calls to outlast the profile at the measured rate, bounded.
	calls := min(int(measured.rate()*float64(secs)*1.2)/sessions+1, 100000/sessions)
	var fetchErr error
	fmt.Fprintf(r.log, "bench: profiling vmcp for %ds under S16 load\n", secs)
	runLoad(ctx, loadSpec{url: fx.vmcp.url, tool: fx.tool, sessions: sessions, calls: calls, warmup: 5, listen: r.opts.listen,
		during: func(ctx context.Context) { fetchErr = fetchProfile(ctx, fx.vmcp.admin, secs, r.opts.cpuprofile) }})
	if fetchErr != nil {
		return fetchErr
	}
	fmt.Fprintf(r.log, "bench: wrote vmcp CPU profile to %s (go tool pprof -top %s)\n", r.opts.cpuprofile, r.opts.cpuprofile)
	return nil
}

func fetchProfile(ctx context.Context, base string, secs int, path string) error {
	return fetchPprof(ctx, base, fmt.Sprintf("profile?seconds=%d", secs), time.Duration(secs+15)*time.Second, path)
}

// fetchPprof saves vmcp's /debug/pprof/WHAT to path.
func fetchPprof(ctx context.Context, base, what string, limit time.Duration, path string) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/debug/pprof/"+what, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("fetching profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("vmcp answered /debug/pprof/%s with HTTP %d (are server.pprof and server.adminListen wired up?)", what, resp.StatusCode)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, io.LimitReader(resp.Body, 256<<20))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// abSpec is an S16 comparison of two vmcp processes over the echo
// fixture's backend: the fixture's own vmcp (off) against v (on), which
// differs by one setting.
type abSpec struct {
	id, what    string // scenario ID; the ratio's name for the median ("oidc/off")
	title, note string
	offName     string // row labels
	onName      string
	ratioHeader string // "× auth off"
	v           *vmcpProc
	tokens      []string // bearer tokens for v's sessions; nil: none
}

// abS16 runs s's rounds, alternating, and reports the median round as a
// table; it returns that round for the scenario's own check.
func (r *runner) abS16(ctx context.Context, fx *echoFixture, s abSpec) round {
	const sessions = 16
	calls := r.size.s16
	be := watched{"backend", fx.backend.pid()}
	rounds := make([]round, r.size.rounds)
	for i := range rounds {
		off := runLoad(ctx, loadSpec{url: fx.vmcp.url, tool: fx.tool, sessions: sessions, calls: calls,
			warmup: warmupFor(calls), listen: r.opts.listen, watch: []watched{{"proxy", fx.vmcp.pid()}, be}})
		on := runLoad(ctx, loadSpec{url: s.v.url, tool: fx.tool, sessions: sessions, calls: calls, tokens: s.tokens,
			warmup: warmupFor(calls), listen: r.opts.listen, watch: []watched{{"proxy", s.v.pid()}, be}})
		rounds[i] = round{base: off, test: on}
	}
	med := r.medianRound(s.id, s.what, rounds)
	shape := fmt.Sprintf("%d × %d", sessions, calls)
	row := func(mode string, l loadResult, rt string) []string {
		return []string{mode, shape, fmt.Sprint(l.errors), fmt.Sprintf("%.0f", l.rate()), rt,
			fmtDur(l.p50), fmtDur(l.p99), fmtMicros(l.cpuPerCall("proxy"))}
	}
	r.rep.table(s.title,
		[]string{"vmcp", "shape", "errors", "calls/s", s.ratioHeader, "p50", "p99", "vmcp CPU/call"},
		[][]string{row(s.offName, med.base, ""), row(s.onName, med.test, fmtRatio(med.ratio()))},
		"Both vmcp processes front the same backend; rounds alternate and the median round is shown. "+s.note)
	return med
}
