// Package config loads and validates vmcp's YAML configuration.
//
// Load and Parse decode the file through yaml.Node rather than into structs
// directly, so that every problem is reported with its line and field path,
// for example
//
//	vmcp.yaml:7: backends[1].transport: must be one of streamable-http, sse, stdio (got "grpc")
//
// Unknown keys are errors. ${NAME} in any scalar value (strings, list items,
// map values, numbers, durations; never keys) expands from the environment
// and $$ stands for a literal $. Inside YAML flow collections ([...] and
// {...}) a value holding ${NAME} must be quoted, since braces are YAML
// syntax there. Error messages never contain the value of an expanded
// variable, since it may be a secret.
//
// A *Config returned by Load or Parse is complete: defaults are filled in and
// it has passed validation. It is plain data; callers must not mutate it while
// others read it.
package config

import (
	"fmt"
	"time"
)

// Transports a backend may use.
const (
	TransportStreamableHTTP = "streamable-http"
	TransportSSE            = "sse"
	TransportStdio          = "stdio"
)

// Conflict resolution strategies for tools, resources and prompts that
// several backends offer under the same name.
const (
	StrategyPrefix   = "prefix"
	StrategyPriority = "priority"
	StrategyManual   = "manual"
)

// Store types.
const (
	StoreMemory = "memory"
	StoreRedis  = "redis"
)

// Defaults that other packages (the CLI, the demo) refer to.
const (
	DefaultListen       = "127.0.0.1:4483"
	DefaultPath         = "/mcp"
	DefaultPrefixFormat = "{backend}_"
	// DefaultMaxSessionsPerIdentity caps the sessions of one caller (an
	// authenticated subject, or an anonymous client's address), so that one
	// client cannot start a process per initialize without bound.
	DefaultMaxSessionsPerIdentity = 20
)

// Config is vmcp's whole configuration.
type Config struct {
	Listen      string      `yaml:"listen"` // host:port
	Path        string      `yaml:"path"`   // MCP endpoint path
	Backends    []Backend   `yaml:"backends"`
	Aggregation Aggregation `yaml:"aggregation"`
	Session     Session     `yaml:"session"`
	Store       Store       `yaml:"store"`
	Server      Server      `yaml:"server"`
	// IncomingAuth is how clients authenticate (auth.go); nil: none given.
	IncomingAuth *IncomingAuth `yaml:"incomingAuth"`
	// Authorization and RateLimits gate what each caller sees and calls
	// (authz.go).
	Authorization Authorization `yaml:"authorization"`
	RateLimits    RateLimits    `yaml:"rateLimits"`
	// Optimizer shows clients find_tool and call_tool instead of the
	// catalog (optimizer.go).
	Optimizer Optimizer `yaml:"optimizer"`
	// Telemetry and Audit: metrics labels, traces and the audit trail
	// (telemetry.go, audit.go).
	Telemetry Telemetry `yaml:"telemetry"`
	Audit     *Audit    `yaml:"audit"`
	// Modern is how 2026-07-28 clients are served (modern_pool.go).
	Modern Modern `yaml:"modern"`
}

