package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/vmcp/vmcp/internal/exampleserver"
)

// modernProtocol is the 2026-07-28 revision: no initialize, no session.
const modernProtocol = "2026-07-28"

// modernServerEnv, set to "1", makes the bench binary (or its test binary)
// run the example server in the go-sdk's stateless mode, which serves
// 2026-07-28 requests, instead of the bench: MODERN's modern backend, a
// separate process like every other one.
const modernServerEnv = "VMCPBENCH_MODERN_SERVER"

// runModernServer serves the example server's tools statelessly. It
// prints "listening on URL" and serves until SIGTERM or SIGINT.
func runModernServer() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := exampleserver.New(exampleserver.Options{Name: "m0"})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, &mcp.StreamableHTTPOptions{Stateless: true})
	mux := http.NewServeMux()
	mux.Handle("/mcp", h)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("listening on http://%s/mcp\n", ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}()
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// modernScenario is issue 18's bench, in two parts.
//
// First, S16's shape in the modern era: 16 go-sdk v1.8.0 clients (which
// try 2026-07-28 first and fall back to initialize) each make sequential
// echo calls against a modern backend (the example server's tools in the
// go-sdk's stateless mode, its own process) directly and through vmcp,
// rounds alternating, median round shown, as a ratio. The protocol each
// client negotiated is reported, so a vmcp that made the clients fall
// back is visible.
//
// Second, a legacy stateful backend behind vmcp's warm session pool:
// the example server run in the bench's process, where the initialize
// requests it receives can be counted, and the same modern clients calling
// its counter tool through vmcp. The goal is 0 initializes per request:
// at most modern.pool.maxPerIdentity for the whole run, whose clients are
// one identity (anonymous, on loopback).
func (r *runner) modernScenario(ctx context.Context) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	b, err := r.fleet.startServer("modern backend m0", []string{exe}, []string{modernServerEnv + "=1"})
	if err != nil {
		return err
	}
	defer b.stop(5 * time.Second)
	cfg := &vmcpConfig{maxSessions: 5000, initConcurrency: r.opts.initConcurrency}
	cfg.add("m0", b.url)
	v, err := r.fleet.startVMCP(ctx, r.bins.vmcp, r.tmp, r.opts.logLevel, cfg)
	if err != nil {
		return err
	}
	defer v.stop(5 * time.Second)
	const sessions = 16
	calls := r.size.s16
	be := watched{"backend", b.pid()}
	rounds := make([]round, r.size.rounds)
	var directProtos, viaProtos map[string]int
	for i := range rounds {
		var direct, via loadResult
		direct, directProtos = runModernLoad(ctx, modernSpec{url: b.url, tool: "echo", sessions: sessions, calls: calls,
			warmup: warmupFor(calls), watch: []watched{be}})
		via, viaProtos = runModernLoad(ctx, modernSpec{url: v.url, tool: "m0_echo", sessions: sessions, calls: calls,
			warmup: warmupFor(calls), watch: []watched{{"proxy", v.pid()}, be}})
		rounds[i] = round{base: direct, test: via}
	}
	med := r.medianRound("MODERN", "vmcp/direct", rounds)
	direct, via := med.base, med.test
	rt := med.ratio()
	shape := fmt.Sprintf("%d × %d", sessions, calls)
	row := func(mode string, l loadResult, protos map[string]int, rt string, proxyCPU string) []string {
		return []string{mode, shape, protocols(protos), fmt.Sprint(l.errors), fmt.Sprintf("%.0f", l.rate()), rt,
			fmtDur(l.p50), fmtDur(l.p99), proxyCPU, fmtMicros(l.cpuPerCall("backend"))}
	}
	r.rep.table("MODERN: S16 with go-sdk v1.8.0 clients (2026-07-28 first)",
		[]string{"target", "shape", "protocol negotiated", "errors", "calls/s", "× direct", "p50", "p99", "vmcp CPU/call", "backend CPU/call"},
		[][]string{row("direct", direct, directProtos, "", ""), row("vmcp", via, viaProtos, fmtRatio(rt), fmtMicros(via.cpuPerCall("proxy")))},
		"The backend is the example server's tools in the go-sdk v1.8.0's stateless mode (its own process), which serves 2026-07-28; the clients are go-sdk v1.8.0 clients in their default mode, "+
			"which send server/discover and fall back to initialize if the server does not serve 2026-07-28. Rounds alternate; the median round is shown.")
	modern := viaProtos[modernProtocol] == sessions && directProtos[modernProtocol] == sessions
	r.rep.check(modern && rt >= 0.8 && direct.errors == 0 && via.errors == 0, "MODERN",
		"vmcp %.0f calls/s = %.3f× direct (%.0f calls/s) at S16 in the modern era, protocol through vmcp %s, errors vmcp %d direct %d; goal ≥ 0.80× with 0 errors, every client on %s",
		via.rate(), rt, direct.rate(), protocols(viaProtos), via.errors, direct.errors, modernProtocol)
	r.noteErrSamples("MODERN", labeled{"direct", direct}, labeled{"vmcp", via})
	return r.warmPoolScenario(ctx, sessions, calls)
}

