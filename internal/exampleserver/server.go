// Package exampleserver provides small, real MCP servers built with the
// official go-sdk. vmcp uses them as the backends of its built-in demo, as
// fixtures in integration tests and as the baseline in benchmarks.
//
// Every server offers the same tools, resources, prompts and completions, so
// any of them can stand in for another; [Options.Name] tells them apart (see
// the whoami tool and the resource URIs). The tools counter, note_add and
// note_list keep state per MCP session, which lets tests prove that a client
// keeps talking to the same backend session.
//
// Serve a server with [HTTPHandler] (Streamable HTTP), [SSEHandler] (legacy
// HTTP+SSE) or [ServeStdio], or connect the result of [New] to any go-sdk
// transport.
package exampleserver

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Version is reported in serverInfo.
const Version = "1.0.0"

// Options configures an example server. The zero value is a server named
// "example".
type Options struct {
	// Name is the server name in serverInfo, e.g. "counter". It also appears
	// in resource URIs, so keep it URI-safe ([a-z0-9_-]).
	Name string
	// InitDelay is an artificial delay inside initialize handling, for
	// benchmarks and timeout tests. Zero means none.
	InitDelay time.Duration
	// Stats, if set, counts what the server saw.
	Stats *Stats
	// Logger, if set, receives debug records about sessions. Session IDs are
	// never logged.
	Logger *slog.Logger
}

func (o Options) name() string {
	if o.Name == "" {
		return "example"
	}
	return o.Name
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o.Logger
}

// New returns an MCP server offering the example capabilities. It may be
// connected to any number of transports; per-session state lives as long as
// each session does.
func New(opts Options) *mcp.Server {
	return newServer(opts, context.Background())
}

// server holds what the handlers of one *mcp.Server share.
type server struct {
	name     string
	opts     Options
	log      *slog.Logger
	life     context.Context // when done, in-flight requests are cancelled
	sessions sessionTable
}

// newServer builds the MCP server. Cancelling life cancels every in-flight
// request, so that closing a session (which waits for in-flight requests)
// does not wait for a long sleep_ms.
func newServer(opts Options, life context.Context) *mcp.Server {
	s := &server{
		name: opts.name(),
		opts: opts,
		log:  opts.logger(),
		life: life,
	}
	s.sessions.stats = opts.Stats
	// The SDK's own logger is left unset on purpose: it logs session IDs.
	srv := mcp.NewServer(
		&mcp.Implementation{Name: s.name, Title: "vmcp example server " + s.name, Version: Version},
		&mcp.ServerOptions{
			Instructions:      "Example MCP server " + s.name + " for vmcp demos and tests.",
			CompletionHandler: s.complete,
		},
	)
	srv.AddReceivingMiddleware(s.middleware)
	s.addTools(srv)
	s.addNotes(srv)
	s.addResources(srv)
	s.addPrompts(srv)
	return srv
}

// middleware counts requests, applies InitDelay and ties every request to
// s.life.
func (s *server) middleware(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		if s.life.Done() != nil {
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			defer cancel()
			defer context.AfterFunc(s.life, cancel)()
		}
		switch method {
		case "initialize":
			s.opts.Stats.addInitialize()
			if err := sleep(ctx, s.opts.InitDelay); err != nil {
				return nil, err
			}
			res, err := next(ctx, method, req)
			if err == nil {
				if ss, ok := req.GetSession().(*mcp.ServerSession); ok {
					s.sessions.get(ss)
					s.log.Debug("session initialized", "server", s.name)
				}
			}
			return res, err
		case "tools/call":
			if r, ok := req.(*mcp.CallToolRequest); ok && r.Params != nil {
				s.opts.Stats.addCall(r.Params.Name)
			}
		}
		return next(ctx, method, req)
	}
}

// sleep waits for d or until ctx is done, whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sessionState is what one MCP session remembers.
type sessionState struct {
	mu    sync.Mutex
	count int
	notes []string
}

// sessionTable maps live sessions to their state. Entries are created on
// initialize (or on first use, for sessionless protocol versions) and removed
// when the session's connection closes.
type sessionTable struct {
	stats *Stats
	mu    sync.Mutex
	m     map[*mcp.ServerSession]*sessionState
}

func (t *sessionTable) get(ss *mcp.ServerSession) *sessionState {
	t.mu.Lock()
	defer t.mu.Unlock()
	if st, ok := t.m[ss]; ok {
		return st
	}
	if t.m == nil {
		t.m = make(map[*mcp.ServerSession]*sessionState)
	}
	st := &sessionState{}
	t.m[ss] = st
	t.stats.sessionOpened()
	// The SDK has no close hook for sessions; Wait returns once the
	// connection is closed by either side, so this goroutine ends with it.
	go func() {
		_ = ss.Wait()
		t.mu.Lock()
		delete(t.m, ss)
		t.mu.Unlock()
		t.stats.sessionClosed()
	}()
	return st
}
