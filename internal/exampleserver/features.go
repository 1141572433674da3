package exampleserver

import (
	"context"
	"fmt"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type noteAddIn struct {
	Text string `json:"text" jsonschema:"the note to remember in this session"`
}

type noteAddOut struct {
	Count int `json:"count"`
}

type noteListOut struct {
	Notes []string `json:"notes"`
}

// addNotes registers note_add and note_list, which keep notes per session.
func (s *server) addNotes(srv *mcp.Server) {
	mcp.AddTool(srv, &mcp.Tool{Name: "note_add", Description: "Remember a note in this MCP session."}, s.noteAdd)
	mcp.AddTool(srv, &mcp.Tool{Name: "note_list", Description: "List the notes remembered in this MCP session."}, s.noteList)
}

func (s *server) noteAdd(_ context.Context, req *mcp.CallToolRequest, in noteAddIn) (*mcp.CallToolResult, noteAddOut, error) {
	st := s.sessions.get(req.Session)
	st.mu.Lock()
	st.notes = append(st.notes, in.Text)
	n := len(st.notes)
	st.mu.Unlock()
	return textResult(fmt.Sprintf("noted (%d in this session)", n)), noteAddOut{Count: n}, nil
}

func (s *server) noteList(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, noteListOut, error) {
	st := s.sessions.get(req.Session)
	st.mu.Lock()
	notes := append([]string{}, st.notes...) // never nil: the schema says array
	st.mu.Unlock()
	text := strings.Join(notes, "\n")
	if len(notes) == 0 {
		text = "(no notes in this session)"
	}
	return textResult(text), noteListOut{Notes: notes}, nil
}

func infoURI(name string) string { return "example://" + name + "/info" }

func itemTemplate(name string) string { return "example://" + name + "/items/{id}" }

func itemURI(name, id string) string { return "example://" + name + "/items/" + id }

func (s *server) infoText() string {
	return "Example MCP server " + s.name + " (vmcp example server " + Version + ")."
}

func (s *server) addResources(srv *mcp.Server) {
	srv.AddResource(&mcp.Resource{
		URI:         infoURI(s.name),
		Name:        "info",
		Description: "About this server.",
		MIMEType:    "text/plain",
	}, func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{
			{URI: req.Params.URI, MIMEType: "text/plain", Text: s.infoText()},
		}}, nil
	})
	srv.AddResourceTemplate(&mcp.ResourceTemplate{
		URITemplate: itemTemplate(s.name),
		Name:        "item",
		Description: "An item by id.",
		MIMEType:    "text/plain",
	}, func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		id, ok := strings.CutPrefix(req.Params.URI, itemURI(s.name, ""))
		if !ok || id == "" || strings.Contains(id, "/") {
			return nil, mcp.ResourceNotFoundError(req.Params.URI)
		}
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{
			{URI: req.Params.URI, MIMEType: "text/plain", Text: "item " + id},
		}}, nil
	})
}

func (s *server) addPrompts(srv *mcp.Server) {
	srv.AddPrompt(&mcp.Prompt{
		Name:        "greet",
		Description: "Greet someone by name.",
		Arguments:   []*mcp.PromptArgument{{Name: "name", Description: "who to greet", Required: true}},
	}, func(_ context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		name := req.Params.Arguments["name"]
		if name == "" {
			return nil, fmt.Errorf("prompt greet: missing argument %q", "name")
		}
		return &mcp.GetPromptResult{
			Description: "A greeting",
			Messages: []*mcp.PromptMessage{{
				Role:    "user",
				Content: &mcp.TextContent{Text: fmt.Sprintf("Hello, %s! (from %s)", name, s.name)},
			}},
		}, nil
	})
}

// complete offers values for the greet prompt's name and the item
// template's id. Anything else completes to nothing.
func (s *server) complete(_ context.Context, req *mcp.CompleteRequest) (*mcp.CompleteResult, error) {
	p := req.Params
	var candidates []string
	switch {
	case p.Ref == nil:
	case p.Ref.Type == "ref/prompt" && p.Ref.Name == "greet" && p.Argument.Name == "name":
		candidates = []string{"alice", "albert", "bob"}
	case p.Ref.Type == "ref/resource" && p.Ref.URI == itemTemplate(s.name) && p.Argument.Name == "id":
		candidates = []string{"1", "2", "3"}
	}
	values := []string{} // the wire format requires an array, never null
	for _, c := range candidates {
		if strings.HasPrefix(c, p.Argument.Value) {
			values = append(values, c)
		}
	}
	return &mcp.CompleteResult{Completion: mcp.CompletionResultDetails{Values: values, Total: len(values)}}, nil
}
