package warm

import (
	"context"
	"time"

	"github.com/vmcp/vmcp/internal/session"
)

// Listen is Acquire for a subscriptions/listen stream, which holds its
// session for as long as it is open but serves no request: the session
// stays idle for Acquire, which prefers it to identity's other idle
// sessions, so that the caller's calls build their backend state
// (resource subscriptions, updates turned on) where its stream listens.
// While held it is neither reaped, nor evicted, nor retired by RetireAll:
// its holder brings it to a reload's lineup (session.Reconcile), and so
// does an Acquire handed it first. Listen joins the session another
// stream of identity holds, if any. Release as for Acquire, once, when
// the stream ends.
func (p *Pool) Listen(ctx context.Context, id string) (s *session.Session, release func(), err error) {
	return p.acquire(ctx, id, true)
}

// held reports whether a request or a listen stream holds e: it may not
// be closed under them.
func (e *entry) held() bool { return e.busy > 0 || e.listeners > 0 }

// listenedLocked returns ip's usable session a listen stream holds, busy
// or not, if any.
func (p *Pool) listenedLocked(ip *identityPool, now time.Time) *entry {
	for _, e := range ip.entries {
		if e.listeners > 0 && p.usable(e, now) {
			return e
		}
	}
	return nil
}

// hold adds n to e's requests, or to its listeners.
func (e *entry) hold(listen bool, n int) {
	if listen {
		e.listeners += n
	} else {
		e.busy += n
	}
}
