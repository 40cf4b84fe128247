// A 2025-era member's request of the agent (sampling, elicitation, roots) made while answering a
// 2026-07-28 agent, which cannot be asked on a stream: the agent's call is answered with an
// input_required result instead, the member's request (and its upstream call) held open in this
// process until the agent retries with its answer. The requestState is sealed (bound to the
// workspace and token) and names the process holding it. No hold outlives the call's own bound
// (MCP_API_TOOL_TIMEOUT_MS from the agent's call): at that deadline, or when the call fails
// while held, the member's request is answered with an error and the call let go.
import { randomUUID } from "node:crypto";
import { MissingRequiredClientCapabilityError, ProtocolError } from "@modelcontextprotocol/server";
import type { Actor } from "../domain/tokens.js";
import type { WorkspaceGateway } from "../domain/workspace-gateway.js";

type Json = Record<string, unknown>;

/** What a held call does next: finish, fail, or ask the agent again. */
type Step = { result: unknown } | { error: unknown } | { ask: { method: string; params: Json; answerId: string } };

/** Where what the member sends while answering goes: the agent's request now waiting on the call (its first request, then each retry in turn), each with its own progressToken and log level. */
export interface Relay {
  progress?: (progress: { progress: number; total?: number; message?: string }) => void;
  log?: (params: Json) => void;
}

/** Whose call it is. */
export interface Holder {
  workspace: WorkspaceGateway;
  actor: Actor;
  workspaceId: string;
}

/** The JSON-RPC code a member gets for a request of the agent left unanswered (the SDKs' RequestTimeout). */
const UNANSWERED = -32001;

/** The client capability a 2026-07-28 agent must declare to be asked each request (its presence checked here, the rest by the SDK). */
const CAPABILITY: Record<string, string> = { "sampling/createMessage": "sampling", "elicitation/create": "elicitation", "roots/list": "roots" };

/** The steps of one member call, in order, for whoever waits on the next; made at the member's first request of the agent. */
export class CallSteps {
  private pending: Step[] = [];
  private waiting: ((step: Step) => void) | null = null;
  /** The hold waiting for the agent's retry, if one is. */
  hold: string | null = null;
  constructor(
    readonly holder: Holder,
    readonly cancel: AbortController,
    /** When the call's own bound ends (Date.now() terms): no hold outlives it. */
    readonly deadline: number,
    /** The client capabilities the agent's request declares. */
    readonly capabilities: Json | undefined,
    /** The request waiting on the call's next step, if one is (none while held: that request's response has ended). */
    public relay: Relay | null,
  ) {}
  push(step: Step) {
    const w = this.waiting;
    this.waiting = null;
    if (w) return w(step);
    this.pending.push(step);
    // The call failed while held (the member gone, the pool's deadline): nothing is left to retry.
    if ("error" in step && this.hold !== null) release(this.hold, `the call ended while waiting for the agent's answer: ${(step.error as Error | null)?.message ?? step.error}`);
  }
  next(): Promise<Step> {
    const first = this.pending.shift();
    return first ? Promise.resolve(first) : new Promise((resolve) => (this.waiting = resolve));
  }
}

interface Held {
  steps: CallSteps;
  answerId: string;
  key: string;
  timer: NodeJS.Timeout;
}

/** This process, as a requestState names it. */
const PROCESS = randomUUID();
const held = new Map<string, Held>();
const STATE_PREFIX = "mcpws-held1.";

interface State {
  holder: string;
  hold: string;
  expires: number;
}

/** Whether a retry's requestState is one of ours (else it belongs to a member and goes on to it). */
export const isHeldState = (state: unknown): state is string => typeof state === "string" && state.startsWith(STATE_PREFIX);

/** Ends a hold the agent did not retry: the member's request gets an error answer (nothing waits on it upstream) and the call is let go. */
function release(id: string, why: string) {
  const found = held.get(id);
  if (!found) return;
  held.delete(id);
  clearTimeout(found.timer);
  found.steps.hold = null;
  const { workspace, actor, workspaceId } = found.steps.holder;
  void workspace.answer(actor, workspaceId, found.answerId, { error: { code: UNANSWERED, message: why } }).catch(() => false);
  found.steps.cancel.abort(new Error(why));
}

