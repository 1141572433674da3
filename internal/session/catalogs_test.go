package session_test

import (
	"strconv"
	"testing"

	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/session"
)

func TestSessionsOverTheSameBackendsShareOneCatalog(t *testing.T) {
	a, b := fixture.StartFaulty(t, "a"), fixture.StartFaulty(t, "b")
	f := newFactory(t, nil, session.CallLimits{}, httpBackend("a", a.URL), httpBackend("b", b.URL))
	first := newSession(t, f)
	if len(first.Catalog().Tools) == 0 {
		t.Fatal("the catalog lists no tools")
	}
	for range 3 {
		if s := newSession(t, f); s.Catalog() != first.Catalog() {
			t.Fatal("a session over the same backends built a catalog of its own")
		}
	}
	// The shared catalog still routes each session to its own backend
	// session: the counters count independently.
	s := newSession(t, f)
	for want := 1; want <= 2; want++ {
		if got := mustCall(t, s, "a_counter").Content[0].Text; got != strconv.Itoa(want) {
			t.Fatalf("counter = %s, want %d", got, want)
		}
	}
	if got := mustCall(t, first, "a_counter").Content[0].Text; got != "1" {
		t.Fatalf("another session's counter = %s, want 1", got)
	}
}
