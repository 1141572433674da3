package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// httpProxyEnv, set to a backend's URL, makes the bench binary run the
// net/http proxy in front of that backend instead of the bench.
const httpProxyEnv = "VMCPBENCH_HTTP_PROXY"

// runHTTPProxy is the floor inside net/http's contract: an http.Server
// whose handler is net/http/httputil's ReverseProxy over an
// http.Transport pooled as vmcp's is, and nothing else (no MCP, sessions
// or JSON). It runs with Go's default GOMAXPROCS, as vmcp does. It prints
// "listening on URL" and serves until SIGTERM or SIGINT.
func runHTTPProxy(target string) error {
	u, err := url.Parse(target)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxConnsPerHost, tr.MaxIdleConnsPerHost, tr.MaxIdleConns = 64, 64, 64
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.Out.URL.Scheme, pr.Out.URL.Host = u.Scheme, u.Host },
		Transport: tr,
	}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 30 * time.Second}
	fmt.Printf("listening on http://%s%s\n", ln.Addr(), u.Path)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
