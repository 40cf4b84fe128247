// The gateway's relay policy as pure rules: the interceptor chain, duplicate ids, protocol headers.
import { describe, expect, test } from "vitest";
import { createRelayPolicy, relayPolicy, type Interceptor } from "../server/domain/gateway/interceptors.js";
import { encodeHeaderValue, parseMessages, protocolHeaders, type JsonRpcMessage } from "../server/domain/gateway/policy.js";

const on = { name: "s", enabled: true, allowedTools: ["echo"] };
const off = { ...on, enabled: false };
const msg = (m: Record<string, unknown>) => ({ jsonrpc: "2.0", ...m }) as JsonRpcMessage;

describe("relay policy, agent to upstream", () => {
  test.each([
    ["a request to an enabled server", on, msg({ id: 1, method: "tools/list" }), "forward"],
    ["a request to a disabled server", off, msg({ id: 1, method: "tools/list" }), "answer"],
    ["a notification to a disabled server", off, msg({ method: "notifications/initialized" }), "drop"],
    ["a response to a disabled server", off, msg({ id: 1, result: {} }), "drop"],
    ["an unknown method", on, msg({ id: 1, method: "tools/explode" }), "answer"],
    ["a call to an allowed tool", on, msg({ id: 1, method: "tools/call", params: { name: "echo" } }), "forward"],
    ["a call to another tool", on, msg({ id: 1, method: "tools/call", params: { name: "secret" } }), "answer"],
    ["a tools/call notification for another tool", on, msg({ method: "tools/call", params: { name: "secret" } }), "drop"],
    ["a tools/call notification for an allowed tool", on, msg({ method: "tools/call", params: { name: "echo" } }), "forward"],
  ])("when %s, then %s", (_name, server, m, action) => {
    expect(relayPolicy.toUpstream(m, server).action).toBe(action);
  });
});

describe("relay policy, upstream to agent", () => {
  const list = msg({ id: 9, result: { tools: [{ name: "echo" }, { name: "secret" }], nextCursor: "c" } });
  test("when any response carries a tool list, then only allowed tools remain", () => {
    expect(relayPolicy.toAgent(list, on)).toEqual(msg({ id: 9, result: { tools: [{ name: "echo" }], nextCursor: "c" } }));
    expect(relayPolicy.toAgent(list, { ...on, allowedTools: null })).toEqual(list);
  });
  test("when the server is disabled, then nothing comes down", () => {
    expect(relayPolicy.toAgent(msg({ method: "notifications/message" }), off)).toBeNull();
  });
  test("when an interceptor is added to the chain, then it sees the messages going both ways", () => {
    const seen: string[] = [];
    const pin: Interceptor = { name: "pins", toUpstream: (m) => void seen.push(String(m.method)), toAgent: (m) => (seen.push("down"), m) };
    const chain = createRelayPolicy([pin]);
    chain.toUpstream(msg({ id: 1, method: "ping" }), on);
    chain.toAgent(msg({ id: 1, result: {} }), on);
    expect(seen).toEqual(["ping", "down"]);
  });
});

describe("batches and protocol headers", () => {
  test("when a batch holds two requests of one id, then it is an invalid request; a response may share a request's id", () => {
    expect(parseMessages([msg({ id: 1, method: "ping" }), msg({ id: 1, method: "tools/list" })])).toMatchObject({ ok: false, invalidRequest: true });
    expect(parseMessages([msg({ id: 1, method: "ping" }), msg({ id: 1, result: {} })])).toMatchObject({ ok: true });
    expect(parseMessages([msg({ id: 1, method: "ping" }), msg({ id: "1", method: "ping" })])).toMatchObject({ ok: true });
  });

  const call = msg({ id: 3, method: "tools/call", params: { name: "echo" } });
  test.each([
    ["no headers", {}, [call], { ok: true, headers: {} }],
    ["matching headers", { method: "tools/call", name: "echo" }, [call], { ok: true, headers: { "mcp-method": "tools/call", "mcp-name": "echo" } }],
    ["a Base64 name", { method: "tools/call", name: "=?base64?ZWNobw==?=" }, [call], { ok: true, headers: { "mcp-method": "tools/call", "mcp-name": "echo" } }],
    ["another name", { method: "tools/call", name: "secret" }, [call], { ok: false }],
    ["another method", { method: "tools/list" }, [call], { ok: false }],
    ["a broken Base64 name", { name: "=?base64?###?=" }, [call], { ok: false }],
    ["a name on a method without one", { method: "ping", name: "x" }, [msg({ id: 1, method: "ping" })], { ok: true, headers: { "mcp-method": "ping" } }],
  ])("when the agent sends %s, then %j", (_name, sent, messages, want) => {
    expect(protocolHeaders(sent, messages, false)).toMatchObject(want);
  });

  test("when a name is not plain visible ASCII, then it goes upstream Base64-encoded", () => {
    expect(encodeHeaderValue("echo")).toBe("echo");
    expect(encodeHeaderValue("héllo")).toBe(`=?base64?${Buffer.from("héllo").toString("base64")}?=`);
    expect(encodeHeaderValue(" padded")).toMatch(/^=\?base64\?/);
  });
});
