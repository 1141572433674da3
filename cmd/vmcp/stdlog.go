package main

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// routeStdlibLog sends what the standard library logs on its own (net/http's
// Transport reports an unsolicited response from a backend with log.Printf)
// into vmcp's log at WARN. Such a line quotes the backend's raw bytes,
// which can carry its Mcp-Session-Id or echoed credentials, so everything
// after "starting with" is dropped.
func routeStdlibLog(l *slog.Logger) {
	log.SetFlags(0)
	log.SetOutput(stdlibWriter{l})
	// go-redis logs its pool's dial failures itself, unstructured.
	redis.SetLogger(redisLogger{l})
}

// redisLogger is go-redis's logger: its lines (a dial to the store's
// address failed) go into vmcp's log at WARN.
type redisLogger struct{ log *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.log.WarnContext(ctx, fmt.Sprintf(format, v...), "source", "go-redis")
}

type stdlibWriter struct{ log *slog.Logger }

func (w stdlibWriter) Write(p []byte) (int, error) {
	line := bytes.TrimRight(p, "\n")
	if i := bytes.Index(line, []byte(" starting with")); i >= 0 {
		line = append(line[:i:i], " (backend bytes not logged)"...)
	}
	w.log.Warn(string(line), "source", "net/http")
	return len(p), nil
}
