package config

import (
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Incoming authentication types (incomingAuth.type).
const (
	AuthOIDC      = "oidc"
	AuthAPIKey    = "apiKey"
	AuthAnonymous = "anonymous"
)

// IncomingAuth says how vmcp establishes who is calling. A nil
// *IncomingAuth (no incomingAuth in the file) runs anonymous on a loopback
// listener only; the gateway refuses any other listener.
type IncomingAuth struct {
	Type string `yaml:"type"` // one of the Auth constants
	// Resource is vmcp's own resource identifier (RFC 8707), usually its
	// public MCP URL. A JWT's aud must contain it. Required for oidc; with
	// apiKey it only enables the Protected Resource Metadata.
	Resource string `yaml:"resource"`
	// Issuer is the authorization server (oidc): its discovery document
	// names the JWKS. https, or http on a loopback host.
	Issuer string `yaml:"issuer"`
	// Algorithms are the JWS algorithms accepted (oidc); default RS256 and
	// ES256. Never none, never HMAC.
	Algorithms []string `yaml:"algorithms"`
	// ClockSkew is the leeway for exp and nbf (oidc); default 30s, at most
	// 5m.
	ClockSkew Duration `yaml:"clockSkew"`
	// RequiredScopes must all be granted (oidc); a token lacking one gets
	// 403 insufficient_scope.
	RequiredScopes []string `yaml:"requiredScopes"`
	// ScopesSupported are published in the Protected Resource Metadata;
	// default RequiredScopes.
	ScopesSupported []string `yaml:"scopesSupported"`
	// IntrospectionURL, if set, checks opaque (non-JWT) access tokens by
	// RFC 7662 introspection, authenticating with ClientID and the secret
	// in the environment variable ClientSecretEnv.
	IntrospectionURL string `yaml:"introspectionURL"`
	ClientID         string `yaml:"clientID"`
	ClientSecretEnv  string `yaml:"clientSecretEnv"`
	// CacheSize bounds the verified tokens kept (until their exp, keyed by
	// a hash); default 10000.
	CacheSize int `yaml:"cacheSize"`
	// APIKeys are the accepted keys (apiKey), stored as SHA-256 hashes.
	APIKeys []APIKey `yaml:"apiKeys"`
}

// APIKey is one accepted API key: the hex SHA-256 of the key (as printed by
// vmcp hash-key) and the subject it authenticates.
type APIKey struct {
	Subject string `yaml:"subject"`
	SHA256  string `yaml:"sha256"`
}

func (a *IncomingAuth) setDefaults() {
	a.ClockSkew = Duration(DefaultClockSkew)
	a.CacheSize = DefaultTokenCacheSize
}

// Defaults and bounds of incomingAuth.
const (
	DefaultClockSkew      = 30 * time.Second
	MaxClockSkew          = 5 * time.Minute
	DefaultTokenCacheSize = 10000
)

// DefaultAlgorithms are accepted when incomingAuth.algorithms is not set.
var DefaultAlgorithms = []string{"RS256", "ES256"}

// asymmetricAlgorithms are the JWS algorithms incomingAuth may list.
var asymmetricAlgorithms = []string{
	"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512", "EdDSA",
}

func (v *validator) incomingAuth(a *IncomingAuth) {
	const p = "incomingAuth"
	if a == nil {
		return
	}
	switch a.Type {
	case AuthOIDC:
		v.oidcAuth(a)
	case AuthAPIKey:
		v.apiKeyAuth(a)
		if a.Resource != "" {
			v.resource(a.Resource)
		}
	case AuthAnonymous:
	case "":
		v.fail(p+".type", "required: one of oidc, apiKey, anonymous")
		return
	default:
		v.fail(p+".type", "must be one of oidc, apiKey, anonymous (got %s)", v.got(p+".type", a.Type))
		return
	}
	// Say so when a setting of another type is given: it would do nothing.
	oidcOnly := map[string]bool{
		"issuer": a.Issuer != "", "algorithms": a.Algorithms != nil, "requiredScopes": a.RequiredScopes != nil,
		"introspectionURL": a.IntrospectionURL != "", "clientID": a.ClientID != "", "clientSecretEnv": a.ClientSecretEnv != "",
	}
	for _, k := range []string{"issuer", "algorithms", "requiredScopes", "introspectionURL", "clientID", "clientSecretEnv"} {
		if oidcOnly[k] && a.Type != AuthOIDC {
			v.fail(p+"."+k, "only valid with type oidc")
		}
	}
	if a.APIKeys != nil && a.Type != AuthAPIKey {
		v.fail(p+".apiKeys", "only valid with type apiKey")
	}
	if a.Type == AuthAnonymous && a.Resource != "" {
		v.fail(p+".resource", "not valid with type anonymous")
	}
}

func (v *validator) oidcAuth(a *IncomingAuth) {
	const p = "incomingAuth"
	if a.Resource == "" {
		v.fail(p+".resource", "required for type oidc: vmcp's resource URL, which tokens must name in aud, such as https://vmcp.example.com/mcp")
	} else {
		v.resource(a.Resource)
	}
	if a.Issuer == "" {
		v.fail(p+".issuer", "required for type oidc: the authorization server's issuer URL, such as https://idp.example.com")
	} else if msg := checkSecureURL(a.Issuer); msg != "" {
		v.fail(p+".issuer", "%s", msg)
	}
	if a.Algorithms == nil {
		a.Algorithms = slices.Clone(DefaultAlgorithms)
	} else if len(a.Algorithms) == 0 {
		v.fail(p+".algorithms", "must list at least one algorithm, such as RS256")
	}
	for i, alg := range a.Algorithms {
		if !slices.Contains(asymmetricAlgorithms, alg) {
			ap := fmt.Sprintf("%s.algorithms[%d]", p, i)
			v.fail(ap, "must be one of %s (got %s); none and HMAC algorithms are never accepted", strings.Join(asymmetricAlgorithms, ", "), v.got(ap, alg))
		}
	}
	if a.ClockSkew < 0 || a.ClockSkew.D() > MaxClockSkew {
		v.fail(p+".clockSkew", "must be from 0s to %v", MaxClockSkew)
	}
	for i, s := range a.RequiredScopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			v.fail(fmt.Sprintf("%s.requiredScopes[%d]", p, i), "must be a scope name without spaces or quotes")
		}
	}
	if a.ScopesSupported == nil {
		a.ScopesSupported = slices.Clone(a.RequiredScopes)
	}
	if a.IntrospectionURL != "" {
		if msg := checkSecureURL(a.IntrospectionURL); msg != "" {
			v.fail(p+".introspectionURL", "%s", msg)
		}
		if a.ClientID == "" {
			v.fail(p+".clientID", "required with introspectionURL: vmcp's own client ID at the authorization server")
		}
		if a.ClientSecretEnv == "" {
			v.fail(p+".clientSecretEnv", "required with introspectionURL: the name of the environment variable holding vmcp's client secret")
		}
	}
	if e := a.ClientSecretEnv; e != "" && !envNameRE.MatchString(e) {
		v.fail(p+".clientSecretEnv", "must be the name of an environment variable, such as VMCP_CLIENT_SECRET")
	}
	if a.CacheSize < 1 {
		v.fail(p+".cacheSize", "must be at least 1")
	}
}

