package config

import (
	"strings"
	"testing"
	"time"
)

func TestModernPool(t *testing.T) {
	t.Parallel()
	cfg, err := Parse([]byte(authzBase))
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.Modern.Pool; p.MaxPerIdentity != 4 || p.MaxSessions != 256 || p.IdleTimeout.D() != 5*time.Minute {
		t.Errorf("defaults = %+v", p)
	}
	cfg, err = Parse([]byte(authzBase + `
modern:
  pool: {maxPerIdentity: 2, maxSessions: 10, idleTimeout: 30s}
`))
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.Modern.Pool; p.MaxPerIdentity != 2 || p.MaxSessions != 10 || p.IdleTimeout.D() != 30*time.Second {
		t.Errorf("modern.pool = %+v", p)
	}
}

func TestModernPoolErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ yaml, want string }{
		{"modern:\n  pool:\n    maxPerIdentity: 0\n", "line 8: modern.pool.maxPerIdentity: must be at least 1"},
		{"modern:\n  pool:\n    maxSessions: 0\n", "line 8: modern.pool.maxSessions: must be at least 1"},
		{"modern:\n  pool:\n    idleTimeout: 0s\n", "line 8: modern.pool.idleTimeout: must be greater than 0"},
		{"modern:\n  pool:\n    maxPerIdentity: 9\n    maxSessions: 8\n", "line 8: modern.pool.maxPerIdentity: must not exceed modern.pool.maxSessions (8)"},
		{"modern:\n  pool:\n    size: 3\n", "line 8: modern.pool.size: unknown"},
	} {
		_, err := Parse([]byte(authzBase + tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want it to contain %q", tc.yaml, err, tc.want)
		}
	}
}
