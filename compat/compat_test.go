package compat

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vmcp/vmcp/internal/fixture"
)

// Backend names in the suite's vmcp config. vmcp prefixes each tool with
// "<backend>_" (the default prefixFormat).
const (
	evStdio    = "everything-stdio"
	evSSE      = "everything-sse"
	evHTTP     = "everything-http"
	filesystem = "filesystem"
	memory     = "memory"
)

var (
	everythingBackends = []string{evStdio, evSSE, evHTTP}
	allBackends        = []string{evStdio, evSSE, evHTTP, filesystem, memory}
)

// suite is what every part of the compatibility test shares: one vmcp in
// front of all five backends.
type suite struct {
	g          *gateway
	http, sse  *everythingHTTP
	root1      string // the client's first root, holding hello.txt
	root2      string // its root after roots/list_changed, holding second.txt
	memoryFile string
}

const (
	helloText  = "hello from the compatibility suite\n"
	secondText = "the second root's file\n"
)

// TestCompat drives vmcp with the TypeScript SDK client, with the npm
// reference servers behind it. The parts run in order on one gateway: the
// restart part restarts a backend the others use, and the last part checks
// that vmcp is still healthy after everything before it.
func TestCompat(t *testing.T) {
	t.Parallel()
	requireNPM(t)
	s := newSuite(t)
	t.Run("ToolCountsMatchEachServer", s.toolCounts)
	t.Run("SessionsOneAfterAnother", s.sequentialSessions)
	t.Run("TwoSessionsAtOnce", s.concurrentSessions)
	t.Run("Features", s.features)
	t.Run("SamplingBesideOtherCalls", s.samplingBesideOtherCalls)
	t.Run("Tasks", s.tasks)
	t.Run("Memory", s.memory)
	t.Run("RootsReachServerFilesystem", s.roots)
	t.Run("HTTPBackendRestartedMidSession", s.restart)
	t.Run("HealthyAtTheEnd", s.healthy)
}

func newSuite(t *testing.T) *suite {
	dir := t.TempDir()
	bin := buildVMCP(t, dir)
	s := &suite{
		root1:      mkdir(t, dir, "root1"),
		root2:      mkdir(t, dir, "root2"),
		memoryFile: filepath.Join(dir, "memory.jsonl"),
	}
	writeFile(t, filepath.Join(s.root1, "hello.txt"), helloText)
	writeFile(t, filepath.Join(s.root2, "second.txt"), secondText)
	s.sse = startEverythingHTTP(t, "sse")
	s.http = startEverythingHTTP(t, "streamableHttp")

	cfg := filepath.Join(dir, "vmcp.yaml")
	writeFile(t, cfg, s.config(t))
	s.g = startGateway(t, bin, cfg)
	return s
}

// config puts every backend behind one vmcp. server-filesystem gets no
// directory arguments, so it can only serve the client's roots.
func (s *suite) config(t *testing.T) string {
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return q(a)
	}
	return fmt.Sprintf(`backends:
  - name: %s
    transport: stdio
    command: [node, %s, stdio]
  - name: %s
    transport: sse
    url: %s
  - name: %s
    transport: streamable-http
    url: %s
  - name: %s
    transport: stdio
    command: [node, %s]
  - name: %s
    transport: stdio
    command: [node, %s]
    env: {MEMORY_FILE_PATH: %s}
session:
  # Bounds, not assertions: node children start slowly on a busy machine.
  backendInitTimeout: 60s
`, evStdio, abs(everythingJS), evSSE, q(s.sse.url()), evHTTP, q(s.http.url()),
		filesystem, abs(filesystemJS), memory, abs(memoryJS), q(s.memoryFile))
}

// q quotes a string for YAML (a JSON string is a YAML double-quoted one).
func q(v string) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func mkdir(t *testing.T, parent, name string) string {
	t.Helper()
	d := filepath.Join(parent, name)
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	// server-filesystem compares real paths.
	real, err := filepath.EvalSymlinks(d)
	if err != nil {
		t.Fatal(err)
	}
	return real
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func fileRoot(dir string) root { return root{URI: "file://" + dir, Name: filepath.Base(dir)} }

// run runs a plan; a failure says so if vmcp has died meanwhile.
func (s *suite) run(t *testing.T, plan []step, onPause func(string)) results {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			if r := s.g.crashReport(); r != "" {
				t.Log(r)
			}
		}
	})
	return runPlan(t, plan, onPause)
}

