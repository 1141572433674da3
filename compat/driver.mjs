// driver.mjs runs a plan of MCP client steps with the official TypeScript
// SDK client and prints one JSON line per step on stdout. compat_test.go
// writes the plans and asserts on the lines; this file only drives and
// observes, so every expectation lives in the Go test.
//
//   node driver.mjs PLAN_JSON
//
// A plan is an array of steps. Every step has an "id", echoed in its
// result line {"id", "ok", "error"?, ...}. Steps:
//
//   {op: "connect", s, url}           Streamable HTTP (vmcp or a server)
//   {op: "connect", s, sse}           legacy HTTP+SSE, sse = the /sse URL
//   {op: "connect", s, stdio: {command, args, env}}
//       roots: [{uri, name}] the client's roots (it always declares roots,
//       sampling and elicitation, so servers register the same tools as
//       they do behind vmcp). Result: serverName, instructions,
//       capabilities.
//   {op: "listTools", s}              result: tools (every page's names)
//   {op: "call", s, tool, args, progress?, until?, tries?}
//       result: text (text content joined by "\n"), isError, meta (_meta),
//       progress ([{progress, total}] when progress is set), and how many
//       sampling, elicitation and roots requests the client answered
//       during the call. With until, the call repeats (up to tries times,
//       100 ms apart) until text contains until: for servers that apply
//       a change asynchronously, such as new roots.
//   {op: "task", s, tool, args, tries?}
//       a task-augmented tools/call, then tasks/list, tasks/get (every
//       200 ms, up to tries times, until the task is terminal or asks for
//       input), tasks/result and tasks/get once more, all as raw requests
//       with the SDK's result schemas. Result: taskId, created (its
//       status in the CreateTaskResult), listed (whether tasks/list named
//       it), statuses (each distinct status tasks/get reported, in
//       order), text, isError (of the tasks/result), final (the status
//       after it), and the client's elicitation answers meanwhile.
//   {op: "setRoots", s, roots}        replace the roots and send
//                                     notifications/roots/list_changed
//   {op: "close", s}                  DELETE the session (HTTP) and close
//   {op: "pause", label}              print the line, then wait for a line
//                                     on stdin (the Go test acts meanwhile)
//   {op: "parallel", branches: [[steps], ...]}  run branches concurrently
//
// A step's failure is reported in its line and the plan goes on; the last
// line is {"done": true}.
import { createInterface } from "node:readline";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  CallToolResultSchema,
  CreateMessageRequestSchema,
  CreateTaskResultSchema,
  ElicitRequestSchema,
  GetTaskResultSchema,
  ListRootsRequestSchema,
  ListTasksResultSchema,
} from "@modelcontextprotocol/sdk/types.js";

// The sampling handler's answer starts with this, so the Go test can tell
// that a result came from this client and not from a server's fallback.
const SAMPLED = "compat-sampled:";
// The elicitation handler's answer.
const ELICITED_NAME = "Ada Lovelace";

const sessions = new Map();
const stdin = createInterface({ input: process.stdin });
const stdinLines = stdin[Symbol.asyncIterator]();

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function session(name) {
  const s = sessions.get(name);
  if (!s) throw new Error(`no session ${name}`);
  return s;
}

function transportFor(step) {
  if (step.url) return new StreamableHTTPClientTransport(new URL(step.url));
  if (step.sse) return new SSEClientTransport(new URL(step.sse));
  if (step.stdio) {
    return new StdioClientTransport({
      command: step.stdio.command,
      args: step.stdio.args ?? [],
      env: { ...process.env, ...(step.stdio.env ?? {}) },
      stderr: "ignore",
    });
  }
  throw new Error("connect needs url, sse or stdio");
}

async function connect(step) {
  const client = new Client(
    { name: "vmcp-compat", version: "1.0.0" },
    { capabilities: { sampling: {}, elicitation: { form: {} }, roots: { listChanged: true } } },
  );
  const s = { client, transport: transportFor(step), roots: step.roots ?? [], sampling: 0, elicitation: 0, rootsAsked: 0 };
  client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
    s.sampling++;
    const last = req.params.messages.at(-1);
    const text = last?.content?.type === "text" ? last.content.text : "";
    return { model: "compat-model", role: "assistant", content: { type: "text", text: `${SAMPLED} ${text}` } };
  });
  client.setRequestHandler(ElicitRequestSchema, async (req) => {
    s.elicitation++;
    const content = { name: ELICITED_NAME };
    // simulate-research-query asks which interpretation of its topic is
    // meant: the first one offered.
    const choice = req.params.requestedSchema?.properties?.interpretation?.oneOf?.[0]?.const;
    if (choice) content.interpretation = choice;
    return { action: "accept", content };
  });
  client.setRequestHandler(ListRootsRequestSchema, async () => {
    s.rootsAsked++;
    return { roots: s.roots };
  });
  await client.connect(s.transport);
  sessions.set(step.s, s);
  return {
    serverName: client.getServerVersion()?.name,
    instructions: client.getInstructions() ?? "",
    capabilities: client.getServerCapabilities() ?? {},
  };
}

