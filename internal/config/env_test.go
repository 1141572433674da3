package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestExpand(t *testing.T) {
	t.Parallel()
	env := map[string]string{"A": "va", "B": "vb", "EMPTY": "", "NESTED": "${B}"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		in, want string
		fromEnv  bool
		err      string
	}{
		{in: "plain", want: "plain"},
		{in: "${A}", want: "va", fromEnv: true},
		{in: "Bearer ${A}-${B}!", want: "Bearer va-vb!", fromEnv: true},
		{in: "${EMPTY}", want: "", fromEnv: true},
		{in: "${NESTED}", want: "${B}", fromEnv: true}, // expanded text is not expanded again
		{in: "$$", want: "$"},
		{in: "$${A}", want: "${A}"},
		{in: "pa$$word", want: "pa$word"},
		{in: "costs $5", want: "costs $5"},
		{in: "ends with $", want: "ends with $"},
		{in: "${NOPE}", err: "environment variable NOPE is not set"},
		{in: "x ${A", err: `unterminated "${": close it with "}", or write "$$" for a literal "$"`},
		{in: "${1A}", err: `invalid environment variable name "1A" in ${...}`},
		{in: "${}", err: `invalid environment variable name "" in ${...}`},
		{in: "key=$FILES_KEY", err: `"$FILES_KEY" is not expanded: write "${FILES_KEY}" for a variable or "$$FILES_KEY" for literal text`},
	}
	for _, tt := range tests {
		got, fromEnv, err := expand(tt.in, lookup)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("expand(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want || fromEnv != tt.fromEnv {
			t.Errorf("expand(%q) = %q, %v, %v; want %q, %v", tt.in, got, fromEnv, err, tt.want, tt.fromEnv)
		}
	}
}

// ${VAR} works in every kind of scalar: strings, lists, map values,
// integers, durations and booleans. Keys are never expanded.
func TestParseExpandsEnv(t *testing.T) {
	t.Parallel()
	env := envMap(map[string]string{
		"PORT": "9999", "KEY": "k3y", "BIN": "/usr/bin/srv", "MAX": "7", "TTL": "2h", "TLS": "true",
	})
	cfg, err := Parse([]byte(`listen: 127.0.0.1:${PORT}
backends:
  - name: a
    transport: streamable-http
    url: http://127.0.0.1:${PORT}/mcp
    headers: {X-Api-Key: "${KEY}", Price: "$$5"}
  - name: b
    transport: stdio
    command: ["${BIN}", "--token=${KEY}", "$${NOT_EXPANDED}"]
    env: {TOKEN: "${KEY}", "${KEY}": literal-key}
session:
  maxSessions: ${MAX}
  ttl: ${TTL}
store:
  redis: {tls: "${TLS}", passwordEnv: KEY}
`), env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:9999" || cfg.Backends[0].URL != "http://127.0.0.1:9999/mcp" {
		t.Errorf("Listen, URL = %q, %q", cfg.Listen, cfg.Backends[0].URL)
	}
	wantHeaders := map[string]string{"X-Api-Key": "k3y", "Price": "$5"}
	if !reflect.DeepEqual(cfg.Backends[0].Headers, wantHeaders) {
		t.Errorf("Headers = %q, want %q", cfg.Backends[0].Headers, wantHeaders)
	}
	if want := []string{"/usr/bin/srv", "--token=k3y", "${NOT_EXPANDED}"}; !reflect.DeepEqual(cfg.Backends[1].Command, want) {
		t.Errorf("Command = %q, want %q", cfg.Backends[1].Command, want)
	}
	if want := map[string]string{"TOKEN": "k3y", "${KEY}": "literal-key"}; !reflect.DeepEqual(cfg.Backends[1].Env, want) {
		t.Errorf("Env = %q", cfg.Backends[1].Env)
	}
	if cfg.Session.MaxSessions != 7 || cfg.Session.TTL.D() != 2*time.Hour || !cfg.Store.Redis.TLS {
		t.Errorf("Session = %+v, Redis = %+v", cfg.Session, cfg.Store.Redis)
	}
	// passwordEnv names a variable; the password itself is never read.
	if cfg.Store.Redis.PasswordEnv != "KEY" {
		t.Errorf("PasswordEnv = %q, want the name KEY", cfg.Store.Redis.PasswordEnv)
	}
}

func TestParseEnvErrors(t *testing.T) {
	t.Parallel()
	_, err := Parse([]byte(`backends:
  - name: files
    transport: streamable-http
    url: http://127.0.0.1:8081/mcp
    headers: {X-Api-Key: "${FILES_KEY}", X-Other: "$OTHER"}
session:
  ttl: ${TTL
`), WithLookupEnv(noEnv))
	assertErrors(t, err, []string{
		`line 5: backends[0].headers.X-Api-Key: environment variable FILES_KEY is not set`,
		`line 5: backends[0].headers.X-Other: "$OTHER" is not expanded: write "${OTHER}" for a variable or "$$OTHER" for literal text`,
		`line 7: session.ttl: unterminated "${": close it with "}", or write "$$" for a literal "$"`,
	})
}

