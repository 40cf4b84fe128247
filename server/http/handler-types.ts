// Handler signatures derived from the generated operations, so that the type checker
// refuses a handler that is missing or answers with a body the spec does not allow.
import type { Actor } from "../domain/tokens.js";
import type { OperationId, operations } from "../wire.js";

type Op<K extends OperationId> = operations[K];
type Params<K extends OperationId, Where extends string> = Op<K>["parameters"] extends Record<Where, infer P>
  ? P extends undefined | never
    ? Record<string, never>
    : NonNullable<P>
  : Record<string, never>;
type Body<K extends OperationId> = Op<K> extends { requestBody: { content: { "application/json": infer B } } } ? B : undefined;
type Responses<K extends OperationId> = Op<K>["responses"];
type SuccessStatus<K extends OperationId> = Extract<keyof Responses<K>, 200 | 201 | 202 | 204>;
type JsonOf<R> = R extends { content: { "application/json": infer B } } ? B : undefined;

export type Reply<K extends OperationId> = {
  [S in SuccessStatus<K>]: { status: S; body: JsonOf<Responses<K>[S]>; headers?: Record<string, string> };
}[SuccessStatus<K>];

export interface HandlerRequest<K extends OperationId> {
  /** The authenticated caller; throws 401 on an operation without security. */
  actor(): Actor;
  params: Params<K, "path">;
  query: Params<K, "query">;
  headers: Record<string, string | string[] | undefined>;
  body: Body<K>;
  requestId: string;
}

export type Handler<K extends OperationId> = (req: HandlerRequest<K>) => Promise<Reply<K>>;
export type HandlerTable = { [K in OperationId]: Handler<K> };
