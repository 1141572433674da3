// Command stdioserver is the stdio MCP server used by the backend package's
// tests: a go-sdk server with an echo tool, a counter (per process, so per
// session), a slow tool that reports cancellation on stderr, a tool that
// sends progress notifications, one that writes a line to stderr, and one
// that pings the client outside its call.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type textArgs struct {
	Text string `json:"text"`
}

func text(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

func main() {
	fmt.Fprintln(os.Stderr, "stdioserver: started")
	// With STDIOSERVER_ROOTS set, the server asks for roots once it is
	// initialized, as server-filesystem does, and again on
	// roots/list_changed; it gives up on its first ask after that many
	// milliseconds (a later ask answers a list_changed, which a client
	// answers at once, so it waits longer: a loaded machine is slow). The
	// roots tool returns the last answer.
	var roots atomic.Value
	roots.Store("none")
	listRoots := func(ss *mcp.ServerSession, first bool) {
		wait := 30 * time.Second
		if first {
			ms, _ := strconv.Atoi(os.Getenv("STDIOSERVER_ROOTS"))
			wait = time.Duration(ms) * time.Millisecond
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		res, err := ss.ListRoots(ctx, nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, "roots: gave up")
			return
		}
		got := ""
		for _, r := range res.Roots {
			got += r.URI + " "
		}
		roots.Store(got)
	}
	var opts *mcp.ServerOptions
	if os.Getenv("STDIOSERVER_ROOTS") != "" {
		opts = &mcp.ServerOptions{
			InitializedHandler:      func(_ context.Context, r *mcp.InitializedRequest) { go listRoots(r.Session, true) },
			RootsListChangedHandler: func(_ context.Context, r *mcp.RootsListChangedRequest) { go listRoots(r.Session, false) },
		}
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "stdioserver", Version: "test"}, opts)
	mcp.AddTool(s, &mcp.Tool{Name: "roots"}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
		return text(roots.Load().(string)), nil, nil
	})
	var count atomic.Int64
	mcp.AddTool(s, &mcp.Tool{Name: "echo"}, func(_ context.Context, _ *mcp.CallToolRequest, in textArgs) (*mcp.CallToolResult, any, error) {
		return text(in.Text), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "count"}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
		return text(strconv.FormatInt(count.Add(1), 10)), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "slow"}, func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		select {
		case <-ctx.Done():
			fmt.Fprintln(os.Stderr, "slow: cancelled")
			return nil, nil, ctx.Err()
		case <-time.After(time.Minute):
			return text("done"), nil, nil
		}
	})
	mcp.AddTool(s, &mcp.Tool{Name: "progress"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		if tok := req.Params.GetProgressToken(); tok != nil {
			for i := range 3 {
				_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: float64(i + 1), Total: 3})
			}
		}
		return text("done"), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "stderr"}, func(_ context.Context, _ *mcp.CallToolRequest, in textArgs) (*mcp.CallToolResult, any, error) {
		fmt.Fprintln(os.Stderr, in.Text)
		return text("ok"), nil, nil
	})
	// ping_later pings the client on its own, as servers do outside any
	// call, and answers its own call meanwhile; the ping most likely
	// reaches the client while the call is still pending.
	mcp.AddTool(s, &mcp.Tool{Name: "ping_later"}, func(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		go req.Session.Ping(context.Background(), nil)
		time.Sleep(100 * time.Millisecond)
		return text("asked"), nil, nil
	})
	if err := s.Run(context.Background(), &mcp.StdioTransport{}); err != nil {
		log.Print(err)
	}
}
