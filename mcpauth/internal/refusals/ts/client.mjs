// client.mjs drives the TypeScript MCP SDK client for the Go refusal tests
// (mcpauth/internal/refusals). It reads a scenario as JSON from argv[2], or
// from stdin when argv[2] is absent or "-":
//
//	{"url": "http://127.0.0.1:1234/mcp",
//	 "steps": [{"step": "connect", "op": "connect", "auth": "Bearer mcp_..."},
//	           {"step": "refused", "op": "callTool", "auth": "Bearer mcp_...", "params": {"name": "echo"}},
//	           ...]}
//
// and performs each step on ONE client and transport (one session), with the
// step's "auth" as the Authorization header of every HTTP request made while
// the step runs (no header when auth is empty or absent). Ops: connect,
// callTool, readResource, getPrompt, listTools, ping, close. It prints one
// JSON line per step:
//
//	{"step": ..., "ok": bool, "result": ..., "errorClass": ..., "code": ..., "message": ...}
//
// A failing step does not stop the scenario. The exit status is 0 unless the
// scenario itself is unreadable.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { readFileSync } from "node:fs";

const arg = process.argv[2];
const scenario = JSON.parse(arg === undefined || arg === "-" ? readFileSync(0, "utf8") : arg);

let auth = "";
let sessionAuth = "";
const fetchWithAuth = (url, init = {}) => {
  const headers = new Headers(init.headers);
  const a = (init.method ?? "GET").toUpperCase() === "POST" ? auth : sessionAuth;
  if (a) headers.set("authorization", a);
  else headers.delete("authorization");
  return fetch(url, { ...init, headers });
};

const transport = new StreamableHTTPClientTransport(new URL(scenario.url), { fetch: fetchWithAuth });
const client = new Client({ name: "mcpauth-refusals-ts", version: "1.0.0" });
// Transport-level errors (a failed GET stream, ...) are also reported by the
// rejected call; keep them off stderr so the output stays one line per step.
client.onerror = () => {};

// A request timeout well inside the Go test's deadline.
const opts = { timeout: scenario.timeoutMs ?? 10000 };

const ops = {
  connect: () => client.connect(transport, opts).then(() => ({
    protocolVersion: transport.protocolVersion ?? null,
    sessionId: transport.sessionId ?? null,
  })),
  callTool: (p) => client.callTool(p, undefined, opts),
  readResource: (p) => client.readResource(p, opts),
  getPrompt: (p) => client.getPrompt(p, opts),
  listTools: (p) => client.listTools(p, opts),
  ping: () => client.ping(opts),
  close: () => client.close().then(() => ({})),
};

for (const s of scenario.steps) {
  auth = s.auth ?? "";
  if (s.op === "connect") sessionAuth = auth;
  const out = { step: s.step ?? s.op, ok: false };
  try {
    const op = ops[s.op];
    if (!op) throw new Error(`unknown op ${s.op}`);
    out.result = await op(s.params ?? {});
    out.ok = true;
  } catch (e) {
    out.errorClass = e?.constructor?.name ?? typeof e;
    out.code = e?.code ?? null;
    out.message = e?.message ?? String(e);
    if (e?.data !== undefined) out.data = e.data;
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}
await client.close().catch(() => {});
