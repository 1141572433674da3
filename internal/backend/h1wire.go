package backend

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// The HTTP/1.1 wire format, as much of it as a Streamable HTTP client
// needs: a request with a small fixed set of headers and a JSON body, and a
// response whose status, a few headers and body (Content-Length, chunked,
// or up to EOF) are read straight off the connection's buffer.

const (
	// maxHeaderBytes caps a response's status line and headers.
	maxHeaderBytes = 64 << 10
	// inlineBody is the largest body copied after the request head so
	// that both go out in one write; larger ones go out with writev.
	inlineBody = 32 << 10
	// tailWait bounds the wait for the rest of a body left unread (see
	// h1Body.leave) when its connection is taken for the next request.
	tailWait = 100 * time.Millisecond
)

var (
	errMalformed  = errors.New("malformed HTTP response")
	errHeaderSize = errors.New("HTTP response header too large")
)

// validHeader reports whether name and value can be written as one header
// line as they are: a token name, and a value without control characters
// that could end the line or the head early.
func validHeader(name, value string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f || bytes.IndexByte([]byte(`"(),/:;<=>?@[\]{}`), c) >= 0 {
			return false
		}
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// appendRequest appends a request head: request line, Host, the raw
// header lines and, when there is a body, its length.
func appendRequest(b []byte, method, target, host string, hdr []byte, body []byte) []byte {
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, target...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\n"...)
	b = append(b, hdr...)
	if body != nil {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
		b = append(b, "\r\n"...)
	}
	return append(b, "\r\n"...)
}

// response is what the connectors need of an HTTP response. The caller
// must close body (which hands the connection back to its pool when the
// body was read to its end).
type response struct {
	status        int
	mediaType     string // lower-case, without parameters
	sessionID     string // Mcp-Session-Id, only when asked for
	contentLength int64  // -1 if unknown
	body          io.ReadCloser
}

// head is a parsed status line and header block.
type head struct {
	status    int
	mediaType string
	sessionID string
	length    int64 // -1 if none
	chunked   bool
	close     bool // the server will close the connection after this response
}

// readHead reads a response's status line and headers, skipping 1xx
// interim responses. wantSID keeps the Mcp-Session-Id header.
func readHead(br *bufio.Reader, wantSID bool) (head, error) {
	for {
		h, err := readOneHead(br, wantSID)
		if err != nil {
			return head{}, err
		}
		if h.status >= 200 || h.status == 101 {
			return h, nil
		}
	}
}

func readOneHead(br *bufio.Reader, wantSID bool) (head, error) {
	h := head{length: -1}
	budget := maxHeaderBytes
	line, err := readHeadLine(br, &budget)
	if err != nil {
		return h, err
	}
	// HTTP/1.x SP 3DIGIT [SP reason]
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
		return h, errMalformed
	}
	http10 := line[7] == '0'
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return h, errMalformed
		}
		h.status = h.status*10 + int(c-'0')
	}
	keepAlive := false
	for {
		line, err := readHeadLine(br, &budget)
		if err != nil {
			return h, err
		}
		if len(line) == 0 {
			break
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 || line[0] == ' ' || line[0] == '\t' {
			return h, errMalformed // no name, or an obsolete folded line
		}
		name, value := line[:i], bytes.Trim(line[i+1:], " \t")
		switch {
		case asciiEqualFold(name, "content-type"):
			h.mediaType = mediaTypeOf(value)
		case asciiEqualFold(name, "content-length"):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 || (h.length >= 0 && n != h.length) {
				return h, errMalformed
			}
			h.length = n
		case asciiEqualFold(name, "transfer-encoding"):
			if !asciiEqualFold(value, "chunked") {
				return h, fmt.Errorf("%w: unsupported Transfer-Encoding", errMalformed)
			}
			h.chunked = true
		case asciiEqualFold(name, "connection"):
			for len(value) > 0 {
				var tok []byte
				tok, value, _ = bytes.Cut(value, []byte(","))
				tok = bytes.Trim(tok, " \t")
				if asciiEqualFold(tok, "close") {
					h.close = true
				} else if asciiEqualFold(tok, "keep-alive") {
					keepAlive = true
				}
			}
		case wantSID && asciiEqualFold(name, hdrSessionID):
			h.sessionID = string(value)
		}
	}
	if h.chunked {
		h.length = -1
	}
	if http10 && !keepAlive {
		h.close = true
	}
	return h, nil
}

// readHeadLine returns one header line without its line ending, charging
// its length to budget.
func readHeadLine(br *bufio.Reader, budget *int) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	*budget -= len(line)
	if errors.Is(err, bufio.ErrBufferFull) || *budget < 0 {
		return nil, errHeaderSize
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return trimEOL(line), nil
}

