package frontend

import "sync/atomic"

// mrtrCounts counts what the multi round-trip calls of modern clients did
// since the server started. Safe for concurrent use.
type mrtrCounts struct {
	inputRequired atomic.Uint64 // rounds answered InputRequiredResult; the call waits
	resumed       atomic.Uint64 // retries that took a waiting call up again
	refused       atomic.Uint64 // rounds that could not wait: too many calls waiting
	invalidState  atomic.Uint64 // retries whose requestState failed verification
	expiredState  atomic.Uint64 // retries whose requestState had expired
	notWaiting    atomic.Uint64 // retries for a call that no longer waits
}

// MRTRStats is what the multi round-trip calls of modern clients did:
// those waiting for a retry now and, since start, each outcome.
type MRTRStats struct {
	Waiting int
	// InputRequired rounds were answered with an InputRequiredResult;
	// Resumed retries answered a waiting call; Expired calls waited for
	// their retry longer than modern.inputTimeout; Refused rounds could
	// not wait (modern.maxWaitingCalls).
	InputRequired, Resumed, Expired, Refused uint64
	// Retries refused: a requestState that failed verification (tampered,
	// another caller's, another request's), one that had expired, and one
	// whose call no longer waits.
	InvalidState, ExpiredState, NotWaiting uint64
}

// MRTRStats returns the counts of the modern era's multi round-trip calls.
func (s *Server) MRTRStats() MRTRStats {
	h := s.modern
	c := &h.counts
	return MRTRStats{
		Waiting:       h.waiting.Len(),
		InputRequired: c.inputRequired.Load(),
		Resumed:       c.resumed.Load(),
		Expired:       h.waiting.Expired(),
		Refused:       c.refused.Load(),
		InvalidState:  c.invalidState.Load(),
		ExpiredState:  c.expiredState.Load(),
		NotWaiting:    c.notWaiting.Load(),
	}
}
