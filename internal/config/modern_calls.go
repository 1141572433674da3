package config

import (
	"net/url"
	"os"

	"github.com/vmcp/vmcp/internal/mrtr"
)

// ModernCalls configures the calls of modern (2026-07-28) clients: the
// sealed requestState of multi round-trip requests, and the caching hints
// of list results. It is inlined in Modern:
//
//	modern:
//	  stateKey: ${VMCP_STATE_KEY}   # or stateKeyFile: /run/secrets/vmcp-state-key
//	  inputTimeout: 5m
//	  maxWaitingCalls: 1024
//	  cacheTTL: 0s
//	  cacheScope: private
//	  advertiseURL: http://10.0.0.5:8080/mcp   # this replica, for the others
type ModernCalls struct {
	// StateKey (or StateKeyFile, holding it) is the AES-256 key that seals
	// requestState: 32 bytes in base64 or hex. Replicas behind one load
	// balancer need the same one; unset, each process draws a random key.
	StateKey     string `yaml:"stateKey"`
	StateKeyFile string `yaml:"stateKeyFile"`
	// InputTimeout is how long a call waits for the client's retry with
	// the input a backend asked for (0: 5m).
	InputTimeout Duration `yaml:"inputTimeout"`
	// MaxWaitingCalls bounds the calls waiting for input (0: 1024).
	MaxWaitingCalls int `yaml:"maxWaitingCalls"`
	// CacheTTL and CacheScope ("public" or "private", default private)
	// are the caching hints of list results and of reads whose backend
	// gave none.
	CacheTTL   Duration `yaml:"cacheTTL"`
	CacheScope string   `yaml:"cacheScope"`
	// AdvertiseURL is this replica's MCP endpoint as the other replicas
	// reach it (http://10.0.0.5:8080/mcp). With it, a client's retry that
	// lands on another replica is forwarded here, to the call that waits
	// for it; without it the client must come back to this replica.
	AdvertiseURL string `yaml:"advertiseURL"`
}

// Key returns the configured state key, nil when none is.
func (m *ModernCalls) Key() ([]byte, error) {
	s := m.StateKey
	if m.StateKeyFile != "" {
		b, err := os.ReadFile(m.StateKeyFile)
		if err != nil {
			return nil, err
		}
		s = string(b)
	}
	if s == "" {
		return nil, nil
	}
	return mrtr.ParseKey(s)
}

func (v *validator) modernCalls(m *ModernCalls) {
	if m.StateKey != "" && m.StateKeyFile != "" {
		v.fail("modern.stateKey", "set stateKey or stateKeyFile, not both")
	} else if _, err := m.Key(); err != nil {
		p := "modern.stateKey"
		if m.StateKeyFile != "" {
			p = "modern.stateKeyFile"
		}
		v.fail(p, "%v", err) // never the key itself
	}
	if m.InputTimeout < 0 {
		v.fail("modern.inputTimeout", "must not be negative")
	}
	if m.MaxWaitingCalls < 0 {
		v.fail("modern.maxWaitingCalls", "must not be negative")
	}
	if m.CacheTTL < 0 {
		v.fail("modern.cacheTTL", "must not be negative")
	}
	if m.AdvertiseURL != "" {
		if u, err := url.Parse(m.AdvertiseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.fail("modern.advertiseURL", "must be an absolute http or https URL")
		}
	}
	switch m.CacheScope {
	case "", "public", "private":
	default:
		v.fail("modern.cacheScope", "must be public or private")
	}
}
