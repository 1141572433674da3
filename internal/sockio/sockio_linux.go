package sockio

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// Wrap returns c with raw-syscall Read and Write when c is a
// *net.TCPConn, and c itself otherwise. Use the result instead of c for
// reading and writing; its other methods, Close and the deadlines
// included, are c's. Reads and writes through c itself remain correct, as
// both use the same socket.
func Wrap(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	w := &conn{Conn: c}
	w.rd.run, w.rd.fn = rc.Read, w.rd.read
	w.wr.run, w.wr.fn = rc.Write, w.wr.write
	return w
}

// conn is a wrapped connection. As on any net.Conn, a read may run beside
// a write, so each has its own state, and reads (or writes) called
// concurrently take turns on their op's mutex.
type conn struct {
	net.Conn
	rd op
	wr op
}

// op is one direction's read or write in progress. run is the RawConn's
// Read or Write, and fn the system call it runs; both are method values
// made once, so that a call allocates nothing.
type op struct {
	mu  sync.Mutex
	run func(func(fd uintptr) bool) error
	fn  func(fd uintptr) bool
	p   []byte
	n   int
	err syscall.Errno
}

// read reads once into p. It returns false, to wait for readiness, when
// nothing has arrived yet.
func (o *op) read(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&o.p[0])), uintptr(len(o.p)))
		switch e {
		case 0:
			o.n = int(n)
			raceAcquire()
			return true
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			o.err = e
			return true
		}
	}
}

// write writes all of p, returning false to wait for room when the
// socket's buffer is full.
func (o *op) write(fd uintptr) bool {
	raceRelease()
	for len(o.p) > 0 {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&o.p[0])), uintptr(len(o.p)))
		switch e {
		case 0:
			o.n += int(n)
			o.p = o.p[n:]
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			o.err = e
			return true
		}
	}
	return true
}

func (c *conn) Read(p []byte) (int, error) { return c.do(&c.rd, "read", p) }

func (c *conn) Write(p []byte) (int, error) { return c.do(&c.wr, "write", p) }

// do runs o on p and reports the outcome as package net would.
func (c *conn) do(o *op, name string, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.p, o.n, o.err = p, 0, 0
	err := o.run(o.fn)
	n, e := o.n, o.err
	o.p = nil
	switch {
	case err != nil:
		return n, renameOp(err, name) // a deadline or a close
	case e != 0:
		return n, c.opError(name, e)
	case n == 0:
		// Only a read ends with nothing done and no error: at EOF.
		return 0, io.EOF
	}
	return n, nil
}

func (c *conn) opError(op string, e syscall.Errno) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError(op, e)}
}

// renameOp makes a RawConn's error (a deadline, a closed connection) read
// as package net's own: "read tcp ...", not "raw-read tcp ...".
func renameOp(err error, op string) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		oe.Op = op
	}
	return err
}
