package session

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vmcp/vmcp/internal/aggregate"
	"github.com/vmcp/vmcp/internal/backend"
	"github.com/vmcp/vmcp/internal/identity"
	"github.com/vmcp/vmcp/internal/recovery"
	"github.com/vmcp/vmcp/internal/store"
)

// Lineup is the part of a Factory's options that a config reload may
// change while sessions are live (Manager.Reconfigure).
//
// A Backend is identified by its Connector: one with the same Connector
// as before is kept as it is in every session; one with a new Connector
// under a known name replaces the old one (sessions reconnect it).
type Lineup struct {
	Backends    []Backend
	Aggregation aggregate.Options
	InitTimeout time.Duration
	Calls       CallLimits
	Decorators  []Decorator
}

// lineup is a Lineup as a Factory holds it, with the catalogs of the
// sessions built from it. It is never modified once made.
type lineup struct {
	Lineup
	catalogs *catalogs
	replaced chan struct{} // closed once the Factory has a newer lineup (outdated.go)
}

func newLineup(l Lineup) *lineup {
	if l.InitTimeout <= 0 {
		l.InitTimeout = 5 * time.Second
	}
	return &lineup{Lineup: l, catalogs: newCatalogs(l.Aggregation), replaced: make(chan struct{})}
}

func (f *Factory) lineup() *lineup { return f.cur.Load() }

// roster is a session's backends. It is never modified once published:
// a reload publishes a new one.
type roster struct {
	order  []string // backend names, in config order
	byName map[string]*member
}

// members returns the members in config order. A nil roster (a session
// not built yet) has none.
func (r *roster) members() []*member {
	if r == nil {
		return nil
	}
	out := make([]*member, len(r.order))
	for i, name := range r.order {
		out[i] = r.byName[name]
	}
	return out
}

// member returns the session's member for a backend, nil if it has none.
func (s *Session) member(name string) *member {
	if r := s.roster.Load(); r != nil {
		return r.byName[name]
	}
	return nil
}

// catalogs are the catalogs of the lineup the session matches.
func (s *Session) catalogs() *catalogs { return s.lineup.Load().catalogs }

// listingsLocked returns the listings in roster order. s.lmu must be held.
func (s *Session) listingsLocked() []aggregate.Backend {
	r := s.roster.Load()
	all := make([]aggregate.Backend, 0, len(r.order))
	for _, name := range r.order {
		if l, ok := s.listings[name]; ok {
			all = append(all, l)
		}
	}
	return all
}

// errRemoved is the error of a call to a backend a reload removed.
var errRemoved = errors.New("removed from the config")

// enter registers a call on the member, failing once a reload removed it.
// A nil error must be paired with m.calls.Done.
func (m *member) enter() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.removed {
		return fmt.Errorf("backend %q: %w: %w", m.name, backend.ErrUnavailable, errRemoved)
	}
	m.calls.Add(1)
	return nil
}

// drop ends a member a reload removed: new calls fail at once, the calls
// under way finish, then its client closes, once.
func (m *member) drop() error {
	m.mu.Lock()
	m.removed = true
	m.mu.Unlock()
	m.calls.Wait()
	return m.close()
}

// Limits are the Manager's session limits; a reload may change them.
type Limits struct {
	TTL            time.Duration // 0: no absolute limit
	IdleTimeout    time.Duration // 0: no idle limit
	MaxSessions    int           // 0: unlimited
	MaxPerIdentity int           // 0: unlimited
	InitLimiter    InitializeLimiter
}

// limitsNow returns the limits in force.
func (m *Manager) limitsNow() Limits {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.limits
}

// Reconfigured is what a Reconfigure reached.
type Reconfigured struct {
	Sessions int // live sessions brought to the new lineup
}

// Reconfigure makes l the lineup of every session from now on: new
// sessions are built from it, and each live one is brought to it. Each
// live session connects the backends added or changed, and those it could
// not connect before, changed or not (in parallel, within the
// InitTimeout), starts using them, closes each backend removed or
// changed once the calls under way on it have finished, recomputes its
// catalog, and tells its client what changed with list_changed
// notifications. The backend state of the backends kept is untouched.
//
// Reconfigure returns once every session it found has done so, or once
// ctx ends: a backend let go of whose calls are still under way is then
// closed by its session, when they end or when the session closes.
// Sessions being built meanwhile are brought to l as they go live. Calls
// to a session go on throughout; no lock a call needs is held across a
// backend's I/O.
func (m *Manager) Reconfigure(ctx context.Context, l Lineup, limits Limits) Reconfigured {
	f := m.opts.Factory
	f.setLineup(newLineup(l))
	m.mu.Lock()
	m.limits = limits
	live := make([]*Session, 0, len(m.live))
	for _, s := range m.live {
		live = append(live, s)
	}
	m.mu.Unlock()
	sem := make(chan struct{}, max(f.opts.InitConcurrency, 1))
	var wg sync.WaitGroup
	for _, s := range live {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			// Shutting down: the sessions left are closing anyway.
			wg.Wait()
			return Reconfigured{Sessions: len(live)}
		}
		wg.Go(func() {
			defer func() { <-sem }()
			defer recovery.Recover(m.log, nil, "during", "reload")
			s.reconcile(ctx)
		})
	}
	wg.Wait()
	return Reconfigured{Sessions: len(live)}
}

