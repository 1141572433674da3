package config

import "time"

// Modern configures how vmcp serves 2026-07-28 ("modern") clients, which
// send no initialize and hold no session.
type Modern struct {
	// Pool bounds the warm backend sessions through which modern
	// requests reach legacy backends (package warm).
	Pool ModernPool `yaml:"pool"`
	// ModernCalls: requestState sealing and caching hints (modern_calls.go).
	ModernCalls `yaml:",inline"`
}

// ModernPool is the warm session pool: per caller identity, sessions
// initialized once and reused by that caller's requests.
type ModernPool struct {
	MaxPerIdentity int      `yaml:"maxPerIdentity"` // sessions per identity, >= 1
	MaxSessions    int      `yaml:"maxSessions"`    // sessions of all identities, >= 1
	IdleTimeout    Duration `yaml:"idleTimeout"`    // a session unused this long is closed, > 0
}

// The warm pool's defaults.
const (
	DefaultModernPoolMaxPerIdentity = 4
	DefaultModernPoolMaxSessions    = 256
	DefaultModernPoolIdleTimeout    = 5 * time.Minute
)

func defaultModern() Modern {
	return Modern{Pool: ModernPool{
		MaxPerIdentity: DefaultModernPoolMaxPerIdentity,
		MaxSessions:    DefaultModernPoolMaxSessions,
		IdleTimeout:    Duration(DefaultModernPoolIdleTimeout),
	}}
}

func (v *validator) modern(m *Modern) {
	v.modernCalls(&m.ModernCalls)
	atLeastOne(v, "modern.pool.maxPerIdentity", m.Pool.MaxPerIdentity)
	atLeastOne(v, "modern.pool.maxSessions", m.Pool.MaxSessions)
	if m.Pool.IdleTimeout <= 0 {
		v.fail("modern.pool.idleTimeout", "must be greater than 0")
	}
	if m.Pool.MaxPerIdentity > m.Pool.MaxSessions {
		p := "modern.pool.maxPerIdentity"
		v.fail(p, "must not exceed modern.pool.maxSessions (%d)", m.Pool.MaxSessions)
	}
}
