package session

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/vmcp/vmcp/internal/aggregate"
	"github.com/vmcp/vmcp/internal/jsonrpc"
)

// Tasks (protocol 2025-11-25): a task-augmented request (params.task) makes
// its backend answer with a CreateTaskResult, and the client then polls
// tasks/get, tasks/result, tasks/cancel by task ID. Task IDs are the
// backends' own, passed through unchanged; the session remembers which
// backend answered each one, and asks the backends' tasks/list for an ID
// it does not know (a session taken over by another replica, an owner
// forgotten beyond maxTaskOwners). IDs are taken to be unique across a
// session's backends, as the UUIDs servers use are; should two backends
// report one ID, the one that reported it last owns it.

// ErrUnknownTask is returned for a task ID no backend of the session owns.
// It maps to -32602, as the spec asks for an unknown task.
var ErrUnknownTask = errors.New("unknown task")

// maxTaskOwners bounds the task owners a session remembers; the oldest
// are forgotten first, and found again through tasks/list if asked for.
const maxTaskOwners = 4096

// taskOwners maps task IDs to the backends that own them. The zero value
// is empty; safe for concurrent use.
type taskOwners struct {
	mu    sync.Mutex
	owner map[string]string // task ID -> backend name
	order []string          // task IDs, oldest first
}

func (t *taskOwners) record(id, backendName string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.owner == nil {
		t.owner = make(map[string]string)
	}
	if _, ok := t.owner[id]; !ok {
		t.order = append(t.order, id)
	}
	t.owner[id] = backendName
	if len(t.order) > maxTaskOwners {
		delete(t.owner, t.order[0])
		t.order[0] = ""
		t.order = t.order[1:]
	}
}

func (t *taskOwners) lookup(id string) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b, ok := t.owner[id]
	return b, ok
}

// Instructions returns the backends' initialize instructions, each under a
// heading naming its backend ("" if none gave any).
func (s *Session) Instructions() string { return s.instructions }

// TasksCapability returns the union of the backends' tasks capabilities,
// or nil if none declares one.
func (s *Session) TasksCapability() json.RawMessage {
	var caps []json.RawMessage
	for _, name := range s.taskBackends("") {
		raw, _ := jsonrpc.Member(s.backendCapabilities(name), "tasks")
		caps = append(caps, raw)
	}
	return aggregate.MergeCapability(caps)
}

// taskBackends lists, in config order, the backends whose tasks capability
// is declared and, if member is set, declares that member ("list").
func (s *Session) taskBackends(member string) []string {
	var out []string
	for _, m := range s.roster.Load().members() {
		name := m.name
		tasks, _ := jsonrpc.Member(s.backendCapabilities(name), "tasks")
		if len(tasks) == 0 || tasks[0] != '{' {
			continue
		}
		if member != "" {
			if v, _ := jsonrpc.Member(tasks, member); len(v) == 0 || string(v) == "null" {
				continue
			}
		}
		out = append(out, name)
	}
	return out
}

// noteTask records the owner of the task a task-augmented request created.
func (s *Session) noteTask(backendName string, params, res json.RawMessage) {
	if !bytes.Contains(params, []byte(`"task"`)) {
		return
	}
	if t, _ := jsonrpc.Member(params, "task"); len(t) == 0 || string(t) == "null" {
		return
	}
	task, _ := jsonrpc.Member(res, "task")
	raw, _ := jsonrpc.Member(task, "taskId")
	if id, ok := jsonrpc.Unquote(raw); ok && id != "" {
		s.tasks.record(id, backendName)
	}
}

// Task routes tasks/get, tasks/result or tasks/cancel to the backend that
// owns the task named by params.taskId.
func (s *Session) Task(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	if err := s.noBackends(); err != nil {
		return nil, err
	}
	id, err := paramString(params, "taskId")
	if err != nil {
		return nil, err
	}
	owner, ok := s.tasks.lookup(id)
	if !ok {
		if owner, err = s.findTask(ctx, id); err != nil {
			return nil, err
		}
	}
	return s.call(ctx, owner, method, params)
}

// findTask finds the owner of a task the session has not recorded: the
// only backend with tasks if there is one, else the one whose tasks/list
// has it.
func (s *Session) findTask(ctx context.Context, id string) (string, error) {
	if all := s.taskBackends(""); len(all) == 1 {
		return all[0], nil
	}
	if _, err := s.ListTasks(ctx); err != nil {
		return "", err
	}
	if owner, ok := s.tasks.lookup(id); ok {
		return owner, nil
	}
	return "", fmt.Errorf("%w: %q", ErrUnknownTask, id)
}

// ListTasks answers tasks/list: the tasks of every backend that supports
// listing them, in config order, each backend's pages followed to the end.
// A backend that fails is left out (and logged) unless all fail.
func (s *Session) ListTasks(ctx context.Context) ([]json.RawMessage, error) {
	if err := s.noBackends(); err != nil {
		return nil, err
	}
	var all []json.RawMessage
	var errs []error
	backends := s.taskBackends("list")
	for _, name := range backends {
		call := func(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
			return s.call(ctx, name, method, params)
		}
		tasks, err := listAll(ctx, call, name, "tasks/list", "tasks")
		if err != nil {
			s.factory.log.WarnContext(ctx, "listing a backend's tasks", "backend", name, "err", err)
			errs = append(errs, err)
			continue
		}
		for _, t := range tasks {
			raw, _ := jsonrpc.Member(t, "taskId")
			if id, ok := jsonrpc.Unquote(raw); ok && id != "" {
				s.tasks.record(id, name)
			}
		}
		all = append(all, tasks...)
	}
	if len(backends) > 0 && len(errs) == len(backends) {
		return nil, errors.Join(errs...)
	}
	return all, nil
}
