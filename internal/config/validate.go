package config

import (
	"crypto/tls"
	"fmt"
	"maps"
	"net"
	"net/textproto"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/vmcp/vmcp/internal/certs"
)

var (
	backendNameRE = regexp.MustCompile(`^[a-z0-9_-]+$`)
	// toolNameRE follows MCP's guidance for tool names, so an override
	// cannot produce a name that clients refuse.
	toolNameRE = regexp.MustCompile(`^[A-Za-z0-9_./-]{1,128}$`)
)

// managedHeaders are set by vmcp's connectors for the protocol to work; a
// configured value would break the backend session.
var managedHeaders = []string{
	"Mcp-Session-Id", "Mcp-Protocol-Version", "Last-Event-Id",
	"Content-Type", "Content-Length", "Transfer-Encoding",
}

// validator checks a decoded Config. Each check names the field path it
// concerns; the decoder's positions turn that into a line. Fields whose
// decoding failed kept their defaults, so they are not reported twice.
type validator struct{ d *decoder }

func validate(cfg *Config, d *decoder) {
	v := &validator{d: d}
	v.server(cfg)
	names := v.backends(cfg.Backends)
	v.aggregation(&cfg.Aggregation, names)
	v.session(&cfg.Session)
	v.store(&cfg.Store)
	v.warmPools(cfg)
	v.incomingAuth(cfg.IncomingAuth)
	v.authorization(&cfg.Authorization, names)
	v.rateLimits(&cfg.RateLimits)
	v.optimizer(&cfg.Optimizer)
	v.observability(cfg)
	v.modern(&cfg.Modern)
}

func (v *validator) fail(path, format string, args ...any) {
	for p := path; p != ""; p = parentPath(p) {
		if v.d.invalid[p] {
			return // already reported by the decoder
		}
	}
	v.d.errorf(v.line(path), path, format, args...)
}

// parentPath strips the last element of a field path: backends[1].url
// becomes backends[1], then backends, then "".
func parentPath(path string) string {
	if i := strings.LastIndexAny(path, ".["); i >= 0 {
		return path[:i]
	}
	return ""
}

// line is the line of path, or of its nearest ancestor present in the
// file when path itself is missing. A missing top-level key has no line.
func (v *validator) line(path string) int {
	for ; path != ""; path = parentPath(path) {
		if p, ok := v.d.pos[path]; ok {
			return p.line
		}
	}
	return 0
}

func (v *validator) got(path, s string) string { return v.d.display(path, s) }

func (v *validator) server(cfg *Config) {
	if msg := checkHostPort(cfg.Listen, false); msg != "" {
		v.fail("listen", "%s, such as 127.0.0.1:4483 (got %s)", msg, v.got("listen", cfg.Listen))
	}
	if !strings.HasPrefix(cfg.Path, "/") || strings.ContainsAny(cfg.Path, "?# \t\r\n") {
		v.fail("path", `must be a URL path starting with "/", such as /mcp (got %s)`, v.got("path", cfg.Path))
	}
	s := &cfg.Server
	atLeastOne(v, "server.maxBodyBytes", s.MaxBodyBytes)
	atLeastOne(v, "server.maxHeaderBytes", s.MaxHeaderBytes)
	atLeastOne(v, "server.maxMessageDepth", s.MaxMessageDepth)
	if s.ReadTimeout <= 0 || s.ReadTimeout.D() > MaxReadTimeout {
		p := "server.readTimeout"
		v.fail(p, "must be greater than 0 and at most %v (got %s)", MaxReadTimeout, v.got(p, s.ReadTimeout.String()))
	}
	if s.TLS != nil {
		v.tls(s.TLS)
	}
	atLeastOne(v, "server.maxBufferedResponseBytes", s.MaxBufferedResponseBytes)
	if s.SSEResponses != SSEAuto && s.SSEResponses != SSEAlways {
		v.fail("server.sseResponses", "must be one of auto, always (got %s)", v.got("server.sseResponses", s.SSEResponses))
	}
	if s.AdminListen != "" {
		if msg := checkHostPort(s.AdminListen, false); msg != "" {
			v.fail("server.adminListen", "%s, such as 127.0.0.1:4484 (got %s)", msg, v.got("server.adminListen", s.AdminListen))
		} else if s.AdminListen == cfg.Listen && !strings.HasSuffix(s.AdminListen, ":0") {
			v.fail("server.adminListen", "must differ from listen (both are %s)", v.got("server.adminListen", s.AdminListen))
		}
	}
	if s.Pprof && s.AdminListen == "" {
		v.fail("server.pprof", "requires server.adminListen: profiles are served only on the admin listener, never beside /mcp")
	}
	for i, o := range s.AllowedOrigins {
		p := fmt.Sprintf("server.allowedOrigins[%d]", i)
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
			v.fail(p, "must be an origin such as https://app.example.com: scheme://host[:port] with no path (got %s)", v.got(p, o))
		}
	}
	for i, h := range s.AllowedHosts {
		p := fmt.Sprintf("server.allowedHosts[%d]", i)
		if h == "" || strings.ContainsAny(h, "/@ \t\r\n") {
			v.fail(p, "must be a host name or host:port, such as vmcp.example.com (got %s)", v.got(p, h))
		}
	}
}

