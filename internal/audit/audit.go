// Package audit writes vmcp's audit trail: one JSON object per line for
// each session created and closed, each backend client initialized, each
// tool call, prompt get and resource read with its policy decision, and
// each refusal (authentication, policy, rate limit).
//
// A Log never writes a secret: no token, no API key, no session ID (vmcp's
// or a backend's). A session is named by a keyed hash of its ID (HMAC-
// SHA256 with the Log's key), so that its events can be joined without the
// trail being a list of live credentials. Call arguments are left out
// unless asked for, and then redacted.
//
// Events are encoded on the goroutine that reports them and written by
// one goroutine of the Log's own, in the order they were reported, so a
// session's events stay in order. Reporting never blocks: when the writer
// falls behind by more than the buffer, events are dropped and counted;
// write errors are counted too (Observer).
package audit

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Observer counts the events a Log could not write (the metrics). It must
// be safe for concurrent use and quick.
type Observer interface {
	AuditDropped()
	AuditWriteFailed(events int)
}

// Options configure a Log.
type Options struct {
	// Path is the file events are appended to (created with mode 0600),
	// or "-" for Stdout.
	Path string
	// Stdout is where path "-" writes; default os.Stdout.
	Stdout io.Writer
	// Key is the HMAC key naming sessions; nil: 32 random bytes, so
	// that names hold only within this process.
	Key []byte
	// Arguments adds call arguments to events, passed through Redact.
	Arguments bool
	// Redact removes configured secret values from text; nil: none.
	Redact func(json.RawMessage) json.RawMessage
	// Policy says an authorization policy is configured: calls it let
	// through are recorded with decision "allow".
	Policy bool
	// Buffer is how many events may wait for the writer; default 4096.
	Buffer   int
	Observer Observer
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Log is an open audit trail. Its methods are safe for concurrent use;
// Close flushes it and must be called once.
type Log struct {
	opts   Options
	key    []byte
	out    io.Writer
	closer io.Closer // nil for Stdout

	mu     sync.RWMutex // guards closed against sends on a closed ch
	closed bool
	ch     chan []byte
	done   chan struct{}
}

// Event is one line of the trail. Empty fields are left out.
type Event struct {
	Time    time.Time `json:"time"`
	Event   string    `json:"event"`
	Session string    `json:"session,omitempty"` // keyed hash of the session ID
	// Issuer and Subject name an authenticated caller; Client an
	// anonymous one (its address).
	Issuer   string          `json:"issuer,omitempty"`
	Subject  string          `json:"subject,omitempty"`
	Client   string          `json:"client,omitempty"`
	How      string          `json:"how,omitempty"` // session_created: initialize or takeover; backend_client_initialized in a live session: reload or retry
	Backend  string          `json:"backend,omitempty"`
	Method   string          `json:"method,omitempty"`
	Tool     string          `json:"tool,omitempty"`     // tool_call, as the client named it
	Prompt   string          `json:"prompt,omitempty"`   // prompt_get
	Resource string          `json:"resource,omitempty"` // resource_read: the URI without query or user info
	Decision string          `json:"decision,omitempty"` // allow or deny, when a policy is configured
	Outcome  string          `json:"outcome,omitempty"`
	Reason   string          `json:"reason,omitempty"`
	Limit    string          `json:"limit,omitempty"` // rate_limited: call or initialize
	Duration *float64        `json:"durationMs,omitempty"`
	Backends []string        `json:"backends,omitempty"` // session_created: initialized
	Failed   []string        `json:"failed,omitempty"`   // session_created: failed to initialize
	Args     json.RawMessage `json:"arguments,omitempty"`
}

// Open opens the trail and writes its first event, audit_started, before
// returning, so that a path vmcp cannot write to (missing directory, no
// permission, full disk) is an error now rather than lost events later.
func Open(opts Options) (*Log, error) {
	if opts.Buffer <= 0 {
		opts.Buffer = 4096
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Observer == nil {
		opts.Observer = noObserver{}
	}
	l := &Log{opts: opts, key: opts.Key, ch: make(chan []byte, opts.Buffer), done: make(chan struct{})}
	if len(l.key) == 0 {
		l.key = make([]byte, 32)
		rand.Read(l.key)
	}
	switch opts.Path {
	case "-":
		l.out = opts.Stdout
		if l.out == nil {
			l.out = os.Stdout
		}
	case "":
		return nil, errors.New("audit.path: required")
	default:
		f, err := os.OpenFile(opts.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("audit.path: %w", err)
		}
		l.out, l.closer = f, f
	}
	line, _ := l.encode(Event{Event: "audit_started"})
	if _, err := l.out.Write(line); err != nil {
		if l.closer != nil {
			l.closer.Close()
		}
		return nil, fmt.Errorf("audit.path: writing %s: %w", opts.Path, err)
	}
	go l.write()
	return l, nil
}

type noObserver struct{}

func (noObserver) AuditDropped()        {}
func (noObserver) AuditWriteFailed(int) {}

// SessionName is the name events give a session: a keyed hash of its ID,
// which cannot be turned back into the ID.
func (l *Log) SessionName(id string) string {
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte(id))
	return hex.EncodeToString(m.Sum(nil)[:12])
}

func (l *Log) encode(e Event) ([]byte, error) {
	e.Time = l.opts.Now().UTC()
	b, err := json.Marshal(e)
	return append(b, '\n'), err
}

// Record writes e, stamped with the time, unless the writer is too far
// behind, when e is dropped and counted. It never blocks.
func (l *Log) Record(e Event) {
	line, err := l.encode(e)
	if err != nil {
		l.opts.Observer.AuditDropped()
		return
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		l.opts.Observer.AuditDropped()
		return
	}
	select {
	case l.ch <- line:
	default:
		l.opts.Observer.AuditDropped()
	}
}

// write is the writer goroutine: it flushes whenever it has caught up.
func (l *Log) write() {
	defer close(l.done)
	w := bufio.NewWriterSize(l.out, 64<<10)
	pending := 0 // lines in w not yet flushed
	flush := func() {
		if err := w.Flush(); err != nil {
			l.opts.Observer.AuditWriteFailed(pending)
			w.Reset(l.out) // a bufio.Writer keeps its error: start over
		}
		pending = 0
	}
	for line := range l.ch {
		w.Write(line)
		pending++
		if len(l.ch) == 0 {
			flush()
		}
	}
	flush()
}

// Close writes the events still buffered, then closes the file. Events
// recorded afterwards are dropped.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.done
		return nil
	}
	l.closed = true
	close(l.ch)
	l.mu.Unlock()
	<-l.done
	if l.closer != nil {
		return l.closer.Close()
	}
	return nil
}

// ObserveAuthFailure records a request refused by incoming authentication
// (it implements authn's Observer); reason is missing_token,
// invalid_token or insufficient_scope.
func (l *Log) ObserveAuthFailure(reason string) {
	l.Record(Event{Event: "auth_failure", Reason: reason})
}
