package guard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"github.com/vmcp/vmcp/internal/identity"
	"github.com/vmcp/vmcp/internal/jsonrpc"
	"github.com/vmcp/vmcp/internal/policy"
	"github.com/vmcp/vmcp/internal/ratelimit"
	"github.com/vmcp/vmcp/internal/session"
)

// CallRule limits the calls of the tools its patterns match ("*" matches
// any run of characters), per caller.
type CallRule struct {
	Tools []string
	Limit ratelimit.Limit
}

// Limits applies rate limits per caller: one bucket per caller and
// CallRule for tools/call, and one per caller for initialize. Every rule
// that matches a tool applies to its call, all or none: a call refused by
// one rule costs nothing under the others. Safe for concurrent use.
//
// When the limiter fails (Redis unreachable), calls go through and a WARN
// says so, at most every 10 s: a rate limit protects backends, and an
// outage of its store should not take the gateway down with it.
type Limits struct {
	limiter ratelimit.Limiter
	init    *ratelimit.Limit
	rules   []CallRule
	// A fingerprint per rule, and one of init: a limiter outlives the
	// Limits a reload replaces, and a changed limit starts its buckets
	// afresh while an unchanged one keeps them.
	ids      []string
	initID   string
	log      *slog.Logger
	obs      Observer
	lastWarn atomic.Int64 // unix nanos
}

// NewLimits returns Limits taking from limiter. init, if set, limits each
// caller's initialize requests. Each refusal is counted in obs (nil: none).
func NewLimits(limiter ratelimit.Limiter, init *ratelimit.Limit, rules []CallRule, log *slog.Logger, obs Observer) *Limits {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Limits{limiter: limiter, init: init, rules: rules, log: log, obs: orNone(obs)}
	for _, r := range rules {
		l.ids = append(l.ids, fingerprint(r.Tools, r.Limit))
	}
	if init != nil {
		l.initID = fingerprint(nil, *init)
	}
	return l
}

// fingerprint names a limit of the tools (nil: initialize) in its
// buckets' keys.
func fingerprint(tools []string, limit ratelimit.Limit) string {
	h := fnv.New64a()
	fmt.Fprintf(h, "%q %g %d", tools, limit.Rate, limit.Burst)
	return hex.EncodeToString(h.Sum(nil))
}

// bucketKey is a caller's bucket key: a hash of the caller (so no subject
// or address sits in Redis as it is) as a Redis Cluster hash tag, so that
// one take's buckets share a slot, then what it limits.
func bucketKey(caller, what string) string {
	sum := sha256.Sum256([]byte(caller))
	return "{" + hex.EncodeToString(sum[:12]) + "}:" + what
}

// AllowInitialize implements session.InitializeLimiter. The caller is
// the identity in ctx, else bound (the session's identity, "ip:…" for an
// anonymous client).
func (l *Limits) AllowInitialize(ctx context.Context, bound string) (time.Duration, bool) {
	if l.init == nil {
		return 0, true
	}
	caller := identity.FromContext(ctx).Key()
	if caller == "" {
		caller = bound
	}
	wait, ok := l.take(ctx, []ratelimit.Bucket{{Key: bucketKey(caller, "init:"+l.initID), Limit: *l.init}})
	if !ok {
		l.obs.ObserveRateLimited("initialize")
	}
	return wait, ok
}

func (l *Limits) take(ctx context.Context, bs []ratelimit.Bucket) (time.Duration, bool) {
	ok, wait, err := l.limiter.Take(ctx, bs)
	if err != nil {
		if now := time.Now().UnixNano(); now-l.lastWarn.Load() > int64(10*time.Second) {
			l.lastWarn.Store(now)
			l.log.WarnContext(ctx, "rate limits not applied: their store failed; calls go through", "err", err)
		}
		return 0, true
	}
	return wait, ok
}

// Decorator returns the decorator that limits each session's tools/call.
// A call over a limit gets CodeRateLimited with data.retryAfterMs.
func (l *Limits) Decorator() session.Decorator {
	return func(s *session.Session, next session.Operations) session.Operations {
		return &limitedOps{Operations: next, s: s, l: l}
	}
}

type limitedOps struct {
	session.Operations // List passes through
	s                  *session.Session
	l                  *Limits
}

// Call implements session.Operations.
func (o *limitedOps) Call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	if method != "tools/call" || len(o.l.rules) == 0 {
		return o.Operations.Call(ctx, method, params)
	}
	name, ok := stringMember(params, "name")
	if !ok {
		return o.Operations.Call(ctx, method, params) // the session answers -32602
	}
	caller := identity.FromContext(ctx).Key()
	if caller == "" {
		caller = o.s.Identity()
	}
	var bs []ratelimit.Bucket
	for i, r := range o.l.rules {
		if policy.MatchAny(r.Tools, name) {
			bs = append(bs, ratelimit.Bucket{Key: bucketKey(caller, "tool:"+o.l.ids[i]), Limit: r.Limit})
		}
	}
	if wait, ok := o.l.take(ctx, bs); !ok {
		ms := int64(math.Ceil(float64(wait) / float64(time.Millisecond)))
		o.l.obs.ObserveRateLimited("call")
		o.l.log.DebugContext(ctx, "call over its rate limit", "caller", identity.FromContext(ctx), "tool", clip(name), "retry_after_ms", ms)
		e := jsonrpc.Errorf(CodeRateLimited, "Rate limit exceeded for tool %q; retry in %s", name, retryText(wait))
		e.Data = json.RawMessage(fmt.Sprintf(`{"retryAfterMs":%d}`, ms))
		return nil, e
	}
	return o.Operations.Call(ctx, method, params)
}

// retryText rounds a wait up to what a person reads: "2s", "1h0m0s".
func retryText(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