// text returns a successful call's text, failing if the step failed or
// the tool reported an error.
func text(t *testing.T, rs results, id string) string {
	t.Helper()
	r := rs.get(t, id)
	if r.IsError {
		t.Fatalf("step %s: tool error: %s", id, r.Text)
	}
	return r.Text
}

// toolCounts lists every server's tools directly with the TypeScript
// client, then through vmcp, and compares them backend by backend. The
// client declares the same capabilities both times (server-everything
// registers some tools only for clients with sampling, elicitation or
// roots).
func (s *suite) toolCounts(t *testing.T) {
	direct := map[string]step{
		evStdio:    {Stdio: &stdioSpec{Command: "node", Args: []string{everythingJS, "stdio"}}},
		evSSE:      {SSE: s.sse.url()},
		evHTTP:     {URL: s.http.url()},
		filesystem: {Stdio: &stdioSpec{Command: "node", Args: []string{filesystemJS}}, Roots: []root{fileRoot(s.root1)}},
		memory:     {Stdio: &stdioSpec{Command: "node", Args: []string{memoryJS}, Env: map[string]string{"MEMORY_FILE_PATH": s.memoryFile}}},
	}
	var plan []step
	for _, b := range allBackends {
		c := direct[b]
		c.ID, c.Op, c.S = b+":connect", "connect", b
		plan = append(plan, c, listTools(b+":tools", b), closeSession(b))
	}
	plan = append(plan, connectVMCP("v", s.g.mcp, fileRoot(s.root1)), listTools("v:tools", "v"), closeSession("v"))
	rs := s.run(t, plan, nil)

	viaVMCP := map[string][]string{}
	for _, name := range rs.get(t, "v:tools").Tools {
		b, tool, ok := strings.Cut(name, "_")
		if !ok || !slices.Contains(allBackends, b) {
			t.Errorf("vmcp lists %q, which has no backend prefix", name)
			continue
		}
		viaVMCP[b] = append(viaVMCP[b], tool)
	}
	for _, b := range allBackends {
		own := slices.Sorted(slices.Values(rs.get(t, b+":tools").Tools))
		got := slices.Sorted(slices.Values(viaVMCP[b]))
		if len(own) == 0 {
			t.Errorf("%s lists no tools of its own", b)
		}
		if !slices.Equal(own, got) {
			t.Errorf("%s: vmcp lists %d tools, the server itself %d; missing %v, extra %v",
				b, len(got), len(own), minus(own, got), minus(got, own))
		}
	}
}

// minus returns the elements of a not in b.
func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// echoRound calls echo on every server-everything backend of session
// sess, with a message naming the session and round.
func echoRound(sess string, round int) []step {
	var steps []step
	for _, b := range everythingBackends {
		msg := fmt.Sprintf("%s-%d-%s", sess, round, b)
		steps = append(steps, call(msg, sess, b+"_echo", map[string]any{"message": msg}))
	}
	return steps
}

// checkEchoes checks the results of echoRound.
func checkEchoes(t *testing.T, rs results, sess string, round int) {
	t.Helper()
	for _, b := range everythingBackends {
		msg := fmt.Sprintf("%s-%d-%s", sess, round, b)
		if got, want := text(t, rs, msg), "Echo: "+msg; got != want {
			t.Errorf("%s echo = %q, want %q", b, got, want)
		}
	}
}

func (s *suite) sequentialSessions(t *testing.T) {
	const n = 3
	var plan []step
	for i := range n {
		sess := fmt.Sprintf("seq%d", i)
		plan = append(plan, connectVMCP(sess, s.g.mcp))
		plan = append(plan, echoRound(sess, 0)...)
		plan = append(plan, closeSession(sess))
	}
	rs := s.run(t, plan, nil)
	for i := range n {
		sess := fmt.Sprintf("seq%d", i)
		rs.get(t, sess+":connect")
		checkEchoes(t, rs, sess, 0)
		rs.get(t, sess+":close")
	}
}

