package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/exampleserver"
	"github.com/vmcp/vmcp/internal/fixture"
)

// buildVMCP builds this command once per test binary.
func buildVMCP(t *testing.T) string {
	t.Helper()
	return fixture.Binary(t, "./cmd/vmcp")
}

func TestVersionAndValidate(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	if code := run([]string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "vmcp ") {
		t.Fatalf("version: %d %q", code, out.String())
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("backends:\n  - name: a\n    transport: streamable-http\n    url: http://127.0.0.1:1/mcp\n"), 0o600)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("backends:\n  - name: a\n    transport: streamable-http\n    url: http://127.0.0.1:1/mcp\n    tiemout: 3s\n"), 0o600)
	out.Reset()
	if code := run([]string{"validate", "--config", good}, &out, &errb); code != 0 {
		t.Errorf("validate good: %d %s", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"validate", "--config", bad}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "bad.yaml:5: backends[0].tiemout: unknown field") {
		t.Errorf("validate bad: %d %q", code, errb.String())
	}
	// serve refuses the same config before it listens.
	errb.Reset()
	if code := run([]string{"serve", "--config", bad, "--listen", "127.0.0.1:0"}, &out, &errb); code == 0 || strings.Contains(errb.String(), "listening") {
		t.Errorf("serve with a bad config: %d %q", code, errb.String())
	}
	// validate passes only what serve starts with: no incomingAuth on a
	// non-loopback listener fails both, before anything listens.
	open := filepath.Join(dir, "open.yaml")
	os.WriteFile(open, []byte("listen: 192.0.2.1:4483\nbackends:\n  - name: a\n    transport: streamable-http\n    url: http://127.0.0.1:1/mcp\n"), 0o600)
	for _, cmd := range []string{"validate", "serve"} {
		errb.Reset()
		if code := run([]string{cmd, "--config", open}, &out, &errb); code != 1 || strings.Contains(errb.String(), "listening") ||
			!strings.Contains(errb.String(), "incomingAuth is not set and listen address 192.0.2.1:4483 is not loopback") {
			t.Errorf("%s with a non-loopback listener and no incomingAuth: %d %q", cmd, code, errb.String())
		}
	}
	// A TLS file that is not there stops serve before it listens too.
	noKey := filepath.Join(dir, "no-key.yaml")
	os.WriteFile(noKey, fmt.Appendf(nil, "backends:\n  - name: a\n    transport: streamable-http\n    url: http://127.0.0.1:1/mcp\nserver:\n  tls:\n    certFile: %s\n    keyFile: %s\n",
		filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")), 0o600)
	errb.Reset()
	if code := run([]string{"serve", "--config", noKey, "--listen", "127.0.0.1:0"}, &out, &errb); code == 0 ||
		strings.Contains(errb.String(), "listening") || !strings.Contains(errb.String(), "no-key.yaml:7: server.tls.certFile: with keyFile: open ") {
		t.Errorf("serve with a missing TLS file: %d %q", code, errb.String())
	}
}

// startVMCP runs the binary and returns its MCP URL, read from its log.
func startVMCP(t *testing.T, args ...string) (*exec.Cmd, string, *fixture.Buffer) {
	t.Helper()
	cmd := exec.Command(buildVMCP(t), args...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	logs := &fixture.Buffer{}
	urls := make(chan string, 1)
	re := regexp.MustCompile(`msg="vmcp listening" url=(\S+)`)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
	}()
	select {
	case u := <-urls:
		return cmd, u, logs
	case <-time.After(30 * time.Second):
		t.Fatal("vmcp never said it was listening")
	}
	return nil, "", nil
}

func post(t *testing.T, url, sid, body string) (string, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.Header.Get("Mcp-Session-Id"), string(b)
}

const initBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`

func TestDemoServesStatefulBackends(t *testing.T) {
	t.Parallel()
	_, url, _ := startVMCP(t, "serve", "--listen", "127.0.0.1:0")
	sid, _ := post(t, url, "", initBody)
	for i := 1; i <= 3; i++ {
		_, body := post(t, url, sid, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"notes_counter"}}`)
		if !strings.Contains(body, fmt.Sprintf(`"text":"%d"`, i)) {
			t.Fatalf("demo notes_counter call %d: %s", i, body)
		}
	}
	// vmcp health, as a container HEALTHCHECK runs it: 0 while vmcp
	// serves, 1 for a URL nothing answers at.
	var out, errb bytes.Buffer
	if code := run([]string{"health", "--url", strings.TrimSuffix(url, "/mcp") + "/health"}, &out, &errb); code != 0 || out.Len() != 0 {
		t.Errorf("vmcp health: %d %q %q", code, out.String(), errb.String())
	}
	if code := run([]string{"health", "--url", strings.TrimSuffix(url, "/mcp") + "/nothing"}, &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "404") {
		t.Errorf("vmcp health of a 404: %d %q", code, errb.String())
	}
}

