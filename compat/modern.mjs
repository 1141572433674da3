// modern.mjs connects the TypeScript SDK v2 client (@modelcontextprotocol/client)
// to an MCP endpoint in one version-negotiation mode, lists the tools and
// calls one tool several times; modern_test.go asserts on what it prints.
//
//   node modern.mjs URL MODE TOOL CALLS     MODE: pin | auto
//
// It prints one JSON line: {protocolVersion, tools, texts} or {error}.
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

const [url, mode, tool, calls] = process.argv.slice(2);
const versionNegotiation = mode === 'pin' ? { mode: { pin: '2026-07-28' } } : { mode: 'auto' };
try {
  const client = new Client({ name: 'vmcp-compat-modern', version: '1.0.0' }, { versionNegotiation });
  const transport = new StreamableHTTPClientTransport(new URL(url));
  await client.connect(transport);
  const tools = (await client.listTools()).tools.map((t) => t.name);
  const texts = [];
  for (let i = 0; i < Number(calls); i++) {
    const res = await client.callTool({ name: tool, arguments: {} });
    texts.push(res.content.filter((c) => c.type === 'text').map((c) => c.text).join('\n'));
  }
  const protocolVersion = transport.protocolVersion ?? null;
  await client.close();
  console.log(JSON.stringify({ protocolVersion, tools, texts }));
} catch (err) {
  console.log(JSON.stringify({ error: String(err?.stack ?? err) }));
  process.exitCode = 1;
}