func (s *suite) concurrentSessions(t *testing.T) {
	const rounds = 3
	branch := func(sess string) []step {
		steps := []step{connectVMCP(sess, s.g.mcp)}
		for r := range rounds {
			steps = append(steps, echoRound(sess, r)...)
		}
		return append(steps, closeSession(sess))
	}
	rs := s.run(t, []step{{Op: "parallel", Branches: [][]step{branch("a"), branch("b")}}}, nil)
	for _, sess := range []string{"a", "b"} {
		rs.get(t, sess+":connect")
		for r := range rounds {
			checkEchoes(t, rs, sess, r)
		}
		rs.get(t, sess+":close")
	}
}

// features calls echo, get-sum, a long-running operation with progress,
// sampling and elicitation on server-everything over each transport, in
// one vmcp session. Sampling and elicitation are answered by the client's
// handlers, so their results prove the requests crossed vmcp both ways.
func (s *suite) features(t *testing.T) {
	const steps = 3
	plan := []step{connectVMCP("f", s.g.mcp)}
	for _, b := range everythingBackends {
		plan = append(plan,
			call(b+":echo", "f", b+"_echo", map[string]any{"message": "hi " + b}),
			call(b+":sum", "f", b+"_get-sum", map[string]any{"a": 2, "b": 3}),
			step{ID: b + ":progress", Op: "call", S: "f", Tool: b + "_trigger-long-running-operation",
				Args: map[string]any{"duration": 0.6, "steps": steps}, Progress: true},
			call(b+":sampling", "f", b+"_trigger-sampling-request", map[string]any{"prompt": "p-" + b, "maxTokens": 10}),
			call(b+":elicitation", "f", b+"_trigger-elicitation-request", nil),
		)
	}
	plan = append(plan, closeSession("f"))
	rs := s.run(t, plan, nil)
	rs.get(t, "f:connect")

	t.Run("Instructions", func(t *testing.T) {
		// What a backend declares reaches the client (issue 16).
		if got := rs.get(t, "f:connect").Instructions; !strings.Contains(got, "Everything Server") {
			t.Errorf("initialize result's instructions lack server-everything's: %q", tail(got, 300))
		}
	})
	for _, b := range everythingBackends {
		t.Run(b, func(t *testing.T) {
			t.Run("Echo", func(t *testing.T) {
				if got, want := text(t, rs, b+":echo"), "Echo: hi "+b; got != want {
					t.Errorf("echo = %q, want %q", got, want)
				}
			})
			t.Run("Sum", func(t *testing.T) {
				if got, want := text(t, rs, b+":sum"), "The sum of 2 and 3 is 5."; got != want {
					t.Errorf("get-sum = %q, want %q", got, want)
				}
			})
			t.Run("Progress", func(t *testing.T) {
				r := rs.get(t, b+":progress")
				if !strings.Contains(r.Text, "Long running operation completed") || r.IsError {
					t.Errorf("result = %q (isError %v)", r.Text, r.IsError)
				}
				// The TS client may drop the last notification when the result
				// arrives with it (it forgets the token first), even talking
				// to the server directly; so at least one, all well formed.
				if len(r.Progress) == 0 {
					t.Fatal("no progress notification reached the client")
				}
				last := 0.0
				for _, p := range r.Progress {
					if p.Total != steps || p.Progress <= last || p.Progress > steps {
						t.Errorf("progress notifications %+v: want increasing steps out of %d", r.Progress, steps)
						break
					}
					last = p.Progress
				}
			})
			t.Run("Sampling", func(t *testing.T) {
				r := rs.get(t, b+":sampling")
				want := "compat-sampled: Resource trigger-sampling-request context: p-" + b
				if r.IsError || !strings.Contains(r.Text, want) {
					t.Errorf("result = %q (isError %v), want it to contain the client's answer %q", r.Text, r.IsError, want)
				}
				if r.Sampling != 1 {
					t.Errorf("the client's sampling handler ran %d times, want 1", r.Sampling)
				}
			})
			t.Run("Elicitation", func(t *testing.T) {
				r := rs.get(t, b+":elicitation")
				if r.IsError || !strings.Contains(r.Text, "- Name: Ada Lovelace") {
					t.Errorf("result = %q (isError %v), want the client's answer", r.Text, r.IsError)
				}
				if r.Elicitation != 1 {
					t.Errorf("the client's elicitation handler ran %d times, want 1", r.Elicitation)
				}
			})
		})
	}
}