// catchUp brings a session that went live to the current lineup, in the
// background, if a reload happened while it was being built.
func (m *Manager) catchUp(s *Session) {
	if s.lineup.Load() != m.opts.Factory.lineup() {
		m.goBackground(func() { s.reconcile(context.Background()) })
	}
}

// reconcile brings the session to the Factory's current lineup, until it
// matches. Reloads of one session are serialised; each counts as a call in
// flight, so Close waits for it, and a closed session is left alone.
func (s *Session) reconcile(ctx context.Context) {
	if s.acquire() != nil {
		return
	}
	defer s.release()
	select {
	case <-s.ready:
	case <-ctx.Done():
		return
	}
	s.reconfMu.Lock()
	defer s.reconfMu.Unlock()
	for {
		l := s.factory.lineup()
		if l == s.lineup.Load() {
			return
		}
		s.apply(ctx, s.lineup.Load(), l)
	}
}

// apply changes the session from lineup old to cur. s.reconfMu is held.
func (s *Session) apply(ctx context.Context, old, cur *lineup) {
	f := s.factory
	prev := s.roster.Load()
	var add []Backend
	for _, b := range cur.Backends {
		// A backend the session could not connect (at its start, or at
		// an earlier reload) is tried again, changed or not: its tools
		// are in no catalog, so no call would ever reach it otherwise.
		if m := prev.byName[b.Name]; m == nil || m.connector != b.Connector || m.current() == nil {
			add = append(add, b)
		}
	}

	// Connect what is new, in parallel, with no lock held: the session's
	// other backends serve calls meanwhile.
	results := s.connectBackends(ctx, cur, add)
	for i, b := range add {
		if err := results[i].err; err != nil {
			// Like a backend that failed at session start: the session
			// retries it in the background (retry.go), and so does the
			// next reload.
			f.log.Warn("backend a reload connected failed to initialize; the session continues without it", "backend", b.Name, "err", err)
		}
	}
	s.publish(ctx, old, cur, prev, add, results, joinedOnReload)
}

// connectBackends connects each of add for the session, in parallel, with
// no lock held, as the backends of lineup l: the one connect path of a
// reload and of a background retry (retry.go).
func (s *Session) connectBackends(ctx context.Context, l *lineup, add []Backend) []backendInit {
	f := s.factory
	if s.caller != nil {
		ctx = identity.NewContext(ctx, s.caller)
	}
	meta := s.Metadata()
	results := make([]backendInit, len(add))
	var wg sync.WaitGroup
	for i, b := range add {
		wg.Go(func() {
			began := time.Now()
			defer func() { results[i].took = time.Since(began) }()
			defer recovery.Recover(f.log, func(err error) { results[i] = backendInit{err: fmt.Errorf("backend %q: initialize: %w", b.Name, err)} }, "backend", b.Name)
			results[i] = f.connect(ctx, l, b, meta, store.Backend{}, &relay{s: s, backend: b.Name})
		})
	}
	wg.Wait()
	return results
}