/** The call's next step as the agent gets it: a result, a thrown error, or an input_required result holding the call. */
export async function nextStep(steps: CallSteps): Promise<unknown> {
  const step = await steps.next();
  if ("result" in step) return step.result;
  if ("error" in step) throw step.error;
  const { workspace, actor, workspaceId } = steps.holder;
  const capability = CAPABILITY[step.ask.method];
  const declared = steps.capabilities?.[capability];
  if (typeof declared !== "object" || declared === null) {
    // The SDK would refuse the input_required (-32021) and the hold would wait for nothing: the member is answered now.
    void workspace.answer(actor, workspaceId, step.ask.answerId, { error: { code: -32601, message: `the agent does not declare the ${capability} capability` } }).catch(() => false);
    steps.cancel.abort();
    throw new MissingRequiredClientCapabilityError({ requiredCapabilities: { [capability]: {} } }, `Cannot request input (${step.ask.method}) of the agent: its request's client capabilities do not declare ${capability}`);
  }
  const id = randomUUID();
  const state = workspace.sealState(actor, workspaceId, JSON.stringify({ holder: PROCESS, hold: id, expires: steps.deadline } satisfies State));
  if (state === null) {
    steps.cancel.abort();
    throw new ProtocolError(-32601, `${step.ask.method} cannot be relayed to an agent speaking 2026-07-28 through this endpoint`);
  }
  const key = `mcpws_${id.slice(0, 8)}`;
  const why = `the agent did not answer ${step.ask.method} within the call's bound (MCP_API_TOOL_TIMEOUT_MS, ${workspace.toolTimeoutMs} ms)`;
  const timer = setTimeout(() => release(id, why), Math.max(0, steps.deadline - Date.now()));
  timer.unref();
  held.set(id, { steps, answerId: step.ask.answerId, key, timer });
  steps.hold = id;
  steps.relay = null;
  return {
    resultType: "input_required",
    inputRequests: { [key]: step.ask.params && Object.keys(step.ask.params).length ? { method: step.ask.method, params: step.ask.params } : { method: step.ask.method } },
    requestState: STATE_PREFIX + state,
  };
}

/**
 * A retry naming a held call: its answer goes to the member, and the call's next step comes back;
 * meanwhile the member's progress and log messages go to the retry (`relay`), and the retry's
 * cancellation (`cancelled`) cancels the call.
 */
export async function resumeHeld({ workspace, actor, workspaceId }: Holder, requestState: string, inputResponses: Json | undefined, cancelled: AbortSignal, relay: Relay): Promise<unknown> {
  const opened = workspace.openState(actor, workspaceId, requestState.slice(STATE_PREFIX.length));
  if (opened === null) throw new ProtocolError(-32602, "Invalid params: requestState is not one this endpoint handed to this token for this workspace.");
  const state = JSON.parse(opened) as State;
  const found = held.get(state.hold);
  if (!found) {
    if (Date.now() >= state.expires) throw new ProtocolError(-32602, `Invalid params: the held request expired at ${new Date(state.expires).toISOString()} (MCP_API_TOOL_TIMEOUT_MS); call again without requestState.`);
    if (state.holder !== PROCESS) throw new ProtocolError(-32602, `Invalid params: the held request is held by another process of this gateway (${state.holder}), which this retry did not reach; route retries to the process that answered input_required, or call again without requestState.`);
    throw new ProtocolError(-32602, "Invalid params: the held request was already answered or has ended; call again without requestState.");
  }
  const response = inputResponses?.[found.key];
  if (response === undefined) throw new ProtocolError(-32602, `Invalid params: inputResponses has no answer for '${found.key}'.`);
  held.delete(state.hold);
  clearTimeout(found.timer);
  found.steps.hold = null;
  found.steps.relay = relay;
  const sent = await workspace.answer(actor, workspaceId, found.answerId, { result: response }).catch((err: unknown) => {
    found.steps.cancel.abort();
    throw err;
  });
  if (!sent) {
    found.steps.cancel.abort();
    throw new ProtocolError(-32602, "Invalid params: the member that asked can no longer be answered (removed, disabled or moved).");
  }
  const passOn = () => found.steps.cancel.abort(cancelled.reason);
  if (cancelled.aborted) passOn();
  else cancelled.addEventListener("abort", passOn, { once: true });
  try {
    return await nextStep(found.steps);
  } finally {
    cancelled.removeEventListener("abort", passOn);
    if (found.steps.relay === relay) found.steps.relay = null;
  }
}
