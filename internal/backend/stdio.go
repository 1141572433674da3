package backend

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vmcp/vmcp/internal/recovery"
	"github.com/vmcp/vmcp/internal/redact"
)

// StdioOptions configure a stdio backend: one child process per Connect,
// speaking newline-delimited JSON-RPC on stdin/stdout.
type StdioOptions struct {
	// Name is the backend name, used in errors and logs.
	Name string
	// Command is the program and its arguments.
	Command []string
	// Env is added to the child's environment, winning over vmcp's. It may
	// hold secrets and is never logged.
	Env map[string]string
	// InheritEnv gives the child all of vmcp's environment; by default it
	// gets only PATH, HOME, LANG and TMPDIR from it (stdio_env.go).
	InheritEnv bool
	// Timeout bounds each Call (0 = none).
	Timeout time.Duration
	// KillGrace is how long Close waits after SIGTERM before SIGKILL;
	// default 2s.
	KillGrace time.Duration
	// MaxMessageBytes caps one line from the child; default 32 MiB.
	MaxMessageBytes int
	// Logger receives the child's stderr, one INFO record per line
	// ("backend stderr", with the text in attribute line).
	Logger *slog.Logger
	// Redactor hides secrets in those lines; the gateway passes its own,
	// built from every configured secret. nil: one built from Env.
	Redactor *redact.Redactor

	// Warm is how many started and initialized processes to keep ready for
	// new sessions; 0 keeps none (stdio_pool.go).
	Warm int
	// WarmIdleTimeout stops a warm process that no session took for this
	// long; default 5m.
	WarmIdleTimeout time.Duration
	// InitTimeout bounds the start and initialize of a warm process (a
	// session's own connect is bounded by its context); default 5s.
	InitTimeout time.Duration
	// Processes caps the children of all the connectors sharing it; nil sets
	// no cap.
	Processes *ProcessLimit
	// Now is the warm pool's clock; default time.Now. Tests may fake it.
	Now func() time.Time
}

const (
	defaultKillGrace = 2 * time.Second
	// exitGrace is how long after the child exits its last output may still
	// be read before pending calls fail; it matters only when a grandchild
	// keeps stdout open.
	exitGrace = 200 * time.Millisecond
	// maxStderrLine truncates a stderr line in the log.
	maxStderrLine = 8 << 10
)

