package exampleserver

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func TestCapabilities(t *testing.T) {
	t.Parallel()
	// Each entry connects a client to a server named name.
	transports := []struct {
		name    string
		connect func(t *testing.T, name string, copts *mcp.ClientOptions) *mcp.ClientSession
	}{
		{"streamable-http", func(t *testing.T, name string, copts *mcp.ClientOptions) *mcp.ClientSession {
			return startHTTP(t, Options{Name: name}, false).connect(t, copts)
		}},
		{"sse", func(t *testing.T, name string, copts *mcp.ClientOptions) *mcp.ClientSession {
			return startHTTP(t, Options{Name: name}, true).connectSSE(t, copts)
		}},
		{"stdio", connectStdio},
	}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			progress := make(chan *mcp.ProgressNotificationParams, 16)
			cs := tr.connect(t, "alpha", &mcp.ClientOptions{
				ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
					progress <- req.Params
				},
			})
			if got := cs.InitializeResult().ServerInfo.Name; got != "alpha" {
				t.Errorf("serverInfo.name = %q, want alpha", got)
			}
			t.Run("list", func(t *testing.T) { checkLists(t, cs) })
			t.Run("echo", func(t *testing.T) { checkEcho(t, cs) })
			t.Run("whoami", func(t *testing.T) {
				if got := text(t, call(t, cs, "whoami", nil)); got != "alpha" {
					t.Errorf("whoami = %q, want alpha", got)
				}
			})
			t.Run("counter", func(t *testing.T) { checkCounter(t, cs, 1, 2, 3) })
			t.Run("sleep_ms", func(t *testing.T) {
				if got := text(t, call(t, cs, "sleep_ms", map[string]any{"ms": 1})); got != "slept 1 ms" {
					t.Errorf("sleep_ms = %q", got)
				}
			})
			t.Run("fail", func(t *testing.T) {
				res := call(t, cs, "fail", map[string]any{"message": "boom"})
				if !res.IsError || text(t, res) != "boom" {
					t.Errorf("fail = isError %v, %q; want isError true, boom", res.IsError, text(t, res))
				}
			})
			t.Run("rich", func(t *testing.T) { checkRich(t, cs, "alpha") })
			t.Run("progress", func(t *testing.T) { checkProgress(t, cs, progress) })
			t.Run("notes", func(t *testing.T) { checkNotes(t, cs) })
			t.Run("resources", func(t *testing.T) { checkResources(t, cs, "alpha") })
			t.Run("prompt", func(t *testing.T) {
				res, err := cs.GetPrompt(t.Context(), &mcp.GetPromptParams{Name: "greet", Arguments: map[string]string{"name": "Ada"}})
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Messages) != 1 || res.Messages[0].Role != "user" {
					t.Fatalf("messages = %+v, want one user message", res.Messages)
				}
				if got := res.Messages[0].Content.(*mcp.TextContent).Text; got != "Hello, Ada! (from alpha)" {
					t.Errorf("greet = %q", got)
				}
			})
			t.Run("completion", func(t *testing.T) { checkCompletion(t, cs, "alpha") })
		})
	}
}

func checkLists(t *testing.T, cs *mcp.ClientSession) {
	tools, err := cs.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
		if tool.Name == "rich" && tool.OutputSchema == nil {
			t.Error("rich has no outputSchema")
		}
	}
	slices.Sort(names)
	want := []string{"counter", "echo", "fail", "note_add", "note_list", "progress", "rich", "sleep_ms", "whoami"}
	if !slices.Equal(names, want) {
		t.Errorf("tools = %v, want %v", names, want)
	}
	prompts, err := cs.ListPrompts(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(prompts.Prompts) != 1 || prompts.Prompts[0].Name != "greet" {
		t.Errorf("prompts = %+v, want greet", prompts.Prompts)
	}
}

func checkEcho(t *testing.T, cs *mcp.ClientSession) {
	const in = "héllo, \"world\"\n"
	res := call(t, cs, "echo", map[string]any{"text": in})
	if got := text(t, res); got != in {
		t.Errorf("echo text = %q, want %q", got, in)
	}
	if got := structured(t, res)["text"]; got != in {
		t.Errorf("echo structuredContent.text = %v, want %q", got, in)
	}
}

func checkCounter(t *testing.T, cs *mcp.ClientSession, want ...int) {
	t.Helper()
	for _, n := range want {
		res := call(t, cs, "counter", nil)
		if got := text(t, res); got != strconv.Itoa(n) {
			t.Fatalf("counter = %q, want %d", got, n)
		}
		if got := structured(t, res)["count"]; got != float64(n) {
			t.Fatalf("counter structuredContent.count = %v, want %d", got, n)
		}
	}
}

