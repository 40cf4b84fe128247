// The id a request is known by in logs, problem bodies and its X-Request-Id header.
import { randomUUID } from "node:crypto";

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The caller's X-Request-Id when it is 1–128 characters of `[A-Za-z0-9._:-]`, else a new one. */
export const requestIdFor = (given: string | undefined): string => (given && REQUEST_ID.test(given) ? given : randomUUID());
