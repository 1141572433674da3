package backend

import (
	"strings"
	"testing"

	testfix "github.com/vmcp/vmcp/internal/fixture"
)

// TestStdioChildEnvironment: a child prints its whole environment to
// stderr, which vmcp logs. A secret in vmcp's own environment (another
// backend's token, the Redis password) must not be in it, unless the
// backend opts in with InheritEnv; PATH and the configured env are.
func TestStdioChildEnvironment(t *testing.T) {
	t.Setenv("VMCP_TEST_PLANTED", "planted-secret-0451")
	t.Setenv("HOME", t.TempDir())
	for _, inherit := range []bool{false, true} {
		logs := &logBuffer{}
		x := NewStdio(StdioOptions{
			Name: "envdump",
			// The child dumps its environment, then is the MCP server.
			Command:    []string{"/bin/sh", "-c", `env >&2; echo env-dumped >&2; exec "$0"`, stdioServer(t)},
			Env:        map[string]string{"CONFIGURED_VAR": "configured-value", "LANG": "C.UTF-8"},
			InheritEnv: inherit,
			Logger:     logs.logger(),
		})
		c, _ := connect(t, x, ConnectOptions{})
		mustCall(t, c, "count", nil)
		testfix.Eventually(t, "the environment in the log", func() bool { return strings.Contains(logs.String(), "env-dumped") })
		got := logs.String()
		// The configured values are there, redacted from the log.
		for _, want := range []string{"PATH=", "HOME=", "CONFIGURED_VAR=[REDACTED]", "LANG=[REDACTED]"} {
			if !strings.Contains(got, want) {
				t.Errorf("inheritEnv %v: the child's environment lacks %s:\n%s", inherit, want, got)
			}
		}
		if leaked := strings.Contains(got, "planted-secret-0451"); leaked != inherit {
			t.Errorf("inheritEnv %v: the child sees vmcp's planted variable: %v", inherit, leaked)
		}
		c.Close()
		x.Close()
	}
}
