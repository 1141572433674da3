package gateway

import (
	"context"
	"fmt"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/session"
	"github.com/vmcp/vmcp/internal/telemetry"
	"github.com/vmcp/vmcp/internal/warm"
)

// newWarmPool is the pool of warm sessions through which 2026-07-28
// requests reach legacy backends (modern.pool). Its sessions are built by
// the same factory, so with the same decorators, as the clients' sessions;
// a pooled session lives no longer than session.ttl, since the caller's
// credentials were resolved when it was built. Shutdown closes it.
//
// peer is the session-level Peer of a pooled session (the front end's
// subscriptions/listen streams of its identity).
func newWarmPool(cfg *config.Config, factory *session.Factory, opts Options, metrics *telemetry.Metrics, peer func(identity string) session.Peer) *warm.Pool {
	p := warm.New(warm.Options{
		Factory:        factory,
		MaxPerIdentity: cfg.Modern.Pool.MaxPerIdentity,
		MaxSessions:    cfg.Modern.Pool.MaxSessions,
		IdleTimeout:    cfg.Modern.Pool.IdleTimeout.D(),
		MaxAge:         cfg.Session.TTL.D(),
		SweepInterval:  opts.SweepInterval,
		Now:            opts.Now,
		Logger:         opts.Logger,
		Peer:           peer,
	})
	metrics.ObserveWarmPool(func() telemetry.WarmPool {
		st := p.Stats()
		return telemetry.WarmPool{
			Sessions: st.Sessions, Busy: st.Busy, Listened: st.Listened, Identities: st.Identities,
			Hit: st.Hits, Shared: st.Shared, Miss: st.Misses, Evicted: st.Evicted, Refused: st.Refused, Failed: st.Failed,
			Reaped: st.Reaped,
		}
	})
	return p
}

// Pool returns the warm session pool that serves 2026-07-28 requests.
func (g *Gateway) Pool() *warm.Pool { return g.pool }

// closePool closes the warm pool, letting its requests in flight finish,
// within ctx; past ctx its sessions go on closing in the background. A
// backend session that fails to end is logged, as the manager's are: it
// is not a shutdown failure.
func (g *Gateway) closePool(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- g.pool.Close() }()
	select {
	case err := <-done:
		if err != nil {
			g.log.Debug("closing warm sessions", "err", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("shutdown: warm sessions still closing: %w", ctx.Err())
	}
}
