package h1server

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxBuffered is how much of a body the response holds back to send with
// a Content-Length; beyond it the response goes out chunked.
const maxBuffered = 64 << 10

// response is the http.ResponseWriter of one fast-path request. A body
// that the handler writes without flushing is sent, headers and all, in
// one write when the handler returns. A Flush commits the response as
// chunked and sends what is buffered. It must not be used after the
// handler returns, as with net/http.
type response struct {
	c       *conn
	header  http.Header
	status  int
	wrote   bool // WriteHeader called
	sent    bool // the head is written
	chunked bool // the body goes in chunks after the head
	body    []byte
	err     error // first write error; the connection closes after
}

func (w *response) Header() http.Header { return w.header }

func (w *response) WriteHeader(code int) {
	if w.wrote || code < 200 || code > 999 {
		return // informational answers are not used by vmcp's handlers
	}
	w.wrote, w.status = true, code
}

func (w *response) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.err != nil {
		return 0, w.err
	}
	if !w.chunked {
		w.body = append(w.body, p...)
		if len(w.body) > maxBuffered {
			return len(p), w.commit()
		}
		return len(p), nil
	}
	w.writeChunk(p)
	return len(p), w.err
}

// FlushError sends the head and what is buffered, for a response that
// streams (SSE). It is what http.ResponseController.Flush calls.
func (w *response) FlushError() error {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if !w.sent {
		if err := w.commit(); err != nil {
			return err
		}
	}
	if w.err == nil {
		w.err = w.c.bw.Flush()
	}
	return w.err
}

func (w *response) Flush() { _ = w.FlushError() }

// commit sends the head as a chunked response, then the buffered body as
// its first chunk, and starts watching for the client going away.
func (w *response) commit() error {
	if !bodyAllowed(w.status) {
		w.writeHead(-1)
		return w.err
	}
	w.chunked = true
	w.writeHead(-1)
	if len(w.body) > 0 {
		w.writeChunk(w.body)
		w.body = w.body[:0]
	}
	w.c.watchClient()
	return w.err
}

func (w *response) writeChunk(p []byte) {
	if len(p) == 0 || w.err != nil {
		return
	}
	bw := w.c.bw
	var n [16]byte
	bw.Write(strconv.AppendInt(n[:0], int64(len(p)), 16))
	bw.WriteString("\r\n")
	bw.Write(p)
	_, w.err = bw.WriteString("\r\n")
}

// finish ends the response after the handler returned and reports whether
// the connection can carry another request. Nothing is flushed: the
// connection loop flushes, so a response that is ready goes out in one
// write.
func (w *response) finish() bool {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	switch {
	case w.sent && !w.chunked: // a flushed answer without a body
	case w.chunked:
		if w.err == nil {
			_, w.err = w.c.bw.WriteString("0\r\n\r\n")
		}
	case bodyAllowed(w.status):
		w.writeHead(len(w.body))
		if w.err == nil {
			_, w.err = w.c.bw.Write(w.body)
		}
	default:
		w.writeHead(-1)
	}
	return w.err == nil
}

// writeHead writes the status line and headers: Content-Length when
// length >= 0, Transfer-Encoding: chunked when the response is chunked,
// Date unless the handler set one, and Connection: close when the
// connection ends after this response.
func (w *response) writeHead(length int) {
	h := w.header
	if bodyAllowed(w.status) && h.Get("Content-Type") == "" && len(w.body) > 0 {
		h.Set("Content-Type", http.DetectContentType(w.body))
	}
	b := w.c.scratch[:0]
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(w.status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(w.status)...)
	b = append(b, "\r\n"...)
	keys := w.c.keys[:0]
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !validName(k) || isFramingHeader(k) {
			continue
		}
		for _, v := range h[k] {
			b = append(b, k...)
			b = append(b, ": "...)
			b = appendSafe(b, v)
			b = append(b, "\r\n"...)
		}
	}
	w.c.keys = keys
	if _, ok := h["Date"]; !ok {
		b = append(b, "Date: "...)
		b = append(b, w.c.date()...)
		b = append(b, "\r\n"...)
	}
	switch {
	case w.sent && !w.chunked: // a flushed answer without a body
	case w.chunked:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	case length >= 0 && w.status != http.StatusNoContent && w.status != http.StatusNotModified:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(length), 10)
		b = append(b, "\r\n"...)
	}
	if w.c.closeAfter() {
		b = append(b, "Connection: close\r\n"...)
	}
	b = append(b, "\r\n"...)
	w.c.scratch = b
	w.sent = true
	if w.err == nil {
		_, w.err = w.c.bw.Write(b)
	}
}

// isFramingHeader names the headers the server sets itself from how it
// frames the body; a handler's value for them would contradict it.
func isFramingHeader(k string) bool {
	return k == "Content-Length" || k == "Transfer-Encoding" || k == "Connection"
}

// appendSafe appends a header value with CR and LF turned into spaces, as
// net/http does, so a value can never split the response.
func appendSafe(b []byte, v string) []byte {
	if !strings.ContainsAny(v, "\r\n") {
		return append(b, v...)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		b = append(b, c)
	}
	return b
}

func bodyAllowed(status int) bool {
	return status != http.StatusNoContent && status != http.StatusNotModified
}

// compile-time checks: the interfaces http.ResponseController and
// net/http's helpers look for.
var (
	_ http.ResponseWriter             = (*response)(nil)
	_ http.Flusher                    = (*response)(nil)
	_ interface{ FlushError() error } = (*response)(nil)
)

// date returns the Date header value, formatted at most once a second per
// connection.
func (c *conn) date() []byte {
	now := time.Now()
	if sec := now.Unix(); sec != c.dateSec || c.dateVal == nil {
		c.dateSec = sec
		c.dateVal = now.UTC().AppendFormat(c.dateVal[:0], http.TimeFormat)
	}
	return c.dateVal
}
