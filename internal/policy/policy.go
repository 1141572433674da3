// Package policy decides what a caller may see and call, by ordered rules
// whose conditions are CEL expressions (github.com/google/cel-go).
//
// A Rule names what it covers (tool, resource and prompt name patterns,
// and backends), an effect (allow or deny) and an optional condition. The
// rules of a Set are tried in order; the first that covers the item and
// whose condition holds decides. When none does, the Set's default
// decides: deny, unless the operator chose allow. So an operator lists
// what each caller may use, and anything new a backend adds stays hidden
// until a rule allows it.
//
// A condition sees the caller (subject, issuer, scopes, claims), the item
// (kind, name, backend) and, for calls, the call's arguments. A condition
// that never reads arguments is decided once per caller and catalog
// (Set.Static), which is what keeps listing and calling fast; only the
// rules that read arguments are evaluated on each call.
//
// A condition that fails to evaluate (a missing claim, say) fails closed:
// it counts as holding for a deny rule and as not holding for an allow
// rule. has(claims.groups) guards against a claim that may be absent.
//
// A Set is immutable and safe for concurrent use.
package policy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/cel-go/cel"

	"github.com/vmcp/vmcp/internal/identity"
)

// Kind is the kind of catalog item a rule covers.
type Kind int

const (
	Tool Kind = iota
	Resource
	Prompt
)

// String is the kind as CEL's `kind` variable holds it.
func (k Kind) String() string {
	switch k {
	case Resource:
		return "resource"
	case Prompt:
		return "prompt"
	}
	return "tool"
}

// Rule is one configured policy.
type Rule struct {
	// Name identifies the rule in log lines; "" names it by position.
	Name string
	// Allow is the rule's effect: allow (true) or deny (false).
	Allow bool
	// Tools, Resources and Prompts are the name patterns the rule covers
	// for each kind; "*" matches any run of characters. A resource's name
	// is its URI (a template's, its uriTemplate). A rule with no pattern
	// of any kind covers every item.
	Tools, Resources, Prompts []string
	// Backends, if set, limits the rule to items of these backends.
	Backends []string
	// When is the CEL condition; "" always holds. It must be a bool.
	When string
}

// Item is what a decision is about: a tool, resource or prompt as the
// client names it, and the backend that serves it ("" if none does).
type Item struct {
	Kind    Kind
	Name    string
	Backend string
}

// Decision is the outcome for one item.
type Decision struct {
	Allow bool
	// Rule names the rule that decided, or "default".
	Rule string
}

// Set is a compiled, ordered list of rules. It is immutable once New
// returns it, so it is safe for concurrent use.
type Set struct {
	rules        []compiled
	defaultAllow bool
}

type compiled struct {
	Rule
	name     string
	prg      cel.Program // nil: the condition always holds
	usesArgs bool
}

// Error reports a rule that does not compile: Index is its position and
// Field the rule's field at fault ("when", "tools[0]").
type Error struct {
	Index int
	Field string
	Err   error
}

