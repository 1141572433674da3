// Package toolsearch ranks MCP tools against a natural-language query. Its
// BM25 index weighs a tool's name (split into words), description, and
// parameter names and descriptions as separate fields (BM25F), and stems
// English words, so "read the contents of a file" finds read_text_file.
//
// An Index is built once and then only read: Search is safe for concurrent
// use. It runs in process; there is no service to call.
package toolsearch

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"
)

// Doc is what the index knows of one tool.
type Doc struct {
	Name        string
	Title       string
	Description string
	Params      []Param
}

// Param is one parameter of a tool's input schema.
type Param struct {
	Name        string
	Description string
}

// maxParams bounds how many parameters of one tool are indexed, so that a
// backend's enormous schema cannot make the index enormous.
const maxParams = 64

// ParseTool reads a Doc from one tool of a tools/list result: its name,
// title (or annotations.title), description, and the top-level properties
// of its inputSchema (names and descriptions, in name order).
func ParseTool(raw json.RawMessage) (Doc, error) {
	var t struct {
		Name        string `json:"name"`
		Title       string `json:"title"`
		Description string `json:"description"`
		Annotations struct {
			Title string `json:"title"`
		} `json:"annotations"`
		InputSchema struct {
			Properties map[string]struct {
				Title       string `json:"title"`
				Description string `json:"description"`
			} `json:"properties"`
		} `json:"inputSchema"`
	}
	if err := json.Unmarshal(raw, &t); err != nil {
		return Doc{}, err
	}
	if t.Name == "" {
		return Doc{}, errors.New("tool has no name")
	}
	d := Doc{Name: t.Name, Title: t.Title, Description: t.Description}
	if d.Title == "" {
		d.Title = t.Annotations.Title
	}
	for _, name := range slices.Sorted(maps.Keys(t.InputSchema.Properties)) {
		if len(d.Params) == maxParams {
			break
		}
		p := t.InputSchema.Properties[name]
		desc := p.Description
		if p.Title != "" {
			desc = p.Title + ". " + desc
		}
		d.Params = append(d.Params, Param{Name: name, Description: desc})
	}
	return d, nil
}
