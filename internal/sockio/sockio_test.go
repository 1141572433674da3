package sockio_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vmcp/vmcp/internal/sockio"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pair returns both ends of a loopback TCP connection, the client's
// wrapped. Both close at cleanup.
func pair(t *testing.T) (wrapped net.Conn, peer *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p := <-accepted
	if p == nil {
		t.Fatal("accept failed")
	}
	w := sockio.Wrap(c)
	t.Cleanup(func() { w.Close(); p.Close() })
	return w, p.(*net.TCPConn)
}

func TestWrapLeavesOtherConnsAlone(t *testing.T) {
	t.Parallel()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if got := sockio.Wrap(a); got != a {
		t.Errorf("Wrap(net.Pipe end) = %T, want the same conn", got)
	}
}

// TestRoundTrip sends data both ways at once, in sizes from one byte to
// many socket buffers, so that writes wait for room and reads for data.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, size := range []int{1, 4 << 10, 8 << 20} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			t.Parallel()
			w, p := pair(t)
			out := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
			back := make(chan []byte, 1)
			go func() { // the peer echoes everything back
				buf := make([]byte, size)
				if _, err := io.ReadFull(p, buf); err != nil {
					back <- nil
					return
				}
				p.Write(buf)
				back <- buf
			}()
			var wg sync.WaitGroup
			var werr error
			wg.Go(func() {
				n, err := w.Write(out)
				if err == nil && n != len(out) {
					err = io.ErrShortWrite
				}
				werr = err
			})
			in := make([]byte, size)
			if _, err := io.ReadFull(w, in); err != nil {
				t.Fatalf("read: %v", err)
			}
			wg.Wait()
			if werr != nil {
				t.Fatalf("write: %v", werr)
			}
			if <-back == nil || !bytes.Equal(in, out) {
				t.Fatalf("%d bytes sent, different bytes came back", size)
			}
		})
	}
}

func TestReadEOF(t *testing.T) {
	t.Parallel()
	w, p := pair(t)
	p.Write([]byte("last"))
	p.Close()
	got, err := io.ReadAll(w)
	if err != nil || string(got) != "last" {
		t.Fatalf("ReadAll = %q, %v; want \"last\", nil", got, err)
	}
	if n, err := w.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Fatalf("Read after EOF = %d, %v; want 0, io.EOF", n, err)
	}
}

// TestDeadlines checks that deadlines end a waiting read or write with
// the error package net gives.
func TestDeadlines(t *testing.T) {
	t.Parallel()
	big := make([]byte, 64<<20) // made before the deadline starts to run
	for _, tc := range []struct {
		name string
		set  func(net.Conn) error
		do   func(net.Conn) (int, error)
	}{
		{"read", func(c net.Conn) error { return c.SetReadDeadline(time.Now().Add(20 * time.Millisecond)) },
			func(c net.Conn) (int, error) { return c.Read(make([]byte, 16)) }},
		{"write", func(c net.Conn) error { return c.SetWriteDeadline(time.Now().Add(20 * time.Millisecond)) },
			// The peer never reads: 64 MiB overflows any socket buffers.
			func(c net.Conn) (int, error) { return c.Write(big) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w, _ := pair(t)
			if err := tc.set(w); err != nil {
				t.Fatal(err)
			}
			n, err := tc.do(w)
			var ne net.Error
			if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("%s past the deadline: %d, %v; want a timeout", tc.name, n, err)
			}
			if !strings.HasPrefix(err.Error(), tc.name+" tcp ") {
				t.Errorf("error %q does not read as package net's %q", err, tc.name+" tcp ...")
			}
			if tc.name == "write" && (n <= 0 || n >= len(big)) {
				t.Errorf("timed-out write reports %d bytes written; want the part that went out", n)
			}
		})
	}
}

func TestCloseEndsBlockedRead(t *testing.T) {
	t.Parallel()
	w, _ := pair(t)
	done := make(chan error, 1)
	go func() {
		_, err := w.Read(make([]byte, 16))
		done <- err
	}()
	time.Sleep(10 * time.Millisecond) // let the read block; correct either way
	w.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read on a closed conn = %v; want net.ErrClosed", err)
	}
}

// TestWriteAfterReset checks that a peer that reset the connection gives
// the writer an error, not a panic or a hang.
func TestWriteAfterReset(t *testing.T) {
	t.Parallel()
	w, p := pair(t)
	p.SetLinger(0) // close with RST
	p.Close()
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, err = w.Write([]byte("after the reset"))
		time.Sleep(time.Millisecond)
	}
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("write to a reset peer: %v; want ECONNRESET or EPIPE", err)
	}
	if !strings.HasPrefix(err.Error(), "write tcp ") {
		t.Errorf("error %q does not read as package net's", err)
	}
}

// TestConcurrentReads has two goroutines read one connection at once, as
// net.Conn allows: every byte arrives exactly once.
func TestConcurrentReads(t *testing.T) {
	t.Parallel()
	w, p := pair(t)
	const total = 1 << 20
	go func() {
		p.Write(make([]byte, total))
		p.Close()
	}()
	var mu sync.Mutex
	got := 0
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			buf := make([]byte, 1000)
			for {
				n, err := w.Read(buf)
				mu.Lock()
				got += n
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if got != total {
		t.Fatalf("read %d bytes in all, want %d", got, total)
	}
}