func TestSIGTERMClosesSessionsAndExitsZero(t *testing.T) {
	t.Parallel()
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	stdio := fixture.ExampleServerBinary(t)
	cfg := filepath.Join(t.TempDir(), "vmcp.yaml")
	os.WriteFile(cfg, fmt.Appendf(nil, `backends:
  - name: web
    transport: streamable-http
    url: %s
  - name: local
    transport: stdio
    command: [%q, -transport, stdio, -name, local]
`, web.URL, stdio), 0o600)
	cmd, url, logs := startVMCP(t, "serve", "--config", cfg, "--listen", "127.0.0.1:0")
	// The startup probe opens and closes one backend session of its own.
	fixture.Eventually(t, "the startup probe of web", func() bool {
		return strings.Contains(logs.String(), `msg="backend reachable" backend=web`)
	})
	probed := web.Stats.Deletes()
	sid, _ := post(t, url, "", initBody)
	if _, body := post(t, url, sid, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"local_counter"}}`); !strings.Contains(body, `"text":"1"`) {
		t.Fatalf("call: %s", body)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("vmcp exited with %v after SIGTERM\n%s", err, logs)
		}
	case <-ctx.Done():
		t.Fatal("vmcp did not exit after SIGTERM")
	}
	if n := web.Stats.Deletes() - probed; n != 1 {
		t.Errorf("HTTP backend got %d DELETEs at shutdown, want 1", n)
	}
	// The stdio child logged through vmcp, tagged, and is gone.
	if !strings.Contains(logs.String(), `msg="backend stderr" backend=local line=`) {
		t.Errorf("stdio child's stderr not in vmcp's log:\n%s", logs)
	}
	if strings.Contains(logs.String(), sid) {
		t.Error("vmcp logged a session ID")
	}
}

// TestHashKey runs the built binary as a user would: the key on stdin,
// the hash on stdout, and the key nowhere in the output.
func TestHashKey(t *testing.T) {
	t.Parallel()
	bin := buildVMCP(t)
	// sha256("hello")
	const want = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\n"
	for _, in := range []string{"hello", "hello\n", "hello\r\n"} {
		cmd := exec.Command(bin, "hash-key")
		cmd.Stdin = strings.NewReader(in)
		out, err := cmd.Output()
		if err != nil || string(out) != want {
			t.Errorf("hash-key < %q = %q, %v; want %q", in, out, err, want)
		}
	}
	cmd := exec.Command(bin, "hash-key")
	cmd.Stdin = strings.NewReader("\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil || !strings.Contains(stderr.String(), "no key on stdin") {
		t.Errorf("empty key: %v %q", err, stderr.String())
	}
}

// TestSIGHUPReloadsTheConfig: SIGHUP makes vmcp serve read its config
// again, instead of ending it, and a live session sees the backend the
// new config adds.
func TestSIGHUPReloadsTheConfig(t *testing.T) {
	t.Parallel()
	web := fixture.StartHTTP(t, exampleserver.Options{Name: "web"})
	more := fixture.StartHTTP(t, exampleserver.Options{Name: "more"})
	cfg := filepath.Join(t.TempDir(), "vmcp.yaml")
	backend := func(name, url string) string {
		return fmt.Sprintf("  - name: %s\n    transport: streamable-http\n    url: %s\n", name, url)
	}
	os.WriteFile(cfg, []byte("backends:\n"+backend("web", web.URL)), 0o600)
	cmd, url, logs := startVMCP(t, "serve", "--config", cfg, "--listen", "127.0.0.1:0")
	sid, _ := post(t, url, "", initBody)
	// The watcher may see the write before the signal; either reload
	// applies it, and the signal's is logged.
	os.WriteFile(cfg, []byte("backends:\n"+backend("web", web.URL)+backend("more", more.URL)), 0o600)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	fixture.Eventually(t, "the reload", func() bool {
		_, body := post(t, url, sid, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"more_counter"}}`)
		return strings.Contains(body, `"text":"`)
	})
	fixture.Eventually(t, "the SIGHUP's reload", func() bool {
		return strings.Contains(logs.String(), `msg="SIGHUP: reloading the config"`)
	})
	if cmd.ProcessState != nil {
		t.Fatal("vmcp exited on SIGHUP")
	}
	if !strings.Contains(logs.String(), `msg="config reloaded"`) {
		t.Errorf("no reload in the log:\n%s", logs)
	}
}