// tls checks that the listener's files exist and hold what they should,
// so that a bad file stops vmcp before it listens.
func (v *validator) tls(t *TLS) {
	const p = "server.tls"
	if t.CertFile == "" {
		v.fail(p+".certFile", "required: the PEM file of the server's certificate")
	}
	if t.KeyFile == "" {
		v.fail(p+".keyFile", "required: the PEM file of the certificate's private key")
	}
	if t.CertFile != "" && t.KeyFile != "" {
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			v.fail(p+".certFile", "with keyFile: %v", err)
		}
	}
	if t.ClientCAFile != "" {
		if _, err := certs.LoadPool(t.ClientCAFile); err != nil {
			v.fail(p+".clientCAFile", "%v", err)
		}
	}
}

// backends checks each backend and returns the set of configured names.
func (v *validator) backends(bs []Backend) map[string]bool {
	names := make(map[string]bool, len(bs))
	if len(bs) == 0 {
		v.fail("backends", "at least one backend is required")
		return names
	}
	firstLine := make(map[string]int, len(bs))
	for i := range bs {
		b := &bs[i]
		p := fmt.Sprintf("backends[%d]", i)
		switch {
		case b.Name == "":
			v.fail(p+".name", "required")
		case !backendNameRE.MatchString(b.Name):
			v.fail(p+".name", "must contain only a-z, 0-9, _ and - (got %s)", v.got(p+".name", b.Name))
		default:
			if line, dup := firstLine[b.Name]; dup {
				v.fail(p+".name", "duplicate backend name %s (first at line %d)", v.got(p+".name", b.Name), line)
			} else {
				firstLine[b.Name] = v.line(p + ".name")
			}
		}
		if b.Name != "" {
			names[b.Name] = true
		}
		v.backend(p, b)
	}
	return names
}

