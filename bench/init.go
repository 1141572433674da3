package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"
)

// initResult is the initialize latency over sequential samples.
type initResult struct {
	samples, errors int
	p50, p99, mean  time.Duration
	cpu             map[string]time.Duration // per session, by watched label
	errSamples      []string
}

// opener opens what one INIT sample times and returns the timed part's
// duration and how to close what it opened.
type opener func(ctx context.Context) (took time.Duration, close func(context.Context) error, err error)

// measureInit takes samples from open one after another, closing each
// before the next. Two untimed samples warm up first. The CPU of the
// watched processes is charged per sample (opening and closing).
func measureInit(ctx context.Context, samples int, watch []watched, open opener) initResult {
	var errs errLog
	var lat []time.Duration
	var before map[string]time.Duration
	for i := range samples + 2 {
		if i == 2 {
			before = sampleCPU(watch)
		}
		if ctx.Err() != nil {
			errs.add(1, ctx.Err())
			break
		}
		took, closeFn, err := open(ctx)
		if err != nil {
			errs.add(1, err)
			continue
		}
		if i >= 2 {
			lat = append(lat, took)
		}
		if err := closeFn(ctx); err != nil {
			errs.add(1, err)
		}
	}
	after := sampleCPU(watch)
	slices.Sort(lat)
	res := initResult{samples: samples, errors: errs.count(), p50: percentile(lat, 0.5), p99: percentile(lat, 0.99),
		cpu: map[string]time.Duration{}, errSamples: errs.samples}
	for k, v := range after {
		res.cpu[k] = (v - before[k]) / time.Duration(max(samples, 1))
	}
	for _, d := range lat {
		res.mean += d / time.Duration(len(lat))
	}
	return res
}

// openOne opens one session on c; the timed part is its initialize request.
func openOne(c *mcpClient) opener {
	return func(ctx context.Context) (time.Duration, func(context.Context) error, error) {
		s, took, err := c.initialize(ctx)
		if err != nil {
			return took, nil, err
		}
		return took, s.close, nil
	}
}

// openAll opens a session on every backend at once, as a gateway must on
// initialize, but with no gateway: the generator is the backends' client.
// The timed part ends when the slowest backend has answered initialize and
// notifications/initialized and, with discover, every list its
// capabilities offer. No gateway that connects its backends at initialize
// can answer sooner on the same machine.
func openAll(cs []*mcpClient, discover bool) opener {
	return func(ctx context.Context) (time.Duration, func(context.Context) error, error) {
		ss := make([]*mcpSession, len(cs))
		errs := make([]error, len(cs))
		start := time.Now()
		var wg sync.WaitGroup
		for i, c := range cs {
			wg.Go(func() {
				s, _, err := c.initialize(ctx)
				if err == nil && discover {
					err = s.discover(ctx)
				}
				ss[i], errs[i] = s, err
			})
		}
		wg.Wait()
		took := time.Since(start)
		closeAll := func(ctx context.Context) error {
			cerrs := make([]error, len(ss))
			var wg sync.WaitGroup
			for i, s := range ss {
				if s != nil {
					wg.Go(func() { cerrs[i] = s.close(ctx) })
				}
			}
			wg.Wait()
			return errors.Join(cerrs...)
		}
		if err := errors.Join(errs...); err != nil {
			closeAll(ctx)
			return took, nil, err
		}
		return took, closeAll, nil
	}
}

