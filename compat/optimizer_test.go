package compat

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCompatOptimizer: with the optimizer on, the TypeScript SDK client
// lists two tools, finds server-filesystem's read_text_file (behind vmcp
// as fs_read_text_file) by asking for "read the contents of a file", and
// reads a real file with it through call_tool, and runs another tool as a
// task through call_tool. server-memory and
// server-everything sit behind the same vmcp, so the search has more than
// one server's tools to choose from.
func TestCompatOptimizer(t *testing.T) {
	t.Parallel()
	requireNPM(t)
	dir := t.TempDir()
	bin := buildVMCP(t, dir)
	root := mkdir(t, dir, "files")
	const content = "read through find_tool and call_tool\n"
	file := filepath.Join(root, "notes.txt")
	writeFile(t, file, content)
	cfg := filepath.Join(dir, "vmcp.yaml")
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return q(a)
	}
	writeFile(t, cfg, fmt.Sprintf(`backends:
  - name: fs
    transport: stdio
    command: [node, %s, %s]
  - name: memory
    transport: stdio
    command: [node, %s]
    env: {MEMORY_FILE_PATH: %s}
  - name: everything
    transport: stdio
    command: [node, %s, stdio]
optimizer: {enabled: true}
session:
  backendInitTimeout: 60s
`, abs(filesystemJS), q(root), abs(memoryJS), q(filepath.Join(dir, "memory.jsonl")), abs(everythingJS)))
	g := startGateway(t, bin, cfg)

	rs := runPlan(t, []step{
		connectVMCP("o", g.mcp, fileRoot(root)),
		listTools("tools", "o"),
		call("find", "o", "find_tool", map[string]any{"query": "read the contents of a file", "limit": 3}),
		call("read", "o", "call_tool", map[string]any{"name": "fs_read_text_file", "arguments": map[string]any{"path": file}}),
		call("direct", "o", "memory_read_graph", nil),
		{ID: "task", Op: "task", S: "o", Tool: "call_tool", Args: map[string]any{
			"name": "everything_simulate-research-query", "arguments": map[string]any{"topic": "tool search"}}},
		closeSession("o"),
	}, nil)
	if got := rs.get(t, "tools").Tools; !slices.Equal(got, []string{"find_tool", "call_tool"}) {
		t.Errorf("the client lists %v, want [find_tool call_tool]", got)
	}
	var found struct {
		Tools []struct {
			Name        string          `json:"name"`
			Description string          `json:"description"`
			InputSchema json.RawMessage `json:"inputSchema"`
		} `json:"tools"`
	}
	if err := json.Unmarshal([]byte(text(t, rs, "find")), &found); err != nil {
		t.Fatalf("find_tool's text is not its JSON: %v", err)
	}
	var names []string
	for _, f := range found.Tools {
		names = append(names, f.Name)
	}
	t.Logf("find_tool %q found %v", "read the contents of a file", names)
	if len(found.Tools) == 0 || found.Tools[0].Name != "fs_read_text_file" {
		t.Fatalf("find_tool found %v, want fs_read_text_file first", names)
	}
	if f := found.Tools[0]; f.Description == "" || !json.Valid(f.InputSchema) || len(f.InputSchema) < 10 {
		t.Errorf("fs_read_text_file found without its description or input schema: %+v", f)
	}
	if got := text(t, rs, "read"); got != content {
		t.Errorf("call_tool fs_read_text_file = %q, want the file's %q", got, content)
	}
	// A tool not listed stays callable by name.
	text(t, rs, "direct")
	// A task-augmented call_tool is the named tool's task: tasks/list,
	// tasks/get and tasks/result reach the backend that owns it.
	if r := rs.get(t, "task"); r.TaskID == "" || !r.Listed || r.Final != "completed" || !strings.Contains(r.Text, "# Research Report: tool search") {
		t.Errorf("task through call_tool: id %q listed %v final %q, result %q", r.TaskID, r.Listed, r.Final, tail(r.Text, 300))
	}
	rs.get(t, "o:close")
}
