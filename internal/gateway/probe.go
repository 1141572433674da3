package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/vmcp/vmcp/internal/backend"
	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/credentials"
	"github.com/vmcp/vmcp/internal/jsonrpc"
)

// Probe categories: why a backend is unreachable.
const (
	ProbeTimeout     = "timeout"     // no answer within the init timeout
	ProbeUnreachable = "unreachable" // refused, no such program, exited, broken connection
	ProbeRejected    = "rejected"    // it answered initialize with an error
	ProbeLimit       = "limit"       // vmcp's own stdio process limit
	ProbeError       = "error"       // anything else (malformed answers, HTTP statuses)
)

// maxReason bounds the reason text taken from an error.
const maxReason = 200

// ProbeResult is the outcome of probing one backend: connect, initialize,
// close.
type ProbeResult struct {
	Backend   string
	Transport string
	// Err is nil when the backend is reachable. It may carry backend text:
	// show Category and Reason instead.
	Err error
	// Category is one of the Probe constants; "" when reachable.
	Category string
	// Reason says briefly and safely (no secrets, session IDs or URLs) what
	// went wrong and, for a timeout, which setting to change.
	Reason          string
	ProtocolVersion string
	Elapsed         time.Duration
	At              time.Time
}

// Reachable reports whether the backend initialized.
func (r ProbeResult) Reachable() bool { return r.Err == nil }

// String is the one line vmcp validate --probe prints for the backend.
func (r ProbeResult) String() string {
	if r.Reachable() {
		return fmt.Sprintf("%s: reachable (%s, protocol %s, %s)", r.Backend, r.Transport, r.ProtocolVersion, r.Elapsed.Round(time.Millisecond))
	}
	return fmt.Sprintf("%s: unreachable (%s): %s: %s", r.Backend, r.Transport, r.Category, r.Reason)
}

// ProbeStatus is a probe's outcome in /status. It carries no error text.
type ProbeStatus struct {
	At        time.Time `json:"at"`
	Reachable bool      `json:"reachable"`
	Category  string    `json:"category,omitempty"`
}

// Probe checks every backend of cfg once, in parallel, each within
// session.backendInitTimeout, and returns one result per backend in config
// order. It is vmcp validate --probe: it starts no warm pools and releases
// everything it made before it returns.
func Probe(ctx context.Context, cfg *config.Config, version string, log *slog.Logger) []ProbeResult {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	red := newRedactor(cfg, os.Getenv)
	log = slog.New(red.Handler(log.Handler()))
	sh := connectorShared{procs: backend.NewProcessLimit(cfg.Server.MaxStdioProcesses), initTimeout: cfg.Session.BackendInitTimeout.D(),
		budget: backend.NewBudget(cfg.Server.MaxBufferedResponseBytes, "server.maxBufferedResponseBytes"), red: red}
	results := make([]ProbeResult, len(cfg.Backends))
	connectors := make([]backend.Connector, len(cfg.Backends))
	creds := make([]*credentials.Provider, len(cfg.Backends))
	for i, b := range cfg.Backends {
		c, err := newConnector(b, log, sh)
		if err == nil {
			creds[i], err = outgoingCredentials(b, nil)
		}
		if err != nil {
			if c != nil {
				c.Close()
			}
			results[i] = probeResult(cfg, i, nil, err, 0)
			continue
		}
		connectors[i] = c
	}
	defer func() {
		for _, c := range connectors {
			if c != nil {
				c.Close()
			}
		}
	}()
	probeAll(ctx, cfg, connectors, creds, clientInfo(version), func(i int, r ProbeResult) { results[i] = r })
	return results
}

// probeAll probes each non-nil connector, at most
// session.backendInitConcurrency at once, and hands each result to done as
// it comes (from several goroutines at once). It returns when all are done.
func probeAll(ctx context.Context, cfg *config.Config, connectors []backend.Connector, creds []*credentials.Provider, info json.RawMessage, done func(int, ProbeResult)) {
	timeout := cfg.Session.BackendInitTimeout.D()
	sem := make(chan struct{}, max(1, cfg.Session.BackendInitConcurrency))
	var wg sync.WaitGroup
	for i, c := range connectors {
		if c == nil {
			continue
		}
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			pctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			start := time.Now()
			res, err := backend.Probe(pctx, c, backend.ConnectOptions{ProtocolVersion: backend.LatestProtocolVersion, ClientInfo: info,
				Token: probeToken(creds[i])})
			if ctx.Err() != nil {
				return // stopped: say nothing about the backend
			}
			done(i, probeResult(cfg, i, res, err, time.Since(start)))
		})
	}
	wg.Wait()
}

func clientInfo(version string) json.RawMessage {
	if version == "" {
		version = "dev"
	}
	info, _ := json.Marshal(map[string]string{"name": "vmcp", "version": version})
	return info
}