func (v *validator) backend(p string, b *Backend) {
	const transports = "streamable-http, sse, stdio"
	switch b.Transport {
	case TransportStreamableHTTP, TransportSSE:
		if b.URL == "" {
			v.fail(p+".url", "required for transport %s", b.Transport)
		} else if msg := checkURL(b.URL); msg != "" {
			v.fail(p+".url", "%s", msg)
		}
		if b.Command != nil {
			v.fail(p+".command", "only valid with transport stdio")
		}
		if b.Env != nil {
			v.fail(p+".env", "only valid with transport stdio")
		}
		if b.InheritEnv {
			v.fail(p+".inheritEnv", "only valid with transport stdio")
		}
		if b.Stdio != nil {
			v.fail(p+".stdio", "only valid with transport stdio")
		}
		v.backendTLS(p, b)
	case TransportStdio:
		if len(b.Command) == 0 {
			v.fail(p+".command", `required for transport stdio: the program and its arguments, such as [npx, "@playwright/mcp"]`)
		} else if b.Command[0] == "" {
			v.fail(p+".command[0]", "must name a program")
		}
		if b.URL != "" {
			v.fail(p+".url", "only valid with transports streamable-http and sse")
		}
		if b.Headers != nil {
			v.fail(p+".headers", "only valid with transports streamable-http and sse")
		}
		if v.set(p + ".maxConnections") {
			v.fail(p+".maxConnections", "only valid with transports streamable-http and sse")
		}
		if b.TLS != nil {
			v.fail(p+".tls", "only valid with transports streamable-http and sse")
		}
	case "":
		v.fail(p+".transport", "required: one of %s", transports)
	default:
		v.fail(p+".transport", "must be one of %s (got %s)", transports, v.got(p+".transport", b.Transport))
	}

	canonical := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(b.Headers)) {
		hp := keyPath(p+".headers", k)
		ck := textproto.CanonicalMIMEHeaderKey(k)
		switch {
		case !validHeaderName(k):
			v.fail(hp, "invalid HTTP header name")
		case slices.Contains(managedHeaders, ck):
			v.fail(hp, "set by vmcp itself; it cannot be configured")
		case canonical[ck] != "":
			v.fail(hp, "same header as %s (header names ignore case)", canonical[ck])
		}
		canonical[ck] = k
		// The value may be a secret: say what is wrong, never what it is.
		if strings.ContainsAny(b.Headers[k], "\r\n\x00") {
			v.fail(hp, "value must not contain line breaks or NUL")
		}
		if ck == "Idempotency-Key" || ck == "X-Idempotency-Key" {
			// net/http re-sends a POST carrying it after a connection
			// failure, even when the backend may have run the call.
			v.fail(hp, "not allowed: it would let a call be sent to the backend twice")
		}
	}
	// 0 means the default only when the key is left out.
	if v.set(p + ".maxConnections") {
		atLeastOne(v, p+".maxConnections", b.MaxConnections)
	}
	if v.set(p + ".maxResponseBytes") {
		atLeastOne(v, p+".maxResponseBytes", b.MaxResponseBytes)
	}
	for _, k := range slices.Sorted(maps.Keys(b.Env)) {
		ep := keyPath(p+".env", k)
		if k == "" || strings.ContainsAny(k, "=\x00") {
			v.fail(ep, "invalid environment variable name")
		}
		if strings.ContainsRune(b.Env[k], 0) {
			v.fail(ep, "value must not contain NUL")
		}
	}
	if b.Timeout <= 0 {
		v.fail(p+".timeout", "must be greater than 0")
	}
	if k := b.Keepalive; k != nil {
		if k.Interval <= 0 {
			v.fail(p+".keepalive.interval", "required, must be greater than 0")
		}
		atLeastOne(v, p+".keepalive.maxFailures", k.MaxFailures)
	}
	if st := b.Stdio; st != nil {
		if st.Warm > MaxWarm {
			v.fail(p+".stdio.warm", "must be at most %d", MaxWarm)
		}
		if st.IdleTimeout <= 0 {
			v.fail(p+".stdio.idleTimeout", "must be greater than 0")
		}
	}
	if br := b.Breaker; br != nil {
		atLeastOne(v, p+".breaker.failureThreshold", br.FailureThreshold)
		if br.Cooldown <= 0 {
			v.fail(p+".breaker.cooldown", "must be greater than 0")
		}
	}
	if o := b.OutgoingAuth; o != nil {
		v.outgoingAuth(p, b, o)
	}
	v.protocol(p, b)
}

