package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// nullServerEnv, set to "1", makes the bench binary (or its test binary)
// run the null server instead of the bench. The GEN scenario starts it that
// way, so the server is a separate process like every other one.
const nullServerEnv = "VMCPBENCH_NULL_SERVER"

// nullInitDelayEnv, a Go duration, delays the null server's initialize
// answers, as -init-delay does the example server's.
const nullInitDelayEnv = "VMCPBENCH_NULL_INIT_DELAY"

// runNullServer serves the cheapest MCP endpoint the generator can talk to:
// initialize, notifications, the four lists and an echo tools/call, answered
// as plain JSON with no SDK and no session state. It prints "listening on
// URL" and serves until SIGTERM or SIGINT.
func runNullServer() error {
	var delay time.Duration
	if v := os.Getenv(nullInitDelayEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%s: %w", nullInitDelayEnv, err)
		}
		delay = d
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	var ids atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nullServe(w, r, &ids, delay)
	}), ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("listening on http://%s/mcp\n", ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

func nullServe(w http.ResponseWriter, r *http.Request, ids *atomic.Int64, initDelay time.Duration) {
	switch r.Method {
	case http.MethodDelete:
		w.WriteHeader(http.StatusNoContent)
		return
	case http.MethodPost:
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params struct {
			Arguments struct {
				Text string `json:"text"`
			} `json:"arguments"`
		} `json:"params"`
	}
	if json.Unmarshal(body, &m) != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if m.ID == nil {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	out := append([]byte(`{"jsonrpc":"2.0","id":`), m.ID...)
	switch m.Method {
	case "initialize":
		if initDelay > 0 {
			select {
			case <-time.After(initDelay):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Mcp-Session-Id", "null-"+strconv.FormatInt(ids.Add(1), 10))
		out = append(out, `,"result":{"protocolVersion":"`+protocolVersion+`","capabilities":{"tools":{},"resources":{},"prompts":{}},"serverInfo":{"name":"null","version":"1"}}}`...)
	case "tools/list":
		out = append(out, `,"result":{"tools":[{"name":"echo","inputSchema":{"type":"object"}}]}}`...)
	case "resources/list":
		out = append(out, `,"result":{"resources":[{"uri":"null://readme","name":"readme"}]}}`...)
	case "resources/templates/list":
		out = append(out, `,"result":{"resourceTemplates":[{"uriTemplate":"null://notes/{id}","name":"note"}]}}`...)
	case "prompts/list":
		out = append(out, `,"result":{"prompts":[{"name":"greet"}]}}`...)
	default:
		out = append(out, `,"result":{"content":[{"type":"text","text":`...)
		out = strconv.AppendQuote(out, m.Params.Arguments.Text)
		out = append(out, `}]}}`...)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}
