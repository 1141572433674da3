package config

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// noEnv is a lookup with no variables, so tests never depend on the
// machine's environment.
func noEnv(string) (string, bool) { return "", false }

func envMap(m map[string]string) Option {
	return WithLookupEnv(func(k string) (string, bool) { v, ok := m[k]; return v, ok })
}

// minimal is the smallest valid config: one backend, everything else default.
const minimal = `backends:
  - name: a
    transport: stdio
    command: [server]
`

func TestDefault(t *testing.T) {
	t.Parallel()
	want := &Config{
		Listen: "127.0.0.1:4483",
		Path:   "/mcp",
		Aggregation: Aggregation{
			ConflictResolution: "prefix",
			PrefixFormat:       "{backend}_",
		},
		Session: Session{
			TTL:                    Duration(30 * time.Minute),
			IdleTimeout:            Duration(10 * time.Minute),
			MaxSessions:            1000,
			MaxSessionsPerIdentity: 20,
			BackendInitConcurrency: 10,
			BackendInitTimeout:     Duration(5 * time.Second),
			MaxConcurrentCalls:     64,
			CallQueueTimeout:       Duration(5 * time.Second),
			RetryAfter:             Duration(30 * time.Second),
		},
		Store:         Store{Type: "memory", Redis: Redis{KeyPrefix: "vmcp:"}},
		Authorization: Authorization{Default: "deny"},
		Modern:        Modern{Pool: ModernPool{MaxPerIdentity: 4, MaxSessions: 256, IdleTimeout: Duration(5 * time.Minute)}},
		Server: Server{
			MaxBodyBytes:    4 << 20,
			MaxHeaderBytes:  64 << 10,
			MaxMessageDepth: 64,
			ReadTimeout:     Duration(30 * time.Second),
			ShutdownGrace:   Duration(10 * time.Second),
			EventBuffer:     256,
			SSEResponses:    "auto",
			Pprof:           false,

			MaxStdioProcesses:        256,
			MaxBufferedResponseBytes: 256 << 20,
		},
	}
	if got := Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("Default() =\n%+v\nwant\n%+v", got, want)
	}
	// Each call returns a fresh value: changing one must not change the next.
	Default().Session.MaxSessions = 1
	if Default().Session.MaxSessions != 1000 {
		t.Error("Default() shares state between calls")
	}
}

func TestParseAppliesDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := Parse([]byte(minimal), WithLookupEnv(noEnv))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Backends = []Backend{{
		Name:      "a",
		Transport: TransportStdio,
		Command:   []string{"server"},
		Timeout:   Duration(30 * time.Second),
	}}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("Parse(minimal) =\n%+v\nwant\n%+v", cfg, want)
	}
}

func TestParseBackendDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := Parse([]byte(`backends:
  - name: a
    transport: sse
    url: https://example.com/sse
    keepalive: {interval: 15s}
  - name: b
    transport: streamable-http
    url: http://127.0.0.1:9000/mcp
    timeout: 2m
    keepalive: {interval: 1m, maxFailures: 5}
    breaker: {cooldown: 30s}
`), WithLookupEnv(noEnv))
	if err != nil {
		t.Fatal(err)
	}
	want := []Backend{
		{Name: "a", Transport: "sse", URL: "https://example.com/sse", Timeout: Duration(30 * time.Second),
			Keepalive: &Keepalive{Interval: Duration(15 * time.Second), MaxFailures: 3}},
		{Name: "b", Transport: "streamable-http", URL: "http://127.0.0.1:9000/mcp", Timeout: Duration(2 * time.Minute),
			Keepalive: &Keepalive{Interval: Duration(time.Minute), MaxFailures: 5},
			Breaker:   &Breaker{FailureThreshold: 5, Cooldown: Duration(30 * time.Second)}},
	}
	if !reflect.DeepEqual(cfg.Backends, want) {
		t.Errorf("Backends =\n%+v\nwant\n%+v", cfg.Backends, want)
	}
}

