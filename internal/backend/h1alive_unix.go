//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package backend

import "syscall"

// peeker checks, without blocking, whether an idle connection is still
// open: a server that closed it meanwhile has sent EOF (or data out of
// turn, such as a 408 before closing), and it must not carry a request.
// It is made once per connection so that a check allocates nothing.
type peeker struct {
	rc  syscall.RawConn
	fn  func(fd uintptr) bool
	buf [1]byte
	ok  bool
}

func newPeeker(rc syscall.RawConn) *peeker {
	p := &peeker{rc: rc}
	p.fn = p.peek
	return p
}

func (p *peeker) peek(fd uintptr) bool {
	_, _, err := syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	p.ok = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
	return true // never wait for readiness
}

func (p *peeker) alive() bool {
	p.ok = false
	return p.rc.Read(p.fn) == nil && p.ok
}
