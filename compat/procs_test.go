package compat

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vmcp/vmcp/internal/fixture"
)

// modules is where `npm ci` installs this directory's pinned packages.
const modules = "node_modules/@modelcontextprotocol"

// entry points of the reference servers, run with node (no npx, so that
// nothing is downloaded while the suite runs).
var (
	everythingJS = filepath.Join(modules, "server-everything", "dist", "index.js")
	filesystemJS = filepath.Join(modules, "server-filesystem", "dist", "index.js")
	memoryJS     = filepath.Join(modules, "server-memory", "dist", "index.js")
)

// requireNPM checks that node is on the PATH and that every package pinned
// in package.json is installed at its pinned version. If not, the suite
// cannot run: under CI (CI=true) that fails the test, elsewhere it skips.
func requireNPM(t *testing.T) {
	t.Helper()
	problem := npmProblem()
	if problem == "" {
		return
	}
	msg := "compatibility suite needs the pinned npm packages: " + problem +
		"; install them with: (cd compat && npm ci)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg + " (this fails instead of skipping when CI=true)")
}

func npmProblem() string {
	if _, err := exec.LookPath("node"); err != nil {
		return "node is not on the PATH"
	}
	var pinned struct{ Dependencies map[string]string }
	if err := readJSON("package.json", &pinned); err != nil {
		return err.Error()
	}
	var problems []string
	for _, name := range slices.Sorted(maps.Keys(pinned.Dependencies)) {
		want := pinned.Dependencies[name]
		var got struct{ Version string }
		if err := readJSON(filepath.Join("node_modules", name, "package.json"), &got); err != nil {
			problems = append(problems, name+" is not installed")
		} else if got.Version != want {
			problems = append(problems, fmt.Sprintf("%s is %s, package.json pins %s", name, got.Version, want))
		}
	}
	return strings.Join(problems, ", ")
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// buildVMCP builds the real vmcp binary into dir, with -race when the
// suite itself runs under -race.
func buildVMCP(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "vmcp")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, "github.com/vmcp/vmcp/cmd/vmcp")...).CombinedOutput()
	if err != nil {
		t.Fatalf("go build vmcp: %v\n%s", err, out)
	}
	return bin
}

// proc is a child process whose stdout and stderr are collected in log.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *fixture.Buffer
	done chan struct{} // closed once the process has exited and been reaped
}

// startProc starts argv with env added to this process's environment. It
// is killed and reaped on cleanup if still running. lines, if set, sees
// every line of its stderr.
func startProc(t *testing.T, name string, env []string, lines func(string), argv ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(argv[0], argv[1:]...), log: &fixture.Buffer{}, done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout = p.log
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.log.WriteString(sc.Text() + "\n")
			if lines != nil {
				lines(sc.Text())
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	go func() {
		<-copied // Wait closes the pipe: read it to the end first
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	return p
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill ends the process with SIGKILL, as a crash would, and waits until it
// has been reaped.
func (p *proc) kill() {
	if !p.exited() {
		p.cmd.Process.Kill()
	}
	<-p.done
}

// everythingHTTP is server-everything over Streamable HTTP or legacy SSE
// on a fixed loopback port, which it keeps across a restart.
type everythingHTTP struct {
	mode string // "streamableHttp" or "sse"
	port int
	p    *proc
}

func startEverythingHTTP(t *testing.T, mode string) *everythingHTTP {
	t.Helper()
	e := &everythingHTTP{mode: mode, port: freePort(t)}
	e.start(t)
	return e
}

// start runs the server (again) on e.port and waits until it accepts
// connections.
func (e *everythingHTTP) start(t *testing.T) {
	t.Helper()
	e.p = startProc(t, "server-everything "+e.mode, []string{"PORT=" + strconv.Itoa(e.port)}, nil,
		"node", everythingJS, e.mode)
	waitListening(t, e.p, fmt.Sprintf("127.0.0.1:%d", e.port))
}

func (e *everythingHTTP) url() string {
	if e.mode == "sse" {
		return fmt.Sprintf("http://127.0.0.1:%d/sse", e.port)
	}
	return fmt.Sprintf("http://127.0.0.1:%d/mcp", e.port)
}

// freePort returns a loopback port that was free a moment ago. The npm
// servers take a port only from $PORT, so the suite must choose one.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitListening waits until addr accepts TCP connections, failing at once
// if p exits first.
func waitListening(t *testing.T, p *proc, addr string) {
	t.Helper()
	fixture.Eventually(t, p.name+" to listen on "+addr, func() bool {
		if p.exited() {
			t.Fatalf("%s exited before it listened; its output:\n%s", p.name, p.log.String())
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

// gateway is a running vmcp binary.
type gateway struct {
	*proc
	base     string // http://127.0.0.1:PORT
	mcp      string // base + /mcp
	reported atomic.Bool
}

var listeningLine = regexp.MustCompile(`msg="vmcp listening" url=(\S+)`)

// startGateway runs `vmcp serve --config cfg` on a free loopback port and
// waits until /readyz answers 200.
func startGateway(t *testing.T, bin, cfg string) *gateway {
	t.Helper()
	urls := make(chan string, 1)
	p := startProc(t, "vmcp", nil, func(line string) {
		if m := listeningLine.FindStringSubmatch(line); m != nil {
			select {
			case urls <- m[1]:
			default:
			}
		}
	}, bin, "serve", "--config", cfg, "--listen", "127.0.0.1:0")
	var mcpURL string
	fixture.Eventually(t, "vmcp to say it is listening", func() bool {
		if p.exited() {
			t.Fatalf("vmcp exited before it listened; its log:\n%s", p.log.String())
		}
		select {
		case mcpURL = <-urls:
			return true
		default:
			return false
		}
	})
	g := &gateway{proc: p, mcp: mcpURL, base: strings.TrimSuffix(mcpURL, "/mcp")}
	fixture.Eventually(t, "vmcp /readyz to answer 200", func() bool {
		code, _, err := g.get("/readyz")
		return err == nil && code == http.StatusOK
	})
	return g
}

// get fetches one of vmcp's HTTP endpoints.
func (g *gateway) get(path string) (int, []byte, error) {
	resp, err := http.Get(g.base + path)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// stop sends SIGTERM and waits for vmcp to exit, returning its exit code.
func (g *gateway) stop() int {
	if !g.exited() {
		g.cmd.Process.Signal(syscall.SIGTERM)
	}
	<-g.done
	return g.cmd.ProcessState.ExitCode()
}

// crashReport explains failures once vmcp has died: the reason is in its
// log, and every later failure follows from it. The log is shown the first
// time only.
func (g *gateway) crashReport() string {
	if !g.exited() {
		return ""
	}
	msg := "vmcp is no longer running (" + g.cmd.ProcessState.String() + ")"
	if g.reported.Swap(true) {
		return msg + "; its log is shown above"
	}
	return msg + "; the end of its log:\n" + tail(g.log.String(), 4000)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
