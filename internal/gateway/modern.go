package gateway

import (
	"fmt"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/frontend"
)

// modernOptions is how the front end serves 2026-07-28 calls (modern.*).
func modernOptions(cfg *config.Config) (frontend.ModernOptions, error) {
	m := cfg.Modern.ModernCalls
	key, err := m.Key()
	if err != nil {
		return frontend.ModernOptions{}, fmt.Errorf("modern.stateKey: %w", err)
	}
	return frontend.ModernOptions{
		StateKey:     key,
		InputTimeout: m.InputTimeout.D(),
		MaxWaiting:   m.MaxWaitingCalls,
		CacheTTL:     m.CacheTTL.D(),
		CacheScope:   m.CacheScope,
		AdvertiseURL: m.AdvertiseURL,
	}, nil
}

// WaitingCalls returns how many calls wait for a modern client's input
// (MRTR).
func (g *Gateway) WaitingCalls() int { return g.frontend.WaitingCalls() }
