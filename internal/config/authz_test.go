package config

import (
	"strings"
	"testing"
)

const authzBase = `
backends:
  - name: files
    transport: streamable-http
    url: http://127.0.0.1:9/mcp
`

func TestAuthorizationAndRateLimits(t *testing.T) {
	t.Parallel()
	cfg, err := Parse([]byte(authzBase + `
authorization:
  policies:
    - name: admins
      effect: allow
      when: '"admin" in claims.groups'
    - effect: allow
      tools: ["files_read*"]
      backends: [files]
      when: arguments.path.startsWith("/tmp/")
rateLimits:
  initialize: {rate: 10/m}
  calls:
    - tools: ["*"]
      rate: 0.5/s
      burst: 3
`))
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Authorization
	if a.Default != EffectDeny || len(a.Policies) != 2 || a.Policies[1].Tools[0] != "files_read*" {
		t.Fatalf("authorization = %+v", a)
	}
	r := cfg.RateLimits
	if r.Initialize.PerSecond() != 10.0/60 || r.Initialize.Size() != 10 {
		t.Errorf("initialize = %g/s burst %d", r.Initialize.PerSecond(), r.Initialize.Size())
	}
	if l := r.Calls[0].Limit(); l.PerSecond() != 0.5 || l.Size() != 3 {
		t.Errorf("calls[0] = %g/s burst %d", l.PerSecond(), l.Size())
	}
}

func TestAuthorizationErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		yaml, want string
	}{
		{`
authorization:
  policies:
    - effect: allow
      when: 'subject =='`, "line 10: authorization.policies[0].when: invalid CEL expression: 1:11: Syntax error"},
		{`
authorization:
  policies:
    - effect: allow
      when: 'nosuch'`, "line 10: authorization.policies[0].when: invalid CEL expression: 1:1: undeclared reference to 'nosuch'"},
		{`
authorization:
  policies:
    - effect: allow
      when: 'subject'`, "line 10: authorization.policies[0].when: invalid CEL expression: must be a bool expression"},
		{`
authorization:
  policies:
    - effect: permit`, "line 9: authorization.policies[0].effect: must be one of allow, deny"},
		{`
authorization:
  policies:
    - tools: [x]`, "line 9: authorization.policies[0].effect: required"},
		{`
authorization:
  default: maybe`, "line 8: authorization.default: must be one of deny, allow"},
		{`
authorization:
  policies:
    - effect: deny
      backends: [nosuch]`, "line 10: authorization.policies[0].backends[0]: no backend is named \"nosuch\""},
		{`
rateLimits:
  calls:
    - tools: ["*"]
      rate: 10/d`, "line 10: rateLimits.calls[0].rate: must be a positive number per s, m or h"},
		{`
rateLimits:
  calls:
    - rate: 1/s`, "line 9: rateLimits.calls[0].tools: required"},
		{`
rateLimits:
  initialize: {burst: 3}`, "line 8: rateLimits.initialize.rate: required"},
	} {
		_, err := Parse([]byte(authzBase + tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config %s\nerr = %v\nwant it to contain %q", tc.yaml, err, tc.want)
		}
	}
}
