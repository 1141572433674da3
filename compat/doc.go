// Package compat is vmcp's compatibility suite: it proves that MCP software
// this project did not write works through vmcp.
//
// Its test builds the vmcp binary and puts the npm reference servers behind
// one gateway: @modelcontextprotocol/server-everything over stdio, legacy
// HTTP+SSE and Streamable HTTP, server-filesystem over stdio taking the
// client's roots, and server-memory over stdio. The official TypeScript SDK
// client (driver.mjs) drives it. package.json and package-lock.json pin every
// version; `npm ci` in this directory installs them (.ci/run does). There is
// no Go API here, only the test.
package compat
