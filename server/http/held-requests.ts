// A 2025-era member's request of the agent (sampling, elicitation, roots) made while answering a
// 2026-07-28 agent, which cannot be asked on a stream: the agent's call is answered with an
// input_required result instead, the member's request (and its upstream call) held open in this
// process until the agent retries with its answer, at most MCP_API_TOOL_TIMEOUT_MS. The
// requestState is sealed (bound to the workspace and token) and names the process holding it.
import { randomUUID } from "node:crypto";
import { ProtocolError } from "@modelcontextprotocol/server";
import type { Actor } from "../domain/tokens.js";
import type { WorkspaceGateway } from "../domain/workspace-gateway.js";

type Json = Record<string, unknown>;

/** What a held call does next: finish, fail, or ask the agent again. */
type Step = { result: unknown } | { error: unknown } | { ask: { method: string; params: Json; answerId: string } };

/** The steps of one member call, in order, for whoever waits on the next. */
export class CallSteps {
  private pending: Step[] = [];
  private waiting: ((step: Step) => void) | null = null;
  push(step: Step) {
    const w = this.waiting;
    this.waiting = null;
    if (w) w(step);
    else this.pending.push(step);
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
  cancel: AbortController;
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

/** The call's next step as the agent gets it: a result, a thrown error, or an input_required result holding the call. */
export async function nextStep(workspace: WorkspaceGateway, actor: Actor, workspaceId: string, steps: CallSteps, cancel: AbortController): Promise<unknown> {
  const step = await steps.next();
  if ("result" in step) return step.result;
  if ("error" in step) throw step.error;
  const sealed = (id: string, expires: number) => workspace.sealState(actor, workspaceId, JSON.stringify({ holder: PROCESS, hold: id, expires } satisfies State));
  const id = randomUUID();
  const expires = Date.now() + workspace.toolTimeoutMs;
  const state = sealed(id, expires);
  if (state === null) {
    cancel.abort();
    throw new ProtocolError(-32601, `${step.ask.method} cannot be relayed to an agent speaking 2026-07-28 through this endpoint`);
  }
  const key = `mcpws_${id.slice(0, 8)}`;
  const timer = setTimeout(() => {
    held.delete(id);
    cancel.abort(new Error("the held request expired"));
  }, workspace.toolTimeoutMs);
  timer.unref();
  held.set(id, { steps, answerId: step.ask.answerId, key, cancel, timer });
  return {
    resultType: "input_required",
    inputRequests: { [key]: step.ask.params && Object.keys(step.ask.params).length ? { method: step.ask.method, params: step.ask.params } : { method: step.ask.method } },
    requestState: STATE_PREFIX + state,
  };
}

/** A retry naming a held call: its answer goes to the member, and the call's next step comes back. */
export async function resumeHeld(workspace: WorkspaceGateway, actor: Actor, workspaceId: string, requestState: string, inputResponses: Json | undefined): Promise<unknown> {
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
  const sent = await workspace.answer(actor, workspaceId, found.answerId, { result: response });
  if (!sent) {
    found.cancel.abort();
    throw new ProtocolError(-32602, "Invalid params: the member that asked can no longer be answered (removed, disabled or moved).");
  }
  return nextStep(workspace, actor, workspaceId, found.steps, found.cancel);
}
