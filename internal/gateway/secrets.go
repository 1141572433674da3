package gateway

import (
	"net/url"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/redact"
)

// secretValues lists every configured value that may be a secret, for
// the redactor that scrubs backend text before vmcp logs or returns it:
// backend header values, stdio env values, credentials in backend URLs and
// the Redis password. A setting that brings a new secret (a client secret,
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
			for _, vs := range u.Query() {
				out = append(out, vs...)
			}
		}
	}
	if name := cfg.Store.Redis.PasswordEnv; name != "" {
		out = append(out, getenv(name))
	}
	return out
}

// newRedactor is the redactor of a gateway for cfg.
func newRedactor(cfg *config.Config, getenv func(string) string) *redact.Redactor {
	return redact.New(secretValues(cfg, getenv)...)
}