// tasks runs server-everything's task tool, simulate-research-query, as a
// task over each transport, through vmcp: the task-augmented tools/call
// answers a CreateTaskResult, tasks/list names the task, tasks/get follows
// it, and tasks/result brings the report (issue 16: a backend's tasks
// capability and the tasks/* requests reach the backend that owns the
// task). An ambiguous query asks the client to clarify: the task waits in
// input_required, and the server sends its elicitation/create on the
// tasks/result request's stream, so the report carries the client's answer
// only if that request crossed vmcp both ways. All six tasks run at once
// in one session.
func (s *suite) tasks(t *testing.T) {
	var branches [][]step
	for _, b := range everythingBackends {
		tool := b + "_simulate-research-query"
		branches = append(branches,
			[]step{{ID: b + ":task", Op: "task", S: "k", Tool: tool, Args: map[string]any{"topic": "gateways over " + b}}},
			[]step{{ID: b + ":ambiguous", Op: "task", S: "k", Tool: tool, Args: map[string]any{"topic": "python", "ambiguous": true}}},
		)
	}
	rs := s.run(t, []step{connectVMCP("k", s.g.mcp), {Op: "parallel", Branches: branches}, closeSession("k")}, nil)
	rs.get(t, "k:connect")
	if caps := rs.get(t, "k:connect").Capabilities; !strings.Contains(string(caps["tasks"]), `"call"`) {
		t.Errorf("vmcp's capabilities lack tasks.requests.tools.call: tasks = %s", caps["tasks"])
	}
	check := func(t *testing.T, r result, report string) {
		t.Helper()
		if r.TaskID == "" || r.Created != "working" {
			t.Errorf("tools/call answered task %q in status %q, want a working task", r.TaskID, r.Created)
		}
		if !r.Listed {
			t.Errorf("tasks/list through vmcp did not name task %s", r.TaskID)
		}
		if r.IsError || !strings.Contains(r.Text, report) {
			t.Errorf("tasks/result = %q (isError %v), want the report %q", tail(r.Text, 300), r.IsError, report)
		}
		if r.Final != "completed" {
			t.Errorf("tasks/get after the result = %q, want completed (statuses seen %v)", r.Final, r.Statuses)
		}
	}
	for _, b := range everythingBackends {
		t.Run(b, func(t *testing.T) {
			t.Run("Task", func(t *testing.T) {
				check(t, rs.get(t, b+":task"), "# Research Report: gateways over "+b+"\n")
			})
			t.Run("InputRequired", func(t *testing.T) {
				r := rs.get(t, b+":ambiguous")
				t.Logf("task %s: statuses %v, then %s", r.TaskID, r.Statuses, r.Final)
				check(t, r, "**Clarification**: programming")
				if !slices.Contains(r.Statuses, "input_required") {
					t.Errorf("statuses %v: the ambiguous query never asked for input", r.Statuses)
				}
			})
		})
	}
}

// memory stores an entity in server-memory and reads it back.
func (s *suite) memory(t *testing.T) {
	entity := map[string]any{"name": "vmcp-compat", "entityType": "test", "observations": []string{"stored through vmcp"}}
	rs := s.run(t, []step{
		connectVMCP("m", s.g.mcp),
		call("create", "m", memory+"_create_entities", map[string]any{"entities": []any{entity}}),
		call("open", "m", memory+"_open_nodes", map[string]any{"names": []string{"vmcp-compat"}}),
		closeSession("m"),
	}, nil)
	text(t, rs, "create")
	if got := text(t, rs, "open"); !strings.Contains(got, "stored through vmcp") {
		t.Errorf("open_nodes = %q, want the stored observation", got)
	}
}

