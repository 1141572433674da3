package config

import (
	"crypto/tls"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/vmcp/vmcp/internal/fixture"
)

func TestParseBackendLimitsAndTLS(t *testing.T) {
	t.Parallel()
	files := fixture.NewTLSFiles(t)
	cfg, err := Parse([]byte(fmt.Sprintf(`backends:
  - name: a
    transport: streamable-http
    url: https://127.0.0.1:9443/mcp
    maxConnections: 8
    maxResponseBytes: 1048576
    tls: {caFile: %q, certFile: %q, keyFile: %q}
server:
  maxBufferedResponseBytes: 67108864
`, files.CAFile, files.ClientCert, files.ClientKey)), WithLookupEnv(noEnv))
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.Backends[0]
	if b.MaxConnections != 8 || b.MaxResponseBytes != 1<<20 || cfg.Server.MaxBufferedResponseBytes != 64<<20 {
		t.Errorf("limits = %d, %d, %d", b.MaxConnections, b.MaxResponseBytes, cfg.Server.MaxBufferedResponseBytes)
	}
	tc, err := b.TLS.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	if tc.RootCAs == nil || len(tc.Certificates) != 1 || tc.MinVersion != tls.VersionTLS12 {
		t.Errorf("tls config = %+v", tc)
	}
	if d := Default(); d.Server.MaxBufferedResponseBytes != 256<<20 {
		t.Errorf("default budget %d, want 256 MiB", d.Server.MaxBufferedResponseBytes)
	}
}

func TestParseBackendLimitsAndTLSErrors(t *testing.T) {
	t.Parallel()
	files := fixture.NewTLSFiles(t)
	missing := filepath.Join(t.TempDir(), "nope.pem")
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"zero limits", `backends:
  - name: a
    transport: streamable-http
    url: http://127.0.0.1:1/mcp
    maxConnections: 0
    maxResponseBytes: 0
server:
  maxBufferedResponseBytes: 0
`, []string{
			"line 5: backends[0].maxConnections: must be at least 1",
			"line 6: backends[0].maxResponseBytes: must be at least 1",
			"line 8: server.maxBufferedResponseBytes: must be at least 1",
		}},
		{"stdio has no pool or tls", `backends:
  - name: a
    transport: stdio
    command: [x]
    maxConnections: 4
    tls: {caFile: x}
`, []string{
			"line 5: backends[0].maxConnections: only valid with transports streamable-http and sse",
			"line 6: backends[0].tls: only valid with transports streamable-http and sse",
		}},
		{"tls needs https", `backends:
  - name: a
    transport: sse
    url: http://127.0.0.1:1/sse
    tls: {caFile: ` + files.CAFile + `}
`, []string{"line 5: backends[0].tls: only valid with an https url"}},
		{"cert without key", `backends:
  - name: a
    transport: streamable-http
    url: https://127.0.0.1:1/mcp
    tls:
      certFile: ` + files.ClientCert + `
`, []string{"line 6: backends[0].tls.keyFile: required with certFile"}},
		{"missing CA file", `backends:
  - name: a
    transport: streamable-http
    url: https://127.0.0.1:1/mcp
    tls:
      caFile: ` + missing + `
`, []string{"line 6: backends[0].tls.caFile: cannot read " + missing + ": no such file or directory"}},
		{"CA file without a certificate", `backends:
  - name: a
    transport: streamable-http
    url: https://127.0.0.1:1/mcp
    tls:
      caFile: ` + files.ClientKey + `
`, []string{"line 6: backends[0].tls.caFile: no PEM certificate in " + files.ClientKey}},
		{"key that does not match", `backends:
  - name: a
    transport: streamable-http
    url: https://127.0.0.1:1/mcp
    tls:
      certFile: ` + files.ClientCert + `
      keyFile: ` + files.ServerKey + `
`, []string{"line 6: backends[0].tls.certFile: cannot load the certificate and key: tls: private key does not match public key"}},
		{"idempotency key", `backends:
  - name: a
    transport: streamable-http
    url: http://127.0.0.1:1/mcp
    headers: {Idempotency-Key: k}
`, []string{"line 5: backends[0].headers.Idempotency-Key: not allowed: it would let a call be sent to the backend twice"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tc.yaml), WithLookupEnv(noEnv))
			assertErrors(t, err, tc.want)
		})
	}
}
