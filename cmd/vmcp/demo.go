package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
)

// demo is the self-contained setup `vmcp serve` runs without a config: two
// example servers in process on loopback (Streamable HTTP and legacy SSE)
// and one stdio child (this binary again). Every one is stateful: its
// counter and notes tools keep state per session.
type demo struct {
	Config  *config.Config
	servers []*http.Server
}

func startDemo(ctx context.Context, log *slog.Logger) (*demo, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding own executable for the stdio demo backend: %w", err)
	}
	d := &demo{Config: config.Default()}
	httpURL, err := d.listen(exampleserver.HTTPHandler(exampleserver.Options{Name: "counter", Logger: log}), "/mcp")
	if err != nil {
		return nil, err
	}
	sseURL, err := d.listen(exampleserver.SSEHandler(exampleserver.Options{Name: "docs", Logger: log}), "/sse")
	if err != nil {
		d.Close()
		return nil, err
	}
	d.Config.Backends = []config.Backend{
		{Name: "counter", Transport: config.TransportStreamableHTTP, URL: httpURL, Timeout: config.Duration(30e9)},
		{Name: "docs", Transport: config.TransportSSE, URL: sseURL, Timeout: config.Duration(30e9)},
		{Name: "notes", Transport: config.TransportStdio, Command: []string{exe, "example-server", "-name", "notes"}, Timeout: config.Duration(30e9)},
	}
	log.Info("demo backends started", "counter", httpURL, "docs", sseURL, "notes", "stdio child per session")
	return d, nil
}

func (d *demo) listen(h http.Handler, path string) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	mux := http.NewServeMux()
	mux.Handle(path, h)
	srv := &http.Server{Handler: mux}
	d.servers = append(d.servers, srv)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Default().Error("demo backend stopped", "err", err)
		}
	}()
	return "http://" + ln.Addr().String() + path, nil
}

// Close stops the demo's in-process servers.
func (d *demo) Close() {
	for _, s := range d.servers {
		s.Close()
	}
}
