package backend

import (
	"context"
	"net/http"
)

type headersKey struct{}

// WithHeaders returns a context whose Streamable HTTP POSTs also carry h:
// the Mcp-Param-* headers a modern (2026-07-28) client mirrored from a
// tool's arguments, which the backend may route or check on. Other
// transports ignore them. h must not be modified afterwards.
func WithHeaders(ctx context.Context, h http.Header) context.Context {
	if len(h) == 0 {
		return ctx
	}
	return context.WithValue(ctx, headersKey{}, h)
}

// withExtraHeaders returns hdr with the call's extra headers added, as a
// copy when there are any.
func withExtraHeaders(ctx context.Context, hdr http.Header) http.Header {
	x, _ := ctx.Value(headersKey{}).(http.Header)
	if len(x) == 0 {
		return hdr
	}
	out := make(http.Header, len(hdr)+len(x))
	for k, v := range hdr {
		out[k] = v
	}
	for k, v := range x {
		if _, set := out[k]; !set {
			out[k] = v
		}
	}
	return out
}

type modernCallerKey struct{}

// WithModernCaller marks ctx as a request from a 2026-07-28 client, which
// speaks for itself: a modern backend gets that client's own capabilities
// and info (from the request's _meta) rather than the session's, so it
// asks only for what the client can give, and its InputRequiredResult
// goes back to the caller as it is, for the caller to answer on its retry.
// Legacy backends ignore the mark.
func WithModernCaller(ctx context.Context) context.Context {
	return context.WithValue(ctx, modernCallerKey{}, true)
}

func modernCaller(ctx context.Context) bool {
	v, _ := ctx.Value(modernCallerKey{}).(bool)
	return v
}
