// Pure rules of connectors (issue 14): server.json validation and rendering a server from inputs.
import { describe, expect, test } from "vitest";
import { planConnector, renderConnector, type ConnectorDef } from "../server/domain/connectors.js";
import { parseServerJson } from "../server/domain/server-json.js";

function connector(remote: Record<string, unknown>): ConnectorDef {
  const parsed = parseServerJson({ name: "io.github.acme/unit", description: "Unit.", version: "1.0.0", remotes: [remote] }, "file", "2026-01-01T00:00:00Z");
  if (!parsed.ok) throw new Error(parsed.problems.join("; "));
  return parsed.connector;
}

const templated = connector({
  type: "streamable-http",
  url: "https://{region}.acme.example/mcp",
  variables: { region: { isRequired: true, choices: ["eu", "us"] }, token: { isSecret: true } },
  headers: [
    { name: "Authorization", value: "Bearer {token}", isRequired: false },
    { name: "X-Trace", value: "trace-{region}" },
    { name: "X-Plan", default: "free" },
  ],
});

describe("renderConnector", () => {
  test.each([
    [
      "a header template over a secret variable becomes a secret header",
      { region: "eu", token: "t0k" },
      { url: "https://eu.acme.example/mcp", headers: { "X-Trace": "trace-eu", "X-Plan": "free" }, secretHeaders: { Authorization: "Bearer t0k" }, config: { region: "eu" }, secretInputs: { token: "t0k" } },
    ],
    [
      "an optional header whose variable is missing is left out",
      { region: "us", "X-Plan": "pro" },
      { url: "https://us.acme.example/mcp", headers: { "X-Trace": "trace-us", "X-Plan": "pro" }, secretHeaders: {}, config: { region: "us", "X-Plan": "pro" }, secretInputs: {} },
    ],
  ])("when %s", (_label, given, want) => {
    const { problems, rendered } = renderConnector(templated, given);
    expect(problems).toEqual([]);
    expect(rendered).toMatchObject(want);
  });

  test.each([
    ["a value not among the choices", { region: "mars" }, [{ path: "/connectorConfig/region", message: "must be one of: eu, us" }]],
    ["a missing required input", {}, [{ path: "/connectorConfig/region", message: "is required by connector io.github.acme/unit" }]],
    ["a value with a line break", { region: "eu", "X-Plan": "a\r\nb" }, [{ path: "/connectorConfig/X-Plan", message: "must not contain line breaks" }]],
    ["a fixed header given as an input", { region: "eu", "X-Trace": "x" }, [{ path: "/connectorConfig/X-Trace", message: expect.stringContaining("is not an input of connector io.github.acme/unit") }]],
    ["a value that is not a string", { region: ["eu"] }, [{ path: "/connectorConfig/region", message: "must be a string" }]],
  ])("when given %s, then one problem naming the input", (_label, given, want) => {
    expect(renderConnector(templated, given)).toEqual({ problems: want, rendered: null });
  });

  test("when the URL template uses a secret variable, then it is refused rather than put in the URL", () => {
    const leaky = connector({ type: "sse", url: "https://acme.example/{key}/sse", variables: { key: { isSecret: true, isRequired: true } } });
    expect(renderConnector(leaky, { key: "k" }).problems).toEqual([{ path: "/connectorConfig/key", message: "is secret and cannot be part of the URL of connector io.github.acme/unit" }]);
  });
});

describe("planConnector", () => {
  test("when the inputs move the URL to another origin, then stored secret inputs not given again are dropped, not required", () => {
    const { problems, plan } = planConnector(templated, { stored: { token: "old" }, config: { region: "us" }, currentOrigin: "https://eu.acme.example:443" });
    expect(problems).toEqual([]);
    expect(plan).toMatchObject({ url: "https://us.acme.example/mcp", secretInputs: {}, secretHeaders: {}, droppedSecrets: true });
  });

  test("when the origin stays, then a stored secret input is kept and null clears it", () => {
    expect(planConnector(templated, { stored: { token: "old" }, config: { region: "eu" }, currentOrigin: "https://eu.acme.example:443" }).plan).toMatchObject({ secretInputs: { token: "old" }, droppedSecrets: false });
    expect(planConnector(templated, { stored: { token: "old" }, config: { region: "eu", token: null }, currentOrigin: "https://eu.acme.example:443" }).plan).toMatchObject({ secretInputs: {}, secretHeaders: {} });
  });
});

describe("parseServerJson", () => {
  const base = { name: "io.github.acme/x", description: "X.", version: "1.0.0" };
  test.each([
    ["a websiteUrl that is not http(s)", { ...base, websiteUrl: "ftp://acme.example" }, "websiteUrl:"],
    ["a description over 100 characters", { ...base, description: "d".repeat(101) }, "description:"],
    ["a header name with a space", { ...base, remotes: [{ type: "sse", url: "https://a.example/sse", headers: [{ name: "X Key" }] }] }, "remotes.0.headers.0.name: must be a valid HTTP header name"],
    ["a header template with an undeclared variable", { ...base, remotes: [{ type: "sse", url: "https://a.example/sse", headers: [{ name: "X-Key", value: "{nope}" }] }] }, "remotes.0.headers.0.value: uses {nope}"],
    ["a URL template that is not http(s)", { ...base, remotes: [{ type: "sse", url: "file:///etc/passwd" }] }, "remotes.0.url: must be an http(s) URL template"],
    ["not an object", "server.json", "(document):"],
  ])("when the document has %s, then it is refused naming where", (_label, document, problem) => {
    const parsed = parseServerJson(document, "file", "2026-01-01T00:00:00Z");
    expect(parsed.ok).toBe(false);
    expect((parsed as { problems: string[] }).problems.join("\n")).toContain(problem);
  });
});
