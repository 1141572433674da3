package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
)

// probeConfig writes a config with a reachable stdio backend and a
// reachable HTTP backend, plus an unreachable one if dead is set.
func probeConfig(t *testing.T, dead bool) string {
	t.Helper()
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	yaml := fmt.Sprintf(`backends:
  - name: web
    transport: streamable-http
    url: %s
    headers: {Authorization: "Bearer tok-secret-123"}
  - name: local
    transport: stdio
    command: [%q, -transport, stdio, -name, local]
`, web.URL, fixture.ExampleServerBinary(t))
	if dead {
		yaml += fmt.Sprintf("  - name: gone\n    transport: streamable-http\n    url: %s\n", fixture.DeadURL(t))
	}
	path := filepath.Join(t.TempDir(), "vmcp.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestValidateProbe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		dead     bool
		wantCode int
		want     []string
	}{
		{"all reachable", false, 0, []string{"web: reachable (streamable-http, protocol ", "local: reachable (stdio, protocol "}},
		// The default protocol, auto, first asks server/discover.
		{"one down", true, 1, []string{"web: reachable", "local: reachable", "gone: unreachable (streamable-http): unreachable: server/discover: backend unavailable: "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := probeConfig(t, tt.dead)
			var out, errb bytes.Buffer
			code := run([]string{"validate", "--config", cfg, "--probe"}, &out, &errb)
			if code != tt.wantCode {
				t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, &out, &errb)
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(lines) != 1+len(tt.want) {
				t.Fatalf("stdout has %d lines, want the ok line and one per backend:\n%s", len(lines), &out)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(lines[i+1], w) {
					t.Errorf("line %d = %q, want it to start with %q", i+2, lines[i+1], w)
				}
			}
			if tt.dead && !strings.Contains(errb.String(), "1 of 3 backends unreachable") {
				t.Errorf("stderr = %q, want the count of unreachable backends", &errb)
			}
			if strings.Contains(out.String()+errb.String(), "tok-secret") {
				t.Error("a header value reached the output")
			}
		})
	}
	// Without --probe nothing is contacted: the dead backend passes.
	var out, errb bytes.Buffer
	if code := run([]string{"validate", "--config", probeConfig(t, true)}, &out, &errb); code != 0 {
		t.Errorf("validate without --probe: %d %s", code, &errb)
	}
}

// A backend whose tools/list is over its maxResponseBytes would be left
// out of every session: the probe says so, naming the setting.
func TestValidateProbeListsTools(t *testing.T) {
	t.Parallel()
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	path := filepath.Join(t.TempDir(), "vmcp.yaml")
	yaml := fmt.Sprintf("backends:\n  - name: web\n    transport: streamable-http\n    url: %s\n    protocol: legacy\n    maxResponseBytes: 1500\n", web.URL)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"validate", "--config", path, "--probe"}, &out, &errb); code != 1 {
		t.Fatalf("exit code %d, want 1\nstdout:\n%s\nstderr:\n%s", code, &out, &errb)
	}
	if !strings.Contains(out.String(), "web: ") || !strings.Contains(out.String(), "tools/list") || !strings.Contains(out.String(), "maxResponseBytes (1500 bytes)") {
		t.Errorf("stdout = %q, want web's tools/list over maxResponseBytes", &out)
	}
}

func TestServeProbesBackendsAtStartup(t *testing.T) {
	t.Parallel()
	_, url, logs := startVMCP(t, "serve", "--config", probeConfig(t, true), "--listen", "127.0.0.1:0")
	for _, want := range []string{
		`level=INFO msg="backend reachable" backend=web transport=streamable-http protocol=`,
		`level=INFO msg="backend reachable" backend=local transport=stdio protocol=`,
		`level=WARN msg="backend unreachable" backend=gone transport=streamable-http category=unreachable reason="server/discover: backend unavailable: `,
	} {
		fixture.Eventually(t, want, func() bool { return strings.Contains(logs.String(), want) })
	}
	// vmcp keeps serving, and /status shows each probe's outcome.
	status := get(t, strings.TrimSuffix(url, "/mcp")+"/status")
	var st struct {
		Gateway struct {
			Backends []struct {
				Name  string
				Probe *struct {
					Reachable bool
					Category  string
				}
				Health struct{ ConsecutiveFailures int }
			}
		}
	}
	if err := json.Unmarshal([]byte(status), &st); err != nil {
		t.Fatalf("/status: %v\n%s", err, status)
	}
	want := map[string]string{"web": "", "local": "", "gone": "unreachable"}
	for _, b := range st.Gateway.Backends {
		if b.Probe == nil || b.Probe.Reachable != (want[b.Name] == "") || b.Probe.Category != want[b.Name] {
			t.Errorf("/status: backend %s probe = %+v, want category %q", b.Name, b.Probe, want[b.Name])
		}
		if fails := b.Health.ConsecutiveFailures; fails != map[bool]int{true: 1}[b.Name == "gone"] {
			t.Errorf("/status: backend %s has %d failures in its breaker", b.Name, fails)
		}
	}
	if strings.Contains(logs.String(), "tok-secret") || strings.Contains(status, "tok-secret") {
		t.Error("a header value reached the log or /status")
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, b)
	}
	return string(b)
}

// A stdio backend that prints why it cannot start and exits: validate
// --probe shows its words (redacted), and not those of a healthy backend.
func TestValidateProbeShowsWhatAFailedChildSaid(t *testing.T) {
	t.Parallel()
	yaml := fmt.Sprintf(`backends:
  - name: chatty
    transport: stdio
    command: [sh, -c, 'echo all is well >&2; exec "$$0" -transport stdio -name chatty', %q]
  - name: broken
    transport: stdio
    command: [sh, -c, 'echo "usage: broken DIR (token $$TOKEN)" >&2; exit 2']
    env: {TOKEN: env-secret-4711}
`, fixture.ExampleServerBinary(t))
	path := filepath.Join(t.TempDir(), "vmcp.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"validate", "--config", path, "--probe"}, &out, &errb); code != 1 {
		t.Fatalf("exit code %d, want 1\nstdout:\n%s\nstderr:\n%s", code, &out, &errb)
	}
	if !strings.Contains(out.String(), "chatty: reachable") || !strings.Contains(out.String(), "broken: unreachable (stdio)") {
		t.Errorf("stdout:\n%s", &out)
	}
	if !strings.Contains(errb.String(), `backend=broken line="usage: broken DIR (token `) {
		t.Errorf("stderr does not show what the failed child said:\n%s", &errb)
	}
	if strings.Contains(errb.String(), "all is well") {
		t.Errorf("stderr shows a reachable backend's output:\n%s", &errb)
	}
	if strings.Contains(out.String()+errb.String(), "env-secret-4711") {
		t.Error("an env value reached the output")
	}
}
