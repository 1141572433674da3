package config

import (
	"strings"
	"testing"
	"time"
)

func TestIncomingAuthParse(t *testing.T) {
	t.Parallel()
	cfg, err := Parse([]byte(minimal + `incomingAuth:
  type: oidc
  issuer: https://idp.example.com
  resource: https://vmcp.example.com/mcp
  requiredScopes: [mcp.tools]
  introspectionURL: https://idp.example.com/oauth/introspect
  clientID: vmcp
  clientSecretEnv: VMCP_CLIENT_SECRET
`))
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.IncomingAuth
	if a.Type != AuthOIDC || a.ClockSkew.D() != 30*time.Second || a.CacheSize != DefaultTokenCacheSize ||
		strings.Join(a.Algorithms, ",") != "RS256,ES256" || strings.Join(a.ScopesSupported, ",") != "mcp.tools" {
		t.Fatalf("incomingAuth = %+v", a)
	}
	if cfg.Session.MaxSessionsPerIdentity != 20 {
		t.Fatalf("maxSessionsPerIdentity default = %d, want 20", cfg.Session.MaxSessionsPerIdentity)
	}

	cfg, err = Parse([]byte(minimal + `incomingAuth:
  type: apiKey
  apiKeys:
    - {subject: ci-bot, sha256: "` + strings.Repeat("ab", 32) + `"}
`))
	if err != nil {
		t.Fatal(err)
	}
	if k := cfg.IncomingAuth.APIKeys; len(k) != 1 || k[0].Subject != "ci-bot" {
		t.Fatalf("apiKeys = %+v", k)
	}
	if cfg, err := Parse([]byte(minimal + "incomingAuth: {type: anonymous}\n")); err != nil || cfg.IncomingAuth.Type != AuthAnonymous {
		t.Fatalf("anonymous: %v %+v", err, cfg)
	}
}

func TestIncomingAuthErrors(t *testing.T) {
	t.Parallel()
	hash := strings.Repeat("0f", 32)
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"no type", "incomingAuth: {resource: https://v/mcp}\n",
			[]string{"line 5: incomingAuth.type: required: one of oidc, apiKey, anonymous"}},
		{"bad type", "incomingAuth: {type: jwt}\n",
			[]string{`line 5: incomingAuth.type: must be one of oidc, apiKey, anonymous (got "jwt")`}},
		{"oidc missing", "incomingAuth:\n  type: oidc\n",
			[]string{
				"line 6: incomingAuth.resource: required for type oidc: vmcp's resource URL, which tokens must name in aud, such as https://vmcp.example.com/mcp",
				"line 6: incomingAuth.issuer: required for type oidc: the authorization server's issuer URL, such as https://idp.example.com",
			}},
		{"hmac and none", "incomingAuth:\n  type: oidc\n  issuer: https://idp\n  resource: https://v/mcp\n  algorithms: [RS256, HS256, none]\n",
			[]string{
				`line 9: incomingAuth.algorithms[1]: must be one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA (got "HS256"); none and HMAC algorithms are never accepted`,
				`line 9: incomingAuth.algorithms[2]: must be one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA (got "none"); none and HMAC algorithms are never accepted`,
			}},
		{"plain http issuer", "incomingAuth:\n  type: oidc\n  issuer: http://idp.example.com\n  resource: https://v/mcp\n",
			[]string{"line 7: incomingAuth.issuer: must use https (http only on a loopback host)"}},
		{"introspection without client", "incomingAuth:\n  type: oidc\n  issuer: https://idp\n  resource: https://v/mcp\n  introspectionURL: https://idp/introspect\n",
			[]string{
				"line 6: incomingAuth.clientID: required with introspectionURL: vmcp's own client ID at the authorization server",
				"line 6: incomingAuth.clientSecretEnv: required with introspectionURL: the name of the environment variable holding vmcp's client secret",
			}},
		{"resource with fragment", "incomingAuth:\n  type: oidc\n  issuer: https://idp\n  resource: https://v/mcp#x\n",
			[]string{`line 8: incomingAuth.resource: must have no query, fragment or user info (RFC 8707) (got "https://v/mcp#x")`}},
		{"no keys", "incomingAuth: {type: apiKey}\n",
			[]string{"line 5: incomingAuth.apiKeys: required for type apiKey: a list of {subject, sha256}; vmcp hash-key prints the sha256 of a key"}},
		{"bad keys", "incomingAuth:\n  type: apiKey\n  apiKeys:\n    - {subject: a, sha256: \"xyz\"}\n    - {sha256: \"" + hash + "\"}\n    - {subject: c, sha256: \"" + hash + "\"}\n",
			[]string{
				"line 8: incomingAuth.apiKeys[0].sha256: must be 64 hex digits, the SHA-256 of the key as printed by vmcp hash-key",
				"line 9: incomingAuth.apiKeys[1].subject: required: the name this key authenticates, such as ci-bot",
				"line 10: incomingAuth.apiKeys[2].sha256: same key as incomingAuth.apiKeys[1]",
			}},
		{"option of another type", "incomingAuth:\n  type: apiKey\n  issuer: https://idp\n  apiKeys: [{subject: a, sha256: \"" + hash + "\"}]\n",
			[]string{"line 7: incomingAuth.issuer: only valid with type oidc"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(minimal + tt.yaml))
			assertErrors(t, err, tt.want)
		})
	}
}
