package gateway

import (
	"net/url"
	"strings"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/redact"
)

// secretValues lists every configured value that may be a secret, for
// the redactor that scrubs backend text before vmcp logs or returns it:
// backend header values, stdio env values, credentials in backend URLs
// (the password, and query parameters named like one) and
// the Redis password, and the OAuth client secrets of outgoingAuth and
// incomingAuth (introspection). A setting that brings a new secret (a client secret,
// a token read from the environment) adds it here.
func secretValues(cfg *config.Config, getenv func(string) string) []string {
	var out []string
	for _, b := range cfg.Backends {
		for _, v := range b.Headers {
			out = append(out, v)
		}
		for _, v := range b.Env {
			out = append(out, v)
		}
		if u, err := url.Parse(b.URL); err == nil && b.URL != "" {
			if pw, ok := u.User.Password(); ok {
				out = append(out, pw)
			}
			for k, vs := range u.Query() {
				if credentialName(k) {
					out = append(out, vs...)
				}
			}
		}
		if o := b.OutgoingAuth; o != nil && o.ClientSecretEnv != "" {
			out = append(out, getenv(o.ClientSecretEnv))
		}
	}
	if name := cfg.Store.Redis.PasswordEnv; name != "" {
		out = append(out, getenv(name))
	}
	if a := cfg.IncomingAuth; a != nil && a.ClientSecretEnv != "" {
		out = append(out, getenv(a.ClientSecretEnv))
	}
	return out
}

// credentialName reports whether a URL query parameter's name says it
// carries a credential (api_key, token, sig, …); other values, such as a
// version, would only garble the log if hidden.
func credentialName(k string) bool {
	k = strings.ToLower(k)
	for _, w := range []string{"key", "token", "secret", "pass", "auth", "sig", "cred"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// newRedactor is the redactor of a gateway for cfg.
func newRedactor(cfg *config.Config, getenv func(string) string) *redact.Redactor {
	return redact.New(secretValues(cfg, getenv)...)
}
