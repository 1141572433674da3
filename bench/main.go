// Command bench measures vmcp against the backend it fronts, called
// directly, in the same run.
//
//	go run ./bench                      # every scenario; writes bench/RESULTS.md
//	go run ./bench -quick               # smoke run with small counts
//	go run ./bench -scenarios S1,INIT   # a subset
//
// It builds cmd/vmcp and cmd/vmcp-example-server, runs each as its own
// child process on loopback, drives them with a lean Streamable HTTP MCP
// client and reads CPU, memory and sockets from /proc. Every child is
// killed when the run ends, also on error or Ctrl-C. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if code, ok := runHelper(); ok {
		os.Exit(code)
	}
	os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr))
}

// runHelper runs the null server or the null proxy when the environment
// asks this binary to be one, and reports whether it did. Scenarios start
// the bench's own binary (or its test binary) that way, so that each is a
// separate process like vmcp.
func runHelper() (code int, ok bool) {
	var err error
	switch {
	case os.Getenv(nullServerEnv) == "1":
		err = runNullServer()
	case os.Getenv(nullProxyEnv) != "":
		err = runNullProxy(os.Getenv(nullProxyEnv))
	case os.Getenv(httpProxyEnv) != "":
		err = runHTTPProxy(os.Getenv(httpProxyEnv))
	case os.Getenv(modernServerEnv) == "1":
		err = runModernServer()
	default:
		return 0, false
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench helper:", err)
		return 1, true
	}
	return 0, true
}

// options are the bench's flags.
type options struct {
	scenarios       []string
	quick           bool
	out             string // RESULTS.md path; "" writes none
	cpuprofile      string // where to save vmcp's CPU profile; "" takes none
	heapprofile     string // where to save vmcp's heap profile after SCALE; "" takes none
	profileSeconds  int
	settle          time.Duration // SCALE: wait after deleting sessions
	pool            int           // vmcp's HTTP pool per backend, the SCALE socket bound
	initConcurrency int           // session.backendInitConcurrency; 0 keeps vmcp's default
	vmcpProcs       int           // GOMAXPROCS for vmcp; 0 keeps the Go runtime's default
	listen          bool          // the generator opens a standalone GET stream per session
	logLevel        string        // vmcp's --log-level
	timeout         time.Duration // whole run
}

// scenarioIDs lists the scenarios in the order they run.
func scenarioIDs() []string {
	return []string{"S1", "S16", "S64", "CPU", "GEN", "INIT", "SCALE", "SCALEOUT", "BREAKER", "AUTH", "TRACE", "MODERN", "SOAK"}
}

// optIn are the scenarios that run only when named in -scenarios: the
// two-minute soak.
func optIn(id string) bool { return id == "SOAK" }

// defaultScenarioIDs are the scenarios a run without -scenarios does.
func defaultScenarioIDs() []string { return slices.DeleteFunc(scenarioIDs(), optIn) }