func checkRich(t *testing.T, cs *mcp.ClientSession, name string) {
	res := call(t, cs, "rich", nil)
	if res.IsError {
		t.Fatalf("rich failed: %v", res.Content)
	}
	if got := res.Meta["example/meta"]; got != "kept" {
		t.Errorf("_meta[example/meta] = %v, want kept", got)
	}
	if got := structured(t, res)["server"]; got != name {
		t.Errorf("structuredContent.server = %v, want %s", got, name)
	}
	var kinds []string
	for _, c := range res.Content {
		switch c := c.(type) {
		case *mcp.TextContent:
			kinds = append(kinds, "text")
		case *mcp.ImageContent:
			kinds = append(kinds, "image")
			if _, err := png.Decode(bytes.NewReader(c.Data)); err != nil || c.MIMEType != "image/png" {
				t.Errorf("image: %s, decode error %v", c.MIMEType, err)
			}
		case *mcp.EmbeddedResource:
			kinds = append(kinds, "resource")
			if c.Resource.URI != "example://"+name+"/info" {
				t.Errorf("embedded resource uri = %s", c.Resource.URI)
			}
		case *mcp.ResourceLink:
			kinds = append(kinds, "resource_link")
		default:
			t.Errorf("unexpected content %T", c)
		}
	}
	if want := []string{"text", "image", "resource", "resource_link"}; !slices.Equal(kinds, want) {
		t.Errorf("content kinds = %v, want %v", kinds, want)
	}
}

func checkProgress(t *testing.T, cs *mcp.ClientSession, progress <-chan *mcp.ProgressNotificationParams) {
	params := &mcp.CallToolParams{Name: "progress", Arguments: map[string]any{"steps": 3}}
	params.SetProgressToken("tok-1")
	res, err := cs.CallTool(t.Context(), params)
	if err != nil {
		t.Fatal(err)
	}
	if got := text(t, res); got != "done" {
		t.Errorf("progress = %q, want done", got)
	}
	// Notifications are dispatched separately from the response, so they may
	// still be on their way.
	for i := 1; i <= 3; i++ {
		p := recv(t, progress, "progress notifications")
		if p.ProgressToken != "tok-1" || p.Progress != float64(i) || p.Total != 3 {
			t.Errorf("notification %d = %+v", i, p)
		}
	}
}

func checkNotes(t *testing.T, cs *mcp.ClientSession) {
	if got := structured(t, call(t, cs, "note_list", nil))["notes"]; len(got.([]any)) != 0 {
		t.Fatalf("fresh session has notes %v", got)
	}
	call(t, cs, "note_add", map[string]any{"text": "buy milk"})
	call(t, cs, "note_add", map[string]any{"text": "call bob"})
	res := call(t, cs, "note_list", nil)
	if got := text(t, res); got != "buy milk\ncall bob" {
		t.Errorf("note_list = %q", got)
	}
}

func checkResources(t *testing.T, cs *mcp.ClientSession, name string) {
	list, err := cs.ListResources(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	info := "example://" + name + "/info"
	if len(list.Resources) != 1 || list.Resources[0].URI != info {
		t.Fatalf("resources = %+v, want %s", list.Resources, info)
	}
	read, err := cs.ReadResource(t.Context(), &mcp.ReadResourceParams{URI: info})
	if err != nil {
		t.Fatal(err)
	}
	if c := read.Contents[0]; c.MIMEType != "text/plain" || !strings.Contains(c.Text, name) {
		t.Errorf("info = %s %q, want text/plain mentioning %s", c.MIMEType, c.Text, name)
	}
	templates, err := cs.ListResourceTemplates(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := "example://" + name + "/items/{id}"
	if len(templates.ResourceTemplates) != 1 || templates.ResourceTemplates[0].URITemplate != tmpl {
		t.Fatalf("templates = %+v, want %s", templates.ResourceTemplates, tmpl)
	}
	item, err := cs.ReadResource(t.Context(), &mcp.ReadResourceParams{URI: "example://" + name + "/items/42"})
	if err != nil {
		t.Fatal(err)
	}
	if got := item.Contents[0].Text; got != "item 42" {
		t.Errorf("item = %q, want item 42", got)
	}
	if _, err := cs.ReadResource(t.Context(), &mcp.ReadResourceParams{URI: "example://" + name + "/nope"}); err == nil {
		t.Error("reading an unknown resource succeeded")
	}
}

func checkCompletion(t *testing.T, cs *mcp.ClientSession, name string) {
	tests := []struct {
		ref  *mcp.CompleteReference
		arg  string
		val  string
		want []string
	}{
		{&mcp.CompleteReference{Type: "ref/prompt", Name: "greet"}, "name", "al", []string{"alice", "albert"}},
		{&mcp.CompleteReference{Type: "ref/prompt", Name: "greet"}, "name", "", []string{"alice", "albert", "bob"}},
		{&mcp.CompleteReference{Type: "ref/prompt", Name: "greet"}, "name", "z", []string{}},
		{&mcp.CompleteReference{Type: "ref/resource", URI: "example://" + name + "/items/{id}"}, "id", "2", []string{"2"}},
		{&mcp.CompleteReference{Type: "ref/resource", URI: "example://" + name + "/items/{id}"}, "id", "", []string{"1", "2", "3"}},
	}
	for _, tt := range tests {
		res, err := cs.Complete(t.Context(), &mcp.CompleteParams{
			Ref:      tt.ref,
			Argument: mcp.CompleteParamsArgument{Name: tt.arg, Value: tt.val},
		})
		if err != nil {
			t.Fatalf("complete %s %q: %v", tt.arg, tt.val, err)
		}
		if !slices.Equal(res.Completion.Values, tt.want) {
			t.Errorf("complete %s %q = %v, want %v", tt.arg, tt.val, res.Completion.Values, tt.want)
		}
	}
}

// structured returns a result's structuredContent as a JSON object.
func structured(t *testing.T, res *mcp.CallToolResult) map[string]any {
	t.Helper()
	raw, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("structuredContent %s is not an object: %v", raw, err)
	}
	return m
}