// NewStdio returns a Connector that starts one child process per Connect,
// so that stateful servers stay isolated per session.
func NewStdio(opts StdioOptions) Connector {
	if opts.KillGrace <= 0 {
		opts.KillGrace = defaultKillGrace
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = defaultMaxMessage
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Redactor == nil {
		opts.Redactor = redact.New(slices.Collect(maps.Values(opts.Env))...)
	}
	x := &stdioConnector{opts: opts}
	if opts.Warm > 0 && len(opts.Command) > 0 {
		x.pool = newWarmPool(x)
	}
	return x
}

// stdioConnector starts the children of one stdio backend. Its warm pool,
// if any, is its own: Close stops it.
type stdioConnector struct {
	opts    StdioOptions
	running atomic.Int64 // children started and not yet reaped
	pool    *warmPool    // nil without StdioOptions.Warm
}

// Close stops the warm pool and terminates its idle processes. Processes
// that sessions took are theirs to close.
func (x *stdioConnector) Close() error {
	if x.pool != nil {
		x.pool.close()
	}
	return nil
}

// Connections is the number of this backend's processes running now, warm
// ones included.
func (x *stdioConnector) Connections() int { return int(x.running.Load()) }

// Connect hands out a warm process initialized with the same handshake if
// the pool has one, and starts a new one otherwise.
func (x *stdioConnector) Connect(ctx context.Context, opts ConnectOptions) (Client, *InitializeResult, error) {
	if x.pool != nil {
		if c, res := x.pool.take(opts); c != nil {
			return c, res, nil
		}
	}
	c, res, err := x.connectCold(ctx, opts)
	if err != nil {
		return nil, nil, err
	}
	return c, res, nil
}

// connectCold starts a child and runs the handshake.
func (x *stdioConnector) connectCold(ctx context.Context, opts ConnectOptions) (*client, *InitializeResult, error) {
	o := x.opts
	if len(o.Command) == 0 {
		return nil, nil, opError(o.Name, "start", errors.New("no command"))
	}
	c := newClient(o.Name, o.Timeout, o.Logger, opts.Handler)
	if err := x.start(c); err != nil {
		c.cancel()
		return nil, nil, opError(o.Name, "start", err)
	}
	res, err := c.initialize(ctx, opts)
	if err != nil {
		_ = c.Close()
		return nil, nil, err
	}
	return c, res, nil
}

// start starts c's child within the process limit; the child's slot is
// given back once it is reaped.
func (x *stdioConnector) start(c *client) error {
	lim := x.opts.Processes
	if !lim.acquire() {
		return lim.limitError()
	}
	x.running.Add(1)
	reaped := func() {
		x.running.Add(-1)
		lim.release()
	}
	if err := startChild(c, x.opts, reaped); err != nil {
		reaped()
		return err
	}
	return nil
}

// stdioConn is one child process.
type stdioConn struct {
	*mux
	opts   StdioOptions
	cmd    *exec.Cmd
	stdin  *os.File
	stdout *os.File
	stderr *os.File

	wmu sync.Mutex
	w   *bufio.Writer
	r   *bufio.Reader
	buf []byte // accumulates a line longer than r's buffer

	exited   chan struct{} // closed when Wait returns
	exitErr  error         // Wait's result, set before exited is closed
	readDone chan struct{}
	// errDone is closed when the stderr reader has returned.
	errDone chan struct{}
	wg      sync.WaitGroup // reader, stderr logger, waiter
}

// startChild starts the process and the goroutines that serve it, and
// makes it c's conn. reaped runs once the child has been waited for, before
// Close returns; it does not run if startChild fails.
func startChild(c *client, o StdioOptions, reaped func()) error {
	// Pipes are made by hand (not StdoutPipe) so that Wait does not close
	// them under the reader: output the child wrote before exiting is still
	// read.
	inR, inW, err := os.Pipe()
	if err != nil {
		return err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		closeAll(inR, inW)
		return err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		closeAll(inR, inW, outR, outW)
		return err
	}
	cmd := exec.Command(o.Command[0], o.Command[1:]...)
	cmd.Env = parentEnv(o.InheritEnv)
	for _, k := range slices.Sorted(maps.Keys(o.Env)) {
		cmd.Env = append(cmd.Env, k+"="+o.Env[k])
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	setProcessGroup(cmd)
	err = cmd.Start()
	closeAll(inR, outW, errW) // the child holds its own copies
	if err != nil {
		closeAll(inW, outR, errR)
		return unavailable(err)
	}
	s := &stdioConn{
		opts: o, cmd: cmd, stdin: inW, stdout: outR, stderr: errR,
		w:        bufio.NewWriterSize(inW, 16<<10),
		r:        bufio.NewReaderSize(outR, 64<<10),
		exited:   make(chan struct{}),
		readDone: make(chan struct{}),
		errDone:  make(chan struct{}),
	}
	s.mux = newMux(c, s)
	c.conn = s
	s.wg.Add(3)
	go func() {
		defer s.wg.Done()
		defer close(s.readDone)
		s.readLoop(s.readFailure)
	}()
	go func() {
		defer s.wg.Done()
		defer close(s.errDone)
		// Without a reader the child would block on a full stderr pipe.
		defer recovery.Recover(c.log, func(err error) {
			s.fail(fmt.Errorf("%w: %w", ErrUnavailable, err))
			_, _ = io.Copy(io.Discard, s.stderr)
		}, "backend", o.Name, "during", "reading stderr")
		s.logStderr()
	}()
	go func() {
		defer s.wg.Done()
		s.exitErr = cmd.Wait()
		close(s.exited)
		// Let the reader take what the child wrote last, then fail what is
		// still pending even if a grandchild holds stdout open.
		t := time.NewTimer(exitGrace)
		select {
		case <-s.readDone:
		case <-t.C:
		}
		t.Stop()
		s.fail(s.exitError())
		// Counted gone only once calls see it gone.
		reaped()
	}()
	return nil
}

func (s *stdioConn) sessionID() string { return "" }

// read returns the next non-empty line from the child's stdout. A line
// over the size limit is skipped to its end, and reported as *oversized:
// the child and its backend session go on.
func (s *stdioConn) read() ([]byte, error) {
	for {
		line, err := s.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			s.buf = append(s.buf[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				if len(s.buf) > s.opts.MaxMessageBytes {
					return nil, s.skipLine(s.buf)
				}
				line, err = s.r.ReadSlice('\n')
				s.buf = append(s.buf, line...)
			}
			line = s.buf
		}
		if err != nil {
			return nil, err
		}
		if len(line) > s.opts.MaxMessageBytes+2 { // allow for "\r\n"
			return nil, &oversized{err: tooLarge(s.opts.MaxMessageBytes), head: bytes.Clone(line[:min(len(line), oversizedHead)])}
		}
		line = line[:len(line)-1]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) > 0 {
			return line, nil
		}
	}
}

// oversizedHead is how much of a skipped message is kept, to find its id.
const oversizedHead = 4 << 10

// skipLine reads and drops the rest of a line whose start, read so far,
// is over the size limit. Only a read error ends the connection.
func (s *stdioConn) skipLine(start []byte) error {
	head := bytes.Clone(start[:min(len(start), oversizedHead)])
	for {
		_, err := s.r.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err != nil:
			return err
		}
		return &oversized{err: tooLarge(s.opts.MaxMessageBytes), head: head}
	}
}

