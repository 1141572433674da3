// Command rootserver is fixture.RootsServer over stdio, for tests that
// need a stdio backend asking for roots during its handshake.
package main

import (
	"context"
	"log"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/vmcp/vmcp/internal/fixture"
)

func main() {
	if err := fixture.RootsServer("files").Run(context.Background(), &mcp.StdioTransport{}); err != nil {
		log.Fatal(err)
	}
}