func (v *validator) apiKeyAuth(a *IncomingAuth) {
	const p = "incomingAuth.apiKeys"
	if len(a.APIKeys) == 0 {
		v.fail(p, "required for type apiKey: a list of {subject, sha256}; vmcp hash-key prints the sha256 of a key")
	}
	seen := map[string]string{}
	for i, k := range a.APIKeys {
		kp := fmt.Sprintf("%s[%d]", p, i)
		if k.Subject == "" || strings.ContainsAny(k.Subject, "\x00\r\n") {
			v.fail(kp+".subject", "required: the name this key authenticates, such as ci-bot")
		}
		// Never quote the hash: it identifies a secret.
		if b, err := hex.DecodeString(k.SHA256); err != nil || len(b) != 32 {
			v.fail(kp+".sha256", "must be 64 hex digits, the SHA-256 of the key as printed by vmcp hash-key")
		} else if other, dup := seen[strings.ToLower(k.SHA256)]; dup {
			v.fail(kp+".sha256", "same key as %s", other)
		} else {
			seen[strings.ToLower(k.SHA256)] = kp
		}
	}
}

func (v *validator) resource(r string) {
	const p = "incomingAuth.resource"
	u, err := url.Parse(r)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		v.fail(p, "must be an absolute http or https URL, such as https://vmcp.example.com/mcp (got %s)", v.got(p, r))
	case u.Fragment != "" || u.RawQuery != "" || u.User != nil:
		v.fail(p, "must have no query, fragment or user info (RFC 8707) (got %s)", v.got(p, r))
	}
}

// checkSecureURL returns what is wrong with an authorization server URL,
// or "": https, or http only on a loopback host.
func checkSecureURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return "must be an absolute https URL, such as https://idp.example.com"
	}
	if u.User != nil {
		return "must not carry user info"
	}
	switch u.Scheme {
	case "https":
		return ""
	case "http":
		h := u.Hostname()
		if ip := net.ParseIP(h); h == "localhost" || (ip != nil && ip.IsLoopback()) {
			return ""
		}
		return "must use https (http only on a loopback host)"
	}
	return "scheme must be https"
}
