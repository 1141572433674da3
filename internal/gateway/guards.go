package gateway

import (
	"fmt"
	"log/slog"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/guard"
	"github.com/vmcp/vmcp/internal/policy"
	"github.com/vmcp/vmcp/internal/ratelimit"
	"github.com/vmcp/vmcp/internal/session"
	"github.com/vmcp/vmcp/internal/store"
)

// guards builds the session decorators of authorization and rateLimits,
// outermost first: policy before rate limits, so that a forbidden call
// costs no token. The initialize limiter is nil without
// rateLimits.initialize. The rate limits take their tokens from limiter
// (rateLimiter), which outlives the guards a reload rebuilds.
func guards(cfg *config.Config, limiter ratelimit.Limiter, log *slog.Logger, obs guard.Observer) ([]session.Decorator, session.InitializeLimiter, error) {
	var decorators []session.Decorator
	if a := cfg.Authorization; len(a.Policies) > 0 {
		rules := make([]policy.Rule, len(a.Policies))
		for i, p := range a.Policies {
			rules[i] = policy.Rule{
				Name: p.Name, Allow: p.Effect == config.EffectAllow,
				Tools: p.Tools, Resources: p.Resources, Prompts: p.Prompts, Backends: p.Backends, When: p.When,
			}
		}
		set, err := policy.New(rules, a.Default == config.EffectAllow)
		if err != nil {
			return nil, nil, fmt.Errorf("authorization.%w", err)
		}
		decorators = append(decorators, guard.Policy(set, log, obs))
	}
	r := cfg.RateLimits
	if r.Initialize == nil && len(r.Calls) == 0 {
		return decorators, nil, nil
	}
	var init *ratelimit.Limit
	if r.Initialize != nil {
		init = &ratelimit.Limit{Rate: r.Initialize.PerSecond(), Burst: r.Initialize.Size()}
	}
	rules := make([]guard.CallRule, len(r.Calls))
	for i, c := range r.Calls {
		l := c.Limit()
		rules[i] = guard.CallRule{Tools: c.Tools, Limit: ratelimit.Limit{Rate: l.PerSecond(), Burst: l.Size()}}
	}
	limits := guard.NewLimits(limiter, init, rules, log, obs)
	if len(rules) > 0 {
		decorators = append(decorators, limits.Decorator())
	}
	if init == nil {
		return decorators, nil, nil
	}
	return decorators, limits, nil
}

// rateLimiter returns the gateway's token buckets, made on the first call
// and the same ever after: a reload that rebuilds the guards keeps the
// state of every limit it leaves as it was, so a reload is no way to reset
// a limit (a changed limit has buckets of its own: guard.Limits). With a
// Redis store the buckets live on the same Redis server, shared by every
// replica. It is called with r.mu held, or before the gateway serves.
func (r *reloader) rateLimiter(st store.Store) ratelimit.Limiter {
	if r.limiter == nil {
		r.limiter = ratelimit.NewMemory(nil)
		if rs, ok := st.(*store.Redis); ok {
			r.limiter = ratelimit.NewRedis(rs.Scripter(), rs.KeyPrefix())
		}
	}
	return r.limiter
}