// Values from the environment may be secrets. When such a value is wrong,
// the error quotes the ${NAME} reference from the file, never the value.
func TestParseNeverPrintsExpandedValues(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t"
	env := envMap(map[string]string{
		"LISTEN":    secret,
		"PATH_":     secret,
		"NAME":      "Bad-" + secret,
		"TRANSPORT": "grpc-" + secret,
		"URL":       "ftp://" + secret + "@host/x",
		"HEADER":    secret + "\r\nInjected: 1",
		"TIMEOUT":   secret,
		"MAX":       "-" + secret,
		"NEG":       "-1",
		"STRATEGY":  secret,
		"PREFIX":    secret,
		"STORE":     secret,
		"PASSENV":   secret + "-name",
		"ORIGIN":    "https://" + secret + "/path",
		"PPROF":     secret,
	})
	_, err := Parse([]byte(`listen: ${LISTEN}
path: ${PATH_}
backends:
  - name: ${NAME}
    transport: ${TRANSPORT}
  - name: b
    transport: sse
    url: ${URL}
    headers: {Authorization: "Bearer ${HEADER}"}
    timeout: ${TIMEOUT}
aggregation: {conflictResolution: "${STRATEGY}", prefixFormat: "x${PREFIX}"}
session: {maxSessions: "${MAX}", ttl: "${NEG}s"}
store:
  type: ${STORE}
server:
  allowedOrigins: ["${ORIGIN}"]
  pprof: ${PPROF}
`), env)
	assertErrors(t, err, []string{
		`line 1: listen: must be host:port, such as 127.0.0.1:4483 (got "${LISTEN}")`,
		`line 2: path: must be a URL path starting with "/", such as /mcp (got "${PATH_}")`,
		`line 4: backends[0].name: must contain only a-z, 0-9, _ and - (got "${NAME}")`,
		`line 5: backends[0].transport: must be one of streamable-http, sse, stdio (got "${TRANSPORT}")`,
		`line 8: backends[1].url: scheme must be http or https`,
		`line 9: backends[1].headers.Authorization: value must not contain line breaks or NUL`,
		`line 10: backends[1].timeout: must be a duration such as 30s, 5m or 1h30m (got "${TIMEOUT}")`,
		`line 11: aggregation.conflictResolution: must be one of prefix, priority, manual (got "${STRATEGY}")`,
		`line 11: aggregation.prefixFormat: must contain "{backend}" (got "x${PREFIX}")`,
		`line 12: session.maxSessions: must be an integer (got "${MAX}")`,
		`line 12: session.ttl: must not be negative (got "${NEG}s")`,
		`line 14: store.type: must be one of memory, redis (got "${STORE}")`,
		`line 16: server.allowedOrigins[0]: must be an origin such as https://app.example.com: scheme://host[:port] with no path (got "${ORIGIN}")`,
		`line 17: server.pprof: must be true or false (got "${PPROF}")`,
	})
	if err != nil && strings.Contains(strings.ToLower(err.Error()), secret) {
		t.Errorf("an error shows an expanded value:\n%v", err)
	}
}

// A literal value in the file may hold a credential too (a URL with a
// password): URL errors never quote the URL, from the environment or not.
func TestParseNeverPrintsURL(t *testing.T) {
	t.Parallel()
	_, err := Parse([]byte("backends:\n  - {name: a, transport: sse, url: \"gopher://user:hunter2@host\"}\n"), WithLookupEnv(noEnv))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error = %v; want one without the URL", err)
	}
}

// Without WithLookupEnv, variables come from the process environment.
// Not parallel: t.Setenv changes the process.
func TestParseDefaultLookupEnv(t *testing.T) {
	t.Setenv("VMCP_CONFIG_TEST_CMD", "from-os")
	cfg, err := Parse([]byte("backends:\n  - {name: a, transport: stdio, command: [\"${VMCP_CONFIG_TEST_CMD}\"]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Backends[0].Command[0]; got != "from-os" {
		t.Errorf("Command[0] = %q, want from-os", got)
	}
	// nil restores the default.
	cfg, err = Parse([]byte("backends:\n  - {name: a, transport: stdio, command: [\"${VMCP_CONFIG_TEST_CMD}\"]}\n"), WithLookupEnv(nil))
	if err != nil || cfg.Backends[0].Command[0] != "from-os" {
		t.Errorf("WithLookupEnv(nil): %v, %v", cfg, err)
	}
}
