// Handler signatures derived from the generated operations, so that the type checker
// refuses a handler that is missing or answers with a body the spec does not allow.
import type { Request as ExpressRequest, Response as ExpressResponse } from "express";
import type { Actor } from "../domain/tokens.js";
import type { OperationId, operations } from "../wire.js";

type Op<K extends OperationId> = operations[K];
type Params<K extends OperationId, Where extends string> = Op<K>["parameters"] extends Record<Where, infer P>
  ? P extends undefined | never
    ? Record<string, never>
    : NonNullable<P>
  : Record<string, never>;
// Distributes over an optional body (`X | undefined`).
type JsonBody<R> = R extends { content: { "application/json": infer B } } ? B : undefined;
type Body<K extends OperationId> = JsonBody<Op<K>["requestBody"]>;
type Responses<K extends OperationId> = Op<K>["responses"];
// Handlers answer successes and redirects; errors are thrown, except on pages meant for a
// person's browser (text/html), whose failures are pages too.
type HtmlStatus<K extends OperationId> = {
  [S in keyof Responses<K>]: Responses<K>[S] extends { content: { "text/html": unknown } } ? S : never;
}[keyof Responses<K>];
type ReplyStatus<K extends OperationId> = Extract<keyof Responses<K>, 200 | 201 | 202 | 204 | 302> | HtmlStatus<K>;
type BodyOf<R> = R extends { content: { "application/json": infer B } }
  ? B
  : R extends { content: { "text/html": infer H } }
    ? H
    : undefined;

export type Reply<K extends OperationId> = {
  [S in ReplyStatus<K>]: { status: S; body: BodyOf<Responses<K>[S]>; headers?: Record<string, string> };
}[ReplyStatus<K>];

export interface HandlerRequest<K extends OperationId> {
  /** The authenticated caller; throws 401 on an operation without security. */
  actor(): Actor;
  params: Params<K, "path">;
  query: Params<K, "query">;
  headers: Record<string, string | string[] | undefined>;
  body: Body<K>;
  requestId: string;
  /** Aborted when the caller disconnects before the answer is sent. */
  signal: AbortSignal;
}

export type Handler<K extends OperationId> = (req: HandlerRequest<K>) => Promise<Reply<K>>;
/** Operations that stream their answer (the MCP gateway endpoints) get Express's own request and response. */
export type RawOperationId = "sendMcpServerMessage" | "openMcpServerStream" | "closeMcpServerSession" | "sendWorkspaceMessage" | "openWorkspaceStream" | "closeWorkspaceSession" | "sendToolsetMessage";
export type RawHandlerTable = Record<RawOperationId, (req: ExpressRequest, res: ExpressResponse) => Promise<void>>;
export type HandlerTable = { [K in Exclude<OperationId, RawOperationId>]: Handler<K> };