// warmPools checks that the warm pools leave room under
// server.maxStdioProcesses for at least one process started on demand.
func (v *validator) warmPools(cfg *Config) {
	limit := cfg.Server.MaxStdioProcesses
	if limit == 0 {
		return
	}
	total := 0
	for i, b := range cfg.Backends {
		if b.Stdio == nil || b.Transport != TransportStdio || b.Stdio.Warm == 0 {
			continue
		}
		total += b.Stdio.Warm
		if total >= limit {
			p := fmt.Sprintf("backends[%d].stdio.warm", i)
			v.fail(p, "warm processes (%d in all so far) must stay below server.maxStdioProcesses (%d)", total, limit)
			return
		}
	}
}

func (v *validator) aggregation(a *Aggregation, names map[string]bool) {
	switch a.ConflictResolution {
	case StrategyPrefix, StrategyPriority, StrategyManual:
	default:
		p := "aggregation.conflictResolution"
		v.fail(p, "must be one of prefix, priority, manual (got %s)", v.got(p, a.ConflictResolution))
	}
	if !strings.Contains(a.PrefixFormat, "{backend}") {
		p := "aggregation.prefixFormat"
		v.fail(p, `must contain "{backend}" (got %s)`, v.got(p, a.PrefixFormat))
	}

	seen := map[string]string{}
	for i, name := range a.PriorityOrder {
		p := fmt.Sprintf("aggregation.priorityOrder[%d]", i)
		switch {
		case !names[name]:
			v.fail(p, "%s is not a configured backend", v.got(p, name))
		case seen[name] != "":
			v.fail(p, "%s is already listed at %s", v.got(p, name), seen[name])
		default:
			seen[name] = p
		}
	}

	ruleFor := map[string]string{}
	for i := range a.Tools {
		r := &a.Tools[i]
		p := fmt.Sprintf("aggregation.tools[%d]", i)
		switch {
		case r.Backend == "":
			v.fail(p+".backend", "required")
		case !names[r.Backend]:
			v.fail(p+".backend", "%s is not a configured backend", v.got(p+".backend", r.Backend))
		case ruleFor[r.Backend] != "":
			prev := ruleFor[r.Backend]
			v.fail(p+".backend", "backend %s already has a rule at %s (line %d); merge them",
				v.got(p+".backend", r.Backend), prev, v.line(prev))
		default:
			ruleFor[r.Backend] = p
		}
		v.toolRule(p, r)
	}
}

func (v *validator) toolRule(p string, r *ToolRule) {
	inFilter := make(map[string]bool, len(r.Filter))
	for j, tool := range r.Filter {
		fp := fmt.Sprintf("%s.filter[%d]", p, j)
		switch {
		case tool == "":
			v.fail(fp, "must name a tool")
		case inFilter[tool]:
			v.fail(fp, "tool %s is listed twice", v.got(fp, tool))
		}
		inFilter[tool] = true
	}
	renamed := map[string]string{}
	for _, tool := range slices.Sorted(maps.Keys(r.Overrides)) {
		o := r.Overrides[tool]
		op := keyPath(p+".overrides", tool)
		switch {
		case tool == "":
			v.fail(op, "tool name must not be empty")
		case len(r.Filter) > 0 && !inFilter[tool]:
			v.fail(op, "tool %q is not in filter, so it is never exposed", tool)
		case o.Name == "" && o.Description == "":
			v.fail(op, "must set name or description")
		}
		if o.Name == "" {
			continue
		}
		if !toolNameRE.MatchString(o.Name) {
			v.fail(op+".name", "must be 1 to 128 characters of A-Z, a-z, 0-9, _, -, . and / (got %s)", v.got(op+".name", o.Name))
		} else if prev := renamed[o.Name]; prev != "" {
			v.fail(op+".name", "%s is also the new name of tool %q", v.got(op+".name", o.Name), prev)
		}
		renamed[o.Name] = tool
	}
}

