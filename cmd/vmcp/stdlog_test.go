package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// net/http's Transport logs this line itself when a backend sends bytes on
// an idle connection: the quoted bytes must not reach vmcp's log.
func TestStdlibLogDropsBackendBytes(t *testing.T) {
	var buf bytes.Buffer
	w := stdlibWriter{slog.New(slog.NewTextHandler(&buf, nil))}
	raw := "HTTP/1.1 200 OK\r\nMcp-Session-Id: 7f3c-secret-session\r\n"
	fmt.Fprintf(w, "Unsolicited response received on idle HTTP channel starting with %q; err=%v\n", raw, nil)
	out := buf.String()
	if strings.Contains(out, "7f3c-secret-session") {
		t.Fatalf("backend bytes reached the log: %s", out)
	}
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "Unsolicited response") {
		t.Fatalf("the line itself is missing: %s", out)
	}
}

// go-redis's own lines (its pool failing to dial) are structured vmcp log
// lines.
func TestRedisLogIsStructured(t *testing.T) {
	var buf bytes.Buffer
	redisLogger{slog.New(slog.NewTextHandler(&buf, nil))}.Printf(t.Context(), "redis: connection pool: failed to dial after %d attempts: %v", 1, "connection refused")
	out := buf.String()
	if !strings.HasPrefix(out, "time=") || !strings.Contains(out, "level=WARN") || !strings.Contains(out, "source=go-redis") || !strings.Contains(out, "failed to dial after 1 attempts") {
		t.Errorf("go-redis line = %q, want a structured WARN", out)
	}
}
