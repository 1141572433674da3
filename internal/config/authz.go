package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/vmcp/vmcp/internal/policy"
)

// Authorization is what each caller may see and call.
//
// Policies are tried in order and the first that covers an item and whose
// condition holds decides; when none does, Default decides. With no
// policies at all there is no authorization: everything is allowed.
type Authorization struct {
	// Default is "deny" (the default) or "allow": the decision for an item
	// that no policy decides.
	Default  string   `yaml:"default"`
	Policies []Policy `yaml:"policies"`
}

// Values of Policy.Effect and Authorization.Default.
const (
	EffectAllow = "allow"
	EffectDeny  = "deny"
)

// Policy is one authorization rule (see package policy).
type Policy struct {
	Name   string `yaml:"name"`   // for log lines; optional
	Effect string `yaml:"effect"` // EffectAllow or EffectDeny; required
	// Tools, Resources and Prompts are name patterns ("*" matches any
	// run of characters; a resource's name is its URI). A policy with
	// none of them covers every item.
	Tools     []string `yaml:"tools"`
	Resources []string `yaml:"resources"`
	Prompts   []string `yaml:"prompts"`
	// Backends, if set, limits the policy to these backends' items.
	Backends []string `yaml:"backends"`
	// When is a CEL condition over subject, issuer, scopes, claims, kind,
	// name, backend and arguments; empty always holds.
	When string `yaml:"when"`
}

// RateLimits are token buckets per caller (an authenticated identity, or
// an anonymous client's address).
type RateLimits struct {
	// Initialize limits how fast each caller starts sessions; over it,
	// initialize gets 429 and Retry-After.
	Initialize *RateLimit `yaml:"initialize"`
	// Calls limit tools/call by tool name pattern. Every rule that
	// matches a tool applies, each with its own bucket per caller.
	Calls []CallRateLimit `yaml:"calls"`
}

// RateLimit is one token bucket.
type RateLimit struct {
	// Rate is how fast tokens come: "10/s", "100/m" or "1000/h" (the
	// number may have a fraction).
	Rate string `yaml:"rate"`
	// Burst is the bucket's size; 0: the rate's number rounded up (10
	// for "10/s"), at least 1.
	Burst int `yaml:"burst"`
}

// CallRateLimit limits the calls of matching tools.
type CallRateLimit struct {
	Tools []string `yaml:"tools"` // tool name patterns; required
	Rate  string   `yaml:"rate"`  // as RateLimit.Rate
	Burst int      `yaml:"burst"` // as RateLimit.Burst
}

// Limit returns the rule's bucket.
func (c CallRateLimit) Limit() RateLimit { return RateLimit{Rate: c.Rate, Burst: c.Burst} }

// PerSecond returns Rate in tokens per second. Valid only on a validated
// Config.
func (r RateLimit) PerSecond() float64 {
	v, _ := parseRate(r.Rate)
	return v
}

// Size returns the bucket's size, Burst or its default.
func (r RateLimit) Size() int {
	if r.Burst > 0 {
		return r.Burst
	}
	n, _, _ := strings.Cut(r.Rate, "/")
	f, _ := strconv.ParseFloat(strings.TrimSpace(n), 64)
	return max(1, int(math.Ceil(f)))
}

var rateUnits = map[string]float64{"s": 1, "m": 60, "h": 3600}

func parseRate(s string) (float64, bool) {
	n, unit, ok := strings.Cut(s, "/")
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
	per, known := rateUnits[strings.TrimSpace(unit)]
	if err != nil || !known || f <= 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f / per, true
}

func (v *validator) authorization(a *Authorization, backends map[string]bool) {
	if a.Default != EffectAllow && a.Default != EffectDeny {
		v.fail("authorization.default", "must be one of deny, allow (got %s)", v.got("authorization.default", a.Default))
	}
	for i, p := range a.Policies {
		path := fmt.Sprintf("authorization.policies[%d]", i)
		switch p.Effect {
		case EffectAllow, EffectDeny:
		case "":
			v.fail(path+".effect", "required: allow or deny")
		default:
			v.fail(path+".effect", "must be one of allow, deny (got %s)", v.got(path+".effect", p.Effect))
		}
		v.patterns(path+".tools", p.Tools)
		v.patterns(path+".resources", p.Resources)
		v.patterns(path+".prompts", p.Prompts)
		for j, b := range p.Backends {
			bp := fmt.Sprintf("%s.backends[%d]", path, j)
			if !backends[b] {
				v.fail(bp, "no backend is named %s", v.got(bp, b))
			}
		}
		if strings.TrimSpace(p.When) != "" {
			if err := policy.Check(p.When); err != nil {
				msg := celMessage(err.Error())
				if v.d.pos[path+".when"].fromEnv {
					msg = "(not shown: it would quote a value from the environment)"
				}
				v.fail(path+".when", "invalid CEL expression: %s", msg)
			}
		}
	}
}

func (v *validator) rateLimits(r *RateLimits) {
	if r.Initialize != nil {
		v.rateLimit("rateLimits.initialize", r.Initialize)
	}
	for i := range r.Calls {
		p := fmt.Sprintf("rateLimits.calls[%d]", i)
		if len(r.Calls[i].Tools) == 0 {
			v.fail(p+".tools", `required: tool name patterns, such as ["*"]`)
		}
		v.patterns(p+".tools", r.Calls[i].Tools)
		l := r.Calls[i].Limit()
		v.rateLimit(p, &l)
	}
}

func (v *validator) rateLimit(p string, r *RateLimit) {
	switch _, ok := parseRate(r.Rate); {
	case r.Rate == "":
		v.fail(p+".rate", "required: a rate such as 10/s, 100/m or 1000/h")
	case !ok:
		v.fail(p+".rate", "must be a positive number per s, m or h, such as 10/s, 100/m or 0.5/h (got %s)", v.got(p+".rate", r.Rate))
	}
}

func (v *validator) patterns(p string, pats []string) {
	for i, s := range pats {
		if s == "" {
			v.fail(fmt.Sprintf("%s[%d]", p, i), "must not be empty")
		}
	}
}

// celMessage keeps the messages of CEL's report, which also quotes the
// expression and draws a caret under each error, and puts them on one
// line: "1:34: Syntax error: missing ')' at '<EOF>'".
func celMessage(s string) string {
	var msgs []string
	for _, l := range strings.Split(s, "\n") {
		if m, ok := strings.CutPrefix(strings.TrimSpace(l), "ERROR: <input>:"); ok {
			msgs = append(msgs, m)
		}
	}
	if len(msgs) == 0 {
		return strings.Join(strings.Fields(s), " ")
	}
	return strings.Join(msgs, "; ")
}
