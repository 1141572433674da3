package session

import "context"

// The Manager brings the sessions it holds to each reload's lineup
// (Manager.Reconfigure). A session it does not hold (a warm pool's) is
// normally retired and rebuilt instead; one that must outlive the reload
// (a warm session held by a subscriptions/listen stream) is brought to the
// new lineup by its holder: Outdated says when, Reconcile does it.

// setLineup makes l the Factory's lineup and tells the sessions of the
// one it replaces.
func (f *Factory) setLineup(l *lineup) {
	if old := f.cur.Swap(l); old != nil {
		close(old.replaced)
	}
}

// Outdated returns a channel closed once a reload has given the session's
// Factory a lineup other than the one the session matches. After
// Reconcile, ask again: the channel is that of the lineup then in force.
func (s *Session) Outdated() <-chan struct{} {
	if l := s.lineup.Load(); l != nil {
		return l.replaced
	}
	return nil
}

// Reconcile brings the session to its Factory's current lineup, as
// Manager.Reconfigure does for the sessions it holds: it connects the
// backends added or changed, closes those removed or changed once their
// calls under way have finished, and tells its Peer what changed with
// list_changed notifications. It returns when the session matches, ctx
// ends or the session closes. Safe to call concurrently with calls and
// with other Reconciles.
func (s *Session) Reconcile(ctx context.Context) { s.reconcile(ctx) }