// warmPoolScenario is MODERN's second part: modern clients through vmcp
// to a stateful legacy backend whose initializes are counted.
func (r *runner) warmPoolScenario(ctx context.Context, sessions, calls int) error {
	stats := &exampleserver.Stats{}
	h := exampleserver.HTTPHandler(exampleserver.Options{Name: "st", Stats: stats})
	defer h.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/mcp"

	cfg := &vmcpConfig{maxSessions: 5000, initConcurrency: r.opts.initConcurrency}
	cfg.add("st", url)
	v, err := r.fleet.startVMCP(ctx, r.bins.vmcp, r.tmp, r.opts.logLevel, cfg)
	if err != nil {
		return err
	}
	defer v.stop(5 * time.Second)
	// The warm-up calls fill the pool; the timed calls should initialize
	// nothing more.
	start := stats.Initializes()
	before := start
	res, protos := runModernLoad(ctx, modernSpec{url: v.url, tool: "st_counter", sessions: sessions, calls: calls,
		warmup: warmupFor(calls), watch: []watched{{"proxy", v.pid()}}, onWarm: func() { before = stats.Initializes() }})
	inits, all := stats.Initializes()-before, stats.Initializes()-start
	perRequest := float64(inits) / float64(max(res.calls, 1))
	pool, _ := promGauges(ctx, v.metricsBase(), "vmcp_warm_sessions")
	r.rep.table("MODERN: a legacy stateful backend behind the warm session pool",
		[]string{"shape", "protocol negotiated", "errors", "calls/s", "p50", "p99", "initializes at the backend: timed calls", "per request", "with warm-up", "vmcp_warm_sessions"},
		[][]string{{fmt.Sprintf("%d × %d", sessions, calls), protocols(protos), fmt.Sprint(res.errors), fmt.Sprintf("%.0f", res.rate()),
			fmtDur(res.p50), fmtDur(res.p99), fmt.Sprint(inits), fmt.Sprintf("%.4f", perRequest), fmt.Sprint(all), gaugeText(pool, "vmcp_warm_sessions")}},
		"The backend is the example server in the bench's process (stateful: a counter per backend session), so the initialize requests it receives are counted; "+
			"the clients call its counter tool through vmcp. The timed figure counts from the end of the warm-up to the end of the timed calls; "+
			"with warm-up, from before the clients connect: at most modern.pool.maxPerIdentity (default 4) for these clients, one identity.")
	r.rep.check(protos[modernProtocol] == sessions && inits == 0 && res.errors == 0, "MODERN warm pool",
		"%d initializes at the backend for %d modern requests (%.4f per request), protocol %s, errors %d; goal 0 per request, 0 errors, every client on %s",
		inits, res.calls, perRequest, protocols(protos), res.errors, modernProtocol)
	r.noteErrSamples("MODERN warm pool", labeled{"vmcp", res})
	return nil
}

