package backend

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"time"

	"github.com/vmcp/vmcp/internal/jsonrpc"
)

// sseReader parses a text/event-stream. It keeps only what MCP uses: data
// lines (joined by "\n"), the event id (for Last-Event-ID) and retry.
// Comments and other fields are skipped. Lines end in "\n" or "\r\n".
//
// An sseReader is reused through a pool, so it owns its buffers; the data
// of an event is valid until the next call to next.
type sseReader struct {
	br   *bufio.Reader
	data []byte
	line []byte // accumulates a line longer than br's buffer
	max  int
	// res, if set, is charged for data and line as they grow; ctx bounds
	// the wait for its first bytes.
	res *reservation
	ctx context.Context
}

type sseEvent struct {
	data  []byte
	id    string
	hasID bool
	retry time.Duration
}

func newSSEReader(max int) *sseReader {
	return &sseReader{br: bufio.NewReaderSize(nil, 16<<10), max: max}
}

// reset starts reading body, charging the buffers to res (nil: none).
func (r *sseReader) reset(ctx context.Context, body io.Reader, res *reservation) error {
	r.br.Reset(body)
	r.data = r.data[:0]
	r.line = r.line[:0]
	r.ctx, r.res = ctx, res
	return res.reserve(ctx, int64(cap(r.data)+cap(r.line)))
}

// grow returns buf with room for need bytes, charging the larger buffer
// (plus other, the other buffer's capacity) to the reservation first.
func (r *sseReader) grow(buf []byte, need, other int) ([]byte, error) {
	if need <= cap(buf) {
		return buf, nil
	}
	n := max(min(growth(cap(buf)), r.max+1), need)
	if err := r.res.reserve(r.ctx, int64(n+other)); err != nil {
		return nil, err
	}
	return append(make([]byte, 0, n), buf...), nil
}

// decode decodes the data of the event just read. A large event is not
// copied: the message takes the data buffer, and the reader starts a new
// one for the next event.
func (r *sseReader) decode(data []byte) (*jsonrpc.Message, *jsonrpc.Error) {
	if cap(r.data) > pooledBuffer {
		r.data = nil
		return jsonrpc.DecodeOwned(data, 0)
	}
	return jsonrpc.Decode(data, 0)
}

// trim drops buffers grown beyond what a typical event needs and gives
// back all that is reserved, for a long-lived stream between events.
func (r *sseReader) trim() {
	if cap(r.data) > pooledBuffer || cap(r.line) > pooledBuffer {
		r.data, r.line = nil, nil
	}
	r.res.release()
}

// release drops references to the body and large buffers before the
// reader goes back to its pool: what the pool keeps is charged to the
// next call's budget, and most events are small.
func (r *sseReader) release() {
	r.br.Reset(nil)
	r.ctx, r.res = nil, nil
	if cap(r.data) > pooledBuffer {
		r.data = nil
	}
	if cap(r.line) > pooledBuffer {
		r.line = nil
	}
}

// pooledBuffer is the largest buffer kept in a pool for reuse.
const pooledBuffer = 64 << 10

// growth is the capacity a buffer of capacity c grows to: doubling while
// small, then by a quarter, so that a large answer is not charged to the
// budget at up to twice its size.
func growth(c int) int {
	if c < 256<<10 {
		return max(2*c, 512)
	}
	return c + c/4
}

// next returns the next event. An event cut short by the end of the stream
// is discarded and io.EOF returned, as the SSE spec says.
func (r *sseReader) next() (sseEvent, error) {
	var ev sseEvent
	r.data = r.data[:0]
	fields := false
	for {
		line, err := r.readLine()
		if err != nil {
			return sseEvent{}, err
		}
		if len(line) == 0 {
			if fields {
				ev.data = r.data
				return ev, nil
			}
			continue
		}
		fields = true
		if line[0] == ':' {
			continue
		}
		name, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			name, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(name) {
		case "data":
			if len(r.data)+len(value)+1 > r.max {
				return sseEvent{}, tooLarge(r.max)
			}
			if len(r.data) == 0 && len(r.line) > 0 && len(value) > 0 && &line[0] == &r.line[0] {
				// The event's first data line was long enough to be
				// gathered in r.line: take that buffer rather than copy it.
				r.data, r.line = value, r.data[:0]
				continue
			}
			var err error
			if r.data, err = r.grow(r.data, len(r.data)+len(value)+1, cap(r.line)); err != nil {
				return sseEvent{}, err
			}
			if len(r.data) > 0 {
				r.data = append(r.data, '\n')
			}
			r.data = append(r.data, value...)
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				ev.id, ev.hasID = string(value), true
			}
		case "retry":
			if ms, ok := parseID(value); ok {
				ev.retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
}

// readLine returns one line without its terminator.
func (r *sseReader) readLine() ([]byte, error) {
	line, err := r.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		r.line = r.line[:0]
		for {
			var gerr error
			if r.line, gerr = r.grow(r.line, len(r.line)+len(line), cap(r.data)); gerr != nil {
				return nil, gerr
			}
			r.line = append(r.line, line...)
			if !errors.Is(err, bufio.ErrBufferFull) {
				break
			}
			if len(r.line) > r.max {
				return nil, tooLarge(r.max)
			}
			line, err = r.br.ReadSlice('\n')
		}
		line = r.line
	}
	if err != nil {
		if err == io.EOF && len(line) > 0 {
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
