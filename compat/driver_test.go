package compat

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"testing"
	"time"
)

// step is one step of a driver.mjs plan; driver.mjs documents the ops.
type step struct {
	ID       string         `json:"id,omitempty"`
	Op       string         `json:"op"`
	S        string         `json:"s,omitempty"`
	URL      string         `json:"url,omitempty"`
	SSE      string         `json:"sse,omitempty"`
	Stdio    *stdioSpec     `json:"stdio,omitempty"`
	Roots    []root         `json:"roots,omitempty"`
	Tool     string         `json:"tool,omitempty"`
	Args     map[string]any `json:"args,omitempty"`
	Progress bool           `json:"progress,omitempty"`
	Until    string         `json:"until,omitempty"`
	Label    string         `json:"label,omitempty"`
	Branches [][]step       `json:"branches,omitempty"`
}

type stdioSpec struct {
	Command string            `json:"command"`
	Args    []string          `json:"args,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
}

type root struct {
	URI  string `json:"uri"`
	Name string `json:"name"`
}

// result is a step's line of driver output.
type result struct {
	ID    string `json:"id"`
	OK    bool   `json:"ok"`
	Error string `json:"error"`
	Pause string `json:"pause"`
	// connect
	ServerName   string                     `json:"serverName"`
	Instructions string                     `json:"instructions"`
	Capabilities map[string]json.RawMessage `json:"capabilities"`
	// listTools
	Tools []string `json:"tools"`
	// call
	Text        string                     `json:"text"`
	IsError     bool                       `json:"isError"`
	Meta        map[string]json.RawMessage `json:"meta"`
	Progress    []progress                 `json:"progress"`
	Sampling    int                        `json:"sampling"`
	Elicitation int                        `json:"elicitation"`
	RootsAsked  int                        `json:"rootsAsked"`

	// task (and Text, IsError, Elicitation)
	TaskID   string   `json:"taskId"`
	Created  string   `json:"created"`
	Listed   bool     `json:"listed"`
	Statuses []string `json:"statuses"`
	Final    string   `json:"final"`
	// the last line
	Done bool `json:"done"`
}

type progress struct {
	Progress float64 `json:"progress"`
	Total    float64 `json:"total"`
}

// Step constructors, so that plans read as what they do.

func connectVMCP(s, url string, roots ...root) step {
	return step{ID: s + ":connect", Op: "connect", S: s, URL: url, Roots: roots}
}

func call(id, s, tool string, args map[string]any) step {
	return step{ID: id, Op: "call", S: s, Tool: tool, Args: args}
}

func listTools(id, s string) step { return step{ID: id, Op: "listTools", S: s} }

func closeSession(s string) step { return step{ID: s + ":close", Op: "close", S: s} }

// results are a plan's step results by step ID.
type results map[string]result

// get returns the result of step id, failing the test if the step did not
// run or failed.
func (rs results) get(t *testing.T, id string) result {
	t.Helper()
	r, ok := rs[id]
	if !ok {
		t.Fatalf("step %s: no result", id)
	}
	if !r.OK {
		t.Fatalf("step %s failed: %s", id, r.Error)
	}
	return r
}

// runPlan runs driver.mjs on plan. At a pause step it calls onPause with
// the label and resumes the driver when onPause returns. The driver's own
// request timeouts bound each step; ctx bounds the whole plan.
func runPlan(t *testing.T, plan []step, onPause func(label string)) results {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	b, err := json.Marshal(plan)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "node", "driver.mjs", string(b))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("node driver.mjs: %v", err)
	}
	waited := false
	defer func() { // also when onPause fails the test: stop the driver
		if !waited {
			cancel()
			cmd.Wait()
		}
	}()
	rs := results{}
	done := false
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var r result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Errorf("driver printed a line that is not JSON: %q", sc.Text())
			continue
		}
		switch {
		case r.Done:
			done = true
		case r.Pause != "":
			if onPause != nil {
				onPause(r.Pause)
			}
			fmt.Fprintln(stdin)
		default:
			rs[r.ID] = r
		}
	}
	io.Copy(io.Discard, stdout)
	err = cmd.Wait()
	waited = true
	if err != nil || !done {
		t.Fatalf("node driver.mjs did not finish its plan (%v); stderr:\n%s", err, stderr.String())
	}
	return rs
}
