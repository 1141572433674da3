package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmcp/vmcp/internal/certs/certstest"
)

func TestServerTLSAndReadTimeout(t *testing.T) {
	t.Parallel()
	ca := certstest.NewCA(t)
	certFile, keyFile, _ := ca.Files(t)
	other := ca.Issue(t)
	otherKey := filepath.Join(t.TempDir(), "other-key.pem")
	other.Write(t, filepath.Join(filepath.Dir(otherKey), "other-cert.pem"), otherKey)
	missing := filepath.Join(t.TempDir(), "missing.pem")

	server := func(body string) string { return minimal + "server:\n" + body }
	tests := []struct {
		name string
		yaml string
		want []string // error lines; none: valid
	}{
		{"tls", server(fmt.Sprintf("  tls:\n    certFile: %s\n    keyFile: %s\n", certFile, keyFile)), nil},
		{"mutual tls", server(fmt.Sprintf("  tls: {certFile: %s, keyFile: %s, clientCAFile: %s}\n", certFile, keyFile, ca.CAFile)), nil},
		{"no key", server(fmt.Sprintf("  tls:\n    certFile: %s\n", certFile)),
			[]string{"line 7: server.tls.keyFile: required: the PEM file of the certificate's private key"}},
		{"missing cert file", server(fmt.Sprintf("  tls:\n    certFile: %s\n    keyFile: %s\n", missing, keyFile)),
			[]string{fmt.Sprintf("line 7: server.tls.certFile: with keyFile: open %s: no such file or directory", missing)}},
		{"key of another certificate", server(fmt.Sprintf("  tls:\n    certFile: %s\n    keyFile: %s\n", certFile, otherKey)),
			[]string{"line 7: server.tls.certFile: with keyFile: tls: private key does not match public key"}},
		{"client CA not PEM", server(fmt.Sprintf("  tls: {certFile: %s, keyFile: %s, clientCAFile: %s}\n", certFile, keyFile, keyFile)),
			[]string{fmt.Sprintf("line 6: server.tls.clientCAFile: %s holds no PEM certificate", keyFile)}},
		{"read timeout", server("  readTimeout: 300ms\n"), nil},
		{"read timeout zero", server("  readTimeout: 0s\n"),
			[]string{"line 6: server.readTimeout: must be greater than 0 and at most 10m0s (got \"0s\")"}},
		{"read timeout too long", server("  readTimeout: 1h\n"),
			[]string{"line 6: server.readTimeout: must be greater than 0 and at most 10m0s (got \"1h0m0s\")"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := Parse([]byte(tc.yaml), WithLookupEnv(noEnv))
			assertErrors(t, err, tc.want)
			if err == nil && strings.Contains(tc.yaml, "tls") && (cfg.Server.TLS == nil || cfg.Server.TLS.CertFile != certFile) {
				t.Errorf("Server.TLS = %+v", cfg.Server.TLS)
			}
		})
	}
}
