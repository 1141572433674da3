package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"sync"
	"syscall"
)

// nullProxyEnv, set to a backend's URL, makes the bench binary (or its test
// binary) run the null proxy in front of that backend instead of the bench.
// The CPU scenario starts it that way, as a separate process like vmcp.
const nullProxyEnv = "VMCPBENCH_NULL_PROXY"

// maxProxiedMessage bounds one request or response through the null proxy.
const maxProxiedMessage = 1 << 20

// runNullProxy forwards HTTP/1.1 messages between clients and the backend
// at target without changing a byte: it does the least any proxy must do
// per call (read the request, write it to the backend, read the answer,
// write it back) and nothing else: no MCP, no sessions, no parsing beyond
// HTTP framing. Each client connection gets its own backend connection.
// A response without a length (a standalone GET stream) is not supported.
// It prints "listening on URL" and serves until SIGTERM or SIGINT.
func runNullProxy(target string) error {
	u, err := url.Parse(target)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	fmt.Printf("listening on http://%s%s\n", ln.Addr(), u.Path)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	var wg sync.WaitGroup
	defer wg.Wait()
	stopListening := context.AfterFunc(ctx, func() { ln.Close() })
	defer stopListening()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			stop() // ends the connections' goroutines before wg.Wait
			return err
		}
		wg.Go(func() { proxyConn(ctx, c, u.Host) })
	}
}

// proxyConn relays one client connection's requests, one at a time, over
// its own backend connection, until either side closes or ctx ends. It
// closes c.
func proxyConn(ctx context.Context, c net.Conn, backend string) {
	defer c.Close()
	var d net.Dialer
	b, err := d.DialContext(ctx, "tcp", backend)
	if err != nil {
		return
	}
	defer b.Close()
	stop := context.AfterFunc(ctx, func() { c.Close(); b.Close() })
	defer stop()
	cr, br := bufio.NewReaderSize(c, 16<<10), bufio.NewReaderSize(b, 16<<10)
	var buf []byte
	for {
		if buf, err = readHTTPMessage(cr, buf[:0], true); err != nil {
			return
		}
		if _, err := b.Write(buf); err != nil {
			return
		}
		if buf, err = readHTTPMessage(br, buf[:0], false); err != nil {
			return
		}
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

var errFraming = errors.New("unsupported HTTP framing")

// readHTTPMessage appends one whole HTTP/1.1 message from r to dst, as
// read: its head and its body, framed by Content-Length or chunked.
func readHTTPMessage(r *bufio.Reader, dst []byte, request bool) ([]byte, error) {
	length, chunked, bodiless := -1, false, false
	for first := true; ; first = false {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return dst, err
		}
		dst = append(dst, line...)
		if len(dst) > maxProxiedMessage {
			return dst, errFraming
		}
		line = bytes.TrimRight(line, "\r\n")
		if first {
			if !request {
				// "HTTP/1.1 204 No Content": 1xx, 204 and 304 have no body.
				f := bytes.Fields(line)
				bodiless = len(f) > 1 && (f[1][0] == '1' || string(f[1]) == "204" || string(f[1]) == "304")
			}
			continue
		}
		if len(line) == 0 {
			break
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 {
				return dst, errFraming
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		}
	}
	switch {
	case bodiless:
		return dst, nil
	case chunked:
		return readChunks(r, dst)
	case length >= 0:
		return readN(r, dst, length)
	case request:
		return dst, nil
	}
	return dst, errFraming
}

// readChunks appends a chunked body, up to and including its last chunk
// and trailer.
func readChunks(r *bufio.Reader, dst []byte) ([]byte, error) {
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return dst, err
		}
		dst = append(dst, line...)
		hex, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
		n, err := strconv.ParseInt(string(bytes.TrimSpace(hex)), 16, 32)
		if err != nil || n < 0 || len(dst)+int(n) > maxProxiedMessage {
			return dst, errFraming
		}
		if n == 0 {
			for { // trailer, up to its empty line
				line, err := r.ReadSlice('\n')
				if err != nil {
					return dst, err
				}
				dst = append(dst, line...)
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return dst, nil
				}
			}
		}
		if dst, err = readN(r, dst, int(n)+2); err != nil { // data and CRLF
			return dst, err
		}
	}
}

func readN(r *bufio.Reader, dst []byte, n int) ([]byte, error) {
	if len(dst)+n > maxProxiedMessage {
		return dst, errFraming
	}
	start := len(dst)
	dst = slices.Grow(dst, n)[:start+n]
	_, err := io.ReadFull(r, dst[start:])
	return dst, err
}