// probeResult classifies a probe's outcome.
func probeResult(cfg *config.Config, i int, res *backend.InitializeResult, err error, elapsed time.Duration) ProbeResult {
	b := cfg.Backends[i]
	r := ProbeResult{Backend: b.Name, Transport: b.Transport, Err: err, Elapsed: elapsed, At: time.Now()}
	if err == nil {
		r.ProtocolVersion = res.ProtocolVersion
		return r
	}
	initTimeout := cfg.Session.BackendInitTimeout.D()
	switch rpc := jsonrpc.AsError(err); {
	case errors.Is(err, backend.ErrProcessLimit):
		r.Category = ProbeLimit
		r.Reason = fmt.Sprintf("vmcp already runs %d stdio processes, the most server.maxStdioProcesses allows", cfg.Server.MaxStdioProcesses)
	case errors.Is(err, context.DeadlineExceeded):
		r.Category = ProbeTimeout
		if t := b.Timeout.D(); t < initTimeout {
			r.Reason = fmt.Sprintf("did not answer initialize within backends[%d].timeout (%s)", i, t)
		} else {
			r.Reason = fmt.Sprintf("did not initialize within session.backendInitTimeout (%s)", initTimeout)
		}
	case rpc != nil:
		r.Category = ProbeRejected
		r.Reason = safeReason(cfg, b, fmt.Sprintf("initialize answered with error %d: %s", rpc.Code, rpc.Message))
	case errors.Is(err, backend.ErrUnauthorized):
		r.Category = ProbeRejected
		r.Reason = safeReason(cfg, b, err.Error())
		if o := b.OutgoingAuth; o != nil && o.Type == config.OutgoingTokenExchange {
			// It answered: sessions will send a caller's exchanged token.
			r.Reason += " (outgoingAuth tokenExchange: the probe has no caller's token to exchange)"
		}
	case errors.Is(err, backend.ErrUnavailable):
		r.Category = ProbeUnreachable
		r.Reason = safeReason(cfg, b, err.Error())
	default:
		r.Category = ProbeError
		r.Reason = safeReason(cfg, b, err.Error())
	}
	return r
}

// safeReason shortens an error's text for the log. The backend package's
// errors carry no URLs, header values or session IDs; a backend's own
// error message might echo a configured secret, which is redacted.
func safeReason(cfg *config.Config, b config.Backend, msg string) string {
	msg = strings.TrimPrefix(msg, fmt.Sprintf("backend %q: ", b.Name))
	msg = newRedactor(cfg, os.Getenv).Redact(msg)
	msg = strings.Join(strings.Fields(msg), " ") // one line
	if len(msg) > maxReason {
		msg = msg[:maxReason] + "..."
	}
	return msg
}

// logProbe writes the one log line of a probed backend.
func logProbe(log *slog.Logger, r ProbeResult) {
	if r.Reachable() {
		log.Info("backend reachable", "backend", r.Backend, "transport", r.Transport,
			"protocol", r.ProtocolVersion, "elapsed", r.Elapsed.Round(time.Millisecond))
		return
	}
	log.Warn("backend unreachable", "backend", r.Backend, "transport", r.Transport,
		"category", r.Category, "reason", r.Reason)
}

// prober runs the startup probe of a Gateway and keeps its results for
// /status. Its methods are safe for concurrent use.
type prober struct {
	mu      sync.Mutex
	results map[string]ProbeStatus // by backend name
	cancel  context.CancelFunc
	done    chan struct{}
	stopped bool
}

// StartProbe probes every backend once in the background, as sessions
// would connect them but with no client capabilities: it logs one line per
// backend, counts the outcome towards the backend's circuit breaker and
// shows it in /status. Call it once the listener is up, so that the probe
// does not delay serving; a failed probe stops nothing. Shutdown stops it.
// Later calls do nothing.
func (g *Gateway) StartProbe() {
	p := &g.probe
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped || p.done != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	go func() {
		defer close(p.done)
		set := g.backends.Load()
		cfg := *g.cfg
		cfg.Backends = set.cfg
		probeAll(ctx, &cfg, set.connectors, set.creds, g.info, func(i int, r ProbeResult) {
			set.breakers[i].RecordConnect(r.Err)
			p.record(set.cfg[i].Name, r) // before the log line, which tests wait for
			logProbe(g.log, r)
		})
	}()
}

func (p *prober) record(name string, r ProbeResult) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.results == nil {
		p.results = make(map[string]ProbeStatus)
	}
	p.results[name] = ProbeStatus{At: r.At, Reachable: r.Reachable(), Category: r.Category}
}

// status returns a backend's probe outcome; nil if none is known.
func (p *prober) status(name string) *ProbeStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	if st, ok := p.results[name]; ok {
		return &st
	}
	return nil
}

// forget drops the outcome of a backend a reload removed or changed: it
// was another backend's.
func (p *prober) forget(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.results, name)
}

// stop ends a probe under way and waits for it.
func (p *prober) stop() {
	p.mu.Lock()
	p.stopped = true
	cancel, done := p.cancel, p.done
	p.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}
