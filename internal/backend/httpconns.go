package backend

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// countSockets makes tr count, in n, the sockets it holds open: each one
// dialed adds one, and closing it takes the one away. Streams cloned from
// tr share n.
func countSockets(tr *http.Transport, n *atomic.Int64) {
	dial := tr.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		n.Add(1)
		return &countedConn{Conn: c, n: n}, nil
	}
}

// countedConn is a socket that uncounts itself once when closed.
type countedConn struct {
	net.Conn
	n    *atomic.Int64
	once sync.Once
}

// ReadFrom keeps the socket's own (sendfile, splice) for io.Copy.
func (c *countedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.n.Add(-1) })
	return err
}

// Connections reports the sockets open to the backend (the metric
// vmcp_backend_connections).
func (x *streamableConnector) Connections() int { return int(x.s.sockets.Load()) }

// Connections reports the sockets open to the backend, its sessions'
// GET streams included.
func (x *sseConnector) Connections() int { return int(x.s.sockets.Load()) }
