package backend

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"time"
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

func (r *sseReader) reset(body io.Reader) {
	r.br.Reset(body)
	r.data = r.data[:0]
	r.line = r.line[:0]
}

// release drops references to the body and oversized buffers before the
// reader goes back to its pool.
func (r *sseReader) release() {
	r.br.Reset(nil)
	if cap(r.data) > 1<<20 {
		r.data = nil
	}
	if cap(r.line) > 1<<20 {
		r.line = nil
	}
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
		r.line = append(r.line[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			if len(r.line) > r.max {
				return nil, tooLarge(r.max)
			}
			line, err = r.br.ReadSlice('\n')
			r.line = append(r.line, line...)
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