func cli(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	ids := scenarioIDs()
	list := fs.String("scenarios", strings.Join(defaultScenarioIDs(), ","), "comma-separated scenarios to run: "+strings.Join(ids, ", ")+" (SOAK only when named)")
	fs.BoolVar(&o.quick, "quick", false, "smoke run: small counts and a short settle time")
	out := fs.String("out", "", "write the results here (default bench/RESULTS.md for a full run of every scenario, none otherwise)")
	fs.StringVar(&o.cpuprofile, "cpuprofile-vmcp", "", "fetch a CPU profile of vmcp under S16 load and save it to this file (sets server.pprof: true and server.adminListen)")
	fs.IntVar(&o.profileSeconds, "cpuprofile-seconds", 10, "length of the vmcp CPU profile")
	fs.StringVar(&o.heapprofile, "heapprofile-vmcp", "", "SCALE: save vmcp's heap profile (after a GC) to this file once the sessions are deleted and settled, and to FILE.open with every session open (sets server.pprof: true and server.adminListen)")
	fs.DurationVar(&o.settle, "settle", 30*time.Second, "SCALE: how long to wait after all sessions are deleted before measuring RSS and goroutines (-quick: 3s)")
	fs.IntVar(&o.pool, "pool", 64, "vmcp's HTTP connection pool per backend: SCALE's bound on sockets per backend")
	fs.IntVar(&o.initConcurrency, "init-concurrency", 0, "session.backendInitConcurrency for vmcp (0: vmcp's default, except INIT, which uses 20)")
	fs.StringVar(&o.logLevel, "vmcp-log-level", "warn", "vmcp's --log-level")
	fs.IntVar(&o.vmcpProcs, "vmcp-gomaxprocs", 0, "run vmcp with GOMAXPROCS set to this (0: Go's default, the CPUs vmcp may use)")
	fs.BoolVar(&o.listen, "standalone-get", false, "S1, S16, S64: the generator opens each session's standalone GET stream after initialize, as the go-sdk and TypeScript SDK clients do, so the backend holds one whether called directly or through vmcp")
	fs.DurationVar(&o.timeout, "timeout", 20*time.Minute, "give up on the whole run after this long")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	for _, id := range strings.Split(*list, ",") {
		id = strings.ToUpper(strings.TrimSpace(id))
		if id == "" {
			continue
		}
		if !slices.Contains(ids, id) {
			fmt.Fprintf(stderr, "bench: unknown scenario %q (want %s)\n", id, strings.Join(ids, ", "))
			return 2
		}
		if !slices.Contains(o.scenarios, id) {
			o.scenarios = append(o.scenarios, id)
		}
	}
	if o.quick {
		setByUser := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { setByUser[f.Name] = true })
		if !setByUser["settle"] {
			o.settle = 3 * time.Second
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	root, err := moduleRoot(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	o.out = *out
	full := !o.quick && len(o.scenarios) == len(defaultScenarioIDs()) && !slices.ContainsFunc(o.scenarios, optIn)
	if o.out == "" && full {
		o.out = filepath.Join(root, "bench", "RESULTS.md")
	}

	r, err := run(ctx, root, o, stderr)
	var rep *report
	if r != nil {
		rep = r.rep
		rep.command = command(args)
		fmt.Fprint(stdout, rep.body())
		if o.out != "" {
			if werr := os.WriteFile(o.out, []byte(rep.document()), 0o644); werr != nil {
				err = errors.Join(err, fmt.Errorf("writing results: %w", werr))
			} else {
				fmt.Fprintf(stderr, "bench: wrote %s\n", o.out)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	if rep.failed() {
		return 3
	}
	return 0
}

// command is the command line as a user would type it.
func command(args []string) string {
	return strings.TrimSpace("go run ./bench " + strings.Join(args, " "))
}

// run builds the binaries, then runs the chosen scenarios in order and
// returns the runner holding the results. A scenario that fails is recorded
// in the report and the remaining ones still run. Every child process has
// exited when run returns.
func run(ctx context.Context, root string, o options, log io.Writer) (*runner, error) {
	tmp, err := os.MkdirTemp("", "vmcpbench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	fmt.Fprintf(log, "bench: building vmcp and the example server\n")
	bins, err := buildBinaries(ctx, root, tmp)
	if err != nil {
		return nil, err
	}
	r := &runner{opts: o, log: log, bins: bins, tmp: tmp, fleet: &fleet{}, rep: &report{started: time.Now(), loadAvg: loadAvg()}, size: sizesFor(o.quick)}
	if o.vmcpProcs > 0 {
		r.fleet.vmcpEnv = []string{"GOMAXPROCS=" + strconv.Itoa(o.vmcpProcs)}
		r.rep.info("vmcp ran with GOMAXPROCS=%d (-vmcp-gomaxprocs)", o.vmcpProcs)
	} else {
		r.rep.info("vmcp ran with Go's default GOMAXPROCS: the CPUs it may use")
	}

	defer r.fleet.stopAll()

	for _, id := range scenarioIDs() {
		if !slices.Contains(o.scenarios, id) {
			continue
		}
		if ctx.Err() != nil {
			return r, fmt.Errorf("stopped before %s: %w", id, context.Cause(ctx))
		}
		fmt.Fprintf(log, "bench: %s\n", id)
		start := time.Now()
		if err := r.scenario(ctx, id); err != nil {
			r.rep.note("%s did not complete: %v", id, oneLine(err))
			fmt.Fprintf(log, "bench: %s failed: %v\n", id, err)
		}
		fmt.Fprintf(log, "bench: %s took %v\n", id, time.Since(start).Round(time.Millisecond))
	}
	r.compareWithBaseline()
	return r, ctx.Err()
}

// oneLine keeps an error to one line for the report; the child stderr that
// errors carry goes to the log only.
func oneLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
