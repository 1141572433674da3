// Command taskserver is a stdio MCP server with 2025-11-25 tasks, which
// the go-sdk does not implement: its tool "work" can run as a task. A task
// made with arguments {"hold":true} stays working until cancelled; any
// other completes at once, and the server then sends
// notifications/tasks/status. Every answer names the server (-name), so a
// test can tell which backend served a task request.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sync"
	"time"
)

type message struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method,omitempty"`
	Params  json.RawMessage `json:"params,omitempty"`
	Result  any             `json:"result,omitempty"`
	Error   *rpcError       `json:"error,omitempty"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

type task struct {
	TaskID        string `json:"taskId"`
	Status        string `json:"status"`
	StatusMessage string `json:"statusMessage"`
	CreatedAt     string `json:"createdAt"`
	LastUpdatedAt string `json:"lastUpdatedAt"`
	TTL           *int   `json:"ttl"`
}

func main() {
	name := flag.String("name", "tasks", "server name, used in task IDs and answers")
	instructions := flag.String("instructions", "", "initialize instructions")
	flag.Parse()

	var wmu sync.Mutex
	enc := json.NewEncoder(os.Stdout)
	send := func(m message) {
		m.JSONRPC = "2.0"
		wmu.Lock()
		defer wmu.Unlock()
		enc.Encode(m)
	}
	tasks := map[string]*task{}
	var order []string
	now := time.Now().UTC().Format(time.RFC3339)

	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	for in.Scan() {
		var m message
		if json.Unmarshal(in.Bytes(), &m) != nil || m.ID == nil {
			continue // notifications and responses need no answer
		}
		var p struct {
			ProtocolVersion string          `json:"protocolVersion"`
			TaskID          string          `json:"taskId"`
			Task            json.RawMessage `json:"task"`
			Arguments       struct {
				Hold bool `json:"hold"`
			} `json:"arguments"`
		}
		json.Unmarshal(m.Params, &p)
		answer := message{ID: m.ID}
		var then *message // sent after the answer
		fail := func(code int, format string, args ...any) {
			answer.Error = &rpcError{code, fmt.Sprintf(format, args...)}
		}
		t := tasks[p.TaskID]
		switch m.Method {
		case "initialize":
			res := map[string]any{
				"protocolVersion": p.ProtocolVersion,
				"capabilities": map[string]any{
					"tools": map[string]any{},
					"tasks": map[string]any{"list": map[string]any{}, "cancel": map[string]any{},
						"requests": map[string]any{"tools": map[string]any{"call": map[string]any{}}}},
				},
				"serverInfo": map[string]any{"name": *name, "version": "1"},
			}
			if *instructions != "" {
				res["instructions"] = *instructions
			}
			answer.Result = res
		case "ping":
			answer.Result = map[string]any{}
		case "tools/list":
			answer.Result = map[string]any{"tools": []any{map[string]any{
				"name": "work", "inputSchema": map[string]any{"type": "object"},
				"execution": map[string]any{"taskSupport": "optional"},
			}}}
		case "tools/call":
			if len(p.Task) == 0 {
				answer.Result = map[string]any{"content": []any{map[string]any{"type": "text", "text": *name + " worked"}}}
				break
			}
			t = &task{TaskID: fmt.Sprintf("%s-%d", *name, len(order)+1), Status: "working",
				StatusMessage: "owned by " + *name, CreatedAt: now, LastUpdatedAt: now}
			tasks[t.TaskID] = t
			order = append(order, t.TaskID)
			created := *t
			answer.Result = map[string]any{"task": created}
			if !p.Arguments.Hold {
				t.Status = "completed"
				then = &message{Method: "notifications/tasks/status", Params: mustJSON(t)}
			}
		case "tasks/get":
			if t == nil {
				fail(-32602, "Failed to retrieve task: Task not found")
				break
			}
			answer.Result = t
		case "tasks/result":
			if t == nil || t.Status != "completed" {
				fail(-32602, "no result for task %q on %s", p.TaskID, *name)
				break
			}
			answer.Result = map[string]any{
				"content": []any{map[string]any{"type": "text", "text": *name + " result of " + t.TaskID}},
				"_meta":   map[string]any{"io.modelcontextprotocol/related-task": map[string]any{"taskId": t.TaskID}},
			}
		case "tasks/list":
			list := []*task{}
			for _, id := range order {
				list = append(list, tasks[id])
			}
			answer.Result = map[string]any{"tasks": list}
		case "tasks/cancel":
			switch {
			case t == nil:
				fail(-32602, "Failed to retrieve task: Task not found")
			case t.Status != "working":
				fail(-32602, "task %q is already %s", t.TaskID, t.Status)
			default:
				t.Status, t.StatusMessage = "cancelled", "cancelled on "+*name
				answer.Result = t
			}
		default:
			fail(-32601, "method not found: %s", m.Method)
		}
		send(answer)
		if then != nil {
			send(*then)
		}
	}
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
