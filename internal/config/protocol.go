package config

// Protocol eras vmcp may speak to a backend (backends[].protocol).
//
// "legacy" is the initialize handshake and its backend session
// (2025-11-25 and earlier); "modern" is 2026-07-28, stateless, with _meta
// on every request; "auto", the default, asks the backend with
// server/discover once and falls back to initialize if it is not modern.
// Only streamable-http backends can be modern: auto on sse and stdio is
// legacy.
const (
	ProtocolAuto   = "auto"
	ProtocolLegacy = "legacy"
	ProtocolModern = "modern"
)

// protocol checks backends[].protocol. Left out (""), it means auto.
func (v *validator) protocol(p string, b *Backend) {
	switch b.Protocol {
	case "", ProtocolAuto, ProtocolLegacy:
	case ProtocolModern:
		if b.Transport != TransportStreamableHTTP && b.Transport != "" {
			v.fail(p+".protocol", "modern (2026-07-28) is only valid with transport streamable-http")
		}
	default:
		v.fail(p+".protocol", "must be one of auto, legacy, modern (got %s)", v.got(p+".protocol", b.Protocol))
	}
}