// trimEOL drops the LF that ends line, and the CR before it if any.
func trimEOL(line []byte) []byte {
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c, d := b[i], s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

// mediaTypeOf returns the lower-case media type of a Content-Type value,
// without allocating for the two types MCP uses.
func mediaTypeOf(v []byte) string {
	if i := bytes.IndexByte(v, ';'); i >= 0 {
		v = v[:i]
	}
	v = bytes.Trim(v, " \t")
	switch {
	case asciiEqualFold(v, "text/event-stream"):
		return "text/event-stream"
	case asciiEqualFold(v, "application/json"):
		return "application/json"
	}
	return string(bytes.ToLower(v))
}

// body kinds.
const (
	bodyNone = iota
	bodyFixed
	bodyChunked
	bodyToEOF
)

// Chunked decoder states.
const (
	chunkSize = iota // expecting a chunk-size line
	chunkData        // inside a chunk
	chunkEnd         // expecting the CRLF after a chunk's data
)

// h1Body reads a response body off its connection. It is not safe for
// concurrent use: to stop a read from another goroutine, set a deadline.
// Close hands the connection back to the pool if the body was read to its
// end and the connection can carry another request; otherwise it closes
// the connection.
type h1Body struct {
	c      *h1Conn
	kind   int
	remain int64 // bodyFixed: bytes left; bodyChunked: left in this chunk
	state  int
	done   bool
	reuse  bool
	err    error
	stop   func() bool // ends the context watch; nil when none
	closed bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.closed {
		return 0, errors.New("read on closed response body")
	}
	n, err := b.read(p)
	if err != nil {
		if err == io.EOF {
			b.done = true
		}
		b.err = err
	}
	return n, err
}

func (b *h1Body) read(p []byte) (int, error) {
	br := b.c.br
	switch b.kind {
	case bodyNone:
		return 0, io.EOF
	case bodyFixed:
		if b.remain == 0 {
			return 0, io.EOF
		}
		if int64(len(p)) > b.remain {
			p = p[:b.remain]
		}
		n, err := br.Read(p)
		b.remain -= int64(n)
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if err == nil && b.remain == 0 {
			err = io.EOF
		}
		return n, err
	case bodyToEOF:
		return br.Read(p)
	}
	for {
		switch b.state {
		case chunkSize:
			budget := maxHeaderBytes
			line, err := readHeadLine(br, &budget)
			if err != nil {
				return 0, err
			}
			if i := bytes.IndexByte(line, ';'); i >= 0 {
				line = line[:i]
			}
			size, err := strconv.ParseInt(string(bytes.Trim(line, " \t")), 16, 64)
			if err != nil || size < 0 {
				return 0, errMalformed
			}
			if size == 0 {
				// Trailers, if any, up to the empty line.
				for {
					line, err := readHeadLine(br, &budget)
					if err != nil {
						return 0, err
					}
					if len(line) == 0 {
						return 0, io.EOF
					}
				}
			}
			b.remain, b.state = size, chunkData
		case chunkData:
			if len(p) == 0 {
				return 0, nil
			}
			if int64(len(p)) > b.remain {
				p = p[:b.remain]
			}
			n, err := br.Read(p)
			b.remain -= int64(n)
			if b.remain == 0 {
				b.state = chunkEnd
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		case chunkEnd:
			budget := 2
			line, err := readHeadLine(br, &budget)
			if err != nil || len(line) != 0 {
				return 0, errMalformed
			}
			b.state = chunkSize
		}
	}
}

// skip discards the rest of the current chunk (or of the body, if not
// chunked) without copying it anywhere, so a skipped tail allocates
// nothing. It returns io.EOF at the end of the body.
func (b *h1Body) skip() error {
	for {
		switch {
		case b.kind == bodyFixed || (b.kind == bodyChunked && b.state == chunkData):
			if b.remain == 0 && b.kind == bodyFixed {
				return io.EOF
			}
			n, err := b.c.br.Discard(int(min(b.remain, int64(b.c.br.Size()))))
			b.remain -= int64(n)
			if b.kind == bodyChunked && b.remain == 0 {
				b.state = chunkEnd
			}
			if err != nil {
				return io.ErrUnexpectedEOF
			}
		case b.kind == bodyChunked:
			// Size lines and CRLFs go through read, with no data to copy.
			if _, err := b.read(nil); err != nil {
				return err
			}
		default:
			return errMalformed
		}
	}
}

// setReadDeadline bounds the reads still to come (used to drain a stream
// without a timer goroutine). The pool clears it before reuse.
func (b *h1Body) setReadDeadline(t time.Time) error {
	b.c.deadline = true
	return b.c.nc.SetReadDeadline(t)
}

// leave hands the connection back to the pool with the rest of this body
// unread, if its framing allows: the next request on the connection first
// skips what remains, which by then has almost always arrived. That saves
// waiting for the end of a stream whose response is already in hand. It
// reports false, and does nothing, if the body must be closed instead.
func (b *h1Body) leave() bool {
	if b.closed || b.err != nil || !b.reuse || (b.kind != bodyChunked && b.kind != bodyFixed) || b.c.p.noTails.Load() {
		return false
	}
	if b.stop != nil && !b.stop() {
		b.stop = nil // the context ended: Close must discard the connection
		return false
	}
	b.stop = nil
	b.closed = true
	b.c.tail = b
	b.c.p.put(b.c)
	return true
}

// skipTail reads what is left of a body that leave handed back, waiting at
// most tailWait for it. It reports whether the connection is ready for
// another request.
func (c *h1Conn) skipTail() bool {
	b := c.tail
	c.tail = nil
	c.deadline = true
	if c.nc.SetReadDeadline(time.Now().Add(tailWait)) != nil {
		return false
	}
	for {
		err := b.skip()
		if err == io.EOF {
			return c.nc.SetReadDeadline(time.Time{}) == nil
		}
		if err != nil {
			if isTimeout(err) {
				// This backend keeps streams open after the response:
				// stop leaving tails, and drain them as before.
				c.p.noTails.Store(true)
			}
			return false
		}
	}
}

func (b *h1Body) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	watched := b.stop == nil || b.stop()
	if b.done && b.reuse && watched {
		b.c.p.put(b.c)
	} else {
		b.c.p.discard(b.c)
	}
	return nil
}

// aLongTimeAgo is a deadline in the past, set to make blocked I/O return.
var aLongTimeAgo = time.Unix(1, 0)

// isTimeout reports whether err is a deadline expiry.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