// gaugeText formats one gauge read from /metrics, or "?" if it was absent.
func gaugeText(g map[string]float64, name string) string {
	if v, ok := g[name]; ok {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return "?"
}

// protocols formats the protocol versions clients negotiated: "2026-07-28
// ×16", or several, most first.
func protocols(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return m[b] - m[a] })
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// modernSpec is one closed-loop run of go-sdk clients: sessions clients,
// each making calls sequential calls of tool (echo or counter).
type modernSpec struct {
	url      string
	tool     string
	sessions int
	calls    int
	warmup   int
	watch    []watched
	onWarm   func() // called once every client is warmed up, before the clock starts
}

// runModernLoad runs spec with go-sdk v1.8.0 clients in their default
// mode and returns what it measured and the protocol versions the clients
// negotiated. An echo call must return its (unique) text; a counter call a
// positive number.
func runModernLoad(ctx context.Context, spec modernSpec) (loadResult, map[string]int) {
	tr := &http.Transport{MaxIdleConnsPerHost: spec.sessions, MaxConnsPerHost: spec.sessions, IdleConnTimeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	var errs errLog
	texts := &counter{}
	client := mcp.NewClient(&mcp.Implementation{Name: "vmcp-bench", Version: "1"}, nil)
	css := make([]*mcp.ClientSession, spec.sessions)
	protos := map[string]int{}
	var mu sync.Mutex
	bounded(indexes(spec.sessions), 16, func(i int) {
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		cs, err := client.Connect(cctx, &mcp.StreamableClientTransport{Endpoint: spec.url, HTTPClient: hc, DisableStandaloneSSE: true, MaxRetries: -1}, nil)
		if err != nil {
			errs.add(spec.calls, fmt.Errorf("connect: %w (%d calls not made)", err, spec.calls))
			return
		}
		css[i] = cs
		mu.Lock()
		protos[cs.InitializeResult().ProtocolVersion]++
		mu.Unlock()
	})
	call := func(cs *mcp.ClientSession) error {
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		text := texts.text()
		args := map[string]any{}
		if strings.HasSuffix(spec.tool, "echo") {
			args["text"] = text
		}
		res, err := cs.CallTool(cctx, &mcp.CallToolParams{Name: spec.tool, Arguments: args})
		if err != nil {
			return err
		}
		got := ""
		if len(res.Content) > 0 {
			if tc, ok := res.Content[0].(*mcp.TextContent); ok {
				got = tc.Text
			}
		}
		switch {
		case res.IsError:
			return fmt.Errorf("tool error: %q", got)
		case strings.HasSuffix(spec.tool, "echo") && got != text:
			return fmt.Errorf("echo returned %q, want %q", got, text)
		case strings.HasSuffix(spec.tool, "counter"):
			if n, err := strconv.Atoi(got); err != nil || n < 1 {
				return fmt.Errorf("counter returned %q", got)
			}
		}
		return nil
	}
	bounded(indexes(spec.sessions), spec.sessions, func(i int) {
		if css[i] == nil {
			return
		}
		for range spec.warmup {
			if err := call(css[i]); err != nil {
				errs.add(0, fmt.Errorf("warm-up: %w", err))
				return
			}
		}
	})
	if spec.onWarm != nil {
		spec.onWarm()
	}
	before := sampleCPU(spec.watch)
	lat := make([][]time.Duration, spec.sessions)
	start := time.Now()
	bounded(indexes(spec.sessions), spec.sessions, func(i int) {
		if css[i] == nil {
			return
		}
		lat[i] = timedCalls(ctx, spec.calls, &errs, func(int) error { return call(css[i]) })
	})
	wall := time.Since(start)
	after := sampleCPU(spec.watch)
	for _, cs := range css {
		if cs != nil {
			if err := cs.Close(); err != nil && !errors.Is(err, context.Canceled) {
				errs.add(0, fmt.Errorf("close: %w", err))
			}
		}
	}
	return summarize(spec.sessions*spec.calls, &errs, wall, lat, before, after), protos
}

func indexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}