// Backend is one MCP server behind vmcp.
type Backend struct {
	Name      string            `yaml:"name"`      // unique, [a-z0-9_-]+
	Transport string            `yaml:"transport"` // one of the Transport constants
	URL       string            `yaml:"url"`       // streamable-http and sse only
	Headers   map[string]string `yaml:"headers"`   // streamable-http and sse only; values may be secrets
	Timeout   Duration          `yaml:"timeout"`   // per call, > 0
	Command   []string          `yaml:"command"`   // stdio only: argv, command[0] is the program
	Env       map[string]string `yaml:"env"`       // stdio only: added to the child's environment
	Keepalive *Keepalive        `yaml:"keepalive"` // nil: no keepalive pings
	Breaker   *Breaker          `yaml:"breaker"`   // nil: the defaults
	Stdio     *Stdio            `yaml:"stdio"`     // stdio only; nil: no warm pool
	// MaxConnections bounds the sockets to the backend (streamable-http
	// and sse), whatever the number of sessions; 0: DefaultMaxConnections.
	MaxConnections int `yaml:"maxConnections"`
	// MaxResponseBytes caps one message from the backend (a response
	// body, an SSE event, a stdio line); 0: DefaultMaxResponseBytes.
	MaxResponseBytes int `yaml:"maxResponseBytes"`
	// TLS configures connections to an https backend (streamable-http and
	// sse); nil: the system's roots, no client certificate.
	TLS *BackendTLS `yaml:"tls"`
	// OutgoingAuth is the credential vmcp presents to the backend
	// (streamable-http and sse only); nil: none beyond Headers.
	OutgoingAuth *OutgoingAuth `yaml:"outgoingAuth"`
	// InheritEnv (stdio only) gives the child all of vmcp's environment;
	// by default it gets only PATH, HOME, LANG and TMPDIR from it, besides
	// Env.
	InheritEnv bool `yaml:"inheritEnv"`
	// Protocol is the MCP era vmcp speaks to the backend, one of the
	// Protocol constants; "" is ProtocolAuto (protocol.go).
	Protocol string `yaml:"protocol"`
}

// BackendTLS holds the PEM files for TLS to one backend. Parse has checked
// that they load.
type BackendTLS struct {
	// CAFile holds the certificates that verify the backend, in place of
	// the system's roots.
	CAFile string `yaml:"caFile"`
	// CertFile and KeyFile, set together, are the client certificate vmcp
	// presents (mutual TLS).
	CertFile string `yaml:"certFile"`
	KeyFile  string `yaml:"keyFile"`
}

// Backend limits' defaults.
const (
	DefaultMaxConnections   = 64
	DefaultMaxResponseBytes = 32 << 20
)

func (b *Backend) setDefaults() { b.Timeout = Duration(30 * time.Second) }

// Outgoing authentication types.
const (
	OutgoingNone              = "none"
	OutgoingClientCredentials = "clientCredentials"
	OutgoingTokenExchange     = "tokenExchange"
)

// OutgoingAuth is how vmcp authenticates to one backend: with no
// credential beyond the static headers (OutgoingNone), with its own OAuth
// 2.0 client-credentials token, or with an RFC 8693 exchange of the
// calling client's token. The client's token itself is never sent.
type OutgoingAuth struct {
	Type     string `yaml:"type"`     // one of the Outgoing constants
	TokenURL string `yaml:"tokenURL"` // the authorization server's token endpoint
	ClientID string `yaml:"clientID"`
	// ClientSecretEnv is the NAME of an environment variable holding the
	// client secret. Config only checks that it is set, so the secret is
	// never part of a Config.
	ClientSecretEnv string   `yaml:"clientSecretEnv"`
	Scopes          []string `yaml:"scopes"`
	Audience        string   `yaml:"audience"`
	Resource        string   `yaml:"resource"` // RFC 8707; tokenExchange only
}

func (o *OutgoingAuth) setDefaults() { o.Type = OutgoingNone }

// Breaker tunes a backend's circuit breaker, which all sessions share.
type Breaker struct {
	FailureThreshold int      `yaml:"failureThreshold"` // consecutive failures that open it, >= 1
	Cooldown         Duration `yaml:"cooldown"`         // open this long before one probe, > 0
}

func (b *Breaker) setDefaults() {
	b.FailureThreshold = DefaultBreakerThreshold
	b.Cooldown = Duration(DefaultBreakerCooldown)
}

// The circuit breaker's defaults, also when a backend has no breaker block.
const (
	DefaultBreakerThreshold = 5
	DefaultBreakerCooldown  = 10 * time.Second
)

// Stdio tunes a stdio backend's processes. Warm processes are started and
// initialized ahead of the sessions that will take them; each serves
// exactly one session.
type Stdio struct {
	Warm        int      `yaml:"warm"`        // processes kept ready, 0 to MaxWarm
	IdleTimeout Duration `yaml:"idleTimeout"` // a warm process unused this long is stopped, > 0
}

func (s *Stdio) setDefaults() { s.IdleTimeout = Duration(DefaultWarmIdleTimeout) }

