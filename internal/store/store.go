// Package store keeps session metadata: the serializable part of a vmcp
// session that lets any replica find, check and resume it. The live runtime
// (backend clients, streams) never enters a Store.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Metadata is everything vmcp persists about one session. It must stay
// plain data: a Store may serialize it to JSON.
type Metadata struct {
	ID       string    `json:"id"`
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"lastSeen"`
	// Identity binds the session to who created it (an authenticated subject
	// or, when anonymous, the client address), hashed.
	Identity           string          `json:"identity,omitempty"`
	ProtocolVersion    string          `json:"protocolVersion"`
	ClientInfo         json.RawMessage `json:"clientInfo,omitempty"`
	ClientCapabilities json.RawMessage `json:"clientCapabilities,omitempty"`
	Backends           []Backend       `json:"backends,omitempty"`
}

// Backend is one backend session owned by a vmcp session.
type Backend struct {
	Name string `json:"name"`
	// SessionID is the backend's own Mcp-Session-Id ("" for stdio). Secret.
	SessionID string `json:"sessionId,omitempty"`
	// Capabilities and ProtocolVersion are what the backend answered to
	// initialize, kept so a resumed session needs no new initialize.
	Capabilities    json.RawMessage `json:"capabilities,omitempty"`
	ProtocolVersion string          `json:"protocolVersion,omitempty"`
}

// Clone returns a deep enough copy for a Store to keep (the raw JSON slices
// are never mutated in place, so they are shared).
func (m *Metadata) Clone() *Metadata {
	c := *m
	c.Backends = append([]Backend(nil), m.Backends...)
	return &c
}

var (
	// ErrNotFound means no session with that ID is stored (never was, was
	// deleted, or expired).
	ErrNotFound = errors.New("session not found")
	// ErrExists means Create found the ID already taken.
	ErrExists = errors.New("session already exists")
)

// Store holds Metadata. Implementations are safe for concurrent use.
//
// Create is create-if-absent and Update is update-if-present, so a session
// deleted on one replica is never brought back by a late write on another.
type Store interface {
	Create(ctx context.Context, m *Metadata) error
	Get(ctx context.Context, id string) (*Metadata, error)
	Update(ctx context.Context, m *Metadata) error
	// Delete reports whether the session was there: of two replicas
	// ending one session at once, only one finds it.
	Delete(ctx context.Context, id string) (existed bool, err error)
}
