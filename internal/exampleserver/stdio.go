package exampleserver

import (
	"context"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// ServeStdio serves one MCP session over stdin and stdout until the client
// closes stdin or ctx is done. When ctx is done it cancels in-flight
// requests and closes the session. It returns nil at end of input and
// ctx.Err() when ctx ended the session.
//
// Nothing but protocol messages may be written to stdout meanwhile; log to
// stderr.
func ServeStdio(ctx context.Context, opts Options) error {
	srv := newServer(opts, ctx)
	return srv.Run(ctx, &mcp.StdioTransport{})
}