// publish makes the session's backends those of roster prev with each of
// add replaced by a member for its result (connected or not), as lineup
// cur, changed from old; the members of prev that cur lacks, and those
// replaced, are dropped. It publishes the roster, listings, outage,
// metadata and catalog together, tells the hooks of each backend of add
// (BackendJoined, with trigger) and the client what changed. s.reconfMu is
// held.
func (s *Session) publish(ctx context.Context, old, cur *lineup, prev *roster, add []Backend, results []backendInit, trigger string) {
	f := s.factory
	want := make(map[string]bool, len(cur.Backends))
	adding := make(map[string]bool, len(add))
	for _, b := range cur.Backends {
		want[b.Name] = true
	}
	for _, b := range add {
		adding[b.Name] = true
	}
	var gone []*member
	for _, m := range prev.members() {
		if !want[m.name] || adding[m.name] {
			gone = append(gone, m)
		}
	}
	var wg sync.WaitGroup

	next := &roster{byName: make(map[string]*member, len(cur.Backends))}
	fresh := make(map[string]*member, len(add))
	for i, b := range add {
		fresh[b.Name] = newMember(s, b, results[i])
	}
	var unavailable []UnavailableBackend // in config order, as add is
	for i, b := range add {
		if err := results[i].err; err != nil {
			unavailable = append(unavailable, UnavailableBackend{Name: b.Name, Reason: reason(err)})
		}
	}
	for _, b := range cur.Backends {
		m := fresh[b.Name]
		if m == nil {
			m = prev.byName[b.Name]
		}
		next.order = append(next.order, b.Name)
		next.byName[b.Name] = m
	}

	// Publish the new roster, listings, metadata and catalog together,
	// in step with list_changed refreshes.
	s.refreshMu.Lock()
	s.roster.Store(next)
	s.lineup.Store(cur)
	s.outage.Store(newOutage(len(cur.Backends), unavailable))
	s.lmu.Lock()
	for name := range s.listings {
		if !want[name] {
			delete(s.listings, name)
		}
	}
	for i, b := range add {
		if r := results[i]; r.err == nil {
			s.listings[b.Name] = cur.catalogs.intern(r.listing)
		} else {
			delete(s.listings, b.Name)
		}
	}
	for name, l := range s.listings {
		// Interned anew: the catalogs of cur may be new (aggregation
		// changed), and share listings only among themselves.
		s.listings[name] = cur.catalogs.intern(l)
	}
	all := s.listingsLocked()
	s.lmu.Unlock()
	s.mu.Lock()
	stored := make([]store.Backend, 0, len(cur.Backends))
	for _, b := range s.meta.Backends {
		if want[b.Name] && fresh[b.Name] == nil {
			stored = append(stored, b)
		}
	}
	for _, r := range results {
		if r.err == nil {
			stored = append(stored, r.stored)
		}
	}
	s.meta.Backends = stored
	s.mu.Unlock()
	before := s.catalog.Load()
	cat, _, err := cur.catalogs.catalog(all)
	if err != nil {
		f.log.Warn("reload: the new catalog has unresolved conflicts; the session keeps its previous one", "err", err)
		cat = before
	} else {
		s.catalog.Store(cat)
	}
	s.refreshMu.Unlock()

	if cur.Calls != old.Calls {
		s.limiter.Store(newCallLimiter(cur.Calls))
	}
	lists := changedLists(before, cat)
	if !sameDecorators(old.Decorators, cur.Decorators) {
		// Authorization may show the client other items now, whatever
		// the catalog.
		s.decorate(cur.Decorators)
		lists = allLists
	}
	for _, m := range fresh {
		m.startKeepalive()
	}
	for i, b := range add {
		f.hooks.joined(ctx, s, b.Name, trigger, results[i].took, results[i].err)
	}
	if len(unavailable) > 0 {
		s.retryLater()
	}
	if len(add) > 0 || len(gone) > 0 {
		if fn := s.onBackendChange.Load(); fn != nil {
			(*fn)() // the metadata lists other backend sessions now
		}
	}
	for _, method := range lists {
		s.notify(ctx, &relay{s: s}, method, nil)
	}

	// Close what is gone, each once its calls under way have finished.
	// The session owns the drops (Close waits for them): when ctx ends
	// (vmcp shutting down) the reload stops waiting for a long call, and
	// the session's Close finishes the drop.
	dropped := make(chan struct{})
	for _, m := range gone {
		wg.Go(func() {
			defer recovery.Recover(f.log, nil, "backend", m.name, "during", "reload")
			if err := m.drop(); err != nil {
				f.log.Debug("closing a backend a reload removed", "backend", m.name, "err", err)
			}
		})
	}
	s.dropping.Go(func() {
		wg.Wait()
		close(dropped)
	})
	select {
	case <-dropped:
	case <-ctx.Done():
	}
}

var allLists = []string{"notifications/tools/list_changed", "notifications/resources/list_changed", "notifications/prompts/list_changed"}

// sameDecorators reports whether a and b are the same slice: a reload
// that leaves the decorators alone passes the ones in effect.
func sameDecorators(a, b []Decorator) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// changedLists names the list_changed notifications that tell a client
// how catalog b differs from a.
func changedLists(a, b *aggregate.Catalog) []string {
	var out []string
	if a == nil || b == nil || a == b {
		return nil
	}
	if !equalItems(a.Tools, b.Tools) {
		out = append(out, "notifications/tools/list_changed")
	}
	if !equalItems(a.Resources, b.Resources) || !equalItems(a.ResourceTemplates, b.ResourceTemplates) {
		out = append(out, "notifications/resources/list_changed")
	}
	if !equalItems(a.Prompts, b.Prompts) {
		out = append(out, "notifications/prompts/list_changed")
	}
	return out
}
