package config

import (
	"strings"
	"testing"
)

func TestOptimizer(t *testing.T) {
	t.Parallel()
	cfg, err := Parse([]byte(authzBase + `
optimizer:
  enabled: true
  defaultLimit: 3
  maxLimit: 10
`))
	if err != nil {
		t.Fatal(err)
	}
	if o := cfg.Optimizer; !o.Enabled || o.DefaultLimit != 3 || o.MaxLimit != 10 {
		t.Errorf("optimizer = %+v", o)
	}
	cfg, err = Parse([]byte(authzBase))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Optimizer.Enabled {
		t.Error("the optimizer is on without being asked for")
	}
}

func TestOptimizerErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ yaml, want string }{
		{"optimizer: {enabled: yes please}", "line 6: optimizer.enabled: "},
		{"optimizer:\n  enabled: true\n  limit: 3", `line 8: optimizer.limit: unknown field`},
		{"optimizer:\n  maxLimit: 1000", "line 7: optimizer.maxLimit: must be from 1 to 100, or 0 for the default"},
		{"optimizer:\n  defaultLimit: -1", "line 7: optimizer.defaultLimit: must not be negative"},
		{"optimizer:\n  defaultLimit: 8\n  maxLimit: 4", "line 7: optimizer.defaultLimit: must not exceed optimizer.maxLimit (4)"},
	} {
		_, err := Parse([]byte(authzBase + tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s:\nerr = %v\nwant %q", tc.yaml, err, tc.want)
		}
	}
}