// An explicit zero is kept, not replaced by the default: "ttl: 0s" means
// sessions never expire by age.
func TestParseExplicitZero(t *testing.T) {
	t.Parallel()
	cfg, err := Parse([]byte(minimal+`session:
  ttl: 0s
  idleTimeout: 0s
  callQueueTimeout: 0s
  retryAfter: 0s
server:
  eventBuffer: 0
  shutdownGrace: 0s
store:
  redis: {keyPrefix: ""}
`), WithLookupEnv(noEnv))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Session
	if s.TTL != 0 || s.IdleTimeout != 0 || s.CallQueueTimeout != 0 || s.RetryAfter != 0 {
		t.Errorf("Session = %+v, want zero durations", s)
	}
	if cfg.Server.EventBuffer != 0 || cfg.Server.ShutdownGrace != 0 || cfg.Store.Redis.KeyPrefix != "" {
		t.Errorf("explicit zeros replaced by defaults: %+v %+v", cfg.Server, cfg.Store)
	}
	// Null means "not set": the default stays.
	cfg, err = Parse([]byte(minimal+"session:\n  ttl:\n  maxSessions: ~\n"), WithLookupEnv(noEnv))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Session.TTL.D() != 30*time.Minute || cfg.Session.MaxSessions != 1000 {
		t.Errorf("null replaced a default: %+v", cfg.Session)
	}
}

// designExample is testdata/design.yaml, the example of the design brief, as
// a Config.
func designExample() *Config {
	want := Default()
	want.Backends = []Backend{
		{
			Name:      "files",
			Transport: TransportStreamableHTTP,
			URL:       "http://127.0.0.1:8081/mcp",
			Headers:   map[string]string{"X-Api-Key": "key-from-env"},
			Timeout:   Duration(30 * time.Second),
		},
		{
			Name:      "browser",
			Transport: TransportStdio,
			Command:   []string{"npx", "@playwright/mcp", "--headless"},
			Env:       map[string]string{"DEBUG": "0"},
			Timeout:   Duration(30 * time.Second),
		},
	}
	want.Aggregation = Aggregation{
		ConflictResolution: StrategyPrefix,
		PrefixFormat:       "{backend}_",
		PriorityOrder:      []string{"files", "browser"},
		Tools: []ToolRule{{
			Backend:   "files",
			Filter:    []string{"read_file", "list_dir"},
			Overrides: map[string]Override{"read_file": {Name: "fs_read", Description: "Read a file"}},
		}},
	}
	want.Session.MaxSessionsPerIdentity = 20
	want.Store.Redis.Address = "127.0.0.1:6379"
	return want
}

func TestLoadDesignExample(t *testing.T) {
	t.Parallel()
	cfg, err := Load("testdata/design.yaml", envMap(map[string]string{"FILES_KEY": "key-from-env"}))
	if err != nil {
		t.Fatal(err)
	}
	if want := designExample(); !reflect.DeepEqual(cfg, want) {
		t.Errorf("Load(design.yaml) =\n%+v\nwant\n%+v", cfg, want)
	}
}

func TestParseFullConfig(t *testing.T) {
	t.Parallel()
	cfg, err := Parse([]byte(`listen: 0.0.0.0:9000
path: /v1/mcp
backends:
  - name: a
    transport: stdio
    command: [srv]
    stdio: {warm: 2, idleTimeout: 90s}
  - name: b
    transport: sse
    url: http://b.internal:8080/sse
aggregation:
  conflictResolution: priority
  priorityOrder: [b]
session:
  maxConcurrentCalls: 8
  callQueueTimeout: 1s
  retryAfter: 1m
store:
  type: redis
  redis:
    address: redis.internal:6380
    db: 2
    keyPrefix: "prod:"
    passwordEnv: REDIS_PASSWORD
    tls: true
server:
  maxBodyBytes: 1048576
  maxHeaderBytes: 8192
  maxMessageDepth: 32
  readTimeout: 5s
  allowedOrigins: [https://app.example.com, "http://localhost:3000"]
  allowedHosts: [vmcp.example.com, "vmcp.example.com:9000"]
  shutdownGrace: 1m30s
  eventBuffer: 16
  pprof: true
  adminListen: 127.0.0.1:9001
  sseResponses: always
  maxStdioProcesses: 40
`), WithLookupEnv(noEnv))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "0.0.0.0:9000" || cfg.Path != "/v1/mcp" {
		t.Errorf("Listen, Path = %q, %q", cfg.Listen, cfg.Path)
	}
	// Under the priority strategy, backends left out of priorityOrder
	// follow in config order.
	if got := cfg.Aggregation.PriorityOrder; !reflect.DeepEqual(got, []string{"b", "a"}) {
		t.Errorf("PriorityOrder = %q, want [b a]", got)
	}
	wantRedis := Redis{Address: "redis.internal:6380", DB: 2, KeyPrefix: "prod:", PasswordEnv: "REDIS_PASSWORD", TLS: true}
	if cfg.Store.Type != StoreRedis || cfg.Store.Redis != wantRedis {
		t.Errorf("Store = %+v", cfg.Store)
	}
	wantServer := Server{
		MaxBodyBytes: 1 << 20, MaxHeaderBytes: 8192, MaxMessageDepth: 32, ReadTimeout: Duration(5 * time.Second),
		AllowedOrigins: []string{"https://app.example.com", "http://localhost:3000"},
		AllowedHosts:   []string{"vmcp.example.com", "vmcp.example.com:9000"},
		ShutdownGrace:  Duration(90 * time.Second), EventBuffer: 16, SSEResponses: "always", Pprof: true,
		AdminListen: "127.0.0.1:9001", MaxStdioProcesses: 40,

		MaxBufferedResponseBytes: 256 << 20,
	}
	if got, want := cfg.Backends[0].Stdio, (&Stdio{Warm: 2, IdleTimeout: Duration(90 * time.Second)}); !reflect.DeepEqual(got, want) {
		t.Errorf("Backends[0].Stdio = %+v, want %+v", got, want)
	}
	if !reflect.DeepEqual(cfg.Server, wantServer) {
		t.Errorf("Server = %+v\nwant %+v", cfg.Server, wantServer)
	}
	s := cfg.Session
	if s.MaxConcurrentCalls != 8 || s.CallQueueTimeout.D() != time.Second || s.RetryAfter.D() != time.Minute {
		t.Errorf("Session = %+v", s)
	}
}