func (s *stdioConn) write(_ context.Context, msg []byte) error {
	select {
	case <-s.exited:
		// What it wrote last may still be read; nothing more goes to it.
		return fmt.Errorf("%w: %w", errConnEnded, s.exitError())
	default:
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if _, err := s.w.Write(msg); err != nil {
		return err
	}
	if err := s.w.WriteByte('\n'); err != nil {
		return err
	}
	return s.w.Flush()
}

// readFailure turns the end of stdout into the error calls get: normally
// the child exited, and its exit status is worth reporting.
func (s *stdioConn) readFailure(err error) error {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-s.exited:
		return s.exitError()
	case <-t.C:
		return fmt.Errorf("%w: reading stdout: %v", ErrUnavailable, err)
	}
}

func (s *stdioConn) exitError() error {
	status := "exit status 0"
	if s.exitErr != nil {
		status = s.exitErr.Error()
	}
	return fmt.Errorf("%w: process exited (%s)", ErrUnavailable, status)
}

// logStderr logs each line the child writes to stderr as that child's text,
// in an attribute (msg "backend stderr", line=…), so that a child's own log
// format never reads as vmcp's. Secrets (the configured env values among
// them) are redacted from it.
func (s *stdioConn) logStderr() {
	r := bufio.NewReaderSize(s.stderr, 4<<10)
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line) < maxStderrLine {
			line = append(line, chunk[:min(len(chunk), maxStderrLine-len(line))]...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if n := len(line); n > 0 && line[n-1] == '\n' {
			line = line[:n-1]
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) > 0 {
			s.c.log.Info("backend stderr", "backend", s.opts.Name, "line", s.opts.Redactor.Redact(string(line)))
		}
		line = line[:0]
		if err != nil {
			return
		}
	}
}

// shutdown closes stdin, sends SIGTERM, and after KillGrace SIGKILL; it
// always reaps the child and waits for the goroutines reading it.
func (s *stdioConn) shutdown() error {
	s.fail(ErrClosed)
	_ = s.stdin.Close()
	select {
	case <-s.exited: // already gone (and reaped): nothing to signal
	default:
		signalChild(s.cmd, syscall.SIGTERM)
		t := time.NewTimer(s.opts.KillGrace)
		select {
		case <-s.exited:
		case <-t.C:
			signalChild(s.cmd, syscall.SIGKILL)
			<-s.exited
		}
		t.Stop()
	}
	// What a child writes last before it exits is often why (a usage
	// line): let the stderr reader drain the pipe before closing it, unless
	// a grandchild holds it open. A grandchild may still hold the pipes;
	// closing our ends unblocks the readers.
	t := time.NewTimer(exitGrace)
	select {
	case <-s.errDone:
	case <-t.C:
	}
	t.Stop()
	closeAll(s.stdout, s.stderr)
	s.wg.Wait()
	return nil
}

func closeAll(fs ...io.Closer) {
	for _, f := range fs {
		_ = f.Close()
	}
}