// Bounds and defaults of the stdio settings.
const (
	MaxWarm                  = 64
	DefaultWarmIdleTimeout   = 5 * time.Minute
	DefaultMaxStdioProcesses = 256
)

// Keepalive makes a session ping its backend client every Interval and
// treat the backend as failed after MaxFailures pings in a row fail.
type Keepalive struct {
	Interval    Duration `yaml:"interval"`    // required, > 0
	MaxFailures int      `yaml:"maxFailures"` // >= 1
}

func (k *Keepalive) setDefaults() { k.MaxFailures = 3 }

// Aggregation controls how backend capabilities merge into one catalog.
type Aggregation struct {
	ConflictResolution string `yaml:"conflictResolution"` // one of the Strategy constants
	// PrefixFormat renames tools under the prefix strategy; "{backend}" is
	// replaced with the backend name.
	PrefixFormat string `yaml:"prefixFormat"`
	// PriorityOrder names backends, highest priority first. Under the
	// priority strategy Parse completes it: backends not listed follow in
	// the order of Config.Backends, so it names every backend exactly once.
	PriorityOrder []string   `yaml:"priorityOrder"`
	Tools         []ToolRule `yaml:"tools"`
}

// ToolRule filters and renames the tools of one backend.
type ToolRule struct {
	Backend string `yaml:"backend"`
	// Filter, if non-empty, lists the only tools (by original name) exposed.
	Filter []string `yaml:"filter"`
	// Overrides is keyed by original tool name.
	Overrides map[string]Override `yaml:"overrides"`
}

// Override replaces a tool's name, description or both. Empty fields keep
// the backend's value.
type Override struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
}

// Session holds the session limits and lifetimes.
type Session struct {
	TTL                    Duration `yaml:"ttl"`                    // 0: sessions never expire by age
	IdleTimeout            Duration `yaml:"idleTimeout"`            // 0: no idle expiry
	MaxSessions            int      `yaml:"maxSessions"`            // >= 1
	MaxSessionsPerIdentity int      `yaml:"maxSessionsPerIdentity"` // per subject, or per address when anonymous; default 20; 0: unlimited
	BackendInitConcurrency int      `yaml:"backendInitConcurrency"` // >= 1
	BackendInitTimeout     Duration `yaml:"backendInitTimeout"`     // > 0
	MaxConcurrentCalls     int      `yaml:"maxConcurrentCalls"`     // per session, >= 1
	CallQueueTimeout       Duration `yaml:"callQueueTimeout"`       // wait for a call slot
	RetryAfter             Duration `yaml:"retryAfter"`             // Retry-After on 503
}

// Store selects where session metadata lives.
type Store struct {
	Type  string `yaml:"type"` // StoreMemory or StoreRedis
	Redis Redis  `yaml:"redis"`
}

// Redis configures the redis store. It is validated only when Store.Type is
// StoreRedis.
type Redis struct {
	Address   string `yaml:"address"` // host:port
	DB        int    `yaml:"db"`
	KeyPrefix string `yaml:"keyPrefix"`
	// PasswordEnv is the NAME of an environment variable holding the
	// password. Config never reads it, so the password is never part of a
	// Config.
	PasswordEnv string `yaml:"passwordEnv"`
	TLS         bool   `yaml:"tls"`
}

