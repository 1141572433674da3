package gateway_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/vmcp/vmcp/internal/config"
	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/gateway"
)

// threeTransports starts one backend per transport and a gateway over them.
type threeTransports struct {
	gw        *running
	web, docs *fixture.Backend
}

func startThree(t *testing.T) *threeTransports {
	t.Helper()
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	docs := fixture.StartSSE(t, exampleserver.Options{Name: "docs"})
	bin := fixture.ExampleServerBinary(t)
	cfg := baseConfig(
		config.Backend{Name: "web", Transport: config.TransportStreamableHTTP, URL: web.URL},
		config.Backend{Name: "docs", Transport: config.TransportSSE, URL: docs.URL},
		config.Backend{Name: "notes", Transport: config.TransportStdio, Command: []string{bin, "-transport", "stdio", "-name", "notes"}},
	)
	return &threeTransports{gw: startGateway(t, cfg, gateway.Options{}), web: web, docs: docs}
}

func TestEndToEndThreeTransports(t *testing.T) {
	f := startThree(t)
	ctx := context.Background()
	cs := connect(t, f.gw.URL)

	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, tl := range tools.Tools {
		names[tl.Name] = true
	}
	for _, want := range []string{"web_counter", "docs_counter", "notes_counter", "web_echo", "notes_note_add"} {
		if !names[want] {
			t.Errorf("tools/list lacks %q; got %v", want, names)
		}
	}

	// Each backend keeps its per-session state: one backend session per
	// vmcp session, reused for every call.
	for _, b := range []string{"web", "docs", "notes"} {
		for i := 1; i <= 5; i++ {
			if got := callText(t, cs, b+"_counter", nil); got != fmt.Sprint(i) {
				t.Fatalf("%s_counter call %d = %q, want %d", b, i, got, i)
			}
		}
	}
	if got := callText(t, cs, "notes_whoami", nil); !strings.Contains(got, "notes") {
		t.Errorf("notes_whoami = %q", got)
	}

	res, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "example://docs/info"})
	if err != nil || len(res.Contents) == 0 || !strings.Contains(res.Contents[0].Text, "docs") {
		t.Fatalf("read example://docs/info = %+v, %v", res, err)
	}
	res, err = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "example://web/items/42"})
	if err != nil || len(res.Contents) == 0 || !strings.Contains(res.Contents[0].Text, "42") {
		t.Fatalf("read templated resource = %+v, %v", res, err)
	}
	prompt, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "notes_greet", Arguments: map[string]string{"name": "Ada"}})
	if err != nil {
		t.Fatal(err)
	}
	if txt := prompt.Messages[0].Content.(*mcp.TextContent).Text; !strings.Contains(txt, "Ada") || !strings.Contains(txt, "notes") {
		t.Errorf("prompt text = %q", txt)
	}
	comp, err := cs.Complete(ctx, &mcp.CompleteParams{
		Ref:      &mcp.CompleteReference{Type: "ref/prompt", Name: "web_greet"},
		Argument: mcp.CompleteParamsArgument{Name: "name", Value: "al"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(comp.Completion.Values) != 2 {
		t.Errorf("completion values = %v, want alice and albert", comp.Completion.Values)
	}

	if n := f.web.Stats.Initializes(); n != 1 {
		t.Errorf("web backend saw %d initializes for one vmcp session, want 1", n)
	}
	if n := f.docs.Stats.Initializes(); n != 1 {
		t.Errorf("docs backend saw %d initializes for one vmcp session, want 1", n)
	}
	if pids, _ := fixture.Children("vmcp-example"); len(pids) != 1 {
		t.Errorf("stdio children = %v, want exactly one for one session", pids)
	}

	if err := cs.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "web backend session deleted", func() bool { return f.web.Stats.Deletes() == 1 })
	eventually(t, "docs backend session closed", func() bool { return f.docs.Stats.SessionsClosed() == 1 })
	eventually(t, "stdio child reaped", func() bool { pids, _ := fixture.Children("vmcp-example"); return len(pids) == 0 })
	if n := f.gw.Manager().Len(); n != 0 {
		t.Errorf("live sessions after close = %d", n)
	}
}

func TestConcurrentSessionsAreIsolated(t *testing.T) {
	f := startThree(t)
	const sessions, calls = 4, 6
	var wg sync.WaitGroup
	errs := make(chan error, sessions)
	for range sessions {
		cs := connect(t, f.gw.URL)
		wg.Go(func() {
			for i := 1; i <= calls; i++ {
				for _, b := range []string{"web", "notes"} {
					res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: b + "_counter"})
					if err != nil {
						errs <- err
						return
					}
					if got := res.Content[0].(*mcp.TextContent).Text; got != fmt.Sprint(i) {
						errs <- fmt.Errorf("%s_counter call %d = %s: sessions share state", b, i, got)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := f.web.Stats.Initializes(); n != sessions {
		t.Errorf("web backend initializes = %d, want one per vmcp session (%d)", n, sessions)
	}
	if pids, _ := fixture.Children("vmcp-example"); len(pids) != sessions {
		t.Errorf("stdio children = %d, want one per session (%d)", len(pids), sessions)
	}
}