func TestParsePriorityOrderFromBackends(t *testing.T) {
	t.Parallel()
	cfg, err := Parse([]byte(`backends:
  - {name: z, transport: stdio, command: [z]}
  - {name: a, transport: stdio, command: [a]}
aggregation: {conflictResolution: priority}
`), WithLookupEnv(noEnv))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Aggregation.PriorityOrder; !reflect.DeepEqual(got, []string{"z", "a"}) {
		t.Errorf("PriorityOrder = %q, want [z a] (the order of backends)", got)
	}
}

// Anchors and aliases are plain YAML and work anywhere.
func TestParseAliases(t *testing.T) {
	t.Parallel()
	cfg, err := Parse([]byte(`backends:
  - name: a
    transport: streamable-http
    url: http://127.0.0.1:1/mcp
    headers: &auth {Authorization: "Bearer ${TOKEN}"}
  - name: b
    transport: streamable-http
    url: http://127.0.0.1:2/mcp
    headers: *auth
`), envMap(map[string]string{"TOKEN": "t0k"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range cfg.Backends {
		if got := b.Headers["Authorization"]; got != "Bearer t0k" {
			t.Errorf("backend %s Authorization = %q", b.Name, got)
		}
	}
}

func TestLoadPrefixesErrorsWithPath(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "vmcp.yaml")
	if err := os.WriteFile(path, []byte(minimal+"  - name: b\n    transport: grpc\nsession: {ttll: 1m}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path, WithLookupEnv(noEnv))
	want := path + ":6: backends[1].transport: must be one of streamable-http, sse, stdio (got \"grpc\")\n" +
		path + ":7: session.ttll: unknown field (did you mean \"ttl\"?)"
	if err == nil || err.Error() != want {
		t.Fatalf("Load error:\n%v\nwant:\n%s", err, want)
	}
	var e *Error
	if !errors.As(err, &e) || e.File != path || e.Line != 6 || e.Field != "backends[1].transport" {
		t.Errorf("errors.As(*Error) = %+v", e)
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
}

func TestLoadEmptyFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "empty.yaml")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || err.Error() != path+": config is empty" {
		t.Errorf("Load(empty) = %v", err)
	}
}

func TestDuration(t *testing.T) {
	t.Parallel()
	d := Duration(90 * time.Second)
	if d.D() != 90*time.Second || d.String() != "1m30s" {
		t.Errorf("D, String = %v, %q", d.D(), d.String())
	}
	b, err := json.Marshal(struct{ T Duration }{d})
	if err != nil || string(b) != `{"T":"1m30s"}` {
		t.Errorf("json.Marshal = %s, %v", b, err)
	}
	var back struct{ T Duration }
	if err := json.Unmarshal(b, &back); err != nil || back.T != d {
		t.Errorf("json.Unmarshal = %v, %v", back.T, err)
	}
	if err := back.T.UnmarshalText([]byte("soon")); err == nil || !strings.Contains(err.Error(), "invalid duration") {
		t.Errorf("UnmarshalText(soon) = %v", err)
	}
}