func (v *validator) session(s *Session) {
	atLeastOne(v, "session.maxSessions", s.MaxSessions)
	if s.MaxSessionsPerIdentity < 0 {
		v.fail("session.maxSessionsPerIdentity", "must be 0 (no limit) or more")
	}
	atLeastOne(v, "session.backendInitConcurrency", s.BackendInitConcurrency)
	atLeastOne(v, "session.maxConcurrentCalls", s.MaxConcurrentCalls)
	if s.BackendInitTimeout <= 0 {
		v.fail("session.backendInitTimeout", "must be greater than 0")
	}
}

func (v *validator) store(s *Store) {
	switch s.Type {
	case StoreMemory:
	case StoreRedis:
		p := "store.redis.address"
		if s.Redis.Address == "" {
			v.fail(p, "required when store.type is redis")
		} else if msg := checkHostPort(s.Redis.Address, true); msg != "" {
			v.fail(p, "%s, such as 127.0.0.1:6379 (got %s)", msg, v.got(p, s.Redis.Address))
		}
		if pe := s.Redis.PasswordEnv; pe != "" && !envNameRE.MatchString(pe) {
			p := "store.redis.passwordEnv"
			v.fail(p, "must be the name of an environment variable, such as REDIS_PASSWORD (got %s)", v.got(p, pe))
		}
	default:
		v.fail("store.type", "must be one of memory, redis (got %s)", v.got("store.type", s.Type))
	}
}

// set reports whether path was given in the file (not null).
func (v *validator) set(path string) bool {
	_, ok := v.d.pos[path]
	return ok
}

// backendTLS checks a backend's tls block: an https URL, certFile and
// keyFile together, and files that load.
func (v *validator) backendTLS(p string, b *Backend) {
	t := b.TLS
	if t == nil {
		return
	}
	p += ".tls"
	if u, err := url.Parse(b.URL); err == nil && u.Scheme != "https" {
		v.fail(p, "only valid with an https url")
		return
	}
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		v.fail(p+".keyFile", "required with certFile")
		return
	case t.KeyFile != "" && t.CertFile == "":
		v.fail(p+".certFile", "required with keyFile")
		return
	case t.CAFile == "" && t.CertFile == "":
		v.fail(p, "must set caFile, or certFile and keyFile")
		return
	}
	if t.CAFile != "" {
		if _, err := loadCertPool(t.CAFile); err != nil {
			v.fail(p+".caFile", "%v", err)
		}
	}
	if t.CertFile != "" {
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			v.fail(p+".certFile", "cannot load the certificate and key: %v", err)
		}
	}
}

func atLeastOne[T int | int64](v *validator, path string, n T) {
	if n < 1 {
		v.fail(path, "must be at least 1")
	}
}

// checkHostPort returns what is wrong with a host:port address, or "".
// A listen address may leave the host empty (all interfaces) and use port 0
// (any free port); a dial address may not.
func checkHostPort(s string, dial bool) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "must be host:port"
	}
	if dial && host == "" {
		return "must name a host"
	}
	lowest := uint64(0)
	if dial {
		lowest = 1
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n < lowest {
		return fmt.Sprintf("port must be a number from %d to 65535", lowest)
	}
	return ""
}

// checkURL returns what is wrong with a backend URL, or "". It never
// quotes the URL, which may carry credentials.
func checkURL(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "":
		return "must be an absolute http or https URL, such as http://127.0.0.1:8081/mcp"
	case u.Scheme != "http" && u.Scheme != "https":
		return "scheme must be http or https"
	}
	return ""
}

func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// completePriorityOrder makes PriorityOrder name every backend under the
// priority strategy: those listed first, then the rest in config order.
func completePriorityOrder(cfg *Config) {
	a := &cfg.Aggregation
	if a.ConflictResolution != StrategyPriority {
		return
	}
	for _, b := range cfg.Backends {
		if !slices.Contains(a.PriorityOrder, b.Name) {
			a.PriorityOrder = append(a.PriorityOrder, b.Name)
		}
	}
}
