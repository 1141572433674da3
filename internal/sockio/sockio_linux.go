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
	w := &conn{Conn: c, rc: rc}
	w.rd.fn = w.rd.read
	w.wr.fn = w.wr.write
	return w
}

// conn is a wrapped connection. As on any net.Conn, a read may run beside
// a write, so each has its own state, and reads (or writes) called
// concurrently take turns on their op's mutex.
type conn struct {
	net.Conn
	rc syscall.RawConn
	rd op
	wr op
}

// op is one read or write in progress. fn is its method value, made once,
// so that handing it to the RawConn allocates nothing.
type op struct {
	mu  sync.Mutex
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

func (c *conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	o := &c.rd
	o.mu.Lock()
	defer o.mu.Unlock()
	o.p, o.n, o.err = p, 0, 0
	err := c.rc.Read(o.fn)
	n, e := o.n, o.err
	o.p = nil
	switch {
	case err != nil:
		return 0, renameOp(err, "read")
	case e != 0:
		return 0, c.opError("read", e)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (c *conn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	o := &c.wr
	o.mu.Lock()
	defer o.mu.Unlock()
	o.p, o.n, o.err = p, 0, 0
	err := c.rc.Write(o.fn)
	n, e := o.n, o.err
	o.p = nil
	switch {
	case err != nil:
		return n, renameOp(err, "write")
	case e != 0:
		return n, c.opError("write", e)
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