// roots: server-filesystem, started with no directories, asks vmcp for
// roots right after its handshake and must get the client's. After the
// client changes its roots, the notification must reach it too. The
// server applies new roots asynchronously, so the suite asks
// list_allowed_directories until they show (a bounded wait, not a timed
// assertion).
func (s *suite) roots(t *testing.T) {
	listDirs := func(id, until string) step {
		st := call(id, "r", filesystem+"_list_allowed_directories", nil)
		st.Until = until
		return st
	}
	plan := []step{
		connectVMCP("r", s.g.mcp, fileRoot(s.root1)),
		listDirs("dirs1", s.root1),
		call("read1", "r", filesystem+"_read_text_file", map[string]any{"path": filepath.Join(s.root1, "hello.txt")}),
	}
	for _, b := range everythingBackends {
		plan = append(plan, call(b+":roots", "r", b+"_get-roots-list", nil))
	}
	plan = append(plan,
		step{ID: "change", Op: "setRoots", S: "r", Roots: []root{fileRoot(s.root2)}},
		listDirs("dirs2", s.root2),
		call("read2", "r", filesystem+"_read_text_file", map[string]any{"path": filepath.Join(s.root2, "second.txt")}),
		closeSession("r"),
	)
	rs := s.run(t, plan, nil)
	rs.get(t, "r:connect")

	t.Run("Initial", func(t *testing.T) {
		if got := text(t, rs, "dirs1"); !strings.Contains(got, s.root1) {
			t.Fatalf("server-filesystem allows %q, want the client's root %s", got, s.root1)
		}
		if got := text(t, rs, "read1"); got != helloText {
			t.Errorf("read_text_file = %q, want %q", got, helloText)
		}
	})
	t.Run("ServerEverything", func(t *testing.T) {
		for _, b := range everythingBackends {
			if got := text(t, rs, b+":roots"); !strings.Contains(got, fileRoot(s.root1).URI) {
				t.Errorf("%s get-roots-list = %q, want the client's root", b, tail(got, 300))
			}
		}
	})
	t.Run("ListChanged", func(t *testing.T) {
		rs.get(t, "change")
		if got := text(t, rs, "dirs2"); !strings.Contains(got, s.root2) {
			t.Fatalf("after roots/list_changed server-filesystem allows %q, want %s", got, s.root2)
		}
		if got := text(t, rs, "read2"); got != secondText {
			t.Errorf("read_text_file = %q, want %q", got, secondText)
		}
	})
}

