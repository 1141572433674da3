package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"

	"github.com/vmcp/vmcp/internal/jsonrpc"
)

// Protocol eras a Streamable HTTP backend may be configured for
// (HTTPOptions.Protocol).
const (
	// ProtocolAuto asks the backend with server/discover and falls back to
	// initialize if it is not a 2026-07-28 server. It is the default.
	ProtocolAuto = "auto"
	// ProtocolLegacy always runs the initialize handshake.
	ProtocolLegacy = "legacy"
	// ProtocolModern always speaks 2026-07-28; a backend that is not
	// modern fails to connect.
	ProtocolModern = "modern"
)

// ModernProtocolVersion is the 2026-07-28 revision: stateless, no
// initialize, _meta on every request.
const ModernProtocolVersion = "2026-07-28"

// IsModern reports whether a protocol version is of the modern era.
// Versions are dates, so they compare as strings.
func IsModern(protocolVersion string) bool { return protocolVersion >= ModernProtocolVersion }

// JSON-RPC error codes of the modern era.
const (
	codeHeaderMismatch     = -32020
	codeMissingCapability  = -32021
	codeUnsupportedVersion = -32022
)

// era values cached by eraCache.
const (
	eraUnknown int32 = iota
	eraLegacy
	eraModern
)

// eraCache remembers what the auto probe found for one backend, so that
// only the first session (and the first after a doubt) sends
// server/discover to a legacy backend; a modern one gets it from each
// session anyway, in place of initialize. The spec asks clients to cache
// the era per origin and re-probe when the cached assumption fails: a
// legacy connect that fails, or a modern call answered "unsupported
// protocol version", forgets it. Safe for concurrent use.
type eraCache struct{ v atomic.Int32 }

func (e *eraCache) get() int32    { return e.v.Load() }
func (e *eraCache) set(era int32) { e.v.Store(era) }
func (e *eraCache) forget()       { e.v.Store(eraUnknown) }

// Era reports the era vmcp speaks to x's backend: ProtocolModern,
// ProtocolLegacy, or "" while auto has not yet decided. Connectors other
// than Streamable HTTP speak legacy.
func Era(x Connector) string {
	sx, ok := x.(*streamableConnector)
	switch {
	case !ok, sx.protocol == ProtocolLegacy:
		return ProtocolLegacy
	case sx.protocol == ProtocolModern:
		return ProtocolModern
	}
	switch sx.era.get() {
	case eraLegacy:
		return ProtocolLegacy
	case eraModern:
		return ProtocolModern
	}
	return ""
}

// Connect starts a client for a new vmcp session, in the era the backend
// is configured for or, with auto, the one it was found to speak. A stored
// backend session to resume is legacy by definition: modern backends have
// none.
func (x *streamableConnector) Connect(ctx context.Context, opts ConnectOptions) (Client, *InitializeResult, error) {
	switch {
	case x.protocol == ProtocolLegacy:
		return x.connectLegacy(ctx, opts)
	case x.protocol == ProtocolModern:
		c, res, legacy, err := x.connectModern(ctx, opts)
		if legacy {
			return nil, nil, opError(x.s.name, "server/discover",
				fmt.Errorf("the backend does not speak %s (protocol: modern): %w", ModernProtocolVersion, err))
		}
		return c, res, err
	case opts.ResumeSessionID != "":
		return x.connectLegacy(ctx, opts)
	}
	if x.era.get() == eraLegacy {
		c, res, err := x.connectLegacy(ctx, opts)
		if err != nil {
			x.era.forget()
		}
		return c, res, err
	}
	// Unknown or modern: a modern connect is a server/discover anyway, so
	// it is the probe too, and a backend replaced by a legacy one is
	// noticed at once.
	c, res, legacy, err := x.connectModern(ctx, opts)
	switch {
	case legacy:
		x.s.log.DebugContext(ctx, "backend is not a 2026-07-28 server; using initialize", "backend", x.s.name, "probe", Category(err))
		x.era.set(eraLegacy)
		if c, res, err = x.connectLegacy(ctx, opts); err != nil {
			x.era.forget()
		}
	case err == nil:
		x.era.set(eraModern)
	}
	return c, res, err
}

// connectModern makes a modern client and asks the backend
// server/discover. legacy reports that the answer says the backend is not
// a 2026-07-28 server (err then says why); any other error is a failure
// to connect that says nothing about the era.
func (x *streamableConnector) connectModern(ctx context.Context, opts ConnectOptions) (c Client, res *InitializeResult, legacy bool, err error) {
	mc := newModernClient(x, opts)
	res, err = x.discovered.get(ctx, opts.Token, mc.discover)
	if err != nil {
		_ = mc.Close()
		return nil, nil, notModern(err), err
	}
	if opts.Handler != nil && x.streams != nil {
		// Someone to tell: follow the lists, and later the resources the
		// client subscribes to, on a subscriptions/listen stream.
		mc.h.q = x.streams
		mc.h.sub = newSubscriptions(mc, res.Capabilities)
		mc.h.sub.start()
	}
	return mc, res, false, nil
}

// errNotModern is the probe's verdict on a backend that answered
// server/discover without offering 2026-07-28.
var errNotModern = errors.New("server/discover does not offer " + ModernProtocolVersion)

// notModern reports whether a failed server/discover identifies a legacy
// backend, by the spec's rule: a recognised modern JSON-RPC error means a
// modern server (the request must be corrected, not downgraded), except
// an unsupported-version error that offers no modern version; anything
// else the backend answers means legacy: another JSON-RPC error (-32601
// with 404, -32600), a 4xx without a modern error body (what legacy
// servers send a request without a session), or an answer that is not
// JSON-RPC at all. No answer is no verdict: the backend unreachable, a
// 5xx, a refused credential, a timeout, 408 or 429.
func notModern(err error) bool {
	if errors.Is(err, errNotModern) {
		return true
	}
	if e := jsonrpc.AsError(err); e != nil {
		switch e.Code {
		case codeHeaderMismatch, codeMissingCapability:
			return false
		case codeUnsupportedVersion:
			return !slices.Contains(supportedVersions(e.Data), ModernProtocolVersion)
		}
		return true
	}
	var st *statusCodeError
	if errors.As(err, &st) {
		return st.status != http.StatusRequestTimeout && st.status != http.StatusTooManyRequests
	}
	var ce *credentialError
	switch {
	case errors.Is(err, ErrUnavailable), errors.Is(err, ErrUnauthorized), errors.As(err, &ce),
		errors.Is(err, ErrClosed), errors.Is(err, ErrTooLarge), errors.Is(err, ErrOverBudget),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	}
	return true
}

// supportedVersions reads data.supported of an unsupported-version error.
func supportedVersions(data json.RawMessage) []string {
	var d struct {
		Supported []string `json:"supported"`
	}
	_ = json.Unmarshal(data, &d)
	return d.Supported
}
