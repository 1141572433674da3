// Command capture records the tools/list output of real MCP servers as the
// relevance test's catalog (../catalog/*.json). It speaks raw JSON-RPC over
// stdio, so the files hold each server's bytes as it sent them (one tool
// per array element), and it declares sampling, elicitation and roots, as
// vmcp's clients do, since server-everything registers some tools only for
// clients that have them.
//
// Run from the repository root, after `(cd compat && npm ci)`:
//
//	go build -o /tmp/everything-server github.com/modelcontextprotocol/go-sdk/conformance/everything-server
//	go run ./internal/toolsearch/testdata/capture -go-everything /tmp/everything-server
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
)

func main() {
	goEverything := flag.String("go-everything", "", "path of the built go-sdk conformance everything-server")
	out := flag.String("out", "internal/toolsearch/testdata/catalog", "directory to write into")
	modules := flag.String("modules", "compat/node_modules/@modelcontextprotocol", "the npm servers' directory")
	flag.Parse()
	dir, err := os.MkdirTemp("", "capture")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	servers := []struct {
		name string
		argv []string
		env  []string
	}{
		{"server-everything", []string{"node", filepath.Join(*modules, "server-everything/dist/index.js"), "stdio"}, nil},
		{"server-filesystem", []string{"node", filepath.Join(*modules, "server-filesystem/dist/index.js"), dir}, nil},
		{"server-memory", []string{"node", filepath.Join(*modules, "server-memory/dist/index.js")}, []string{"MEMORY_FILE_PATH=" + filepath.Join(dir, "memory.jsonl")}},
		{"go-sdk-everything-server", []string{*goEverything}, nil},
	}
	for _, s := range servers {
		if s.argv[0] == "" {
			log.Fatal("-go-everything is required")
		}
		tools, info, err := capture(s.argv, s.env, "file://"+dir)
		if err != nil {
			log.Fatalf("%s: %v", s.name, err)
		}
		doc := map[string]any{"server": s.name, "serverInfo": info, "tools": tools}
		b, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(*out, s.name+".json"), append(b, '\n'), 0o644); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: %d tools\n", s.name, len(tools))
	}
}

type message struct {
	ID     json.RawMessage `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  json.RawMessage `json:"error,omitempty"`
}

// capture starts argv, initializes, and lists every page of tools.
func capture(argv, env []string, root string) ([]json.RawMessage, json.RawMessage, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = io.Discard
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, err
	}
	outp, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	defer func() { in.Close(); cmd.Process.Kill(); cmd.Wait() }()
	sc := bufio.NewScanner(outp)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	send := func(v any) error {
		b, _ := json.Marshal(v)
		_, err := in.Write(append(b, '\n'))
		return err
	}
	nextID := 0
	call := func(method string, params any) (json.RawMessage, error) {
		nextID++
		if err := send(map[string]any{"jsonrpc": "2.0", "id": nextID, "method": method, "params": params}); err != nil {
			return nil, err
		}
		for sc.Scan() {
			var m message
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				continue
			}
			switch {
			case m.Method != "" && m.ID != nil: // a request of the server's
				var res any = map[string]any{}
				if m.Method == "roots/list" {
					res = map[string]any{"roots": []any{map[string]string{"uri": root, "name": "root"}}}
				}
				send(map[string]any{"jsonrpc": "2.0", "id": m.ID, "result": res})
			case m.Method != "": // a notification
			case string(m.ID) == fmt.Sprint(nextID):
				if m.Error != nil {
					return nil, fmt.Errorf("%s: %s", method, m.Error)
				}
				return m.Result, nil
			}
		}
		return nil, errors.New("server closed its output")
	}
	initRes, err := call("initialize", map[string]any{
		"protocolVersion": "2025-11-25",
		"capabilities":    map[string]any{"sampling": map[string]any{}, "elicitation": map[string]any{"form": map[string]any{}}, "roots": map[string]any{"listChanged": true}},
		"clientInfo":      map[string]any{"name": "vmcp-toolsearch-capture", "version": "1"},
	})
	if err != nil {
		return nil, nil, err
	}
	var ir struct {
		ServerInfo json.RawMessage `json:"serverInfo"`
	}
	json.Unmarshal(initRes, &ir)
	if err := send(map[string]any{"jsonrpc": "2.0", "method": "notifications/initialized"}); err != nil {
		return nil, nil, err
	}
	var tools []json.RawMessage
	cursor := ""
	for {
		params := map[string]any{}
		if cursor != "" {
			params["cursor"] = cursor
		}
		res, err := call("tools/list", params)
		if err != nil {
			return nil, nil, err
		}
		var page struct {
			Tools      []json.RawMessage `json:"tools"`
			NextCursor string            `json:"nextCursor"`
		}
		if err := json.Unmarshal(res, &page); err != nil {
			return nil, nil, err
		}
		tools = append(tools, page.Tools...)
		if cursor = page.NextCursor; cursor == "" {
			return tools, ir.ServerInfo, nil
		}
	}
}
