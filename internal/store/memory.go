package store

import (
	"context"
	"sync"
)

// Memory is an in-process Store, the default for a single replica.
type Memory struct {
	mu sync.Mutex
	m  map[string]*Metadata
}

// NewMemory returns an empty in-memory Store.
func NewMemory() *Memory { return &Memory{m: make(map[string]*Metadata)} }

// Create stores m unless its ID is taken.
func (s *Memory) Create(_ context.Context, m *Metadata) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[m.ID]; ok {
		return ErrExists
	}
	s.m[m.ID] = m.Clone()
	return nil
}

// Get returns a copy of the stored metadata.
func (s *Memory) Get(_ context.Context, id string) (*Metadata, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.m[id]
	if !ok {
		return nil, ErrNotFound
	}
	return m.Clone(), nil
}

// Update replaces the metadata of an existing session.
func (s *Memory) Update(_ context.Context, m *Metadata) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[m.ID]; !ok {
		return ErrNotFound
	}
	s.m[m.ID] = m.Clone()
	return nil
}

// Delete removes a session and reports whether it was there; deleting an
// absent one is not an error.
func (s *Memory) Delete(_ context.Context, id string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, existed := s.m[id]
	delete(s.m, id)
	return existed, nil
}

// Len reports how many sessions are stored.
func (s *Memory) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