// Server holds the client-facing HTTP server's limits.
type Server struct {
	MaxBodyBytes    int64 `yaml:"maxBodyBytes"`
	MaxHeaderBytes  int   `yaml:"maxHeaderBytes"`
	MaxMessageDepth int   `yaml:"maxMessageDepth"` // JSON nesting limit
	// ReadTimeout bounds reading a request's body, from the end of its
	// head: a body that has not arrived by then gets 408 and a closed
	// connection.
	ReadTimeout Duration `yaml:"readTimeout"`
	// TLS, when set, serves HTTPS (and HTTP/2) instead of plain HTTP.
	TLS *TLS `yaml:"tls"`
	// AllowedOrigins are Origins (scheme://host[:port]) accepted besides
	// the localhost ones.
	AllowedOrigins []string `yaml:"allowedOrigins"`
	// AllowedHosts are Host header values (host or host:port) accepted
	// besides the localhost ones.
	AllowedHosts  []string `yaml:"allowedHosts"`
	ShutdownGrace Duration `yaml:"shutdownGrace"`
	EventBuffer   int      `yaml:"eventBuffer"` // events each SSE stream keeps for Last-Event-ID replay; 0: 256
	// SSEResponses is SSEAuto (a call that sent nothing before its quick
	// response is answered with JSON) or SSEAlways (every request from a
	// client accepting SSE gets an event stream).
	SSEResponses string `yaml:"sseResponses"`
	// Pprof serves /debug/pprof/ on the admin listener; it requires
	// AdminListen.
	Pprof bool `yaml:"pprof"`
	// AdminListen (host:port), if set, is a second, plain-HTTP listener
	// for operators: /status, /metrics and, with Pprof, /debug/pprof/
	// move there from the main listener, and /health and /readyz are on
	// both.
	AdminListen string `yaml:"adminListen"`
	// MaxStdioProcesses caps the stdio backend processes this vmcp runs at
	// once, warm ones included; a session that would need one more gets 503
	// and Retry-After. 0 means no limit.
	MaxStdioProcesses int `yaml:"maxStdioProcesses"`
	// MaxBufferedResponseBytes bounds the bytes of backend responses
	// buffered at once across all sessions and backends. A call whose
	// response does not fit fails and says so.
	MaxBufferedResponseBytes int64 `yaml:"maxBufferedResponseBytes"`
}

// TLS is the listener's certificate, and the CA that client certificates
// must chain to for mutual TLS. The files are read at startup, to
// validate them, and again whenever the certificate or key file changes
// on disk.
type TLS struct {
	CertFile string `yaml:"certFile"` // PEM, leaf first, then intermediates
	KeyFile  string `yaml:"keyFile"`  // PEM
	// ClientCAFile, if set, requires every client to present a
	// certificate that chains to one of its PEM certificates.
	ClientCAFile string `yaml:"clientCAFile"`
}

// MaxReadTimeout is the largest server.readTimeout accepted.
const MaxReadTimeout = 10 * time.Minute

// Values of server.sseResponses.
const (
	SSEAuto   = "auto"
	SSEAlways = "always"
)

// Default returns a Config with every default set and no backends. It does
// not pass Parse's validation as is (Parse requires a backend); the demo
// mode starts from it and adds its own backends.
func Default() *Config {
	return &Config{
		Listen: DefaultListen,
		Path:   DefaultPath,
		Aggregation: Aggregation{
			ConflictResolution: StrategyPrefix,
			PrefixFormat:       DefaultPrefixFormat,
		},
		Session: Session{
			TTL:                    Duration(30 * time.Minute),
			IdleTimeout:            Duration(10 * time.Minute),
			MaxSessions:            1000,
			MaxSessionsPerIdentity: DefaultMaxSessionsPerIdentity,
			BackendInitConcurrency: 10,
			BackendInitTimeout:     Duration(5 * time.Second),
			MaxConcurrentCalls:     64,
			CallQueueTimeout:       Duration(5 * time.Second),
			RetryAfter:             Duration(30 * time.Second),
		},
		Authorization: Authorization{Default: EffectDeny},
		Modern:        defaultModern(),
		Store: Store{
			Type:  StoreMemory,
			Redis: Redis{KeyPrefix: "vmcp:"},
		},
		Server: Server{
			MaxBodyBytes:      4 << 20,
			MaxHeaderBytes:    64 << 10,
			MaxMessageDepth:   64,
			ReadTimeout:       Duration(30 * time.Second),
			ShutdownGrace:     Duration(10 * time.Second),
			EventBuffer:       256,
			SSEResponses:      SSEAuto,
			MaxStdioProcesses: DefaultMaxStdioProcesses,

			MaxBufferedResponseBytes: 256 << 20,
		},
	}
}

// Duration is a time.Duration written in YAML as "30s", "5m" or "1h30m".
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText formats d like time.Duration, so JSON and YAML show "30s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses a time.Duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("config: invalid duration %q: %w", b, err)
	}
	*d = Duration(v)
	return nil
}