// restart kills server-everything's Streamable HTTP server mid-session (a
// crash: SIGKILL) and starts a new one on the same port, which knows
// nothing of vmcp's backend session and answers it with HTTP 400, as the
// TypeScript SDK's servers do. The next call through the same vmcp session
// must succeed, and say that the backend was re-initialized. Then once
// more with a call while the server is down: its error must name the
// backend, and the call after the restart must succeed too.
func (s *suite) restart(t *testing.T) {
	var paused []string
	rs := s.run(t, []step{
		connectVMCP("k", s.g.mcp),
		call("before", "k", evHTTP+"_echo", map[string]any{"message": "before"}),
		{ID: "p1", Op: "pause", Label: "restart"},
		call("after", "k", evHTTP+"_echo", map[string]any{"message": "after"}),
		call("sum", "k", evHTTP+"_get-sum", map[string]any{"a": 40, "b": 2}),
		call("other", "k", evStdio+"_echo", map[string]any{"message": "other"}),
		{ID: "p2", Op: "pause", Label: "kill"},
		call("down", "k", evHTTP+"_echo", map[string]any{"message": "down"}),
		{ID: "p3", Op: "pause", Label: "start"},
		call("up", "k", evHTTP+"_echo", map[string]any{"message": "up"}),
		closeSession("k"),
	}, func(label string) {
		paused = append(paused, label)
		switch label {
		case "restart":
			s.http.p.kill()
			s.http.start(t)
		case "kill":
			s.http.p.kill()
		case "start":
			s.http.start(t)
		}
	})
	rs.get(t, "k:connect")
	if got := text(t, rs, "before"); got != "Echo: before" {
		t.Fatalf("before the restart: echo = %q", got)
	}
	if want := []string{"restart", "kill", "start"}; !slices.Equal(paused, want) {
		t.Fatalf("the driver paused for %v, want %v", paused, want)
	}
	t.Run("NextCallSucceeds", func(t *testing.T) {
		r := rs.get(t, "after")
		if r.IsError || r.Text != "Echo: after" {
			t.Fatalf("first call after the restart = %q (isError %v), want Echo: after", r.Text, r.IsError)
		}
		var reinit []string
		json.Unmarshal(r.Meta["vmcp/backendReinitialized"], &reinit)
		if !slices.Contains(reinit, evHTTP) {
			t.Errorf("its _meta = %v, want vmcp/backendReinitialized naming %s", r.Meta, evHTTP)
		}
		if got := text(t, rs, "sum"); got != "The sum of 40 and 2 is 42." {
			t.Errorf("second call after the restart = %q", got)
		}
		if got := text(t, rs, "other"); got != "Echo: other" {
			t.Errorf("another backend of the session after the restart = %q", got)
		}
	})
	t.Run("ErrorWhileDownNamesBackend", func(t *testing.T) {
		r := rs["down"]
		t.Logf("a call while the server is down: ok %v, error %q, result %q", r.OK, r.Error, r.Text)
		switch {
		case r.OK && !r.IsError:
			t.Errorf("a call while the server is down succeeded: %q", r.Text)
		case !strings.Contains(r.Error+r.Text, evHTTP):
			t.Errorf("the error of a call while the server is down = %q, want it to name %s", r.Error+r.Text, evHTTP)
		}
		if got := text(t, rs, "up"); got != "Echo: up" {
			t.Errorf("first call after the server is back = %q", got)
		}
	})
	rs.get(t, "k:close")
}

// healthy checks what an operator would look at after all of the above:
// /health, /status (every session closed, every backend's breaker
// closed), a clean shutdown, and a log without a panic or a data race.
func (s *suite) healthy(t *testing.T) {
	if s.g.exited() {
		t.Fatal(s.g.crashReport())
	}
	if code, body, err := s.g.get("/health"); err != nil || code != http.StatusOK {
		t.Errorf("GET /health = %d %s %v", code, body, err)
	}
	type status struct {
		Sessions int `json:"sessions"`
		Gateway  struct {
			Backends []struct {
				Name   string `json:"name"`
				Health struct {
					State string `json:"state"`
				} `json:"health"`
			} `json:"backends"`
		} `json:"gateway"`
	}
	var st status
	fixture.Eventually(t, "/status to show no session left", func() bool {
		code, body, err := s.g.get("/status")
		if err != nil || code != http.StatusOK {
			t.Fatalf("GET /status = %d %s %v", code, body, err)
		}
		if err := json.Unmarshal(body, &st); err != nil {
			t.Fatalf("GET /status: %v: %s", err, body)
		}
		return st.Sessions == 0
	})
	var names []string
	for _, b := range st.Gateway.Backends {
		names = append(names, b.Name)
		if b.Health.State != "closed" {
			t.Errorf("/status: backend %s's circuit breaker is %q, want closed", b.Name, b.Health.State)
		}
	}
	if !slices.Equal(names, allBackends) {
		t.Errorf("/status lists backends %v, want %v", names, allBackends)
	}
	if code := s.g.stop(); code != 0 {
		t.Errorf("vmcp exited %d after SIGTERM, want 0", code)
	}
	// A recovered panic counts too: it is still a bug that a backend hit.
	log := strings.ToLower(s.g.log.String())
	for _, bad := range []string{"panic", "warning: data race", "fatal error:"} {
		if strings.Contains(log, bad) {
			t.Errorf("vmcp's log contains %q:\n%s", bad, tail(s.g.log.String(), 6000))
		}
	}
}