// discover lists, at once, everything the session's initialize result says
// the server offers, as vmcp does for each backend of a new session.
func (s *mcpSession) discover(ctx context.Context) error {
	var res struct {
		Capabilities struct {
			Tools, Resources, Prompts json.RawMessage
		}
	}
	if err := json.Unmarshal(s.initResult, &res); err != nil {
		return fmt.Errorf("initialize result: %w", err)
	}
	var methods []string
	if res.Capabilities.Tools != nil {
		methods = append(methods, "tools/list")
	}
	if res.Capabilities.Resources != nil {
		methods = append(methods, "resources/list", "resources/templates/list")
	}
	if res.Capabilities.Prompts != nil {
		methods = append(methods, "prompts/list")
	}
	errs := make([]error, len(methods))
	var wg sync.WaitGroup
	for i, m := range methods {
		// post, unlike call, is safe alongside other posts of the session.
		id := int64(1000 + i)
		body := []byte(`{"jsonrpc":"2.0","id":` + strconv.FormatInt(id, 10) + `,"method":"` + m + `","params":{}}`)
		wg.Go(func() {
			if _, _, err := s.post(ctx, body, id); err != nil {
				errs[i] = fmt.Errorf("%s: %w", m, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// initScenario times initialize through vmcp with 1, 10 and 20 backends,
// each taking 20 ms to initialize, and against one backend directly. It
// also times, with no gateway, what opening 1 and 20 backends at once costs
// the backends themselves: the floor under vmcp's figures. It does all of
// that twice: against the example server, the target's backend, and against
// the null server, whose own work is next to nothing, so that vmcp's part
// shows apart from the go-sdk backends'.
func (r *runner) initScenario(ctx context.Context) error {
	const delay = 20 * time.Millisecond
	conc := r.opts.initConcurrency
	if conc == 0 {
		conc = initWave
	}
	concNote := fmt.Sprintf("%d (set by the bench, so that 20 backends start in one wave rather than two at vmcp's default of 10)", conc)
	if r.opts.initConcurrency > 0 {
		concNote = fmt.Sprintf("%d (-init-concurrency)", conc)
	}

	bs, err := r.fleet.startExamples(r.bins.example, "i", 20, delay)
	defer stopAll(bs)
	if err != nil {
		return err
	}
	ex, err := r.initSuite(ctx, bs, conc, "example server")
	stopAll(bs)
	if err != nil {
		return err
	}
	r.rep.table("INIT: initialize latency, every backend with a 20 ms initialize delay", initHeader, ex.rows,
		fmt.Sprintf("Sequential sessions, each deleted after its initialize; CPU per session covers opening and DELETE, summed over all backends. "+
			"The backends are example servers (go-sdk). backendInitConcurrency: %s. vmcp 1-backend p50 ÷ direct p50: %s. "+
			"The \"no gateway\" rows are the floor under vmcp's: the generator itself opens a session on every backend at once, "+
			"timed until the slowest has answered initialize and notifications/initialized (\"handshake\"), and, "+
			"for \"+ lists\", every list its capabilities offer, as vmcp does for a new session. "+
			"At 20 backends the floor is %s vmcp's 1-backend p50 (handshake alone: %s): "+
			"the backends' own work after their delay shares the machine's %d cores, whatever the gateway does.",
			concNote, fmtRatio(ratio(float64(ex.one.p50), float64(ex.direct.p50))), fmtRatio(ex.listFloor()), fmtRatio(ex.handshakeFloor()), runtime.NumCPU()))

	exe, err := os.Executable()
	if err != nil {
		return err
	}
	ns, err := r.fleet.startNulls(exe, "n", 20, delay)
	defer stopAll(ns)
	if err != nil {
		return err
	}
	lean, err := r.initSuite(ctx, ns, conc, "null server")
	if err != nil {
		return err
	}
	r.rep.table("INIT with lean backends: the same, against null servers with the same 20 ms delay", initHeader, lean.rows,
		fmt.Sprintf("As above, with every backend a null server: plain JSON, no SDK, the same four lists. "+
			"Each runs on one P. Even these 20 backends together spend more CPU per session than vmcp does (the last two columns), "+
			"on the same %d cores. At 20 backends the floor is %s vmcp's 1-backend p50 (handshake alone: %s).",
			runtime.NumCPU(), fmtRatio(lean.listFloor()), fmtRatio(lean.handshakeFloor())))

	rt := ex.ratio()
	r.rep.check(rt > 0 && rt <= 1.5 && ex.ok(), "INIT",
		"20-backend initialize p50 %s = %.3f× the 1-backend p50 %s; target ≤ 1.50×; with no gateway, 20 backends at once take %.3f× it (handshake alone %.3f×); "+
			"against null servers, vmcp %.3f× and no gateway %.3f×",
		fmtDur(ex.twenty.p50), rt, fmtDur(ex.one.p50), ex.listFloor(), ex.handshakeFloor(), lean.ratio(), lean.listFloor())
	return nil
}

var initHeader = []string{"via", "backends", "samples", "errors", "p50", "mean", "p99",
	"p50 ÷ the same via's 1-backend p50", "vmcp CPU/session", "backends CPU/session"}

// initFigures are one INIT suite's results.
type initFigures struct {
	rows                [][]string
	direct, one, twenty initResult
	floors              [2]initResult // 20 backends, no gateway: handshake; handshake + lists
}

// ratio is vmcp's 20-backend p50 over its 1-backend p50: what the target
// bounds. The floors are the no-gateway 20-backend p50s over the same.
func (f *initFigures) ratio() float64          { return f.over(f.twenty) }
func (f *initFigures) handshakeFloor() float64 { return f.over(f.floors[0]) }
func (f *initFigures) listFloor() float64      { return f.over(f.floors[1]) }
func (f *initFigures) over(r initResult) float64 {
	return ratio(float64(r.p50), float64(f.one.p50))
}
func (f *initFigures) ok() bool { return f.one.errors == 0 && f.twenty.errors == 0 }

// initSuite measures INIT against the 20 backends bs: one directly, vmcp in
// front of 1, 10 and 20, and the no-gateway floors. kind names the backends
// in error notes.
func (r *runner) initSuite(ctx context.Context, bs []*backendProc, conc int, kind string) (initFigures, error) {
	var f initFigures
	n := r.size.initSamples
	clients := make([]*mcpClient, len(bs))
	for i, b := range bs {
		clients[i] = newMCPClient(b.url, 4) // room for discover's lists at once
		defer clients[i].Close()
	}
	backends := func(k int) []watched {
		var ws []watched
		for _, b := range bs[:k] {
			ws = append(ws, watched{"backends", b.pid()})
		}
		return ws
	}
	add := func(via string, backends int, res initResult, rt string) {
		vmcpCPU := "–"
		if d, ok := res.cpu["vmcp"]; ok {
			vmcpCPU = fmtDur(d)
		}
		f.rows = append(f.rows, []string{via, fmt.Sprint(backends), fmt.Sprint(res.samples), fmt.Sprint(res.errors),
			fmtDur(res.p50), fmtDur(res.mean), fmtDur(res.p99), rt, vmcpCPU, fmtDur(res.cpu["backends"])})
		for _, e := range res.errSamples {
			r.rep.note("INIT (%s) %s %d backends error: %s", kind, via, backends, e)
		}
	}
	f.direct = measureInit(ctx, n, backends(1), openOne(clients[0]))
	add("direct", 1, f.direct, "–")
	// All 20 backends must start at once: with vmcp's default of 10 at a
	// time, 20 backends would connect in two waves, 2× by construction.
	for _, k := range []int{1, 10, 20} {
		cfg := &vmcpConfig{maxSessions: 5000, initConcurrency: conc}
		for _, b := range bs[:k] {
			cfg.add(b.nameOnly(), b.url)
		}
		v, err := r.fleet.startVMCP(ctx, r.bins.vmcp, r.tmp, r.opts.logLevel, cfg)
		if err != nil {
			return f, err
		}
		c := newMCPClient(v.url, 1)
		res := measureInit(ctx, n, append(backends(k), watched{"vmcp", v.pid()}), openOne(c))
		c.Close()
		v.stop(10 * time.Second)
		switch k {
		case 1:
			f.one = res
		case 20:
			f.twenty = res
		}
		add("vmcp", k, res, fmtRatio(ratio(float64(res.p50), float64(f.one.p50))))
	}
	// The floors: the generator opens every backend at once itself.
	for i, discover := range []bool{false, true} {
		via := "no gateway, all at once: handshake"
		if discover {
			via += " + lists"
		}
		var first initResult
		for _, k := range []int{1, 20} {
			res := measureInit(ctx, n, backends(k), openAll(clients[:k], discover))
			rt := "–"
			if k == 1 {
				first = res
			} else {
				f.floors[i] = res
				rt = fmtRatio(ratio(float64(res.p50), float64(first.p50)))
			}
			add(via, k, res, rt)
		}
	}
	return f, nil
}

// initWave is the backendInitConcurrency INIT uses unless -init-concurrency
// says otherwise: its largest case, 20 backends.
const initWave = 20
