// listen.mjs connects the TypeScript SDK v2 client (@modelcontextprotocol/client)
// to an MCP endpoint pinned to 2026-07-28 with ClientOptions.listChanged for
// tools, which opens a subscriptions/listen stream; modern_test.go asserts on
// what it prints, one JSON line each:
//
//   {ready: [tool names], listening: bool}   once connected
//   {changed: [tool names]}                  each time the tools change
//   {closed: cause}                          if the subscription ends
//   {error}                                  on failure
//
//   node listen.mjs URL TOOL   (it exits once the tools include TOOL)
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

const [url, want] = process.argv.slice(2);
const print = (o) => console.log(JSON.stringify(o));
try {
  const client = new Client({ name: 'vmcp-compat-listen', version: '1.0.0' }, {
    versionNegotiation: { mode: { pin: '2026-07-28' } },
    listChanged: {
      tools: {
        onChanged: async (err, tools) => {
          if (err) {
            print({ error: String(err) });
            return;
          }
          const names = (tools ?? []).map((t) => t.name);
          print({ changed: names });
          if (names.includes(want)) {
            await client.close();
            process.exit(0);
          }
        },
      },
    },
  });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  const sub = client.autoOpenedSubscription;
  sub?.closed.then((cause) => print({ closed: cause }));
  const tools = (await client.listTools()).tools.map((t) => t.name);
  print({ ready: tools, listening: sub !== undefined });
} catch (err) {
  print({ error: String(err?.stack ?? err) });
  process.exitCode = 1;
}