async function listTools(step) {
  const { client } = session(step.s);
  const tools = [];
  let cursor;
  do {
    const page = await client.listTools(cursor ? { cursor } : {});
    tools.push(...page.tools.map((t) => t.name));
    cursor = page.nextCursor;
  } while (cursor);
  return { tools };
}

async function callOnce(s, step) {
  const before = { sampling: s.sampling, elicitation: s.elicitation, rootsAsked: s.rootsAsked };
  const progress = [];
  const opts = step.progress ? { onprogress: (p) => progress.push({ progress: p.progress, total: p.total }) } : {};
  const res = await s.client.callTool({ name: step.tool, arguments: step.args ?? {} }, undefined, opts);
  const text = (res.content ?? []).filter((c) => c.type === "text").map((c) => c.text).join("\n");
  return {
    text,
    isError: res.isError === true,
    meta: res._meta ?? {},
    progress,
    sampling: s.sampling - before.sampling,
    elicitation: s.elicitation - before.elicitation,
    rootsAsked: s.rootsAsked - before.rootsAsked,
  };
}

async function call(step) {
  const s = session(step.s);
  let res = await callOnce(s, step);
  for (let i = 1; step.until && !res.text.includes(step.until) && i < (step.tries ?? 50); i++) {
    await new Promise((r) => setTimeout(r, 100));
    res = await callOnce(s, step);
  }
  return res;
}

const TERMINAL = new Set(["completed", "failed", "cancelled"]);

async function task(step) {
  const s = session(step.s);
  const before = s.elicitation;
  const created = await s.client.request(
    { method: "tools/call", params: { name: step.tool, arguments: step.args ?? {}, task: { ttl: 60000 } } },
    CreateTaskResultSchema,
  );
  const taskId = created.task.taskId;
  let listed = false;
  let cursor;
  do {
    const page = await s.client.request({ method: "tasks/list", params: cursor ? { cursor } : {} }, ListTasksResultSchema);
    listed ||= page.tasks.some((t) => t.taskId === taskId);
    cursor = page.nextCursor;
  } while (cursor);
  const get = () => s.client.request({ method: "tasks/get", params: { taskId } }, GetTaskResultSchema);
  const statuses = [created.task.status];
  for (let i = 0; i < (step.tries ?? 100); i++) {
    const { status } = await get();
    if (statuses.at(-1) !== status) statuses.push(status);
    if (TERMINAL.has(status) || status === "input_required") break;
    await new Promise((r) => setTimeout(r, 200));
  }
  // tasks/result waits for the task to end; a task that asks for input
  // sends its elicitation/create on this request's stream meanwhile.
  const res = await s.client.request({ method: "tasks/result", params: { taskId } }, CallToolResultSchema);
  const text = (res.content ?? []).filter((c) => c.type === "text").map((c) => c.text).join("\n");
  const final = (await get()).status;
  return { taskId, created: created.task.status, listed, statuses, text, isError: res.isError === true, final, elicitation: s.elicitation - before };
}

async function setRoots(step) {
  const s = session(step.s);
  s.roots = step.roots;
  await s.client.sendRootsListChanged();
  return {};
}

async function close(step) {
  const s = session(step.s);
  sessions.delete(step.s);
  if (s.transport instanceof StreamableHTTPClientTransport) await s.transport.terminateSession();
  await s.client.close();
  return {};
}

async function pause(step) {
  emit({ id: step.id, ok: true, pause: step.label });
  const { done } = await stdinLines.next();
  if (done) throw new Error("stdin closed during pause");
  return null; // already reported
}

const ops = { connect, listTools, call, task, setRoots, close, pause };

async function run(steps) {
  for (const step of steps) {
    if (step.op === "parallel") {
      await Promise.all(step.branches.map(run));
      continue;
    }
    try {
      const op = ops[step.op];
      if (!op) throw new Error(`unknown op ${step.op}`);
      const res = await op(step);
      if (res !== null) emit({ id: step.id, ok: true, ...res });
    } catch (err) {
      emit({ id: step.id, ok: false, error: String(err?.message ?? err) });
    }
  }
}

await run(JSON.parse(process.argv[2]));
for (const name of [...sessions.keys()]) await close({ s: name }).catch(() => {});
emit({ done: true });
stdin.close();
process.exit(0);