func (e *Error) Error() string { return fmt.Sprintf("policies[%d].%s: %v", e.Index, e.Field, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// New compiles rules into a Set. defaultAllow is the decision for an item
// no rule decides. The error is an *Error for the first bad rule.
func New(rules []Rule, defaultAllow bool) (*Set, error) {
	env, err := newEnv()
	if err != nil {
		return nil, err
	}
	s := &Set{defaultAllow: defaultAllow}
	for i, r := range rules {
		for _, f := range []struct {
			name string
			pats []string
		}{{"tools", r.Tools}, {"resources", r.Resources}, {"prompts", r.Prompts}, {"backends", r.Backends}} {
			for j, pat := range f.pats {
				if pat == "" {
					return nil, &Error{Index: i, Field: fmt.Sprintf("%s[%d]", f.name, j), Err: errors.New("must not be empty")}
				}
			}
		}
		c := compiled{Rule: r, name: r.Name}
		if c.name == "" {
			c.name = fmt.Sprintf("policies[%d]", i)
		}
		if strings.TrimSpace(r.When) != "" {
			if c.prg, c.usesArgs, err = compile(env, r.When); err != nil {
				return nil, &Error{Index: i, Field: "when", Err: err}
			}
		}
		s.rules = append(s.rules, c)
	}
	return s, nil
}

// Check compiles a condition alone, for config validation: nil if it
// would compile in New.
func Check(when string) error {
	env, err := newEnv()
	if err != nil {
		return err
	}
	_, _, err = compile(env, when)
	return err
}

// covers reports whether the rule applies to it, before its condition.
func (r *compiled) covers(it Item) bool {
	if len(r.Backends) > 0 && !MatchAny(r.Backends, it.Backend) {
		return false
	}
	if len(r.Tools) == 0 && len(r.Resources) == 0 && len(r.Prompts) == 0 {
		return true
	}
	switch it.Kind {
	case Resource:
		return MatchAny(r.Resources, it.Name)
	case Prompt:
		return MatchAny(r.Prompts, it.Name)
	}
	return MatchAny(r.Tools, it.Name)
}

// Verdict is what a Set can say about an item from the caller alone,
// before any arguments: whether the item is listed, and whether that is
// also the answer for every call (Final), or rules that read arguments
// must be evaluated per call.
type Verdict struct {
	Visible bool
	Final   bool
	Decision
}

// Static decides it for the caller id without arguments. An item is
// Visible when some arguments could be allowed; it is Final when no rule
// that reads arguments comes before the deciding one. Hidden items are
// denied whatever the arguments.
func (s *Set) Static(ctx context.Context, id *identity.Identity, it Item) Verdict {
	vars := newVars(id, it, nil)
	argsSeen := false
	for i := range s.rules {
		r := &s.rules[i]
		if !r.covers(it) {
			continue
		}
		if r.usesArgs {
			if r.Allow {
				// Some arguments may pass: list it, decide per call.
				return Verdict{Visible: true, Decision: Decision{Allow: true, Rule: r.name}}
			}
			argsSeen = true
			continue
		}
		if r.holds(ctx, vars) {
			return Verdict{Visible: r.Allow, Final: !argsSeen, Decision: Decision{Allow: r.Allow, Rule: r.name}}
		}
	}
	return Verdict{Visible: s.defaultAllow, Final: !argsSeen, Decision: Decision{Allow: s.defaultAllow, Rule: "default"}}
}

// Decide decides one call of it by the caller id with arguments args
// (nil: none).
func (s *Set) Decide(ctx context.Context, id *identity.Identity, it Item, args map[string]any) Decision {
	vars := newVars(id, it, args)
	for i := range s.rules {
		r := &s.rules[i]
		if r.covers(it) && r.holds(ctx, vars) {
			return Decision{Allow: r.Allow, Rule: r.name}
		}
	}
	return Decision{Allow: s.defaultAllow, Rule: "default"}
}

// ReadsArguments reports whether any rule's condition reads arguments.
func (s *Set) ReadsArguments() bool {
	for _, r := range s.rules {
		if r.usesArgs {
			return true
		}
	}
	return false
}

// matchAny reports whether any pattern matches name.
func MatchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if Match(p, name) {
			return true
		}
	}
	return false
}

// Match is a glob where "*" matches any run of characters, "/" included,
// and everything else matches itself.
func Match(pattern, name string) bool {
	head, rest, wild := strings.Cut(pattern, "*")
	if !wild {
		return pattern == name
	}
	if !strings.HasPrefix(name, head) {
		return false
	}
	name = name[len(head):]
	for {
		var seg string
		seg, rest, wild = strings.Cut(rest, "*")
		if !wild {
			return strings.HasSuffix(name, seg) // the last segment is anchored at the end
		}
		i := strings.Index(name, seg)
		if i < 0 {
			return false
		}
		name = name[i+len(seg):]
	}
}
