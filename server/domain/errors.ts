// The few failures the domain names; server/http/problem.ts turns them into problem+json.
import type { ConnectionError, ProblemFieldError } from "../wire.js";

export class DomainError extends Error {
  constructor(
    readonly status: number,
    readonly kind: string,
    readonly title: string,
    detail: string,
  ) {
    super(detail);
  }
}

export class ValidationFailed extends DomainError {
  constructor(readonly errors: ProblemFieldError[]) {
    super(400, "validation-error", "Your request is not valid.", `${errors.length} field${errors.length === 1 ? " is" : "s are"} not valid.`);
  }
}

export class Unauthorized extends DomainError {
  constructor(detail = "Send a valid token as 'Authorization: Bearer <token>'.") {
    super(401, "unauthorized", "Authentication is required.", detail);
  }
}

export class Forbidden extends DomainError {
  /** `errors` names the offending fields of the request, when there are some. */
  constructor(
    detail: string,
    readonly errors?: ProblemFieldError[],
  ) {
    super(403, "forbidden", "You are not allowed to do this.", detail);
  }
}

export class NotFound extends DomainError {
  constructor(what: string) {
    super(404, "not-found", "Not found.", `${what} was not found.`);
  }
}

export class Conflict extends DomainError {
  constructor(detail: string) {
    super(409, "conflict", "The request conflicts with the current state.", detail);
  }
}

/** The MCP server could not be used: 502, or 504 when it did not answer in time. */
export class UpstreamFailure extends DomainError {
  constructor(readonly connectionError: ConnectionError) {
    const timeout = connectionError.class === "timeout";
    super(
      timeout ? 504 : 502,
      timeout ? "upstream-timeout" : "upstream-error",
      timeout ? "The MCP server did not answer in time." : "The MCP server could not be used.",
      `${connectionError.class}: ${connectionError.message}`,
    );
  }
}

export class ServiceUnavailable extends DomainError {
  constructor(detail = "The database is unavailable; try again shortly.") {
    super(503, "service-unavailable", "The service is unavailable right now.", detail);
  }
}

export class PreconditionFailed extends DomainError {
  constructor(detail: string) {
    super(412, "precondition-failed", "The record changed since you read it.", detail);
  }
}

/** 428: the operation needs If-Match and the request has none. */
export class PreconditionRequired extends DomainError {
  constructor(detail: string) {
    super(428, "precondition-required", "The request needs If-Match.", detail);
  }
}

export class IdempotencyKeyReused extends DomainError {
  constructor() {
    super(422, "idempotency-key-reused", "This Idempotency-Key was used for a different request.", "Use a new key for a different request body.");
  }
}

export class RateLimited extends DomainError {
  constructor(
    readonly limit: number,
    readonly resetSeconds: number,
  ) {
    super(429, "rate-limited", "Too many requests.", `The limit is ${limit} requests per minute; retry in ${resetSeconds} s.`);
  }
}
