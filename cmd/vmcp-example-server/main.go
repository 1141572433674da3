// Command vmcp-example-server runs one example MCP server (package
// internal/exampleserver) over stdio, Streamable HTTP or legacy HTTP+SSE.
//
//	vmcp-example-server -transport stdio|http|sse -listen 127.0.0.1:0 -name NAME -init-delay 0s
//
// For http and sse it prints exactly one line to stdout once listening,
// "listening on URL", where URL is the MCP endpoint (http: /mcp, sse: /sse).
// For stdio, stdout carries only protocol messages; logs go to stderr. It
// exits 0 on SIGTERM or SIGINT after closing its sessions.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/vmcp/vmcp/internal/exampleserver"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "vmcp-example-server:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("vmcp-example-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	transport := fs.String("transport", "stdio", "transport: stdio, http or sse")
	listen := fs.String("listen", "127.0.0.1:0", "listen address for http and sse")
	name := fs.String("name", "example", "server name, reported in serverInfo and resource URIs")
	initDelay := fs.Duration("init-delay", 0, "artificial delay inside initialize handling")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}

	logger := slog.New(slog.NewTextHandler(stderr, nil))
	opts := exampleserver.Options{Name: *name, InitDelay: *initDelay, Logger: logger}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	switch *transport {
	case "stdio":
		logger.Info(fmt.Sprintf("example server %s started", *name), "transport", "stdio")
		err := exampleserver.ServeStdio(ctx, opts)
		if err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("serving stdio: %w", err)
		}
		logger.Info("example server stopped", "name", *name)
		return nil
	case "http":
		return serveHTTP(ctx, *listen, "/mcp", exampleserver.HTTPHandler(opts), stdout, logger)
	case "sse":
		return serveHTTP(ctx, *listen, "/sse", exampleserver.SSEHandler(opts), stdout, logger)
	default:
		return fmt.Errorf("unknown -transport %q (want stdio, http or sse)", *transport)
	}
}

func serveHTTP(ctx context.Context, addr, path string, h *exampleserver.Handler, stdout io.Writer, logger *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(path, h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "listening on http://%s%s\n", ln.Addr(), path)
	logger.Info("example server started", "url", "http://"+ln.Addr().String()+path)

	select {
	case err := <-served:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	// Close sessions first: their open event streams would keep Shutdown
	// waiting.
	h.Close()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	logger.Info("example server stopped")
	return nil
}
