package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// binaries are the programs under test, built fresh for each run.
type binaries struct {
	vmcp    string
	example string
}

// buildBinaries builds cmd/vmcp and cmd/vmcp-example-server from the module
// at root into dir.
func buildBinaries(ctx context.Context, root, dir string) (binaries, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(os.PathSeparator), "./cmd/vmcp", "./cmd/vmcp-example-server")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return binaries{}, fmt.Errorf("go build: %w\n%s", err, out)
	}
	return binaries{vmcp: filepath.Join(dir, "vmcp"), example: filepath.Join(dir, "vmcp-example-server")}, nil
}

// moduleRoot returns the directory of the main module's go.mod, as the go
// command sees it from the working directory.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the vmcp module; run from the repository")
	}
	return filepath.Dir(mod), nil
}

// fleet owns every child process of a run, so that all of them die when
// the run ends, however it ends. Children also get SIGKILL from the kernel
// if the bench process itself dies (Pdeathsig).
type fleet struct {
	mu      sync.Mutex
	procs   []*proc
	vmcpEnv []string // added to every vmcp's environment (-vmcp-gomaxprocs)
}

// proc is one child process.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stderr *tail
	done   chan struct{} // closed when the process has exited
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to grace, then kills. It is idempotent.
func (p *proc) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// start runs a child. If first is non-nil, it receives the first line the
// child writes to stdout; the rest of stdout is discarded.
func (f *fleet) start(name string, argv []string, env []string, first chan<- string) (*proc, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &proc{name: name, cmd: cmd, stderr: &tail{max: 16 << 10}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	cmd.Stdout = &firstLine{ch: first}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	f.mu.Lock()
	f.procs = append(f.procs, p)
	f.mu.Unlock()
	return p, nil
}

// firstLine sends the first line written to it on ch, then discards.
type firstLine struct {
	ch   chan<- string
	line []byte
}

func (w *firstLine) Write(p []byte) (int, error) {
	if w.ch == nil {
		return len(p), nil
	}
	if i := bytes.IndexByte(p, '\n'); i >= 0 {
		w.ch <- string(append(w.line, p[:i]...))
		w.ch, w.line = nil, nil
	} else if len(w.line) < 4096 {
		w.line = append(w.line, p...)
	}
	return len(p), nil
}

// stopAll stops every child still running, in parallel.
func (f *fleet) stopAll() {
	f.mu.Lock()
	procs := f.procs
	f.procs = nil
	f.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(func() { p.stop(5 * time.Second) })
	}
	wg.Wait()
}

// backendProc is an example MCP server (or the null server) in its own
// process.
type backendProc struct {
	*proc
	url  string
	port int
}

// startServer starts a child that prints "listening on URL" as its first
// stdout line, within 15 s.
func (f *fleet) startServer(name string, argv []string, env []string) (*backendProc, error) {
	first := make(chan string, 1)
	p, err := f.start(name, argv, env, first)
	if err != nil {
		return nil, err
	}
	b := &backendProc{proc: p}
	if err := b.parseListening(first); err != nil {
		p.stop(time.Second)
		return nil, fmt.Errorf("%s: %w\n%s", name, err, p.stderr.String())
	}
	return b, nil
}

func (b *backendProc) parseListening(first <-chan string) error {
	var s string
	select {
	case s = <-first:
	case <-b.done:
		return fmt.Errorf("exited before listening (%v)", b.cmd.ProcessState)
	case <-time.After(15 * time.Second):
		return errors.New("no 'listening on' line within 15s")
	}
	u, ok := strings.CutPrefix(strings.TrimSpace(s), "listening on ")
	if !ok {
		return fmt.Errorf("unexpected first line %q", s)
	}
	pu, err := url.Parse(u)
	if err != nil {
		return err
	}
	if host := pu.Hostname(); host != "127.0.0.1" && host != "::1" {
		return fmt.Errorf("server listens on %s, not loopback", host)
	}
	b.url = u
	b.port, err = strconv.Atoi(pu.Port())
	return err
}

// startExample starts one example MCP server over Streamable HTTP.
func (f *fleet) startExample(bin, name string, initDelay time.Duration) (*backendProc, error) {
	return f.startServer("backend "+name, []string{bin, "-transport", "http", "-listen", "127.0.0.1:0",
		"-name", name, "-init-delay", initDelay.String()}, nil)
}

// startExamples starts n example servers named prefix0..prefix(n-1) in
// parallel.
func (f *fleet) startExamples(bin, prefix string, n int, initDelay time.Duration) ([]*backendProc, error) {
	return startN(n, func(i int) (*backendProc, error) {
		return f.startExample(bin, fmt.Sprintf("%s%d", prefix, i), initDelay)
	})
}

