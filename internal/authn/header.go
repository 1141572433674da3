package authn

import (
	"errors"
	"net/http"
	"strings"
)

// Limits on presented credentials. A JWT with many claims runs to a few
// KiB; nothing legitimate comes near these.
const (
	maxTokenBytes  = 16 << 10
	maxAPIKeyBytes = 1 << 10
)

var (
	// errNoCredentials: the request carries no credential at all.
	errNoCredentials = errors.New("no credentials")
	// errMalformed: a credential header is present but unusable.
	errMalformed = errors.New("malformed credentials")
)

// bearerToken returns the token of the request's one Authorization header,
// which must use the Bearer scheme (RFC 6750 §2.1, scheme matched without
// regard to case). It returns errNoCredentials when there is no
// Authorization header and errMalformed for anything else that is not
// exactly one well-formed Bearer credential.
func bearerToken(h http.Header) (string, error) {
	vals := h.Values("Authorization")
	switch len(vals) {
	case 0:
		return "", errNoCredentials
	case 1:
	default:
		return "", errMalformed
	}
	scheme, tok, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", errMalformed
	}
	tok = strings.TrimLeft(tok, " ")
	if !isToken68(tok, maxTokenBytes) {
		return "", errMalformed
	}
	return tok, nil
}

// apiKey returns the request's API key: from X-API-Key, or else from a
// Bearer Authorization header. A request that carries both, or either
// more than once, is malformed: vmcp does not guess which one was meant.
func apiKey(h http.Header) (string, error) {
	keys := h.Values("X-Api-Key")
	if len(keys) == 0 {
		return bearerToken(h)
	}
	if len(keys) > 1 || len(h.Values("Authorization")) > 0 {
		return "", errMalformed
	}
	k := keys[0]
	if k == "" || len(k) > maxAPIKeyBytes {
		return "", errMalformed
	}
	for i := 0; i < len(k); i++ {
		if k[i] <= ' ' || k[i] >= 0x7f { // visible ASCII only
			return "", errMalformed
		}
	}
	return k, nil
}

// isToken68 reports whether s is an RFC 7235 token68 of at most max bytes:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isToken68(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~+/", c) >= 0) {
			break
		}
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// looksLikeJWT reports whether tok has the shape of a compact JWS: three
// dot-separated parts, the first a JSON object. Anything else is an opaque
// token, for introspection.
func looksLikeJWT(tok string) bool {
	return strings.Count(tok, ".") == 2 && strings.HasPrefix(tok, "eyJ")
}
