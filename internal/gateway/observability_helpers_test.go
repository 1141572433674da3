package gateway_test

import (
	"encoding/json"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/fixture"
)

// requireTool is fixture.Tool: the program's path, or a skip (a failure
// in CI).
func requireTool(t *testing.T, env, path, install string) string {
	t.Helper()
	return fixture.Tool(t, env, path, install)
}

// freePort is a loopback port nothing listens on just now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// startProcess runs a program until the test ends; its output goes to a
// buffer the test prints if it fails.
func startProcess(t *testing.T, name string, args ...string) {
	t.Helper()
	out := &fixture.Buffer{}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out.String())
		}
	})
}

// fetchJSON decodes the JSON answer of a GET into v; false if there is none
// (yet).
func fetchJSON(url string, v any) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(v) == nil
}

// waitFor polls cond until it holds; the deadline is generous, for a
// program starting up on a loaded machine, and says nothing of speed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
