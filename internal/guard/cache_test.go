package guard

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/vmcp/vmcp/internal/aggregate"
	"github.com/vmcp/vmcp/internal/backend"
	"github.com/vmcp/vmcp/internal/fixture"
	"github.com/vmcp/vmcp/internal/identity"
	"github.com/vmcp/vmcp/internal/policy"
	"github.com/vmcp/vmcp/internal/session"
	"github.com/vmcp/vmcp/internal/store"
)

func addTool(s *mcp.Server, name string) {
	s.AddTool(&mcp.Tool{Name: name, InputSchema: map[string]any{"type": "object"}}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: name}}}, nil
	})
}

// newSession builds a real session on the backend, decorated by dec.
func newSession(t *testing.T, url string, dec session.Decorator) *session.Session {
	t.Helper()
	conn := backend.NewStreamableHTTP(backend.HTTPOptions{Name: "b", URL: url, Timeout: 10 * time.Second})
	t.Cleanup(func() { conn.Close() })
	f := session.NewFactory(session.FactoryOptions{
		Backends:    []session.Backend{{Name: "b", Connector: conn}},
		Aggregation: aggregate.Options{Strategy: "prefix", PrefixFormat: "{backend}_"},
		Decorators:  []session.Decorator{dec},
	})
	s, err := f.New(context.Background(), &store.Metadata{ID: "test", Created: time.Now(), Identity: "ip:127.0.0.1", ProtocolVersion: "2025-06-18"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestDecisionCache: a caller's decisions are made once per catalog and
// kept per caller; a catalog change (list_changed) makes new ones.
func TestDecisionCache(t *testing.T) {
	mcps := mcp.NewServer(&mcp.Implementation{Name: "b", Version: "1"}, nil)
	addTool(mcps, "open")
	addTool(mcps, "admin_reset")
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return mcps }, nil))
	t.Cleanup(srv.Close)

	set, err := policy.New([]policy.Rule{
		{Allow: true, Tools: []string{"b_admin_*", "b_late_admin"}, When: `subject == "root"`},
		{Allow: false, Tools: []string{"b_admin_*", "b_late_admin"}},
		{Allow: true},
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	s := newSession(t, srv.URL+"/", Policy(set, nil, nil))
	ops := s.Operations().(*policyOps)
	root := identity.NewContext(context.Background(), &identity.Identity{Issuer: "i", Subject: "root"})
	user := identity.NewContext(context.Background(), &identity.Identity{Issuer: "i", Subject: "user"})
	names := func(ctx context.Context) []string {
		t.Helper()
		items, err := ops.List(ctx, session.ListTools)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, raw := range items {
			n, _ := stringMember(raw, "name")
			out = append(out, n)
		}
		slices.Sort(out)
		return out
	}
	view := func(ctx context.Context) *view {
		ops.mu.Lock()
		defer ops.mu.Unlock()
		return ops.views[callerKey(identity.FromContext(ctx))]
	}

	if got := names(root); !slices.Equal(got, []string{"b_admin_reset", "b_open"}) {
		t.Fatalf("root lists %v", got)
	}
	if got := names(user); !slices.Equal(got, []string{"b_open"}) {
		t.Fatalf("user lists %v", got)
	}
	rootView, userView := view(root), view(user)
	if rootView == nil || userView == nil || rootView == userView {
		t.Fatal("each caller needs a view of its own")
	}
	first, _ := ops.List(root, session.ListTools)
	again, _ := ops.List(root, session.ListTools)
	if view(root) != rootView || &first[0] != &again[0] {
		t.Error("a second list with the same catalog decided again")
	}

	// A new tool: the backend says list_changed, the session gets a new
	// catalog, and each caller gets new decisions.
	cat := s.Catalog()
	addTool(mcps, "late_admin")
	fixture.Eventually(t, "the catalog to change", func() bool { return s.Catalog() != cat })
	if got := names(root); !slices.Equal(got, []string{"b_admin_reset", "b_late_admin", "b_open"}) {
		t.Errorf("root lists %v after list_changed", got)
	}
	if got := names(user); !slices.Equal(got, []string{"b_open"}) {
		t.Errorf("user lists %v after list_changed", got)
	}
	if view(root) == rootView || view(root).cat != s.Catalog() {
		t.Error("the view did not follow the catalog")
	}
	if _, err := ops.Call(user, "tools/call", []byte(`{"name":"b_late_admin"}`)); err == nil {
		t.Error("user called b_late_admin")
	}
	if _, err := ops.Call(root, "tools/call", []byte(`{"name":"b_late_admin"}`)); err != nil {
		t.Errorf("root's call: %v", err)
	}
}
