package sockio_test

import (
	"net"
	"testing"
)

// On Linux the other tests must run the raw path, not the wrapped conn's
// own Read and Write.
func TestWrapTakesTCPOnLinux(t *testing.T) {
	t.Parallel()
	w, _ := pair(t)
	if _, ok := w.(*net.TCPConn); ok {
		t.Fatalf("Wrap returned the *net.TCPConn itself")
	}
}
