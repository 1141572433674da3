package optimizer

import (
	"encoding/json"
	"fmt"
)

// ownTools returns find_tool's and call_tool's definitions, as tools/list
// shows them. Their descriptions are what a model reads to use them, so
// they say what to do in order.
func ownTools(defaultLimit, maxLimit int) []json.RawMessage {
	obj := func(props map[string]any, required ...string) map[string]any {
		return map[string]any{"type": "object", "properties": props, "required": required}
	}
	str := func(desc string) map[string]any { return map[string]any{"type": "string", "description": desc} }
	find := map[string]any{
		"name":  FindTool,
		"title": "Find a tool",
		"description": "Search the tools of every server behind this gateway by what you want to do, in plain words " +
			"(for example \"read the contents of a file\" or \"create an issue\"), or by part of a tool's name. " +
			"Returns the best matches, best first, each with its name, description and inputSchema. " +
			"Only find_tool and call_tool are listed; every other tool is found here. " +
			"Run the one you choose with call_tool.",
		"inputSchema": obj(map[string]any{
			"query": str("What you want to do, in plain words, or part of a tool's name."),
			"limit": map[string]any{
				"type": "integer", "minimum": 1, "maximum": maxLimit,
				"description": fmt.Sprintf("How many tools to return at most (default %d, at most %d).", defaultLimit, maxLimit),
			},
		}, "query"),
		"outputSchema": obj(map[string]any{
			"tools": map[string]any{
				"type":        "array",
				"description": "The matching tools, best first.",
				"items": obj(map[string]any{
					"name":        str("The tool's name: pass it to call_tool."),
					"description": str("What the tool does."),
					"inputSchema": map[string]any{"type": "object", "description": "The JSON Schema of the tool's arguments."},
				}, "name", "inputSchema"),
			},
		}, "tools"),
		"annotations": map[string]any{"readOnlyHint": true, "idempotentHint": true, "openWorldHint": false},
	}
	call := map[string]any{
		"name":  CallTool,
		"title": "Call a tool",
		"description": "Run a tool that find_tool returned: give its name, and arguments that match its inputSchema. " +
			"The result is that tool's own result. The tool is authorized and limited exactly as if it were called directly.",
		"inputSchema": obj(map[string]any{
			"name":      str("The tool's name, exactly as find_tool returned it."),
			"arguments": map[string]any{"type": "object", "description": "The tool's arguments, matching its inputSchema."},
		}, "name"),
	}
	out := make([]json.RawMessage, 0, 2)
	for _, t := range []map[string]any{find, call} {
		b, err := json.Marshal(t)
		if err != nil {
			panic(err) // maps of strings and numbers always marshal
		}
		out = append(out, b)
	}
	return out
}

// findResult is find_tool's CallToolResult: the tools as structured
// content, and as the same JSON in a text block for clients that read only
// text.
func findResult(tools []json.RawMessage) json.RawMessage {
	body, err := json.Marshal(struct {
		Tools []json.RawMessage `json:"tools"`
	}{tools})
	if err != nil {
		return toolError("find_tool: " + err.Error())
	}
	return result(string(body), body, false)
}

// toolError is a CallToolResult with isError set: the model reads msg and
// can correct its call.
func toolError(msg string) json.RawMessage { return result(msg, nil, true) }

func result(text string, structured json.RawMessage, isError bool) json.RawMessage {
	r := struct {
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
		Structured json.RawMessage `json:"structuredContent,omitempty"`
		IsError    bool            `json:"isError,omitempty"`
	}{Structured: structured, IsError: isError}
	r.Content = append(r.Content, struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}{"text", text})
	b, _ := json.Marshal(r) // strings and valid JSON always marshal
	return b
}
