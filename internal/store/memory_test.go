package store

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestMemoryCreateIfAbsentUpdateIfPresent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := NewMemory()
	m := &Metadata{ID: "a", Created: time.Unix(1, 0), ProtocolVersion: "2025-06-18",
		Backends: []Backend{{Name: "files", SessionID: "s1", Capabilities: json.RawMessage(`{}`)}}}
	if err := s.Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, m); !errors.Is(err, ErrExists) {
		t.Fatalf("second Create: got %v, want ErrExists", err)
	}
	// A stored copy is not affected by later changes to the caller's value.
	m.Backends[0].SessionID = "changed"
	got, err := s.Get(ctx, "a")
	if err != nil || got.Backends[0].SessionID != "s1" {
		t.Fatalf("Get = %+v, %v; want stored copy with s1", got, err)
	}
	got.Backends[0].SessionID = "s2"
	if err := s.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, "a"); got.Backends[0].SessionID != "s2" {
		t.Fatalf("after Update: %q", got.Backends[0].SessionID)
	}
	if existed, err := s.Delete(ctx, "a"); err != nil || !existed {
		t.Fatalf("Delete = %v, %v; want it found", existed, err)
	}
	if existed, err := s.Delete(ctx, "a"); err != nil || existed {
		t.Fatalf("deleting an absent session = %v, %v; want not found, no error", existed, err)
	}
	// A late update must not resurrect a deleted session.
	if err := s.Update(ctx, got); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Update after Delete: got %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, "a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: got %v, want ErrNotFound", err)
	}
	if s.Len() != 0 {
		t.Fatalf("Len = %d", s.Len())
	}
}

func TestMetadataRoundTripsJSON(t *testing.T) {
	t.Parallel()
	m := &Metadata{ID: "x", Created: time.Unix(10, 0).UTC(), LastSeen: time.Unix(20, 0).UTC(),
		Identity: "h", ProtocolVersion: "2025-11-25", ClientInfo: json.RawMessage(`{"name":"c"}`),
		ClientCapabilities: json.RawMessage(`{"sampling":{}}`),
		Backends:           []Backend{{Name: "b", SessionID: "sid", Capabilities: json.RawMessage(`{"tools":{}}`), ProtocolVersion: "2025-06-18"}}}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var back Metadata
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	b2, _ := json.Marshal(&back)
	if string(b) != string(b2) {
		t.Fatalf("round trip changed metadata:\n%s\n%s", b, b2)
	}
}
