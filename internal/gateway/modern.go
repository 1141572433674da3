package gateway

import (
	"fmt"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/frontend"
	"github.com/vmcp/vmcp/internal/telemetry"
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

// observeMRTR exports the front end's multi round-trip counts as metrics.
func observeMRTR(m *telemetry.Metrics, fe *frontend.Server) {
	m.ObserveMRTR(func() telemetry.MRTR {
		st := fe.MRTRStats()
		return telemetry.MRTR{
			Waiting: st.Waiting, InputRequired: st.InputRequired, Resumed: st.Resumed, Expired: st.Expired, Refused: st.Refused,
			InvalidState: st.InvalidState, ExpiredState: st.ExpiredState, NotWaiting: st.NotWaiting,
		}
	})
}
