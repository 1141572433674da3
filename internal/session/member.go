package session

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/vmcp/vmcp/internal/backend"
)

// member is one backend inside a session: its connector and the live
// client the session owns.
type member struct {
	name      string
	connector backend.Connector

	mu     sync.Mutex
	client backend.Client // nil when the backend failed to initialize
	closed bool
}

func (m *member) current() backend.Client {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.client
}

func (m *member) call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	c := m.current()
	if c == nil {
		return nil, fmt.Errorf("backend %q: not connected in this session: %w", m.name, backend.ErrUnavailable)
	}
	return c.Call(ctx, method, params)
}

// close closes the client once; the member cannot be used afterwards.
func (m *member) close() error {
	m.mu.Lock()
	c := m.client
	m.client, m.closed = nil, true
	m.mu.Unlock()
	if c == nil {
		return nil
	}
	return c.Close()
}
