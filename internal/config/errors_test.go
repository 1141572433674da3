package config

import (
	"errors"
	"strings"
	"testing"
)

// errorLines returns each problem Parse reported, as text.
func errorLines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

func assertErrors(t *testing.T, err error, want []string) {
	t.Helper()
	got := errorLines(err)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	// Every line is an *Error a caller can inspect.
	var e *Error
	if err != nil && !errors.As(err, &e) {
		t.Errorf("errors.As(%T, *Error) = false", err)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"empty", "", []string{"config is empty"}},
		{"only comments", "# nothing yet\n", []string{"config is empty"}},
		{"null document", "---\n", []string{"config is empty"}},
		{"not a mapping", "- a\n", []string{"line 1: config must be a mapping of keys such as listen and backends, not a list"}},
		// yaml.v3 places this error a line early; we keep its number.
		{"yaml syntax", "listen: a\nbackends:\n  - name: [a\n", []string{"line 2: invalid YAML: did not find expected ',' or ']'"}},
		{"two documents", minimal + "---\nlisten: x\n", []string{"line 5: more than one YAML document; a config is a single document"}},
		{"no backends key", "listen: 127.0.0.1:1\n", []string{"backends: at least one backend is required"}},
		{"empty backends", "backends: []\n", []string{"line 1: backends: at least one backend is required"}},
		{"null backends", "backends:\n", []string{"line 1: backends: at least one backend is required"}},

		// Unknown keys, at every level, all reported at once.
		{"unknown keys", `lisen: x
backends:
  - name: a
    transport: stdio
    command: [x]
    urll: y
    keepalive: {interval: 1s, maxfailures: 2}
aggregation:
  strategy: prefix
  tools:
    - backend: a
      filtr: [t]
      overrides: {t: {nam: u}}
session:
  ttll: 1m
store:
  typ: memory
  redis: {adress: x}
server:
  cors: true
`, []string{
			`line 1: lisen: unknown field (did you mean "listen"?)`,
			`line 6: backends[0].urll: unknown field (did you mean "url"?)`,
			`line 7: backends[0].keepalive.maxfailures: unknown field (did you mean "maxFailures"?)`,
			`line 9: aggregation.strategy: unknown field`,
			`line 12: aggregation.tools[0].filtr: unknown field (did you mean "filter"?)`,
			`line 13: aggregation.tools[0].overrides.t.nam: unknown field (did you mean "name"?)`,
			`line 13: aggregation.tools[0].overrides.t: must set name or description`,
			`line 15: session.ttll: unknown field (did you mean "ttl"?)`,
			`line 17: store.typ: unknown field (did you mean "type"?)`,
			`line 18: store.redis.adress: unknown field (did you mean "address"?)`,
			`line 20: server.cors: unknown field`,
		}},
		{"duplicate key", minimal + "listen: 127.0.0.1:1\nlisten: 127.0.0.1:2\n", []string{
			"line 6: listen: duplicate key (first at line 5)",
		}},
		{"merge key", minimal + "defaults: &d {ttl: 1m}\nsession:\n  <<: *d\n", []string{
			`line 5: defaults: unknown field`,
			`line 7: session: merge keys (<<) are not supported`,
		}},

		// A key vmcp no longer has reads like any other unknown key, so an
		// old config fails at start instead of silently losing a setting.
		{"removed key", minimal + "server:\n  adaptiveProcs: true\n", []string{
			`line 6: server.adaptiveProcs: unknown field`,
		}},

		// Backends.
		{"bad transport", minimal + "  - name: b\n    transport: grpc\n", []string{
			`line 6: backends[1].transport: must be one of streamable-http, sse, stdio (got "grpc")`,
		}},
		{"missing name and transport", "backends:\n  - url: http://x/mcp\n", []string{
			"line 2: backends[0].name: required",
			"line 2: backends[0].transport: required: one of streamable-http, sse, stdio",
		}},
		{"bad name", "backends:\n  - {name: Files, transport: stdio, command: [x]}\n", []string{
			`line 2: backends[0].name: must contain only a-z, 0-9, _ and - (got "Files")`,
		}},
		{"duplicate name", minimal + "  - name: b\n    transport: stdio\n    command: [x]\n  - name: a\n    transport: stdio\n    command: [x]\n", []string{
			`line 8: backends[2].name: duplicate backend name "a" (first at line 2)`,
		}},
		{"http without url", "backends:\n  - name: a\n    transport: streamable-http\n", []string{
			"line 2: backends[0].url: required for transport streamable-http",
		}},
		{"relative url", "backends:\n  - name: a\n    transport: sse\n    url: /mcp\n", []string{
			"line 4: backends[0].url: must be an absolute http or https URL, such as http://127.0.0.1:8081/mcp",
		}},
		{"ftp url", "backends:\n  - name: a\n    transport: sse\n    url: ftp://user:pw@host/x\n", []string{
			"line 4: backends[0].url: scheme must be http or https",
		}},
		{"stdio-only fields on http", `backends:
  - name: a
    transport: streamable-http
    url: http://127.0.0.1:1/mcp
    command: [x]
    env: {A: b}
    inheritEnv: true
`, []string{
			"line 5: backends[0].command: only valid with transport stdio",
			"line 6: backends[0].env: only valid with transport stdio",
			"line 7: backends[0].inheritEnv: only valid with transport stdio",
		}},
		{"inheritEnv not a bool", "backends:\n  - name: a\n    transport: stdio\n    command: [x]\n    inheritEnv: yes-please\n", []string{
			`line 5: backends[0].inheritEnv: must be true or false (got "yes-please")`,
		}},
		{"http-only fields on stdio", `backends:
  - name: a
    transport: stdio
    url: http://127.0.0.1:1/mcp
    headers: {A: b}
`, []string{
			"line 2: backends[0].command: required for transport stdio: the program and its arguments, such as [npx, \"@playwright/mcp\"]",
			"line 4: backends[0].url: only valid with transports streamable-http and sse",
			"line 5: backends[0].headers: only valid with transports streamable-http and sse",
		}},
		{"empty program", "backends:\n  - {name: a, transport: stdio, command: [\"\", x]}\n", []string{
			"line 2: backends[0].command[0]: must name a program",
		}},
		{"bad headers", `backends:
  - name: a
    transport: streamable-http
    url: http://127.0.0.1:1/mcp
    headers:
      "X Y": a
      mcp-session-id: b
      X-Key: "c\nd"
      x-key: e
`, []string{
			`line 6: backends[0].headers["X Y"]: invalid HTTP header name`,
			`line 7: backends[0].headers.mcp-session-id: set by vmcp itself; it cannot be configured`,
			`line 8: backends[0].headers.X-Key: value must not contain line breaks or NUL`,
			`line 9: backends[0].headers.x-key: same header as X-Key (header names ignore case)`,
		}},
		{"bad env name", "backends:\n  - name: a\n    transport: stdio\n    command: [x]\n    env: {\"A=B\": c}\n", []string{
			`line 5: backends[0].env["A=B"]: invalid environment variable name`,
		}},
		{"zero timeout and keepalive", `backends:
  - name: a
    transport: stdio
    command: [x]
    timeout: 0s
    keepalive: {maxFailures: 0}
`, []string{
			"line 5: backends[0].timeout: must be greater than 0",
			"line 6: backends[0].keepalive.interval: required, must be greater than 0",
			"line 6: backends[0].keepalive.maxFailures: must be at least 1",
		}},
		{"breaker out of range", `backends:
  - name: a
    transport: stdio
    command: [x]
    breaker: {failureThreshold: 0, cooldown: 0s}
`, []string{
			"line 5: backends[0].breaker.failureThreshold: must be at least 1",
			"line 5: backends[0].breaker.cooldown: must be greater than 0",
		}},

		{"stdio pool out of range", `backends:
  - name: a
    transport: stdio
    command: [x]
    stdio: {warm: 65, idleTimeout: 0s}
  - name: b
    transport: sse
    url: http://127.0.0.1:1/sse
    stdio: {warm: 1}
`, []string{
			"line 5: backends[0].stdio.warm: must be at most 64",
			"line 5: backends[0].stdio.idleTimeout: must be greater than 0",
			"line 9: backends[1].stdio: only valid with transport stdio",
		}},
		{"warm pools fill the process limit", `server:
  maxStdioProcesses: 4
backends:
  - name: a
    transport: stdio
    command: [x]
    stdio: {warm: 2}
  - name: b
    transport: stdio
    command: [x]
    stdio:
      warm: 2
`, []string{
			"line 12: backends[1].stdio.warm: warm processes (4 in all so far) must stay below server.maxStdioProcesses (4)",
		}},

		// Types and ranges.
		{"wrong types", `backends:
  - name: [a]
    transport: stdio
    command: npx server
    env: [A]
    timeout: 30
session:
  maxSessions: lots
  ttl: 1 hour
server:
  pprof: yes
  maxBodyBytes: 99999999999999999999
`, []string{
			"line 2: backends[0].name: must be a string, not a list",
			"line 4: backends[0].command: must be a list, not a string",
			"line 5: backends[0].env: must be a mapping, not a list",
			`line 6: backends[0].timeout: must be a duration such as 30s, 5m or 1h30m (got "30")`,
			`line 8: session.maxSessions: must be an integer (got "lots")`,
			`line 9: session.ttl: must be a duration such as 30s, 5m or 1h30m (got "1 hour")`,
			`line 11: server.pprof: must be true or false (got "yes")`,
			`line 12: server.maxBodyBytes: out of range (got "99999999999999999999")`,
		}},
		{"backends as mapping", "backends: {a: {transport: stdio}}\n", []string{
			"line 1: backends: must be a list, not a mapping",
		}},
		{"negative values", minimal + `session:
  maxSessions: -1
  ttl: -5s
  maxSessionsPerIdentity: -2
store:
  redis: {db: -1}
server:
  maxBodyBytes: -1
  shutdownGrace: -1s
`, []string{
			`line 6: session.maxSessions: must not be negative (got "-1")`,
			`line 7: session.ttl: must not be negative (got "-5s")`,
			`line 8: session.maxSessionsPerIdentity: must not be negative (got "-2")`,
			`line 10: store.redis.db: must not be negative (got "-1")`,
			`line 12: server.maxBodyBytes: must not be negative (got "-1")`,
			`line 13: server.shutdownGrace: must not be negative (got "-1s")`,
		}},

		// Listen and path.
		{"listen without port", minimal + "listen: localhost\n", []string{
			`line 5: listen: must be host:port, such as 127.0.0.1:4483 (got "localhost")`,
		}},
		{"listen bad port", minimal + "listen: 127.0.0.1:http-ish\n", []string{
			`line 5: listen: port must be a number from 0 to 65535, such as 127.0.0.1:4483 (got "127.0.0.1:http-ish")`,
		}},
		{"path", minimal + "path: mcp\n", []string{
			`line 5: path: must be a URL path starting with "/", such as /mcp (got "mcp")`,
		}},

		// Aggregation.
		{"aggregation", `backends:
  - {name: a, transport: stdio, command: [x]}
  - {name: b, transport: stdio, command: [x]}
aggregation:
  conflictResolution: merge
  prefixFormat: "x_"
  priorityOrder: [a, c, a]
  tools:
    - backend: a
      filter: [t1, t2, t1, ""]
      overrides:
        t1: {name: same}
        t2: {name: same}
        t3: {name: other}
        t4: {}
    - backend: a
    - backend: zz
    - filter: [t]
    - backend: b
      overrides:
        t1: {name: "has space"}
`, []string{
			`line 5: aggregation.conflictResolution: must be one of prefix, priority, manual (got "merge")`,
			`line 6: aggregation.prefixFormat: must contain "{backend}" (got "x_")`,
			`line 7: aggregation.priorityOrder[1]: "c" is not a configured backend`,
			`line 7: aggregation.priorityOrder[2]: "a" is already listed at aggregation.priorityOrder[0]`,
			`line 10: aggregation.tools[0].filter[2]: tool "t1" is listed twice`,
			`line 10: aggregation.tools[0].filter[3]: must name a tool`,
			`line 13: aggregation.tools[0].overrides.t2.name: "same" is also the new name of tool "t1"`,
			`line 14: aggregation.tools[0].overrides.t3: tool "t3" is not in filter, so it is never exposed`,
			`line 15: aggregation.tools[0].overrides.t4: tool "t4" is not in filter, so it is never exposed`,
			`line 16: aggregation.tools[1].backend: backend "a" already has a rule at aggregation.tools[0] (line 9); merge them`,
			`line 17: aggregation.tools[2].backend: "zz" is not a configured backend`,
			`line 18: aggregation.tools[3].backend: required`,
			`line 21: aggregation.tools[4].overrides.t1.name: must be 1 to 128 characters of A-Z, a-z, 0-9, _, -, . and / (got "has space")`,
		}},
		{"empty override", minimal + "aggregation:\n  tools:\n    - backend: a\n      overrides: {\"fs.read\": {}}\n", []string{
			`line 8: aggregation.tools[0].overrides["fs.read"]: must set name or description`,
		}},
		// The manual strategy needs nothing more at load time: conflicts
		// are found when backends report their tools.
		{"manual strategy", minimal + "aggregation: {conflictResolution: manual}\n", nil},

		// Session, store, server limits.
		{"session zeros", minimal + `session:
  maxSessions: 0
  backendInitConcurrency: 0
  backendInitTimeout: 0s
  maxConcurrentCalls: 0
`, []string{
			"line 6: session.maxSessions: must be at least 1",
			"line 7: session.backendInitConcurrency: must be at least 1",
			"line 8: session.backendInitTimeout: must be greater than 0",
			"line 9: session.maxConcurrentCalls: must be at least 1",
		}},
		{"pprof without an admin listener", minimal + "server: {pprof: true}\n", []string{
			`line 5: server.pprof: requires server.adminListen: profiles are served only on the admin listener, never beside /mcp`,
		}},
		{"bad admin listener", minimal + "server: {adminListen: localhost}\n", []string{
			`line 5: server.adminListen: must be host:port, such as 127.0.0.1:4484 (got "localhost")`,
		}},
		{"admin listener on the main one", minimal + "listen: 127.0.0.1:4483\nserver: {adminListen: 127.0.0.1:4483}\n", []string{
			`line 6: server.adminListen: must differ from listen (both are "127.0.0.1:4483")`,
		}},
		{"sse responses", minimal + "server: {sseResponses: sometimes}\n", []string{
			`line 5: server.sseResponses: must be one of auto, always (got "sometimes")`,
		}},
		{"store type", minimal + "store: {type: etcd}\n", []string{
			`line 5: store.type: must be one of memory, redis (got "etcd")`,
		}},
		{"redis without address", minimal + "store:\n  type: redis\n  redis: {passwordEnv: my-pass}\n", []string{
			`line 7: store.redis.address: required when store.type is redis`,
			`line 7: store.redis.passwordEnv: must be the name of an environment variable, such as REDIS_PASSWORD (got "my-pass")`,
		}},
		{"redis without redis block", minimal + "store:\n  type: redis\n", []string{
			`line 6: store.redis.address: required when store.type is redis`,
		}},
		{"redis bad address", minimal + "store:\n  type: redis\n  redis: {address: \":6379\"}\n", []string{
			`line 7: store.redis.address: must name a host, such as 127.0.0.1:6379 (got ":6379")`,
		}},
		// A memory store ignores the redis block, as in the design example.
		{"memory ignores redis", minimal + "store:\n  type: memory\n  redis: {address: nonsense}\n", nil},
		{"server", minimal + `server:
  maxHeaderBytes: 0
  maxMessageDepth: 0
  allowedOrigins: [https://ok.example.com, https://x.example.com/app, "*"]
  allowedHosts: [ok.example.com, "http://x.example.com"]
`, []string{
			"line 6: server.maxHeaderBytes: must be at least 1",
			"line 7: server.maxMessageDepth: must be at least 1",
			`line 8: server.allowedOrigins[1]: must be an origin such as https://app.example.com: scheme://host[:port] with no path (got "https://x.example.com/app")`,
			`line 8: server.allowedOrigins[2]: must be an origin such as https://app.example.com: scheme://host[:port] with no path (got "*")`,
			`line 9: server.allowedHosts[1]: must be a host name or host:port, such as vmcp.example.com (got "http://x.example.com")`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := Parse([]byte(tt.yaml), WithLookupEnv(noEnv))
			assertErrors(t, err, tt.want)
			if err != nil && cfg != nil {
				t.Errorf("Parse returned a Config with an error")
			}
		})
	}
}
