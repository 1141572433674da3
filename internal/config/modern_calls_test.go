package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestModernCalls(t *testing.T) {
	t.Parallel()
	key := "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // 32 bytes, base64
	cfg, err := Parse([]byte(authzBase + `
modern:
  stateKey: ` + key + `
  inputTimeout: 90s
  maxWaitingCalls: 8
  cacheTTL: 1s
  cacheScope: public
  pool: {maxPerIdentity: 2}
`))
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.Modern
	if m.InputTimeout.D() != 90*time.Second || m.MaxWaitingCalls != 8 || m.CacheTTL.D() != time.Second || m.CacheScope != "public" || m.Pool.MaxPerIdentity != 2 {
		t.Errorf("modern = %+v", m)
	}
	if k, err := m.Key(); err != nil || string(k) != "0123456789abcdef0123456789abcdef" {
		t.Errorf("Key() = %q, %v", k, err)
	}
	file := filepath.Join(t.TempDir(), "key")
	os.WriteFile(file, []byte(key+"\n"), 0o600)
	cfg, err = Parse([]byte(authzBase + "modern:\n  stateKeyFile: " + file + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if k, err := cfg.Modern.Key(); err != nil || len(k) != 32 {
		t.Errorf("Key() from file = %d bytes, %v", len(k), err)
	}
}

func TestModernCallsErrors(t *testing.T) {
	t.Parallel()
	secret := "c2hvcnQta2V5LXNlY3JldA=="
	for _, tc := range []struct{ yaml, want string }{
		{"modern:\n  stateKey: " + secret + "\n", "modern.stateKey: key must be 32 bytes in base64 or hex"},
		{"modern:\n  stateKey: a\n  stateKeyFile: /x\n", "modern.stateKey: set stateKey or stateKeyFile, not both"},
		{"modern:\n  stateKeyFile: /nonexistent/vmcp-key\n", "modern.stateKeyFile:"},
		{"modern:\n  inputTimeout: -1s\n", "modern.inputTimeout: must not be negative"},
		{"modern:\n  maxWaitingCalls: -1\n", "modern.maxWaitingCalls: must not be negative"},
		{"modern:\n  cacheScope: shared\n", "modern.cacheScope: must be public or private"},
		{"modern:\n  advertiseURL: 10.0.0.5:8080\n", "modern.advertiseURL: must be an absolute http or https URL"},
	} {
		_, err := Parse([]byte(authzBase + tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want it to contain %q", tc.yaml, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("%q: the error shows the key: %v", tc.yaml, err)
		}
	}
}