// vmcpConfig is what a bench run puts in vmcp's config file.
type vmcpConfig struct {
	backends        []namedURL
	maxSessions     int
	initConcurrency int // 0: vmcp's default
	pprof           bool
	adminPort       int // with pprof: the admin listener's port, which serves the profiles
	// oidcIssuer, if set, turns on incomingAuth oidc with that issuer, for
	// tokens whose audience is resource.
	oidcIssuer, resource string
	// tracingEndpoint, if set, exports every span there over OTLP/HTTP.
	tracingEndpoint string
}

type namedURL struct{ name, url string }

func (c *vmcpConfig) add(name, url string) { c.backends = append(c.backends, namedURL{name, url}) }

// yaml renders the config. Only keys the bench needs are set; everything
// else keeps vmcp's defaults.
func (c *vmcpConfig) yaml() string {
	var b strings.Builder
	b.WriteString("backends:\n")
	for _, n := range c.backends {
		fmt.Fprintf(&b, "  - name: %s\n    transport: streamable-http\n    url: %s\n    timeout: 30s\n", n.name, n.url)
	}
	b.WriteString("session:\n")
	fmt.Fprintf(&b, "  maxSessions: %d\n", max(c.maxSessions, 1))
	// Every bench client comes from one loopback address: one identity.
	b.WriteString("  maxSessionsPerIdentity: 0\n")
	if c.initConcurrency > 0 {
		fmt.Fprintf(&b, "  backendInitConcurrency: %d\n", c.initConcurrency)
	}
	if c.oidcIssuer != "" {
		fmt.Fprintf(&b, "incomingAuth:\n  type: oidc\n  issuer: %s\n  resource: %s\n", c.oidcIssuer, c.resource)
	}
	if c.pprof {
		fmt.Fprintf(&b, "server:\n  pprof: true\n  adminListen: 127.0.0.1:%d\n", c.adminPort)
	}
	if c.tracingEndpoint != "" {
		fmt.Fprintf(&b, "telemetry:\n  tracing:\n    endpoint: %s\n    sampling: 1.0\n", c.tracingEndpoint)
	}
	return b.String()
}

// vmcpProc is a running gateway.
type vmcpProc struct {
	*proc
	base string // http://127.0.0.1:PORT
	url  string // MCP endpoint
	cfg  string // config file path

	// admin is the admin listener's base URL, where the profiles are;
	// set when the config has pprof.
	admin string
}

// metricsBase is where vmcp serves /metrics: the admin listener when the
// config has one, the main listener otherwise.
func (v *vmcpProc) metricsBase() string {
	if v.admin != "" {
		return v.admin
	}
	return v.base
}

// startVMCP writes cfg to dir and serves it on a free loopback port,
// returning once /readyz answers 200 (within 20 s).
func (f *fleet) startVMCP(ctx context.Context, bin, dir, logLevel string, cfg *vmcpConfig) (*vmcpProc, error) {
	if cfg.pprof && cfg.adminPort == 0 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		cfg.adminPort = port
	}
	v, err := f.startVMCPYAML(ctx, bin, dir, logLevel, cfg.yaml())
	if err == nil && cfg.pprof {
		v.admin = fmt.Sprintf("http://127.0.0.1:%d", cfg.adminPort)
	}
	return v, err
}

func (v *vmcpProc) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if v.exited() {
			return fmt.Errorf("exited before it was ready (%v)", v.cmd.ProcessState)
		}
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		req, _ := http.NewRequestWithContext(rctx, http.MethodGet, v.base+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("/readyz not 200 within %v", limit)
}

// freePort asks the kernel for a free loopback port. Another process could
// take it before vmcp binds it; startVMCP then fails with vmcp's error.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// tail keeps the last max bytes written to it, for error reports. It is
// safe for concurrent use.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// startNulls starts n null servers named prefix0..prefix(n-1) in parallel,
// each answering initialize after initDelay. exe is the bench's own binary.
// Each gets one P, as the null proxy does: a server this small has no use
// for more, and a spare P only wakes threads that cost CPU.
func (f *fleet) startNulls(exe, prefix string, n int, initDelay time.Duration) ([]*backendProc, error) {
	return startN(n, func(i int) (*backendProc, error) {
		return f.startServer(fmt.Sprintf("null server %s%d", prefix, i), []string{exe},
			[]string{nullServerEnv + "=1", nullInitDelayEnv + "=" + initDelay.String(), "GOMAXPROCS=1"})
	})
}

// startN starts n servers with start, in parallel.
func startN(n int, start func(i int) (*backendProc, error)) ([]*backendProc, error) {
	out := make([]*backendProc, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { out[i], errs[i] = start(i) })
	}
	wg.Wait()
	return out, errors.Join(errs...)
}
