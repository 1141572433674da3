// Command vmcp is a virtual MCP gateway: one MCP endpoint in front of many
// backend MCP servers.
//
//	vmcp serve [--config FILE] [--listen ADDR]   run the gateway (no config: built-in demo)
//	vmcp validate --config FILE [--probe]        check a config (and reach every backend) and exit
//	vmcp hash-key                                print the SHA-256 of an API key read from stdin
//	vmcp health [--url URL]                      probe a running vmcp's /health (for HEALTHCHECK)
//	vmcp version                                 print the version, commit and date
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/vmcp/vmcp/internal/authn"
	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/gateway"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage:
  vmcp serve [--config FILE] [--listen ADDR] [--log-level LEVEL]
             run the gateway; with no --config, a self-contained demo
  vmcp validate --config FILE [--probe]
             check a config file and exit; --probe also connects to and
             initializes every backend, and fails if one is unreachable
  vmcp hash-key
             read an API key from stdin and print its SHA-256, for
             incomingAuth.apiKeys
  vmcp health [--url URL]
             GET a running vmcp's /health (default
             http://127.0.0.1:4483/health); exit 0 if it answers 200
  vmcp version
             print the version, commit and date
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "validate":
		return validate(args[1:], stdout, stderr)
	case "health":
		return health(args[1:], stdout, stderr)
	case "hash-key":
		return hashKey(os.Stdin, stdout, stderr)
	case "version", "--version", "-v":
		printVersion(stdout, readVersion())
		return 0
	case "example-server":
		// Used by the demo to run its stdio backend as a child process.
		return exampleServer(args[1:], stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "vmcp: unknown command %q\n\n%s", args[0], usage)
	return 2
}

// hashKey prints the hex SHA-256 of the API key on stdin: its first line,
// without the line ending, so "echo KEY | vmcp hash-key" and a file with a
// trailing newline both work. The key itself is never printed.
func hashKey(stdin io.Reader, stdout, stderr io.Writer) int {
	line, err := bufio.NewReader(io.LimitReader(stdin, 64<<10)).ReadString('\n')
	if err != nil && err != io.EOF {
		fmt.Fprintf(stderr, "vmcp hash-key: reading stdin: %v\n", err)
		return 1
	}
	key := strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if key == "" {
		fmt.Fprintln(stderr, "vmcp hash-key: no key on stdin; usage: vmcp hash-key < keyfile")
		return 2
	}
	fmt.Fprintln(stdout, authn.HashKey(key))
	return 0
}

func validate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (YAML)")
	probe := fs.Bool("probe", false, "also connect to and initialize every backend; exit 1 if one is unreachable")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "vmcp validate: --config is required")
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "vmcp: invalid config:\n%v\n", err)
		return 1
	}
	// What vmcp serve would refuse to start with is not a valid config.
	if err := gateway.CheckListen(cfg); err != nil {
		fmt.Fprintf(stderr, "vmcp: invalid config:\n%s: %v\n", *path, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (%s)\n", *path, plural(len(cfg.Backends), "backend"))
	if !*probe {
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logs := newProbeLog()
	results := gateway.Probe(ctx, cfg, readVersion().String(), slog.New(logs))
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "vmcp validate: probe interrupted")
		return 1
	}
	down := 0
	for _, r := range results {
		fmt.Fprintln(stdout, r)
		if !r.Reachable() {
			down++
			// Its own words (a stdio child's stderr) say why, more often
			// than "broken pipe" does. Probe redacted them.
			logs.writeFor(stderr, r.Backend)
		}
	}
	if down > 0 {
		fmt.Fprintf(stderr, "vmcp validate: %d of %d backends unreachable\n", down, len(cfg.Backends))
		return 1
	}
	return 0
}

// plural says "1 backend" or "3 backends".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (YAML); none runs the built-in demo")
	listen := fs.String("listen", "", "listen address, overrides the config (default 127.0.0.1:4483)")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(stderr, "vmcp: --log-level: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	routeStdlibLog(log)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var cfg *config.Config
	var hash string
	if *path == "" {
		demo, err := startDemo(ctx, log)
		if err != nil {
			fmt.Fprintf(stderr, "vmcp: starting demo: %v\n", err)
			return 1
		}
		defer demo.Close()
		cfg = demo.Config
	} else {
		data, err := os.ReadFile(*path)
		if err == nil {
			hash = gateway.HashConfig(data)
		}
		if cfg, err = config.Load(*path); err != nil {
			fmt.Fprintf(stderr, "vmcp: invalid config:\n%v\n", err)
			return 1
		}
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	g, err := gateway.New(cfg, gateway.Options{Version: readVersion().String(), Logger: log, ConfigHash: hash, ListenOverride: *listen})
	if err != nil {
		fmt.Fprintf(stderr, "vmcp: %v\n", err)
		return 1
	}
	log = g.Logger() // behind the redactor of the configured secrets
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		g.Shutdown(context.Background())
		fmt.Fprintf(stderr, "vmcp: %v\n", err)
		return 1
	}
	var admin net.Listener
	if a := cfg.Server.AdminListen; a != "" {
		if admin, err = net.Listen("tcp", a); err != nil {
			ln.Close()
			g.Shutdown(context.Background())
			fmt.Fprintf(stderr, "vmcp: server.adminListen: %v\n", err)
			return 1
		}
	}
	scheme := "http"
	if g.TLS() {
		scheme = "https"
	}
	log.Info("vmcp listening", "url", fmt.Sprintf("%s://%s%s", scheme, ln.Addr(), cfg.Path), "backends", len(cfg.Backends),
		"version", readVersion().String())
	servers := 1
	served := make(chan error, 2)
	go func() { served <- g.Serve(ln) }()
	if admin != nil {
		servers++
		log.Info("vmcp admin listening", "url", fmt.Sprintf("http://%s", admin.Addr()), "pprof", cfg.Server.Pprof)
		go func() { served <- g.ServeAdmin(admin) }()
	}
	// The listener is up: probing the backends now delays nobody.
	g.StartProbe()
	if *path != "" {
		// SIGHUP, or a change to the file, reloads it (README: Reloading
		// the config).
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		if err := g.WatchConfig(*path, hup); err != nil {
			log.Warn("config reloads on file changes are off; SIGHUP still reloads", "err", err)
		}
	}

	select {
	case err := <-served:
		// Either listener ending on its own stops vmcp.
		g.Shutdown(context.Background())
		for range servers - 1 {
			<-served
		}
		if err != nil {
			log.Error("server stopped", "err", err)
			return 1
		}
		return 0
	case <-ctx.Done():
	}
	log.Info("shutting down", "grace", cfg.Server.ShutdownGrace.D())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownGrace.D())
	defer cancel()
	err = g.Shutdown(sctx)
	for range servers {
		<-served
	}
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		log.Warn("shutdown", "err", err)
	}
	log.Info("stopped")
	return 0
}

func exampleServer(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("example-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "example", "server name")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(stderr, nil))
	// vmcp logs a stdio child's stderr tagged with the backend name; this
	// line shows that in the demo.
	log.Info("example server started", "name", *name, "transport", "stdio")
	if err := exampleserver.ServeStdio(ctx, exampleserver.Options{Name: *name, Logger: log}); err != nil && ctx.Err() == nil {
		fmt.Fprintf(stderr, "example-server: %v\n", err)
		return 1
	}
	return 0
}
