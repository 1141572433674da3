package compat

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
)

// The TypeScript SDK v2 client, pinned to 2026-07-28 and in auto mode,
// speaks the modern era to vmcp: it lists the tools and calls a stateful
// tool, whose state (a counter in the backend session) carries over
// between calls, and between the two clients of one identity (anonymous)
// that the warm pool serves from one backend session.
func TestModernTSClientV2(t *testing.T) {
	t.Parallel()
	requireNPM(t)
	dir := t.TempDir()
	bin := buildVMCP(t, dir)
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	cfg := filepath.Join(dir, "vmcp.yaml")
	writeFile(t, cfg, fmt.Sprintf("backends:\n  - name: web\n    transport: streamable-http\n    url: %s\n", q(web.URL)))
	g := startGateway(t, bin, cfg)
	next := 1
	for _, mode := range []string{"pin", "auto"} {
		t.Run(mode, func(t *testing.T) {
			out, err := exec.CommandContext(t.Context(), "node", "modern.mjs", g.mcp, mode, "web_counter", "3").Output()
			var res struct {
				ProtocolVersion string   `json:"protocolVersion"`
				Tools           []string `json:"tools"`
				Texts           []string `json:"texts"`
				Error           string   `json:"error"`
			}
			if jerr := json.Unmarshal(out, &res); jerr != nil || res.Error != "" {
				t.Fatalf("modern.mjs %s: %v %s %s", mode, err, res.Error, out)
			}
			if res.ProtocolVersion != "2026-07-28" {
				t.Errorf("negotiated %q, want 2026-07-28", res.ProtocolVersion)
			}
			if !slices.Contains(res.Tools, "web_counter") {
				t.Fatalf("tools = %v, want web_counter", res.Tools)
			}
			for _, text := range res.Texts {
				if !strings.Contains(text, fmt.Sprint(next)) {
					t.Fatalf("counter said %q, want %d: the backend state did not carry over", text, next)
				}
				next++
			}
		})
	}
	// The pool may build a second warm session when two requests overlap
	// (a discover probe and a list); never one per request.
	if n := web.Stats.Initializes(); n < 1 || n > 2 {
		t.Errorf("backend initializes = %d for 6 calls, want 1 or 2 (warm sessions, none per request)", n)
	}
}
