package config_test

import (
	"errors"
	"fmt"

	"github.com/vmcp/vmcp/internal/config"
)

func ExampleParse() {
	env := map[string]string{"FILES_KEY": "secret"}
	cfg, err := config.Parse([]byte(`
backends:
  - name: files
    transport: streamable-http
    url: http://127.0.0.1:8081/mcp
    headers: {X-Api-Key: "${FILES_KEY}"}
  - name: browser
    transport: stdio
    command: [npx, "@playwright/mcp", --headless]
session:
  ttl: 1h
`), config.WithLookupEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, b := range cfg.Backends {
		fmt.Println(b.Name, b.Transport, b.Timeout)
	}
	fmt.Println("listen", cfg.Listen, "path", cfg.Path, "ttl", cfg.Session.TTL)
	// Output:
	// files streamable-http 30s
	// browser stdio 30s
	// listen 127.0.0.1:4483 path /mcp ttl 1h0m0s
}

func ExampleParse_errors() {
	_, err := config.Parse([]byte(`backends:
  - name: files
    transport: grpc
    url: http://127.0.0.1:8081/mcp
    headers: {X-Api-Key: "${FILES_KEY}"}
session:
  ttll: 30m
`), config.WithLookupEnv(func(string) (string, bool) { return "", false }))
	fmt.Println(err)

	var e *config.Error
	if errors.As(err, &e) {
		fmt.Printf("first: line %d, field %s\n", e.Line, e.Field)
	}
	// Output:
	// line 3: backends[0].transport: must be one of streamable-http, sse, stdio (got "grpc")
	// line 5: backends[0].headers.X-Api-Key: environment variable FILES_KEY is not set
	// line 7: session.ttll: unknown field (did you mean "ttl"?)
	// first: line 3, field backends[0].transport
}
