package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// startHAProxy starts HAProxy, if it is installed, as a one-thread HTTP
// reverse proxy in front of the backend at target: a C proxy built for
// exactly this, to set beside vmcp and the null proxy. It returns nil and
// no error when haproxy is not on PATH.
func (r *runner) startHAProxy(ctx context.Context, target string) (*backendProc, string, error) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		return nil, "", nil
	}
	version := "HAProxy"
	if out, err := exec.CommandContext(ctx, bin, "-v").Output(); err == nil {
		if f := strings.Fields(string(out)); len(f) > 2 {
			version = "HAProxy " + f[2]
		}
	}
	u, err := url.Parse(target)
	if err != nil {
		return nil, "", err
	}
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	cfg := fmt.Sprintf(`global
  nbthread 1
  maxconn 4000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
  http-reuse always
frontend bench
  bind 127.0.0.1:%d
  default_backend backend
backend backend
  server b0 %s
`, port, u.Host)
	path := filepath.Join(r.tmp, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, "", err
	}
	// -db: stay in the foreground, one process, so its pid is the proxy's.
	p, err := r.fleet.start("haproxy", []string{bin, "-db", "-f", path}, nil, nil)
	if err != nil {
		return nil, "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := waitListening(ctx, addr, p, 10*time.Second); err != nil {
		p.stop(time.Second)
		return nil, "", fmt.Errorf("haproxy: %w\n%s", err, p.stderr.String())
	}
	return &backendProc{proc: p, url: "http://" + addr + u.Path, port: port}, version, nil
}

// waitListening waits until addr accepts a connection, p exits, or limit
// passes.
func waitListening(ctx context.Context, addr string, p *proc, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if p.exited() {
			return fmt.Errorf("exited before listening (%v)", p.cmd.ProcessState)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("not listening on %s within %s", addr, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
